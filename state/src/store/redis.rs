//! The Redis store: one Redis, or a Redis Cluster.
//!
//! Every key comes from [`keyspace`]. Values are JSON, except route owners
//! (the bare customer id), usage counters (hash fields) and the rate-limit
//! state (a number). What must be atomic is: route claims and releases are
//! Lua scripts over their one key, the rate limit is a Lua script over the
//! customer's one key, and an audit append is a `MULTI` over one day key.
//! None of them spans two hash slots, so all of them work on a cluster.
//!
//! The code is written once for both deployments: `Connection`
//! (`redis/connection.rs`) hides whether commands go to one Redis or to the
//! cluster node owning a key. The Lua scripts sit next to it, in `redis/`.
//! The inbound pipeline (inbox, message statuses, delivery queue) lives in
//! `redis/inbound.rs`, one script per step, each over one customer's keys.
//!
//! Errors carry the step that failed and Redis's error class, never a
//! stored value: a value may be a sealed credential.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::Platform;
use redis::{RedisError, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::rules::{self, AuditDay, AuditWindow};
use super::{
    Appended, AuditEntry, AuditPage, AuditQuery, ConnectionState, CustomerSummary, DeadLetter, DeliveryJob,
    DeliveryTarget, InboundEvent, RateDecision, RateLimit, Result, Route, RouteClaim, Store, StoreError,
    StreamEvent, StreamKind, UsageCounters,
};
use crate::vault::Envelope;
use crate::{ApiKeyHash, CustomerId, keyspace};

mod connection;
mod inbound;

use connection::Connection;

/// The stream entry field an event's JSON is stored under.
const EVENT_FIELD: &str = "event";

// The scripts, hashed once; each file states its keys, arguments and reply.
// Redis runs them by hash (`EVALSHA`) and they are loaded on first use, on
// every master of a cluster.
static CLAIM_ROUTE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/claim_route.lua")));
static RELEASE_ROUTE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("redis/release_route.lua")));
static CHECK_RATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/check_rate.lua")));

/// The [`Store`] over one Redis or a Redis Cluster.
///
/// Clones share the connections. Single Redis connections reconnect after a
/// failure; cluster connections follow slot moves and node failovers.
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("kind", &self.conn.kind())
            .finish()
    }
}

impl RedisStore {
    /// Connects to one Redis at `url` (`redis://[user:password@]host:port[/db]`,
    /// or `rediss://` for TLS).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL does not parse or the server
    /// cannot be reached; the message never repeats the URL (it may hold a
    /// password).
    pub async fn connect_single(url: &str) -> Result<Self> {
        let conn = Connection::single(url)
            .await
            .map_err(|e| backend("connecting to redis", &e))?;
        Ok(Self { conn })
    }

    /// Connects to a Redis Cluster through some of its nodes (`seed_urls`,
    /// each like a single Redis URL); the others are discovered.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidArgument`] when `seed_urls` is empty;
    /// [`StoreError::Backend`] when no seed answers or a URL does not parse.
    pub async fn connect_cluster(seed_urls: &[impl AsRef<str>]) -> Result<Self> {
        let seeds: Vec<&str> = seed_urls.iter().map(AsRef::as_ref).collect();
        if seeds.is_empty() {
            return Err(StoreError::InvalidArgument(
                "a Redis Cluster needs at least one seed URL".into(),
            ));
        }
        let conn = Connection::cluster(&seeds)
            .await
            .map_err(|e| backend("connecting to the redis cluster", &e))?;
        Ok(Self { conn })
    }

    /// Connects as configured by `REDIS_URL` (`redis_url`) and
    /// `REDIS_CLUSTER_URLS` (`cluster_urls`, comma-separated seeds).
    ///
    /// The cluster wins when both are set; an unset or blank value counts as
    /// absent. Returns `None` when neither is set, for the caller to fall
    /// back to (or insist on) something else.
    ///
    /// # Errors
    ///
    /// As [`connect_single`](Self::connect_single) and
    /// [`connect_cluster`](Self::connect_cluster).
    pub async fn from_env_urls(redis_url: Option<&str>, cluster_urls: Option<&str>) -> Result<Option<Self>> {
        let seeds: Vec<&str> = cluster_urls
            .into_iter()
            .flat_map(|urls| urls.split(','))
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        if !seeds.is_empty() {
            return Self::connect_cluster(&seeds).await.map(Some);
        }

        match redis_url.map(str::trim).filter(|url| !url.is_empty()) {
            Some(url) => Self::connect_single(url).await.map(Some),
            None => Ok(None),
        }
    }

    /// A connection handle for one operation.
    fn conn(&self) -> Connection {
        self.conn.clone()
    }

    /// Reads and decodes a JSON string value.
    async fn get_json<T: DeserializeOwned>(&self, key: &str, what: &'static str) -> Result<Option<T>> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("GET", &e))?;
        raw.map(|raw| decode_json(key, what, &raw)).transpose()
    }

    /// Encodes a value as JSON and stores it.
    async fn set_json<T: Serialize>(&self, key: &str, what: &'static str, value: &T) -> Result<()> {
        let json = encode_json(what, value)?;
        redis::cmd("SET")
            .arg(key)
            .arg(json)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| backend("SET", &e))
    }

    /// Deletes keys; returns how many existed.
    async fn del(&self, keys: &[String]) -> Result<u64> {
        redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("DEL", &e))
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn put_credentials(
        &self,
        customer: &CustomerId,
        platform: Platform,
        envelope: &Envelope,
    ) -> Result<()> {
        let key = keyspace::credentials(customer, platform);
        self.set_json(&key, "credentials envelope", envelope).await
    }

    async fn get_credentials(&self, customer: &CustomerId, platform: Platform) -> Result<Option<Envelope>> {
        let key = keyspace::credentials(customer, platform);
        self.get_json(&key, "credentials envelope").await
    }

    async fn delete_credentials(&self, customer: &CustomerId, platform: Platform) -> Result<bool> {
        let key = keyspace::credentials(customer, platform);
        Ok(self.del(&[key]).await? > 0)
    }

    async fn put_connection_state(&self, customer: &CustomerId, state: &ConnectionState) -> Result<()> {
        let key = keyspace::connections(customer);
        let json = encode_json("connection state", state)?;
        redis::cmd("HSET")
            .arg(&key)
            .arg(state.platform.as_str())
            .arg(json)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| backend("HSET", &e))
    }

    async fn connection_states(&self, customer: &CustomerId) -> Result<Vec<ConnectionState>> {
        let key = keyspace::connections(customer);
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("HGETALL", &e))?;

        let mut states = Vec::with_capacity(fields.len());
        for (platform, json) in fields {
            let platform: Platform = platform.parse().map_err(|_| StoreError::Corrupt {
                key: key.clone(),
                reason: "a field is not a platform name".into(),
            })?;
            let state: ConnectionState = decode_json(&key, "connection state", &json)?;
            states.push((platform, state));
        }
        states.sort_by_key(|(platform, _)| platform_rank(*platform));
        Ok(states.into_iter().map(|(_, state)| state).collect())
    }

    async fn delete_connection_state(&self, customer: &CustomerId, platform: Platform) -> Result<()> {
        redis::cmd("HDEL")
            .arg(keyspace::connections(customer))
            .arg(platform.as_str())
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| backend("HDEL", &e))
    }

    async fn claim_route(&self, route: &Route, customer: &CustomerId) -> Result<RouteClaim> {
        let key = keyspace::route(route);
        let (claimed, owner): (bool, String) = CLAIM_ROUTE
            .key(&key)
            .arg(customer.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend("claiming a route", &e))?;

        if claimed {
            return Ok(RouteClaim::Claimed);
        }
        let owner = decode_owner(&key, owner)?;
        if &owner == customer {
            Ok(RouteClaim::AlreadyOwned)
        } else {
            Ok(RouteClaim::Conflict { owner })
        }
    }

    async fn route_owner(&self, route: &Route) -> Result<Option<CustomerId>> {
        let key = keyspace::route(route);
        let owner: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("GET", &e))?;
        owner.map(|owner| decode_owner(&key, owner)).transpose()
    }

    async fn release_route(&self, route: &Route, customer: &CustomerId) -> Result<bool> {
        RELEASE_ROUTE
            .key(keyspace::route(route))
            .arg(customer.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend("releasing a route", &e))
    }

    async fn put_api_key(&self, hash: &ApiKeyHash, summary: &CustomerSummary) -> Result<()> {
        let key = keyspace::api_key(hash.as_hex());
        self.set_json(&key, "customer summary", summary).await
    }

    async fn get_api_key(&self, hash: &ApiKeyHash) -> Result<Option<CustomerSummary>> {
        let key = keyspace::api_key(hash.as_hex());
        self.get_json(&key, "customer summary").await
    }

    async fn delete_api_key(&self, hash: &ApiKeyHash) -> Result<()> {
        self.del(&[keyspace::api_key(hash.as_hex())]).await.map(drop)
    }

    async fn append_audit(&self, customer: &CustomerId, entry: &AuditEntry) -> Result<()> {
        // Members of a sorted set are unique, and two entries may well be
        // equal (same instant, same tool, same request): a random prefix
        // keeps both. Entries sort by their time first, so the prefix only
        // orders entries of the same microsecond.
        let day = AuditDay::of(entry.at);
        let key = keyspace::audit_day(customer, day.date());
        let member = format!(
            "{:016x} {}",
            rand::random::<u64>(),
            encode_json("audit entry", entry)?
        );

        redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(&key)
            .arg(rules::audit_score(entry.at))
            .arg(member)
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(day.expires_at_second())
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| backend("appending an audit entry", &e))
    }

    async fn read_audit(&self, customer: &CustomerId, query: &AuditQuery) -> Result<AuditPage> {
        let Some(window) = AuditWindow::new(query, jiff::Timestamp::now())? else {
            return Ok(AuditPage {
                entries: Vec::new(),
                next: None,
            });
        };

        // One round trip tells which days hold entries in the range, so the
        // walk below reads only those, however many empty days lie between.
        let mut days = Vec::new();
        let mut day = window.first_day;
        while day <= window.last_day {
            days.push(day);
            day = day.next();
        }
        let mut count_pipe = redis::pipe();
        for &day in &days {
            let (from, to) = window.scores_of(day);
            count_pipe
                .cmd("ZCOUNT")
                .arg(keyspace::audit_day(customer, day.date()))
                .arg(from)
                .arg(format!("({to}"));
        }
        let counts: Vec<usize> = count_pipe
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("counting audit entries", &e))?;

        // One entry more than the page holds tells whether there is a next page.
        let wanted = window.limit + 1;
        let mut entries = Vec::new();
        for (day, count) in days.into_iter().zip(counts) {
            let skip = window.skip_in(day);
            if count <= skip {
                continue;
            }
            let key = keyspace::audit_day(customer, day.date());
            let (from, to) = window.scores_of(day);
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(from)
                .arg(format!("({to}"))
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(skip)
                .arg(wanted - entries.len())
                .query_async(&mut self.conn())
                .await
                .map_err(|e| backend("reading audit entries", &e))?;
            for member in members {
                entries.push(decode_audit_member(&key, &member)?);
            }
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
        let key = keyspace::usage(customer, period);
        let by = i64::try_from(by)
            .map_err(|_| StoreError::InvalidArgument(format!("usage increment {by} exceeds {}", i64::MAX)))?;
        let value: i64 = redis::cmd("HINCRBY")
            .arg(&key)
            .arg(counter)
            .arg(by)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("HINCRBY", &e))?;
        u64::try_from(value).map_err(|_| StoreError::Corrupt {
            key,
            reason: format!("counter {counter:?} is negative"),
        })
    }

    async fn usage(&self, customer: &CustomerId, period: &str) -> Result<UsageCounters> {
        let key = keyspace::usage(customer, period);
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("HGETALL", &e))?;
        fields
            .into_iter()
            .map(|(counter, value)| match value.parse::<u64>() {
                Ok(value) => Ok((counter, value)),
                Err(_) => Err(StoreError::Corrupt {
                    key: key.clone(),
                    reason: format!("counter {counter:?} is not a non-negative integer"),
                }),
            })
            .collect()
    }

    async fn check_rate(&self, customer: &CustomerId, limit: RateLimit) -> Result<RateDecision> {
        let (interval, tolerance) = rules::gcra_micros(limit)?;
        let wait_micros: u64 = CHECK_RATE
            .key(keyspace::rate_limit(customer))
            .arg(interval)
            .arg(tolerance)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend("checking the rate limit", &e))?;

        Ok(match wait_micros {
            0 => RateDecision::Allowed,
            wait => RateDecision::Limited {
                retry_after: Duration::from_micros(wait),
            },
        })
    }

    async fn append_event(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        event: &serde_json::Value,
        max_len: usize,
    ) -> Result<String> {
        // `~` lets Redis trim whole internal nodes only, which is much
        // cheaper than trimming exactly; the stream keeps at least `max_len`
        // events and at most about one node (100 events by default) more.
        let json = encode_json("stream event", event)?;
        redis::cmd("XADD")
            .arg(keyspace::stream(kind, customer))
            .arg("MAXLEN")
            .arg("~")
            .arg(max_len.max(1))
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(json)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("XADD", &e))
    }

    async fn read_events(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamEvent>> {
        let key = keyspace::stream(kind, customer);
        let start = match after {
            Some(id) => {
                rules::parse_stream_id(id)?;
                format!("({id}")
            }
            None => "-".to_owned(),
        };
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(rules::page_limit(limit))
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend("XRANGE", &e))?;

        reply
            .ids
            .into_iter()
            .map(|entry| {
                let json: String = entry.get(EVENT_FIELD).ok_or_else(|| StoreError::Corrupt {
                    key: key.clone(),
                    reason: format!("entry {} has no {EVENT_FIELD:?} field", entry.id),
                })?;
                Ok(StreamEvent {
                    event: decode_json(&key, "stream event", &json)?,
                    id: entry.id,
                })
            })
            .collect()
    }

    async fn append_inbound(
        &self,
        customer: &CustomerId,
        inbound: &InboundEvent,
        max_len: usize,
    ) -> Result<Appended> {
        inbound::append_inbound(self, customer, inbound, max_len).await
    }

    async fn message_status(
        &self,
        customer: &CustomerId,
        message_id: &str,
    ) -> Result<Option<serde_json::Value>> {
        inbound::message_status(self, customer, message_id).await
    }

    async fn put_delivery_target(&self, customer: &CustomerId, target: &DeliveryTarget) -> Result<()> {
        inbound::put_delivery_target(self, customer, target).await
    }

    async fn get_delivery_target(&self, customer: &CustomerId) -> Result<Option<DeliveryTarget>> {
        self.get_json(&keyspace::delivery_target(customer), "delivery target")
            .await
    }

    async fn delete_delivery_target(&self, customer: &CustomerId) -> Result<bool> {
        inbound::delete_delivery_target(self, customer).await
    }

    async fn delivery_customers(&self) -> Result<Vec<CustomerId>> {
        inbound::delivery_customers(self).await
    }

    async fn claim_deliveries(
        &self,
        customer: &CustomerId,
        consumer: &str,
        claim_timeout: Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>> {
        inbound::claim_deliveries(self, customer, consumer, claim_timeout, limit).await
    }

    async fn complete_delivery(&self, customer: &CustomerId, job_id: &str) -> Result<bool> {
        inbound::complete_delivery(self, customer, job_id).await
    }

    async fn retry_delivery(
        &self,
        customer: &CustomerId,
        job: &DeliveryJob,
        delay: Duration,
        error: &str,
    ) -> Result<bool> {
        inbound::retry_delivery(self, customer, job, delay, error).await
    }

    async fn dead_letter_delivery(
        &self,
        customer: &CustomerId,
        job: &DeliveryJob,
        error: &str,
    ) -> Result<Option<String>> {
        inbound::dead_letter_delivery(self, customer, job, error).await
    }

    async fn dead_letters(
        &self,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        inbound::dead_letters(self, customer, after, limit).await
    }

    async fn replay_dead_letter(&self, customer: &CustomerId, id: &str) -> Result<bool> {
        inbound::replay_dead_letter(self, customer, id).await
    }

    async fn purge_customer(&self, customer: &CustomerId) -> Result<u64> {
        // The index of delivery customers is global; leave it first, so a
        // worker stops visiting the customer before its keys go.
        inbound::forget_delivery_customer(self, customer).await?;

        // Every key of the customer carries its hash tag, so on a cluster they
        // all sit on the node owning the tag's slot: scanning that node finds
        // them all. Keys are deleted page by page as the scan returns them,
        // which SCAN allows.
        let pattern = keyspace::customer_pattern(customer);
        let slot_key = keyspace::connections(customer);
        let mut conn = self.conn();
        let mut cursor = 0;
        let mut removed = 0;
        loop {
            let (next, keys) = conn
                .scan_page(cursor, &pattern, &slot_key)
                .await
                .map_err(|e| backend("SCAN", &e))?;
            if !keys.is_empty() {
                removed += self.del(&keys).await?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    async fn ping(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| backend("PING", &e))
    }
}

/// The position of a platform in [`Platform::ALL`], the order listings use.
fn platform_rank(platform: Platform) -> usize {
    Platform::ALL
        .iter()
        .position(|p| *p == platform)
        .unwrap_or(usize::MAX)
}

/// A Redis failure as a store error: the step, then Redis's error class.
///
/// Server errors keep their message (Redis does not echo values in them);
/// client-side errors keep only their category, since a reply that failed
/// to parse may be quoted in the library's message.
fn backend(step: &str, error: &RedisError) -> StoreError {
    let what = match error.kind() {
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension => {
            let code = error.code().unwrap_or("ERR");
            match error.detail() {
                Some(detail) => format!("{code} {detail}"),
                None => code.to_owned(),
            }
        }
        redis::ErrorKind::Io => format!("I/O error: {error}"),
        _ => error.category().to_owned(),
    };
    StoreError::Backend(format!("redis {step} failed: {what}"))
}

fn encode_json<T: Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::InvalidArgument(format!("{what} cannot be encoded: {}", classify(&e))))
}

fn decode_json<T: DeserializeOwned>(key: &str, what: &'static str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("not a valid {what}: {}", classify(&e)),
    })
}

/// Where and how JSON failed, without serde's message: it may quote the
/// value, and the value may be a credential.
fn classify(error: &serde_json::Error) -> String {
    let class = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected content",
        serde_json::error::Category::Eof => "truncated",
    };
    format!("{class} at line {}, column {}", error.line(), error.column())
}

fn decode_owner(key: &str, owner: String) -> Result<CustomerId> {
    CustomerId::new(owner).map_err(|_| StoreError::Corrupt {
        key: key.to_owned(),
        reason: "the owner is not a valid customer id".into(),
    })
}

/// An audit member is `<16 hex digits> <entry JSON>`; see `append_audit`.
fn decode_audit_member(key: &str, member: &str) -> Result<AuditEntry> {
    let json = member
        .split_once(' ')
        .map(|(_, json)| json)
        .ok_or_else(|| StoreError::Corrupt {
            key: key.to_owned(),
            reason: "an audit member lacks its prefix".into(),
        })?;
    decode_json(key, "audit entry", json)
}
