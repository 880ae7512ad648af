//! Finding a Customer's API key: in the Secret `spec.apiKeySecretRef`
//! names, or in the Secret `<name>-api-key` the operator generates and owns.

use std::collections::BTreeMap;

use hermes_crds::Customer;
use hermes_state::tenancy::{SecretData, generate_api_key};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The field of a generated Secret that holds the key.
pub const GENERATED_KEY_FIELD: &str = "apiKey";

/// The shortest API key accepted from a referenced Secret. Generated keys
/// are 46 characters; anything shorter than this is guessable.
pub const MIN_KEY_LEN: usize = 24;

/// The label naming the Customer on a generated Secret.
pub const CUSTOMER_LABEL: &str = "hermes.squaremcp.com/customer";

/// The name of the Secret generated for a Customer without `apiKeySecretRef`.
pub fn generated_secret_name(customer: &str) -> String {
    format!("{customer}-api-key")
}

/// Where a Customer's key was found.
pub enum ApiKey {
    /// A usable key, and the Secret holding it.
    Found {
        /// The key itself; wiped on drop, never logged.
        key: Zeroizing<String>,
        /// The Secret's name, for `status.apiKeySecret`.
        secret: String,
    },
    /// No usable key; the message says why without quoting any value.
    Invalid(String),
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKey::Found { secret, .. } => f
                .debug_struct("Found")
                .field("secret", secret)
                .finish_non_exhaustive(),
            ApiKey::Invalid(message) => f.debug_tuple("Invalid").field(message).finish(),
        }
    }
}

/// Reads the Customer's key, generating (and storing) one when the spec
/// names no Secret and the generated Secret does not exist yet.
///
/// # Errors
///
/// [`Error::ReadSecretFailed`] or [`Error::WriteApiKeySecretFailed`] when
/// the API server fails; a missing or malformed Secret is an
/// [`ApiKey::Invalid`], not an error, as only a change to it can help.
pub async fn resolve(customer: &Customer, secrets: &Api<Secret>, namespace: &str) -> Result<ApiKey> {
    match &customer.spec.api_key_secret_ref {
        Some(reference) => {
            let secret = read(secrets, namespace, &reference.name).await?;
            Ok(key_from_reference(
                secret.as_ref(),
                &reference.name,
                &reference.key,
            ))
        }
        None => generated(customer, secrets, namespace).await,
    }
}

/// The key a referenced Secret holds, or why it holds none.
pub fn key_from_reference(secret: Option<&Secret>, name: &str, field: &str) -> ApiKey {
    let Some(secret) = secret else {
        return ApiKey::Invalid(format!(
            "Secret {name:?} named by spec.apiKeySecretRef was not found"
        ));
    };
    let data = match SecretData::from_secret(secret) {
        Ok(data) => data,
        Err(error) => return ApiKey::Invalid(error.to_string()),
    };
    match data.non_blank(field) {
        None => ApiKey::Invalid(format!("Secret {name:?} has no non-empty field {field:?}")),
        Some(key) if key.trim().len() < MIN_KEY_LEN => ApiKey::Invalid(format!(
            "the API key in Secret {name:?} field {field:?} is shorter than {MIN_KEY_LEN} characters"
        )),
        Some(key) => ApiKey::Found {
            key: Zeroizing::new(key.trim().to_owned()),
            secret: name.to_owned(),
        },
    }
}

/// Whether `secret` is controlled by `customer` (an ownerReference with its
/// uid and `controller: true`).
pub fn is_owned_by(secret: &Secret, customer: &Customer) -> bool {
    let Some(uid) = customer.uid() else {
        return false;
    };
    secret
        .owner_references()
        .iter()
        .any(|owner| owner.uid == uid && owner.controller == Some(true))
}

/// The generated Secret for `customer` holding `key`, owned by the Customer.
pub fn generated_secret(customer: &Customer, namespace: &str, key: &str) -> Secret {
    let name = customer.name_any();
    let mut owner = customer.controller_owner_ref(&());
    if let Some(owner) = owner.as_mut() {
        owner.block_owner_deletion = Some(true);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(generated_secret_name(&name)),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    "hermes-operator".to_owned(),
                ),
                (CUSTOMER_LABEL.to_owned(), name),
            ])),
            owner_references: owner.map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            GENERATED_KEY_FIELD.to_owned(),
            ByteString(key.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// The generated key: reused when the Secret holds one, written otherwise.
async fn generated(customer: &Customer, secrets: &Api<Secret>, namespace: &str) -> Result<ApiKey> {
    let name = generated_secret_name(&customer.name_any());
    let existing = read(secrets, namespace, &name).await?;

    if let Some(secret) = &existing {
        if !is_owned_by(secret, customer) {
            return Ok(ApiKey::Invalid(format!(
                "Secret {name:?} exists and is not owned by this Customer; \
                 delete it, or name it in spec.apiKeySecretRef"
            )));
        }
        if let ApiKey::Found { key, .. } = key_from_reference(Some(secret), &name, GENERATED_KEY_FIELD) {
            return Ok(ApiKey::Found { key, secret: name });
        }
    }

    // No usable key: generate one. A Secret of ours that lost its key is
    // replaced (its resourceVersion guards against a concurrent edit).
    let key = generate_api_key();
    let mut secret = generated_secret(customer, namespace, &key);
    let written = match existing {
        Some(current) => {
            secret.metadata.resource_version = current.resource_version();
            secrets.replace(&name, &PostParams::default(), &secret).await
        }
        None => secrets.create(&PostParams::default(), &secret).await,
    };
    written.map_err(|source| Error::WriteApiKeySecretFailed {
        namespace: namespace.to_owned(),
        name: name.clone(),
        source,
    })?;

    Ok(ApiKey::Found { key, secret: name })
}

/// A Secret, or `None` when it does not exist.
pub async fn read(secrets: &Api<Secret>, namespace: &str, name: &str) -> Result<Option<Secret>> {
    secrets
        .get_opt(name)
        .await
        .map_err(|source| Error::ReadSecretFailed {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use hermes_crds::CustomerSpec;

    use super::*;

    fn customer() -> Customer {
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
        customer.metadata.namespace = Some("team-a".into());
        customer.metadata.uid = Some("uid-acme".into());
        customer
    }

    fn secret_with(field: &str, value: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("keys".into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                field.to_owned(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    #[test]
    fn a_generated_secret_is_controlled_by_its_customer() {
        let customer = customer();

        let secret = generated_secret(&customer, "team-a", "hk_example");

        let owners = secret.owner_references();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "Customer");
        assert_eq!(owners[0].name, "acme");
        assert_eq!(owners[0].uid, "uid-acme");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].block_owner_deletion, Some(true));
        assert_eq!(secret.name_any(), "acme-api-key");
        assert!(is_owned_by(&secret, &customer));
    }

    #[test]
    fn a_referenced_key_is_trimmed_and_found() {
        let key = "hk_0123456789abcdefghijklmnop";
        let secret = secret_with("token", &format!("{key}\n"));

        let found = key_from_reference(Some(&secret), "keys", "token");

        assert!(matches!(found, ApiKey::Found { key: k, .. } if k.as_str() == key));
    }

    #[test]
    fn a_missing_secret_field_or_short_key_is_invalid_without_quoting_it() {
        let short = secret_with("token", "hk_short");

        let missing_secret = key_from_reference(None, "keys", "token");
        let missing_field = key_from_reference(Some(&short), "keys", "other");
        let too_short = key_from_reference(Some(&short), "keys", "token");

        for outcome in [missing_secret, missing_field, too_short] {
            let ApiKey::Invalid(message) = outcome else {
                panic!("expected an invalid key");
            };
            assert!(message.contains("keys"), "{message}");
            assert!(!message.contains("hk_short"), "{message}");
        }
    }
}
