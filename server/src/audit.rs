//! What every tool call leaves in its customer's audit log.
//!
//! An entry holds the time, tool, platform, outcome, latency, request id and
//! a short reason; never a message body or a credential (the
//! [`AuditEntry`] type has no field for either). Customers read their log on
//! `GET /api/audit`.

use hermes_state::CustomerId;
use hermes_state::store::AuditEntry;

use crate::app::AppState;

/// Appends `entry` to `customer`'s audit log.
///
/// Never fails the call it audits: a store that cannot take the entry is
/// logged as a warning and the entry is lost. The tool has already run by
/// then, and refusing its answer would not undo it.
pub async fn record(app: &AppState, customer: &CustomerId, entry: AuditEntry) {
    if let Err(e) = app.store.append_audit(customer, &entry).await {
        tracing::warn!(error = %e, tool = %entry.tool, "audit entry lost: state store refused it");
    }
}
