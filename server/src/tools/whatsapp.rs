//! The WhatsApp tools, each sending from the customer's WhatsApp number:
//!
//! - `whatsapp_send_message`: a text message (inside the 24-hour window);
//! - `whatsapp_send_template`: an approved template, the one kind of
//!   message WhatsApp delivers outside that window;
//! - `whatsapp_send_media`: an image, audio, video, document or sticker by link;
//! - `whatsapp_mark_read`: a read receipt for a received message.
//!
//! On a sandbox connection each records what it would have sent in the
//! customer's outbox instead ([`sandbox`](crate::platforms::sandbox)).

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::{Platform, WhatsappSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::{BoundedText, live_connection, record_in_outbox};
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::whatsapp::{
    ACCESS_TOKEN, MediaKind, MediaMessage, TemplateMessage, TextMessage, mark_read, send_media,
    send_template, send_text,
};
use crate::platforms::{CALL_TIMEOUT, Connection, Endpoint};

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
pub type MessageText = BoundedText<MAX_MESSAGE_CHARS>;

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
                annotations: Annotations::SEND,
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
        let reply_to = args.reply_to.as_ref().map(|id| id.0.as_str());

        let Some(connection) = live_connection(cx, Platform::Whatsapp).await? else {
            let mut fields = Map::new();
            fields.insert("message".into(), json!(args.message.as_str()));
            fields.insert("previewUrl".into(), json!(args.preview_url));
            if let Some(reply_to) = reply_to {
                fields.insert("replyTo".into(), json!(reply_to));
            }
            return record_sent(cx, NAME, &args.to, fields).await;
        };

        let live = Live::open(cx, &connection, CALL_TIMEOUT)?;
        let message = TextMessage {
            to: args.to.as_str(),
            body: args.message.as_str(),
            reply_to,
            preview_url: args.preview_url,
        };
        let message_id = send_text(
            &live.endpoint,
            live.graph_version,
            &live.phone_number_id,
            live.access_token,
            &message,
        )
        .await?;
        sent(message_id, &args.to, false)
    }
}

/// What a live WhatsApp call needs besides its message: where to send, as whom.
struct Live<'a> {
    endpoint: Endpoint<'a>,
    graph_version: &'a str,
    phone_number_id: String,
    access_token: &'a str,
}

impl<'a> Live<'a> {
    fn open(
        cx: &'a ToolContext<'_>,
        connection: &'a Connection,
        timeout: Duration,
    ) -> Result<Self, ToolError> {
        let settings: WhatsappSettings = connection.settings()?;
        Ok(Self {
            endpoint: Endpoint {
                timeout,
                ..connection.endpoint(cx.app)
            },
            graph_version: &cx.app.settings.graph_api_version,
            phone_number_id: settings.phone_number_id,
            access_token: connection.secret(ACCESS_TOKEN)?,
        })
    }
}

/// An `https` URL of at most 2048 characters, with a host and no user
/// name or password: a link a platform fetches media from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpsUrl(String);

impl HttpsUrl {
    /// The URL, as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HttpsUrl {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        const EXPECTED: &str = "expected a public https:// URL, e.g. https://example.com/picture.jpg";
        if value.len() > 2048 {
            return Err("is longer than 2048 characters");
        }
        let url = reqwest::Url::parse(&value).map_err(|_| EXPECTED)?;
        let plain = url.username().is_empty() && url.password().is_none();
        if url.scheme() == "https" && url.host_str().is_some_and(|host| !host.is_empty()) && plain {
            Ok(Self(value))
        } else {
            Err(EXPECTED)
        }
    }
}

impl JsonSchema for HttpsUrl {
    fn schema_name() -> Cow<'static, str> {
        "HttpsUrl".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "uri", "pattern": "^https://", "maxLength": 2048 })
    }
}

/// The name of the tool sending templates.
pub const SEND_TEMPLATE: &str = "whatsapp_send_template";

/// The arguments of `whatsapp_send_template`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendTemplateArgs {
    /// The recipient's phone number in E.164 format without the leading `+`, e.g. `15551234567`.
    pub to: PhoneNumber,
    /// The name of a template approved for the customer's WhatsApp Business Account, e.g. `order_update`.
    pub name: TemplateName,
    /// The language of the approved template to use, e.g. `en_US` or `de`.
    pub language_code: LanguageCode,
    /// The values of the template body's variables `{{1}}`, `{{2}}`, …, in order.
    #[serde(default)]
    pub body_parameters: Vec<BoundedText<1024>>,
    /// Further components in the Graph API's own shape, for header and button
    /// variables, e.g. `{"type": "header", "parameters": [{"type": "image",
    /// "image": {"link": "https://…"}}]}` or `{"type": "button", "sub_type":
    /// "url", "index": "0", "parameters": [{"type": "text", "text": "A12"}]}`.
    #[serde(default)]
    pub components: Vec<TemplateComponent>,
}

/// A template name: 1 to 512 lowercase letters, digits and underscores.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TemplateName(String);

impl TryFrom<String> for TemplateName {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let allowed = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if allowed && (1..=512).contains(&value.len()) {
            Ok(Self(value))
        } else {
            Err("expected a template name of lowercase letters, digits and underscores, e.g. order_update")
        }
    }
}

impl JsonSchema for TemplateName {
    fn schema_name() -> Cow<'static, str> {
        "TemplateName".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[a-z0-9_]{1,512}$" })
    }
}

/// A template language code: a language, optionally with a region or
/// script, e.g. `en`, `en_US`, `zh_CN`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LanguageCode(String);

impl TryFrom<String> for LanguageCode {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let (language, region) = match value.split_once('_') {
            Some((language, region)) => (language, Some(region)),
            None => (value.as_str(), None),
        };
        let language_ok =
            (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = region.is_none_or(|region| {
            (2..=4).contains(&region.len()) && region.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if language_ok && region_ok {
            Ok(Self(value))
        } else {
            Err("expected a language code such as en, en_US or pt_BR")
        }
    }
}

impl JsonSchema for LanguageCode {
    fn schema_name() -> Cow<'static, str> {
        "LanguageCode".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$" })
    }
}

/// A template component as the Graph API takes it: an object with a string
/// `type`, and `parameters` a list of objects with a string `type` when present.
/// Its other members are passed on as given.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct TemplateComponent(Map<String, Value>);

impl TemplateComponent {
    /// The component's `type` (`header`, `body`, `button`, …).
    fn kind(&self) -> &str {
        self.0.get("type").and_then(Value::as_str).unwrap_or_default()
    }
}

impl TryFrom<Map<String, Value>> for TemplateComponent {
    type Error = &'static str;

    fn try_from(value: Map<String, Value>) -> Result<Self, Self::Error> {
        let typed = |object: &Map<String, Value>| {
            object
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
        };
        if !typed(&value) {
            return Err("a component needs a string `type`, e.g. \"header\", \"body\" or \"button\"");
        }
        let parameters_ok = match value.get("parameters") {
            None => true,
            Some(Value::Array(parameters)) => parameters.iter().all(|p| p.as_object().is_some_and(typed)),
            Some(_) => false,
        };
        if parameters_ok {
            Ok(Self(value))
        } else {
            Err("`parameters` must be a list of objects, each with a string `type`")
        }
    }
}

impl JsonSchema for TemplateComponent {
    fn schema_name() -> Cow<'static, str> {
        "TemplateComponent".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": { "type": "string" },
                "parameters": {
                    "type": "array",
                    "items": { "type": "object", "required": ["type"], "properties": { "type": { "type": "string" } } }
                }
            }
        })
    }
}

impl SendTemplateArgs {
    /// The components to send: those given, then a body component of the
    /// body parameters.
    ///
    /// # Errors
    ///
    /// [`ToolError::InvalidArgument`] naming `bodyParameters` when a body
    /// component is given too: the body's variables go in one place.
    fn components(&self) -> Result<Vec<Value>, ToolError> {
        let mut components: Vec<Value> = self
            .components
            .iter()
            .map(|component| Value::Object(component.0.clone()))
            .collect();
        if self.body_parameters.is_empty() {
            return Ok(components);
        }

        if self.components.iter().any(|component| component.kind() == "body") {
            return Err(ToolError::InvalidArgument {
                field: "bodyParameters".to_owned(),
                message: "give the body's variables either here or as a `body` component, not both"
                    .to_owned(),
            });
        }
        let parameters: Vec<Value> = self
            .body_parameters
            .iter()
            .map(|text| json!({ "type": "text", "text": text.as_str() }))
            .collect();
        components.push(json!({ "type": "body", "parameters": parameters }));
        Ok(components)
    }
}

/// `whatsapp_send_template`.
#[derive(Debug)]
pub struct SendTemplate {
    spec: ToolSpec,
    timeout: Duration,
}

impl SendTemplate {
    /// The tool, with its schemas generated from [`SendTemplateArgs`] and [`SentMessage`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: SEND_TEMPLATE,
                title: "Send a WhatsApp template message",
                description: "Sends a message template approved for the customer's WhatsApp Business Account. \
                              Templates are the only messages WhatsApp delivers more than 24 hours after the \
                              recipient's last message. Fill the body's variables with `bodyParameters`; header \
                              and button variables go in `components`, in the Graph API's shape. \
                              Returns the sent message's id.",
                platform: Some(Platform::Whatsapp),
                input_schema: schema_of::<SendTemplateArgs>(),
                output_schema: Some(schema_of::<SentMessage>()),
                annotations: Annotations::SEND,
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for the platform call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for SendTemplate {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for SendTemplate {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: SendTemplateArgs = parse_args(args)?;
        let components = args.components()?;

        let Some(connection) = live_connection(cx, Platform::Whatsapp).await? else {
            let mut fields = Map::new();
            fields.insert("template".into(), json!(args.name.0));
            fields.insert("languageCode".into(), json!(args.language_code.0));
            fields.insert("components".into(), Value::Array(components));
            return record_sent(cx, SEND_TEMPLATE, &args.to, fields).await;
        };

        let live = Live::open(cx, &connection, self.timeout)?;
        let message = TemplateMessage {
            to: args.to.as_str(),
            name: &args.name.0,
            language_code: &args.language_code.0,
            components: &components,
        };
        let message_id = send_template(
            &live.endpoint,
            live.graph_version,
            &live.phone_number_id,
            live.access_token,
            &message,
        )
        .await?;
        sent(message_id, &args.to, false)
    }
}

/// Records a send in the outbox and answers as the send would have.
async fn record_sent(
    cx: &ToolContext<'_>,
    tool: &'static str,
    to: &PhoneNumber,
    fields: Map<String, Value>,
) -> Result<Value, ToolError> {
    let message_id = record_in_outbox(cx, tool, Platform::Whatsapp, to.as_str(), fields).await?;
    sent(message_id, to, true)
}

/// The answer of a send to `to`: sent live, or recorded in the outbox.
fn sent(message_id: String, to: &PhoneNumber, sandbox: bool) -> Result<Value, ToolError> {
    to_structured(&SentMessage {
        message_id,
        to: to.as_str().to_owned(),
        sandbox,
    })
}

/// The name of the tool sending media.
pub const SEND_MEDIA: &str = "whatsapp_send_media";

/// The arguments of `whatsapp_send_media`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMediaArgs {
    /// The recipient's phone number in E.164 format without the leading `+`, e.g. `15551234567`.
    pub to: PhoneNumber,
    /// What the media is: `image` (JPEG, PNG), `audio`, `video` (MP4), `document` (any file) or `sticker` (WebP).
    pub kind: MediaKindArg,
    /// The public https URL WhatsApp downloads the media from.
    pub link: HttpsUrl,
    /// A caption shown under an image, video or document; not for audio or stickers.
    #[serde(default)]
    pub caption: Option<BoundedText<1024>>,
    /// The file name shown for a document, e.g. `invoice-42.pdf`; only for documents.
    #[serde(default)]
    pub filename: Option<FileName>,
    /// The id (wamid) of a received message to reply to.
    #[serde(default)]
    pub reply_to: Option<MessageId>,
}

/// The `kind` argument of `whatsapp_send_media`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKindArg {
    /// A picture.
    Image,
    /// An audio file.
    Audio,
    /// A video.
    Video,
    /// A file shown with its name.
    Document,
    /// A sticker.
    Sticker,
}

impl From<MediaKindArg> for MediaKind {
    fn from(kind: MediaKindArg) -> Self {
        match kind {
            MediaKindArg::Image => MediaKind::Image,
            MediaKindArg::Audio => MediaKind::Audio,
            MediaKindArg::Video => MediaKind::Video,
            MediaKindArg::Document => MediaKind::Document,
            MediaKindArg::Sticker => MediaKind::Sticker,
        }
    }
}

/// A document's file name: 1 to 240 characters, no control characters or slashes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FileName(String);

impl TryFrom<String> for FileName {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let clean = !value.chars().any(|c| c.is_control() || c == '/' || c == '\\');
        if clean && !value.trim().is_empty() && value.chars().count() <= 240 {
            Ok(Self(value))
        } else {
            Err("expected a file name of 1 to 240 characters without slashes, e.g. invoice-42.pdf")
        }
    }
}

impl JsonSchema for FileName {
    fn schema_name() -> Cow<'static, str> {
        "FileName".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": 240 })
    }
}

impl SendMediaArgs {
    /// Checks what depends on the kind: captions only where WhatsApp shows
    /// them, a file name only for documents.
    fn check_kind(&self) -> Result<MediaKind, ToolError> {
        let kind = MediaKind::from(self.kind);
        if self.caption.is_some() && !kind.takes_caption() {
            return Err(ToolError::InvalidArgument {
                field: "caption".to_owned(),
                message: format!("WhatsApp shows no caption with {}; leave it out", kind.as_str()),
            });
        }
        if self.filename.is_some() && kind != MediaKind::Document {
            return Err(ToolError::InvalidArgument {
                field: "filename".to_owned(),
                message: "only a document has a file name".to_owned(),
            });
        }
        Ok(kind)
    }
}

/// `whatsapp_send_media`.
#[derive(Debug)]
pub struct SendMedia {
    spec: ToolSpec,
    timeout: Duration,
}

impl SendMedia {
    /// The tool, with its schemas generated from [`SendMediaArgs`] and [`SentMessage`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: SEND_MEDIA,
                title: "Send a WhatsApp media message",
                description: "Sends an image, audio file, video, document or sticker from the customer's \
                              WhatsApp Business number. WhatsApp downloads the media from the given public \
                              https link after accepting the message, so a link it cannot fetch is reported \
                              later, as a failed delivery. Like text, media is delivered only within 24 hours \
                              of the recipient's last message. Returns the sent message's id.",
                platform: Some(Platform::Whatsapp),
                input_schema: schema_of::<SendMediaArgs>(),
                output_schema: Some(schema_of::<SentMessage>()),
                annotations: Annotations::SEND,
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for the platform call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for SendMedia {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for SendMedia {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: SendMediaArgs = parse_args(args)?;
        let kind = args.check_kind()?;
        let caption = args.caption.as_ref().map(BoundedText::as_str);
        let filename = args.filename.as_ref().map(|name| name.0.as_str());
        let reply_to = args.reply_to.as_ref().map(|id| id.0.as_str());

        let Some(connection) = live_connection(cx, Platform::Whatsapp).await? else {
            let mut fields = Map::new();
            fields.insert("kind".into(), json!(kind.as_str()));
            fields.insert("link".into(), json!(args.link.as_str()));
            for (name, value) in [
                ("caption", caption),
                ("filename", filename),
                ("replyTo", reply_to),
            ] {
                if let Some(value) = value {
                    fields.insert(name.into(), json!(value));
                }
            }
            return record_sent(cx, SEND_MEDIA, &args.to, fields).await;
        };

        let live = Live::open(cx, &connection, self.timeout)?;
        let message = MediaMessage {
            to: args.to.as_str(),
            kind,
            link: args.link.as_str(),
            caption,
            filename,
            reply_to,
        };
        let message_id = send_media(
            &live.endpoint,
            live.graph_version,
            &live.phone_number_id,
            live.access_token,
            &message,
        )
        .await?;
        sent(message_id, &args.to, false)
    }
}

/// The name of the tool marking messages read.
pub const MARK_READ: &str = "whatsapp_mark_read";

/// The arguments of `whatsapp_mark_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkReadArgs {
    /// The id (wamid) of the received message to mark as read, as the inbox shows it.
    pub message_id: MessageId,
}

/// What `whatsapp_mark_read` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    /// The message marked as read, as given.
    pub message_id: String,
    /// Always true: the message (and every earlier one of the conversation) is marked read.
    pub read: bool,
    /// The outbox entry (`sandbox-…`) when the receipt was recorded instead of sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_id: Option<String>,
    /// True when the receipt was recorded in the outbox of a sandbox connection instead of sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// `whatsapp_mark_read`.
#[derive(Debug)]
pub struct MarkRead {
    spec: ToolSpec,
    timeout: Duration,
}

impl MarkRead {
    /// The tool, with its schemas generated from [`MarkReadArgs`] and [`ReadReceipt`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: MARK_READ,
                title: "Mark a WhatsApp message as read",
                description: "Marks a received WhatsApp message as read, so its sender sees blue ticks; \
                              WhatsApp also marks every earlier message of the conversation read. Marking \
                              a message read again has no further effect.",
                platform: Some(Platform::Whatsapp),
                input_schema: schema_of::<MarkReadArgs>(),
                output_schema: Some(schema_of::<ReadReceipt>()),
                annotations: Annotations {
                    read_only: false,
                    destructive: false,
                    idempotent: true,
                    open_world: true,
                },
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for the platform call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for MarkRead {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for MarkRead {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: MarkReadArgs = parse_args(args)?;
        let message_id = args.message_id.0;

        let Some(connection) = live_connection(cx, Platform::Whatsapp).await? else {
            // A read receipt names a message, not a recipient: the outbox
            // entry's `to` is the message's id.
            let mut fields = Map::new();
            fields.insert("status".into(), json!("read"));
            let outbox_id = record_in_outbox(cx, MARK_READ, Platform::Whatsapp, &message_id, fields).await?;
            return to_structured(&ReadReceipt {
                message_id,
                read: true,
                outbox_id: Some(outbox_id),
                sandbox: true,
            });
        };

        let live = Live::open(cx, &connection, self.timeout)?;
        mark_read(
            &live.endpoint,
            live.graph_version,
            &live.phone_number_id,
            live.access_token,
            &message_id,
        )
        .await?;
        to_structured(&ReadReceipt {
            message_id,
            read: true,
            outbox_id: None,
            sandbox: false,
        })
    }
}

#[cfg(test)]
mod tests;
