//! The errors of a reconcile, each named for the step that failed.
//!
//! Messages never carry a secret value: they name resources, Secrets and
//! fields. A variant's source is not repeated in its message; [`chain`]
//! joins a whole chain for a log line.

use hermes_state::sql::SqlError;
use hermes_state::tenancy::{ApplyError, DeliveryError, TenancyError};

/// A result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a reconcile failed. Every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a Secret the resource references failed (other than it being absent).
    #[error("reading Secret {namespace}/{name} failed")]
    ReadSecretFailed {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },

    /// Creating or updating the API-key Secret the operator generates failed.
    #[error("writing the generated API-key Secret {namespace}/{name} failed")]
    WriteApiKeySecretFailed {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },

    /// Patching the resource's status failed.
    #[error("patching the status failed")]
    PatchStatusFailed(#[source] kube::Error),

    /// Writing or removing runtime state in the store failed.
    #[error("writing state failed")]
    StateWriteFailed(#[source] ApplyError),

    /// Writing or removing a Customer's delivery target failed in the store.
    #[error("publishing the delivery target failed")]
    PublishDeliveryFailed(#[source] DeliveryError),

    /// Reading runtime state from the store failed.
    #[error("reading state failed")]
    StateReadFailed(#[source] hermes_state::store::StoreError),

    /// Reading or writing the customers table failed.
    #[error("updating the customers table failed")]
    SqlFailed(#[source] SqlError),

    /// The resource's data could not be turned into state for a reason a
    /// retry may fix (the keyring cannot seal, say).
    #[error("planning the state failed")]
    PlanFailed(#[source] TenancyError),

    /// A reflector cache the reconcile reads was never filled.
    #[error("the {0} cache is unavailable")]
    CacheUnavailable(&'static str),

    /// The finalizer helper failed around the reconcile.
    #[error("the finalizer step failed")]
    FinalizerFailed(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    /// The resource lacks a name or namespace.
    #[error("the {0} has no name or namespace")]
    MissingObjectKey(&'static str),
}

impl Error {
    /// The variant's name, for the error metric's `error` label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::ReadSecretFailed { .. } => "ReadSecretFailed",
            Error::WriteApiKeySecretFailed { .. } => "WriteApiKeySecretFailed",
            Error::PatchStatusFailed(_) => "PatchStatusFailed",
            Error::StateWriteFailed(_) => "StateWriteFailed",
            Error::PublishDeliveryFailed(_) => "PublishDeliveryFailed",
            Error::StateReadFailed(_) => "StateReadFailed",
            Error::SqlFailed(_) => "SqlFailed",
            Error::PlanFailed(_) => "PlanFailed",
            Error::CacheUnavailable(_) => "CacheUnavailable",
            Error::FinalizerFailed(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(error)
                | kube::runtime::finalizer::Error::CleanupFailed(error) => error.metric_label(),
                kube::runtime::finalizer::Error::AddFinalizer(_) => "AddFinalizerFailed",
                kube::runtime::finalizer::Error::RemoveFinalizer(_) => "RemoveFinalizerFailed",
                kube::runtime::finalizer::Error::UnnamedObject
                | kube::runtime::finalizer::Error::InvalidFinalizer => "FinalizerFailed",
            },
            Error::MissingObjectKey(_) => "MissingObjectKey",
        }
    }
}

/// An error and its sources, joined with `: `, for one log line.
///
/// The finalizer helper's errors print their source in their own message;
/// a source whose text the message already ends with is not repeated.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_sources_without_repeating_them() {
        let inner = Error::CacheUnavailable("Customer");
        let wrapped = Error::FinalizerFailed(Box::new(kube::runtime::finalizer::Error::ApplyFailed(inner)));

        let text = chain(&wrapped);

        assert_eq!(
            text,
            "the finalizer step failed: failed to apply object: the Customer cache is unavailable"
        );
    }

    #[test]
    fn the_metric_label_looks_through_the_finalizer() {
        let wrapped = Error::FinalizerFailed(Box::new(kube::runtime::finalizer::Error::CleanupFailed(
            Error::CacheUnavailable("Customer"),
        )));

        assert_eq!(wrapped.metric_label(), "CacheUnavailable");
    }
}
