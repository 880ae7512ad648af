//! `GET /api/usage`: the caller's usage in the current billing period.
//!
//! The live counters come from the store (shared by every replica). When the
//! store cannot answer, the SQL ledger plus this process's unflushed usage
//! answers instead, marked `source: "ledger"`: it lags by up to one flush
//! interval of the other replicas, but it is never lost.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Caller, ErrorBody};
use crate::app::AppState;
use crate::error::ApiError;
use crate::meter::{self, Limits, REQUESTS_COUNTER, TOOL_CALLS_COUNTER};

/// The caller's usage and limits in the current period.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    /// The caller's customer id.
    pub customer_id: String,
    /// The plan: `free`, `starter`, `pro` or `enterprise`.
    pub plan: String,
    /// The billing period, `yyyy-mm` (UTC).
    pub period: String,
    /// Authenticated requests admitted in the period.
    pub requests: u64,
    /// Tool calls counted against the quota in the period (at most `quota.toolCallsPerMonth`).
    pub tool_calls: u64,
    /// The limits in force.
    pub quota: QuotaView,
    /// `live` (shared counters) or `ledger` (the durable ledger, when the live counters are unavailable).
    pub source: String,
}

/// The limits in force for the caller: the plan's, with any per-customer override.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaView {
    /// Tool calls allowed per calendar month (UTC).
    pub tool_calls_per_month: u64,
    /// Tool calls left this period.
    pub remaining_tool_calls: u64,
    /// Authenticated requests allowed per minute.
    pub requests_per_minute: u32,
}

/// The caller's usage in the current billing period.
#[utoipa::path(
    get,
    path = "/api/usage",
    tag = "account",
    responses(
        (status = 200, description = "Usage and limits", body = UsageReport),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "Neither the counters nor the ledger can answer", body = ErrorBody),
    )
)]
pub async fn get(State(app): State<AppState>, Caller(tenant): Caller) -> Result<Json<UsageReport>, ApiError> {
    let period = meter::current_period();
    let limits = Limits::of(&tenant);

    let (requests, tool_calls, source) = match app.store.usage(&tenant.id, &period).await {
        Ok(counters) => (
            counters.get(REQUESTS_COUNTER).copied().unwrap_or(0),
            counters.get(TOOL_CALLS_COUNTER).copied().unwrap_or(0),
            "live",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "usage counters unavailable; reading the ledger");
            let ledger = app.sql.usage(&tenant.id, &period).await.map_err(|e| {
                tracing::warn!(error = %e, "usage ledger unavailable");
                ApiError::Unavailable
            })?;
            let pending = app.meter.pending(&tenant.id, &period);
            let (requests, tool_calls) = ledger.map_or((0, 0), |row| (row.requests, row.tool_calls));
            (
                requests + pending.requests,
                tool_calls + pending.tool_calls,
                "ledger",
            )
        }
    };

    // Calls refused for quota still bump the counter (the store has no
    // decrement); what was used is at most the quota.
    let tool_calls = tool_calls.min(limits.tool_calls_per_month);

    Ok(Json(UsageReport {
        customer_id: tenant.id.to_string(),
        plan: tenant.plan.as_str().to_owned(),
        period,
        requests,
        tool_calls,
        quota: QuotaView {
            tool_calls_per_month: limits.tool_calls_per_month,
            remaining_tool_calls: limits.tool_calls_per_month - tool_calls,
            requests_per_minute: limits.requests_per_minute,
        },
        source: source.to_owned(),
    }))
}
