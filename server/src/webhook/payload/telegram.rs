//! Telegram Bot API webhooks: one `Update` per request.
//!
//! An update is `{"update_id": <int>, <one field naming its kind>: {…}}`.
//! Messages of every flavour (`message`, `edited_message`, `channel_post`,
//! business messages, …) become `message` events that keep the flavour in
//! `messageType`; other kinds (`callback_query`, `poll`, …) keep their name
//! as the event's type. The route is the connection the URL names, not
//! anything in the body, and `update_id` is the dedup key.

use hermes_crds::Platform;
use serde::Deserialize;
use serde_json::Value;

use super::{InboxEvent, ParsedEvent, PayloadError, json_object, typed};

/// The update kinds that carry a `Message`.
const MESSAGE_KINDS: [&str; 6] = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
];

#[derive(Deserialize)]
struct Update {
    update_id: i64,
}

#[derive(Deserialize)]
struct Message {
    message_id: i64,
    date: Option<i64>,
    chat: Chat,
    from: Option<User>,
    text: Option<String>,
    caption: Option<String>,
    reply_to_message: Option<Replied>,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
}

#[derive(Deserialize)]
struct User {
    id: i64,
    username: Option<String>,
    first_name: Option<String>,
}

#[derive(Deserialize)]
struct Replied {
    message_id: i64,
}

#[derive(Deserialize)]
struct CallbackQuery {
    from: User,
    data: Option<String>,
}

/// The event of a verified update that arrived for `connection`.
///
/// # Errors
///
/// [`PayloadError`] when the body is not JSON, lacks an integer
/// `update_id`, or carries a message without `message_id` or `chat`.
pub fn parse(connection: &str, body: &[u8]) -> Result<ParsedEvent, PayloadError> {
    let root = json_object(body)?;
    let raw = Value::Object(root);
    let update: Update = typed(&raw, "")?;

    // An update has one field besides its id; an update of a kind this
    // build does not know is stored all the same, under its name.
    let kind = raw
        .as_object()
        .into_iter()
        .flat_map(|object| object.keys())
        .find(|key| key.as_str() != "update_id")
        .cloned()
        .unwrap_or_else(|| "update".to_owned());

    let mut event = if MESSAGE_KINDS.contains(&kind.as_str()) {
        let inner = raw.get(&kind).unwrap_or(&Value::Null);
        let message: Message = typed(inner, &kind)?;
        message_event(connection, &kind, message, raw.clone())
    } else if kind == "callback_query" {
        let inner = raw.get(&kind).unwrap_or(&Value::Null);
        let query: CallbackQuery = typed(inner, &kind)?;
        let mut event = InboxEvent::new(kind.as_str(), Platform::Telegram, connection, raw.clone());
        event.from = Some(query.from.id.to_string());
        event.contact_name = query.from.username.or(query.from.first_name);
        event.text = query.data;
        event
    } else {
        InboxEvent::new(kind.as_str(), Platform::Telegram, connection, raw.clone())
    };
    event.raw = raw;

    Ok(ParsedEvent {
        account: connection.to_owned(),
        dedup_key: format!("telegram:{connection}:update:{}", update.update_id),
        status_of: None,
        event,
    })
}

fn message_event(connection: &str, kind: &str, message: Message, raw: Value) -> InboxEvent {
    let mut event = InboxEvent::new("message", Platform::Telegram, connection, raw);
    event.message_type = Some(kind.to_owned());
    event.message_id = Some(message.message_id.to_string());
    event.chat_id = Some(message.chat.id.to_string());
    event.timestamp = message.date.map(Value::from);
    event.text = message.text.or(message.caption);
    event.reply_to = message
        .reply_to_message
        .map(|replied| replied.message_id.to_string());
    if let Some(from) = message.from {
        event.from = Some(from.id.to_string());
        event.contact_name = from.username.or(from.first_name);
    }
    event
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn a_message_update_becomes_a_message_event_keyed_by_update_id() {
        let update = json!({
            "update_id": 10001,
            "message": { "message_id": 7, "date": 1700000000, "chat": { "id": -100123, "type": "group" },
                         "from": { "id": 42, "is_bot": false, "first_name": "A", "username": "ana" }, "text": "hi" },
        });

        let parsed = parse("tenants.bot", &body(update)).expect("a valid update");

        assert_eq!(parsed.account, "tenants.bot");
        assert_eq!(parsed.dedup_key, "telegram:tenants.bot:update:10001");
        let event = &parsed.event;
        assert_eq!(
            (event.kind.as_str(), event.message_type.as_deref()),
            ("message", Some("message"))
        );
        assert_eq!(event.message_id.as_deref(), Some("7"));
        assert_eq!(event.chat_id.as_deref(), Some("-100123"));
        assert_eq!(event.from.as_deref(), Some("42"));
        assert_eq!(event.contact_name.as_deref(), Some("ana"));
        assert_eq!(event.text.as_deref(), Some("hi"));
        assert_eq!(event.raw["update_id"], 10001);
    }

    #[test]
    fn other_update_kinds_keep_their_name() {
        let update = json!({ "update_id": 3, "poll": { "id": "p", "question": "?" } });

        let parsed = parse("ns.bot", &body(update)).expect("a valid update");

        assert_eq!(parsed.event.kind, "poll");
        let query = json!({ "update_id": 4, "callback_query": { "id": "q", "from": { "id": 9, "first_name": "B" }, "data": "yes" } });
        let parsed = parse("ns.bot", &body(query)).expect("a valid update");
        assert_eq!(parsed.event.kind, "callback_query");
        assert_eq!(parsed.event.text.as_deref(), Some("yes"));
    }

    #[test]
    fn bad_updates_name_what_is_wrong() {
        let cases = [
            (json!({ "message": {} }), "missing field `update_id`"),
            (json!({ "update_id": "1" }), "update_id: expected i64"),
            (
                json!({ "update_id": 1, "message": { "chat": { "id": 1 } } }),
                "message: missing field `message_id`",
            ),
            (
                json!({ "update_id": 1, "message": { "message_id": 1 } }),
                "message: missing field `chat`",
            ),
        ];
        for (update, expected) in cases {
            let error = parse("ns.bot", &body(update.clone())).expect_err("a bad update");
            assert!(error.to_string().contains(expected), "{update}: {error}");
        }
    }
}
