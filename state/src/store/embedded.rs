//! The in-process store for `dev` mode and tests.
//!
//! Plain maps behind one mutex, with the Redis store's semantics: the same
//! route ownership rules, audit days that expire [`AUDIT_RETENTION_DAYS`]
//! days after they end, the same GCRA rate limit, stream ids `<ms>-<seq>`
//! that only increase, and one "key" per thing Redis would keep in a key (so
//! [`Store::purge_customer`] counts alike). Time comes from a [`Clock`], so
//! tests can move it. Nothing survives the process. The inbound pipeline
//! (inbox dedup, message statuses, delivery queue) is in `embedded/inbound.rs`.
//!
//! The mutex is never held across an `.await`: every method takes it, does
//! its work on the maps, and lets it go.
//!
//! [`AUDIT_RETENTION_DAYS`]: super::AUDIT_RETENTION_DAYS

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::Platform;
use jiff::Timestamp;

use super::rules::{self, AuditDay, AuditWindow};
use super::{
    Appended, AuditEntry, AuditPage, AuditQuery, ConnectionState, CustomerSummary, DeadLetter, DeliveryJob,
    DeliveryTarget, InboundEvent, RateDecision, RateLimit, Result, Route, RouteClaim, Store, StoreError,
    StreamEvent, StreamKind, UsageCounters,
};
use crate::clock::{Clock, SystemClock};
use crate::vault::Envelope;
use crate::{ApiKeyHash, CustomerId};

mod inbound;

/// The [`Store`] kept in this process's memory.
///
/// Clones share the same state.
#[derive(Clone)]
pub struct EmbeddedStore {
    clock: Arc<dyn Clock>,
    tables: Arc<Mutex<Tables>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Default for EmbeddedStore {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store reading time from `clock`: audit expiry, the rate
    /// limit, stream ids and the audit read window follow it.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            tables: Arc::new(Mutex::new(Tables::default())),
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // Every method leaves the maps consistent before anything that could
        // panic, so the state behind a poisoned lock is still sound.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything the store holds. Each map entry stands for one Redis key.
#[derive(Default)]
struct Tables {
    credentials: HashMap<(CustomerId, Platform), Envelope>,
    connections: HashMap<CustomerId, BTreeMap<Platform, ConnectionState>>,
    routes: HashMap<Route, CustomerId>,
    api_keys: HashMap<String, CustomerSummary>,
    audit: HashMap<CustomerId, BTreeMap<AuditDay, AuditLog>>,
    /// Tells apart audit entries of the same microsecond, in append order.
    audit_seq: u64,
    usage: HashMap<(CustomerId, String), UsageCounters>,
    /// The GCRA theoretical arrival time of each customer, in microseconds.
    rates: HashMap<CustomerId, i64>,
    streams: HashMap<(StreamKind, CustomerId), EventStream>,
    /// Dedup entries, message statuses, delivery targets, queues and dead letters.
    inbound: inbound::InboundTables,
}

/// One day of one customer's audit log, by score then append order.
type AuditLog = BTreeMap<(i64, u64), AuditEntry>;

/// One customer's stream of one kind.
#[derive(Default)]
struct EventStream {
    events: VecDeque<((u64, u64), serde_json::Value)>,
    /// The last id handed out; ids keep increasing after trims.
    last: (u64, u64),
}

impl EventStream {
    /// Appends an event at `now_ms`, trims to `max_len` (at least 1), and
    /// returns the event's id.
    fn push(&mut self, now_ms: u64, event: serde_json::Value, max_len: usize) -> (u64, u64) {
        let id = next_stream_id(&mut self.last, now_ms);
        self.events.push_back((id, event));
        while self.events.len() > max_len.max(1) {
            self.events.pop_front();
        }
        id
    }
}

/// The id of the next entry of a stream whose last id is `last`, as Redis
/// issues them: the time in milliseconds, and a sequence number within one
/// millisecond (or when the clock went back). Updates `last`.
fn next_stream_id(last: &mut (u64, u64), now_ms: u64) -> (u64, u64) {
    let (last_ms, last_seq) = *last;
    let id = if now_ms > last_ms {
        (now_ms, 0)
    } else {
        (last_ms, last_seq + 1)
    };
    *last = id;
    id
}

impl Tables {
    /// Drops the audit days of `customer` that have expired at `now`.
    fn expire_audit(&mut self, customer: &CustomerId, now: Timestamp) {
        if let Some(days) = self.audit.get_mut(customer) {
            days.retain(|day, _| !day.is_expired(now));
            if days.is_empty() {
                self.audit.remove(customer);
            }
        }
    }

    /// Drops a rate-limit state whose arrival time has passed, as Redis expires it.
    fn expire_rate(&mut self, customer: &CustomerId, now_micros: i64) {
        if self.rates.get(customer).is_some_and(|tat| *tat <= now_micros) {
            self.rates.remove(customer);
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn put_credentials(
        &self,
        customer: &CustomerId,
        platform: Platform,
        envelope: &Envelope,
    ) -> Result<()> {
        self.tables()
            .credentials
            .insert((customer.clone(), platform), envelope.clone());
        Ok(())
    }

    async fn get_credentials(&self, customer: &CustomerId, platform: Platform) -> Result<Option<Envelope>> {
        Ok(self
            .tables()
            .credentials
            .get(&(customer.clone(), platform))
            .cloned())
    }

    async fn delete_credentials(&self, customer: &CustomerId, platform: Platform) -> Result<bool> {
        Ok(self
            .tables()
            .credentials
            .remove(&(customer.clone(), platform))
            .is_some())
    }

    async fn put_connection_state(&self, customer: &CustomerId, state: &ConnectionState) -> Result<()> {
        self.tables()
            .connections
            .entry(customer.clone())
            .or_default()
            .insert(state.platform, state.clone());
        Ok(())
    }

    async fn connection_states(&self, customer: &CustomerId) -> Result<Vec<ConnectionState>> {
        let tables = self.tables();
        let Some(states) = tables.connections.get(customer) else {
            return Ok(Vec::new());
        };
        Ok(Platform::ALL
            .iter()
            .filter_map(|platform| states.get(platform).cloned())
            .collect())
    }

    async fn delete_connection_state(&self, customer: &CustomerId, platform: Platform) -> Result<()> {
        let mut tables = self.tables();
        if let Some(states) = tables.connections.get_mut(customer) {
            states.remove(&platform);
            if states.is_empty() {
                tables.connections.remove(customer);
            }
        }
        Ok(())
    }

    async fn claim_route(&self, route: &Route, customer: &CustomerId) -> Result<RouteClaim> {
        let mut tables = self.tables();
        Ok(match tables.routes.get(route) {
            None => {
                tables.routes.insert(route.clone(), customer.clone());
                RouteClaim::Claimed
            }
            Some(owner) if owner == customer => RouteClaim::AlreadyOwned,
            Some(owner) => RouteClaim::Conflict { owner: owner.clone() },
        })
    }

    async fn route_owner(&self, route: &Route) -> Result<Option<CustomerId>> {
        Ok(self.tables().routes.get(route).cloned())
    }

    async fn release_route(&self, route: &Route, customer: &CustomerId) -> Result<bool> {
        let mut tables = self.tables();
        if tables.routes.get(route) == Some(customer) {
            tables.routes.remove(route);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn put_api_key(&self, hash: &ApiKeyHash, summary: &CustomerSummary) -> Result<()> {
        self.tables()
            .api_keys
            .insert(hash.as_hex().to_owned(), summary.clone());
        Ok(())
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<CustomerSummary>> {
        Ok(self.tables().api_keys.get(hash.as_hex()).cloned())
    }

    async fn delete_api_key(&self, hash: &ApiKeyHash) -> Result<()> {
        self.tables().api_keys.remove(hash.as_hex());
        Ok(())
    }

    async fn append_audit(&self, customer: &CustomerId, entry: &AuditEntry) -> Result<()> {
        let now = self.clock.now();
        let day = AuditDay::of(entry.at);
        let mut tables = self.tables();
        tables.expire_audit(customer, now);

        // An entry of a day that has already expired is gone at once, as
        // Redis deletes a key whose expiry lies in the past.
        if day.is_expired(now) {
            return Ok(());
        }
        tables.audit_seq += 1;
        let seq = tables.audit_seq;
        tables
            .audit
            .entry(customer.clone())
            .or_default()
            .entry(day)
            .or_default()
            .insert((rules::audit_score(entry.at), seq), entry.clone());
        Ok(())
    }

    async fn read_audit(&self, customer: &CustomerId, query: &AuditQuery) -> Result<AuditPage> {
        let now = self.clock.now();
        let Some(window) = AuditWindow::new(query, now)? else {
            return Ok(AuditPage {
                entries: Vec::new(),
                next: None,
            });
        };
        let mut tables = self.tables();
        tables.expire_audit(customer, now);
        let Some(days) = tables.audit.get(customer) else {
            return Ok(AuditPage {
                entries: Vec::new(),
                next: None,
            });
        };

        // One entry more than the page holds tells whether there is a next page.
        let wanted = window.limit + 1;
        let mut entries = Vec::new();
        for (&day, log) in days.range(window.first_day..=window.last_day) {
            let (from, to) = window.scores_of(day);
            let in_range = log
                .range((from, 0)..(to, 0))
                .skip(window.skip_in(day))
                .take(wanted - entries.len())
                .map(|(_, entry)| entry.clone());
            entries.extend(in_range);
            if entries.len() >= wanted {
                break;
            }
        }

        let next = if entries.len() > window.limit {
            entries.truncate(window.limit);
            window.next_cursor(&entries)
        } else {
            None
        };
        Ok(AuditPage { entries, next })
    }

    async fn incr_usage(&self, customer: &CustomerId, period: &str, counter: &str, by: u64) -> Result<u64> {
        // Redis counters are signed 64-bit; the same bound applies here.
        let limit = i64::MAX.unsigned_abs();
        let mut tables = self.tables();
        let value = tables
            .usage
            .entry((customer.clone(), period.to_owned()))
            .or_default()
            .entry(counter.to_owned())
            .or_default();
        let next = value
            .checked_add(by)
            .filter(|next| *next <= limit)
            .ok_or_else(|| {
                StoreError::InvalidArgument(format!("usage counter {counter:?} would overflow"))
            })?;
        *value = next;
        Ok(next)
    }

    async fn usage(&self, customer: &CustomerId, period: &str) -> Result<UsageCounters> {
        Ok(self
            .tables()
            .usage
            .get(&(customer.clone(), period.to_owned()))
            .cloned()
            .unwrap_or_default())
    }

    async fn check_rate(&self, customer: &CustomerId, limit: RateLimit) -> Result<RateDecision> {
        // The arithmetic of `redis/check_rate.lua`, on this store's clock.
        let (interval, tolerance) = rules::gcra_micros(limit)?;
        let (interval, tolerance) = (saturating_i64(interval), saturating_i64(tolerance));
        let now = rules::audit_score(self.clock.now());
        let mut tables = self.tables();
        tables.expire_rate(customer, now);

        let tat = tables.rates.get(customer).copied().unwrap_or(now).max(now);
        let next_tat = tat.saturating_add(interval);
        let allowed_at = next_tat.saturating_sub(tolerance);
        if now < allowed_at {
            let wait = allowed_at.abs_diff(now);
            return Ok(RateDecision::Limited {
                retry_after: Duration::from_micros(wait),
            });
        }
        tables.rates.insert(customer.clone(), next_tat);
        Ok(RateDecision::Allowed)
    }

    async fn append_event(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        event: &serde_json::Value,
        max_len: usize,
    ) -> Result<String> {
        let now_ms = u64::try_from(self.clock.now().as_millisecond()).unwrap_or(0);
        let mut tables = self.tables();
        let stream = tables.streams.entry((kind, customer.clone())).or_default();
        let id = stream.push(now_ms, event.clone(), max_len);
        Ok(format_stream_id(id))
    }

    async fn read_events(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamEvent>> {
        let after = after.map(rules::parse_stream_id).transpose()?;
        let tables = self.tables();
        let Some(stream) = tables.streams.get(&(kind, customer.clone())) else {
            return Ok(Vec::new());
        };
        Ok(stream
            .events
            .iter()
            .filter(|(id, _)| after.is_none_or(|after| *id > after))
            .take(rules::page_limit(limit))
            .map(|(id, event)| StreamEvent {
                id: format_stream_id(*id),
                event: event.clone(),
            })
            .collect())
    }

    async fn append_inbound(
        &self,
        customer: &CustomerId,
        inbound: &InboundEvent,
        max_len: usize,
    ) -> Result<Appended> {
        let now = self.clock.now();
        Ok(self.tables().append_inbound(now, customer, inbound, max_len))
    }

    async fn message_status(
        &self,
        customer: &CustomerId,
        message_id: &str,
    ) -> Result<Option<serde_json::Value>> {
        let now = self.clock.now();
        Ok(self.tables().message_status(now, customer, message_id))
    }

    async fn put_delivery_target(&self, customer: &CustomerId, target: &DeliveryTarget) -> Result<()> {
        self.tables().put_delivery_target(customer, target);
        Ok(())
    }

    async fn get_delivery_target(&self, customer: &CustomerId) -> Result<Option<DeliveryTarget>> {
        Ok(self.tables().get_delivery_target(customer))
    }

    async fn delete_delivery_target(&self, customer: &CustomerId) -> Result<bool> {
        Ok(self.tables().delete_delivery_target(customer))
    }

    async fn delivery_customers(&self) -> Result<Vec<CustomerId>> {
        Ok(self.tables().delivery_customers())
    }

    async fn claim_deliveries(
        &self,
        customer: &CustomerId,
        consumer: &str,
        claim_timeout: Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>> {
        let now = self.clock.now();
        self.tables()
            .claim_deliveries(now, customer, consumer, claim_timeout, limit)
    }

    async fn complete_delivery(&self, customer: &CustomerId, job_id: &str) -> Result<bool> {
        self.tables().complete_delivery(customer, job_id)
    }

    async fn retry_delivery(
        &self,
        customer: &CustomerId,
        job: &DeliveryJob,
        delay: Duration,
        error: &str,
    ) -> Result<bool> {
        let now = self.clock.now();
        self.tables().retry_delivery(now, customer, job, delay, error)
    }

    async fn dead_letter_delivery(
        &self,
        customer: &CustomerId,
        job: &DeliveryJob,
        error: &str,
    ) -> Result<Option<String>> {
        let now = self.clock.now();
        self.tables().dead_letter_delivery(now, customer, job, error)
    }

    async fn dead_letters(
        &self,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        self.tables().dead_letters(customer, after, limit)
    }

    async fn replay_dead_letter(&self, customer: &CustomerId, id: &str) -> Result<bool> {
        let now = self.clock.now();
        self.tables().replay_dead_letter(now, customer, id)
    }

    async fn purge_customer(&self, customer: &CustomerId) -> Result<u64> {
        let now = self.clock.now();
        let mut tables = self.tables();
        tables.expire_audit(customer, now);
        tables.expire_rate(customer, rules::audit_score(now));

        // Count one per Redis key: each credential, the connection hash, each
        // audit day, each usage period, the rate-limit state, each stream.
        let mut removed = 0;
        let mut count = |gone: usize| removed += gone as u64;

        let before = tables.credentials.len();
        tables.credentials.retain(|(owner, _), _| owner != customer);
        count(before - tables.credentials.len());

        count(usize::from(tables.connections.remove(customer).is_some()));
        count(tables.audit.remove(customer).map_or(0, |days| days.len()));

        let before = tables.usage.len();
        tables.usage.retain(|(owner, _), _| owner != customer);
        count(before - tables.usage.len());

        count(usize::from(tables.rates.remove(customer).is_some()));

        let before = tables.streams.len();
        tables.streams.retain(|(_, owner), _| owner != customer);
        count(before - tables.streams.len());

        let inbound = tables.purge_inbound(now, customer);
        Ok(removed + inbound)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

fn format_stream_id((ms, seq): (u64, u64)) -> String {
    format!("{ms}-{seq}")
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
