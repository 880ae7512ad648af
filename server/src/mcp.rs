//! The MCP endpoint: Streamable HTTP for both protocol eras, served stateless.
//!
//! [`service`] is an rmcp [`StreamableHttpService`] that S2's router mounts
//! at `/mcp` behind the authentication, rate-limit and body-limit
//! middleware. That middleware puts the caller's [`Tenant`] into the request
//! extensions; rmcp hands the request's [`http::request::Parts`] to the
//! handler, which is how [`HermesMcp`] knows whose tools to list and run.
//!
//! One endpoint serves the 2026-07-28 revision (no handshake, per-request
//! `_meta`, `server/discover`) and the legacy revisions 2025-11-25,
//! 2025-06-18 and 2025-03-26 (an `initialize` handshake). Nothing is kept
//! between requests: no session ids are issued, even to legacy clients, so
//! any replica answers any request and a restart loses nothing.
//!
//! Tool calls go through [`tools::invoke`], the path REST shares; this
//! module only translates. A tool failure is a result with `isError`; a
//! call that cannot be routed is a JSON-RPC error (see [`invoke_error`]).

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::request::Parts;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities,
    ServerConfig, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tracing::{error, warn};

use crate::app::AppState;
use crate::auth::Tenant;
use crate::tools::{self, InvokeError, ToolResult, ToolSpec};

/// The server name every client sees in `serverInfo`.
pub const SERVER_NAME: &str = "hermes";

/// The protocol revisions served, oldest first. 2024-11-05 is left out: it
/// predates Streamable HTTP, the only transport Hermes offers.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// The JSON-RPC error code of a call refused because the customer's monthly
/// tool-call quota is used up. It sits in the implementation-defined range
/// (-32000 to -32019), clear of the codes SDKs already give meaning to
/// (-32000 connection closed, -32001 request timeout, -32002 resource not found).
pub const QUOTA_EXHAUSTED: ErrorCode = ErrorCode(-32010);

/// The request header carrying the request id S2's middleware assigns.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What clients read about this server on `initialize` and `server/discover`.
const INSTRUCTIONS: &str = "Hermes sends and reads messages on the customer's connected platforms \
(WhatsApp, Telegram, Discord, email and others). Only the tools of platforms the customer has \
connected are listed; call `connections_status` to see every platform and why one is not ready. \
A failed call returns a result with isError and a message saying what to change.";

/// The MCP service S2 mounts at `/mcp`: `Router::new().nest_service("/mcp", mcp::service(app))`.
pub type McpService = StreamableHttpService<HermesMcp, NeverSessionManager>;

/// The stateless MCP service over `app`.
///
/// Configured from `app.settings`:
/// - `allowed_hosts`: the `Host` values accepted, others get 403 (DNS
///   rebinding). An empty list keeps rmcp's loopback-only default rather
///   than accepting every host;
/// - `allowed_origins`: the browser `Origin`s accepted. Validation is always
///   on: a request with any other `Origin` gets 403, and with an empty list
///   only requests without an `Origin` pass;
/// - `max_body_bytes`: larger bodies get 413.
///
/// Responses are JSON (`json_response`), falling back to SSE only if a
/// handler emitted a notification first, which Hermes tools do not.
pub fn service(app: AppState) -> McpService {
    let settings = Arc::clone(&app.settings);

    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_origins(settings.allowed_origins.iter().cloned())
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.max_body_bytes);
    if !settings.allowed_hosts.is_empty() {
        config = config.with_allowed_hosts(settings.allowed_hosts.iter().cloned());
    }

    StreamableHttpService::new(
        move || Ok(HermesMcp::new(app.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// A router serving only [`service`] at `/mcp`, with no authentication of
/// its own: for embedding behind a layer that inserts the [`Tenant`].
pub fn router(app: AppState) -> axum::Router {
    axum::Router::new().nest_service("/mcp", service(app))
}

/// The MCP handler: one per request, built by [`service`]'s factory.
#[derive(Clone, Debug)]
pub struct HermesMcp {
    app: AppState,
}

impl HermesMcp {
    /// A handler over the shared server state.
    pub fn new(app: AppState) -> Self {
        Self { app }
    }
}

impl ServerHandler for HermesMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")).with_title("Hermes"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_PROTOCOL_VERSIONS)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // One page holds every tool, so no cursor is ever handed out.
        if request.and_then(|params| params.cursor).is_some() {
            return Err(ErrorData::invalid_params("invalid cursor", None));
        }
        let caller = Caller::of(&context)?;

        let states = self
            .app
            .store
            .connection_states(&caller.tenant.id)
            .await
            .map_err(|error| {
                warn!(%error, "connection states unreadable");
                invoke_error(InvokeError::Unavailable)
            })?;
        let tools = self
            .app
            .registry
            .visible(&states)
            .into_iter()
            .map(to_mcp_tool)
            .collect();

        // The list depends on who asks, so it is private, and on connections
        // that may change at any time, so it is never fresh.
        Ok(ListToolsResult::with_all_items(tools)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = Caller::of(&context)?;
        let args = Value::Object(request.arguments.unwrap_or_default());

        tools::invoke(&self.app, &caller.tenant, &caller.request_id, &request.name, args)
            .await
            .map(|result| CallToolResponse::from(to_call_tool_result(result)))
            .map_err(invoke_error)
    }
}

/// The caller of one request, as S2's middleware identified it.
struct Caller {
    tenant: Tenant,
    request_id: String,
}

impl Caller {
    /// Reads the tenant and request id from the HTTP parts rmcp passed on.
    ///
    /// A request without a tenant never passed the authentication
    /// middleware: that is a broken deployment, not a client error.
    fn of(context: &RequestContext<RoleServer>) -> Result<Self, ErrorData> {
        let parts = context.extensions.get::<Parts>();
        let Some(tenant) = parts.and_then(|parts| parts.extensions.get::<Tenant>()) else {
            error!("MCP request reached the handler without an authenticated tenant");
            return Err(ErrorData::internal_error("request not authenticated", None));
        };

        let request_id = parts
            .and_then(|parts| parts.headers.get(REQUEST_ID_HEADER))
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_acceptable_request_id(id))
            .map_or_else(generate_request_id, str::to_owned);
        Ok(Self {
            tenant: tenant.clone(),
            request_id,
        })
    }
}

/// True for request ids worth recording: 1 to 128 visible ASCII characters.
fn is_acceptable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A request id for a request that arrived without one (only when the
/// handler runs without S2's middleware, as in some tests).
///
/// 128 bits from the standard library's randomly seeded hasher and a
/// process-wide counter: unique within a process, and unlikely to repeat
/// across replicas; it correlates logs, it guards nothing.
fn generate_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = RandomState::new();
    format!("{:016x}{:016x}", state.hash_one(count), state.hash_one(!count))
}

/// A registry tool as MCP lists it.
fn to_mcp_tool(spec: &ToolSpec) -> rmcp::model::Tool {
    let annotations = ToolAnnotations::with_title(spec.title)
        .read_only(spec.annotations.read_only)
        .destructive(spec.annotations.destructive)
        .idempotent(spec.annotations.idempotent)
        .open_world(spec.annotations.open_world);

    let mut tool = rmcp::model::Tool::new(spec.name, spec.description, Arc::clone(&spec.input_schema))
        .with_title(spec.title)
        .with_annotations(annotations);
    if let Some(output_schema) = &spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::clone(output_schema));
    }
    tool
}

/// A tool result as MCP returns it: the structured value, its text, and `isError`.
fn to_call_tool_result(result: ToolResult) -> CallToolResult {
    let content = vec![ContentBlock::text(result.text)];
    let mut call_result = if result.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    call_result.structured_content = Some(result.structured);
    call_result
}

/// The JSON-RPC error of a call that could not be routed.
///
/// - unknown tool (or one the caller has no connection for): -32602, as the
///   spec says for an unknown tool;
/// - quota exhausted: [`QUOTA_EXHAUSTED`] with `data: {limit, period}`;
/// - state unavailable: -32603 with a generic message (the cause is logged
///   where it happened).
pub fn invoke_error(error: InvokeError) -> ErrorData {
    match error {
        InvokeError::UnknownTool(name) => ErrorData::invalid_params(format!("unknown tool: {name}"), None),
        InvokeError::QuotaExceeded { limit, period } => ErrorData::new(
            QUOTA_EXHAUSTED,
            format!("monthly tool-call quota exhausted: {limit} calls used in {period}"),
            Some(json!({ "limit": limit, "period": period })),
        ),
        InvokeError::Unavailable => {
            ErrorData::internal_error("Hermes cannot reach its state right now; retry shortly", None)
        }
    }
}

#[cfg(test)]
mod tests;
