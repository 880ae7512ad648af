//! Metering: plans, the per-minute rate limit and the monthly tool-call quota.
//!
//! Three counters meet here, each with its own job:
//!
//! - The **rate limit** ([`admit_request`]) runs on every authenticated
//!   request through [`Store::check_rate`](hermes_state::store::Store::check_rate),
//!   a GCRA shared by every replica, so adding replicas does not multiply a
//!   customer's allowance.
//! - The **quota** ([`take_tool_call`]) counts tool calls of the month in the
//!   store (`usage:{customer}:yyyy-mm`), also shared by every replica. It is
//!   the gate, not the bill: a call refused for quota still bumps it, because
//!   the store offers no decrement, so [`usage`](crate::rest) reports it capped
//!   at the quota.
//! - The **ledger** is what bills. Every admitted request and tool call is
//!   also added to an in-process delta that [`flush`] writes to SQL
//!   ([`SqlRepo::add_usage`](hermes_state::sql::SqlRepo::add_usage)) every
//!   [`FLUSH_INTERVAL`] and at shutdown. Losing Redis then loses no billable
//!   usage; a crashed process loses at most one interval of it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hermes_crds::Plan;
use hermes_state::CustomerId;
use hermes_state::store::{RateDecision, RateLimit};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::auth::Tenant;
use crate::error::{ApiError, retry_after_secs};

/// How often the in-process usage deltas are written to the SQL ledger.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// The usage counter of admitted requests.
pub const REQUESTS_COUNTER: &str = "requests";

/// The usage counter of tool calls (the quota's gate).
pub const TOOL_CALLS_COUNTER: &str = "tool_calls";

/// The limits a customer runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sustained authenticated requests per minute.
    pub requests_per_minute: u32,
    /// How many requests may arrive at once.
    pub burst: u32,
    /// Tool calls per calendar month (UTC).
    pub tool_calls_per_month: u64,
}

/// The limits of each plan, as data.
///
/// | plan | requests / minute | tool calls / month |
/// |---|---|---|
/// | free | 60 | 1 000 |
/// | starter | 300 | 25 000 |
/// | pro | 1 200 | 250 000 |
/// | enterprise | 6 000 | 5 000 000 |
pub const PLANS: [(Plan, u32, u64); 4] = [
    (Plan::Free, 60, 1_000),
    (Plan::Starter, 300, 25_000),
    (Plan::Pro, 1_200, 250_000),
    (Plan::Enterprise, 6_000, 5_000_000),
];

/// The burst a per-minute rate allows: a third of the minute's allowance may
/// arrive at once, and at least one request.
pub fn burst_for(requests_per_minute: u32) -> u32 {
    (requests_per_minute / 3).max(1)
}

impl Limits {
    /// The limits of a plan, without overrides.
    pub fn of_plan(plan: Plan) -> Self {
        let (_, requests_per_minute, tool_calls_per_month) =
            PLANS.into_iter().find(|(p, _, _)| *p == plan).unwrap_or(PLANS[0]);
        Self {
            requests_per_minute,
            burst: burst_for(requests_per_minute),
            tool_calls_per_month,
        }
    }

    /// The limits of a tenant: its plan's, with the customer's overrides applied.
    pub fn of(tenant: &Tenant) -> Self {
        let plan = Self::of_plan(tenant.plan);
        let requests_per_minute = tenant.requests_per_minute.unwrap_or(plan.requests_per_minute);
        Self {
            requests_per_minute,
            burst: burst_for(requests_per_minute),
            tool_calls_per_month: tenant.tool_calls_per_month.unwrap_or(plan.tool_calls_per_month),
        }
    }
}

/// The billing period of an instant: its UTC month, `yyyy-mm`.
pub fn period_of(at: Timestamp) -> String {
    at.to_zoned(TimeZone::UTC).strftime("%Y-%m").to_string()
}

/// The current billing period.
pub fn current_period() -> String {
    period_of(Timestamp::now())
}

/// Why a tool call may not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    /// The monthly quota is used up.
    #[error(
        "the monthly quota of {limit} tool calls is used up for {period}; it renews on the first day of next month (UTC)"
    )]
    QuotaExceeded {
        /// The monthly quota.
        limit: u64,
        /// The billing period, `yyyy-mm`.
        period: String,
    },
    /// The usage store could not be reached, so the quota cannot be checked.
    #[error("usage metering is temporarily unavailable")]
    Unavailable,
}

impl From<MeterError> for ApiError {
    fn from(e: MeterError) -> Self {
        match e {
            MeterError::QuotaExceeded { limit, period } => ApiError::QuotaExceeded { limit, period },
            MeterError::Unavailable => ApiError::Unavailable,
        }
    }
}

/// Usage not yet written to the ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Admitted requests.
    pub requests: u64,
    /// Admitted tool calls.
    pub tool_calls: u64,
}

/// The in-process usage deltas, per customer and period.
#[derive(Debug, Default)]
pub struct Meter {
    pending: Mutex<HashMap<(CustomerId, String), Delta>>,
}

impl Meter {
    /// An empty meter.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, customer: &CustomerId, period: &str, delta: Delta) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = pending.entry((customer.clone(), period.to_owned())).or_default();
        entry.requests += delta.requests;
        entry.tool_calls += delta.tool_calls;
    }

    fn take(&self) -> HashMap<(CustomerId, String), Delta> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *pending)
    }

    /// The usage not yet written to the ledger, for one customer and period.
    pub fn pending(&self, customer: &CustomerId, period: &str) -> Delta {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending
            .get(&(customer.clone(), period.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

/// Admits one authenticated request: takes it from the customer's rate limit
/// and counts it.
///
/// A store that cannot answer lets the request through (with a warning): the
/// rate limit protects the service, and refusing every request while Redis
/// blips would turn a degraded backend into an outage. `/readyz` takes such a
/// replica out of rotation meanwhile.
pub async fn admit_request(app: &AppState, tenant: &Tenant) -> Result<(), ApiError> {
    let limits = Limits::of(tenant);
    let limit = RateLimit {
        per_minute: limits.requests_per_minute,
        burst: limits.burst,
    };

    match app.store.check_rate(&tenant.id, limit).await {
        Ok(RateDecision::Allowed) => {}
        Ok(RateDecision::Limited { retry_after }) => {
            app.metrics.observe_rate_limited(tenant.plan.as_str());
            tracing::debug!(retry_after_ms = retry_after.as_millis() as u64, "rate limited");
            return Err(ApiError::RateLimited {
                retry_after_secs: retry_after_secs(retry_after),
            });
        }
        Err(e) => tracing::warn!(error = %e, "rate limit unavailable; admitting the request"),
    }

    let period = current_period();
    if let Err(e) = app
        .store
        .incr_usage(&tenant.id, &period, REQUESTS_COUNTER, 1)
        .await
    {
        tracing::warn!(error = %e, "request counter unavailable; the ledger still counts it");
    }
    app.meter.add(
        &tenant.id,
        &period,
        Delta {
            requests: 1,
            tool_calls: 0,
        },
    );
    Ok(())
}

/// Takes one tool call from the tenant's monthly quota.
///
/// Call it once per tool call, before the tool runs. Unlike the rate limit,
/// the quota fails closed: a call whose quota cannot be checked would also
/// find no credentials, which live in the same store.
pub async fn take_tool_call(app: &AppState, tenant: &Tenant) -> Result<(), MeterError> {
    let limit = Limits::of(tenant).tool_calls_per_month;
    let period = current_period();

    let used = match app
        .store
        .incr_usage(&tenant.id, &period, TOOL_CALLS_COUNTER, 1)
        .await
    {
        Ok(used) => used,
        Err(e) => {
            tracing::warn!(error = %e, "usage store unavailable; refusing the tool call");
            return Err(MeterError::Unavailable);
        }
    };

    if used > limit {
        app.metrics.observe_quota_exceeded(tenant.plan.as_str());
        return Err(MeterError::QuotaExceeded { limit, period });
    }

    app.meter.add(
        &tenant.id,
        &period,
        Delta {
            requests: 0,
            tool_calls: 1,
        },
    );
    Ok(())
}

/// Writes every pending usage delta to the SQL ledger; returns how many
/// customer-periods were written.
///
/// Deltas that fail to write are put back and retried on the next flush, so
/// a SQL outage delays billing without losing it.
pub async fn flush(app: &AppState) -> usize {
    let pending = app.meter.take();
    let mut written = 0;

    for ((customer, period), delta) in pending {
        match app
            .sql
            .add_usage(&customer, &period, delta.requests, delta.tool_calls)
            .await
        {
            Ok(()) => written += 1,
            Err(e) => {
                app.metrics.observe_usage_flush_failure();
                tracing::warn!(error = %e, customer = %customer, %period, "usage ledger write failed; will retry");
                app.meter.add(&customer, &period, delta);
            }
        }
    }
    written
}

/// Flushes usage every [`FLUSH_INTERVAL`] until `shutdown`, then once more.
pub fn spawn_flusher(app: AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    flush(&app).await;
                }
                () = shutdown.cancelled() => break,
            }
        }
        let written = flush(&app).await;
        tracing::info!(written, "usage flushed at shutdown");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(plan: Plan) -> Tenant {
        Tenant {
            id: CustomerId::new("acme").expect("acme is a valid id"),
            plan,
            requests_per_minute: None,
            tool_calls_per_month: None,
        }
    }

    #[test]
    fn every_plan_has_limits_that_grow_with_the_plan() {
        let limits: Vec<_> = [Plan::Free, Plan::Starter, Plan::Pro, Plan::Enterprise]
            .into_iter()
            .map(Limits::of_plan)
            .collect();
        for pair in limits.windows(2) {
            assert!(pair[0].requests_per_minute < pair[1].requests_per_minute);
            assert!(pair[0].tool_calls_per_month < pair[1].tool_calls_per_month);
        }
    }

    #[test]
    fn customer_overrides_replace_the_plan_limits() {
        let mut t = tenant(Plan::Free);
        t.requests_per_minute = Some(3);
        t.tool_calls_per_month = Some(7);

        let limits = Limits::of(&t);

        assert_eq!(limits.requests_per_minute, 3);
        assert_eq!(limits.burst, 1);
        assert_eq!(limits.tool_calls_per_month, 7);
    }

    #[test]
    fn a_tenant_without_overrides_runs_on_its_plan() {
        assert_eq!(Limits::of(&tenant(Plan::Pro)), Limits::of_plan(Plan::Pro));
    }

    #[test]
    fn the_period_is_the_utc_month() {
        let at: Timestamp = "2026-12-31T23:30:00-05:00".parse().expect("valid timestamp");
        assert_eq!(period_of(at), "2027-01");
    }

    #[test]
    fn pending_deltas_add_up_per_customer_and_period() {
        let meter = Meter::new();
        let acme = CustomerId::new("acme").expect("valid id");
        meter.add(
            &acme,
            "2026-12",
            Delta {
                requests: 1,
                tool_calls: 0,
            },
        );
        meter.add(
            &acme,
            "2026-12",
            Delta {
                requests: 2,
                tool_calls: 1,
            },
        );

        assert_eq!(
            meter.pending(&acme, "2026-12"),
            Delta {
                requests: 3,
                tool_calls: 1
            }
        );
        assert_eq!(meter.pending(&acme, "2026-11"), Delta::default());
    }

    #[test]
    fn the_quota_message_says_the_monthly_quota_is_used_up() {
        let e = MeterError::QuotaExceeded {
            limit: 10,
            period: "2026-12".into(),
        };
        assert!(
            e.to_string()
                .contains("monthly quota of 10 tool calls is used up")
        );
    }
}
