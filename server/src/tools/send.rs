//! What the send tools share: the choice between a live connection and the
//! sandbox outbox, the outbox record itself, and the bounded text type most
//! of their arguments use.

use std::borrow::Cow;

use hermes_crds::Platform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ToolContext, ToolError};
use crate::platforms::sandbox::{self, OutboxMessage};
use crate::platforms::{Connection, load_live_connection};

/// The caller's `platform` connection a send goes through, or `None` when
/// it must be recorded in the outbox instead ([`load_live_connection`]).
///
/// # Errors
///
/// Those of [`load_live_connection`].
pub async fn live_connection(
    cx: &ToolContext<'_>,
    platform: Platform,
) -> Result<Option<Connection>, ToolError> {
    load_live_connection(cx.app, &cx.tenant.id, platform, cx.connections).await
}

/// Records what `tool` would have sent to `to` in the caller's outbox and
/// returns the outbox entry's id (`sandbox-…`), which the tool answers in
/// place of the platform's id.
///
/// # Errors
///
/// Those of [`sandbox::record`].
pub async fn record_in_outbox(
    cx: &ToolContext<'_>,
    tool: &'static str,
    platform: Platform,
    to: &str,
    fields: Map<String, Value>,
) -> Result<String, ToolError> {
    let message = OutboxMessage {
        tool,
        platform,
        to,
        fields,
    };
    sandbox::record(cx.app, &cx.tenant.id, message).await
}

/// Text of 1 to `MAX` characters, not only whitespace. `MAX` is a limit
/// the platform states (a message, a caption, a post).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BoundedText<const MAX: usize>(String);

impl<const MAX: usize> BoundedText<MAX> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> TryFrom<String> for BoundedText<MAX> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else if chars > MAX {
            Err(format!("is {chars} characters; at most {MAX} are accepted"))
        } else {
            Ok(Self(value))
        }
    }
}

impl<const MAX: usize> JsonSchema for BoundedText<MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("Text{MAX}").into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX })
    }
}
