//! Publishing a Customer's inbound delivery target.
//!
//! Every reconcile that indexed the Customer's key makes the store's
//! delivery target match `spec.delivery`: it reads the Secret that
//! `spec.delivery.signingSecretRef` names, plans with
//! [`tenancy::plan_delivery`] and writes with [`tenancy::apply_delivery`],
//! which re-seals the signing secret under the current primary key, so the
//! target follows a key rotation. A Customer without `spec.delivery` has its
//! target removed. A suspended Customer keeps its target: a suspension
//! refuses API calls with its key, not the events its platforms send.
//!
//! The outcome is the `DeliveryReady` condition, published beside `Ready`.
//! A delivery that cannot be published (the signing Secret missing, its
//! field blank) does not stop the customer from calling the API, so `Ready`
//! stays as the key decides and `DeliveryReady=False` names the Secret and
//! the field. Such a failure leaves the last published target in place, as
//! a connection with a broken Secret keeps its stored credentials:
//! recreating a signing Secret pauses no delivery. The price is that when
//! the same edit also changed `spec.delivery.url`, events keep going to the
//! old URL, signed with the old secret, until the new Secret exists; to stop
//! delivery at once, remove `spec.delivery`.
//!
//! The signing secret lives only in a [`SecretData`] and a
//! [`DeliveryPlan`](tenancy::DeliveryPlan), both wiped on drop and redacted
//! in `Debug`; no message built here quotes it.

use hermes_crds::{ConditionStatus, Customer};
use hermes_state::CustomerId;
use hermes_state::tenancy::{self, DeliveryError, SecretData};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::api_key;
use super::status::Outcome;
use crate::conditions::reason;
use crate::context::Context;
use crate::{Error, Result};

/// What a reconcile publishes about a Customer's delivery.
#[derive(Debug)]
pub struct Published {
    /// The `DeliveryReady` condition; `None` when the spec asks for no delivery.
    pub outcome: Option<Outcome>,
    /// A store failure, to fail the reconcile with once the status is
    /// published, so it is retried with backoff.
    pub retry: Option<Error>,
}

impl Published {
    /// A delivery that could not be planned or written.
    fn failed(customer: &Customer, error: DeliveryError) -> Self {
        let outcome = customer
            .spec
            .delivery
            .is_some()
            .then(|| Outcome::not_ready(error.reason(), crate::error::chain(&error)));
        let retry = error.is_transient().then(|| Error::PublishDeliveryFailed(error));
        Self { outcome, retry }
    }
}

/// Makes the store's delivery target of customer `id` match the Customer's
/// `spec.delivery`, and says what to publish about it.
///
/// # Errors
///
/// [`Error::ReadSecretFailed`] when the API server fails to answer for the
/// signing Secret. Every other failure is reported in [`Published`]: a
/// missing Secret or field as a `DeliveryReady=False` outcome, a store
/// failure as an outcome and an error to retry.
pub async fn publish(
    customer: &Customer,
    ctx: &Context,
    namespace: &str,
    id: &CustomerId,
) -> Result<Published> {
    let secret = match &customer.spec.delivery {
        Some(delivery) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
            let name = &delivery.signing_secret_ref.name;
            let secret = api_key::read(&secrets, namespace, name).await?;
            match secret.as_ref().map(SecretData::from_secret).transpose() {
                Ok(data) => data,
                Err(error) => {
                    return Ok(Published {
                        outcome: Some(Outcome::not_ready(error.reason(), error.to_string())),
                        retry: None,
                    });
                }
            }
        }
        None => None,
    };

    let plan = match tenancy::plan_delivery(customer, secret.as_ref()) {
        Ok(plan) => plan,
        Err(error) => return Ok(Published::failed(customer, error)),
    };
    drop(secret);
    if let Err(error) = tenancy::apply_delivery(ctx.store.as_ref(), &ctx.keyring, id, plan.as_ref()).await {
        return Ok(Published::failed(customer, error));
    }

    Ok(Published {
        outcome: plan.map(|_| Outcome {
            status: ConditionStatus::True,
            reason: reason::TARGET_PUBLISHED,
            message: "inbound events are delivered to spec.delivery.url, signed with the current value \
                      of the signing Secret"
                .to_owned(),
        }),
        retry: None,
    })
}
