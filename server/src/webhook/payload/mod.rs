//! Webhook bodies as typed events: pure functions from the bytes a platform
//! sent to the events that go into a customer's inbox.
//!
//! Nothing here does I/O or reads a clock, so every parser is tested on its
//! own and fuzzed (`server/tests/webhook_fuzz.rs`). Each platform module has
//! the same shape: `parse(body) -> Result<…, PayloadError>` for a verified
//! body, and, for Meta's platforms, `accounts(body)`, which reads only the
//! routing ids of a body that is not verified yet (to choose the secret to
//! verify it with) and never fails.
//!
//! An event is a [`ParsedEvent`]: the account it came to (the routing key),
//! a dedup key stable across the platform's redeliveries, the message a
//! delivery status is about, and the [`InboxEvent`] document stored.
//!
//! Error messages name the JSON path at fault and what was expected, never
//! a value from the body: bodies hold people's messages.

use hermes_crds::Platform;
use hermes_state::store::StatusOf;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub mod instagram;
pub mod telegram;
pub mod whatsapp;

/// Why a webhook body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not JSON.
    #[error("the body is not JSON: {category} at line {line}, column {column}")]
    NotJson {
        /// What kind of fault: a syntax error, truncated input, …
        category: &'static str,
        /// The line of the fault.
        line: usize,
        /// The column of the fault.
        column: usize,
    },
    /// The body's `object` is not the one this endpoint takes.
    #[error("`object` must be {expected:?}")]
    UnexpectedObject {
        /// The object this endpoint takes.
        expected: &'static str,
    },
    /// A field is missing or has the wrong type.
    #[error("{path}: {reason}")]
    Shape {
        /// The JSON path of the fault, e.g. `entry[0].changes[1].value.metadata`.
        path: String,
        /// What was expected there.
        reason: String,
    },
}

/// One event of a webhook, ready for its customer's inbox.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedEvent {
    /// The account it came to: a WhatsApp phone number id, an Instagram
    /// account id, a Telegram connection id. The customer owning the route
    /// of this id receives the event.
    pub account: String,
    /// Identifies the event across redeliveries, e.g. `whatsapp:message:<wamid>`.
    pub dedup_key: String,
    /// For a delivery status: the sent message it is about.
    pub status_of: Option<StatusOf>,
    /// The document stored.
    pub event: InboxEvent,
}

/// What a Meta webhook (WhatsApp, Instagram) carried.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetaBatch {
    /// The events to store, in the order of the body.
    pub events: Vec<ParsedEvent>,
    /// Parts of the body that are not stored: echoes of the customer's own
    /// sends, and change fields Hermes does not keep (template and account
    /// updates, say).
    pub skipped: usize,
}

/// An event as stored in the inbox and delivered to the customer: a few
/// fields common to every platform, and the platform's own object as `raw`.
///
/// Serialized as camelCase JSON, without the fields that are `None`:
///
/// ```json
/// {"type":"message","platform":"whatsapp","account":"106540352242922",
///  "messageId":"wamid.HBgL…","from":"16505551234","contactName":"Sheena",
///  "timestamp":"1749416383","messageType":"text","text":"hi","raw":{…}}
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct InboxEvent {
    /// `message`, `status`, or the platform's name for other events
    /// (`reaction`, `read`, `postback`, `callback_query`, `comments`, …).
    pub kind: String,
    /// The platform.
    pub platform: Platform,
    /// The account it came to (see [`ParsedEvent::account`]).
    pub account: String,
    /// The message id: the inbound message's, or, for a status, the sent
    /// message's (the id the send tool returned).
    pub message_id: Option<String>,
    /// The sender: a phone number (WhatsApp), an Instagram-scoped id, a Telegram user id.
    pub from: Option<String>,
    /// The sender's business-scoped user id (WhatsApp BSUID), when given.
    pub from_user_id: Option<String>,
    /// The sender's profile name, when given.
    pub contact_name: Option<String>,
    /// The chat the message belongs to (Telegram).
    pub chat_id: Option<String>,
    /// The platform's timestamp, as it sent it (a string of seconds on
    /// WhatsApp, milliseconds on Instagram, seconds on Telegram).
    pub timestamp: Option<Value>,
    /// The message's type, e.g. `text`, `image`, `reaction`.
    pub message_type: Option<String>,
    /// The message's text (or media caption), when it has one.
    pub text: Option<String>,
    /// The id of the message this one replies to.
    pub reply_to: Option<String>,
    /// A delivery status: `sent`, `delivered`, `read`, `failed`, ….
    pub status: Option<String>,
    /// Who a status is about (the recipient of the sent message).
    pub recipient_id: Option<String>,
    /// The recipient's business-scoped user id, when given.
    pub recipient_user_id: Option<String>,
    /// The platform's object this event was read from, unchanged.
    pub raw: Value,
}

impl InboxEvent {
    /// A new event with only its kind, platform, account and raw object set.
    pub fn new(kind: impl Into<String>, platform: Platform, account: impl Into<String>, raw: Value) -> Self {
        Self {
            kind: kind.into(),
            platform,
            account: account.into(),
            message_id: None,
            from: None,
            from_user_id: None,
            contact_name: None,
            chat_id: None,
            timestamp: None,
            message_type: None,
            text: None,
            reply_to: None,
            status: None,
            recipient_id: None,
            recipient_user_id: None,
            raw,
        }
    }

    /// The event as the JSON object stored.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("type".into(), Value::from(self.kind.as_str()));
        object.insert("platform".into(), Value::from(self.platform.as_str()));
        object.insert("account".into(), Value::from(self.account.as_str()));
        let optional = [
            ("messageId", self.message_id.as_deref()),
            ("from", self.from.as_deref()),
            ("fromUserId", self.from_user_id.as_deref()),
            ("contactName", self.contact_name.as_deref()),
            ("chatId", self.chat_id.as_deref()),
            ("messageType", self.message_type.as_deref()),
            ("text", self.text.as_deref()),
            ("replyTo", self.reply_to.as_deref()),
            ("status", self.status.as_deref()),
            ("recipientId", self.recipient_id.as_deref()),
            ("recipientUserId", self.recipient_user_id.as_deref()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                object.insert(name.into(), Value::from(value));
            }
        }
        if let Some(timestamp) = &self.timestamp {
            object.insert("timestamp".into(), timestamp.clone());
        }
        object.insert("raw".into(), self.raw.clone());
        object
    }
}

/// Parses a body that must be a JSON object.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| PayloadError::NotJson {
        category: match error.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected content",
            serde_json::error::Category::Eof => "truncated",
        },
        line: error.line(),
        column: error.column(),
    })?;
    match value {
        Value::Object(object) => Ok(object),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_) => {
            Err(shape("$", "expected a JSON object"))
        }
    }
}

/// Checks a Meta body's `object` field.
fn expect_object(root: &Map<String, Value>, expected: &'static str) -> Result<(), PayloadError> {
    match root.get("object") {
        Some(Value::String(object)) if object == expected => Ok(()),
        Some(_) => Err(PayloadError::UnexpectedObject { expected }),
        None => Err(shape("object", "missing field")),
    }
}

/// The `entry` array of a Meta body.
fn entries(root: &Map<String, Value>) -> Result<&[Value], PayloadError> {
    match root.get("entry") {
        Some(Value::Array(entries)) => Ok(entries),
        Some(_) => Err(shape("entry", "expected an array")),
        None => Err(shape("entry", "missing field")),
    }
}

/// Deserializes `value` (found at `path`) as `T`, naming the path of a fault.
fn typed<T: for<'de> Deserialize<'de>>(value: &Value, path: &str) -> Result<T, PayloadError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let inner = error.path().to_string();
        let path = match (path.is_empty(), inner.as_str()) {
            (true, ".") => "$".to_owned(),
            (false, ".") => path.to_owned(),
            (true, inner) => inner.to_owned(),
            (false, inner) => format!("{path}.{inner}"),
        };
        shape(&path, &reason(&error.into_inner()))
    })
}

/// What serde reported, without the value it quotes: a message of the
/// body may stand where a number was expected.
fn reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if message.starts_with("missing field") {
        return message;
    }
    match message.split_once(", expected ") {
        Some((_, expected)) => format!("expected {expected}"),
        None => "invalid value".to_owned(),
    }
}

fn shape(path: &str, reason: &str) -> PayloadError {
    PayloadError::Shape {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A dedup key for an event with no id of its own: its kind and a digest
/// of its JSON, which a redelivery repeats byte for byte.
fn content_key(platform: Platform, account: &str, kind: &str, raw: &Value) -> String {
    let digest = hex::encode(Sha256::digest(raw.to_string().as_bytes()));
    format!("{platform}:{account}:{kind}:{digest}")
}

/// An id that Meta sends as a string, or sometimes as a number.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(serde_json::Number),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Text(text) => text,
            Id::Number(number) => number.to_string(),
        }
    }
}

/// The string (or number) at `value[key]`, if there is one.
fn id_at(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_never_quote_the_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code, reason = "only the deserialization outcome matters")]
        struct Numbered {
            n: i64,
        }
        let value = serde_json::json!({ "n": "my secret diary" });

        let error = typed::<Numbered>(&value, "entry[0]").expect_err("a string is not a number");

        let PayloadError::Shape { path, reason } = error else {
            panic!("a shape error");
        };
        assert_eq!(path, "entry[0].n");
        assert!(!reason.contains("diary"), "{reason}");
        assert!(reason.contains("i64"), "{reason}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_at_the_root() {
        for body in [&b"[]"[..], b"42", b"\"x\"", b"null"] {
            assert_eq!(
                json_object(body),
                Err(shape("$", "expected a JSON object")),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(json_object(b"{"), Err(PayloadError::NotJson { .. })));
    }

    #[test]
    fn inbox_events_leave_out_absent_fields() {
        let mut event = InboxEvent::new("message", Platform::Whatsapp, "1065", serde_json::json!({}));
        event.text = Some("hi".into());

        let json = Value::Object(event.to_json());

        assert_eq!(
            json,
            serde_json::json!({
                "type": "message", "platform": "whatsapp", "account": "1065", "text": "hi", "raw": {}
            })
        );
    }
}
