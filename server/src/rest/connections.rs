//! The caller's platform connections: read all eight, connect one, disconnect one.
//!
//! Reads come from the connection states the operator publishes. Changes go
//! through the deployment's [`TenantAdmin`](crate::app::TenantAdmin): in a
//! cluster they declare a Secret and a PlatformConnection and answer 202
//! (poll `GET /api/connections` until it is ready); in `dev` and
//! single-user mode they apply at once and answer 200.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hermes_crds::Platform;
use hermes_state::tenancy::{SecretData, secret_requirements};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ApiJson, Caller, ErrorBody};
use crate::app::{AdminOutcome, AppState, ConnectRequest, outcome_status};
use crate::error::ApiError;

/// Where to poll for the state of a connection change.
pub const POLL_PATH: &str = "/api/connections";

/// One platform, as the caller's connection on it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// The platform.
    pub platform: String,
    /// True when a connection on the platform is declared.
    pub connected: bool,
    /// True when its tools are offered.
    pub ready: bool,
    /// True for a sandbox connection (sends go to the outbox).
    pub sandbox: bool,
    /// The reason of the `Ready` condition, e.g. `Ready`, `CredentialsInvalid`; absent when not connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the connection is not ready; never holds a secret value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the state was last written (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Every platform and the caller's connection on it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionList {
    /// The caller's customer id.
    pub customer_id: String,
    /// All eight platforms, in a fixed order.
    pub connections: Vec<ConnectionView>,
}

/// Connects a platform: its settings block, secret fields and mode.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectBody {
    /// The platform's settings, as the PlatformConnection's platform block,
    /// e.g. `{"phoneNumberId": "…", "businessAccountId": "…"}` for WhatsApp.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Option<Value>,
    /// The platform's secret fields, e.g. `{"accessToken": "…"}`; each a string.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub secrets: BTreeMap<String, Value>,
    /// True to record sends in the outbox instead of calling the platform.
    #[serde(default)]
    pub sandbox: bool,
    /// Overrides the platform's API base URL for this connection.
    #[serde(default)]
    pub api_base: Option<String>,
}

/// The answer to a connect or disconnect.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeAccepted {
    /// The platform.
    pub platform: String,
    /// `applied` (done) or `accepted` (declared; poll `poll`).
    pub status: String,
    /// Where to read the connection's state.
    pub poll: String,
}

/// Lists all eight platforms and the caller's connection on each.
#[utoipa::path(
    get,
    path = "/api/connections",
    tag = "connections",
    responses(
        (status = 200, description = "Every platform", body = ConnectionList),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(tenant): Caller,
) -> Result<Json<ConnectionList>, ApiError> {
    let states = app.store.connection_states(&tenant.id).await.map_err(|e| {
        tracing::warn!(error = %e, "connection states unreadable");
        ApiError::Unavailable
    })?;

    let connections = Platform::ALL
        .into_iter()
        .map(|platform| match states.iter().find(|s| s.platform == platform) {
            Some(state) => ConnectionView {
                platform: platform.as_str().to_owned(),
                connected: true,
                ready: state.ready,
                sandbox: state.sandbox,
                reason: Some(state.reason.clone()),
                last_error: state.last_error.clone(),
                updated_at: Some(state.updated_at.to_string()),
            },
            None => ConnectionView {
                platform: platform.as_str().to_owned(),
                connected: false,
                ready: false,
                sandbox: false,
                reason: None,
                last_error: None,
                updated_at: None,
            },
        })
        .collect();

    Ok(Json(ConnectionList {
        customer_id: tenant.id.to_string(),
        connections,
    }))
}

/// Connects (or reconnects) a platform for the caller.
#[utoipa::path(
    post,
    path = "/api/connect/{platform}",
    tag = "connections",
    params(("platform" = String, Path, description = "email, whatsapp, linkedin, telegram, discord, instagram, x or obsidian")),
    request_body = ConnectBody,
    responses(
        (status = 200, description = "Connected", body = ChangeAccepted),
        (status = 202, description = "Declared; poll `/api/connections` (also in `Location`)", body = ChangeAccepted),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 404, description = "Unknown platform", body = ErrorBody),
        (status = 409, description = "The account is connected by another customer, or the connection is managed elsewhere", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A setting or secret field is missing or invalid; the message names it", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 501, description = "This deployment cannot change connections through the API", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn connect(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    Path(platform): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let platform = parse_platform(&platform)?;
    let body = connect_body(body)?;
    let secrets = secret_fields(platform, body.secrets)?;
    let request = ConnectRequest {
        platform,
        settings: body.settings.unwrap_or_else(|| Value::Object(Default::default())),
        sandbox: body.sandbox,
        api_base: body.api_base,
        secrets,
    };

    let outcome = app.admin.connect(&tenant, request).await?;
    Ok(change_response(platform, &outcome))
}

/// Disconnects a platform for the caller.
#[utoipa::path(
    delete,
    path = "/api/connections/{platform}",
    tag = "connections",
    params(("platform" = String, Path, description = "email, whatsapp, linkedin, telegram, discord, instagram, x or obsidian")),
    responses(
        (status = 200, description = "Disconnected", body = ChangeAccepted),
        (status = 202, description = "Deletion declared; poll `/api/connections`", body = ChangeAccepted),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 404, description = "Unknown platform, or not connected", body = ErrorBody),
        (status = 409, description = "The connection is managed elsewhere", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 501, description = "This deployment cannot change connections through the API", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn disconnect(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    Path(platform): Path<String>,
) -> Result<Response, ApiError> {
    let platform = parse_platform(&platform)?;
    let outcome = app.admin.disconnect(&tenant, platform).await?;
    Ok(change_response(platform, &outcome))
}

/// The connect body, with errors that name the field at fault and never
/// quote a value (serde's own messages quote the offending value, which
/// may be a secret).
fn connect_body(body: Value) -> Result<ConnectBody, ApiError> {
    serde_path_to_error::deserialize::<_, ConnectBody>(body).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.inner().to_string();
        let message = if inner.starts_with("missing field") || inner.starts_with("unknown field") {
            inner
        } else if path == "." {
            "the body must be a JSON object".to_owned()
        } else {
            format!("`{path}` has an invalid type or value")
        };
        ApiError::InvalidBody(message)
    })
}

fn parse_platform(name: &str) -> Result<Platform, ApiError> {
    name.parse()
        .map_err(|_| ApiError::UnknownPlatform(name.to_owned()))
}

/// The secret fields of a connect body, checked by name: each a string,
/// each one the platform reads. Errors name fields, never values.
fn secret_fields(platform: Platform, fields: BTreeMap<String, Value>) -> Result<SecretData, ApiError> {
    let requirements = secret_requirements(platform);
    let mut secrets = SecretData::new();
    for (name, value) in fields {
        if !requirements.is_known(&name) {
            let known: Vec<_> = requirements.known_fields().collect();
            return Err(ApiError::InvalidBody(format!(
                "secrets.{name} is not a {platform} secret field; {platform} reads {}",
                known.join(", ")
            )));
        }
        let Value::String(value) = value else {
            return Err(ApiError::InvalidBody(format!("secrets.{name} must be a string")));
        };
        secrets.insert(name, value);
    }
    Ok(secrets)
}

fn change_response(platform: Platform, outcome: &AdminOutcome) -> Response {
    let status = match outcome {
        AdminOutcome::Applied => "applied",
        AdminOutcome::Accepted => "accepted",
    };
    let body = ChangeAccepted {
        platform: platform.as_str().to_owned(),
        status: status.to_owned(),
        poll: POLL_PATH.to_owned(),
    };
    (
        outcome_status(outcome),
        [(header::LOCATION, POLL_PATH)],
        Json(body),
    )
        .into_response()
}
