//! The customers table and the usage ledger, in MySQL/MariaDB or SQLite.
//!
//! [`SqlRepo`] is the one entry point. [`SqlRepo::connect`] reads the URL's
//! dialect, opens a pool and applies that dialect's migrations, embedded at
//! build time from `migrations/mysql` or `migrations/sqlite`. The operator
//! writes customers; the server resolves API keys and appends to the ledger.
//!
//! Both dialects are read through sqlx's runtime-generic `Any` driver, so
//! one set of statements serves both; only the ledger upsert is spelled per
//! dialect. That driver carries integers and text only, which fixes the
//! representation:
//!
//! - Times are unix microseconds in a 64-bit integer column. A [`Timestamp`]
//!   is stored at **microsecond precision**; a sub-microsecond part is
//!   truncated on write.
//! - Counters and limits are signed 64-bit integers. A `u64` above
//!   `i64::MAX` is refused with [`SqlError::OutOfRange`], never wrapped.
//! - Booleans are 0 or 1.

mod database_url;
mod row;

use std::sync::Arc;
use std::time::Duration;

use hermes_crds::Plan;
use jiff::Timestamp;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection};

use self::database_url::{DatabaseUrl, Dialect};
use self::row::RowReader;
use crate::clock::{Clock, SystemClock};
use crate::{ApiKeyHash, CustomerId};

/// How long [`SqlRepo::connect`] and each statement wait for a pooled
/// connection before failing. Bounds a start-up against an unreachable
/// database, too.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/mysql");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// A result of a SQL operation.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// Why a SQL operation failed. Messages never contain a password: URLs
/// appear in their redacted form (`user:***@host`, no query).
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The URL names no database this build speaks (MySQL, MariaDB, SQLite).
    #[error("unsupported database URL {url}: {reason}")]
    UnsupportedUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Opening the pool failed: unreachable server, refused credentials, unopenable file.
    #[error("connecting to {url} failed")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed (or the database holds a
    /// migration this build does not know, or one whose file changed).
    #[error("applying the {dialect} migrations failed")]
    Migrate {
        /// `mysql` or `sqlite`.
        dialect: &'static str,
        /// The migrator's error.
        #[source]
        source: MigrateError,
    },
    /// A statement failed; `step` names what it was doing.
    #[error("{step} failed")]
    Query {
        /// What the statement was for, e.g. `reading customer`.
        step: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored row could not be read back as a record.
    #[error("stored {table} row {key:?} is malformed: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key (customer id, and period for the ledger).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The API-key hash of a customer being written is another customer's.
    /// A soft-deleted customer keeps its hash, so its key cannot be reused
    /// by a different customer either.
    #[error(
        "the API key of customer {customer} is already the key of {}customer {holder}",
        if *.holder_deleted { "deleted " } else { "" }
    )]
    ApiKeyHashTaken {
        /// The customer being written.
        customer: CustomerId,
        /// The customer that holds the hash.
        holder: CustomerId,
        /// True when the holder is soft-deleted.
        holder_deleted: bool,
    },
    /// A billing period is not of the form `yyyy-mm`.
    #[error("invalid billing period {0:?}: expected yyyy-mm with a month 01 to 12")]
    InvalidPeriod(String),
    /// A number is larger than the 64-bit signed columns can hold.
    #[error("{field} {value} exceeds the largest storable value {}", i64::MAX)]
    OutOfRange {
        /// The field or argument.
        field: &'static str,
        /// The refused value.
        value: u64,
    },
}

/// One row of the `customers` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRecord {
    /// The Customer resource's name.
    pub id: CustomerId,
    /// The billing plan.
    pub plan: Plan,
    /// False when the customer is suspended.
    pub active: bool,
    /// The customer's contact address.
    pub email: String,
    /// The SHA-256 of the customer's API key.
    pub api_key_hash: ApiKeyHash,
    /// Per-customer override of the plan's requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Per-customer override of the plan's monthly tool calls.
    pub tool_calls_per_month: Option<u64>,
    /// When the row was first written. Kept by later upserts.
    pub created_at: Timestamp,
    /// When the row was last written.
    pub updated_at: Timestamp,
    /// When the customer was soft-deleted; `None` while it exists.
    pub deleted_at: Option<Timestamp>,
}

/// One row of the usage ledger: a customer's totals for one billing period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord {
    /// The customer.
    pub customer: CustomerId,
    /// The billing period, `yyyy-mm` (UTC).
    pub period: String,
    /// Requests counted in the period.
    pub requests: u64,
    /// Tool calls counted in the period.
    pub tool_calls: u64,
    /// When the row was last added to.
    pub updated_at: Timestamp,
}

/// The SQL repository shared by the operator and the server.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct SqlRepo {
    pool: AnyPool,
    dialect: Dialect,
    clock: Arc<dyn Clock>,
}

impl SqlRepo {
    /// Connects to `url` and applies the embedded migrations of its dialect.
    ///
    /// Accepted URLs:
    ///
    /// - `mysql://user:password@host:3306/database` (or `mariadb://`). The
    ///   database must exist. This build has no TLS: the connection is
    ///   plaintext.
    /// - `sqlite://path/to/file.db` (or `sqlite:file.db`). A missing file is
    ///   created unless the URL sets its own `mode`.
    /// - `sqlite::memory:`: a database private to the returned repository
    ///   (and its clones), gone when the last clone is dropped. Its pool
    ///   holds exactly one connection, so statements run one at a time.
    ///
    /// Migrations are idempotent: connecting again to a migrated database
    /// applies nothing. On MySQL concurrent connects (operator and server
    /// starting together) serialize on a database lock.
    ///
    /// # Errors
    ///
    /// [`SqlError::UnsupportedUrl`] for another scheme, [`SqlError::Connect`]
    /// when no connection opens within [`ACQUIRE_TIMEOUT`],
    /// [`SqlError::Migrate`] when the schema cannot be brought up to date.
    ///
    /// # Panics
    ///
    /// If another part of the process installed sqlx `Any` drivers other
    /// than the default set (`sqlx::any::install_default_drivers` panics).
    pub async fn connect(url: &str) -> Result<SqlRepo> {
        let url = DatabaseUrl::parse(url)?;
        sqlx::any::install_default_drivers();
        let connect_failed = |source| SqlError::Connect {
            url: url.redacted.clone(),
            source,
        };

        // One connection first, outside any pool: a pool retries refused
        // connections until its timeout and then reports only that it timed
        // out, while this reports why (refused, access denied, no such
        // database, unopenable file).
        let probe = tokio::time::timeout(ACQUIRE_TIMEOUT, AnyConnection::connect(&url.connect))
            .await
            .unwrap_or_else(|_elapsed| Err(timed_out()))
            .map_err(connect_failed)?;
        let _ = probe.close().await;

        // A named in-memory database lives as long as one connection to it:
        // keep exactly one, forever.
        let options = if url.in_memory {
            AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            AnyPoolOptions::new()
        };
        let pool = options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&url.connect)
            .await
            .map_err(connect_failed)?;

        if url.dialect == Dialect::Sqlite && !url.in_memory {
            use_write_ahead_log(&pool).await;
        }

        let migrator = match url.dialect {
            Dialect::MySql => &MYSQL_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(|source| SqlError::Migrate {
            dialect: url.dialect.as_str(),
            source,
        })?;
        tracing::info!(database = %url.redacted, "sql schema up to date");

        Ok(SqlRepo {
            pool,
            dialect: url.dialect,
            clock: Arc::new(SystemClock),
        })
    }

    /// Replaces the clock that stamps soft deletes and ledger updates.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Inserts `row`, or updates the customer with its id.
    ///
    /// An update keeps the stored `created_at` and clears `deleted_at` (a
    /// re-created Customer revives its row); `row.deleted_at` is ignored
    /// either way. All other fields, `updated_at` included, are written as
    /// given.
    ///
    /// Assumes one writer per customer (the operator's leader). Two
    /// concurrent first inserts of one id still end as one row; a
    /// concurrent change of the key hash may fail with [`SqlError::Query`]
    /// and succeeds when retried.
    ///
    /// # Errors
    ///
    /// [`SqlError::ApiKeyHashTaken`] when another customer, live or
    /// soft-deleted, has this API-key hash; [`SqlError::OutOfRange`] for a
    /// `tool_calls_per_month` above `i64::MAX`.
    pub async fn upsert_customer(&self, row: &CustomerRecord) -> Result<()> {
        let limits = Limits {
            requests_per_minute: row.requests_per_minute.map(i64::from),
            tool_calls_per_month: row
                .tool_calls_per_month
                .map(|value| storable("tool_calls_per_month", value))
                .transpose()?,
        };

        if let Some((holder, holder_deleted)) = self.key_hash_holder(&row.api_key_hash, &row.id).await? {
            return Err(SqlError::ApiKeyHashTaken {
                customer: row.id.clone(),
                holder,
                holder_deleted,
            });
        }

        if self.update_customer(row, &limits).await? {
            return Ok(());
        }

        let inserted = sqlx::query(
            "INSERT INTO customers (id, plan, active, email, api_key_hash, requests_per_minute, \
             tool_calls_per_month, created_at, updated_at, deleted_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(row.id.as_str())
        .bind(row.plan.as_str())
        .bind(i64::from(row.active))
        .bind(row.email.as_str())
        .bind(row.api_key_hash.as_hex())
        .bind(limits.requests_per_minute)
        .bind(limits.tool_calls_per_month)
        .bind(row.created_at.as_microsecond())
        .bind(row.updated_at.as_microsecond())
        .execute(&self.pool)
        .await;

        match inserted {
            Ok(_) => Ok(()),
            // Another upsert inserted this id between our update and insert:
            // ours becomes the update it would have been.
            Err(error) if is_unique_violation(&error) && self.update_customer(row, &limits).await? => Ok(()),
            Err(source) => Err(query_failed("inserting customer")(source)),
        }
    }

    /// The customer with this id, soft-deleted or not.
    pub async fn customer(&self, id: &CustomerId) -> Result<Option<CustomerRecord>> {
        let row = sqlx::query(
            "SELECT id, plan, active, email, api_key_hash, requests_per_minute, tool_calls_per_month, \
             created_at, updated_at, deleted_at FROM customers WHERE id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_failed("reading customer"))?;

        row.as_ref().map(customer_from_row).transpose()
    }

    /// The live customer whose API key has this hash.
    ///
    /// Soft-deleted customers are not returned; suspended ones
    /// (`active == false`) are, so the caller can tell "suspended" from
    /// "unknown key".
    pub async fn customer_by_key_hash(&self, hash: &ApiKeyHash) -> Result<Option<CustomerRecord>> {
        let row = sqlx::query(
            "SELECT id, plan, active, email, api_key_hash, requests_per_minute, tool_calls_per_month, \
             created_at, updated_at, deleted_at FROM customers \
             WHERE api_key_hash = ? AND deleted_at IS NULL",
        )
        .bind(hash.as_hex())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_failed("reading customer by api key hash"))?;

        row.as_ref().map(customer_from_row).transpose()
    }

    /// Marks the customer deleted now, keeping its row (and its usage) for billing.
    ///
    /// Returns true when a live customer was deleted, false when the id is
    /// unknown or already deleted (the first deletion time is kept).
    pub async fn soft_delete_customer(&self, id: &CustomerId) -> Result<bool> {
        let now = self.clock.now().as_microsecond();
        let result = sqlx::query(
            "UPDATE customers SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(now)
        .bind(id.as_str())
        .execute(&self.pool)
        .await
        .map_err(query_failed("soft-deleting customer"))?;

        Ok(result.rows_affected() > 0)
    }

    /// Adds `requests` and `tool_calls` to the customer's ledger row for
    /// `period` (`yyyy-mm`), creating the row at zero first if needed.
    ///
    /// One atomic statement: concurrent calls from any number of server
    /// replicas all count, none is lost. The row's `updated_at` becomes the
    /// later of its current value and now. The customer need not exist in
    /// `customers` (usage is recorded even before the operator's row lands).
    ///
    /// # Errors
    ///
    /// [`SqlError::InvalidPeriod`] for a period not `yyyy-mm`;
    /// [`SqlError::OutOfRange`] for a delta above `i64::MAX`;
    /// [`SqlError::Query`] when a total would exceed `i64::MAX` (the row is
    /// left unchanged).
    pub async fn add_usage(
        &self,
        id: &CustomerId,
        period: &str,
        requests: u64,
        tool_calls: u64,
    ) -> Result<()> {
        check_period(period)?;
        let requests = storable("requests", requests)?;
        let tool_calls = storable("tool_calls", tool_calls)?;
        let now = self.clock.now().as_microsecond();

        // The same eight-parameter shape in both dialects: insert values,
        // then the deltas and time of the update arm.
        let statement = match self.dialect {
            Dialect::MySql => {
                "INSERT INTO usage_ledger (customer_id, period, requests, tool_calls, updated_at) \
                 VALUES (?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE requests = requests + ?, tool_calls = tool_calls + ?, \
                 updated_at = GREATEST(updated_at, ?)"
            }
            Dialect::Sqlite => {
                "INSERT INTO usage_ledger (customer_id, period, requests, tool_calls, updated_at) \
                 VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (customer_id, period) DO UPDATE SET requests = requests + ?, \
                 tool_calls = tool_calls + ?, updated_at = max(updated_at, ?)"
            }
        };
        sqlx::query(statement)
            .bind(id.as_str())
            .bind(period)
            .bind(requests)
            .bind(tool_calls)
            .bind(now)
            .bind(requests)
            .bind(tool_calls)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(query_failed("adding usage"))?;

        Ok(())
    }

    /// The customer's ledger row for `period` (`yyyy-mm`), if anything was added to it.
    pub async fn usage(&self, id: &CustomerId, period: &str) -> Result<Option<UsageRecord>> {
        check_period(period)?;
        let row = sqlx::query(
            "SELECT customer_id, period, requests, tool_calls, updated_at FROM usage_ledger \
             WHERE customer_id = ? AND period = ?",
        )
        .bind(id.as_str())
        .bind(period)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_failed("reading usage"))?;

        row.as_ref().map(usage_from_row).transpose()
    }

    /// Checks that the database answers a trivial statement (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(query_failed("pinging database"))?;
        Ok(())
    }

    /// Closes the pool: waits for statements in flight, then closes every
    /// connection. Later calls on any clone fail with [`SqlError::Query`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Sets everything but `id`, `created_at` and `deleted_at` (cleared);
    /// returns whether the customer existed.
    async fn update_customer(&self, row: &CustomerRecord, limits: &Limits) -> Result<bool> {
        // Both drivers report rows matched, not rows changed (sqlx sets
        // CLIENT_FOUND_ROWS on MySQL), so an unchanged row still counts.
        let result = sqlx::query(
            "UPDATE customers SET plan = ?, active = ?, email = ?, api_key_hash = ?, \
             requests_per_minute = ?, tool_calls_per_month = ?, updated_at = ?, deleted_at = NULL \
             WHERE id = ?",
        )
        .bind(row.plan.as_str())
        .bind(i64::from(row.active))
        .bind(row.email.as_str())
        .bind(row.api_key_hash.as_hex())
        .bind(limits.requests_per_minute)
        .bind(limits.tool_calls_per_month)
        .bind(row.updated_at.as_microsecond())
        .bind(row.id.as_str())
        .execute(&self.pool)
        .await
        .map_err(query_failed("updating customer"))?;

        Ok(result.rows_affected() > 0)
    }

    /// The other customer (and whether it is soft-deleted) whose key hash is `hash`.
    async fn key_hash_holder(
        &self,
        hash: &ApiKeyHash,
        id: &CustomerId,
    ) -> Result<Option<(CustomerId, bool)>> {
        let row = sqlx::query("SELECT id, deleted_at FROM customers WHERE api_key_hash = ? AND id <> ?")
            .bind(hash.as_hex())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_failed("checking api key hash"))?;
        let Some(row) = row else {
            return Ok(None);
        };

        let reader = RowReader::new(&row, "customers", "id")?;
        let holder = reader.customer_id()?;
        let deleted = reader.optional_timestamp("deleted_at")?.is_some();
        Ok(Some((holder, deleted)))
    }
}

/// The limit overrides of a customer row, as stored.
struct Limits {
    requests_per_minute: Option<i64>,
    tool_calls_per_month: Option<i64>,
}

fn customer_from_row(row: &AnyRow) -> Result<CustomerRecord> {
    let reader = RowReader::new(row, "customers", "id")?;
    Ok(CustomerRecord {
        id: reader.customer_id()?,
        plan: reader.plan("plan")?,
        active: reader.boolean("active")?,
        email: reader.get("email")?,
        api_key_hash: ApiKeyHash::from_hex(reader.get::<String>("api_key_hash")?),
        requests_per_minute: reader.optional_number("requests_per_minute")?,
        tool_calls_per_month: reader.optional_number("tool_calls_per_month")?,
        created_at: reader.timestamp("created_at")?,
        updated_at: reader.timestamp("updated_at")?,
        deleted_at: reader.optional_timestamp("deleted_at")?,
    })
}

fn usage_from_row(row: &AnyRow) -> Result<UsageRecord> {
    let reader = RowReader::new(row, "usage_ledger", "customer_id")?;
    Ok(UsageRecord {
        customer: reader.customer_id()?,
        period: reader.get("period")?,
        requests: reader.number("requests")?,
        tool_calls: reader.number("tool_calls")?,
        updated_at: reader.timestamp("updated_at")?,
    })
}

/// Checks that `period` reads `yyyy-mm` with a month from 01 to 12.
fn check_period(period: &str) -> Result<()> {
    let valid = match period.as_bytes() {
        [y1, y2, y3, y4, b'-', m1, m2] => {
            [y1, y2, y3, y4, m1, m2].iter().all(|b| b.is_ascii_digit())
                && matches!((m1, m2), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'))
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(SqlError::InvalidPeriod(period.to_owned()))
    }
}

/// `value` as the signed 64-bit integer the columns hold.
fn storable(field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| SqlError::OutOfRange { field, value })
}

fn query_failed(step: &'static str) -> impl FnOnce(sqlx::Error) -> SqlError {
    move |source| SqlError::Query { step, source }
}

/// The error of a connection that did not open within [`ACQUIRE_TIMEOUT`].
fn timed_out() -> sqlx::Error {
    let message = format!("no connection within {} s", ACQUIRE_TIMEOUT.as_secs());
    sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|error| error.is_unique_violation())
}

/// Switches a SQLite file to write-ahead logging, so readers do not wait
/// for writers. The mode is stored in the file; this is a no-op on later
/// connects. Best effort: the default rollback journal is correct, only
/// slower under concurrency, so a failure (another process holding the
/// file, a read-only file) is logged and the connect goes on.
async fn use_write_ahead_log(pool: &AnyPool) {
    if let Err(error) = sqlx::query("PRAGMA journal_mode = WAL").execute(pool).await {
        tracing::warn!(%error, "sqlite stays in rollback-journal mode");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_yyyy_mm_with_a_real_month() {
        for valid in ["2025-01", "2025-09", "2025-10", "2025-12", "1999-06"] {
            assert!(check_period(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "2025-00",
            "2025-13",
            "2025-1",
            "25-01",
            "2025/01",
            "2025-01-01",
            "",
            "２025-01",
        ] {
            assert!(
                matches!(check_period(invalid), Err(SqlError::InvalidPeriod(p)) if p == invalid),
                "{invalid}"
            );
        }
    }

    #[test]
    fn numbers_above_i64_max_are_refused() {
        assert_eq!(storable("requests", 7).ok(), Some(7));
        assert_eq!(storable("requests", i64::MAX as u64).ok(), Some(i64::MAX));
        let err = storable("requests", u64::MAX).expect_err("above i64::MAX");
        assert!(matches!(
            err,
            SqlError::OutOfRange {
                field: "requests",
                value: u64::MAX
            }
        ));
    }
}
