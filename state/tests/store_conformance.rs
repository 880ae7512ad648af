//! The one conformance suite of [`Store`]: every scenario runs against the
//! embedded store, against a single Redis when `REDIS_URL` is set, and
//! against a Redis Cluster when `REDIS_CLUSTER_URLS` (comma-separated seed
//! URLs) is set. With `HERMES_REQUIRE_SERVICES=1` a missing URL fails the
//! Redis tests instead of skipping them.
//!
//! The servers are shared with other tests running at the same time: every
//! scenario works on fresh random customer ids and route ids, and nothing
//! is ever flushed.
//!
//! Start a local cluster with `.ci/redis-cluster.sh`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hermes_crds::{Plan, Platform};
use hermes_state::clock::Clock;
use hermes_state::store::{
    AUDIT_RETENTION_DAYS, Appended, AuditEntry, AuditOutcome, AuditPage, AuditQuery, ConnectionState,
    CustomerSummary, DeliveryTarget, EmbeddedStore, INBOUND_DEDUP_TTL, InboundEvent, RateDecision, RateLimit,
    RedisStore, Route, RouteClaim, StatusOf, Store, StoreError, StreamKind,
};
use hermes_state::vault::Envelope;
use hermes_state::{ApiKeyHash, CustomerId, keyspace};
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::json;

const DAY: SignedDuration = SignedDuration::from_hours(24);

// --- harness ---

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    fn starting_at(now: Timestamp) -> Self {
        Self(Mutex::new(now))
    }

    fn advance(&self, by: SignedDuration) {
        let mut now = self.0.lock().expect("clock lock is not poisoned");
        *now = now.checked_add(by).expect("the clock stays in range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock is not poisoned")
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Embedded,
    Redis,
    Cluster,
}

/// What a scenario runs against: the store, and a way to look behind it.
#[derive(Debug)]
enum Backend {
    Embedded {
        store: EmbeddedStore,
        clock: Arc<ManualClock>,
    },
    Redis {
        store: RedisStore,
        raw: RawRedis,
    },
}

/// Plain connections to the Redis behind a store, for checks the `Store`
/// API cannot make (TTLs, leftover keys).
#[derive(Debug)]
enum RawRedis {
    Single { url: String },
    Cluster { seeds: Vec<String> },
}

impl Backend {
    /// The backend of `kind`, or `None` when it is not configured (and not required).
    async fn start(kind: Kind) -> Option<Self> {
        match kind {
            Kind::Embedded => {
                let clock = Arc::new(ManualClock::starting_at(Timestamp::now()));
                let store = EmbeddedStore::with_clock(clock.clone());
                Some(Self::Embedded { store, clock })
            }
            Kind::Redis => {
                let url = service_url("REDIS_URL")?;
                let store = RedisStore::connect_single(&url).await.expect("REDIS_URL answers");
                Some(Self::Redis {
                    store,
                    raw: RawRedis::Single { url },
                })
            }
            Kind::Cluster => {
                let urls = service_url("REDIS_CLUSTER_URLS")?;
                let seeds: Vec<String> = urls.split(',').map(|s| s.trim().to_owned()).collect();
                let store = RedisStore::connect_cluster(&seeds)
                    .await
                    .expect("REDIS_CLUSTER_URLS answers");
                Some(Self::Redis {
                    store,
                    raw: RawRedis::Cluster { seeds },
                })
            }
        }
    }

    fn store(&self) -> &dyn Store {
        match self {
            Self::Embedded { store, .. } => store,
            Self::Redis { store, .. } => store,
        }
    }

    /// Another store on the same state, as a second server replica would have.
    async fn another_replica(&self) -> Box<dyn Store> {
        match self {
            Self::Embedded { store, .. } => Box::new(store.clone()),
            Self::Redis {
                raw: RawRedis::Single { url },
                ..
            } => Box::new(RedisStore::connect_single(url).await.expect("REDIS_URL answers")),
            Self::Redis {
                raw: RawRedis::Cluster { seeds },
                ..
            } => Box::new(RedisStore::connect_cluster(seeds).await.expect("cluster answers")),
        }
    }

    /// The backend's current time.
    fn now(&self) -> Timestamp {
        match self {
            Self::Embedded { clock, .. } => clock.now(),
            Self::Redis { .. } => Timestamp::now(),
        }
    }

    /// Lets `by` pass on the backend's clock: the manual clock moves; for
    /// Redis, whose scripts read the server's clock, the test waits.
    async fn let_time_pass(&self, by: Duration) {
        match self {
            Self::Embedded { clock, .. } => {
                clock.advance(SignedDuration::try_from(by).expect("short duration"))
            }
            Self::Redis { .. } => tokio::time::sleep(by).await,
        }
    }
}

impl RawRedis {
    /// Every key matching `pattern`, on every node.
    async fn scan(&self, pattern: &str) -> Vec<String> {
        let urls = match self {
            Self::Single { url } => std::slice::from_ref(url),
            // The test cluster's seeds are all its masters.
            Self::Cluster { seeds } => seeds.as_slice(),
        };
        let mut keys = Vec::new();
        for url in urls {
            let client = ::redis::Client::open(url.as_str()).expect("valid Redis URL");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("Redis node answers");
            let mut cursor = 0u64;
            loop {
                let (next, found): (u64, Vec<String>) = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .expect("SCAN works");
                keys.extend(found);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        keys
    }

    /// The time to live of `key` in seconds (-2 when it does not exist).
    async fn ttl(&self, key: &str) -> i64 {
        let ttl = ::redis::cmd("TTL");
        let mut ttl = ttl;
        ttl.arg(key);
        match self {
            Self::Single { url } => {
                let client = ::redis::Client::open(url.as_str()).expect("valid Redis URL");
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("Redis answers");
                ttl.query_async(&mut conn).await.expect("TTL works")
            }
            Self::Cluster { seeds } => {
                let client = ::redis::cluster::ClusterClient::new(seeds.clone()).expect("valid seed URLs");
                let mut conn = client.get_async_connection().await.expect("cluster answers");
                ttl.query_async(&mut conn).await.expect("TTL works")
            }
        }
    }
}

/// The value of a service variable, `None` to skip, or a panic when
/// `HERMES_REQUIRE_SERVICES=1` and it is missing.
fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ if std::env::var("HERMES_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{var} is not set and HERMES_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping: {var} is not set");
            None
        }
    }
}

/// One `#[tokio::test]` per scenario per backend: `embedded::<scenario>`,
/// `redis::<scenario>`, `cluster::<scenario>`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        conformance!(@backend embedded, Embedded, $($scenario),*);
        conformance!(@backend redis, Redis, $($scenario),*);
        conformance!(@backend cluster, Cluster, $($scenario),*);
    };
    (@backend $module:ident, $kind:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(backend) = super::Backend::start(super::Kind::$kind).await else {
                        return;
                    };
                    super::scenarios::$scenario(backend.store(), &backend).await;
                }
            )*
        }
    };
}

conformance!(
    credentials_round_trip_and_stay_with_their_customer_and_platform,
    connection_states_list_in_platform_order,
    route_owned_by_a_is_not_taken_by_b,
    release_by_non_owner_is_refused,
    concurrent_claims_leave_exactly_one_owner,
    api_key_index_round_trips,
    audit_pages_across_two_days_in_order,
    audit_range_filters_by_time,
    identical_audit_entries_are_both_kept,
    audit_expires_retention_days_after_its_day,
    a_foreign_audit_cursor_is_an_invalid_argument,
    usage_counters_add_up_per_period,
    rate_limit_allows_a_burst_then_limits,
    rate_limit_is_shared_by_replicas,
    rate_limit_allows_again_after_retry_after,
    streams_resume_after_a_cursor,
    streams_trim_to_about_max_len,
    a_malformed_stream_cursor_is_an_invalid_argument,
    purge_removes_every_key_of_the_customer_only,
    ping_answers,
    an_inbound_event_appended_three_times_is_stored_once,
    inbound_dedup_keys_expire_after_seven_days,
    a_message_keeps_its_status_of_highest_rank,
    inbound_events_are_queued_only_for_customers_with_a_delivery_target,
    a_claimed_delivery_is_taken_over_only_after_the_claim_timeout,
    a_retried_delivery_returns_when_due_with_its_attempt_counted,
    a_dead_letter_is_listed_and_replayed_into_the_queue,
    a_delivery_finished_by_another_consumer_is_not_finished_twice,
    purge_removes_the_inbound_keys_of_the_customer,
);

// --- fixtures ---

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn customer() -> CustomerId {
    CustomerId::new(format!("t-{}", random_hex())).expect("t-<hex> is a valid id")
}

fn route(platform: Platform) -> Route {
    Route {
        platform,
        id: random_hex(),
    }
}

fn envelope(kid: &str) -> Envelope {
    Envelope {
        v: 1,
        kid: kid.into(),
        nonce: random_hex(),
        ct: random_hex(),
    }
}

fn connection(platform: Platform, ready: bool) -> ConnectionState {
    ConnectionState {
        platform,
        ready,
        sandbox: false,
        reason: if ready { "Connected" } else { "CredentialsInvalid" }.into(),
        last_error: (!ready).then(|| "token rejected".into()),
        updated_at: "2026-01-02T03:04:05Z".parse().expect("valid timestamp"),
    }
}

fn inbound(dedup_key: &str, n: u32) -> InboundEvent {
    InboundEvent {
        dedup_key: dedup_key.into(),
        event: json!({ "type": "message", "platform": "whatsapp", "n": n }),
        status_of: None,
    }
}

fn status(message_id: &str, status: &str, rank: u8) -> InboundEvent {
    InboundEvent {
        dedup_key: format!("whatsapp:status:{message_id}:{status}"),
        event: json!({ "type": "status", "messageId": message_id, "status": status }),
        status_of: Some(StatusOf {
            message_id: message_id.into(),
            rank,
        }),
    }
}

fn target() -> DeliveryTarget {
    DeliveryTarget {
        url: "https://hooks.example/hermes".into(),
        signing_secret: envelope("k1"),
    }
}

fn audit_entry(at: Timestamp, tool: &str) -> AuditEntry {
    AuditEntry {
        at,
        tool: tool.into(),
        platform: Some(Platform::Whatsapp),
        outcome: AuditOutcome::Allowed,
        latency_ms: 12,
        request_id: random_hex(),
        reason: None,
    }
}

/// Midnight (UTC) of the day `at` falls in.
fn midnight(at: Timestamp) -> Timestamp {
    at.to_zoned(jiff::tz::TimeZone::UTC)
        .start_of_day()
        .expect("midnight exists in UTC")
        .timestamp()
}

/// Every entry of a range, page by page; returns the tools in order and the number of pages.
async fn read_all(
    store: &dyn Store,
    customer: &CustomerId,
    from: Timestamp,
    to: Timestamp,
) -> (Vec<String>, usize) {
    let mut tools = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let query = AuditQuery {
            from,
            to,
            limit: 2,
            cursor,
        };
        let AuditPage { entries, next } = store.read_audit(customer, &query).await.expect("audit reads");
        pages += 1;
        assert!(entries.len() <= 2, "a page holds at most its limit");
        tools.extend(entries.into_iter().map(|e| e.tool));
        match next {
            Some(next) => cursor = Some(next),
            None => return (tools, pages),
        }
        assert!(pages < 100, "pagination ends");
    }
}

// --- scenarios ---

mod scenarios {
    use super::*;

    pub async fn credentials_round_trip_and_stay_with_their_customer_and_platform(
        store: &dyn Store,
        _: &Backend,
    ) {
        let (a, b) = (customer(), customer());
        let sealed = envelope("k1");

        store
            .put_credentials(&a, Platform::Whatsapp, &sealed)
            .await
            .expect("put works");

        assert_eq!(
            store
                .get_credentials(&a, Platform::Whatsapp)
                .await
                .expect("get works"),
            Some(sealed.clone())
        );
        assert_eq!(
            store
                .get_credentials(&b, Platform::Whatsapp)
                .await
                .expect("get works"),
            None
        );
        assert_eq!(
            store
                .get_credentials(&a, Platform::Telegram)
                .await
                .expect("get works"),
            None
        );

        let replaced = envelope("k2");
        store
            .put_credentials(&a, Platform::Whatsapp, &replaced)
            .await
            .expect("put works");
        assert_eq!(
            store
                .get_credentials(&a, Platform::Whatsapp)
                .await
                .expect("get works"),
            Some(replaced)
        );

        assert!(
            store
                .delete_credentials(&a, Platform::Whatsapp)
                .await
                .expect("delete works")
        );
        assert!(
            !store
                .delete_credentials(&a, Platform::Whatsapp)
                .await
                .expect("delete works")
        );
        assert_eq!(
            store
                .get_credentials(&a, Platform::Whatsapp)
                .await
                .expect("get works"),
            None
        );
    }

    pub async fn connection_states_list_in_platform_order(store: &dyn Store, _: &Backend) {
        let (a, b) = (customer(), customer());

        store
            .put_connection_state(&a, &connection(Platform::Telegram, true))
            .await
            .expect("put works");
        store
            .put_connection_state(&a, &connection(Platform::Email, false))
            .await
            .expect("put works");
        store
            .put_connection_state(&a, &connection(Platform::Telegram, false))
            .await
            .expect("put works");

        assert_eq!(
            store.connection_states(&a).await.expect("list works"),
            vec![
                connection(Platform::Email, false),
                connection(Platform::Telegram, false)
            ]
        );
        assert_eq!(store.connection_states(&b).await.expect("list works"), vec![]);

        store
            .delete_connection_state(&a, Platform::Email)
            .await
            .expect("delete works");
        store
            .delete_connection_state(&a, Platform::Discord)
            .await
            .expect("deleting a missing state works");
        assert_eq!(
            store.connection_states(&a).await.expect("list works"),
            vec![connection(Platform::Telegram, false)]
        );
    }

    pub async fn route_owned_by_a_is_not_taken_by_b(store: &dyn Store, _: &Backend) {
        let (a, b) = (customer(), customer());
        let wa = route(Platform::Whatsapp);

        assert_eq!(
            store.claim_route(&wa, &a).await.expect("claim works"),
            RouteClaim::Claimed
        );
        assert_eq!(
            store.claim_route(&wa, &a).await.expect("claim works"),
            RouteClaim::AlreadyOwned
        );
        assert_eq!(
            store.claim_route(&wa, &b).await.expect("claim works"),
            RouteClaim::Conflict { owner: a.clone() }
        );

        assert_eq!(store.route_owner(&wa).await.expect("read works"), Some(a.clone()));
        let same_id_other_platform = Route {
            platform: Platform::Instagram,
            id: wa.id.clone(),
        };
        assert_eq!(
            store
                .route_owner(&same_id_other_platform)
                .await
                .expect("read works"),
            None
        );
        assert!(store.release_route(&wa, &a).await.expect("release works"));
    }

    pub async fn release_by_non_owner_is_refused(store: &dyn Store, _: &Backend) {
        let (a, b) = (customer(), customer());
        let tg = route(Platform::Telegram);
        store.claim_route(&tg, &a).await.expect("claim works");

        assert!(!store.release_route(&tg, &b).await.expect("release works"));
        assert_eq!(store.route_owner(&tg).await.expect("read works"), Some(a.clone()));

        assert!(store.release_route(&tg, &a).await.expect("release works"));
        assert_eq!(store.route_owner(&tg).await.expect("read works"), None);
        assert!(!store.release_route(&tg, &a).await.expect("release works"));
        assert_eq!(
            store.claim_route(&tg, &b).await.expect("claim works"),
            RouteClaim::Claimed
        );
        assert!(store.release_route(&tg, &b).await.expect("release works"));
    }

    pub async fn concurrent_claims_leave_exactly_one_owner(store: &dyn Store, _: &Backend) {
        let ig = route(Platform::Instagram);
        let contenders: Vec<CustomerId> = (0..16).map(|_| customer()).collect();

        let claims = futures::future::join_all(contenders.iter().map(|c| store.claim_route(&ig, c))).await;

        let winners: Vec<&CustomerId> = contenders
            .iter()
            .zip(&claims)
            .filter(|(_, claim)| matches!(claim, Ok(RouteClaim::Claimed)))
            .map(|(c, _)| c)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one claim wins: {claims:?}");
        let owner = winners[0].clone();
        for claim in &claims {
            match claim.as_ref().expect("claim works") {
                RouteClaim::Claimed => {}
                RouteClaim::Conflict { owner: reported } => assert_eq!(reported, &owner),
                RouteClaim::AlreadyOwned => panic!("no contender claimed twice"),
            }
        }
        assert!(store.release_route(&ig, &owner).await.expect("release works"));
    }

    pub async fn api_key_index_round_trips(store: &dyn Store, _: &Backend) {
        let hash = ApiKeyHash::of(&format!("hk_{}", random_hex()));
        let other = ApiKeyHash::of(&format!("hk_{}", random_hex()));
        let summary = CustomerSummary {
            id: customer(),
            plan: Plan::Pro,
            active: true,
            requests_per_minute: Some(600),
            tool_calls_per_month: None,
        };

        store.put_api_key(&hash, &summary).await.expect("put works");

        assert_eq!(store.get_api_key(&hash).await.expect("get works"), Some(summary));
        assert_eq!(store.get_api_key(&other).await.expect("get works"), None);
        store.delete_api_key(&hash).await.expect("delete works");
        assert_eq!(store.get_api_key(&hash).await.expect("get works"), None);
        store.delete_api_key(&hash).await.expect("deleting twice works");
    }

    pub async fn audit_pages_across_two_days_in_order(store: &dyn Store, backend: &Backend) {
        let (a, b) = (customer(), customer());
        let today = midnight(backend.now());
        let yesterday = today - DAY;
        let tools = ["y1", "y2", "y3", "t1", "t2", "t3", "t4"];
        let times = [
            yesterday + SignedDuration::from_hours(1),
            yesterday + SignedDuration::from_hours(2),
            yesterday + SignedDuration::from_hours(23),
            today + SignedDuration::from_millis(1),
            today + SignedDuration::from_millis(2),
            today + SignedDuration::from_millis(2),
            today + SignedDuration::from_millis(3),
        ];
        // Appended out of order: reads are ordered by time, not by arrival.
        for i in [6, 0, 3, 2, 4, 5, 1] {
            store
                .append_audit(&a, &audit_entry(times[i], tools[i]))
                .await
                .expect("append works");
        }
        store
            .append_audit(&b, &audit_entry(times[0], "other customer"))
            .await
            .expect("append works");

        let (read, pages) = read_all(store, &a, yesterday, today + DAY).await;

        // t2 and t3 share a microsecond, so either may come first.
        let mut sorted_ties = read.clone();
        sorted_ties[4..6].sort();
        assert_eq!(sorted_ties, tools, "read {read:?}");
        assert_eq!(pages, 4, "7 entries in pages of 2");
    }

    pub async fn audit_range_filters_by_time(store: &dyn Store, backend: &Backend) {
        let a = customer();
        let today = midnight(backend.now());
        let yesterday = today - DAY;
        for (hours, tool) in [(1, "y01"), (5, "y05"), (22, "y22"), (24, "t00")] {
            store
                .append_audit(
                    &a,
                    &audit_entry(yesterday + SignedDuration::from_hours(hours), tool),
                )
                .await
                .expect("append works");
        }

        // `from` is inclusive, `to` exclusive.
        let (read, _) = read_all(
            store,
            &a,
            yesterday + SignedDuration::from_hours(5),
            yesterday + SignedDuration::from_hours(24),
        )
        .await;
        assert_eq!(read, ["y05", "y22"]);

        let (read, _) = read_all(store, &a, yesterday + SignedDuration::from_hours(22), today + DAY).await;
        assert_eq!(read, ["y22", "t00"]);

        let (read, pages) = read_all(store, &a, today + DAY, today + DAY * 2).await;
        assert_eq!((read.len(), pages), (0, 1));

        let empty_range = AuditQuery {
            from: today,
            to: yesterday,
            limit: 10,
            cursor: None,
        };
        let page = store.read_audit(&a, &empty_range).await.expect("audit reads");
        assert_eq!(
            page,
            AuditPage {
                entries: vec![],
                next: None
            }
        );
    }

    pub async fn identical_audit_entries_are_both_kept(store: &dyn Store, backend: &Backend) {
        let a = customer();
        let entry = audit_entry(midnight(backend.now()) + SignedDuration::from_secs(1), "twice");

        store.append_audit(&a, &entry).await.expect("append works");
        store.append_audit(&a, &entry).await.expect("append works");

        let page = store
            .read_audit(
                &a,
                &AuditQuery {
                    from: entry.at,
                    to: entry.at + SignedDuration::from_secs(1),
                    limit: 10,
                    cursor: None,
                },
            )
            .await
            .expect("audit reads");
        assert_eq!(page.entries, vec![entry.clone(), entry]);
        assert_eq!(page.next, None);
    }

    pub async fn audit_expires_retention_days_after_its_day(store: &dyn Store, backend: &Backend) {
        let a = customer();
        let now = backend.now();
        let today = midnight(now);
        let old = audit_entry(today + SignedDuration::from_secs(60), "old");
        let day_after = audit_entry(today + DAY + SignedDuration::from_secs(60), "day after");
        let too_old = audit_entry(today - DAY * (AUDIT_RETENTION_DAYS as i32 + 2), "too old");
        store.append_audit(&a, &old).await.expect("append works");
        store.append_audit(&a, &too_old).await.expect("append works");

        let everything = |from: Timestamp| AuditQuery {
            from,
            to: from + DAY * (AUDIT_RETENTION_DAYS as i32 + 10),
            limit: 100,
            cursor: None,
        };
        let tools = |page: AuditPage| page.entries.into_iter().map(|e| e.tool).collect::<Vec<_>>();

        // An entry whose day expired already is never visible.
        let since_long_ago = everything(too_old.at - DAY);
        let page = store.read_audit(&a, &since_long_ago).await.expect("audit reads");
        assert_eq!(tools(page), ["old"]);

        match backend {
            Backend::Redis { raw, .. } => {
                // The day key expires when the day ends plus the retention.
                let key = keyspace::audit_day(&a, today.to_zoned(jiff::tz::TimeZone::UTC).date());
                let expected =
                    (today + DAY * (AUDIT_RETENTION_DAYS as i32 + 1)).as_second() - now.as_second();
                let ttl = raw.ttl(&key).await;
                assert!(
                    (expected - 5..=expected).contains(&ttl),
                    "TTL of {key} is {ttl}s, expected about {expected}s"
                );
            }
            Backend::Embedded { clock, .. } => {
                store.append_audit(&a, &day_after).await.expect("append works");

                // One second before the day's expiry, its entries are still there.
                let expiry = today + DAY * (AUDIT_RETENTION_DAYS as i32 + 1);
                clock.advance(expiry.duration_since(now) - SignedDuration::from_secs(1));
                let page = store
                    .read_audit(&a, &everything(today))
                    .await
                    .expect("audit reads");
                assert_eq!(tools(page), ["old", "day after"]);

                // Past 91 days the day is gone, the newer day stays.
                clock.advance(SignedDuration::from_secs(1));
                let page = store
                    .read_audit(&a, &everything(today))
                    .await
                    .expect("audit reads");
                assert_eq!(tools(page), ["day after"]);
                assert_eq!(
                    store.purge_customer(&a).await.expect("purge works"),
                    1,
                    "one day left"
                );
            }
        }
    }

    pub async fn a_foreign_audit_cursor_is_an_invalid_argument(store: &dyn Store, backend: &Backend) {
        let query = AuditQuery {
            from: backend.now() - DAY,
            to: backend.now(),
            limit: 10,
            cursor: Some("not-a-cursor".into()),
        };

        let result = store.read_audit(&customer(), &query).await;

        assert!(
            matches!(result, Err(StoreError::InvalidArgument(_))),
            "{result:?}"
        );
    }

    pub async fn usage_counters_add_up_per_period(store: &dyn Store, _: &Backend) {
        let (a, b) = (customer(), customer());

        assert_eq!(
            store
                .incr_usage(&a, "2026-05", "tool_calls", 1)
                .await
                .expect("incr works"),
            1
        );
        assert_eq!(
            store
                .incr_usage(&a, "2026-05", "tool_calls", 3)
                .await
                .expect("incr works"),
            4
        );
        assert_eq!(
            store
                .incr_usage(&a, "2026-05", "messages", 2)
                .await
                .expect("incr works"),
            2
        );
        assert_eq!(
            store
                .incr_usage(&a, "2026-06", "tool_calls", 7)
                .await
                .expect("incr works"),
            7
        );

        let may = store.usage(&a, "2026-05").await.expect("read works");
        assert_eq!(
            may.into_iter().collect::<Vec<_>>(),
            [("messages".to_owned(), 2), ("tool_calls".to_owned(), 4)]
        );
        assert_eq!(store.usage(&a, "2026-06").await.expect("read works").len(), 1);
        assert!(store.usage(&a, "2026-07").await.expect("read works").is_empty());
        assert!(store.usage(&b, "2026-05").await.expect("read works").is_empty());
    }

    pub async fn rate_limit_allows_a_burst_then_limits(store: &dyn Store, _: &Backend) {
        // One request a minute: the burst is spent long before one comes back.
        let (a, b) = (customer(), customer());
        let limit = RateLimit {
            per_minute: 1,
            burst: 3,
        };

        for _ in 0..3 {
            assert_eq!(
                store.check_rate(&a, limit).await.expect("check works"),
                RateDecision::Allowed
            );
        }
        let RateDecision::Limited { retry_after } = store.check_rate(&a, limit).await.expect("check works")
        else {
            panic!("the fourth request of a burst of three is limited");
        };

        assert!(
            retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60),
            "{retry_after:?}"
        );
        assert_eq!(
            store.check_rate(&b, limit).await.expect("check works"),
            RateDecision::Allowed,
            "another customer has its own limit"
        );
        let zero = RateLimit {
            per_minute: 0,
            burst: 1,
        };
        assert!(matches!(
            store.check_rate(&a, zero).await,
            Err(StoreError::InvalidArgument(_))
        ));
    }

    pub async fn rate_limit_is_shared_by_replicas(store: &dyn Store, backend: &Backend) {
        let a = customer();
        let other = backend.another_replica().await;
        let limit = RateLimit {
            per_minute: 1,
            burst: 2,
        };

        assert_eq!(
            store.check_rate(&a, limit).await.expect("check works"),
            RateDecision::Allowed
        );
        assert_eq!(
            other.check_rate(&a, limit).await.expect("check works"),
            RateDecision::Allowed
        );

        assert!(matches!(
            store.check_rate(&a, limit).await.expect("check works"),
            RateDecision::Limited { .. }
        ));
        assert!(matches!(
            other.check_rate(&a, limit).await.expect("check works"),
            RateDecision::Limited { .. }
        ));
    }

    pub async fn rate_limit_allows_again_after_retry_after(store: &dyn Store, backend: &Backend) {
        // 6000 a minute: one request per 10 ms, so waiting on Redis's clock is short.
        let a = customer();
        let limit = RateLimit {
            per_minute: 6000,
            burst: 2,
        };
        let retry_after = loop {
            match store.check_rate(&a, limit).await.expect("check works") {
                RateDecision::Allowed => continue,
                RateDecision::Limited { retry_after } => break retry_after,
            }
        };
        assert!(retry_after <= Duration::from_millis(10), "{retry_after:?}");

        backend.let_time_pass(retry_after).await;

        assert_eq!(
            store.check_rate(&a, limit).await.expect("check works"),
            RateDecision::Allowed
        );
    }

    pub async fn streams_resume_after_a_cursor(store: &dyn Store, _: &Backend) {
        let (a, b) = (customer(), customer());
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(
                store
                    .append_event(StreamKind::Inbox, &a, &json!({ "n": n }), 100)
                    .await
                    .expect("append works"),
            );
        }
        store
            .append_event(StreamKind::Outbox, &a, &json!({ "sent": true }), 100)
            .await
            .expect("append works");

        let all = store
            .read_events(StreamKind::Inbox, &a, None, 10)
            .await
            .expect("read works");
        assert_eq!(all.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
        assert_eq!(
            all.iter().map(|e| e.event["n"].clone()).collect::<Vec<_>>(),
            [0, 1, 2]
        );

        let after_first = store
            .read_events(StreamKind::Inbox, &a, Some(&ids[0]), 1)
            .await
            .expect("read works");
        assert_eq!(after_first.len(), 1);
        assert_eq!(after_first[0].id, ids[1]);
        assert_eq!(after_first[0].event, json!({ "n": 1 }));

        let after_last = store
            .read_events(StreamKind::Inbox, &a, Some(&ids[2]), 10)
            .await
            .expect("read works");
        assert!(after_last.is_empty());

        let outbox = store
            .read_events(StreamKind::Outbox, &a, None, 10)
            .await
            .expect("read works");
        assert_eq!(outbox.len(), 1);
        assert!(
            store
                .read_events(StreamKind::Inbox, &b, None, 10)
                .await
                .expect("read works")
                .is_empty()
        );
    }

    pub async fn streams_trim_to_about_max_len(store: &dyn Store, _: &Backend) {
        // Redis trims approximately, whole internal nodes at a time (100
        // events by default), so enough events are appended to fill several.
        let a = customer();
        let (appended, max_len) = (300, 20);
        let mut last = String::new();
        for n in 0..appended {
            last = store
                .append_event(StreamKind::Inbox, &a, &json!({ "n": n }), max_len)
                .await
                .expect("append works");
        }

        let kept = store
            .read_events(StreamKind::Inbox, &a, None, 1000)
            .await
            .expect("read works");

        assert!(
            (max_len..appended).contains(&kept.len()),
            "kept {} of {appended} with max_len {max_len}",
            kept.len()
        );
        assert_eq!(
            kept.last().map(|e| e.id.as_str()),
            Some(last.as_str()),
            "the newest is kept"
        );
        assert_eq!(
            kept.first().map(|e| e.event["n"].clone()),
            Some(json!(appended - kept.len())),
            "the oldest are dropped first"
        );
    }

    pub async fn a_malformed_stream_cursor_is_an_invalid_argument(store: &dyn Store, _: &Backend) {
        let result = store
            .read_events(StreamKind::Inbox, &customer(), Some("yesterday"), 10)
            .await;

        assert!(
            matches!(result, Err(StoreError::InvalidArgument(_))),
            "{result:?}"
        );
    }

    pub async fn purge_removes_every_key_of_the_customer_only(store: &dyn Store, backend: &Backend) {
        let (a, b) = (customer(), customer());
        for c in [&a, &b] {
            store
                .put_credentials(c, Platform::Whatsapp, &envelope("k1"))
                .await
                .expect("put works");
            store
                .put_credentials(c, Platform::Telegram, &envelope("k1"))
                .await
                .expect("put works");
            store
                .put_connection_state(c, &connection(Platform::Whatsapp, true))
                .await
                .expect("put works");
            store
                .append_audit(c, &audit_entry(backend.now(), "send_message"))
                .await
                .expect("append works");
            store
                .incr_usage(c, "2026-05", "tool_calls", 1)
                .await
                .expect("incr works");
            // One request a minute: the rate-limit state lives for a minute.
            let slow = RateLimit {
                per_minute: 1,
                burst: 1,
            };
            store.check_rate(c, slow).await.expect("check works");
            store
                .append_event(StreamKind::Inbox, c, &json!({}), 10)
                .await
                .expect("append works");
            store
                .append_event(StreamKind::Outbox, c, &json!({}), 10)
                .await
                .expect("append works");
        }

        let removed = store.purge_customer(&a).await.expect("purge works");

        assert_eq!(
            removed, 8,
            "2 credentials, connections, 1 audit day, usage, rate, 2 streams"
        );
        assert_eq!(
            store
                .get_credentials(&a, Platform::Whatsapp)
                .await
                .expect("get works"),
            None
        );
        assert!(store.connection_states(&a).await.expect("list works").is_empty());
        assert!(store.usage(&a, "2026-05").await.expect("read works").is_empty());
        assert!(
            store
                .read_events(StreamKind::Inbox, &a, None, 10)
                .await
                .expect("read works")
                .is_empty()
        );
        let today = AuditQuery {
            from: backend.now() - 1.hour(),
            to: backend.now() + 1.hour(),
            limit: 10,
            cursor: None,
        };
        assert!(
            store
                .read_audit(&a, &today)
                .await
                .expect("read works")
                .entries
                .is_empty()
        );

        assert!(
            store
                .get_credentials(&b, Platform::Telegram)
                .await
                .expect("get works")
                .is_some()
        );
        assert_eq!(
            store
                .read_audit(&b, &today)
                .await
                .expect("read works")
                .entries
                .len(),
            1
        );
        assert_eq!(
            store.purge_customer(&a).await.expect("purge works"),
            0,
            "nothing left"
        );
        if let Backend::Redis { raw, .. } = backend {
            assert_eq!(
                raw.scan(&keyspace::customer_pattern(&a)).await,
                Vec::<String>::new()
            );
            assert_eq!(raw.scan(&keyspace::customer_pattern(&b)).await.len(), 8);
        }
        assert_eq!(store.purge_customer(&b).await.expect("purge works"), 8);
    }

    pub async fn ping_answers(store: &dyn Store, _: &Backend) {
        store.ping().await.expect("the backend answers");
    }

    pub async fn an_inbound_event_appended_three_times_is_stored_once(store: &dyn Store, _: &Backend) {
        let (a, b) = (customer(), customer());
        let key = format!("whatsapp:message:wamid.{}", random_hex());

        let first = store
            .append_inbound(&a, &inbound(&key, 1), 100)
            .await
            .expect("append works");
        let second = store
            .append_inbound(&a, &inbound(&key, 2), 100)
            .await
            .expect("append works");
        let third = store
            .append_inbound(&a, &inbound(&key, 3), 100)
            .await
            .expect("append works");

        let Appended::Stored { id } = first.clone() else {
            panic!("the first copy is stored: {first:?}");
        };
        assert_eq!(second, Appended::Duplicate { id: id.clone() });
        assert_eq!(third, Appended::Duplicate { id: id.clone() });
        let inbox = store
            .read_events(StreamKind::Inbox, &a, None, 10)
            .await
            .expect("read works");
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox[0].id, id);
        assert_eq!(inbox[0].event["n"], 1, "the first copy is the one kept");

        let other = store
            .append_inbound(&b, &inbound(&key, 1), 100)
            .await
            .expect("append works");
        assert!(!other.is_duplicate(), "dedup keys are per customer");
    }

    pub async fn inbound_dedup_keys_expire_after_seven_days(store: &dyn Store, backend: &Backend) {
        let a = customer();
        let key = format!("telegram:ns.bot:update:{}", random_hex());
        store
            .append_inbound(&a, &inbound(&key, 1), 100)
            .await
            .expect("append works");

        match backend {
            Backend::Redis { raw, .. } => {
                let ttl = raw.ttl(&keyspace::inbound_dedup(&a, &key)).await;
                let week = INBOUND_DEDUP_TTL.as_secs() as i64;
                assert!(
                    (week - 5..=week).contains(&ttl),
                    "TTL is {ttl}s, expected about {week}s"
                );
            }
            Backend::Embedded { clock, .. } => {
                let week = SignedDuration::try_from(INBOUND_DEDUP_TTL).expect("a week fits");
                clock.advance(week - SignedDuration::from_secs(1));
                let again = store
                    .append_inbound(&a, &inbound(&key, 2), 100)
                    .await
                    .expect("append works");
                assert!(again.is_duplicate(), "still remembered just before a week");

                clock.advance(SignedDuration::from_secs(1));
                let later = store
                    .append_inbound(&a, &inbound(&key, 3), 100)
                    .await
                    .expect("append works");
                assert!(!later.is_duplicate(), "forgotten after a week");
            }
        }
    }

    pub async fn a_message_keeps_its_status_of_highest_rank(store: &dyn Store, _: &Backend) {
        let (a, b) = (customer(), customer());
        let message = format!("wamid.{}", random_hex());

        for (name, rank) in [("sent", 1), ("read", 3), ("delivered", 2)] {
            store
                .append_inbound(&a, &status(&message, name, rank), 100)
                .await
                .expect("append works");
        }

        let latest = store
            .message_status(&a, &message)
            .await
            .expect("read works")
            .expect("a status is recorded");
        assert_eq!(latest["status"], "read", "a late delivered does not hide read");
        assert_eq!(
            store.message_status(&b, &message).await.expect("read works"),
            None
        );
        assert_eq!(
            store
                .message_status(&a, "wamid.unknown")
                .await
                .expect("read works"),
            None
        );

        store
            .append_inbound(&a, &status(&message, "failed", 4), 100)
            .await
            .expect("append works");
        let latest = store
            .message_status(&a, &message)
            .await
            .expect("read works")
            .expect("a status is recorded");
        assert_eq!(latest["status"], "failed");
    }

    pub async fn inbound_events_are_queued_only_for_customers_with_a_delivery_target(
        store: &dyn Store,
        _: &Backend,
    ) {
        let a = customer();
        let timeout = Duration::from_secs(60);
        store
            .append_inbound(&a, &inbound(&random_hex(), 0), 100)
            .await
            .expect("append works");
        assert!(
            store
                .claim_deliveries(&a, "worker-1", timeout, 10)
                .await
                .expect("claim works")
                .is_empty(),
            "nothing is queued without a target"
        );

        let written = target();
        store.put_delivery_target(&a, &written).await.expect("put works");
        let stored = store
            .append_inbound(&a, &inbound(&random_hex(), 1), 100)
            .await
            .expect("append works");

        assert_eq!(
            store.get_delivery_target(&a).await.expect("get works"),
            Some(written)
        );
        assert!(store.delivery_customers().await.expect("list works").contains(&a));
        let jobs = store
            .claim_deliveries(&a, "worker-1", timeout, 10)
            .await
            .expect("claim works");
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].inbox_id, stored.id());
        assert_eq!(jobs[0].event["n"], 1);
        assert_eq!((jobs[0].attempt, jobs[0].last_error.clone()), (0, None));

        assert!(store.delete_delivery_target(&a).await.expect("delete works"));
        assert!(!store.delete_delivery_target(&a).await.expect("delete works"));
        assert_eq!(store.get_delivery_target(&a).await.expect("get works"), None);
        assert!(!store.delivery_customers().await.expect("list works").contains(&a));
        assert!(matches!(
            store.claim_deliveries(&a, "", timeout, 10).await,
            Err(StoreError::InvalidArgument(_))
        ));
        store.purge_customer(&a).await.expect("purge works");
    }

    pub async fn a_claimed_delivery_is_taken_over_only_after_the_claim_timeout(
        store: &dyn Store,
        backend: &Backend,
    ) {
        let a = customer();
        let other = backend.another_replica().await;
        let timeout = Duration::from_millis(300);
        store.put_delivery_target(&a, &target()).await.expect("put works");
        store
            .append_inbound(&a, &inbound(&random_hex(), 1), 100)
            .await
            .expect("append works");

        let held = store
            .claim_deliveries(&a, "worker-1", timeout, 10)
            .await
            .expect("claim works");
        assert_eq!(held.len(), 1);
        assert!(
            other
                .claim_deliveries(&a, "worker-2", timeout, 10)
                .await
                .expect("claim works")
                .is_empty(),
            "a held delivery is not handed out again"
        );

        backend.let_time_pass(timeout + Duration::from_millis(50)).await;

        let taken = other
            .claim_deliveries(&a, "worker-2", timeout, 10)
            .await
            .expect("claim works");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].id, held[0].id);
        assert_eq!(taken[0].event, held[0].event);
        assert!(
            other
                .complete_delivery(&a, &taken[0].id)
                .await
                .expect("complete works")
        );
        assert!(
            store
                .claim_deliveries(&a, "worker-1", Duration::ZERO, 10)
                .await
                .expect("claim works")
                .is_empty(),
            "a completed delivery leaves the queue"
        );
        store.purge_customer(&a).await.expect("purge works");
    }

    pub async fn a_retried_delivery_returns_when_due_with_its_attempt_counted(
        store: &dyn Store,
        backend: &Backend,
    ) {
        let a = customer();
        let timeout = Duration::from_secs(60);
        store.put_delivery_target(&a, &target()).await.expect("put works");
        let stored = store
            .append_inbound(&a, &inbound(&random_hex(), 7), 100)
            .await
            .expect("append works");
        let job = store
            .claim_deliveries(&a, "worker-1", timeout, 10)
            .await
            .expect("claim works")
            .pop()
            .expect("one job");

        let delay = Duration::from_millis(200);
        assert!(
            store
                .retry_delivery(&a, &job, delay, "http 503")
                .await
                .expect("retry works")
        );

        assert!(
            store
                .claim_deliveries(&a, "worker-1", timeout, 10)
                .await
                .expect("claim works")
                .is_empty(),
            "not before it is due"
        );
        backend.let_time_pass(delay + Duration::from_millis(50)).await;
        let again = store
            .claim_deliveries(&a, "worker-2", timeout, 10)
            .await
            .expect("claim works");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].inbox_id, stored.id());
        assert_eq!(again[0].event, job.event);
        assert_eq!(again[0].attempt, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("http 503"));
        store.purge_customer(&a).await.expect("purge works");
    }

    pub async fn a_dead_letter_is_listed_and_replayed_into_the_queue(store: &dyn Store, _: &Backend) {
        let a = customer();
        let timeout = Duration::from_secs(60);
        store.put_delivery_target(&a, &target()).await.expect("put works");
        let stored = store
            .append_inbound(&a, &inbound(&random_hex(), 3), 100)
            .await
            .expect("append works");
        let job = store
            .claim_deliveries(&a, "worker-1", timeout, 10)
            .await
            .expect("claim works")
            .pop()
            .expect("one job");

        let dead_id = store
            .dead_letter_delivery(&a, &job, "http 410")
            .await
            .expect("dead-letter works")
            .expect("the job was held");

        let dead = store.dead_letters(&a, None, 10).await.expect("list works");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id, dead_id);
        assert_eq!(dead[0].inbox_id, stored.id());
        assert_eq!(dead[0].event["n"], 3);
        assert_eq!((dead[0].attempts, dead[0].error.as_str()), (1, "http 410"));
        assert!(
            store
                .dead_letters(&a, Some(&dead_id), 10)
                .await
                .expect("list works")
                .is_empty()
        );
        assert!(
            store
                .claim_deliveries(&a, "worker-1", Duration::ZERO, 10)
                .await
                .expect("claim works")
                .is_empty(),
            "a dead letter is not delivered"
        );

        assert!(
            store
                .replay_dead_letter(&a, &dead_id)
                .await
                .expect("replay works")
        );
        assert!(
            !store
                .replay_dead_letter(&a, &dead_id)
                .await
                .expect("replay works")
        );
        assert!(
            store
                .dead_letters(&a, None, 10)
                .await
                .expect("list works")
                .is_empty()
        );
        let replayed = store
            .claim_deliveries(&a, "worker-1", timeout, 10)
            .await
            .expect("claim works");
        assert_eq!(replayed.len(), 1);
        assert_eq!(
            (replayed[0].inbox_id.as_str(), replayed[0].attempt),
            (stored.id(), 0)
        );
        assert!(matches!(
            store.replay_dead_letter(&a, "not-an-id").await,
            Err(StoreError::InvalidArgument(_))
        ));
        store.purge_customer(&a).await.expect("purge works");
    }

    pub async fn a_delivery_finished_by_another_consumer_is_not_finished_twice(
        store: &dyn Store,
        backend: &Backend,
    ) {
        let a = customer();
        let timeout = Duration::from_millis(100);
        store.put_delivery_target(&a, &target()).await.expect("put works");
        store
            .append_inbound(&a, &inbound(&random_hex(), 1), 100)
            .await
            .expect("append works");
        let slow = store
            .claim_deliveries(&a, "slow", timeout, 10)
            .await
            .expect("claim works")
            .pop()
            .expect("one job");
        backend.let_time_pass(timeout + Duration::from_millis(50)).await;
        let fast = store
            .claim_deliveries(&a, "fast", timeout, 10)
            .await
            .expect("claim works")
            .pop()
            .expect("taken over");

        assert!(
            store
                .complete_delivery(&a, &fast.id)
                .await
                .expect("complete works")
        );

        assert!(
            !store
                .complete_delivery(&a, &slow.id)
                .await
                .expect("complete works")
        );
        assert!(
            !store
                .retry_delivery(&a, &slow, Duration::ZERO, "late")
                .await
                .expect("retry works")
        );
        assert_eq!(
            store
                .dead_letter_delivery(&a, &slow, "late")
                .await
                .expect("dead-letter works"),
            None
        );
        assert!(
            store
                .dead_letters(&a, None, 10)
                .await
                .expect("list works")
                .is_empty()
        );
        store.purge_customer(&a).await.expect("purge works");
    }

    pub async fn purge_removes_the_inbound_keys_of_the_customer(store: &dyn Store, backend: &Backend) {
        let (a, b) = (customer(), customer());
        let timeout = Duration::from_secs(60);
        for c in [&a, &b] {
            store.put_delivery_target(c, &target()).await.expect("put works");
            store
                .append_inbound(c, &inbound(&random_hex(), 1), 100)
                .await
                .expect("append works");
            store
                .append_inbound(c, &status("wamid.1", "sent", 1), 100)
                .await
                .expect("append works");
            let jobs = store
                .claim_deliveries(c, "worker-1", timeout, 10)
                .await
                .expect("claim works");
            assert_eq!(jobs.len(), 2);
            store
                .retry_delivery(c, &jobs[0], Duration::from_secs(3600), "http 500")
                .await
                .expect("retry works");
            store
                .dead_letter_delivery(c, &jobs[1], "http 404")
                .await
                .expect("dead-letter works");
        }

        let removed = store.purge_customer(&a).await.expect("purge works");

        assert_eq!(
            removed, 8,
            "target, 2 dedup keys, message status, inbox, queue, retries, dead letters"
        );
        assert!(!store.delivery_customers().await.expect("list works").contains(&a));
        assert_eq!(store.get_delivery_target(&a).await.expect("get works"), None);
        assert!(
            store
                .dead_letters(&a, None, 10)
                .await
                .expect("list works")
                .is_empty()
        );
        assert_eq!(
            store.message_status(&a, "wamid.1").await.expect("read works"),
            None
        );
        assert!(
            store
                .message_status(&b, "wamid.1")
                .await
                .expect("read works")
                .is_some()
        );
        if let Backend::Redis { raw, .. } = backend {
            assert_eq!(
                raw.scan(&keyspace::customer_pattern(&a)).await,
                Vec::<String>::new()
            );
        }
        assert_eq!(store.purge_customer(&b).await.expect("purge works"), 8);
    }
}

// --- connecting ---

#[tokio::test]
async fn from_env_urls_without_urls_is_none() {
    let store = RedisStore::from_env_urls(None, Some(" , "))
        .await
        .expect("nothing to connect to");

    assert!(store.is_none());
}

#[tokio::test]
async fn a_cluster_without_seeds_is_an_invalid_argument() {
    let result = RedisStore::connect_cluster(&Vec::<String>::new()).await;

    assert!(
        matches!(result, Err(StoreError::InvalidArgument(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_failed_connection_does_not_repeat_the_password() {
    // Port 1 on loopback refuses connections.
    let error = RedisStore::connect_single("redis://:hunter2@127.0.0.1:1")
        .await
        .expect_err("nothing listens on port 1");

    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn from_env_urls_connects_to_what_is_configured() {
    let redis_url = std::env::var("REDIS_URL").ok();
    let cluster_urls = std::env::var("REDIS_CLUSTER_URLS").ok();
    if redis_url.is_none() && cluster_urls.is_none() && service_url("REDIS_URL").is_none() {
        return;
    }

    let store = RedisStore::from_env_urls(redis_url.as_deref(), cluster_urls.as_deref())
        .await
        .expect("the configured Redis answers")
        .expect("a Redis is configured");

    store.ping().await.expect("the configured Redis answers");
}
