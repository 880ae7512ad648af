//! What a Customer's `spec.delivery` becomes: a [`DeliveryTarget`] in the
//! store, whose signing secret is sealed by the vault.
//!
//! The operator (and `dev` mode) call, on every reconcile of a Customer:
//!
//! 1. [`plan_delivery`] with the Customer and the fields of the Secret that
//!    `spec.delivery.signingSecretRef.name` names (in the Customer's
//!    namespace), or `None` when that Secret does not exist;
//! 2. [`apply_delivery`] with the plan (`None` when the Customer has no
//!    `spec.delivery`, which removes a target set before).
//!
//! [`remove_customer`](super::remove_customer) needs no extra step: purging
//! a customer removes its target and its place in the index of delivery
//! customers. The server reads a target back with [`load_delivery_target`].
//!
//! The vault binds every envelope to a customer and a platform; delivery
//! belongs to no platform, so the signing secret is sealed under the
//! customer and [`SEAL_PLATFORM`], inside a document that names its purpose.
//! Opening checks the purpose, so a platform credential envelope moved under
//! the target's key opens as nothing usable. A vault binding by purpose
//! rather than platform would make this unnecessary.

use std::fmt;

use hermes_crds::{Customer, Platform};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::SecretData;
use crate::store::{DeliveryTarget, Store, StoreError};
use crate::vault::{Keyring, VaultError};
use crate::{CustomerId, InvalidCustomerId};

/// The platform the delivery document is sealed under (see the module docs).
pub const SEAL_PLATFORM: Platform = Platform::Email;

/// The purpose the sealed document names.
const PURPOSE: &str = "hermes.delivery/v1";

/// Why a Customer's delivery cannot be planned, written or read.
///
/// Messages name Secrets and fields, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The Customer's name is not a valid customer id.
    #[error(transparent)]
    InvalidCustomerId(#[from] InvalidCustomerId),

    /// `spec.delivery.url` is not an https URL (or http on loopback).
    #[error("spec.delivery.url must be an https:// URL (http:// only for localhost, 127.0.0.1 or [::1])")]
    InvalidUrl,

    /// The signing secret's Secret is missing, or lacks the key, or has it blank.
    #[error("Secret {secret:?} named by spec.delivery.signingSecretRef has no non-blank {key:?} field")]
    SigningSecretMissing {
        /// The Secret's name.
        secret: String,
        /// The key inside it.
        key: String,
    },

    /// Sealing the signing secret failed.
    #[error("sealing the delivery signing secret failed")]
    SealFailed(#[source] VaultError),

    /// Opening the stored signing secret failed.
    #[error("opening the stored delivery signing secret failed")]
    OpenFailed(#[source] VaultError),

    /// The stored target opened, but is not a delivery document.
    #[error("the stored delivery target is not a delivery document")]
    Malformed,

    /// Writing the target failed.
    #[error("writing the delivery target failed")]
    WriteFailed(#[source] StoreError),

    /// Reading the target failed.
    #[error("reading the delivery target failed")]
    ReadFailed(#[source] StoreError),

    /// Removing the target failed.
    #[error("removing the delivery target failed")]
    DeleteFailed(#[source] StoreError),
}

impl DeliveryError {
    /// A CamelCase reason for a Customer condition.
    pub fn reason(&self) -> &'static str {
        match self {
            DeliveryError::InvalidCustomerId(_) => "InvalidCustomerId",
            DeliveryError::InvalidUrl => "DeliveryUrlInvalid",
            DeliveryError::SigningSecretMissing { .. } => "DeliverySecretMissing",
            DeliveryError::SealFailed(_) => "EncryptionFailed",
            DeliveryError::OpenFailed(_) => "DecryptionFailed",
            DeliveryError::Malformed => "DeliveryTargetMalformed",
            DeliveryError::WriteFailed(_) | DeliveryError::ReadFailed(_) | DeliveryError::DeleteFailed(_) => {
                "StateUnavailable"
            }
        }
    }

    /// Whether retrying later may succeed without a change to a resource.
    pub fn is_transient(&self) -> bool {
        match self {
            DeliveryError::WriteFailed(_) | DeliveryError::ReadFailed(_) | DeliveryError::DeleteFailed(_) => {
                true
            }
            DeliveryError::InvalidCustomerId(_)
            | DeliveryError::InvalidUrl
            | DeliveryError::SigningSecretMissing { .. }
            | DeliveryError::SealFailed(_)
            | DeliveryError::OpenFailed(_)
            | DeliveryError::Malformed => false,
        }
    }
}

/// Where a customer's events go and the secret they are signed with, in
/// the clear: what [`plan_delivery`] makes and [`load_delivery_target`]
/// opens. The secret is wiped on drop and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryPlan {
    /// The customer.
    pub customer: CustomerId,
    /// The URL events are POSTed to.
    pub url: String,
    /// The HMAC-SHA256 signing secret.
    pub signing_secret: Zeroizing<String>,
}

impl fmt::Debug for DeliveryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryPlan")
            .field("customer", &self.customer)
            .field("url", &self.url)
            .field("signing_secret", &"<redacted>")
            .finish()
    }
}

/// The plaintext sealed into a target's envelope.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SealedDocument {
    purpose: String,
    signing_secret: String,
}

impl Drop for SealedDocument {
    fn drop(&mut self) {
        self.signing_secret.zeroize();
    }
}

/// The delivery a Customer asks for, or `None` when its spec has no
/// `delivery`. Pure: `secret` is the Secret named by
/// `spec.delivery.signingSecretRef.name`, `None` if it does not exist.
///
/// # Errors
///
/// [`DeliveryError::InvalidCustomerId`], [`DeliveryError::InvalidUrl`] (the
/// CRD's rule, checked again for manifests that skipped the API server) and
/// [`DeliveryError::SigningSecretMissing`].
pub fn plan_delivery(
    customer: &Customer,
    secret: Option<&SecretData>,
) -> Result<Option<DeliveryPlan>, DeliveryError> {
    let Some(delivery) = &customer.spec.delivery else {
        return Ok(None);
    };
    let id = CustomerId::new(customer.metadata.name.clone().unwrap_or_default())?;
    if !is_allowed_url(&delivery.url) {
        return Err(DeliveryError::InvalidUrl);
    }

    let reference = &delivery.signing_secret_ref;
    let signing_secret = secret
        .and_then(|data| data.non_blank(&reference.key))
        .ok_or_else(|| DeliveryError::SigningSecretMissing {
            secret: reference.name.clone(),
            key: reference.key.clone(),
        })?;

    Ok(Some(DeliveryPlan {
        customer: id,
        url: delivery.url.clone(),
        signing_secret: Zeroizing::new(signing_secret.to_owned()),
    }))
}

/// Writes a customer's delivery target, sealed under the keyring's primary
/// key, or removes it when `plan` is `None`. Idempotent; a repeated call
/// re-seals under the current primary key, which is how the target follows
/// a key rotation.
pub async fn apply_delivery(
    store: &dyn Store,
    keyring: &Keyring,
    customer: &CustomerId,
    plan: Option<&DeliveryPlan>,
) -> Result<(), DeliveryError> {
    let Some(plan) = plan else {
        store
            .delete_delivery_target(customer)
            .await
            .map_err(DeliveryError::DeleteFailed)?;
        return Ok(());
    };

    let document = SealedDocument {
        purpose: PURPOSE.to_owned(),
        signing_secret: plan.signing_secret.to_string(),
    };
    let plaintext = Zeroizing::new(serde_json::to_vec(&document).map_err(|_| DeliveryError::Malformed)?);
    let signing_secret = keyring
        .seal(customer, SEAL_PLATFORM, &plaintext)
        .map_err(DeliveryError::SealFailed)?;

    let target = DeliveryTarget {
        url: plan.url.clone(),
        signing_secret,
    };
    store
        .put_delivery_target(customer, &target)
        .await
        .map_err(DeliveryError::WriteFailed)
}

/// Reads and opens a customer's delivery target; `None` when it has none.
pub async fn load_delivery_target(
    store: &dyn Store,
    keyring: &Keyring,
    customer: &CustomerId,
) -> Result<Option<DeliveryPlan>, DeliveryError> {
    let stored = store
        .get_delivery_target(customer)
        .await
        .map_err(DeliveryError::ReadFailed)?;
    let Some(target) = stored else {
        return Ok(None);
    };

    let plaintext = keyring
        .open(customer, SEAL_PLATFORM, &target.signing_secret)
        .map_err(DeliveryError::OpenFailed)?;
    let document: SealedDocument =
        serde_json::from_slice(&plaintext).map_err(|_| DeliveryError::Malformed)?;
    if document.purpose != PURPOSE {
        return Err(DeliveryError::Malformed);
    }

    Ok(Some(DeliveryPlan {
        customer: customer.clone(),
        url: target.url,
        signing_secret: Zeroizing::new(document.signing_secret.clone()),
    }))
}

/// `https://…`, or `http://` to a loopback host, as the CRD's rule says.
fn is_allowed_url(url: &str) -> bool {
    let has_host = |rest: &str| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(char::is_whitespace)
    };
    if let Some(rest) = url.strip_prefix("https://") {
        return has_host(rest);
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || is_port(port),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let port = &authority[host.len()..];
    matches!(host, "localhost" | "127.0.0.1") && (port.is_empty() || is_port(port))
}

fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use hermes_crds::{CustomerSpec, Delivery, SecretKeyRef};

    use super::*;
    use crate::store::EmbeddedStore;

    const SECRET: &str = "whsec-s3cr3t-VALUE";

    fn customer(delivery: Option<Delivery>) -> Customer {
        let mut customer = Customer::new(
            "acme",
            CustomerSpec {
                display_name: "Acme".into(),
                email: "ops@acme.example".into(),
                plan: hermes_crds::Plan::Pro,
                suspended: false,
                api_key_secret_ref: None,
                delivery,
                limits: None,
            },
        );
        customer.metadata.namespace = Some("tenants".into());
        customer
    }

    fn delivery(url: &str) -> Delivery {
        Delivery {
            url: url.into(),
            signing_secret_ref: SecretKeyRef {
                name: "acme-delivery".into(),
                key: "signingSecret".into(),
            },
        }
    }

    fn secret() -> SecretData {
        [("signingSecret", SECRET)].into_iter().collect()
    }

    fn acme() -> CustomerId {
        CustomerId::new("acme").expect("acme is a valid id")
    }

    #[tokio::test]
    async fn an_applied_delivery_loads_back_with_its_secret() {
        let store = EmbeddedStore::new();
        let keyring = Keyring::generate("k1");
        let plan = plan_delivery(
            &customer(Some(delivery("https://hooks.acme.example/in"))),
            Some(&secret()),
        )
        .expect("valid delivery")
        .expect("a delivery is asked for");

        apply_delivery(&store, &keyring, &acme(), Some(&plan))
            .await
            .expect("apply works");

        let loaded = load_delivery_target(&store, &keyring, &acme())
            .await
            .expect("load works")
            .expect("a target is stored");
        assert_eq!(loaded, plan);
        let stored = store
            .get_delivery_target(&acme())
            .await
            .expect("get works")
            .expect("a target is stored");
        assert!(
            !serde_json::to_string(&stored)
                .expect("serializes")
                .contains(SECRET)
        );
        assert!(!format!("{loaded:?}").contains(SECRET));
    }

    #[tokio::test]
    async fn applying_no_delivery_removes_the_target() {
        let store = EmbeddedStore::new();
        let keyring = Keyring::generate("k1");
        let plan = plan_delivery(
            &customer(Some(delivery("https://hooks.acme.example/in"))),
            Some(&secret()),
        )
        .expect("valid delivery");
        apply_delivery(&store, &keyring, &acme(), plan.as_ref())
            .await
            .expect("apply works");

        let none = plan_delivery(&customer(None), None).expect("no delivery is valid");
        apply_delivery(&store, &keyring, &acme(), none.as_ref())
            .await
            .expect("apply works");

        assert_eq!(none, None);
        assert!(
            load_delivery_target(&store, &keyring, &acme())
                .await
                .expect("load works")
                .is_none()
        );
        assert!(store.delivery_customers().await.expect("list works").is_empty());
    }

    #[tokio::test]
    async fn a_credentials_envelope_moved_under_the_target_does_not_open_as_a_target() {
        let store = EmbeddedStore::new();
        let keyring = Keyring::generate("k1");
        let credentials = keyring
            .seal(&acme(), SEAL_PLATFORM, br#"{"platform":"email","secrets":{}}"#)
            .expect("seals");
        let target = DeliveryTarget {
            url: "https://hooks.acme.example/in".into(),
            signing_secret: credentials,
        };
        store
            .put_delivery_target(&acme(), &target)
            .await
            .expect("put works");

        let error = load_delivery_target(&store, &keyring, &acme())
            .await
            .expect_err("not a delivery document");

        assert!(matches!(error, DeliveryError::Malformed), "{error:?}");
    }

    #[test]
    fn a_missing_signing_secret_names_the_secret_and_key_only() {
        let empty = SecretData::new();
        for secret in [None, Some(&empty)] {
            let error = plan_delivery(&customer(Some(delivery("https://hooks.acme.example/in"))), secret)
                .expect_err("no signing secret");

            assert_eq!(error.reason(), "DeliverySecretMissing");
            assert!(error.to_string().contains("acme-delivery"));
            assert!(error.to_string().contains("signingSecret"));
        }
    }

    #[test]
    fn a_plain_http_url_off_loopback_is_refused() {
        let error = plan_delivery(
            &customer(Some(delivery("http://hooks.acme.example/in"))),
            Some(&secret()),
        )
        .expect_err("plain http");

        assert_eq!(error.reason(), "DeliveryUrlInvalid");
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_allowed() {
        for url in [
            "https://hooks.acme.example/hermes",
            "https://hooks.acme.example",
            "http://localhost:8080/in",
            "http://127.0.0.1/in",
            "http://[::1]:9000",
        ] {
            assert!(is_allowed_url(url), "{url}");
        }
        for url in [
            "http://hooks.acme.example/in",
            "http://localhost.evil.example/in",
            "ftp://acme.example",
            "https://",
            "http://127.0.0.1:x/in",
            "hooks.acme.example",
        ] {
            assert!(!is_allowed_url(url), "{url}");
        }
    }
}
