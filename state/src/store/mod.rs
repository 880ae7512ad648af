//! The runtime state the operator writes and the server reads.
//!
//! [`Store`] is the one interface; [`RedisStore`](redis::RedisStore) backs a
//! cluster deployment (a single Redis or a Redis Cluster) and
//! [`EmbeddedStore`](embedded::EmbeddedStore) backs `dev` mode and tests.
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
pub mod redis;

pub use embedded::EmbeddedStore;
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

    // --- whole customer ---

    /// Removes every per-customer key of `customer` (credentials, connection
    /// states, audit, usage, streams). Routes and API-key index entries are
    /// not per-customer keys: release them first. Returns how many keys were removed.
    async fn purge_customer(&self, customer: &CustomerId) -> Result<u64>;

    // --- health ---

    /// Answers when the backend is reachable.
    async fn ping(&self) -> Result<()>;
}
