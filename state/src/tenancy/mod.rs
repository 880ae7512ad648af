//! How Customer and PlatformConnection resources become runtime state.
//!
//! The operator and `dev` mode share this module, so a manifest means the
//! same thing in a cluster and on a laptop. It works in two steps:
//!
//! 1. **Plan** (pure, no I/O): [`plan_connection`] checks a connection
//!    against its Customer and the fields of its Secret ([`SecretData`])
//!    and yields a [`ConnectionPlan`]: the [`Credentials`] document to seal
//!    and the inbound [`Route`](crate::store::Route)s to claim.
//!    [`customer_summary`] does the same for a Customer's API-key index
//!    entry. [`secret_requirements`] is the table of which Secret fields
//!    each platform needs.
//! 2. **Apply** (over a [`Store`](crate::store::Store) and a
//!    [`Keyring`](crate::vault::Keyring)): [`apply_connection`],
//!    [`remove_connection`], [`apply_customer`], [`remove_customer`] and
//!    [`reencrypt_if_needed`] write what a plan says, each safe to repeat.
//!
//! The server reads back what was written with [`load_credentials`], or
//! with [`Credentials::open`] on an envelope it already holds.
//!
//! A Customer's inbound delivery (`spec.delivery`) goes the same two steps
//! with [`plan_delivery`] and [`apply_delivery`]; the server opens it with
//! [`load_delivery_target`].
//!
//! No error, `Debug` output or status field built here carries a secret
//! value: errors name Secret fields, never their contents.

mod apply;
mod credentials;
mod delivery;
mod plan;
pub mod requirements;
mod secret;

use hermes_crds::Platform;

pub use apply::{
    AppliedConnection, ApplyError, apply_connection, apply_customer, load_credentials,
    mark_connection_failed, reencrypt_if_needed, remove_connection, remove_customer, revoke_api_key,
};
pub use credentials::Credentials;
pub use delivery::{
    DeliveryError, DeliveryPlan, SEAL_PLATFORM as DELIVERY_SEAL_PLATFORM, apply_delivery,
    load_delivery_target, plan_delivery,
};
pub use plan::{
    API_KEY_PREFIX, ConnectionPlan, customer_summary, generate_api_key, plan_connection, route_from_key,
    telegram_connection_id,
};
pub use requirements::{SecretRequirements, secret_requirements};
pub use secret::SecretData;

use crate::InvalidCustomerId;
use crate::vault::VaultError;

/// Why a resource cannot become state, or stored credentials cannot be read.
///
/// Messages name resources, fields and platforms; never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// A Secret's `data` value is not UTF-8 text.
    #[error("Secret {secret:?} field {key:?} is not UTF-8 text")]
    SecretNotUtf8 {
        /// The Secret's name.
        secret: String,
        /// The field at fault.
        key: String,
    },

    /// A connection that is not a sandbox has no Secret to read credentials from.
    #[error(
        "a {platform} connection that is not a sandbox needs its credentials in a Secret: {}",
        match secret_name {
            Some(name) => format!("Secret {name:?} named by spec.secretRef was not found"),
            None => "set spec.secretRef".to_owned(),
        }
    )]
    SecretRequired {
        /// The connection's platform.
        platform: Platform,
        /// The Secret `spec.secretRef` names, if it names one.
        secret_name: Option<String>,
    },

    /// The Secret lacks fields the platform requires, or has them blank.
    #[error(
        "the {platform} Secret lacks {} (it needs {})",
        fields.join(", "),
        secret_requirements(*platform).describe()
    )]
    MissingSecretFields {
        /// The connection's platform.
        platform: Platform,
        /// The missing fields' names.
        fields: Vec<String>,
    },

    /// The spec lacks the settings block named after its platform.
    #[error("spec.platform is {platform} but spec.{platform} is missing")]
    PlatformBlockMissing {
        /// The connection's platform.
        platform: Platform,
    },

    /// The spec carries the settings block of another platform.
    #[error(
        "spec.platform is {platform} but the spec carries settings for {}; keep only spec.{platform}",
        blocks.iter().map(|block| block.as_str()).collect::<Vec<_>>().join(", ")
    )]
    PlatformBlockMismatch {
        /// The connection's platform.
        platform: Platform,
        /// The platforms whose blocks should not be there.
        blocks: Vec<Platform>,
    },

    /// `spec.customerRef` does not name the Customer it was planned with.
    #[error("spec.customerRef is {customer_ref:?} but the Customer is {customer:?}")]
    CustomerRefMismatch {
        /// What the connection references.
        customer_ref: String,
        /// The Customer's name.
        customer: String,
    },

    /// The connection and its Customer live in different namespaces.
    #[error(
        "the connection is in namespace {connection_namespace:?} but its Customer is in {customer_namespace:?}; \
         a connection must be in its Customer's namespace"
    )]
    NamespaceMismatch {
        /// The connection's namespace.
        connection_namespace: String,
        /// The Customer's namespace.
        customer_namespace: String,
    },

    /// The Customer's name is not a valid customer id.
    #[error(transparent)]
    InvalidCustomerId(#[from] InvalidCustomerId),

    /// A resource has no `metadata.name`.
    #[error("the {kind} has no metadata.name")]
    NameMissing {
        /// The resource kind.
        kind: &'static str,
    },

    /// A non-secret setting has a value Hermes cannot use.
    #[error("{field} {reason}")]
    InvalidSetting {
        /// The field path, e.g. `spec.whatsapp.phoneNumberId`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Stored credentials are not a credentials document.
    #[error("stored credentials are {category} at line {line}, column {column}")]
    CredentialsMalformed {
        /// What kind of fault: not JSON, truncated, not the expected shape.
        category: &'static str,
        /// The line of the fault.
        line: usize,
        /// The column of the fault.
        column: usize,
    },

    /// The settings of stored credentials do not have the requested shape.
    #[error("stored {platform} settings are malformed: {reason}")]
    SettingsMalformed {
        /// The credentials' platform.
        platform: Platform,
        /// What the parser reported; settings hold no secrets.
        reason: String,
    },

    /// Sealing the credentials failed.
    #[error("sealing the credentials failed")]
    SealFailed(#[source] VaultError),

    /// Opening stored credentials failed.
    #[error("opening the stored credentials failed")]
    OpenFailed(#[source] VaultError),
}

impl TenancyError {
    /// A CamelCase reason for a `Ready=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            TenancyError::SecretNotUtf8 { .. } => "SecretNotUtf8",
            TenancyError::SecretRequired {
                secret_name: Some(_), ..
            } => "SecretNotFound",
            TenancyError::SecretRequired {
                secret_name: None, ..
            } => "SecretRefMissing",
            TenancyError::MissingSecretFields { .. } => "SecretFieldsMissing",
            TenancyError::PlatformBlockMissing { .. } => "PlatformBlockMissing",
            TenancyError::PlatformBlockMismatch { .. } => "PlatformBlockMismatch",
            TenancyError::CustomerRefMismatch { .. } => "CustomerMismatch",
            TenancyError::NamespaceMismatch { .. } => "NamespaceMismatch",
            TenancyError::InvalidCustomerId(_) => "InvalidCustomerId",
            TenancyError::NameMissing { .. } => "NameMissing",
            TenancyError::InvalidSetting { .. } => "InvalidSetting",
            TenancyError::CredentialsMalformed { .. } => "CredentialsMalformed",
            TenancyError::SettingsMalformed { .. } => "SettingsMalformed",
            TenancyError::SealFailed(_) => "EncryptionFailed",
            TenancyError::OpenFailed(_) => "DecryptionFailed",
        }
    }
}
