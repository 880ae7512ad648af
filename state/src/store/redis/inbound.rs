//! The inbound pipeline on Redis: the deduplicated inbox, message statuses,
//! and the delivery queue (see `store/inbound.rs` for the flow).
//!
//! Each operation that touches several keys is one Lua script over keys of
//! one customer, which share a hash tag and so a cluster node. The index of
//! delivery customers is the one global key; it is written next to (not
//! atomically with) the target, target first, so a worker that finds a
//! customer in the index can rely on reading its target, or skip it.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use serde_json::json;

use super::{RedisStore, backend, decode_json, encode_json};
use crate::CustomerId;
use crate::keyspace;
use crate::store::inbound::rules::{self, DELIVERY_GROUP};
use crate::store::rules::{page_limit, parse_stream_id};
use crate::store::{
    Appended, DEAD_LETTER_MAX_LEN, DELIVERY_QUEUE_MAX_LEN, DeadLetter, DeliveryJob, DeliveryTarget,
    INBOUND_DEDUP_TTL, InboundEvent, MESSAGE_STATUS_TTL, Result, StoreError,
};

static APPEND_INBOUND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("append_inbound.lua")));
static CLAIM_DELIVERIES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("claim_deliveries.lua")));
static COMPLETE_DELIVERY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("complete_delivery.lua")));
static RETRY_DELIVERY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retry_delivery.lua")));
static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("dead_letter.lua")));
static REPLAY_DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("replay_dead_letter.lua")));

/// A stream entry as scripts and `XRANGE` return it: the id and its field-value list.
type RawEntry = (String, Vec<String>);

pub(super) async fn append_inbound(
    store: &RedisStore,
    customer: &CustomerId,
    inbound: &InboundEvent,
    max_len: usize,
) -> Result<Appended> {
    let json = encode_json("inbound event", &inbound.event)?;
    let mut call = APPEND_INBOUND.prepare_invoke();
    call.key(keyspace::inbound_dedup(customer, &inbound.dedup_key))
        .key(keyspace::stream(crate::store::StreamKind::Inbox, customer))
        .key(keyspace::delivery_target(customer))
        .key(keyspace::delivery_queue(customer))
        .arg(INBOUND_DEDUP_TTL.as_secs())
        .arg(max_len.max(1))
        .arg(&json)
        .arg(DELIVERY_QUEUE_MAX_LEN);
    if let Some(status) = &inbound.status_of {
        call.key(keyspace::message_status(customer, &status.message_id))
            .arg(status.rank)
            .arg(MESSAGE_STATUS_TTL.as_secs());
    }

    let (stored, id): (bool, String) = call
        .invoke_async(&mut store.conn())
        .await
        .map_err(|e| backend("appending an inbound event", &e))?;
    Ok(if stored {
        Appended::Stored { id }
    } else {
        Appended::Duplicate { id }
    })
}

pub(super) async fn message_status(
    store: &RedisStore,
    customer: &CustomerId,
    message_id: &str,
) -> Result<Option<serde_json::Value>> {
    let key = keyspace::message_status(customer, message_id);
    let raw: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut store.conn())
        .await
        .map_err(|e| backend("GET", &e))?;
    let Some(raw) = raw else {
        return Ok(None);
    };

    let (_rank, json) = raw.split_once('\n').ok_or_else(|| StoreError::Corrupt {
        key: key.clone(),
        reason: "a message status lacks its rank".into(),
    })?;
    decode_json(&key, "message status", json).map(Some)
}

pub(super) async fn put_delivery_target(
    store: &RedisStore,
    customer: &CustomerId,
    target: &DeliveryTarget,
) -> Result<()> {
    store
        .set_json(&keyspace::delivery_target(customer), "delivery target", target)
        .await?;
    redis::cmd("SADD")
        .arg(keyspace::DELIVERY_CUSTOMERS)
        .arg(customer.as_str())
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(|e| backend("SADD", &e))
}

pub(super) async fn delete_delivery_target(store: &RedisStore, customer: &CustomerId) -> Result<bool> {
    forget_delivery_customer(store, customer).await?;
    Ok(store.del(&[keyspace::delivery_target(customer)]).await? > 0)
}

/// Removes a customer from the index of delivery customers.
pub(super) async fn forget_delivery_customer(store: &RedisStore, customer: &CustomerId) -> Result<()> {
    redis::cmd("SREM")
        .arg(keyspace::DELIVERY_CUSTOMERS)
        .arg(customer.as_str())
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(|e| backend("SREM", &e))
}

pub(super) async fn delivery_customers(store: &RedisStore) -> Result<Vec<CustomerId>> {
    // One SMEMBERS: the index holds one short id per customer with a
    // target, which stays a small reply for tens of thousands of customers.
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keyspace::DELIVERY_CUSTOMERS)
        .query_async(&mut store.conn())
        .await
        .map_err(|e| backend("SMEMBERS", &e))?;

    // A member that is not a customer id cannot have a target: skip it
    // rather than stop every worker on it.
    Ok(members
        .into_iter()
        .filter_map(|member| CustomerId::new(member).ok())
        .collect())
}

pub(super) async fn claim_deliveries(
    store: &RedisStore,
    customer: &CustomerId,
    consumer: &str,
    claim_timeout: Duration,
    limit: usize,
) -> Result<Vec<DeliveryJob>> {
    rules::check_consumer(consumer)?;
    let queue = keyspace::delivery_queue(customer);
    let entries: Vec<RawEntry> = CLAIM_DELIVERIES
        .key(&queue)
        .key(keyspace::delivery_retries(customer))
        .arg(DELIVERY_GROUP)
        .arg(consumer)
        .arg(rules::millis(claim_timeout).max(1))
        .arg(page_limit(limit))
        .arg(DELIVERY_QUEUE_MAX_LEN)
        .invoke_async(&mut store.conn())
        .await
        .map_err(|e| backend("claiming deliveries", &e))?;

    entries
        .into_iter()
        .map(|(id, fields)| {
            let mut fields = field_map(fields);
            let attempt = match fields.remove("attempt") {
                Some(attempt) => attempt.parse().map_err(|_| corrupt(&queue, &id, "attempt"))?,
                None => 0,
            };
            let inbox_id = fields
                .remove("inbox_id")
                .ok_or_else(|| corrupt(&queue, &id, "inbox_id"))?;
            let event = fields
                .remove("event")
                .ok_or_else(|| corrupt(&queue, &id, "event"))?;
            Ok(DeliveryJob {
                event: decode_json(&queue, "queued event", &event)?,
                inbox_id,
                attempt,
                last_error: fields.remove("error").filter(|error| !error.is_empty()),
                id,
            })
        })
        .collect()
}

pub(super) async fn complete_delivery(
    store: &RedisStore,
    customer: &CustomerId,
    job_id: &str,
) -> Result<bool> {
    parse_stream_id(job_id)?;
    COMPLETE_DELIVERY
        .key(keyspace::delivery_queue(customer))
        .arg(DELIVERY_GROUP)
        .arg(job_id)
        .invoke_async(&mut store.conn())
        .await
        .map_err(|e| backend("completing a delivery", &e))
}

pub(super) async fn retry_delivery(
    store: &RedisStore,
    customer: &CustomerId,
    job: &DeliveryJob,
    delay: Duration,
    error: &str,
) -> Result<bool> {
    parse_stream_id(&job.id)?;
    // The job id keeps two retries of equal content apart in the set.
    let member = json!({
        "job": job.id,
        "inbox_id": job.inbox_id,
        "event": encode_json("queued event", &job.event)?,
        "attempt": job.attempt.saturating_add(1),
        "error": error,
    });
    RETRY_DELIVERY
        .key(keyspace::delivery_queue(customer))
        .key(keyspace::delivery_retries(customer))
        .arg(DELIVERY_GROUP)
        .arg(&job.id)
        .arg(rules::millis(delay))
        .arg(member.to_string())
        .invoke_async(&mut store.conn())
        .await
        .map_err(|e| backend("scheduling a delivery retry", &e))
}

pub(super) async fn dead_letter_delivery(
    store: &RedisStore,
    customer: &CustomerId,
    job: &DeliveryJob,
    error: &str,
) -> Result<Option<String>> {
    parse_stream_id(&job.id)?;
    DEAD_LETTER
        .key(keyspace::delivery_queue(customer))
        .key(keyspace::dead_letters(customer))
        .arg(DELIVERY_GROUP)
        .arg(&job.id)
        .arg(DEAD_LETTER_MAX_LEN)
        .arg(&job.inbox_id)
        .arg(encode_json("queued event", &job.event)?)
        .arg(job.attempt.saturating_add(1))
        .arg(error)
        .invoke_async(&mut store.conn())
        .await
        .map_err(|e| backend("dead-lettering a delivery", &e))
}

pub(super) async fn dead_letters(
    store: &RedisStore,
    customer: &CustomerId,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    let key = keyspace::dead_letters(customer);
    let start = match after {
        Some(id) => {
            parse_stream_id(id)?;
            format!("({id}")
        }
        None => "-".to_owned(),
    };
    let entries: Vec<RawEntry> = redis::cmd("XRANGE")
        .arg(&key)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(page_limit(limit))
        .query_async(&mut store.conn())
        .await
        .map_err(|e| backend("XRANGE", &e))?;

    entries
        .into_iter()
        .map(|(id, fields)| {
            let (ms, _) = parse_stream_id(&id)?;
            let mut fields = field_map(fields);
            let mut take =
                |field: &'static str| fields.remove(field).ok_or_else(|| corrupt(&key, &id, field));
            let inbox_id = take("inbox_id")?;
            let event = take("event")?;
            let attempts = take("attempts")?;
            let error = take("error")?;
            Ok(DeadLetter {
                event: decode_json(&key, "dead-lettered event", &event)?,
                attempts: attempts.parse().map_err(|_| corrupt(&key, &id, "attempts"))?,
                failed_at: rules::stream_id_time(ms),
                inbox_id,
                error,
                id,
            })
        })
        .collect()
}

pub(super) async fn replay_dead_letter(store: &RedisStore, customer: &CustomerId, id: &str) -> Result<bool> {
    parse_stream_id(id)?;
    REPLAY_DEAD_LETTER
        .key(keyspace::dead_letters(customer))
        .key(keyspace::delivery_queue(customer))
        .arg(id)
        .arg(DELIVERY_QUEUE_MAX_LEN)
        .invoke_async(&mut store.conn())
        .await
        .map_err(|e| backend("replaying a dead letter", &e))
}

/// A stream entry's `field, value, …` list as a map.
fn field_map(fields: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::with_capacity(fields.len() / 2);
    let mut fields = fields.into_iter();
    while let (Some(field), Some(value)) = (fields.next(), fields.next()) {
        map.insert(field, value);
    }
    map
}

fn corrupt(key: &str, id: &str, field: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("entry {id} lacks a valid {field:?} field"),
    }
}
