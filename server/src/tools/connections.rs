//! `connections_status`: which platforms the customer has connected, and
//! why a connection is not ready.

use async_trait::async_trait;
use hermes_crds::Platform;
use hermes_state::store::ConnectionState;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};

/// The tool's name.
pub const NAME: &str = "connections_status";

/// The reason given for a platform without a connection.
pub const NOT_CONNECTED_REASON: &str = "NotConnected";

/// `connections_status` takes no arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// What `connections_status` answers: one entry per platform Hermes supports.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionsReport {
    /// Every platform, connected or not, in a fixed order.
    pub connections: Vec<ConnectionReport>,
}

/// The status of one platform for the customer.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionReport {
    /// The platform.
    pub platform: Platform,
    /// True when the customer has a connection to this platform, ready or not.
    pub connected: bool,
    /// True when the connection's tools can be called.
    pub ready: bool,
    /// True when messages are recorded in the outbox instead of sent.
    pub sandbox: bool,
    /// Why the connection is or is not ready, e.g. `CredentialsInvalid`.
    pub reason: String,
    /// The last error of a connection that is not ready.
    pub last_error: Option<String>,
}

/// The report of every platform given a customer's published states.
pub fn report(states: &[ConnectionState]) -> ConnectionsReport {
    let connections = Platform::ALL
        .into_iter()
        .map(
            |platform| match states.iter().find(|state| state.platform == platform) {
                Some(state) => ConnectionReport {
                    platform,
                    connected: true,
                    ready: state.ready,
                    sandbox: state.sandbox,
                    reason: state.reason.clone(),
                    last_error: state.last_error.clone(),
                },
                None => ConnectionReport {
                    platform,
                    connected: false,
                    ready: false,
                    sandbox: false,
                    reason: NOT_CONNECTED_REASON.to_owned(),
                    last_error: None,
                },
            },
        )
        .collect();
    ConnectionsReport { connections }
}

/// `connections_status`.
#[derive(Debug)]
pub struct ConnectionsStatus {
    spec: ToolSpec,
}

impl ConnectionsStatus {
    /// The tool, with its schemas generated from [`NoArgs`] and [`ConnectionsReport`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: NAME,
                title: "Connection status",
                description: "Lists every messaging platform Hermes supports with whether the customer \
                              has connected it, whether it is ready to use, whether it is a sandbox \
                              (messages go to an outbox instead of being sent), and why a connection \
                              is not ready.",
                platform: None,
                input_schema: schema_of::<NoArgs>(),
                output_schema: Some(schema_of::<ConnectionsReport>()),
                annotations: Annotations {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                    open_world: false,
                },
            },
        }
    }
}

impl Default for ConnectionsStatus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for ConnectionsStatus {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let NoArgs {} = parse_args(args)?;
        to_structured(&report(cx.connections))
    }
}
