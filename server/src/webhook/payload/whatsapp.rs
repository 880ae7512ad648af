//! WhatsApp Cloud API webhooks (`object: "whatsapp_business_account"`).
//!
//! A body batches entries, each with changes; a change of field `messages`
//! carries inbound `messages` and delivery `statuses` of one phone number,
//! named by `value.metadata.phone_number_id`, the routing key. Other fields
//! (template, quality and account updates) belong to the business account,
//! not to a number, and are skipped.
//!
//! Users who adopt a WhatsApp username may arrive without a phone number:
//! a message then has `from_user_id` (a business-scoped user id, BSUID)
//! instead of, or next to, `from`, and the contact has `user_id`. Both are
//! kept; neither is required.

use hermes_crds::Platform;
use hermes_state::store::StatusOf;
use serde::Deserialize;
use serde_json::Value;

use super::{InboxEvent, MetaBatch, ParsedEvent, PayloadError, entries, expect_object, json_object, typed};

/// The `object` of a WhatsApp webhook.
pub const OBJECT: &str = "whatsapp_business_account";

/// The change field that carries messages and statuses.
const MESSAGES_FIELD: &str = "messages";

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Value>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct MessagesValue {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<Value>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: Option<String>,
    user_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    id: String,
    from: Option<String>,
    from_user_id: Option<String>,
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<Text>,
    context: Option<Context>,
}

#[derive(Deserialize)]
struct Text {
    body: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    timestamp: Option<String>,
    recipient_id: Option<String>,
    recipient_user_id: Option<String>,
}

/// How far along a sent message is: a higher rank replaces a lower one.
pub fn status_rank(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "failed" => 4,
        _ => 0,
    }
}

/// Every message and status of a verified body, with the phone number id
/// each came to.
///
/// # Errors
///
/// [`PayloadError`] when the body is not JSON, its `object` is not
/// [`OBJECT`], or a `messages` change lacks its phone number id, a message
/// its `id`, or a status its `id` or `status`.
pub fn parse(body: &[u8]) -> Result<MetaBatch, PayloadError> {
    let root = json_object(body)?;
    expect_object(&root, OBJECT)?;

    let mut batch = MetaBatch::default();
    for (e, entry) in entries(&root)?.iter().enumerate() {
        let entry: Entry = typed(entry, &format!("entry[{e}]"))?;
        for (c, change) in entry.changes.iter().enumerate() {
            let path = format!("entry[{e}].changes[{c}]");
            let change: Change = typed(change, &path)?;
            if change.field != MESSAGES_FIELD {
                batch.skipped += 1;
                continue;
            }
            let value: MessagesValue = typed(&change.value, &format!("{path}.value"))?;
            parse_value(&value, &path, &mut batch)?;
        }
    }
    Ok(batch)
}

fn parse_value(value: &MessagesValue, path: &str, batch: &mut MetaBatch) -> Result<(), PayloadError> {
    let account = &value.metadata.phone_number_id;

    for (m, raw) in value.messages.iter().enumerate() {
        let message: Message = typed(raw, &format!("{path}.value.messages[{m}]"))?;
        let contact = contact_of(&value.contacts, &message);

        let mut event = InboxEvent::new("message", Platform::Whatsapp, account.as_str(), raw.clone());
        event.message_id = Some(message.id.clone());
        event.from = message.from.clone();
        event.from_user_id = message
            .from_user_id
            .clone()
            .or_else(|| contact.and_then(|c| c.user_id.clone()));
        event.contact_name = contact.and_then(|c| c.profile.as_ref()?.name.clone());
        event.timestamp = message.timestamp.map(Value::from);
        event.text = message.text.and_then(|text| text.body);
        event.message_type = message.kind;
        event.reply_to = message.context.and_then(|context| context.id);
        batch.events.push(ParsedEvent {
            account: account.clone(),
            dedup_key: format!("whatsapp:message:{}", message.id),
            status_of: None,
            event,
        });
    }

    for (s, raw) in value.statuses.iter().enumerate() {
        let status: Status = typed(raw, &format!("{path}.value.statuses[{s}]"))?;

        let mut event = InboxEvent::new("status", Platform::Whatsapp, account.as_str(), raw.clone());
        event.message_id = Some(status.id.clone());
        event.timestamp = status.timestamp.map(Value::from);
        event.recipient_id = status.recipient_id;
        event.recipient_user_id = status.recipient_user_id;
        event.status = Some(status.status.clone());
        batch.events.push(ParsedEvent {
            account: account.clone(),
            dedup_key: format!("whatsapp:status:{}:{}", status.id, status.status),
            status_of: Some(StatusOf {
                message_id: status.id,
                rank: status_rank(&status.status),
            }),
            event,
        });
    }
    Ok(())
}

/// The contact a message came from: the one with its phone number or
/// BSUID, or the only contact of the change.
fn contact_of<'a>(contacts: &'a [Contact], message: &Message) -> Option<&'a Contact> {
    let matching = contacts.iter().find(|contact| {
        let by_phone = message.from.is_some() && contact.wa_id == message.from;
        let by_user = message.from_user_id.is_some() && contact.user_id == message.from_user_id;
        by_phone || by_user
    });
    match (matching, contacts) {
        (Some(contact), _) => Some(contact),
        (None, [only]) => Some(only),
        (None, _) => None,
    }
}

/// The phone number ids an unverified body names, at most `limit`, without
/// repeats; empty when the body cannot be read. Only for choosing which
/// connection's app secret to verify the body with.
pub fn accounts(body: &[u8], limit: usize) -> Vec<String> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    let changes = root
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("changes")?.as_array())
        .flatten();
    for change in changes {
        let id = change
            .get("value")
            .and_then(|value| value.get("metadata"))
            .and_then(|metadata| metadata.get("phone_number_id"))
            .and_then(Value::as_str);
        if let Some(id) = id
            && !found.iter().any(|known| known == id)
        {
            found.push(id.to_owned());
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

    fn messages_change(phone_number_id: &str, value: Value) -> Value {
        let mut value = value;
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] =
            json!({ "display_phone_number": "15550783881", "phone_number_id": phone_number_id });
        json!({ "field": "messages", "value": value })
    }

    #[test]
    fn a_text_message_becomes_a_message_event() {
        let payload = json!({
            "object": OBJECT,
            "entry": [{ "id": "WABA", "changes": [messages_change("1065", json!({
                "contacts": [{ "profile": { "name": "Sheena" }, "wa_id": "16505551234" }],
                "messages": [{ "from": "16505551234", "id": "wamid.A", "timestamp": "1749416383",
                               "type": "text", "text": { "body": "hi" }, "context": { "id": "wamid.Z" } }],
            }))] }],
        });

        let batch = parse(&body(payload)).expect("a valid body");

        assert_eq!(batch.events.len(), 1);
        let parsed = &batch.events[0];
        assert_eq!(parsed.account, "1065");
        assert_eq!(parsed.dedup_key, "whatsapp:message:wamid.A");
        assert_eq!(parsed.event.text.as_deref(), Some("hi"));
        assert_eq!(parsed.event.contact_name.as_deref(), Some("Sheena"));
        assert_eq!(parsed.event.reply_to.as_deref(), Some("wamid.Z"));
        assert_eq!(parsed.event.timestamp, Some(json!("1749416383")));
        assert_eq!(parsed.event.raw["id"], "wamid.A");
    }

    #[test]
    fn a_message_without_a_phone_number_keeps_its_bsuid() {
        let payload = json!({
            "object": OBJECT,
            "entry": [{ "changes": [messages_change("1065", json!({
                "contacts": [{ "profile": { "name": "Ana" }, "user_id": "US.13491208655302741918" }],
                "messages": [{ "id": "wamid.B", "type": "text", "text": { "body": "hola" } }],
            }))] }],
        });

        let batch = parse(&body(payload)).expect("a message without from is valid");

        let event = &batch.events[0].event;
        assert_eq!(event.from, None);
        assert_eq!(event.from_user_id.as_deref(), Some("US.13491208655302741918"));
        assert_eq!(event.contact_name.as_deref(), Some("Ana"));
    }

    #[test]
    fn statuses_are_keyed_by_message_and_status() {
        let payload = json!({
            "object": OBJECT,
            "entry": [{ "changes": [messages_change("1065", json!({
                "statuses": [
                    { "id": "wamid.S", "status": "delivered", "timestamp": "1", "recipient_id": "1650" },
                    { "id": "wamid.S", "status": "read", "timestamp": "2", "recipient_user_id": "US.1" },
                ],
            }))] }],
        });

        let batch = parse(&body(payload)).expect("valid statuses");

        let keys: Vec<&str> = batch.events.iter().map(|e| e.dedup_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "whatsapp:status:wamid.S:delivered",
                "whatsapp:status:wamid.S:read"
            ]
        );
        assert_eq!(
            batch.events[1].status_of,
            Some(StatusOf {
                message_id: "wamid.S".into(),
                rank: 3
            })
        );
        assert_eq!(batch.events[1].event.recipient_user_id.as_deref(), Some("US.1"));
    }

    #[test]
    fn every_entry_and_change_is_walked_and_other_fields_skipped() {
        let payload = json!({
            "object": OBJECT,
            "entry": [
                { "changes": [
                    messages_change("111", json!({ "messages": [{ "id": "wamid.1", "from": "1" }] })),
                    { "field": "message_template_status_update", "value": { "event": "APPROVED" } },
                ] },
                { "changes": [messages_change("222", json!({ "messages": [{ "id": "wamid.2", "from": "2" }] }))] },
            ],
        });

        let batch = parse(&body(payload)).expect("a valid batch");

        let accounts: Vec<&str> = batch.events.iter().map(|e| e.account.as_str()).collect();
        assert_eq!(accounts, ["111", "222"]);
        assert_eq!(batch.skipped, 1);
        assert_eq!(accounts_of(&batch), accounts);
    }

    fn accounts_of(batch: &MetaBatch) -> Vec<&str> {
        batch.events.iter().map(|e| e.account.as_str()).collect()
    }

    #[test]
    fn bad_bodies_name_what_is_wrong() {
        let cases = [
            (json!({ "entry": [] }), "object: missing field"),
            (json!({ "object": "instagram", "entry": [] }), "`object` must be"),
            (json!({ "object": OBJECT }), "entry: missing field"),
            (
                json!({ "object": OBJECT, "entry": {} }),
                "entry: expected an array",
            ),
            (
                json!({ "object": OBJECT, "entry": [{ "changes": [{ "field": "messages", "value": {} }] }] }),
                "entry[0].changes[0].value: missing field `metadata`",
            ),
            (
                json!({ "object": OBJECT, "entry": [{ "changes": [messages_change("1", json!({ "messages": [{ "from": "1" }] }))] }] }),
                "entry[0].changes[0].value.messages[0]: missing field `id`",
            ),
            (
                json!({ "object": OBJECT, "entry": [{ "changes": [messages_change("1", json!({ "statuses": [{ "id": "w" }] }))] }] }),
                "entry[0].changes[0].value.statuses[0]: missing field `status`",
            ),
        ];
        for (payload, expected) in cases {
            let error = parse(&body(payload.clone())).expect_err("a bad body");
            assert!(error.to_string().contains(expected), "{payload}: {error}");
        }
    }

    #[test]
    fn accounts_of_an_unverified_body_are_read_leniently() {
        let payload = json!({
            "object": OBJECT,
            "entry": [
                { "changes": [messages_change("111", json!({})), messages_change("111", json!({}))] },
                { "changes": [messages_change("222", json!({})), { "value": 5 }] },
                { "changes": "nonsense" },
            ],
        });

        assert_eq!(accounts(&body(payload.clone()), 8), ["111", "222"]);
        assert_eq!(accounts(&body(payload), 1), ["111"]);
        assert!(accounts(b"not json", 8).is_empty());
    }
}
