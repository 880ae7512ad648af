//! `GET /api/deliveries/dead` and `POST /api/deliveries/dead/{id}/replay`:
//! the caller's dead letters, and putting one back in the delivery queue.

use axum::Json;
use axum::extract::{Path, State};
use hermes_state::store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::error::ApiError;
use crate::rest::{ApiQuery, Caller, ErrorBody, page_size, read_failed};

/// The query of `GET /api/deliveries/dead`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    /// Dead letters after this id (the `next` of the previous page). Default: from the oldest.
    pub after: Option<String>,
    /// At most this many, 1 to 500. Default: 100.
    pub limit: Option<usize>,
}

/// An inbound event whose delivery was given up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    /// The dead letter's id; `POST /api/deliveries/dead/{id}/replay` names it.
    pub id: String,
    /// The event's inbox id (the `Hermes-Delivery-Id` it was sent with).
    pub inbox_id: String,
    /// The event, as it would have been delivered.
    #[schema(value_type = Object)]
    pub event: Value,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the last attempt failed, e.g. `http 410`, `timed out`.
    pub error: String,
    /// When the delivery was given up (RFC 3339).
    pub failed_at: String,
}

/// One page of dead letters, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterPage {
    /// The dead letters.
    pub dead_letters: Vec<DeadLetterView>,
    /// The id of the last one, to pass as `after`; absent when the page is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The answer of a replay.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// Always true: the event is queued for delivery again, its attempts reset.
    pub replayed: bool,
}

/// Lists the caller's dead letters: inbound events that could not be
/// delivered to its endpoint.
#[utoipa::path(
    get,
    path = "/api/deliveries/dead",
    tag = "account",
    params(DeadLetterParams),
    responses(
        (status = 200, description = "One page of dead letters", body = DeadLetterPage),
        (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    ApiQuery(params): ApiQuery<DeadLetterParams>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let limit = page_size(params.limit)?;
    let dead = app
        .store
        .dead_letters(&tenant.id, params.after.as_deref(), limit)
        .await
        .map_err(|e| store_failed(e, "after"))?;

    let next = dead.last().map(|letter| letter.id.clone());
    let dead_letters = dead
        .into_iter()
        .map(|letter| DeadLetterView {
            id: letter.id,
            inbox_id: letter.inbox_id,
            event: letter.event,
            attempts: letter.attempts,
            error: letter.error,
            failed_at: letter.failed_at.to_string(),
        })
        .collect();
    Ok(Json(DeadLetterPage { dead_letters, next }))
}

/// Queues a dead letter for delivery again, with its attempts reset.
#[utoipa::path(
    post,
    path = "/api/deliveries/dead/{id}/replay",
    tag = "account",
    params(("id" = String, Path, description = "The dead letter's id")),
    responses(
        (status = 200, description = "The event is queued for delivery again", body = Replayed),
        (status = 400, description = "The id is not a dead-letter id", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 404, description = "The caller has no dead letter with this id", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn replay(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    let replayed = app
        .store
        .replay_dead_letter(&tenant.id, &id)
        .await
        .map_err(|e| store_failed(e, "id"))?;
    if replayed {
        Ok(Json(Replayed { replayed }))
    } else {
        Err(ApiError::NotFound)
    }
}

/// A store failure: the caller's argument (`param`) when the store says so, else unavailable.
fn store_failed(error: StoreError, param: &str) -> ApiError {
    read_failed(error, || {
        format!("`{param}` is not a dead-letter id (<ms>-<seq>)")
    })
}
