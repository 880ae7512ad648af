//! The tool registry MCP and REST share.
//!
//! A tool declares its name, schemas, annotations and platform in a
//! [`ToolSpec`], and does its work in [`Tool::call`]. [`invoke`] is the one
//! path every call takes, from either protocol: find the tool, check the
//! connection, take the quota, validate the arguments, run, audit.
//!
//! - [`whatsapp`] holds `whatsapp_send_message`, `whatsapp_send_template`,
//!   `whatsapp_send_media` and `whatsapp_mark_read`;
//! - [`instagram`] holds `instagram_publish_photo` and `instagram_send_message`;
//! - [`obsidian`] holds `obsidian_put_note`, `obsidian_append_note`,
//!   `obsidian_read_note` and `obsidian_search`;
//! - [`email`] holds `email_send`, `email_list_inbox` and `email_read_message`;
//! - [`telegram`] holds `telegram_send_message`, [`discord`]
//!   `discord_send_message`, [`x`] `x_post` and [`linkedin`] `linkedin_create_post`;
//! - [`connections`] holds `connections_status`, a tenant-wide tool, and
//!   [`crate::inbox`] `inbox_list`, the other;
//! - [`send`] holds what the send tools share: the live-or-outbox choice,
//!   the outbox record and [`send::BoundedText`].
//!
//! A tool that fails returns a [`ToolResult`] with `is_error` set (the model
//! reads it and may correct itself); only a call that cannot be routed at all
//! is an [`InvokeError`].

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use hermes_crds::Platform;
use hermes_state::store::{AuditEntry, AuditOutcome, ConnectionState};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::{debug, warn};

use crate::app::AppState;
use crate::auth::Tenant;
use crate::meter::MeterError;

pub mod connections;
pub mod discord;
pub mod email;
pub mod instagram;
pub mod linkedin;
pub mod obsidian;
pub mod send;
pub mod telegram;
pub mod whatsapp;
pub mod x;

#[cfg(test)]
pub(crate) mod fixture;

#[cfg(test)]
pub(crate) mod every_platform;

/// A JSON Schema object.
pub type JsonObject = Map<String, Value>;

/// Hints about what a tool does (the MCP `ToolAnnotations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Annotations {
    /// The tool only reads.
    pub read_only: bool,
    /// The tool may destroy or overwrite data.
    pub destructive: bool,
    /// Calling it twice with the same arguments has no further effect.
    pub idempotent: bool,
    /// The tool reaches outside Hermes (a platform).
    pub open_world: bool,
}

impl Annotations {
    /// A tool that sends or publishes on a platform: each call makes
    /// something new there, and nothing is overwritten.
    pub const SEND: Self = Self {
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: true,
    };
}

/// What a tool declares about itself.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    /// Unique name, `[A-Za-z0-9_.-]{1,128}`.
    pub name: &'static str,
    /// Human-readable title.
    pub title: &'static str,
    /// What the tool does, for the model.
    pub description: &'static str,
    /// The platform whose Ready connection the tool needs; `None` for tenant-wide tools.
    pub platform: Option<Platform>,
    /// JSON Schema of the arguments.
    pub input_schema: Arc<JsonObject>,
    /// JSON Schema of the structured result.
    pub output_schema: Option<Arc<JsonObject>>,
    /// Behaviour hints.
    pub annotations: Annotations,
}

/// Everything a running tool may use.
#[derive(Debug)]
pub struct ToolContext<'a> {
    /// Shared server state.
    pub app: &'a AppState,
    /// The caller.
    pub tenant: &'a Tenant,
    /// The request id, for logs and audit.
    pub request_id: &'a str,
    /// The caller's published connection states, as [`invoke`] read them.
    pub connections: &'a [ConnectionState],
}

/// A tool.
#[async_trait]
pub trait Tool: Send + Sync + std::fmt::Debug + 'static {
    /// The tool's declaration.
    fn spec(&self) -> &ToolSpec;

    /// Runs the tool. `args` is the caller's JSON as received: a tool
    /// validates it with [`parse_args`] before acting.
    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError>;
}

/// Why a tool call failed; every variant becomes a tool result with `isError`.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// An argument is missing or invalid; names the field.
    #[error("invalid argument `{field}`: {message}")]
    InvalidArgument {
        /// The JSON path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The tool's platform has no Ready connection for this customer.
    #[error("{0} is not connected for this customer")]
    NotConnected(Platform),
    /// The platform refused the call.
    #[error("{platform} error {code}: {message}")]
    Platform {
        /// The platform.
        platform: Platform,
        /// The platform's own error code (`http_<status>` when it gave none).
        code: String,
        /// The platform's reason, never containing a credential.
        message: String,
    },
    /// The platform rate-limited the call.
    #[error("{platform} rate limit reached; {}", retry_hint(*.retry_after_secs))]
    RateLimited {
        /// The platform.
        platform: Platform,
        /// Seconds until the platform accepts calls again, when it said.
        retry_after_secs: Option<u64>,
    },
    /// The platform did not answer in time.
    #[error("{0} did not answer in time")]
    Timeout(Platform),
    /// The platform could not be reached at all (DNS, connection refused, TLS).
    #[error("{0} could not be reached")]
    Unreachable(Platform),
    /// Hermes could not complete the call (state unavailable, credentials unreadable).
    #[error("internal error; the request id identifies it in the server's logs")]
    Internal,
}

fn retry_hint(retry_after_secs: Option<u64>) -> String {
    match retry_after_secs {
        Some(secs) => format!("retry after {secs} s"),
        None => "retry later".to_owned(),
    }
}

impl ToolError {
    /// A short machine-readable kind, used in results, audit reasons and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::InvalidArgument { .. } => "invalid_argument",
            ToolError::NotConnected(_) => "not_connected",
            ToolError::Platform { .. } => "platform_error",
            ToolError::RateLimited { .. } => "rate_limited",
            ToolError::Timeout(_) => "timeout",
            ToolError::Unreachable(_) => "unreachable",
            ToolError::Internal => "internal",
        }
    }

    /// How the audit log classifies the failure: refused before running, or failed while running.
    fn outcome(&self) -> AuditOutcome {
        match self {
            ToolError::InvalidArgument { .. } | ToolError::NotConnected(_) => AuditOutcome::Denied,
            ToolError::Platform { .. }
            | ToolError::RateLimited { .. }
            | ToolError::Timeout(_)
            | ToolError::Unreachable(_)
            | ToolError::Internal => AuditOutcome::Failed,
        }
    }

    /// The audit reason: the kind, plus the platform's code for platform errors.
    fn audit_reason(&self) -> String {
        match self {
            ToolError::Platform { code, .. } => format!("platform_error:{code}"),
            ToolError::InvalidArgument { .. }
            | ToolError::NotConnected(_)
            | ToolError::RateLimited { .. }
            | ToolError::Timeout(_)
            | ToolError::Unreachable(_)
            | ToolError::Internal => self.kind().to_owned(),
        }
    }

    /// The structured body of the failed tool result.
    fn to_structured(&self) -> Value {
        let mut error = json!({ "kind": self.kind(), "message": self.to_string() });
        match self {
            ToolError::InvalidArgument { field, .. } => {
                error["field"] = json!(field);
            }
            ToolError::Platform { platform, code, .. } => {
                error["platform"] = json!(platform);
                error["code"] = json!(code);
            }
            ToolError::RateLimited {
                platform,
                retry_after_secs,
            } => {
                error["platform"] = json!(platform);
                if let Some(secs) = retry_after_secs {
                    error["retryAfterSecs"] = json!(secs);
                }
            }
            ToolError::NotConnected(platform)
            | ToolError::Timeout(platform)
            | ToolError::Unreachable(platform) => {
                error["platform"] = json!(platform);
            }
            ToolError::Internal => {}
        }
        json!({ "error": error })
    }
}

/// What a tool call produced, for either protocol: MCP turns it into a
/// `CallToolResult`, REST into a JSON body.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// True when the tool failed; `structured` then holds `{"error": {kind, message, …}}`.
    pub is_error: bool,
    /// The result as JSON: the tool's output, or the error object.
    pub structured: Value,
    /// The result as text for the model: the JSON of a success, the error message of a failure.
    pub text: String,
}

impl ToolResult {
    fn success(structured: Value) -> Self {
        let text = structured.to_string();
        Self {
            is_error: false,
            structured,
            text,
        }
    }

    fn failure(error: &ToolError) -> Self {
        Self {
            is_error: true,
            structured: error.to_structured(),
            text: error.to_string(),
        }
    }
}

/// Why a call could not be routed to a tool at all. Each protocol maps
/// these once: MCP to JSON-RPC errors, REST to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No such tool, or a tool of a platform the caller has no Ready connection for.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// The caller's monthly tool-call quota is used up.
    #[error("monthly tool-call quota of {limit} exhausted for {period}")]
    QuotaExceeded {
        /// The quota.
        limit: u64,
        /// The billing period, `yyyy-mm`.
        period: String,
    },
    /// The state backend could not answer (connection states or the meter).
    #[error("state backend unavailable")]
    Unavailable,
}

/// Runs one tool call for `tenant`, the one path MCP and REST share.
///
/// In order: the tool must exist and, unless tenant-wide, have a Ready
/// connection ([`InvokeError::UnknownTool`] otherwise, so a tenant cannot
/// tell a tool it lacks from one that does not exist); one tool call is
/// taken from the monthly quota; the tool validates its arguments and runs.
/// A tool failure, invalid arguments included, is an `Ok` result with
/// `is_error` set.
///
/// Every call of a known tool is audit-logged for the tenant (outcome,
/// latency, request id, a short reason; never arguments or results) and
/// observed in the metrics. Names that match no tool are neither, so a
/// caller cannot fill the audit log or the metrics with names of its choice.
pub async fn invoke(
    app: &AppState,
    tenant: &Tenant,
    request_id: &str,
    name: &str,
    args: Value,
) -> Result<ToolResult, InvokeError> {
    let started = Instant::now();

    let Some(tool) = app.registry.get(name) else {
        debug!(tool = name, "call of an unknown tool");
        return Err(InvokeError::UnknownTool(name.to_owned()));
    };
    let spec = tool.spec();
    let call = CallRecord {
        app,
        tenant,
        request_id,
        spec,
        started,
    };

    let connections = match app.store.connection_states(&tenant.id).await {
        Ok(connections) => connections,
        Err(error) => {
            warn!(%error, "connection states unreadable");
            call.finish(AuditOutcome::Failed, Some("state_unavailable".into()))
                .await;
            return Err(InvokeError::Unavailable);
        }
    };
    if !is_offered(spec, &connections) {
        call.finish(AuditOutcome::Denied, Some("not_connected".into()))
            .await;
        return Err(InvokeError::UnknownTool(name.to_owned()));
    }

    if let Err(error) = crate::meter::take_tool_call(app, tenant).await {
        return Err(match error {
            MeterError::QuotaExceeded { limit, period } => {
                call.finish(AuditOutcome::Denied, Some("quota_exceeded".into()))
                    .await;
                InvokeError::QuotaExceeded { limit, period }
            }
            MeterError::Unavailable => {
                call.finish(AuditOutcome::Failed, Some("meter_unavailable".into()))
                    .await;
                InvokeError::Unavailable
            }
        });
    }

    let cx = ToolContext {
        app,
        tenant,
        request_id,
        connections: &connections,
    };
    let result = match tool.call(&cx, args).await {
        Ok(output) => {
            call.finish(AuditOutcome::Allowed, None).await;
            ToolResult::success(output)
        }
        Err(error) => {
            debug!(tool = spec.name, kind = error.kind(), "tool call failed");
            call.finish(error.outcome(), Some(error.audit_reason())).await;
            ToolResult::failure(&error)
        }
    };
    Ok(result)
}

/// True when the caller may call `spec`: a tenant-wide tool, or a tool of a
/// platform with a Ready connection.
fn is_offered(spec: &ToolSpec, connections: &[ConnectionState]) -> bool {
    match spec.platform {
        None => true,
        Some(platform) => connections.iter().any(|c| c.platform == platform && c.ready),
    }
}

/// One call of a known tool, finished exactly once with its audit entry and metric.
struct CallRecord<'a> {
    app: &'a AppState,
    tenant: &'a Tenant,
    request_id: &'a str,
    spec: &'a ToolSpec,
    started: Instant,
}

impl CallRecord<'_> {
    async fn finish(self, outcome: AuditOutcome, reason: Option<String>) {
        let elapsed = self.started.elapsed();
        self.app
            .metrics
            .observe_tool_call(self.spec.name, outcome_label(outcome), elapsed.as_secs_f64());

        let entry = AuditEntry {
            at: jiff::Timestamp::now(),
            tool: self.spec.name.to_owned(),
            platform: self.spec.platform,
            outcome,
            latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            request_id: self.request_id.to_owned(),
            reason,
        };
        crate::audit::record(self.app, &self.tenant.id, entry).await;
    }
}

/// The metric label of an outcome, the same words the audit log uses.
fn outcome_label(outcome: AuditOutcome) -> &'static str {
    match outcome {
        AuditOutcome::Allowed => "allowed",
        AuditOutcome::Denied => "denied",
        AuditOutcome::Failed => "failed",
    }
}

/// Every tool Hermes offers.
#[derive(Debug, Clone)]
pub struct Registry {
    tools: Arc<Vec<Arc<dyn Tool>>>,
}

impl Registry {
    /// A registry of the given tools.
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        Self {
            tools: Arc::new(tools),
        }
    }

    /// Every tool Hermes ships, in the order `tools/list` shows them.
    pub fn standard() -> Self {
        Self::new(vec![
            Arc::new(whatsapp::SendMessage::new()),
            Arc::new(whatsapp::SendTemplate::new()),
            Arc::new(whatsapp::SendMedia::new()),
            Arc::new(whatsapp::MarkRead::new()),
            Arc::new(instagram::PublishPhoto::new()),
            Arc::new(instagram::SendMessage::new()),
            Arc::new(obsidian::PutNote::new()),
            Arc::new(obsidian::AppendNote::new()),
            Arc::new(obsidian::ReadNote::new()),
            Arc::new(obsidian::SearchVault::new()),
            Arc::new(email::SendEmail::new()),
            Arc::new(email::ListInbox::new()),
            Arc::new(email::ReadMessage::new()),
            Arc::new(telegram::SendMessage::new()),
            Arc::new(discord::SendMessage::new()),
            Arc::new(x::CreatePost::new()),
            Arc::new(linkedin::CreatePost::new()),
            Arc::new(connections::ConnectionsStatus::new()),
            Arc::new(crate::inbox::InboxList::new()),
        ])
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    /// Every tool, in registration order.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools.iter()
    }

    /// The tools a customer with these connection states is offered: those
    /// of platforms with a Ready connection, and every tenant-wide tool.
    pub fn visible(&self, states: &[ConnectionState]) -> Vec<&ToolSpec> {
        self.tools
            .iter()
            .map(|tool| tool.spec())
            .filter(|spec| is_offered(spec, states))
            .collect()
    }
}

/// Deserializes a tool's arguments, naming the offending field on failure.
///
/// Arguments are a JSON object; `null` counts as an empty one. The field
/// named on failure is the JSON path of the value that failed (`to`,
/// `recipients[2]`); a missing or unknown field is named too, although
/// serde reports those at the object itself, and arguments that are not an
/// object are named `arguments`.
///
/// # Errors
///
/// [`ToolError::InvalidArgument`] with the field and serde's reason.
pub fn parse_args<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    let args = match args {
        Value::Object(_) => args,
        Value::Null => Value::Object(Map::new()),
        Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_) => {
            return Err(ToolError::InvalidArgument {
                field: "arguments".to_owned(),
                message: "expected a JSON object".to_owned(),
            });
        }
    };

    serde_path_to_error::deserialize::<_, T>(args).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let field = if path == "." {
            named_field(&message).unwrap_or("arguments").to_owned()
        } else {
            path
        };
        ToolError::InvalidArgument { field, message }
    })
}

/// The field a serde message names in backquotes, for `missing field `x``
/// and `unknown field `x`, expected …`.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// The JSON value of a tool's output.
///
/// # Errors
///
/// [`ToolError::Internal`] if the output does not serialize, which the
/// output types (plain structs of strings and numbers) rule out.
pub fn to_structured<T: Serialize>(output: &T) -> Result<Value, ToolError> {
    serde_json::to_value(output).map_err(|error| {
        warn!(%error, "tool output does not serialize");
        ToolError::Internal
    })
}

/// The JSON Schema of `T` as a tool's input or output schema: an object
/// schema (draft 2020-12) without the Rust type name as its title.
pub fn schema_of<T: JsonSchema>() -> Arc<JsonObject> {
    let mut schema = match schemars::schema_for!(T).to_value() {
        Value::Object(schema) => schema,
        // A `bool` schema: only for types that accept or reject everything.
        other => Map::from_iter([("allOf".to_owned(), Value::Array(vec![other]))]),
    };
    schema.remove("title");
    Arc::new(schema)
}

#[cfg(test)]
mod tests;
