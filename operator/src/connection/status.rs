//! The pure half of the PlatformConnection controller: whether the
//! Customer is usable, which connection holds a platform, whether to write,
//! and what the status should say.

use std::sync::Arc;

use hermes_crds::{ConditionStatus, Customer, PlatformConnection, PlatformConnectionStatus};
use hermes_state::tenancy::TenancyError;
use jiff::Timestamp;
use kube::ResourceExt;

use crate::conditions::{self, reason};

/// The outcome a reconcile publishes as the `Ready` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `True` when the connection's tools are offered.
    pub status: ConditionStatus,
    /// One of [`conditions::reason`].
    pub reason: &'static str,
    /// For humans; never a secret value.
    pub message: String,
}

impl Outcome {
    /// The connection is written and ready.
    pub fn ready(message: impl Into<String>) -> Self {
        Self {
            status: ConditionStatus::True,
            reason: reason::READY,
            message: message.into(),
        }
    }

    /// A `Ready=False` outcome.
    pub fn not_ready(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: ConditionStatus::False,
            reason,
            message: message.into(),
        }
    }
}

/// Why a connection's Customer cannot be used yet, or `None` when it can.
///
/// A Customer is usable when it exists, is not being deleted, and is
/// `Ready` or merely `Suspended` (suspension is enforced on its API key;
/// its connections stay stored so lifting it restores them at once).
pub fn customer_blocker(customer: Option<&Customer>, customer_ref: &str) -> Option<String> {
    let Some(customer) = customer else {
        return Some(format!(
            "Customer {customer_ref:?} does not exist in this namespace"
        ));
    };
    if customer.metadata.deletion_timestamp.is_some() {
        return Some(format!("Customer {customer_ref:?} is being deleted"));
    }
    let ready = customer
        .status
        .as_ref()
        .and_then(|status| conditions::find_ready(&status.conditions));
    match ready {
        Some(c) if c.status == ConditionStatus::True || c.reason == reason::SUSPENDED => None,
        Some(c) => Some(format!("Customer {customer_ref:?} is not Ready ({})", c.reason)),
        None => Some(format!("Customer {customer_ref:?} has not been reconciled yet")),
    }
}

/// The older connection that already holds this connection's customer and
/// platform (its namespace and name), or `None` when this one holds it.
///
/// Credentials are stored per customer and platform, so only one
/// connection can own the pair: the oldest by `creationTimestamp`, ties
/// broken by name.
pub fn platform_holder(connection: &PlatformConnection, all: &[Arc<PlatformConnection>]) -> Option<String> {
    let namespace = connection.namespace();
    let rank = |c: &PlatformConnection| (c.creation_timestamp().map(|t| t.0), c.name_any());
    let mine = rank(connection);
    let older = |other: &PlatformConnection| match (&rank(other), &mine) {
        ((Some(theirs), their_name), (Some(ours), our_name)) => (theirs, their_name) < (ours, our_name),
        ((Some(_), _), (None, _)) => true,
        ((None, _), (Some(_), _)) => false,
        ((None, their_name), (None, our_name)) => their_name < our_name,
    };

    all.iter()
        .filter(|other| other.namespace() == namespace && other.name_any() != connection.name_any())
        .filter(|other| {
            other.spec.customer_ref == connection.spec.customer_ref
                && other.spec.platform == connection.spec.platform
        })
        .filter(|other| older(other))
        .map(|other| other.name_any())
        .min()
}

/// The reason for a plan that failed: `CredentialsInvalid` for what a fix
/// to the Secret resolves, `InvalidSpec` for what a fix to the spec does.
pub fn plan_failure_reason(error: &TenancyError) -> &'static str {
    match error {
        TenancyError::SecretNotUtf8 { .. }
        | TenancyError::SecretRequired { .. }
        | TenancyError::MissingSecretFields { .. } => reason::CREDENTIALS_INVALID,
        TenancyError::PlatformBlockMissing { .. }
        | TenancyError::PlatformBlockMismatch { .. }
        | TenancyError::CustomerRefMismatch { .. }
        | TenancyError::NamespaceMismatch { .. }
        | TenancyError::InvalidCustomerId(_)
        | TenancyError::NameMissing { .. }
        | TenancyError::InvalidSetting { .. }
        | TenancyError::CredentialsMalformed { .. }
        | TenancyError::SettingsMalformed { .. }
        | TenancyError::SealFailed(_)
        | TenancyError::OpenFailed(_) => reason::INVALID_SPEC,
    }
}

/// Whether the connection must be (re)written.
///
/// Nothing is written when the status says `Ready` with this very
/// fingerprint and the store holds the credentials sealed under the
/// primary key. Any difference — new credentials or settings, a rotated
/// primary key (it is part of the fingerprint), a connection that was not
/// Ready, credentials lost from the store — means a write.
pub fn needs_write(
    current: Option<&PlatformConnectionStatus>,
    fingerprint: &str,
    stored_under_primary: bool,
) -> bool {
    let Some(current) = current else {
        return true;
    };
    let unchanged =
        current.fingerprint.as_deref() == Some(fingerprint) && conditions::is_ready(&current.conditions);
    !(unchanged && stored_under_primary)
}

/// `current` with `observedGeneration` and the `Ready` condition of
/// `outcome`; every other field is kept.
pub fn with_outcome(
    current: Option<&PlatformConnectionStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Timestamp,
) -> PlatformConnectionStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.conditions = conditions::upsert(
        &status.conditions,
        conditions::ready(
            outcome.status,
            outcome.reason,
            outcome.message.clone(),
            generation,
            now,
        ),
    );
    status
}

/// Whether the `Ready` condition's status or reason differs between two
/// statuses: the moments worth an Event.
pub fn ready_transitioned(
    current: Option<&PlatformConnectionStatus>,
    desired: &PlatformConnectionStatus,
) -> bool {
    let key = |status: Option<&PlatformConnectionStatus>| {
        status
            .and_then(|s| conditions::find_ready(&s.conditions))
            .map(|c| (c.status, c.reason.clone()))
    };
    key(current) != key(Some(desired))
}

#[cfg(test)]
mod tests {
    use hermes_crds::{CustomerSpec, CustomerStatus, Platform, PlatformConnectionSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn customer_with(condition: Option<(ConditionStatus, &'static str)>) -> Customer {
        let mut customer = Customer::new(
            "acme",
            CustomerSpec {
                display_name: "Acme".into(),
                email: "ops@acme.example".into(),
                plan: Default::default(),
                suspended: false,
                api_key_secret_ref: None,
                delivery: None,
                limits: None,
            },
        );
        customer.status = condition.map(|(status, reason)| CustomerStatus {
            conditions: vec![conditions::ready(
                status,
                reason,
                "",
                Some(1),
                Timestamp::UNIX_EPOCH,
            )],
            ..Default::default()
        });
        customer
    }

    fn connection(name: &str, platform: Platform, created_second: i64) -> Arc<PlatformConnection> {
        let mut connection = PlatformConnection::new(
            name,
            serde_json::from_value::<PlatformConnectionSpec>(serde_json::json!({
                "customerRef": "acme",
                "platform": platform,
                "sandbox": true,
            }))
            .expect("a minimal spec deserializes"),
        );
        connection.metadata.namespace = Some("team-a".into());
        connection.metadata.creation_timestamp = Some(Time(
            Timestamp::from_second(created_second).expect("a small second count is valid"),
        ));
        Arc::new(connection)
    }

    fn ready_status(fingerprint: &str) -> PlatformConnectionStatus {
        with_outcome(None, Some(1), &Outcome::ready(""), Timestamp::UNIX_EPOCH).with_fingerprint(fingerprint)
    }

    trait WithFingerprint {
        fn with_fingerprint(self, fingerprint: &str) -> Self;
    }

    impl WithFingerprint for PlatformConnectionStatus {
        fn with_fingerprint(mut self, fingerprint: &str) -> Self {
            self.fingerprint = Some(fingerprint.to_owned());
            self
        }
    }

    #[test]
    fn a_missing_unready_or_unreconciled_customer_blocks_and_a_suspended_one_does_not() {
        let ready = customer_with(Some((ConditionStatus::True, reason::READY)));
        let suspended = customer_with(Some((ConditionStatus::False, reason::SUSPENDED)));
        let duplicate = customer_with(Some((ConditionStatus::False, reason::DUPLICATE_NAME)));
        let fresh = customer_with(None);

        assert_eq!(customer_blocker(Some(&ready), "acme"), None);
        assert_eq!(customer_blocker(Some(&suspended), "acme"), None);
        assert!(customer_blocker(Some(&duplicate), "acme").is_some_and(|m| m.contains("DuplicateName")));
        assert!(customer_blocker(Some(&fresh), "acme").is_some());
        assert!(customer_blocker(None, "acme").is_some_and(|m| m.contains("does not exist")));
    }

    #[test]
    fn the_oldest_connection_of_a_customer_and_platform_holds_it() {
        let old = connection("mail", Platform::Email, 100);
        let young = connection("mail-2", Platform::Email, 200);
        let other_platform = connection("wa", Platform::Whatsapp, 50);
        let all = vec![old.clone(), young.clone(), other_platform.clone()];

        assert_eq!(platform_holder(&old, &all), None);
        assert_eq!(platform_holder(&young, &all), Some("mail".into()));
        assert_eq!(platform_holder(&other_platform, &all), None);
    }

    #[test]
    fn an_unchanged_ready_connection_with_current_ciphertext_is_not_rewritten() {
        let status = ready_status("k1:abc");

        assert!(!needs_write(Some(&status), "k1:abc", true));
    }

    #[test]
    fn new_credentials_a_rotated_key_lost_state_or_an_unready_status_mean_a_write() {
        let status = ready_status("k1:abc");
        let unready = with_outcome(
            Some(&status),
            Some(2),
            &Outcome::not_ready(reason::CUSTOMER_NOT_READY, ""),
            Timestamp::UNIX_EPOCH,
        );

        assert!(needs_write(None, "k1:abc", true), "never written");
        assert!(needs_write(Some(&status), "k1:def", true), "new credentials");
        assert!(needs_write(Some(&status), "k2:abc", true), "rotated primary key");
        assert!(
            needs_write(Some(&status), "k1:abc", false),
            "state lost or sealed by an old key"
        );
        assert!(needs_write(Some(&unready), "k1:abc", true), "not ready");
    }

    #[test]
    fn secret_problems_are_credentials_invalid_and_spec_problems_invalid_spec() {
        let missing = TenancyError::MissingSecretFields {
            platform: Platform::Whatsapp,
            fields: vec!["accessToken".into()],
        };
        let block = TenancyError::PlatformBlockMissing {
            platform: Platform::Whatsapp,
        };

        assert_eq!(plan_failure_reason(&missing), reason::CREDENTIALS_INVALID);
        assert_eq!(plan_failure_reason(&block), reason::INVALID_SPEC);
    }
}
