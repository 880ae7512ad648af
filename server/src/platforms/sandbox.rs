//! The outbox: where a sandbox connection's messages go instead of the platform.
//!
//! A send tool on a sandbox connection appends what it would have sent to
//! the customer's Outbox stream and answers with a message id made from the
//! stream id, so a newcomer sees the message (REST reads the outbox) without
//! any network call or platform account.

use hermes_crds::Platform;
use hermes_state::CustomerId;
use hermes_state::store::StreamKind;
use serde_json::{Map, Value, json};
use tracing::warn;

use crate::app::AppState;
use crate::tools::ToolError;

/// How many messages a customer's outbox keeps; older ones are trimmed.
pub const OUTBOX_MAX_LEN: usize = 1000;

/// The prefix of the message ids sandbox sends answer with.
pub const MESSAGE_ID_PREFIX: &str = "sandbox-";

/// What a send tool would have sent.
#[derive(Debug)]
pub struct OutboxMessage<'a> {
    /// The tool that sent it.
    pub tool: &'a str,
    /// The platform it would have gone to.
    pub platform: Platform,
    /// The recipient, as the tool's arguments named it.
    pub to: &'a str,
    /// The rest of what would have been sent (`message`, `replyTo`, …), camelCase.
    pub fields: Map<String, Value>,
}

/// Appends `message` to `customer`'s outbox and returns its message id,
/// `sandbox-<stream id>`.
///
/// The event is `{tool, platform, to, …fields, at}`, `at` being the time of
/// the append (RFC 3339).
///
/// # Errors
///
/// [`ToolError::Internal`] when the store refuses the append.
pub async fn record(
    app: &AppState,
    customer: &CustomerId,
    message: OutboxMessage<'_>,
) -> Result<String, ToolError> {
    let mut event = message.fields;
    event.insert("tool".into(), json!(message.tool));
    event.insert("platform".into(), json!(message.platform));
    event.insert("to".into(), json!(message.to));
    event.insert("at".into(), json!(jiff::Timestamp::now()));

    let id = app
        .store
        .append_event(
            StreamKind::Outbox,
            customer,
            &Value::Object(event),
            OUTBOX_MAX_LEN,
        )
        .await
        .map_err(|error| {
            warn!(%error, "outbox append failed");
            ToolError::Internal
        })?;
    Ok(format!("{MESSAGE_ID_PREFIX}{id}"))
}
