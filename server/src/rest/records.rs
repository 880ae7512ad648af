//! What the caller can read back: the audit log and the outbox of sandbox
//! sends (the inbox of inbound events is [`crate::inbox`]). Each reads only
//! the caller's keys.

use axum::Json;
use axum::extract::State;
use hermes_state::store::{AuditQuery, StoreError, StreamKind};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{ApiQuery, Caller, ErrorBody, page_size, read_failed};
use crate::app::AppState;
use crate::error::ApiError;

/// The audit window when `from` is not given: the 24 hours before `to`.
const DEFAULT_AUDIT_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// The query of `GET /api/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries at or after this instant (RFC 3339). Default: 24 hours before `to`.
    pub from: Option<String>,
    /// Entries before this instant (RFC 3339). Default: now.
    pub to: Option<String>,
    /// At most this many entries, 1 to 500. Default: 100.
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// One audited tool call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    /// When the call finished (RFC 3339).
    pub at: String,
    /// The tool.
    pub tool: String,
    /// The platform the tool acts on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `allowed`, `denied` or `failed`.
    pub outcome: String,
    /// How long the call took, in milliseconds.
    pub latency_ms: u64,
    /// The request id, as in the `x-request-id` answer header.
    pub request_id: String,
    /// A short machine-readable reason for a denial or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One page of the audit log, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageView {
    /// The entries.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The query of `GET /api/outbox`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Events after this id (the `next` of the previous page). Default: from the start.
    pub after: Option<String>,
    /// At most this many events, 1 to 500. Default: 100.
    pub limit: Option<usize>,
}

/// One event of a stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// The event's id; ids increase.
    pub id: String,
    /// The event.
    #[schema(value_type = Object)]
    pub event: Value,
}

/// One page of a stream, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventView>,
    /// The id of the last event, to pass as `after`; absent when the page is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Reads the caller's audit log.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "account",
    params(AuditParams),
    responses(
        (status = 200, description = "One page of entries", body = AuditPageView),
        (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn audit(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPageView>, ApiError> {
    let to = match params.to.as_deref() {
        Some(to) => parse_time("to", to)?,
        None => Timestamp::now(),
    };
    let from = match params.from.as_deref() {
        Some(from) => parse_time("from", from)?,
        None => to - DEFAULT_AUDIT_WINDOW,
    };
    if from >= to {
        return Err(ApiError::InvalidParameter("`from` must be before `to`".into()));
    }
    let query = AuditQuery {
        from,
        to,
        limit: page_size(params.limit)?,
        cursor: params.cursor,
    };

    let page = app
        .store
        .read_audit(&tenant.id, &query)
        .await
        .map_err(|e| store_failed(e, "cursor"))?;

    let entries = page
        .entries
        .into_iter()
        .map(|entry| AuditEntryView {
            at: entry.at.to_string(),
            tool: entry.tool,
            platform: entry.platform.map(|p| p.as_str().to_owned()),
            outcome: audit_outcome(entry.outcome).to_owned(),
            latency_ms: entry.latency_ms,
            request_id: entry.request_id,
            reason: entry.reason,
        })
        .collect();
    Ok(Json(AuditPageView {
        entries,
        next: page.next,
    }))
}

/// Reads what the caller's sandbox connections "sent".
#[utoipa::path(
    get,
    path = "/api/outbox",
    tag = "account",
    params(StreamParams),
    responses(
        (status = 200, description = "One page of sandbox messages", body = EventPage),
        (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn outbox(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Json<EventPage>, ApiError> {
    read_stream(&app, StreamKind::Outbox, &tenant.id, params).await
}

async fn read_stream(
    app: &AppState,
    kind: StreamKind,
    customer: &hermes_state::CustomerId,
    params: StreamParams,
) -> Result<Json<EventPage>, ApiError> {
    let limit = page_size(params.limit)?;
    let events = app
        .store
        .read_events(kind, customer, params.after.as_deref(), limit)
        .await
        .map_err(|e| store_failed(e, "after"))?;

    let next = events.last().map(|event| event.id.clone());
    let events = events
        .into_iter()
        .map(|event| EventView {
            id: event.id,
            event: event.event,
        })
        .collect();
    Ok(Json(EventPage { events, next }))
}

fn parse_time(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    value.parse().map_err(|_| {
        ApiError::InvalidParameter(format!(
            "`{name}` must be an RFC 3339 time such as 2026-12-03T10:00:00Z"
        ))
    })
}

/// A store failure: the caller's argument (`param`) when the store says so, else unavailable.
fn store_failed(error: StoreError, param: &str) -> ApiError {
    read_failed(error, || format!("`{param}` is not valid here"))
}

fn audit_outcome(outcome: hermes_state::store::AuditOutcome) -> &'static str {
    use hermes_state::store::AuditOutcome;
    match outcome {
        AuditOutcome::Allowed => "allowed",
        AuditOutcome::Denied => "denied",
        AuditOutcome::Failed => "failed",
    }
}
