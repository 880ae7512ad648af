//! Every Redis key Hermes uses, spelled in one place.
//!
//! Per-customer keys wrap the customer id in braces, a Redis Cluster hash
//! tag: all keys of one customer hash to one slot, so multi-key commands
//! and Lua scripts over them are legal on a cluster. Index keys (API keys,
//! routes) are global lookups and carry no tag.
//!
//! | key | value |
//! |---|---|
//! | `customer:apikey:<sha256 hex>` | JSON [`CustomerSummary`](crate::store::CustomerSummary) |
//! | `creds:{<customer>}:<platform>` | JSON vault [`Envelope`](crate::vault::Envelope) |
//! | `conn:{<customer>}` | hash: platform → JSON [`ConnectionState`](crate::store::ConnectionState) |
//! | `wa_phone_id:<id>`, `ig_user_id:<id>`, `tg_connection:<id>` | owning customer id |
//! | `logs:{<customer>}:<yyyy-mm-dd>` | sorted set of that day's audit entries |
//! | `usage:{<customer>}:<yyyy-mm>` | hash of usage counters |
//! | `ratelimit:{<customer>}` | GCRA theoretical arrival time |
//! | `inbox:{<customer>}`, `outbox:{<customer>}` | streams of events |
//! | `dedup:{<customer>}:<sha256 hex>` | inbox id of an inbound event, expiring after 7 days |
//! | `msgstatus:{<customer>}:<sha256 hex>` | `<rank>\n<status event JSON>` of a sent message |
//! | `delivery:{<customer>}:target` | JSON [`DeliveryTarget`](crate::store::DeliveryTarget) |
//! | `delivery:{<customer>}:queue` | stream of queued deliveries, consumer group `hermes-delivery` |
//! | `delivery:{<customer>}:retry` | sorted set of scheduled retries, by due time (ms) |
//! | `delivery:{<customer>}:dead` | stream of dead letters |
//! | `delivery:customers` | set of customer ids with a delivery target |
//!
//! Dedup keys and message ids come from webhook payloads, so their keys
//! hold a SHA-256 digest of them: bounded in length, and free of anything
//! that would need quoting.

use hermes_crds::Platform;
use jiff::civil::Date;
use sha2::{Digest, Sha256};

use crate::CustomerId;
use crate::store::{Route, StreamKind};

/// The API-key index entry of a key hash (lowercase hex).
pub fn api_key(hash_hex: &str) -> String {
    format!("customer:apikey:{hash_hex}")
}

/// The sealed credentials of one connection.
pub fn credentials(customer: &CustomerId, platform: Platform) -> String {
    format!("creds:{{{customer}}}:{platform}")
}

/// The published connection states of a customer.
pub fn connections(customer: &CustomerId) -> String {
    format!("conn:{{{customer}}}")
}

/// The key of an inbound route.
pub fn route(route: &Route) -> String {
    let prefix = match route.platform {
        Platform::Whatsapp => "wa_phone_id",
        Platform::Instagram => "ig_user_id",
        Platform::Telegram => "tg_connection",
        Platform::Email => "email_route",
        Platform::Linkedin => "linkedin_route",
        Platform::Discord => "discord_route",
        Platform::X => "x_route",
        Platform::Obsidian => "obsidian_route",
    };
    format!("{prefix}:{}", route.id)
}

/// The audit log of one customer for one day (UTC).
pub fn audit_day(customer: &CustomerId, day: Date) -> String {
    format!("logs:{{{customer}}}:{day}")
}

/// The usage counters of one customer for one billing period (`yyyy-mm`).
pub fn usage(customer: &CustomerId, period: &str) -> String {
    format!("usage:{{{customer}}}:{period}")
}

/// The rate-limit state of one customer.
pub fn rate_limit(customer: &CustomerId) -> String {
    format!("ratelimit:{{{customer}}}")
}

/// A per-customer event stream.
pub fn stream(kind: StreamKind, customer: &CustomerId) -> String {
    match kind {
        StreamKind::Inbox => format!("inbox:{{{customer}}}"),
        StreamKind::Outbox => format!("outbox:{{{customer}}}"),
    }
}

/// The dedup key of an inbound event (`dedup_key` as the webhook parser spells it).
pub fn inbound_dedup(customer: &CustomerId, dedup_key: &str) -> String {
    format!("dedup:{{{customer}}}:{}", digest(dedup_key))
}

/// The latest status of a sent message.
pub fn message_status(customer: &CustomerId, message_id: &str) -> String {
    format!("msgstatus:{{{customer}}}:{}", digest(message_id))
}

/// Where a customer's inbound events are delivered.
pub fn delivery_target(customer: &CustomerId) -> String {
    format!("delivery:{{{customer}}}:target")
}

/// A customer's queue of deliveries.
pub fn delivery_queue(customer: &CustomerId) -> String {
    format!("delivery:{{{customer}}}:queue")
}

/// A customer's scheduled delivery retries.
pub fn delivery_retries(customer: &CustomerId) -> String {
    format!("delivery:{{{customer}}}:retry")
}

/// A customer's dead letters.
pub fn dead_letters(customer: &CustomerId) -> String {
    format!("delivery:{{{customer}}}:dead")
}

/// The index of customers with a delivery target; a global key, no hash tag.
pub const DELIVERY_CUSTOMERS: &str = "delivery:customers";

/// The SHA-256 of a payload-supplied identifier, in lowercase hex.
fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A pattern matching every per-customer key of `customer` (for `SCAN`).
pub fn customer_pattern(customer: &CustomerId) -> String {
    format!("*{{{customer}}}*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> CustomerId {
        CustomerId::new("acme").expect("acme is a valid id")
    }

    #[test]
    fn per_customer_keys_carry_the_customer_hash_tag() {
        let day = Date::constant(2026, 12, 3);
        for key in [
            credentials(&acme(), Platform::Whatsapp),
            connections(&acme()),
            audit_day(&acme(), day),
            usage(&acme(), "2026-12"),
            rate_limit(&acme()),
            stream(StreamKind::Inbox, &acme()),
            stream(StreamKind::Outbox, &acme()),
            inbound_dedup(&acme(), "whatsapp:message:wamid.1"),
            message_status(&acme(), "wamid.1"),
            delivery_target(&acme()),
            delivery_queue(&acme()),
            delivery_retries(&acme()),
            dead_letters(&acme()),
        ] {
            assert!(key.contains("{acme}"), "{key} lacks the hash tag");
        }
    }

    #[test]
    fn keys_match_the_documented_names() {
        assert_eq!(credentials(&acme(), Platform::Whatsapp), "creds:{acme}:whatsapp");
        assert_eq!(
            audit_day(&acme(), Date::constant(2026, 1, 2)),
            "logs:{acme}:2026-01-02"
        );
        assert_eq!(usage(&acme(), "2026-12"), "usage:{acme}:2026-12");
        assert_eq!(stream(StreamKind::Inbox, &acme()), "inbox:{acme}");
        let wa = Route {
            platform: Platform::Whatsapp,
            id: "106540352242922".into(),
        };
        assert_eq!(route(&wa), "wa_phone_id:106540352242922");
        assert_eq!(api_key("ab12"), "customer:apikey:ab12");
        assert_eq!(delivery_queue(&acme()), "delivery:{acme}:queue");
    }

    #[test]
    fn payload_identifiers_are_digested_into_keys() {
        let key = inbound_dedup(&acme(), "telegram:ns.bot:update:1 {} *");

        let suffix = key.strip_prefix("dedup:{acme}:").expect("the documented prefix");
        assert_eq!(suffix.len(), 64);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(message_status(&acme(), "a"), message_status(&acme(), "b"));
    }
}
