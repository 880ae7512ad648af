//! Building the conditions the controllers publish: `Ready` on both
//! resources, and `DeliveryReady` on a Customer with `spec.delivery`.
//!
//! A condition's `lastTransitionTime` moves only when its status flips, as
//! Kubernetes conventions ask; so an unchanged outcome yields an identical
//! condition list, and the controller can skip the status write.

use hermes_crds::{Condition, ConditionStatus};
use jiff::Timestamp;

/// The condition type both resources publish.
pub const READY: &str = "Ready";

/// The condition type saying whether a Customer's inbound delivery target
/// is published; present only while the Customer has `spec.delivery`.
pub const DELIVERY_READY: &str = "DeliveryReady";

/// The reasons of the `Ready` condition.
pub mod reason {
    /// Everything the resource asks for is written.
    pub const READY: &str = "Ready";
    /// A Customer of the same name exists in another namespace.
    pub const DUPLICATE_NAME: &str = "DuplicateName";
    /// The Customer's name is not a valid customer id.
    pub const INVALID_NAME: &str = "InvalidName";
    /// The Secret named by `apiKeySecretRef` is missing, lacks the key or holds no usable key.
    pub const API_KEY_SECRET_INVALID: &str = "ApiKeySecretInvalid";
    /// The API key is already the key of another customer.
    pub const API_KEY_CONFLICT: &str = "ApiKeyConflict";
    /// Redis or the SQL database did not accept the write; it is retried.
    pub const STATE_UNAVAILABLE: &str = "StateUnavailable";
    /// The Customer is suspended: its key is indexed as inactive.
    pub const SUSPENDED: &str = "Suspended";
    /// The connection's Customer is missing or not Ready yet.
    pub const CUSTOMER_NOT_READY: &str = "CustomerNotReady";
    /// The credentials Secret is missing or lacks required fields.
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    /// The spec is inconsistent in a way the CRD rules did not catch.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// An older PlatformConnection of the same customer already connects this platform.
    pub const DUPLICATE_PLATFORM: &str = "DuplicatePlatform";
    /// An inbound route the connection needs belongs to another customer.
    pub const ROUTE_CONFLICT: &str = "RouteConflict";
    /// The Customer's delivery target is written with its current signing secret.
    pub const TARGET_PUBLISHED: &str = "TargetPublished";
}

/// A `Ready` condition for `generation`, stamped `now`.
pub fn ready(
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    of_type(READY, status, reason, message, generation, now)
}

/// A condition of type `type_` for `generation`, stamped `now`.
pub fn of_type(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.into(),
        last_transition_time: now.to_string(),
        observed_generation: generation,
    }
}

/// `existing` with `condition` put in place of the one of its type.
///
/// When the status did not change, the earlier `lastTransitionTime` is kept.
pub fn upsert(existing: &[Condition], mut condition: Condition) -> Vec<Condition> {
    let previous = existing.iter().find(|c| c.type_ == condition.type_);
    if let Some(previous) = previous
        && previous.status == condition.status
    {
        condition.last_transition_time = previous.last_transition_time.clone();
    }

    let mut conditions: Vec<Condition> = existing
        .iter()
        .filter(|c| c.type_ != condition.type_)
        .cloned()
        .collect();
    conditions.push(condition);
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    conditions
}

/// `existing` without the condition of type `type_`.
pub fn remove(existing: &[Condition], type_: &str) -> Vec<Condition> {
    existing.iter().filter(|c| c.type_ != type_).cloned().collect()
}

/// The condition of type `type_` in a list, if there is one.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The `Ready` condition in a list, if there is one.
pub fn find_ready(conditions: &[Condition]) -> Option<&Condition> {
    find(conditions, READY)
}

/// Whether a list says `Ready=True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    find_ready(conditions).is_some_and(|c| c.status == ConditionStatus::True)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("small second counts are valid timestamps")
    }

    #[test]
    fn an_unchanged_status_keeps_its_transition_time() {
        let first = ready(ConditionStatus::True, reason::READY, "ok", Some(1), at(100));
        let existing = vec![first.clone()];

        let merged = upsert(
            &existing,
            ready(ConditionStatus::True, reason::READY, "ok", Some(1), at(200)),
        );

        assert_eq!(merged, existing);
    }

    #[test]
    fn a_flipped_status_takes_the_new_transition_time() {
        let existing = vec![ready(
            ConditionStatus::False,
            reason::CUSTOMER_NOT_READY,
            "",
            Some(1),
            at(100),
        )];

        let merged = upsert(
            &existing,
            ready(ConditionStatus::True, reason::READY, "", Some(1), at(200)),
        );

        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].last_transition_time, at(200).to_string());
        assert!(is_ready(&merged));
    }

    #[test]
    fn other_condition_types_are_kept() {
        let mut other = ready(ConditionStatus::True, "Whatever", "", None, at(1));
        other.type_ = "Degraded".into();

        let merged = upsert(
            std::slice::from_ref(&other),
            ready(ConditionStatus::True, reason::READY, "", None, at(2)),
        );

        assert_eq!(merged.len(), 2);
        assert!(merged.contains(&other));
    }
}
