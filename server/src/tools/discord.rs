//! `discord_send_message`: a message from the customer's Discord bot in a
//! channel.
//!
//! On a sandbox connection the message is recorded in the customer's
//! outbox instead ([`sandbox`](crate::platforms::sandbox)).

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::{DiscordSettings, Platform};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::{BoundedText, live_connection, record_in_outbox};
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::discord::{BOT_TOKEN, ChannelMessage, create_message};
use crate::platforms::{CALL_TIMEOUT, Connection, load_connection};

/// The tool's name.
pub const NAME: &str = "discord_send_message";

/// The longest message content Discord accepts, in characters.
pub const MAX_CONTENT_CHARS: usize = 2000;

/// The field a call names its channel in.
const CHANNEL_FIELD: &str = "channelId";

/// The arguments of `discord_send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessageArgs {
    /// The id of the channel to post in, as a string, e.g. `1139472019386564628`.
    /// Defaults to the connection's default channel, when it names one.
    #[serde(default)]
    pub channel_id: Option<Snowflake>,
    /// The message, 1 to 2000 characters. Discord markdown applies.
    pub content: BoundedText<MAX_CONTENT_CHARS>,
    /// The id of a message in the same channel to reply to.
    #[serde(default)]
    pub reply_to: Option<Snowflake>,
}

/// What `discord_send_message` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    /// The sent message's id, or `sandbox-…` for a sandbox connection.
    pub message_id: String,
    /// The channel it was posted in.
    pub channel_id: String,
    /// True when the message was recorded in the outbox of a sandbox connection instead of sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// A Discord id (a snowflake): an unsigned 64-bit integer written as a
/// string of 1 to 20 digits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Snowflake(String);

impl Snowflake {
    /// The id, as digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Snowflake {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let digits = value.bytes().all(|b| b.is_ascii_digit());
        if digits && (1..=20).contains(&value.len()) && value.parse::<u64>().is_ok() {
            Ok(Self(value))
        } else {
            Err("expected a Discord id: a string of digits such as \"1139472019386564628\"")
        }
    }
}

impl JsonSchema for Snowflake {
    fn schema_name() -> Cow<'static, str> {
        "Snowflake".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[0-9]{1,20}$" })
    }
}

/// `discord_send_message`.
#[derive(Debug)]
pub struct SendMessage {
    spec: ToolSpec,
    timeout: Duration,
}

impl SendMessage {
    /// The tool, with its schemas generated from [`SendMessageArgs`] and [`SentMessage`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: NAME,
                title: "Send a Discord message",
                description: "Posts a message from the customer's Discord bot in a server channel the bot \
                              can send messages in (a reply also needs it to read the channel's history). \
                              Without `channelId` the message goes to the connection's default channel. \
                              Returns the message's id, which `replyTo` takes to reply to it.",
                platform: Some(Platform::Discord),
                input_schema: schema_of::<SendMessageArgs>(),
                output_schema: Some(schema_of::<SentMessage>()),
                annotations: Annotations {
                    read_only: false,
                    destructive: false,
                    // Each call carries a fresh nonce: Discord deduplicates
                    // Hermes' own retry, not a second call with the same arguments.
                    idempotent: false,
                    open_world: true,
                },
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for each platform call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
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

        let live = live_connection(cx, Platform::Discord).await?;
        // Without a channel in the call, the connection's settings name it,
        // and a sandbox's settings are stored too.
        let channel_id = match (&args.channel_id, &live) {
            (Some(channel_id), _) => channel_id.clone(),
            (None, Some(connection)) => default_channel(connection)?,
            (None, None) => {
                default_channel(&load_connection(cx.app, &cx.tenant.id, Platform::Discord).await?)?
            }
        };
        let Some(connection) = live else {
            return record_sent(cx, &args, &channel_id).await;
        };

        let endpoint = connection.endpoint_with_timeout(cx.app, self.timeout);
        let message = ChannelMessage {
            channel_id: channel_id.as_str(),
            content: args.content.as_str(),
            reply_to: args.reply_to.as_ref().map(Snowflake::as_str),
        };
        let message_id = create_message(&endpoint, connection.secret(BOT_TOKEN)?, &message).await?;

        to_structured(&SentMessage {
            message_id,
            channel_id: channel_id.0,
            sandbox: false,
        })
    }
}

/// The connection's default channel.
///
/// # Errors
///
/// [`ToolError::InvalidArgument`] on `channelId` when the connection names
/// no default channel, or one that is not a Discord id: the call must name
/// the channel then.
fn default_channel(connection: &Connection) -> Result<Snowflake, ToolError> {
    let settings: DiscordSettings = connection.settings()?;
    let Some(default) = settings.default_channel_id else {
        return Err(ToolError::InvalidArgument {
            field: CHANNEL_FIELD.to_owned(),
            message: "required: the Discord connection names no default channel".to_owned(),
        });
    };
    Snowflake::try_from(default).map_err(|_| ToolError::InvalidArgument {
        field: CHANNEL_FIELD.to_owned(),
        message: "required: the Discord connection's default channel is not a Discord id".to_owned(),
    })
}

/// Records the message in the customer's outbox and answers as a send would.
async fn record_sent(
    cx: &ToolContext<'_>,
    args: &SendMessageArgs,
    channel_id: &Snowflake,
) -> Result<Value, ToolError> {
    let mut fields = Map::new();
    fields.insert("content".into(), json!(args.content.as_str()));
    if let Some(reply_to) = &args.reply_to {
        fields.insert("replyTo".into(), json!(reply_to.as_str()));
    }

    let message_id = record_in_outbox(cx, NAME, Platform::Discord, channel_id.as_str(), fields).await?;

    to_structured(&SentMessage {
        message_id,
        channel_id: channel_id.as_str().to_owned(),
        sandbox: true,
    })
}

#[cfg(test)]
mod tests;
