//! `telegram_send_message`: a text message from the customer's Telegram bot.
//!
//! On a sandbox connection the message is recorded in the customer's
//! outbox instead ([`sandbox`](crate::platforms::sandbox)).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::Platform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::{BoundedText, live_connection, record_in_outbox};
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::CALL_TIMEOUT;
use crate::platforms::telegram::{BOT_TOKEN, ChatId, ParseMode, TextMessage, send_message};

/// The tool's name.
pub const NAME: &str = "telegram_send_message";

/// The longest text Telegram accepts, in characters.
///
/// Telegram counts after entity parsing, so with a parse mode a text whose
/// markup takes it past 4096 characters would still be accepted by
/// Telegram; it is refused here. The limit is applied to the text as given
/// because that is the only count Hermes can make without parsing
/// Telegram's markup dialects.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The arguments of `telegram_send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessageArgs {
    /// The chat to send to: its numeric id (negative for groups and
    /// channels, e.g. `-1001234567890`), or a public channel's username with
    /// the `@`, e.g. `@hermes_news`. The bot must be a member of the chat.
    pub chat_id: ChatTarget,
    /// The text, 1 to 4096 characters.
    pub text: BoundedText<MAX_TEXT_CHARS>,
    /// How Telegram formats the text: `MarkdownV2`, `HTML`, or `none` for
    /// plain text (the default). MarkdownV2 requires escaping characters
    /// such as `.`, `-` and `!` outside markup.
    #[serde(default)]
    pub parse_mode: ParseModeArg,
    /// The id of a message in the same chat to reply to.
    #[serde(default)]
    pub reply_to_message_id: Option<MessageId>,
    /// Sends the message silently: recipients are notified without sound. Defaults to false.
    #[serde(default)]
    pub disable_notification: bool,
}

/// How the text is formatted: Telegram's MarkdownV2, its HTML subset, or
/// plain text. The variants carry no doc comments so that the schema is a
/// plain `enum` of the three names, inlined; the field documents them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(inline)]
pub enum ParseModeArg {
    MarkdownV2,
    #[serde(rename = "HTML")]
    Html,
    #[default]
    #[serde(rename = "none")]
    None,
}

impl ParseModeArg {
    fn to_platform(self) -> Option<ParseMode> {
        match self {
            ParseModeArg::MarkdownV2 => Some(ParseMode::MarkdownV2),
            ParseModeArg::Html => Some(ParseMode::Html),
            ParseModeArg::None => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ParseModeArg::MarkdownV2 => "MarkdownV2",
            ParseModeArg::Html => "HTML",
            ParseModeArg::None => "none",
        }
    }
}

/// What `telegram_send_message` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    /// The sent message's id in its chat, or `sandbox-…` for a sandbox connection.
    pub message_id: String,
    /// The chat, as given.
    pub chat_id: String,
    /// True when the message was recorded in the outbox of a sandbox connection instead of sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// A Telegram chat: a non-zero numeric id, or a public channel's
/// `@username` (a letter, then 4 to 31 letters, digits or underscores).
///
/// Accepted as a JSON integer or string; a string of digits is an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatTarget {
    /// A numeric chat id.
    Id(i64),
    /// A channel username, with the `@`.
    Username(String),
}

const CHAT_EXPECTED: &str =
    "a chat id (an integer such as -1001234567890) or a public channel's username such as @hermes_news";

impl ChatTarget {
    fn from_id(id: i64) -> Result<Self, String> {
        if id == 0 {
            Err(format!("0 is not a chat id; expected {CHAT_EXPECTED}"))
        } else {
            Ok(Self::Id(id))
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        if let Some(name) = text.strip_prefix('@') {
            let mut chars = name.chars();
            let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
            let rest_is_word = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            return if first_is_letter && rest_is_word && (5..=32).contains(&name.len()) {
                Ok(Self::Username(text.to_owned()))
            } else {
                Err(format!(
                    "`{text}` is not a channel username; expected {CHAT_EXPECTED}"
                ))
            };
        }
        match text.parse::<i64>() {
            Ok(id) => Self::from_id(id),
            Err(_) => Err(format!("expected {CHAT_EXPECTED}")),
        }
    }

    fn as_chat_id(&self) -> ChatId<'_> {
        match self {
            Self::Id(id) => ChatId::Id(*id),
            Self::Username(name) => ChatId::Username(name),
        }
    }
}

impl fmt::Display for ChatTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Username(name) => f.write_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for ChatTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChatVisitor;

        impl Visitor<'_> for ChatVisitor {
            type Value = ChatTarget;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(CHAT_EXPECTED)
            }

            fn visit_i64<E: de::Error>(self, id: i64) -> Result<ChatTarget, E> {
                ChatTarget::from_id(id).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, id: u64) -> Result<ChatTarget, E> {
                let id = i64::try_from(id).map_err(|_| E::custom(format!("expected {CHAT_EXPECTED}")))?;
                ChatTarget::from_id(id).map_err(E::custom)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ChatTarget, E> {
                ChatTarget::parse(text).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(ChatVisitor)
    }
}

impl JsonSchema for ChatTarget {
    fn schema_name() -> Cow<'static, str> {
        "TelegramChat".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["integer", "string"],
            "pattern": "^(@[A-Za-z][A-Za-z0-9_]{4,31}|-?[1-9][0-9]{0,18})$"
        })
    }
}

/// The id of a message in a chat: a positive integer, given as a JSON
/// integer or a string of digits (as this tool answers it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageId(i64);

const MESSAGE_ID_EXPECTED: &str = "a message id, a positive integer such as 42";

impl MessageId {
    fn new(id: i64) -> Result<Self, String> {
        if id > 0 {
            Ok(Self(id))
        } else {
            Err(format!(
                "{id} is not a message id; expected {MESSAGE_ID_EXPECTED}"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageIdVisitor;

        impl Visitor<'_> for MessageIdVisitor {
            type Value = MessageId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(MESSAGE_ID_EXPECTED)
            }

            fn visit_i64<E: de::Error>(self, id: i64) -> Result<MessageId, E> {
                MessageId::new(id).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, id: u64) -> Result<MessageId, E> {
                let id =
                    i64::try_from(id).map_err(|_| E::custom(format!("expected {MESSAGE_ID_EXPECTED}")))?;
                MessageId::new(id).map_err(E::custom)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<MessageId, E> {
                let id = text
                    .parse::<i64>()
                    .map_err(|_| E::custom(format!("expected {MESSAGE_ID_EXPECTED}")))?;
                MessageId::new(id).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(MessageIdVisitor)
    }
}

impl JsonSchema for MessageId {
    fn schema_name() -> Cow<'static, str> {
        "TelegramMessageId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["integer", "string"], "minimum": 1, "pattern": "^[1-9][0-9]{0,18}$" })
    }
}

/// `telegram_send_message`.
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
                title: "Send a Telegram message",
                description: "Sends a text message from the customer's Telegram bot to a chat, group or \
                              channel the bot is a member of. A bot cannot start a private chat: the user \
                              must have messaged the bot first. Returns the sent message's id, which \
                              `replyToMessageId` takes to reply to it.",
                platform: Some(Platform::Telegram),
                input_schema: schema_of::<SendMessageArgs>(),
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

        let connection = live_connection(cx, Platform::Telegram).await?;
        let Some(connection) = connection else {
            return record_sent(cx, &args).await;
        };

        let endpoint = connection.endpoint_with_timeout(cx.app, self.timeout);
        let message = TextMessage {
            chat_id: args.chat_id.as_chat_id(),
            text: args.text.as_str(),
            parse_mode: args.parse_mode.to_platform(),
            reply_to: args.reply_to_message_id.map(|id| id.0),
            disable_notification: args.disable_notification,
        };
        let message_id = send_message(&endpoint, connection.secret(BOT_TOKEN)?, &message).await?;

        to_structured(&SentMessage {
            message_id: message_id.to_string(),
            chat_id: args.chat_id.to_string(),
            sandbox: false,
        })
    }
}

/// Records the message in the customer's outbox and answers as a send would.
async fn record_sent(cx: &ToolContext<'_>, args: &SendMessageArgs) -> Result<Value, ToolError> {
    let chat_id = args.chat_id.to_string();
    let mut fields = Map::new();
    fields.insert("text".into(), json!(args.text.as_str()));
    fields.insert("parseMode".into(), json!(args.parse_mode.as_str()));
    fields.insert("disableNotification".into(), json!(args.disable_notification));
    if let Some(reply_to) = args.reply_to_message_id {
        fields.insert("replyToMessageId".into(), json!(reply_to.0));
    }

    let message_id = record_in_outbox(cx, NAME, Platform::Telegram, &chat_id, fields).await?;

    to_structured(&SentMessage {
        message_id,
        chat_id,
        sandbox: true,
    })
}

#[cfg(test)]
mod tests;
