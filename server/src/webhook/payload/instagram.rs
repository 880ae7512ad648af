//! Instagram webhooks (`object: "instagram"`).
//!
//! A body batches entries, one per Instagram account (`entry[].id`, the
//! routing key). An entry carries `messaging` events (messages, reactions,
//! reads, postbacks, referrals) and, for comments and mentions, `changes`.
//! Messages with `is_echo` are the customer's own sends coming back, and
//! are skipped.

use hermes_crds::Platform;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Id, InboxEvent, MetaBatch, ParsedEvent, PayloadError, content_key, entries, expect_object, id_at,
    json_object, typed,
};

/// The `object` of an Instagram webhook.
pub const OBJECT: &str = "instagram";

/// The kinds of `messaging` events other than messages, in the order they are looked for.
const MESSAGING_KINDS: [&str; 4] = ["reaction", "read", "postback", "referral"];

#[derive(Deserialize)]
struct Entry {
    id: Id,
    #[serde(default)]
    messaging: Vec<Value>,
    #[serde(default)]
    changes: Vec<Value>,
}

#[derive(Deserialize)]
struct Messaging {
    sender: Option<Party>,
    timestamp: Option<Value>,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Party {
    id: Id,
}

#[derive(Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    reply_to: Option<ReplyTo>,
}

#[derive(Deserialize)]
struct ReplyTo {
    mid: Option<String>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

/// Every event of a verified body, with the Instagram account each came to.
///
/// # Errors
///
/// [`PayloadError`] when the body is not JSON, its `object` is not
/// [`OBJECT`], an entry lacks its `id`, a message its `mid`, or a change
/// its `field`.
pub fn parse(body: &[u8]) -> Result<MetaBatch, PayloadError> {
    let root = json_object(body)?;
    expect_object(&root, OBJECT)?;

    let mut batch = MetaBatch::default();
    for (e, entry) in entries(&root)?.iter().enumerate() {
        let path = format!("entry[{e}]");
        let entry: Entry = typed(entry, &path)?;
        let account = entry.id.into_string();

        for (m, raw) in entry.messaging.iter().enumerate() {
            let messaging: Messaging = typed(raw, &format!("{path}.messaging[{m}]"))?;
            match messaging_event(&account, messaging, raw) {
                Some(event) => batch.events.push(event),
                None => batch.skipped += 1,
            }
        }

        for (c, raw) in entry.changes.iter().enumerate() {
            let change: Change = typed(raw, &format!("{path}.changes[{c}]"))?;
            batch.events.push(change_event(&account, change, raw));
        }
    }
    Ok(batch)
}

/// The event of one `messaging` item; `None` for an echo.
fn messaging_event(account: &str, messaging: Messaging, raw: &Value) -> Option<ParsedEvent> {
    let from = messaging.sender.map(|sender| sender.id.into_string());

    if let Some(message) = messaging.message {
        if message.is_echo {
            return None;
        }
        let mut event = InboxEvent::new("message", Platform::Instagram, account, raw.clone());
        event.message_id = Some(message.mid.clone());
        event.from = from;
        event.timestamp = messaging.timestamp;
        event.text = message.text;
        event.reply_to = message.reply_to.and_then(|reply| reply.mid);
        return Some(ParsedEvent {
            account: account.to_owned(),
            dedup_key: format!("instagram:message:{}", message.mid),
            status_of: None,
            event,
        });
    }

    let kind = MESSAGING_KINDS
        .into_iter()
        .find(|kind| raw.get(kind).is_some())
        .unwrap_or("messaging");
    let mut event = InboxEvent::new(kind, Platform::Instagram, account, raw.clone());
    event.message_id = raw.get(kind).and_then(|inner| id_at(inner, "mid"));
    event.from = from;
    event.timestamp = messaging.timestamp;
    Some(ParsedEvent {
        account: account.to_owned(),
        dedup_key: content_key(Platform::Instagram, account, kind, raw),
        status_of: None,
        event,
    })
}

/// The event of one change (a comment or a mention), named after its field.
fn change_event(account: &str, change: Change, raw: &Value) -> ParsedEvent {
    let mut event = InboxEvent::new(change.field.as_str(), Platform::Instagram, account, raw.clone());
    event.message_id = id_at(&change.value, "id");
    event.from = change.value.get("from").and_then(|from| id_at(from, "id"));
    event.text = change
        .value
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_owned);

    let dedup_key = match &event.message_id {
        Some(id) => format!("instagram:{}:{id}", change.field),
        None => content_key(Platform::Instagram, account, &change.field, raw),
    };
    ParsedEvent {
        account: account.to_owned(),
        dedup_key,
        status_of: None,
        event,
    }
}

/// The account ids an unverified body names, at most `limit`, without
/// repeats; empty when the body cannot be read. Only for choosing which
/// connection's app secret to verify the body with.
pub fn accounts(body: &[u8], limit: usize) -> Vec<String> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    let ids = root
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| id_at(entry, "id"));
    for id in ids {
        if !found.contains(&id) {
            found.push(id);
            if found.len() >= limit {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn a_direct_message_becomes_a_message_event_and_an_echo_is_skipped() {
        let payload = json!({
            "object": "instagram",
            "entry": [{ "id": "17841400000000000", "time": 1, "messaging": [
                { "sender": { "id": "IGSID-1" }, "recipient": { "id": "17841400000000000" }, "timestamp": 1700000000000u64,
                  "message": { "mid": "mid.1", "text": "hello", "reply_to": { "mid": "mid.0" } } },
                { "sender": { "id": "17841400000000000" }, "recipient": { "id": "IGSID-1" }, "timestamp": 1700000000001u64,
                  "message": { "mid": "mid.2", "text": "our reply", "is_echo": true } },
            ] }],
        });

        let batch = parse(&body(payload)).expect("a valid body");

        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.skipped, 1);
        let parsed = &batch.events[0];
        assert_eq!(parsed.account, "17841400000000000");
        assert_eq!(parsed.dedup_key, "instagram:message:mid.1");
        assert_eq!(parsed.event.from.as_deref(), Some("IGSID-1"));
        assert_eq!(parsed.event.text.as_deref(), Some("hello"));
        assert_eq!(parsed.event.reply_to.as_deref(), Some("mid.0"));
    }

    #[test]
    fn reactions_and_comments_keep_their_kind() {
        let payload = json!({
            "object": "instagram",
            "entry": [{ "id": 178414, "messaging": [
                { "sender": { "id": "IGSID-1" }, "reaction": { "mid": "mid.1", "action": "react", "emoji": "❤" } },
            ], "changes": [
                { "field": "comments", "value": { "id": "c-1", "from": { "id": "u-1", "username": "ana" }, "text": "nice" } },
            ] }],
        });

        let batch = parse(&body(payload.clone())).expect("a valid body");
        let again = parse(&body(payload)).expect("a valid body");

        let kinds: Vec<&str> = batch.events.iter().map(|e| e.event.kind.as_str()).collect();
        assert_eq!(kinds, ["reaction", "comments"]);
        assert_eq!(batch.events[0].account, "178414");
        assert_eq!(batch.events[0].event.message_id.as_deref(), Some("mid.1"));
        assert_eq!(
            batch.events[0].dedup_key, again.events[0].dedup_key,
            "redeliveries share the key"
        );
        assert_eq!(batch.events[1].dedup_key, "instagram:comments:c-1");
        assert_eq!(batch.events[1].event.text.as_deref(), Some("nice"));
    }

    #[test]
    fn bad_bodies_name_what_is_wrong() {
        let cases = [
            (json!({ "object": "page", "entry": [] }), "`object` must be"),
            (
                json!({ "object": "instagram", "entry": [{ "messaging": [] }] }),
                "entry[0]: missing field `id`",
            ),
            (
                json!({ "object": "instagram", "entry": [{ "id": "1", "messaging": [{ "message": { "text": "x" } }] }] }),
                "entry[0].messaging[0].message: missing field `mid`",
            ),
            (
                json!({ "object": "instagram", "entry": [{ "id": "1", "changes": [{ "value": {} }] }] }),
                "entry[0].changes[0]: missing field `field`",
            ),
        ];
        for (payload, expected) in cases {
            let error = parse(&body(payload.clone())).expect_err("a bad body");
            assert!(error.to_string().contains(expected), "{payload}: {error}");
        }
    }

    #[test]
    fn accounts_are_the_entry_ids() {
        let payload =
            json!({ "object": "instagram", "entry": [{ "id": "1" }, { "id": 2 }, { "id": "1" }, {}] });

        assert_eq!(accounts(&body(payload), 8), ["1", "2"]);
    }
}
