//! Which objects a change to a related object re-reconciles.
//!
//! | change to | re-reconciles |
//! |---|---|
//! | a Secret | the PlatformConnections whose `secretRef` names it; the Customers whose API key or delivery signing secret it holds |
//! | a Customer | its PlatformConnections (they wait for it to be Ready) |
//! | a PlatformConnection | its Customer, when the connection's readiness disagrees with the Customer's `connectedPlatforms` |
//!
//! Each mapper reads the reflector caches the controllers keep anyway, so
//! a trigger costs no API call.

use std::sync::Arc;

use hermes_crds::{Customer, PlatformConnection};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::conditions;
use crate::customer::api_key::generated_secret_name;

/// The connections that read `secret`.
pub fn connections_reading_secret(
    connections: &[Arc<PlatformConnection>],
    secret: &Secret,
) -> Vec<ObjectRef<PlatformConnection>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    connections
        .iter()
        .filter(|c| c.namespace() == namespace)
        .filter(|c| c.spec.secret_ref.as_ref().is_some_and(|r| r.name == name))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The Customers that read `secret`: for their API key (named by
/// `apiKeySecretRef`, or generated for them) or for the signing secret of
/// their delivery (named by `delivery.signingSecretRef`).
pub fn customers_reading_secret(customers: &[Arc<Customer>], secret: &Secret) -> Vec<ObjectRef<Customer>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    let holds_key = |c: &Customer| match &c.spec.api_key_secret_ref {
        Some(reference) => reference.name == name,
        None => generated_secret_name(&c.name_any()) == name,
    };
    let signs_delivery = |c: &Customer| {
        c.spec
            .delivery
            .as_ref()
            .is_some_and(|delivery| delivery.signing_secret_ref.name == name)
    };
    customers
        .iter()
        .filter(|c| c.namespace() == namespace)
        .filter(|c| holds_key(c) || signs_delivery(c))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The connections of `customer`.
pub fn connections_of_customer(
    connections: &[Arc<PlatformConnection>],
    customer: &Customer,
) -> Vec<ObjectRef<PlatformConnection>> {
    let namespace = customer.namespace();
    let name = customer.name_any();
    connections
        .iter()
        .filter(|c| c.namespace() == namespace && c.spec.customer_ref == name)
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The Customer of `connection`, when its `connectedPlatforms` does not yet
/// reflect whether the connection is Ready (or the Customer is not cached).
pub fn customer_to_refresh(
    customers: &[Arc<Customer>],
    connection: &PlatformConnection,
) -> Option<ObjectRef<Customer>> {
    let namespace = connection.namespace()?;
    let reference = ObjectRef::new(&connection.spec.customer_ref).within(&namespace);

    let customer = customers.iter().find(|c| {
        c.namespace().as_deref() == Some(namespace.as_str()) && c.name_any() == connection.spec.customer_ref
    });
    let Some(customer) = customer else {
        return Some(reference);
    };

    let ready = connection.metadata.deletion_timestamp.is_none()
        && connection
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_ready(&s.conditions));
    let listed = customer
        .status
        .as_ref()
        .is_some_and(|s| s.connected_platforms.contains(&connection.spec.platform));
    (ready != listed).then_some(reference)
}

#[cfg(test)]
mod tests {
    use hermes_crds::{
        ConditionStatus, CustomerSpec, CustomerStatus, Delivery, Platform, PlatformConnectionSpec,
        PlatformConnectionStatus, SecretKeyRef,
    };
    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn secret(namespace: &str, name: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    fn customer(name: &str, key_ref: Option<&str>, connected: &[Platform]) -> Arc<Customer> {
        let mut customer = Customer::new(
            name,
            CustomerSpec {
                display_name: name.into(),
                email: "ops@acme.example".into(),
                plan: Default::default(),
                suspended: false,
                api_key_secret_ref: key_ref.map(|name| SecretKeyRef {
                    name: name.into(),
                    key: "key".into(),
                }),
                delivery: None,
                limits: None,
            },
        );
        customer.metadata.namespace = Some("team-a".into());
        customer.status = Some(CustomerStatus {
            connected_platforms: connected.to_vec(),
            ..Default::default()
        });
        Arc::new(customer)
    }

    fn connection(name: &str, secret: &str, ready: bool) -> Arc<PlatformConnection> {
        let mut connection = PlatformConnection::new(
            name,
            serde_json::from_value::<PlatformConnectionSpec>(serde_json::json!({
                "customerRef": "acme",
                "platform": "whatsapp",
                "secretRef": {"name": secret},
                "whatsapp": {"phoneNumberId": "1", "businessAccountId": "2"},
            }))
            .expect("a whatsapp spec deserializes"),
        );
        connection.metadata.namespace = Some("team-a".into());
        let status = if ready {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        connection.status = Some(PlatformConnectionStatus {
            conditions: vec![conditions::ready(status, "Any", "", None, Timestamp::UNIX_EPOCH)],
            ..Default::default()
        });
        Arc::new(connection)
    }

    #[test]
    fn a_secret_change_reaches_the_connections_that_read_it_in_its_namespace() {
        let connections = vec![
            connection("wa", "wa-creds", true),
            connection("wa-2", "other", true),
        ];

        let hit = connections_reading_secret(&connections, &secret("team-a", "wa-creds"));
        let other_namespace = connections_reading_secret(&connections, &secret("team-b", "wa-creds"));

        assert_eq!(hit, vec![ObjectRef::new("wa").within("team-a")]);
        assert!(other_namespace.is_empty());
    }

    #[test]
    fn a_secret_change_reaches_the_customer_it_keys() {
        let customers = vec![
            customer("acme", None, &[]),
            customer("globex", Some("globex-keys"), &[]),
        ];

        assert_eq!(
            customers_reading_secret(&customers, &secret("team-a", "acme-api-key")),
            vec![ObjectRef::new("acme").within("team-a")]
        );
        assert_eq!(
            customers_reading_secret(&customers, &secret("team-a", "globex-keys")),
            vec![ObjectRef::new("globex").within("team-a")]
        );
        assert!(customers_reading_secret(&customers, &secret("team-a", "unrelated")).is_empty());
    }

    #[test]
    fn a_delivery_signing_secret_change_reaches_its_customer_once() {
        let with_delivery = |name: &str, key_ref: Option<&str>, signing: &str| {
            let mut customer = Arc::unwrap_or_clone(customer(name, key_ref, &[]));
            customer.spec.delivery = Some(Delivery {
                url: "https://hooks.acme.example/in".into(),
                signing_secret_ref: SecretKeyRef {
                    name: signing.into(),
                    key: "signingSecret".into(),
                },
            });
            Arc::new(customer)
        };
        let customers = vec![
            with_delivery("acme", None, "acme-delivery"),
            with_delivery("globex", Some("globex-shared"), "globex-shared"),
        ];

        let signing = customers_reading_secret(&customers, &secret("team-a", "acme-delivery"));
        let shared = customers_reading_secret(&customers, &secret("team-a", "globex-shared"));
        let other_namespace = customers_reading_secret(&customers, &secret("team-b", "acme-delivery"));

        assert_eq!(signing, vec![ObjectRef::new("acme").within("team-a")]);
        assert_eq!(shared, vec![ObjectRef::new("globex").within("team-a")]);
        assert!(other_namespace.is_empty());
    }

    #[test]
    fn a_customer_change_reaches_its_connections() {
        let connections = vec![connection("wa", "wa-creds", true)];

        let refs = connections_of_customer(&connections, &customer("acme", None, &[]));

        assert_eq!(refs, vec![ObjectRef::new("wa").within("team-a")]);
    }

    #[test]
    fn a_connection_refreshes_its_customer_only_when_the_platform_list_disagrees() {
        let listed = vec![customer("acme", None, &[Platform::Whatsapp])];
        let unlisted = vec![customer("acme", None, &[])];

        assert_eq!(customer_to_refresh(&listed, &connection("wa", "s", true)), None);
        assert!(customer_to_refresh(&listed, &connection("wa", "s", false)).is_some());
        assert!(customer_to_refresh(&unlisted, &connection("wa", "s", true)).is_some());
        assert_eq!(
            customer_to_refresh(&unlisted, &connection("wa", "s", false)),
            None
        );
    }
}
