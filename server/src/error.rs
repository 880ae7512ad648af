//! The one place where a failed request becomes an HTTP answer.
//!
//! Every handler and middleware of `/api` and the ops routes returns
//! [`ApiError`]; [`ApiError::classify`] is the single exhaustive mapping from
//! a failure to its HTTP status, its machine-readable code and its JSON-RPC
//! error code. A new variant does not compile until it is given all three.
//!
//! The same errors answer on `/mcp` as JSON-RPC error objects (see
//! [`ErrorFlavor`]), because an MCP client reads the body of a 401 or a 429
//! as JSON-RPC.
//!
//! Internal failures answer with a generic message; the detail is logged once,
//! where it happened, inside the request span that carries the request id.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hermes_crds::Platform;
use serde_json::{Value, json};

/// A failed API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request carried no API key.
    #[error("missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`")]
    MissingApiKey,
    /// The `Authorization` or `x-api-key` header is not a usable API key.
    #[error("malformed API key header: {0}")]
    MalformedApiKey(&'static str),
    /// No customer has this API key.
    #[error("unknown API key")]
    UnknownApiKey,
    /// The customer is suspended.
    #[error("customer is suspended")]
    Suspended,
    /// The customer's per-minute rate limit is used up.
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    RateLimited {
        /// Whole seconds until a request would be allowed, rounded up.
        retry_after_secs: u64,
    },
    /// The customer's monthly tool-call quota is used up.
    #[error("monthly quota of {limit} tool calls is used up for {period}")]
    QuotaExceeded {
        /// The monthly quota.
        limit: u64,
        /// The billing period, `yyyy-mm`.
        period: String,
    },
    /// No tool has this name, or the customer's connections do not offer it.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// The path names no platform.
    #[error(
        "unknown platform `{0}`; expected one of email, whatsapp, linkedin, telegram, discord, instagram, x, obsidian"
    )]
    UnknownPlatform(String),
    /// The customer has no connection on this platform.
    #[error("{0} is not connected")]
    NotConnected(Platform),
    /// A connection on this platform is managed outside Hermes (GitOps, say).
    #[error("the {0} connection is managed outside the API; change it where it is declared")]
    ConnectionManagedElsewhere(Platform),
    /// The platform account is already connected by another customer.
    #[error("this {0} account is already connected by another customer")]
    AccountTaken(Platform),
    /// This deployment cannot change connections through the API.
    #[error(
        "this deployment cannot change connections through the API; declare a PlatformConnection instead"
    )]
    ManagementUnavailable,
    /// A query parameter or path segment is invalid; the message names it.
    #[error("{0}")]
    InvalidParameter(String),
    /// The body is not valid JSON.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON of the wrong shape, or fails validation; the message names the field.
    #[error("{0}")]
    InvalidBody(String),
    /// The body is not `application/json`.
    #[error("expected `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// The body is larger than the server accepts (`HERMES_MAX_BODY_BYTES`).
    #[error("request body is larger than this server accepts")]
    PayloadTooLarge,
    /// No route matches the path.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A state backend (Redis, SQL, the Kubernetes API) could not be reached.
    #[error("service temporarily unavailable; retry later")]
    Unavailable,
    /// An invariant broke; the detail is in the server's log under the request id.
    #[error("internal error; the request id identifies it in the server's logs")]
    Internal,
}

/// Which body an error answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFlavor {
    /// `{"error": {"code", "message", …}}`, for `/api` and everything else.
    Rest,
    /// A JSON-RPC 2.0 error object with a null id, for `/mcp`.
    JsonRpc,
}

impl ErrorFlavor {
    /// The flavor of the route a request path belongs to.
    pub fn for_path(path: &str) -> Self {
        if path == "/mcp" || path.starts_with("/mcp/") {
            ErrorFlavor::JsonRpc
        } else {
            ErrorFlavor::Rest
        }
    }
}

/// How an error is presented: status, stable code, JSON-RPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable snake_case code clients can match on.
    pub code: &'static str,
    /// The JSON-RPC error code used on `/mcp`.
    pub rpc_code: i64,
}

/// JSON-RPC codes, one per kind of refusal. Refusals use the
/// implementation-defined server range, clear of the codes SDKs already
/// give meaning to (-32000 to -32002) and of MCP's header errors (-32020 on);
/// the quota code is the one `mcp` uses for the same refusal.
mod rpc {
    pub const INVALID_REQUEST: i64 = -32600;
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL: i64 = -32603;
    pub const UNAUTHORIZED: i64 = -32011;
    pub const FORBIDDEN: i64 = -32013;
    pub const NOT_FOUND: i64 = -32014;
    pub const RATE_LIMITED: i64 = -32012;
    pub const QUOTA_EXHAUSTED: i64 = -32010;
    pub const UNAVAILABLE: i64 = -32015;
}

impl ApiError {
    /// The one mapping from an error to its status and codes.
    pub fn classify(&self) -> Classification {
        let (status, code, rpc_code) = match self {
            ApiError::MissingApiKey => (StatusCode::UNAUTHORIZED, "missing_api_key", rpc::UNAUTHORIZED),
            ApiError::MalformedApiKey(_) => {
                (StatusCode::UNAUTHORIZED, "malformed_api_key", rpc::UNAUTHORIZED)
            }
            ApiError::UnknownApiKey => (StatusCode::UNAUTHORIZED, "unknown_api_key", rpc::UNAUTHORIZED),
            ApiError::Suspended => (StatusCode::FORBIDDEN, "customer_suspended", rpc::FORBIDDEN),
            ApiError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", rpc::RATE_LIMITED)
            }
            ApiError::QuotaExceeded { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                rpc::QUOTA_EXHAUSTED,
            ),
            ApiError::UnknownTool(_) => (StatusCode::NOT_FOUND, "unknown_tool", rpc::INVALID_PARAMS),
            ApiError::UnknownPlatform(_) => (StatusCode::NOT_FOUND, "unknown_platform", rpc::NOT_FOUND),
            ApiError::NotConnected(_) => (StatusCode::NOT_FOUND, "not_connected", rpc::NOT_FOUND),
            ApiError::ConnectionManagedElsewhere(_) => (
                StatusCode::CONFLICT,
                "connection_managed_elsewhere",
                rpc::INVALID_REQUEST,
            ),
            ApiError::AccountTaken(_) => (StatusCode::CONFLICT, "account_taken", rpc::INVALID_REQUEST),
            ApiError::ManagementUnavailable => (
                StatusCode::NOT_IMPLEMENTED,
                "management_unavailable",
                rpc::INVALID_REQUEST,
            ),
            ApiError::InvalidParameter(_) => {
                (StatusCode::BAD_REQUEST, "invalid_parameter", rpc::INVALID_PARAMS)
            }
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json", rpc::PARSE_ERROR),
            ApiError::InvalidBody(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                rpc::INVALID_PARAMS,
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                rpc::INVALID_REQUEST,
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                rpc::INVALID_REQUEST,
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", rpc::NOT_FOUND),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                rpc::INVALID_REQUEST,
            ),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", rpc::UNAVAILABLE),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", rpc::INTERNAL),
        };
        Classification {
            status,
            code,
            rpc_code,
        }
    }

    /// Extra machine-readable fields of the error, if any.
    fn data(&self) -> Option<Value> {
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                Some(json!({ "retryAfterSeconds": retry_after_secs }))
            }
            ApiError::QuotaExceeded { limit, period } => Some(json!({ "limit": limit, "period": period })),
            _ => None,
        }
    }

    /// The `Retry-After` value, for errors that have one.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The answer, in the body format of `flavor`.
    pub fn into_response_as(self, flavor: ErrorFlavor) -> Response {
        let Classification {
            status,
            code,
            rpc_code,
        } = self.classify();
        let message = self.to_string();
        let data = self.data();

        let body = match flavor {
            ErrorFlavor::Rest => {
                let mut error = json!({ "code": code, "message": message });
                if let (Some(Value::Object(extra)), Some(error)) = (data, error.as_object_mut()) {
                    error.extend(extra);
                }
                json!({ "error": error })
            }
            ErrorFlavor::JsonRpc => {
                let mut data = data.unwrap_or_else(|| json!({}));
                if let Some(data) = data.as_object_mut() {
                    data.insert("code".into(), Value::from(code));
                }
                json!({
                    "jsonrpc": "2.0",
                    "id": null,
                    "error": { "code": rpc_code, "message": message, "data": data },
                })
            }
        };

        let mut headers = HeaderMap::new();
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        (status, headers, axum::Json(body)).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_as(ErrorFlavor::Rest)
    }
}

/// Whole seconds of a wait, rounded up and at least one, as `Retry-After` wants them.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    let seconds = if wait.subsec_nanos() > 0 { whole + 1 } else { whole };
    seconds.max(1)
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::JsonSyntaxError(e) => ApiError::MalformedJson(e.body_text()),
            JsonRejection::JsonDataError(e) => ApiError::InvalidBody(e.body_text()),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            JsonRejection::BytesRejection(_) => ApiError::MalformedJson("the body could not be read".into()),
            // `JsonRejection` is non-exhaustive upstream; a future kind is a bad body.
            other => ApiError::InvalidBody(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::InvalidParameter(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn paths_under_mcp_answer_in_json_rpc() {
        assert_eq!(ErrorFlavor::for_path("/mcp"), ErrorFlavor::JsonRpc);
        assert_eq!(ErrorFlavor::for_path("/mcp/x"), ErrorFlavor::JsonRpc);
        assert_eq!(ErrorFlavor::for_path("/mcpx"), ErrorFlavor::Rest);
        assert_eq!(ErrorFlavor::for_path("/api/tools"), ErrorFlavor::Rest);
    }

    #[test]
    fn internal_errors_say_nothing_internal() {
        let message = ApiError::Internal.to_string();
        assert!(message.contains("request id"));
        assert_eq!(
            ApiError::Internal.classify().status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
