//! The runtime state the operator writes and the server reads.
//!
//! [`Store`] is the one interface; [`RedisStore`] backs a
//! cluster deployment (a single Redis or a Redis Cluster) and
//! [`EmbeddedStore`] backs `dev` mode and tests.
//! Both pass the same conformance suite (`state/tests/store_conformance.rs`).
//!
//! Every per-customer key shares the customer's hash tag (see
//! [`keyspace`](crate::keyspace)), so operations that touch several keys of
//! one customer stay atomic on a Redis Cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::{Plan, Platform};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::vault::Envelope;
use crate::{ApiKeyHash, CustomerId};

pub mod embedded;
pub mod inbound;
pub mod redis;

pub use embedded::EmbeddedStore;
pub use inbound::{
    Appended, DEAD_LETTER_MAX_LEN, DELIVERY_QUEUE_MAX_LEN, DeadLetter, DeliveryJob, DeliveryTarget,
    INBOUND_DEDUP_TTL, InboundEvent, MESSAGE_STATUS_TTL, StatusOf,
};
pub use redis::RedisStore;

/// How long audit entries are kept, counted from the end of their day.
pub const AUDIT_RETENTION_DAYS: i64 = 90;

/// A result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered with an error.
    #[error("state backend unavailable: {0}")]
    Backend(String),
    /// A stored value could not be decoded; the key names where it sits.
    #[error("stored value at {key} is malformed: {reason}")]
    Corrupt {
        /// The key whose value is malformed.
        key: String,
        /// What is wrong with it (never the value itself).
        reason: String,
    },
    /// A caller passed an argument the store cannot act on (an invalid cursor, say).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// An inbound routing key: the platform account id that identifies a customer
/// on a webhook (a WhatsApp phone number id, an Instagram account id, a
/// Telegram connection name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The platform whose webhooks carry this id.
    pub platform: Platform,
    /// The account id as the platform sends it.
    pub id: String,
}

/// The outcome of [`Store::claim_route`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteClaim {
    /// The route was free and now belongs to the caller.
    Claimed,
    /// The caller already owned the route; nothing changed.
    AlreadyOwned,
    /// Another customer owns the route; nothing changed.
    Conflict {
        /// The current owner.
        owner: CustomerId,
    },
}

/// What the API-key index stores for a key: enough to authorize a request
/// without a SQL round trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSummary {
    /// The customer the key belongs to.
    pub id: CustomerId,
    /// The customer's plan.
    pub plan: Plan,
    /// False when the customer is suspended.
    pub active: bool,
    /// Per-customer override of the plan's requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Per-customer override of the plan's monthly tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls_per_month: Option<u64>,
}

/// The operator's view of one connection, published so the server can list
/// connections and offer only the tools of Ready ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionState {
    /// The platform.
    pub platform: Platform,
    /// True when credentials are stored and the connection's tools are offered.
    pub ready: bool,
    /// True for a sandbox connection.
    pub sandbox: bool,
    /// The reason of the `Ready` condition, e.g. `CredentialsInvalid`.
    pub reason: String,
    /// The last error, if the connection is not ready. Never contains a secret value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When this state was written.
    pub updated_at: Timestamp,
}

/// The outcome of a tool call, as audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The call ran and succeeded.
    Allowed,
    /// The call was refused before running (rate limit, quota, suspension, validation).
    Denied,
    /// The call ran and failed (platform error, timeout).
    Failed,
}

/// One audited tool call. Never holds message bodies or credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When the call finished.
    pub at: Timestamp,
    /// The tool's name.
    pub tool: String,
    /// The platform the tool acts on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// What happened.
    pub outcome: AuditOutcome,
    /// How long the call took, in milliseconds.
    pub latency_ms: u64,
    /// The request id the server assigned.
    pub request_id: String,
    /// A short machine-readable reason for a denial or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A range read of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries at or after this instant.
    pub from: Timestamp,
    /// Entries before this instant.
    pub to: Timestamp,
    /// At most this many entries.
    pub limit: usize,
    /// Where the previous page ended (its `next`); `None` for the first page.
    pub cursor: Option<String>,
}

/// One page of audit entries, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The entries of this page.
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next page, if there may be one.
    pub next: Option<String>,
}

/// The counters of one customer in one billing period.
pub type UsageCounters = BTreeMap<String, u64>;

/// A GCRA rate limit: `per_minute` requests spread evenly, with bursts up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// How many requests may arrive at once.
    pub burst: u32,
}

/// The answer of [`Store::check_rate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// The request may proceed.
    Allowed,
    /// The request must wait this long before it would be allowed.
    Limited {
        /// When to retry.
        retry_after: Duration,
    },
}

/// A per-customer event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// Inbound messages and delivery statuses from webhooks.
    Inbox,
    /// Messages sandbox connections "sent".
    Outbox,
}

/// One event read back from a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    /// The stream-assigned id; ids increase, and reading after an id resumes there.
    pub id: String,
    /// The event as appended.
    pub event: serde_json::Value,
}

/// Everything the operator and server read and write at runtime.
///
/// Implementations are cheap to clone behind an `Arc` and safe to share
/// between tasks. Every method either completes or returns an error without
/// a partial write, unless its doc says otherwise.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    // --- credentials ---

    /// Stores (replaces) the sealed credentials of one connection.
    async fn put_credentials(
        &self,
        customer: &CustomerId,
        platform: Platform,
        envelope: &Envelope,
    ) -> Result<()>;

    /// Reads the sealed credentials of one connection.
    async fn get_credentials(&self, customer: &CustomerId, platform: Platform) -> Result<Option<Envelope>>;

    /// Removes the sealed credentials of one connection; true if they existed.
    async fn delete_credentials(&self, customer: &CustomerId, platform: Platform) -> Result<bool>;

    // --- connection states ---

    /// Publishes the state of one connection.
    async fn put_connection_state(&self, customer: &CustomerId, state: &ConnectionState) -> Result<()>;

    /// Every published connection state of a customer, in [`Platform::ALL`] order.
    async fn connection_states(&self, customer: &CustomerId) -> Result<Vec<ConnectionState>>;

    /// Removes the published state of one connection.
    async fn delete_connection_state(&self, customer: &CustomerId, platform: Platform) -> Result<()>;

    // --- routes ---

    /// Claims an inbound route for a customer, atomically: a route owned by
    /// another customer is never overwritten.
    async fn claim_route(&self, route: &Route, customer: &CustomerId) -> Result<RouteClaim>;

    /// The customer owning a route.
    async fn route_owner(&self, route: &Route) -> Result<Option<CustomerId>>;

    /// Releases a route if, and only if, `customer` owns it; true if it was released.
    async fn release_route(&self, route: &Route, customer: &CustomerId) -> Result<bool>;

    // --- API-key index ---

    /// Indexes an API key hash to its customer's summary.
    async fn put_api_key(&self, hash: &ApiKeyHash, summary: &CustomerSummary) -> Result<()>;

    /// Looks up an API key hash.
    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<CustomerSummary>>;

    /// Removes an API key hash from the index.
    async fn delete_api_key(&self, hash: &ApiKeyHash) -> Result<()>;

    // --- audit ---

    /// Appends an audit entry to its customer's log for the entry's day (UTC);
    /// the day expires [`AUDIT_RETENTION_DAYS`] days after it ends.
    async fn append_audit(&self, customer: &CustomerId, entry: &AuditEntry) -> Result<()>;

    /// Reads audit entries in a time range, oldest first, one page at a time.
    async fn read_audit(&self, customer: &CustomerId, query: &AuditQuery) -> Result<AuditPage>;

    // --- metering ---

    /// Adds `by` to one usage counter of a period (`yyyy-mm`) and returns the new value.
    async fn incr_usage(&self, customer: &CustomerId, period: &str, counter: &str, by: u64) -> Result<u64>;

    /// Reads every usage counter of a period.
    async fn usage(&self, customer: &CustomerId, period: &str) -> Result<UsageCounters>;

    /// Takes one request from the customer's rate limit, atomically across every replica.
    async fn check_rate(&self, customer: &CustomerId, limit: RateLimit) -> Result<RateDecision>;

    // --- streams ---

    /// Appends an event to a customer's stream, trimming the stream to about
    /// `max_len` events; returns the event's id.
    async fn append_event(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        event: &serde_json::Value,
        max_len: usize,
    ) -> Result<String>;

    /// Reads up to `limit` events after the id `after` (from the start when `None`), oldest first.
    async fn read_events(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamEvent>>;

    // --- inbound ---
    //
    // The inbound pipeline (see the [`inbound`] module). Every method
    // below has a default body that fails with `StoreError::Backend`, so
    // a store wrapper written before they existed still compiles; a
    // wrapper must forward them to take part in the pipeline.

    /// Appends an inbound event to the customer's inbox, at most once per
    /// dedup key within [`INBOUND_DEDUP_TTL`], trimming the inbox to about
    /// `max_len` events.
    ///
    /// # Guarantees
    ///
    /// One atomic step: the dedup key is remembered, the event appended, the
    /// status of `event.status_of` recorded (unless a status of higher rank
    /// is already there), and, if the customer has a [`DeliveryTarget`], the
    /// event queued for delivery. A duplicate changes nothing. An error means
    /// nothing was written, so the caller can answer with an error and let
    /// the sender retry.
    async fn append_inbound(
        &self,
        customer: &CustomerId,
        inbound: &InboundEvent,
        max_len: usize,
    ) -> Result<Appended> {
        let _ = (customer, inbound, max_len);
        Err(not_implemented("append_inbound"))
    }

    /// The latest status event recorded for a sent message (the one of
    /// highest rank), kept [`MESSAGE_STATUS_TTL`] after its last update.
    async fn message_status(
        &self,
        customer: &CustomerId,
        message_id: &str,
    ) -> Result<Option<serde_json::Value>> {
        let _ = (customer, message_id);
        Err(not_implemented("message_status"))
    }

    /// Sets (replaces) where the customer's inbound events are delivered.
    /// Events appended from then on are queued for delivery.
    async fn put_delivery_target(&self, customer: &CustomerId, target: &DeliveryTarget) -> Result<()> {
        let _ = (customer, target);
        Err(not_implemented("put_delivery_target"))
    }

    /// Where the customer's inbound events are delivered, if anywhere.
    async fn get_delivery_target(&self, customer: &CustomerId) -> Result<Option<DeliveryTarget>> {
        let _ = customer;
        Err(not_implemented("get_delivery_target"))
    }

    /// Stops delivering the customer's events; true if a target was set.
    /// Events already queued stay queued until a target is set again.
    async fn delete_delivery_target(&self, customer: &CustomerId) -> Result<bool> {
        let _ = customer;
        Err(not_implemented("delete_delivery_target"))
    }

    /// Every customer with a delivery target, in no particular order.
    async fn delivery_customers(&self) -> Result<Vec<CustomerId>> {
        Err(not_implemented("delivery_customers"))
    }

    /// Claims up to `limit` deliveries of the customer for `consumer`.
    ///
    /// In order: retries that are due return to the queue; deliveries
    /// another consumer claimed more than `claim_timeout` ago and has not
    /// finished are taken over (that consumer is presumed dead); then new
    /// deliveries are claimed. A claimed delivery is not handed to anyone
    /// else until `claim_timeout` passes, so a worker must finish an attempt
    /// well within it.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidArgument`] for a consumer name that is not 1 to
    /// 200 visible ASCII characters.
    async fn claim_deliveries(
        &self,
        customer: &CustomerId,
        consumer: &str,
        claim_timeout: Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>> {
        let _ = (customer, consumer, claim_timeout, limit);
        Err(not_implemented("claim_deliveries"))
    }

    /// Ends a delivery that succeeded; true if it was still claimed (false
    /// when another consumer finished it first).
    async fn complete_delivery(&self, customer: &CustomerId, job_id: &str) -> Result<bool> {
        let _ = (customer, job_id);
        Err(not_implemented("complete_delivery"))
    }

    /// Ends a failed attempt and schedules the next one after `delay`, with
    /// the attempt count raised by one; true if the delivery was still
    /// claimed (false when another consumer finished it first, and then
    /// nothing is scheduled).
    async fn retry_delivery(
        &self,
        customer: &CustomerId,
        job: &DeliveryJob,
        delay: Duration,
        error: &str,
    ) -> Result<bool> {
        let _ = (customer, job, delay, error);
        Err(not_implemented("retry_delivery"))
    }

    /// Gives a delivery up: moves it to the customer's dead letters, which
    /// keep about [`DEAD_LETTER_MAX_LEN`]. Returns the dead letter's id, or
    /// `None` when another consumer finished the delivery first.
    async fn dead_letter_delivery(
        &self,
        customer: &CustomerId,
        job: &DeliveryJob,
        error: &str,
    ) -> Result<Option<String>> {
        let _ = (customer, job, error);
        Err(not_implemented("dead_letter_delivery"))
    }

    /// Reads up to `limit` dead letters after the id `after` (from the start
    /// when `None`), oldest first.
    async fn dead_letters(
        &self,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        let _ = (customer, after, limit);
        Err(not_implemented("dead_letters"))
    }

    /// Queues a dead letter for delivery again, with its attempt count
    /// reset, and removes it from the dead letters; false if there is no
    /// dead letter with that id.
    async fn replay_dead_letter(&self, customer: &CustomerId, id: &str) -> Result<bool> {
        let _ = (customer, id);
        Err(not_implemented("replay_dead_letter"))
    }

    // --- whole customer ---

    /// Removes every per-customer key of `customer` (credentials, connection
    /// states, audit, usage, streams, dedup keys, message statuses, the
    /// delivery target, queue and dead letters) and its entry in the index
    /// of delivery customers. Routes and API-key index entries are not
    /// per-customer keys: release them first. Returns how many keys were removed.
    async fn purge_customer(&self, customer: &CustomerId) -> Result<u64>;

    // --- health ---

    /// Answers when the backend is reachable.
    async fn ping(&self) -> Result<()>;
}

/// The error of an inbound-pipeline method a store does not implement.
fn not_implemented(method: &str) -> StoreError {
    StoreError::Backend(format!("this store does not implement {method}"))
}

/// The rules both stores implement alike — audit days and their expiry, page
/// sizes and cursors, rate-limit arithmetic, stream ids — kept in one place
/// so the Redis and embedded stores cannot drift apart.
pub(crate) mod rules {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jiff::Timestamp;
    use jiff::civil::Date;
    use jiff::tz::TimeZone;

    use super::{AUDIT_RETENTION_DAYS, AuditEntry, AuditQuery, RateLimit, Result, StoreError};

    /// The most audit entries or stream events one read returns; a larger
    /// `limit` is lowered to it, and a `limit` of 0 is raised to 1.
    pub(crate) const MAX_PAGE: usize = 1000;

    const MICROS_PER_DAY: i64 = 86_400_000_000;

    /// A requested page size, bounded to `1..=MAX_PAGE`.
    pub(crate) fn page_limit(requested: usize) -> usize {
        requested.clamp(1, MAX_PAGE)
    }

    /// Where an audit entry sorts: its time in microseconds since the Unix
    /// epoch. Ranges and cursors resolve to microseconds, so sub-microsecond
    /// parts of `at` do not affect filtering.
    pub(crate) fn audit_score(at: Timestamp) -> i64 {
        at.as_microsecond()
    }

    /// A UTC day, counted in days since the Unix epoch.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub(crate) struct AuditDay(i64);

    impl AuditDay {
        /// The day an audit entry with this score belongs to.
        pub(crate) fn of_score(score: i64) -> Self {
            Self(score.div_euclid(MICROS_PER_DAY))
        }

        /// The day of an instant.
        pub(crate) fn of(at: Timestamp) -> Self {
            Self::of_score(audit_score(at))
        }

        /// The calendar date, as spelled in the day's key.
        pub(crate) fn date(self) -> Date {
            // Days are only built from valid timestamps (or lie between two
            // such days), so midnight of the day is a valid timestamp too; the
            // fallback keeps this total without a panic.
            Timestamp::from_second(self.0 * 86_400)
                .map(|midnight| TimeZone::UTC.to_datetime(midnight).date())
                .unwrap_or(Date::MAX)
        }

        /// The first microsecond of the day.
        pub(crate) fn start_score(self) -> i64 {
            self.0 * MICROS_PER_DAY
        }

        /// The first microsecond after the day.
        pub(crate) fn end_score(self) -> i64 {
            (self.0 + 1) * MICROS_PER_DAY
        }

        /// When the day's entries expire, in seconds since the Unix epoch:
        /// [`AUDIT_RETENTION_DAYS`] days after the day ends.
        pub(crate) fn expires_at_second(self) -> i64 {
            (self.0 + 1 + AUDIT_RETENTION_DAYS) * 86_400
        }

        /// True when the day's entries have expired at `now`.
        pub(crate) fn is_expired(self, now: Timestamp) -> bool {
            now.as_second() >= self.expires_at_second()
        }

        /// The following day.
        pub(crate) fn next(self) -> Self {
            Self(self.0 + 1)
        }
    }

    /// What one audit read covers, after the cursor and the retention window
    /// are applied: scores in `[start, end)`, skipping the first `skip`
    /// entries scored exactly `start` (the previous page returned them).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct AuditWindow {
        /// The lowest score to read, inclusive.
        pub(crate) start: i64,
        /// The score to stop before.
        pub(crate) end: i64,
        /// How many entries scored `start` the previous pages returned.
        pub(crate) skip: usize,
        /// The oldest day to read.
        pub(crate) first_day: AuditDay,
        /// The newest day to read.
        pub(crate) last_day: AuditDay,
        /// How many entries the page holds at most.
        pub(crate) limit: usize,
    }

    impl AuditWindow {
        /// The window of `query` as seen at `now`, or `None` when it is empty.
        ///
        /// Only days that can still hold entries are read: from the oldest day
        /// not yet expired (with a day of margin for clocks that disagree) to
        /// the day after `now`. An entry dated more than a day ahead of the
        /// reader's clock is therefore not read until that clock catches up;
        /// this bounds a read of an open-ended range to about
        /// [`AUDIT_RETENTION_DAYS`] days.
        pub(crate) fn new(query: &AuditQuery, now: Timestamp) -> Result<Option<Self>> {
            let mut start = audit_score(query.from);
            let end = audit_score(query.to);
            let mut skip = 0;
            if let Some(cursor) = &query.cursor {
                let (score, skipped) = decode_audit_cursor(cursor)?;
                if score >= start {
                    start = score;
                    skip = skipped;
                }
            }

            let today = AuditDay::of(now);
            let oldest = AuditDay(today.0 - AUDIT_RETENTION_DAYS - 1);
            let newest = today.next();
            if start >= end {
                return Ok(None);
            }
            let first_day = AuditDay::of_score(start).max(oldest);
            let last_day = AuditDay::of_score(end - 1).min(newest);
            if first_day > last_day {
                return Ok(None);
            }
            if first_day != AuditDay::of_score(start) {
                // The cursor's entries lie in days that expired since: nothing to skip.
                skip = 0;
            }

            Ok(Some(Self {
                start,
                end,
                skip,
                first_day,
                last_day,
                limit: page_limit(query.limit),
            }))
        }

        /// The scores of `day` that fall in the window, as `[from, to)`.
        pub(crate) fn scores_of(&self, day: AuditDay) -> (i64, i64) {
            (self.start.max(day.start_score()), self.end.min(day.end_score()))
        }

        /// How many leading entries of `day` to skip.
        pub(crate) fn skip_in(&self, day: AuditDay) -> usize {
            if day == AuditDay::of_score(self.start) {
                self.skip
            } else {
                0
            }
        }

        /// The cursor of the page after `page`, which this window produced.
        pub(crate) fn next_cursor(&self, page: &[AuditEntry]) -> Option<String> {
            let last = audit_score(page.last()?.at);
            let same = page
                .iter()
                .rev()
                .take_while(|e| audit_score(e.at) == last)
                .count();
            let skipped = if same == page.len() && last == self.start {
                same + self.skip
            } else {
                same
            };
            Some(URL_SAFE_NO_PAD.encode(format!("{last}:{skipped}")))
        }
    }

    fn decode_audit_cursor(cursor: &str) -> Result<(i64, usize)> {
        let invalid = || StoreError::InvalidArgument("audit cursor is not one this store issued".into());
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let (score, skip) = text.split_once(':').ok_or_else(invalid)?;
        Ok((
            score.parse().map_err(|_| invalid())?,
            skip.parse().map_err(|_| invalid())?,
        ))
    }

    /// A GCRA limit in microseconds: the emission interval (the time one
    /// request "costs") and the burst tolerance (how far ahead of now the
    /// theoretical arrival time may run, `interval × burst`).
    ///
    /// A `burst` of 0 is taken as 1, since no request could pass otherwise;
    /// a `per_minute` of 0 is refused as an invalid argument.
    pub(crate) fn gcra_micros(limit: RateLimit) -> Result<(u64, u64)> {
        if limit.per_minute == 0 {
            return Err(StoreError::InvalidArgument(
                "a rate limit needs at least 1 request per minute".into(),
            ));
        }
        let interval = 60_000_000 / u64::from(limit.per_minute);
        let tolerance = interval * u64::from(limit.burst.max(1));
        Ok((interval, tolerance))
    }

    /// A stream id as the stores issue them, `<ms>-<seq>`.
    pub(crate) fn parse_stream_id(id: &str) -> Result<(u64, u64)> {
        let invalid = || StoreError::InvalidArgument(format!("{id:?} is not a stream id (<ms>-<seq>)"));
        let (ms, seq) = id.split_once('-').ok_or_else(invalid)?;
        Ok((
            ms.parse().map_err(|_| invalid())?,
            seq.parse().map_err(|_| invalid())?,
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_day_expires_retention_days_after_it_ends() {
            let at: Timestamp = "2026-03-10T15:00:00Z".parse().expect("valid timestamp");
            let day = AuditDay::of(at);
            let expiry: Timestamp = "2026-06-09T00:00:00Z".parse().expect("valid timestamp");

            assert_eq!(day.date(), Date::constant(2026, 3, 10));
            assert_eq!(day.expires_at_second(), expiry.as_second());
            assert!(!day.is_expired(expiry - jiff::SignedDuration::from_secs(1)));
            assert!(day.is_expired(expiry));
        }

        #[test]
        fn days_before_the_epoch_are_whole_days() {
            let at: Timestamp = "1969-12-31T23:59:59Z".parse().expect("valid timestamp");
            assert_eq!(AuditDay::of(at).date(), Date::constant(1969, 12, 31));
        }

        #[test]
        fn a_foreign_cursor_is_an_invalid_argument() {
            for cursor in ["", "!!", "bm90IGEgY3Vyc29y"] {
                assert!(matches!(
                    decode_audit_cursor(cursor),
                    Err(StoreError::InvalidArgument(_))
                ));
            }
        }

        #[test]
        fn stream_ids_need_both_parts() {
            assert_eq!(parse_stream_id("12-3").expect("valid id"), (12, 3));
            assert!(parse_stream_id("12").is_err());
            assert!(parse_stream_id("a-1").is_err());
        }
    }
}
