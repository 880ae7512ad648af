//! The state of the inbound pipeline: a deduplicated inbox, the latest
//! status of every sent message, and the queue of deliveries to the
//! customer's own endpoint.
//!
//! A webhook event travels through it like this:
//!
//! 1. [`Store::append_inbound`](super::Store::append_inbound) appends the
//!    event to `inbox:{<customer>}` unless its dedup key was seen in the last
//!    [`INBOUND_DEDUP_TTL`]. In the same atomic step it records a delivery
//!    status under the message it is about, and, when the customer has a
//!    [`DeliveryTarget`], queues the event for delivery. Nothing is ever half
//!    appended: either all of it happened or none of it.
//! 2. A delivery worker takes queued events with
//!    [`claim_deliveries`](super::Store::claim_deliveries) (a Redis Stream
//!    consumer group per customer: replicas share the work, and an event a
//!    crashed worker held is claimed again after a timeout).
//! 3. The worker ends each attempt with
//!    [`complete_delivery`](super::Store::complete_delivery),
//!    [`retry_delivery`](super::Store::retry_delivery) (the event waits in a
//!    schedule until it is due, then is claimable again) or
//!    [`dead_letter_delivery`](super::Store::dead_letter_delivery).
//!    [`replay_dead_letter`](super::Store::replay_dead_letter) queues a dead
//!    letter again.
//!
//! Every key involved carries the customer's hash tag, so each step is one
//! Lua script on one Redis Cluster node. The one exception is the index of
//! customers that have a delivery target, which the worker walks; it is
//! written only when a target is set or removed.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::vault::Envelope;

/// How long a dedup key is remembered: Meta retries a webhook for up to 7 days.
pub const INBOUND_DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long the latest status of a sent message is kept after its last update.
pub const MESSAGE_STATUS_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How many queued deliveries a customer's queue keeps, about (trimmed like
/// any stream, whole nodes at a time). Past it, the oldest undelivered events
/// are dropped from the queue (they stay in the inbox): a customer endpoint
/// that has been down that long is not waited for forever.
pub const DELIVERY_QUEUE_MAX_LEN: usize = 100_000;

/// How many dead letters a customer keeps, about; older ones are dropped.
pub const DEAD_LETTER_MAX_LEN: usize = 10_000;

/// One event to append to a customer's inbox.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundEvent {
    /// What identifies the event across redeliveries, e.g.
    /// `whatsapp:message:<wamid>`. Stores keep only a digest of it.
    pub dedup_key: String,
    /// The event as it is stored and delivered.
    pub event: serde_json::Value,
    /// When the event is a delivery status: the message it is about.
    pub status_of: Option<StatusOf>,
}

/// The sent message a delivery status is about, and how far along the
/// message is. The store keeps, per message, the status of highest rank it
/// saw (the later one on a tie), so a `delivered` arriving after `read` does
/// not hide it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusOf {
    /// The message id the send tool returned (a wamid on WhatsApp).
    pub message_id: String,
    /// The status's rank: higher ranks replace lower ones.
    pub rank: u8,
}

/// The outcome of [`Store::append_inbound`](super::Store::append_inbound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// The event is new and now stored under this inbox id.
    Stored {
        /// The inbox stream id.
        id: String,
    },
    /// The event's dedup key was seen within [`INBOUND_DEDUP_TTL`]; nothing changed.
    Duplicate {
        /// The inbox id the first copy was stored under.
        id: String,
    },
}

impl Appended {
    /// The inbox id of the event (the first copy's, for a duplicate).
    pub fn id(&self) -> &str {
        match self {
            Appended::Stored { id } | Appended::Duplicate { id } => id,
        }
    }

    /// True for a duplicate.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Appended::Duplicate { .. })
    }
}

/// Where a customer's inbound events are delivered.
///
/// The signing secret is sealed by the vault; `tenancy::apply_delivery`
/// writes a target and `tenancy::load_delivery_target` opens it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryTarget {
    /// The URL every event is POSTed to.
    pub url: String,
    /// The sealed HMAC-SHA256 signing secret.
    pub signing_secret: Envelope,
}

/// One queued delivery, as a worker claimed it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryJob {
    /// The id of the queue entry; completing, retrying or dead-lettering names it.
    pub id: String,
    /// The inbox id of the event, stable across retries and replays.
    pub inbox_id: String,
    /// The event.
    pub event: serde_json::Value,
    /// How many attempts failed before this claim (0 on the first).
    pub attempt: u32,
    /// Why the previous attempt failed, if one did.
    pub last_error: Option<String>,
}

/// An event whose delivery was given up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The dead-letter stream id; replaying names it.
    pub id: String,
    /// The inbox id of the event.
    pub inbox_id: String,
    /// The event.
    pub event: serde_json::Value,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub error: String,
    /// When the delivery was given up.
    pub failed_at: Timestamp,
}

/// The rules both stores implement alike for the inbound pipeline.
pub(crate) mod rules {
    use jiff::Timestamp;

    /// The consumer group every delivery worker joins.
    pub(crate) const DELIVERY_GROUP: &str = "hermes-delivery";

    /// The longest consumer name accepted.
    const MAX_CONSUMER_LEN: usize = 200;

    /// A consumer name is 1 to 200 visible ASCII characters.
    pub(crate) fn check_consumer(consumer: &str) -> super::super::Result<()> {
        let valid = (1..=MAX_CONSUMER_LEN).contains(&consumer.len())
            && consumer.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(())
        } else {
            Err(super::super::StoreError::InvalidArgument(
                "a delivery consumer name is 1 to 200 visible ASCII characters".into(),
            ))
        }
    }

    /// The time a stream id was issued at (its millisecond part).
    pub(crate) fn stream_id_time(ms: u64) -> Timestamp {
        i64::try_from(ms)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// A duration in whole milliseconds, saturating.
    pub(crate) fn millis(duration: std::time::Duration) -> u64 {
        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
    }
}
