//! The SQL conformance suite: one scenario, one test per backend.
//!
//! Every scenario runs on SQLite (a fresh file in a temporary directory per
//! test) as `sqlite::<scenario>`, and on MySQL/MariaDB as `mysql::<scenario>`
//! when `DATABASE_URL` points at a server (e.g.
//! `mysql://root@127.0.0.1:3306/test`). Tests run in parallel against that
//! one server, so each MySQL test creates a database of its own
//! (`hermes_t_<random hex>`), runs on it and drops it afterwards; nothing
//! else on the server is touched. Without `DATABASE_URL` the MySQL tests
//! pass as skipped, unless `HERMES_REQUIRE_SERVICES=1`, which makes them fail.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use hermes_crds::Plan;
use hermes_state::clock::Clock;
use hermes_state::sql::{CustomerRecord, SqlError, SqlRepo, UsageRecord};
use hermes_state::{ApiKeyHash, CustomerId};
use jiff::Timestamp;
use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Connection};

// ---------------------------------------------------------------------------
// Test databases
// ---------------------------------------------------------------------------

/// A database that exists for one test.
struct TestDb {
    /// What `SqlRepo::connect` is given.
    url: String,
    /// Keeps the SQLite file's directory alive until the test ends.
    _dir: Option<tempfile::TempDir>,
    /// The server URL and the name of a MySQL database to drop afterwards.
    mysql: Option<(String, String)>,
}

/// A SQLite file that does not exist yet, in a fresh temporary directory.
fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("hermes.db");
    TestDb {
        url: format!("sqlite://{}", path.display()),
        _dir: Some(dir),
        mysql: None,
    }
}

/// A fresh database on the `DATABASE_URL` server, or `None` when the MySQL tests are skipped.
async fn mysql_db() -> Option<TestDb> {
    let Ok(server) = std::env::var("DATABASE_URL") else {
        let required = std::env::var("HERMES_REQUIRE_SERVICES").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "HERMES_REQUIRE_SERVICES=1 but DATABASE_URL is unset: MySQL is required"
        );
        eprintln!("skipped: DATABASE_URL is unset");
        return None;
    };

    let name = format!("hermes_t_{:016x}", rand::random::<u64>());
    let mut admin = MySqlConnection::connect(&server)
        .await
        .expect("connect to the DATABASE_URL server");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let _ = admin.close().await;

    Some(TestDb {
        url: with_database(&server, &name),
        _dir: None,
        mysql: Some((server, name)),
    })
}

/// `server` with its database path replaced by `database`, query kept.
fn with_database(server: &str, database: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("DATABASE_URL is scheme://host/...");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{database}{query}")
}

impl TestDb {
    /// Drops the MySQL database, best effort: a leftover `hermes_t_*` database is harmless.
    async fn cleanup(self) {
        let Some((server, name)) = &self.mysql else {
            return;
        };
        let dropped = async {
            let mut admin = MySqlConnection::connect(server).await?;
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
                .execute(&mut admin)
                .await?;
            admin.close().await
        };
        if let Err(error) = dropped.await {
            eprintln!("could not drop test database {name}: {error}");
        }
    }
}

/// Runs `scenario` on `db`, then cleans up even when the scenario panicked.
async fn run<F, Fut>(db: TestDb, scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(scenario(db.url.clone())).catch_unwind().await;
    db.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Generates `sqlite::<scenario>` and `mysql::<scenario>` for each scenario.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::run(super::sqlite_db(), super::$scenario).await;
                }
            )*
        }

        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    if let Some(db) = super::mysql_db().await {
                        super::run(db, super::$scenario).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    migrations_apply_twice_without_error,
    upsert_then_read_back_every_field,
    update_keeps_created_at,
    lookup_by_key_hash_finds_the_current_holder,
    soft_delete_hides_from_key_lookup_but_not_from_id_lookup,
    re_upsert_revives_a_soft_deleted_customer,
    api_key_hash_of_another_customer_is_refused,
    concurrent_usage_deltas_all_count,
    usage_is_kept_per_customer_and_period,
    usage_total_overflow_fails_and_keeps_the_row,
    unknown_customer_gives_none,
    invalid_arguments_are_refused_and_write_nothing,
);

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

async fn connect(url: &str) -> SqlRepo {
    SqlRepo::connect(url).await.expect("connect to the test database")
}

fn id(name: &str) -> CustomerId {
    CustomerId::new(name).expect("valid customer id")
}

/// A timestamp with microsecond precision, as stored.
fn at_micros(seconds: i64, micros: i32) -> Timestamp {
    Timestamp::new(seconds, micros * 1_000).expect("valid timestamp")
}

/// A live customer with every optional field set.
fn customer(name: &str) -> CustomerRecord {
    CustomerRecord {
        id: id(name),
        plan: Plan::Pro,
        active: true,
        email: format!("ops+{name}@example.com"),
        api_key_hash: ApiKeyHash::of(&format!("hm_live_{name}")),
        requests_per_minute: Some(600),
        tool_calls_per_month: Some(250_000),
        created_at: at_micros(1_760_000_000, 123_456),
        updated_at: at_micros(1_760_000_100, 654_321),
        deleted_at: None,
    }
}

/// A clock that always reads the same instant.
#[derive(Debug)]
struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

async fn migrations_apply_twice_without_error(url: String) {
    let first = connect(&url).await;
    first.upsert_customer(&customer("acme")).await.expect("upsert");
    first.close().await;

    // Two more connects at once, as an operator and a server starting together.
    let (second, third) = tokio::join!(SqlRepo::connect(&url), SqlRepo::connect(&url));
    let (second, third) = (second.expect("second connect"), third.expect("third connect"));

    second.ping().await.expect("ping");
    third.ping().await.expect("ping");
    assert_eq!(
        second.customer(&id("acme")).await.expect("read"),
        Some(customer("acme"))
    );
}

async fn upsert_then_read_back_every_field(url: String) {
    let repo = connect(&url).await;
    let full = customer("acme");
    let sparse = CustomerRecord {
        plan: Plan::Free,
        active: false,
        requests_per_minute: None,
        tool_calls_per_month: None,
        ..customer("globex.eu-1")
    };
    let max_limits = CustomerRecord {
        plan: Plan::Enterprise,
        requests_per_minute: Some(u32::MAX),
        tool_calls_per_month: Some(i64::MAX as u64),
        created_at: Timestamp::new(1_700_000_000, 999_999_999).expect("valid timestamp"),
        ..customer("initech")
    };
    // Stored at microsecond precision: the sub-microsecond part is truncated.
    let max_limits_stored = CustomerRecord {
        created_at: at_micros(1_700_000_000, 999_999),
        ..max_limits.clone()
    };

    for row in [&full, &sparse, &max_limits] {
        repo.upsert_customer(row).await.expect("upsert");
    }

    assert_eq!(repo.customer(&full.id).await.expect("read"), Some(full));
    assert_eq!(repo.customer(&sparse.id).await.expect("read"), Some(sparse));
    assert_eq!(
        repo.customer(&max_limits.id).await.expect("read"),
        Some(max_limits_stored)
    );
}

async fn update_keeps_created_at(url: String) {
    let repo = connect(&url).await;
    let original = customer("acme");
    repo.upsert_customer(&original).await.expect("insert");

    let changed = CustomerRecord {
        plan: Plan::Starter,
        active: false,
        email: "billing@acme.example".to_owned(),
        api_key_hash: ApiKeyHash::of("hm_live_rotated"),
        requests_per_minute: None,
        tool_calls_per_month: Some(10),
        created_at: at_micros(1_790_000_000, 0),
        updated_at: at_micros(1_790_000_000, 1),
        deleted_at: None,
        id: original.id.clone(),
    };
    repo.upsert_customer(&changed).await.expect("update");

    let stored = repo.customer(&original.id).await.expect("read").expect("exists");
    assert_eq!(
        stored,
        CustomerRecord {
            created_at: original.created_at,
            ..changed
        }
    );
}

async fn lookup_by_key_hash_finds_the_current_holder(url: String) {
    let repo = connect(&url).await;
    let acme = customer("acme");
    let globex = customer("globex");
    repo.upsert_customer(&acme).await.expect("upsert");
    repo.upsert_customer(&globex).await.expect("upsert");

    assert_eq!(
        repo.customer_by_key_hash(&acme.api_key_hash)
            .await
            .expect("lookup"),
        Some(acme.clone())
    );
    assert_eq!(
        repo.customer_by_key_hash(&globex.api_key_hash)
            .await
            .expect("lookup"),
        Some(globex)
    );

    // Rotating the key moves the lookup to the new hash.
    let rotated = CustomerRecord {
        api_key_hash: ApiKeyHash::of("hm_live_acme_rotated"),
        ..acme.clone()
    };
    repo.upsert_customer(&rotated).await.expect("rotate");

    assert_eq!(
        repo.customer_by_key_hash(&acme.api_key_hash)
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(
        repo.customer_by_key_hash(&rotated.api_key_hash)
            .await
            .expect("lookup"),
        Some(rotated)
    );
}

async fn soft_delete_hides_from_key_lookup_but_not_from_id_lookup(url: String) {
    let deleted_at = at_micros(1_770_000_000, 42);
    let repo = connect(&url).await.with_clock(Arc::new(FixedClock(deleted_at)));
    let acme = customer("acme");
    repo.upsert_customer(&acme).await.expect("upsert");

    assert!(repo.soft_delete_customer(&acme.id).await.expect("delete"));

    assert_eq!(
        repo.customer_by_key_hash(&acme.api_key_hash)
            .await
            .expect("lookup"),
        None
    );
    let stored = repo.customer(&acme.id).await.expect("read").expect("row kept");
    assert_eq!(
        stored,
        CustomerRecord {
            updated_at: deleted_at,
            deleted_at: Some(deleted_at),
            ..acme.clone()
        }
    );

    // Deleting again, or deleting an unknown customer, changes nothing.
    let later = repo
        .clone()
        .with_clock(Arc::new(FixedClock(at_micros(1_780_000_000, 0))));
    assert!(!later.soft_delete_customer(&acme.id).await.expect("delete again"));
    assert!(
        !later
            .soft_delete_customer(&id("nobody"))
            .await
            .expect("delete unknown")
    );
    let stored = repo.customer(&acme.id).await.expect("read").expect("row kept");
    assert_eq!(stored.deleted_at, Some(deleted_at));
}

async fn re_upsert_revives_a_soft_deleted_customer(url: String) {
    let repo = connect(&url).await;
    let acme = customer("acme");
    repo.upsert_customer(&acme).await.expect("upsert");
    repo.soft_delete_customer(&acme.id).await.expect("delete");

    // The record's own deleted_at is ignored: an upsert always revives.
    let recreated = CustomerRecord {
        plan: Plan::Starter,
        created_at: at_micros(1_799_000_000, 0),
        updated_at: at_micros(1_799_000_000, 0),
        deleted_at: Some(at_micros(1_799_000_000, 0)),
        ..acme.clone()
    };
    repo.upsert_customer(&recreated).await.expect("re-upsert");

    let expected = CustomerRecord {
        created_at: acme.created_at,
        deleted_at: None,
        ..recreated
    };
    assert_eq!(
        repo.customer(&acme.id).await.expect("read"),
        Some(expected.clone())
    );
    assert_eq!(
        repo.customer_by_key_hash(&acme.api_key_hash)
            .await
            .expect("lookup"),
        Some(expected)
    );
}

async fn api_key_hash_of_another_customer_is_refused(url: String) {
    let repo = connect(&url).await;
    let acme = customer("acme");
    repo.upsert_customer(&acme).await.expect("upsert");
    let copycat = CustomerRecord {
        api_key_hash: acme.api_key_hash.clone(),
        ..customer("copycat")
    };

    let err = repo.upsert_customer(&copycat).await.expect_err("hash is acme's");
    assert!(
        matches!(&err, SqlError::ApiKeyHashTaken { customer, holder, holder_deleted: false }
            if *customer == copycat.id && *holder == acme.id),
        "{err:?}"
    );
    assert_eq!(repo.customer(&copycat.id).await.expect("read"), None);
    assert_eq!(repo.customer(&acme.id).await.expect("read"), Some(acme.clone()));

    // A soft-deleted customer keeps its hash.
    repo.soft_delete_customer(&acme.id).await.expect("delete");
    let err = repo
        .upsert_customer(&copycat)
        .await
        .expect_err("hash is still acme's");
    assert!(
        matches!(
            err,
            SqlError::ApiKeyHashTaken {
                holder_deleted: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the API key of customer copycat is already the key of deleted customer acme"
    );
}

async fn concurrent_usage_deltas_all_count(url: String) {
    // Two pools, as two server replicas.
    let replicas = [connect(&url).await, connect(&url).await];
    let acme = id("acme");

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let repo = replicas[i % 2].clone();
            let acme = acme.clone();
            tokio::spawn(async move { repo.add_usage(&acme, "2025-11", 1, 3).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.expect("task ran").expect("add usage");
    }

    let usage = replicas[0]
        .usage(&acme, "2025-11")
        .await
        .expect("read")
        .expect("row created");
    assert_eq!((usage.requests, usage.tool_calls), (20, 60));
    assert_eq!((usage.customer, usage.period.as_str()), (acme, "2025-11"));
}

async fn usage_is_kept_per_customer_and_period(url: String) {
    let first = at_micros(1_761_955_200, 0);
    let second = at_micros(1_761_955_260, 500);
    let repo = connect(&url).await.with_clock(Arc::new(FixedClock(first)));
    let (acme, globex) = (id("acme"), id("globex"));

    repo.add_usage(&acme, "2025-11", 5, 2).await.expect("add");
    repo.add_usage(&acme, "2025-12", 7, 0).await.expect("add");
    repo.add_usage(&globex, "2025-11", 1, 1).await.expect("add");
    let repo = repo.with_clock(Arc::new(FixedClock(second)));
    repo.add_usage(&acme, "2025-11", 0, 0).await.expect("add nothing");
    repo.add_usage(&acme, "2025-11", 10, 20).await.expect("add");

    let expected = |customer: &CustomerId, period: &str, requests, tool_calls, updated_at| UsageRecord {
        customer: customer.clone(),
        period: period.to_owned(),
        requests,
        tool_calls,
        updated_at,
    };
    assert_eq!(
        repo.usage(&acme, "2025-11").await.expect("read"),
        Some(expected(&acme, "2025-11", 15, 22, second))
    );
    assert_eq!(
        repo.usage(&acme, "2025-12").await.expect("read"),
        Some(expected(&acme, "2025-12", 7, 0, first))
    );
    assert_eq!(
        repo.usage(&globex, "2025-11").await.expect("read"),
        Some(expected(&globex, "2025-11", 1, 1, first))
    );

    // A replica whose clock lags does not move updated_at back.
    let lagging = repo.with_clock(Arc::new(FixedClock(first)));
    lagging.add_usage(&acme, "2025-11", 1, 0).await.expect("add");
    let usage = lagging.usage(&acme, "2025-11").await.expect("read").expect("row");
    assert_eq!((usage.requests, usage.updated_at), (16, second));
}

async fn usage_total_overflow_fails_and_keeps_the_row(url: String) {
    let repo = connect(&url).await;
    let acme = id("acme");
    let max = i64::MAX as u64;
    repo.add_usage(&acme, "2025-11", max, 1)
        .await
        .expect("add up to the maximum");

    let err = repo
        .add_usage(&acme, "2025-11", 1, 1)
        .await
        .expect_err("total overflows");
    assert!(
        matches!(
            err,
            SqlError::Query {
                step: "adding usage",
                ..
            }
        ),
        "{err:?}"
    );

    let usage = repo.usage(&acme, "2025-11").await.expect("read").expect("row");
    assert_eq!((usage.requests, usage.tool_calls), (max, 1));
}

async fn unknown_customer_gives_none(url: String) {
    let repo = connect(&url).await;
    let acme = customer("acme");
    repo.upsert_customer(&acme).await.expect("upsert");
    repo.add_usage(&acme.id, "2025-11", 1, 1).await.expect("add");

    assert_eq!(repo.customer(&id("nobody")).await.expect("read"), None);
    assert_eq!(
        repo.customer_by_key_hash(&ApiKeyHash::of("hm_live_nobody"))
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(repo.usage(&id("nobody"), "2025-11").await.expect("read"), None);
    assert_eq!(repo.usage(&acme.id, "2025-10").await.expect("read"), None);
}

async fn invalid_arguments_are_refused_and_write_nothing(url: String) {
    let repo = connect(&url).await;
    let acme = id("acme");

    for period in ["2025-13", "2025-1", "202511", "2025-11-01"] {
        let err = repo.add_usage(&acme, period, 1, 1).await.expect_err("bad period");
        assert!(
            matches!(&err, SqlError::InvalidPeriod(p) if p == period),
            "{err:?}"
        );
        let err = repo.usage(&acme, period).await.expect_err("bad period");
        assert!(matches!(err, SqlError::InvalidPeriod(_)), "{err:?}");
    }

    let err = repo
        .add_usage(&acme, "2025-11", u64::MAX, 0)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            SqlError::OutOfRange {
                field: "requests",
                value: u64::MAX
            }
        ),
        "{err:?}"
    );
    let err = repo
        .add_usage(&acme, "2025-11", 0, u64::MAX)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            SqlError::OutOfRange {
                field: "tool_calls",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(repo.usage(&acme, "2025-11").await.expect("read"), None);

    let huge = CustomerRecord {
        tool_calls_per_month: Some(u64::MAX),
        ..customer("acme")
    };
    let err = repo.upsert_customer(&huge).await.expect_err("too large");
    assert!(
        matches!(
            err,
            SqlError::OutOfRange {
                field: "tool_calls_per_month",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(repo.customer(&acme).await.expect("read"), None);
}

// ---------------------------------------------------------------------------
// Backend-independent and SQLite-only tests
// ---------------------------------------------------------------------------

/// Display, Debug and every source of `err`, for checking what an error reveals.
fn everything_shown(err: &SqlError) -> String {
    let mut shown = format!("{err} | {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        shown.push_str(&format!(" | {cause}"));
        source = cause.source();
    }
    shown
}

#[tokio::test]
async fn unsupported_url_scheme_is_refused_without_the_password() {
    let err = SqlRepo::connect("postgres://u:hunter2@h/db")
        .await
        .expect_err("postgres is not supported");

    assert!(matches!(err, SqlError::UnsupportedUrl { .. }), "{err:?}");
    let shown = everything_shown(&err);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        err.to_string()
            .starts_with("unsupported database URL postgres://u:***@h/db: "),
        "{err}"
    );
}

#[tokio::test]
async fn connect_failure_names_the_url_without_the_password() {
    // Port 1 on loopback refuses connections.
    let err = SqlRepo::connect("mysql://u:hunter2@127.0.0.1:1/db")
        .await
        .expect_err("nothing listens on port 1");

    assert!(matches!(err, SqlError::Connect { .. }), "{err:?}");
    let shown = everything_shown(&err);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(
        err.to_string(),
        "connecting to mysql://u:***@127.0.0.1:1/db failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory_database_is_shared_by_its_pool_and_private_to_its_repo() {
    let repo = SqlRepo::connect("sqlite::memory:").await.expect("connect");
    let other = SqlRepo::connect("sqlite::memory:").await.expect("connect");
    let acme = customer("acme");
    repo.upsert_customer(&acme).await.expect("upsert");

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let repo = repo.clone();
            let acme = acme.id.clone();
            tokio::spawn(async move { repo.add_usage(&acme, "2025-11", 1, 1).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.expect("task ran").expect("add usage");
    }

    assert_eq!(repo.customer(&acme.id).await.expect("read"), Some(acme.clone()));
    let usage = repo.usage(&acme.id, "2025-11").await.expect("read").expect("row");
    assert_eq!((usage.requests, usage.tool_calls), (20, 20));
    assert_eq!(other.customer(&acme.id).await.expect("read"), None);
}

#[tokio::test]
async fn sqlite_file_is_created_when_missing() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("fresh.db");
    assert!(!path.exists());

    let repo = SqlRepo::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect("connect");
    repo.ping().await.expect("ping");

    assert!(path.exists());
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("mysql://root@127.0.0.1:3306/test", "hermes_t_1"),
        "mysql://root@127.0.0.1:3306/hermes_t_1"
    );
    assert_eq!(
        with_database("mysql://u:p@db:3306?ssl-mode=disabled", "hermes_t_1"),
        "mysql://u:p@db:3306/hermes_t_1?ssl-mode=disabled"
    );
}
