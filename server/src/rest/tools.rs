//! `GET /api/tools` and `POST /api/tools/{name}`: the MCP tools as REST.
//!
//! A call goes through [`tools::invoke`], the path MCP takes too, so both
//! protocols meter, audit and fail alike. A tool that ran and failed answers
//! 200 with `isError: true` and the tool's error object, as MCP does; only a
//! call that could not be routed to a tool is an HTTP error.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{Caller, ErrorBody};
use crate::app::{self, AppState};
use crate::error::ApiError;
use crate::tools::{self, InvokeError, ToolSpec};

/// One tool, as `tools/list` describes it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolView {
    /// The tool's name, the `{name}` of `POST /api/tools/{name}`.
    pub name: String,
    /// A human-readable title.
    pub title: String,
    /// What the tool does.
    pub description: String,
    /// The platform the tool acts on; absent for tenant-wide tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// JSON Schema of the arguments (the request body of a call).
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of `structured` in a successful result.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    /// Behaviour hints.
    pub annotations: AnnotationsView,
}

/// Behaviour hints of a tool (the MCP `ToolAnnotations`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnnotationsView {
    /// The tool only reads.
    pub read_only_hint: bool,
    /// The tool may destroy or overwrite data.
    pub destructive_hint: bool,
    /// Repeating a call with the same arguments has no further effect.
    pub idempotent_hint: bool,
    /// The tool reaches outside Hermes.
    pub open_world_hint: bool,
}

impl From<&ToolSpec> for ToolView {
    fn from(spec: &ToolSpec) -> Self {
        Self {
            name: spec.name.to_owned(),
            title: spec.title.to_owned(),
            description: spec.description.to_owned(),
            platform: spec.platform.map(|p| p.as_str().to_owned()),
            input_schema: Value::Object(spec.input_schema.as_ref().clone()),
            output_schema: spec
                .output_schema
                .as_ref()
                .map(|s| Value::Object(s.as_ref().clone())),
            annotations: AnnotationsView {
                read_only_hint: spec.annotations.read_only,
                destructive_hint: spec.annotations.destructive,
                idempotent_hint: spec.annotations.idempotent,
                open_world_hint: spec.annotations.open_world,
            },
        }
    }
}

/// The tools the caller may call.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolList {
    /// The tools of the caller's Ready connections, and the tenant-wide ones.
    pub tools: Vec<ToolView>,
}

/// The result of a tool call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallResult {
    /// True when the tool ran and failed; `structured` then holds `{"error": {"kind", "message", …}}`.
    pub is_error: bool,
    /// The tool's output (validated by its `outputSchema`), or the error object.
    #[schema(value_type = Object)]
    pub structured: Value,
    /// The same result as text, as a model reads it.
    pub text: String,
}

/// Lists the tools the caller may call.
#[utoipa::path(
    get,
    path = "/api/tools",
    tag = "tools",
    responses(
        (status = 200, description = "The caller's tools", body = ToolList),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn list(State(app): State<AppState>, Caller(tenant): Caller) -> Result<Json<ToolList>, ApiError> {
    let states = app.store.connection_states(&tenant.id).await.map_err(|e| {
        tracing::warn!(error = %e, "connection states unreadable");
        ApiError::Unavailable
    })?;
    let tools = app
        .registry
        .visible(&states)
        .into_iter()
        .map(ToolView::from)
        .collect();
    Ok(Json(ToolList { tools }))
}

/// Calls a tool with the JSON object in the body as its arguments (an empty body is `{}`).
#[utoipa::path(
    post,
    path = "/api/tools/{name}",
    tag = "tools",
    params(("name" = String, Path, description = "The tool's name, e.g. `whatsapp_send_message`")),
    request_body(content = Object, description = "The tool's arguments, per its `inputSchema`", content_type = "application/json"),
    responses(
        (status = 200, description = "The tool ran; `isError` says whether it succeeded", body = ToolCallResult),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 404, description = "No such tool among the caller's tools", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "The body is not a JSON object", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded (`Retry-After`) or monthly quota used up", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn call(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<ToolCallResult>, ApiError> {
    let args = arguments(&headers, body)?;
    let request_id = app::request_id(&headers);

    let result = tools::invoke(&app, &tenant, &request_id, &name, args)
        .await
        .map_err(|e| match e {
            InvokeError::UnknownTool(name) => ApiError::UnknownTool(name),
            InvokeError::QuotaExceeded { limit, period } => ApiError::QuotaExceeded { limit, period },
            InvokeError::Unavailable => ApiError::Unavailable,
        })?;

    Ok(Json(ToolCallResult {
        is_error: result.is_error,
        structured: result.structured,
        text: result.text,
    }))
}

/// The arguments of a call: the body's JSON object, or `{}` for an empty body.
fn arguments(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Value, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::MalformedJson("the body could not be read".into())
        }
    })?;
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }

    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .is_some_and(|mime| mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }

    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(args)) => Ok(Value::Object(args)),
        Ok(_) => Err(ApiError::InvalidBody(
            "the arguments must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::MalformedJson(format!(
            "{} at line {}, column {}",
            syntax_category(&e),
            e.line(),
            e.column()
        ))),
    }
}

/// What kind of JSON fault, without quoting the body (it may hold message text).
fn syntax_category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "unreadable body",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "unexpected end of input",
    }
}
