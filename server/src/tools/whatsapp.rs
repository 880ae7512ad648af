//! `whatsapp_send_message`: a text message from the customer's WhatsApp number.

use std::borrow::Cow;

use async_trait::async_trait;
use hermes_crds::{Platform, WhatsappSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::sandbox::{self, OutboxMessage};
use crate::platforms::whatsapp::{ACCESS_TOKEN, TextMessage, send_text};
use crate::platforms::{Connection, load_connection};

/// The tool's name.
pub const NAME: &str = "whatsapp_send_message";

/// The longest text WhatsApp accepts, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// The arguments of `whatsapp_send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessageArgs {
    /// The recipient's phone number in E.164 format without the leading `+`, e.g. `15551234567`.
    pub to: PhoneNumber,
    /// The text to send, 1 to 4096 characters.
    pub message: MessageText,
    /// The id (wamid) of a received message to reply to; WhatsApp shows the reply quoting it.
    #[serde(default)]
    pub reply_to: Option<MessageId>,
    /// Whether WhatsApp shows a preview of the first link in the text. Defaults to false.
    #[serde(default)]
    pub preview_url: bool,
}

/// What `whatsapp_send_message` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    /// The sent message's id: a wamid, or `sandbox-…` for a sandbox connection.
    pub message_id: String,
    /// The recipient, as given.
    pub to: String,
    /// True when the message was recorded in the outbox of a sandbox connection instead of sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// A phone number as E.164 digits without the `+`: 7 to 15 digits, the first not zero.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let digits = value.bytes().all(|b| b.is_ascii_digit());
        let shape = (7..=15).contains(&value.len()) && !value.starts_with('0');
        if digits && shape {
            Ok(Self(value))
        } else {
            Err("expected the number in E.164 format without `+`: 7 to 15 digits, e.g. 15551234567")
        }
    }
}

impl JsonSchema for PhoneNumber {
    fn schema_name() -> Cow<'static, str> {
        "PhoneNumber".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[1-9][0-9]{6,14}$" })
    }
}

/// A message text of 1 to [`MAX_MESSAGE_CHARS`] characters, not only whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MessageText(String);

impl MessageText {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageText {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else if chars > MAX_MESSAGE_CHARS {
            Err(format!(
                "is {chars} characters; WhatsApp takes at most {MAX_MESSAGE_CHARS}"
            ))
        } else {
            Ok(Self(value))
        }
    }
}

impl JsonSchema for MessageText {
    fn schema_name() -> Cow<'static, str> {
        "MessageText".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS })
    }
}

/// The id of a WhatsApp message (a wamid): 1 to 512 visible characters.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MessageId(String);

impl TryFrom<String> for MessageId {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let visible = value.bytes().all(|b| b.is_ascii_graphic());
        if visible && (1..=512).contains(&value.len()) {
            Ok(Self(value))
        } else {
            Err("expected a message id such as `wamid.HBgL…`")
        }
    }
}

impl JsonSchema for MessageId {
    fn schema_name() -> Cow<'static, str> {
        "MessageId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": 512 })
    }
}

/// `whatsapp_send_message`.
#[derive(Debug)]
pub struct SendMessage {
    spec: ToolSpec,
}

impl SendMessage {
    /// The tool, with its schemas generated from [`SendMessageArgs`] and [`SentMessage`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: NAME,
                title: "Send a WhatsApp message",
                description: "Sends a text message from the customer's WhatsApp Business number. \
                              WhatsApp delivers free text only within 24 hours of the recipient's \
                              last message; outside that window it refuses the message (error 131047). \
                              Returns the sent message's id.",
                platform: Some(Platform::Whatsapp),
                input_schema: schema_of::<SendMessageArgs>(),
                output_schema: Some(schema_of::<SentMessage>()),
                annotations: Annotations {
                    read_only: false,
                    destructive: false,
                    idempotent: false,
                    open_world: true,
                },
            },
        }
    }
}

impl Default for SendMessage {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for SendMessage {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: SendMessageArgs = parse_args(args)?;

        // Either side saying sandbox is enough: a send that should have been
        // recorded must never reach the platform. The published state is
        // read first so a sandbox connection needs no credentials at all.
        let state_says_sandbox = cx
            .connections
            .iter()
            .any(|c| c.platform == Platform::Whatsapp && c.sandbox);
        let connection = if state_says_sandbox {
            None
        } else {
            Some(load_connection(cx.app, &cx.tenant.id, Platform::Whatsapp).await?)
        };

        let sent = match connection {
            Some(connection) if !connection.credentials.sandbox => send_live(cx, &connection, &args).await?,
            Some(_) | None => record_in_outbox(cx, &args).await?,
        };
        to_structured(&sent)
    }
}

/// Sends through the Graph API.
async fn send_live(
    cx: &ToolContext<'_>,
    connection: &Connection,
    args: &SendMessageArgs,
) -> Result<SentMessage, ToolError> {
    let settings: WhatsappSettings = connection.settings()?;
    let access_token = connection.secret(ACCESS_TOKEN)?;
    let message = TextMessage {
        to: args.to.as_str(),
        body: args.message.as_str(),
        reply_to: args.reply_to.as_ref().map(|id| id.0.as_str()),
        preview_url: args.preview_url,
    };

    let message_id = send_text(
        &connection.endpoint(cx.app),
        &cx.app.settings.graph_api_version,
        &settings.phone_number_id,
        access_token,
        &message,
    )
    .await?;

    Ok(SentMessage {
        message_id,
        to: args.to.as_str().to_owned(),
        sandbox: false,
    })
}

/// Records the message in the customer's outbox.
async fn record_in_outbox(cx: &ToolContext<'_>, args: &SendMessageArgs) -> Result<SentMessage, ToolError> {
    let mut fields = Map::new();
    fields.insert("message".into(), json!(args.message.as_str()));
    fields.insert("previewUrl".into(), json!(args.preview_url));
    if let Some(reply_to) = &args.reply_to {
        fields.insert("replyTo".into(), json!(reply_to.0));
    }

    let message = OutboxMessage {
        tool: NAME,
        platform: Platform::Whatsapp,
        to: args.to.as_str(),
        fields,
    };
    let message_id = sandbox::record(cx.app, &cx.tenant.id, message).await?;

    Ok(SentMessage {
        message_id,
        to: args.to.as_str().to_owned(),
        sandbox: true,
    })
}
