//! The pure half of the Customer controller: who holds a customer id, which
//! platforms are connected, and what the status should say.

use std::sync::Arc;

use hermes_crds::{ConditionStatus, Customer, CustomerStatus, Platform, PlatformConnection};
use jiff::Timestamp;
use kube::ResourceExt;

use crate::conditions;

/// Whether a Customer may use its name as a customer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameClaim {
    /// No older Customer of the same name exists in another namespace.
    Holder,
    /// An older Customer in `namespace` holds the name.
    DuplicateOf {
        /// The holder's namespace.
        namespace: String,
    },
}

/// Decides which of the Customers named like `customer` holds the id: the
/// oldest by `creationTimestamp`, ties broken by namespace. A name is held
/// for as long as its holder exists, deleting or not, so a duplicate waits
/// until the holder's cleanup finished before it writes anything.
pub fn name_claim(customer: &Customer, all: &[Arc<Customer>]) -> NameClaim {
    let name = customer.name_any();
    let namespace = customer.namespace().unwrap_or_default();
    let rank = |c: &Customer| {
        (
            c.creation_timestamp().map(|t| t.0),
            c.namespace().unwrap_or_default(),
        )
    };
    // A missing timestamp (an object not yet persisted) sorts after every real one.
    let older = |a: &Customer, b: &Customer| match (rank(a), rank(b)) {
        ((Some(ta), na), (Some(tb), nb)) => (ta, na) < (tb, nb),
        ((Some(_), _), (None, _)) => true,
        ((None, _), (Some(_), _)) => false,
        ((None, na), (None, nb)) => na < nb,
    };

    all.iter()
        .filter(|other| other.name_any() == name && other.namespace().unwrap_or_default() != namespace)
        .filter(|other| older(other, customer))
        .min_by(|a, b| {
            if older(a, b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        })
        .map_or(NameClaim::Holder, |holder| NameClaim::DuplicateOf {
            namespace: holder.namespace().unwrap_or_default(),
        })
}

/// The platforms of the Ready PlatformConnections of one Customer, in
/// [`Platform::ALL`] order, each once.
pub fn connected_platforms(
    connections: &[Arc<PlatformConnection>],
    namespace: &str,
    customer: &str,
) -> Vec<Platform> {
    let mut platforms: Vec<Platform> = connections
        .iter()
        .filter(|c| c.namespace().as_deref() == Some(namespace) && c.spec.customer_ref == customer)
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| {
            c.status
                .as_ref()
                .is_some_and(|s| conditions::is_ready(&s.conditions))
        })
        .map(|c| c.spec.platform)
        .collect();
    platforms.sort();
    platforms.dedup();
    platforms
}

/// The outcome a reconcile publishes as a condition (`Ready` or `DeliveryReady`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `True` when the customer can call the API (for `DeliveryReady`: when
    /// its delivery target is published).
    pub status: ConditionStatus,
    /// One of [`conditions::reason`], or a reason a tenancy error names.
    pub reason: &'static str,
    /// For humans; never a secret value.
    pub message: String,
}

impl Outcome {
    /// A `False` outcome.
    pub fn not_ready(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: ConditionStatus::False,
            reason,
            message: message.into(),
        }
    }
}

/// `current` with `observedGeneration` and the `Ready` condition of
/// `outcome`; every other field is kept.
pub fn with_outcome(
    current: Option<&CustomerStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Timestamp,
) -> CustomerStatus {
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

/// `status` with the `DeliveryReady` condition of `outcome`, or without
/// one when `outcome` is `None` (the Customer asks for no delivery).
pub fn with_delivery(
    mut status: CustomerStatus,
    generation: Option<i64>,
    outcome: Option<&Outcome>,
    now: Timestamp,
) -> CustomerStatus {
    status.conditions = match outcome {
        Some(outcome) => conditions::upsert(
            &status.conditions,
            conditions::of_type(
                conditions::DELIVERY_READY,
                outcome.status,
                outcome.reason,
                outcome.message.clone(),
                generation,
                now,
            ),
        ),
        None => conditions::remove(&status.conditions, conditions::DELIVERY_READY),
    };
    status
}

/// Whether the `Ready` condition's status or reason differs between two
/// statuses: the moments worth an Event.
pub fn ready_transitioned(current: Option<&CustomerStatus>, desired: &CustomerStatus) -> bool {
    transitioned(current, desired, conditions::READY)
}

/// Whether the condition of type `type_` appeared, went, or changed its
/// status or reason between two statuses.
pub fn transitioned(current: Option<&CustomerStatus>, desired: &CustomerStatus, type_: &str) -> bool {
    let key = |status: Option<&CustomerStatus>| {
        status
            .and_then(|s| conditions::find(&s.conditions, type_))
            .map(|c| (c.status, c.reason.clone()))
    };
    key(current) != key(Some(desired))
}

#[cfg(test)]
mod tests {
    use hermes_crds::{CustomerSpec, PlatformConnectionSpec, PlatformConnectionStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::conditions::reason;

    fn customer(namespace: &str, created_second: i64) -> Arc<Customer> {
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
        customer.metadata.namespace = Some(namespace.into());
        customer.metadata.creation_timestamp = Some(Time(
            Timestamp::from_second(created_second).expect("a small second count is valid"),
        ));
        Arc::new(customer)
    }

    fn connection(name: &str, platform: Platform, ready: bool) -> Arc<PlatformConnection> {
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
        let condition = if ready {
            conditions::ready(
                ConditionStatus::True,
                reason::READY,
                "",
                Some(1),
                Timestamp::UNIX_EPOCH,
            )
        } else {
            conditions::ready(
                ConditionStatus::False,
                reason::CREDENTIALS_INVALID,
                "",
                Some(1),
                Timestamp::UNIX_EPOCH,
            )
        };
        connection.status = Some(PlatformConnectionStatus {
            conditions: vec![condition],
            ..Default::default()
        });
        Arc::new(connection)
    }

    #[test]
    fn the_oldest_customer_of_a_name_holds_it() {
        let old = customer("team-a", 100);
        let young = customer("team-b", 200);
        let all = vec![old.clone(), young.clone()];

        assert_eq!(name_claim(&old, &all), NameClaim::Holder);
        assert_eq!(
            name_claim(&young, &all),
            NameClaim::DuplicateOf {
                namespace: "team-a".into()
            }
        );
    }

    #[test]
    fn equal_creation_times_are_broken_by_namespace() {
        let a = customer("team-a", 100);
        let b = customer("team-b", 100);
        let all = vec![b.clone(), a.clone()];

        assert_eq!(name_claim(&a, &all), NameClaim::Holder);
        assert!(matches!(name_claim(&b, &all), NameClaim::DuplicateOf { .. }));
    }

    #[test]
    fn a_lone_customer_holds_its_name() {
        let only = customer("team-a", 100);

        assert_eq!(name_claim(&only, std::slice::from_ref(&only)), NameClaim::Holder);
    }

    #[test]
    fn only_ready_connections_of_the_customer_count_as_connected() {
        let connections = vec![
            connection("wa", Platform::Whatsapp, true),
            connection("tg", Platform::Telegram, false),
            connection("mail", Platform::Email, true),
            connection("mail-2", Platform::Email, true),
        ];

        let platforms = connected_platforms(&connections, "team-a", "acme");

        assert_eq!(platforms, vec![Platform::Email, Platform::Whatsapp]);
        assert!(connected_platforms(&connections, "team-b", "acme").is_empty());
    }

    #[test]
    fn a_new_reason_is_a_transition_and_a_repeat_is_not() {
        let now = Timestamp::UNIX_EPOCH;
        let ready = with_outcome(
            None,
            Some(1),
            &Outcome {
                status: ConditionStatus::True,
                reason: reason::READY,
                message: String::new(),
            },
            now,
        );
        let suspended = with_outcome(
            Some(&ready),
            Some(2),
            &Outcome::not_ready(reason::SUSPENDED, "suspended"),
            now,
        );
        let suspended_again = with_outcome(
            Some(&suspended),
            Some(2),
            &Outcome::not_ready(reason::SUSPENDED, "suspended"),
            now,
        );

        assert!(ready_transitioned(None, &ready));
        assert!(ready_transitioned(Some(&ready), &suspended));
        assert!(!ready_transitioned(Some(&suspended), &suspended_again));
        assert_eq!(suspended, suspended_again);
    }

    #[test]
    fn a_delivery_condition_is_set_beside_ready_and_removed_with_the_delivery() {
        let now = Timestamp::UNIX_EPOCH;
        let ready = with_outcome(
            None,
            Some(1),
            &Outcome {
                status: ConditionStatus::True,
                reason: reason::READY,
                message: String::new(),
            },
            now,
        );
        let missing = Outcome::not_ready("DeliverySecretMissing", "Secret \"acme-delivery\" is missing");

        let with = with_delivery(ready.clone(), Some(1), Some(&missing), now);
        let without = with_delivery(with.clone(), Some(2), None, now);

        let delivery =
            conditions::find(&with.conditions, conditions::DELIVERY_READY).expect("the condition is set");
        assert_eq!(
            (delivery.status, delivery.reason.as_str()),
            (ConditionStatus::False, "DeliverySecretMissing")
        );
        assert!(conditions::is_ready(&with.conditions), "Ready is untouched");
        assert!(transitioned(Some(&ready), &with, conditions::DELIVERY_READY));
        assert!(!ready_transitioned(Some(&ready), &with));
        assert_eq!(without, ready);
    }
}
