//! The Instagram tools, acting as the customer's Instagram professional account:
//!
//! - `instagram_publish_photo`: a photo post on the account's feed;
//! - `instagram_send_message`: a direct message to someone who wrote to the account.
//!
//! On a sandbox connection each records what it would have sent in the
//! customer's outbox instead ([`sandbox`](crate::platforms::sandbox)).

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::{InstagramSettings, Platform};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::{BoundedText, live_connection, record_in_outbox};
use super::whatsapp::HttpsUrl;
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::instagram::{
    ACCESS_TOKEN, ContainerPolling, DirectMessage, Photo, default_api_base, publish_photo, send_message,
};
use crate::platforms::{CALL_TIMEOUT, Connection, Endpoint};

/// The name of the tool publishing photos.
pub const PUBLISH_PHOTO: &str = "instagram_publish_photo";

/// The name of the tool sending direct messages.
pub const SEND_MESSAGE: &str = "instagram_send_message";

/// The longest caption Instagram takes, in characters.
pub const MAX_CAPTION_CHARS: usize = 2200;

/// The longest direct message Instagram takes, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 1000;

/// What a sandbox post names as its recipient in the outbox: the feed.
const FEED: &str = "feed";

/// The arguments of `instagram_publish_photo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishPhotoArgs {
    /// The public https URL of the photo, a JPEG; Instagram downloads it from there.
    pub image_url: HttpsUrl,
    /// The caption, up to 2200 characters, hashtags and @mentions included.
    #[serde(default)]
    pub caption: Option<BoundedText<MAX_CAPTION_CHARS>>,
}

/// What `instagram_publish_photo` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPhoto {
    /// The new post's Instagram media id, or `sandbox-…` for a sandbox connection.
    pub media_id: String,
    /// The media container the post was published from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// True when the post was recorded in the outbox of a sandbox connection instead of published.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// `instagram_publish_photo`.
#[derive(Debug)]
pub struct PublishPhoto {
    spec: ToolSpec,
    timeout: Duration,
    polling: ContainerPolling,
}

impl PublishPhoto {
    /// The tool, with its schemas generated from [`PublishPhotoArgs`] and [`PublishedPhoto`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: PUBLISH_PHOTO,
                title: "Publish an Instagram photo",
                description: "Publishes a photo with an optional caption to the feed of the customer's \
                              Instagram professional account. Instagram downloads the image (a JPEG) from \
                              the given public https URL and processes it first; the tool waits up to about \
                              20 seconds for that and reports an error, having published nothing, when it \
                              takes longer or fails. Instagram allows 50 posts per account per 24 hours. \
                              Returns the new post's media id.",
                platform: Some(Platform::Instagram),
                input_schema: schema_of::<PublishPhotoArgs>(),
                output_schema: Some(schema_of::<PublishedPhoto>()),
                annotations: Annotations::SEND,
            },
            timeout: CALL_TIMEOUT,
            polling: ContainerPolling::DEFAULT,
        }
    }

    /// The same tool with a different deadline for each platform call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// The same tool waiting for containers as `polling` says.
    pub fn with_polling(self, polling: ContainerPolling) -> Self {
        Self { polling, ..self }
    }
}

impl Default for PublishPhoto {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for PublishPhoto {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: PublishPhotoArgs = parse_args(args)?;
        let caption = args.caption.as_ref().map(BoundedText::as_str);

        let Some(connection) = live_connection(cx, Platform::Instagram).await? else {
            let mut fields = Map::new();
            fields.insert("imageUrl".into(), json!(args.image_url.as_str()));
            if let Some(caption) = caption {
                fields.insert("caption".into(), json!(caption));
            }
            let media_id = record_in_outbox(cx, PUBLISH_PHOTO, Platform::Instagram, FEED, fields).await?;
            return to_structured(&PublishedPhoto {
                media_id,
                container_id: None,
                sandbox: true,
            });
        };

        let live = Live::open(cx, &connection)?;
        let endpoint = live.endpoint(cx, self.timeout);
        let photo = Photo {
            image_url: args.image_url.as_str(),
            caption,
        };

        let published = publish_photo(
            &endpoint,
            &cx.app.settings.graph_api_version,
            &live.settings.user_id,
            live.access_token,
            &photo,
            self.polling,
        )
        .await?;
        to_structured(&PublishedPhoto {
            media_id: published.media_id,
            container_id: Some(published.container_id),
            sandbox: false,
        })
    }
}

/// The arguments of `instagram_send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessageArgs {
    /// The recipient's Instagram-scoped id (IGSID), as the sender of a received message is named.
    pub recipient_id: Igsid,
    /// The text to send, at most 1000 bytes of UTF-8.
    pub message: DirectText,
}

/// What `instagram_send_message` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentDirectMessage {
    /// The sent message's id, or `sandbox-…` for a sandbox connection.
    pub message_id: String,
    /// The recipient, as given.
    pub recipient_id: String,
    /// True when the message was recorded in the outbox of a sandbox connection instead of sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// An Instagram-scoped user id: 1 to 128 ASCII letters and digits (in
/// practice a long decimal number).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Igsid(String);

impl TryFrom<String> for Igsid {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(value))
        } else {
            Err("expected an Instagram-scoped id (IGSID) such as 1254459154682919")
        }
    }
}

impl JsonSchema for Igsid {
    fn schema_name() -> Cow<'static, str> {
        "Igsid".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[A-Za-z0-9]{1,128}$" })
    }
}

/// A direct message text: not only whitespace, at most
/// [`MAX_MESSAGE_BYTES`] bytes of UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DirectText(String);

impl TryFrom<String> for DirectText {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else if value.len() > MAX_MESSAGE_BYTES {
            Err(format!(
                "is {} bytes of UTF-8; Instagram takes at most {MAX_MESSAGE_BYTES}",
                value.len()
            ))
        } else {
            Ok(Self(value))
        }
    }
}

impl JsonSchema for DirectText {
    fn schema_name() -> Cow<'static, str> {
        "DirectText".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // JSON Schema counts characters; the byte limit is the tighter one
        // for text outside ASCII, and is checked on arrival.
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_BYTES })
    }
}

/// `instagram_send_message`.
#[derive(Debug)]
pub struct SendMessage {
    spec: ToolSpec,
    timeout: Duration,
}

impl SendMessage {
    /// The tool, with its schemas generated from [`SendMessageArgs`] and [`SentDirectMessage`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: SEND_MESSAGE,
                title: "Send an Instagram direct message",
                description: "Sends a text direct message from the customer's Instagram professional \
                              account to a person who has written to it. Instagram accepts it only within \
                              24 hours of that person's last message (error code 10 otherwise). Returns \
                              the sent message's id.",
                platform: Some(Platform::Instagram),
                input_schema: schema_of::<SendMessageArgs>(),
                output_schema: Some(schema_of::<SentDirectMessage>()),
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

        let Some(connection) = live_connection(cx, Platform::Instagram).await? else {
            let mut fields = Map::new();
            fields.insert("message".into(), json!(args.message.0));
            let message_id = record_in_outbox(
                cx,
                SEND_MESSAGE,
                Platform::Instagram,
                &args.recipient_id.0,
                fields,
            )
            .await?;
            return to_structured(&SentDirectMessage {
                message_id,
                recipient_id: args.recipient_id.0,
                sandbox: true,
            });
        };

        let live = Live::open(cx, &connection)?;
        let endpoint = live.endpoint(cx, self.timeout);
        let message = DirectMessage {
            recipient_id: &args.recipient_id.0,
            text: &args.message.0,
        };

        let message_id = send_message(
            &endpoint,
            &cx.app.settings.graph_api_version,
            live.settings.login,
            &live.settings.user_id,
            live.access_token,
            &message,
        )
        .await?;
        to_structured(&SentDirectMessage {
            message_id,
            recipient_id: args.recipient_id.0,
            sandbox: false,
        })
    }
}

/// What a live Instagram call needs besides its content: the account, its
/// token and the API base to call.
struct Live<'a> {
    settings: InstagramSettings,
    access_token: &'a str,
    base_url: String,
}

impl<'a> Live<'a> {
    fn open(cx: &ToolContext<'_>, connection: &'a Connection) -> Result<Self, ToolError> {
        let settings: InstagramSettings = connection.settings()?;
        Ok(Self {
            access_token: connection.secret(ACCESS_TOKEN)?,
            base_url: base_url(cx, connection, &settings),
            settings,
        })
    }

    /// The endpoint of a call with `timeout` as its deadline.
    fn endpoint<'b>(&'b self, cx: &'b ToolContext<'_>, timeout: Duration) -> Endpoint<'b> {
        Endpoint {
            http: &cx.app.http,
            base_url: &self.base_url,
            timeout,
        }
    }
}

/// The API base to call: an `apiBase` the connection or the deployment
/// configures, else the host of the connection's login flow.
fn base_url(cx: &ToolContext<'_>, connection: &Connection, settings: &InstagramSettings) -> String {
    let configured = connection.credentials.api_base.is_some()
        || cx.app.settings.api_bases.contains_key(&Platform::Instagram);
    if configured {
        connection.base_url.clone()
    } else {
        default_api_base(settings.login).to_owned()
    }
}

#[cfg(test)]
mod tests;
