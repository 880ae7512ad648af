//! The inbound pipeline in memory, with the semantics of the Redis scripts
//! (`store/redis/*.lua`): one dedup entry, message status, target, queue,
//! retry schedule and dead-letter stream per Redis key, expiring and
//! trimming alike, claims that time out on this store's clock.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Tables, format_stream_id, next_stream_id};
use crate::CustomerId;
use crate::store::inbound::rules::{self, stream_id_time};
use crate::store::rules::{page_limit, parse_stream_id};
use crate::store::{
    Appended, DEAD_LETTER_MAX_LEN, DELIVERY_QUEUE_MAX_LEN, DeadLetter, DeliveryJob, DeliveryTarget,
    INBOUND_DEDUP_TTL, InboundEvent, MESSAGE_STATUS_TTL, Result, StreamKind,
};

/// A stream id, `(ms, seq)`.
type StreamId = (u64, u64);

/// What the inbound pipeline keeps.
#[derive(Default)]
pub(super) struct InboundTables {
    /// Dedup key → the inbox id of the first copy, until it expires.
    dedup: HashMap<(CustomerId, String), Expiring<String>>,
    /// Message id → the rank and status event recorded for it, until it expires.
    statuses: HashMap<(CustomerId, String), Expiring<(u8, serde_json::Value)>>,
    targets: HashMap<CustomerId, DeliveryTarget>,
    queues: HashMap<CustomerId, Queue>,
    /// Scheduled retries by due time (ms) and queue entry id.
    retries: HashMap<CustomerId, BTreeMap<(u64, String), Retry>>,
    dead: HashMap<CustomerId, DeadStream>,
}

struct Expiring<T> {
    value: T,
    expires_at: Timestamp,
}

impl<T> Expiring<T> {
    fn live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// One customer's delivery queue: a stream read by one consumer group.
#[derive(Default)]
struct Queue {
    last: StreamId,
    entries: BTreeMap<StreamId, QueueEntry>,
}

struct QueueEntry {
    inbox_id: String,
    event: serde_json::Value,
    attempt: u32,
    error: Option<String>,
    /// Who holds the entry and since when; `None` until first claimed.
    claim: Option<(String, Timestamp)>,
}

struct Retry {
    inbox_id: String,
    event: serde_json::Value,
    attempt: u32,
    error: String,
}

#[derive(Default)]
struct DeadStream {
    last: StreamId,
    entries: BTreeMap<StreamId, DeadEntry>,
}

struct DeadEntry {
    inbox_id: String,
    event: serde_json::Value,
    attempts: u32,
    error: String,
}

impl Queue {
    fn push(&mut self, now_ms: u64, entry: QueueEntry) {
        let id = next_stream_id(&mut self.last, now_ms);
        self.entries.insert(id, entry);
        while self.entries.len() > DELIVERY_QUEUE_MAX_LEN {
            self.entries.pop_first();
        }
    }

    /// Takes a claimed entry out of the queue; `None` if it is not there or
    /// nobody holds it (as `XACK` answers 0).
    fn take_claimed(&mut self, id: StreamId) -> Option<QueueEntry> {
        let entry = self.entries.remove(&id)?;
        entry.claim.is_some().then_some(entry)
    }
}

fn millis_of(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

fn after(now: Timestamp, duration: Duration) -> Timestamp {
    let duration = SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX);
    now.saturating_add(duration).unwrap_or(Timestamp::MAX)
}

impl Tables {
    pub(super) fn append_inbound(
        &mut self,
        now: Timestamp,
        customer: &CustomerId,
        inbound: &InboundEvent,
        max_len: usize,
    ) -> Appended {
        let dedup_key = (customer.clone(), inbound.dedup_key.clone());
        if let Some(first) = self.inbound.dedup.get(&dedup_key).filter(|e| e.live(now)) {
            return Appended::Duplicate {
                id: first.value.clone(),
            };
        }

        let now_ms = millis_of(now);
        let id = self
            .streams
            .entry((StreamKind::Inbox, customer.clone()))
            .or_default()
            .push(now_ms, inbound.event.clone(), max_len);
        let id = format_stream_id(id);
        self.inbound.dedup.insert(
            dedup_key,
            Expiring {
                value: id.clone(),
                expires_at: after(now, INBOUND_DEDUP_TTL),
            },
        );

        if self.inbound.targets.contains_key(customer) {
            self.inbound.queues.entry(customer.clone()).or_default().push(
                now_ms,
                QueueEntry {
                    inbox_id: id.clone(),
                    event: inbound.event.clone(),
                    attempt: 0,
                    error: None,
                    claim: None,
                },
            );
        }

        if let Some(status) = &inbound.status_of {
            let key = (customer.clone(), status.message_id.clone());
            let current = self
                .inbound
                .statuses
                .get(&key)
                .filter(|e| e.live(now))
                .map(|e| e.value.0);
            if current.is_none_or(|rank| status.rank >= rank) {
                self.inbound.statuses.insert(
                    key,
                    Expiring {
                        value: (status.rank, inbound.event.clone()),
                        expires_at: after(now, MESSAGE_STATUS_TTL),
                    },
                );
            }
        }
        Appended::Stored { id }
    }

    pub(super) fn message_status(
        &self,
        now: Timestamp,
        customer: &CustomerId,
        message_id: &str,
    ) -> Option<serde_json::Value> {
        self.inbound
            .statuses
            .get(&(customer.clone(), message_id.to_owned()))
            .filter(|e| e.live(now))
            .map(|e| e.value.1.clone())
    }

    pub(super) fn put_delivery_target(&mut self, customer: &CustomerId, target: &DeliveryTarget) {
        self.inbound.targets.insert(customer.clone(), target.clone());
    }

    pub(super) fn get_delivery_target(&self, customer: &CustomerId) -> Option<DeliveryTarget> {
        self.inbound.targets.get(customer).cloned()
    }

    pub(super) fn delete_delivery_target(&mut self, customer: &CustomerId) -> bool {
        self.inbound.targets.remove(customer).is_some()
    }

    pub(super) fn delivery_customers(&self) -> Vec<CustomerId> {
        self.inbound.targets.keys().cloned().collect()
    }

    pub(super) fn claim_deliveries(
        &mut self,
        now: Timestamp,
        customer: &CustomerId,
        consumer: &str,
        claim_timeout: Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>> {
        rules::check_consumer(consumer)?;
        let limit = page_limit(limit);
        let now_ms = millis_of(now);

        // Due retries go back into the queue first.
        if let Some(retries) = self.inbound.retries.get_mut(customer) {
            let due: Vec<(u64, String)> = retries
                .range(..(now_ms.saturating_add(1), String::new()))
                .take(limit)
                .map(|(key, _)| key.clone())
                .collect();
            let queue = self.inbound.queues.entry(customer.clone()).or_default();
            for key in due {
                if let Some(retry) = retries.remove(&key) {
                    queue.push(
                        now_ms,
                        QueueEntry {
                            inbox_id: retry.inbox_id,
                            event: retry.event,
                            attempt: retry.attempt,
                            error: Some(retry.error),
                            claim: None,
                        },
                    );
                }
            }
            if retries.is_empty() {
                self.inbound.retries.remove(customer);
            }
        }

        let Some(queue) = self.inbound.queues.get_mut(customer) else {
            return Ok(Vec::new());
        };

        // Entries held past the claim timeout, then entries never claimed.
        let stale_before = SignedDuration::try_from(claim_timeout)
            .ok()
            .and_then(|timeout| now.checked_sub(timeout).ok());
        let is_stale = |claim: &Option<(String, Timestamp)>| match (claim, stale_before) {
            (Some((_, at)), Some(stale_before)) => *at <= stale_before,
            (Some(_), None) | (None, _) => false,
        };
        let mut ids: Vec<StreamId> = queue
            .entries
            .iter()
            .filter(|(_, entry)| is_stale(&entry.claim))
            .map(|(id, _)| *id)
            .take(limit)
            .collect();
        let room = limit - ids.len();
        ids.extend(
            queue
                .entries
                .iter()
                .filter(|(_, entry)| entry.claim.is_none())
                .map(|(id, _)| *id)
                .take(room),
        );

        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = queue.entries.get_mut(&id) {
                entry.claim = Some((consumer.to_owned(), now));
                jobs.push(DeliveryJob {
                    id: format_stream_id(id),
                    inbox_id: entry.inbox_id.clone(),
                    event: entry.event.clone(),
                    attempt: entry.attempt,
                    last_error: entry.error.clone(),
                });
            }
        }
        Ok(jobs)
    }

    pub(super) fn complete_delivery(&mut self, customer: &CustomerId, job_id: &str) -> Result<bool> {
        let id = parse_stream_id(job_id)?;
        Ok(self
            .inbound
            .queues
            .get_mut(customer)
            .and_then(|queue| queue.take_claimed(id))
            .is_some())
    }

    pub(super) fn retry_delivery(
        &mut self,
        now: Timestamp,
        customer: &CustomerId,
        job: &DeliveryJob,
        delay: Duration,
        error: &str,
    ) -> Result<bool> {
        let id = parse_stream_id(&job.id)?;
        let taken = self
            .inbound
            .queues
            .get_mut(customer)
            .and_then(|queue| queue.take_claimed(id));
        if taken.is_none() {
            return Ok(false);
        }

        let due = millis_of(now).saturating_add(rules::millis(delay));
        self.inbound.retries.entry(customer.clone()).or_default().insert(
            (due, job.id.clone()),
            Retry {
                inbox_id: job.inbox_id.clone(),
                event: job.event.clone(),
                attempt: job.attempt.saturating_add(1),
                error: error.to_owned(),
            },
        );
        Ok(true)
    }

    pub(super) fn dead_letter_delivery(
        &mut self,
        now: Timestamp,
        customer: &CustomerId,
        job: &DeliveryJob,
        error: &str,
    ) -> Result<Option<String>> {
        let id = parse_stream_id(&job.id)?;
        let taken = self
            .inbound
            .queues
            .get_mut(customer)
            .and_then(|queue| queue.take_claimed(id));
        if taken.is_none() {
            return Ok(None);
        }

        let dead = self.inbound.dead.entry(customer.clone()).or_default();
        let id = next_stream_id(&mut dead.last, millis_of(now));
        dead.entries.insert(
            id,
            DeadEntry {
                inbox_id: job.inbox_id.clone(),
                event: job.event.clone(),
                attempts: job.attempt.saturating_add(1),
                error: error.to_owned(),
            },
        );
        while dead.entries.len() > DEAD_LETTER_MAX_LEN {
            dead.entries.pop_first();
        }
        Ok(Some(format_stream_id(id)))
    }

    pub(super) fn dead_letters(
        &self,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        let after = after.map(parse_stream_id).transpose()?;
        let Some(dead) = self.inbound.dead.get(customer) else {
            return Ok(Vec::new());
        };
        Ok(dead
            .entries
            .iter()
            .filter(|(id, _)| after.is_none_or(|after| **id > after))
            .take(page_limit(limit))
            .map(|(id, entry)| DeadLetter {
                id: format_stream_id(*id),
                inbox_id: entry.inbox_id.clone(),
                event: entry.event.clone(),
                attempts: entry.attempts,
                error: entry.error.clone(),
                failed_at: stream_id_time(id.0),
            })
            .collect())
    }

    pub(super) fn replay_dead_letter(
        &mut self,
        now: Timestamp,
        customer: &CustomerId,
        id: &str,
    ) -> Result<bool> {
        let id = parse_stream_id(id)?;
        let Some(entry) = self
            .inbound
            .dead
            .get_mut(customer)
            .and_then(|dead| dead.entries.remove(&id))
        else {
            return Ok(false);
        };

        self.inbound.queues.entry(customer.clone()).or_default().push(
            millis_of(now),
            QueueEntry {
                inbox_id: entry.inbox_id,
                event: entry.event,
                attempt: 0,
                error: None,
                claim: None,
            },
        );
        Ok(true)
    }

    /// Removes every inbound key of `customer`; returns how many Redis keys that is.
    pub(super) fn purge_inbound(&mut self, now: Timestamp, customer: &CustomerId) -> u64 {
        let inbound = &mut self.inbound;
        let mut removed = 0;

        // Expired entries are gone in Redis already: drop them uncounted.
        inbound.dedup.retain(|_, entry| entry.live(now));
        inbound.statuses.retain(|_, entry| entry.live(now));

        let before = inbound.dedup.len();
        inbound.dedup.retain(|(owner, _), _| owner != customer);
        removed += before - inbound.dedup.len();
        let before = inbound.statuses.len();
        inbound.statuses.retain(|(owner, _), _| owner != customer);
        removed += before - inbound.statuses.len();

        removed += usize::from(inbound.targets.remove(customer).is_some());
        removed += usize::from(inbound.queues.remove(customer).is_some());
        removed += usize::from(inbound.retries.remove(customer).is_some());
        removed += usize::from(inbound.dead.remove(customer).is_some());
        removed as u64
    }
}
