//! The Customer controller.
//!
//! For each Customer it makes sure that exactly one API key authenticates
//! the customer: the key is found (or generated into an owned Secret),
//! indexed by its hash in the store with the customer's plan and whether it
//! is active, and recorded in the customers table. Suspending a customer
//! re-indexes its key as inactive on the next reconcile.
//!
//! Once the key is indexed, the Customer's inbound delivery target is made
//! to match `spec.delivery` and reported in a `DeliveryReady` condition
//! beside `Ready` (see [`delivery`]).
//!
//! A customer id is global, so a Customer whose name an older Customer in
//! another namespace already holds is refused with `DuplicateName` and
//! writes nothing. Deleting a Customer revokes its key, releases the routes
//! of its connections, purges its per-customer keys and soft-deletes its
//! row; the finalizer keeps the Customer until that has succeeded.
//!
//! The decisions live in [`status`] (pure); this module does the I/O.

pub mod api_key;
pub mod delivery;
pub mod status;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use hermes_crds::{ConditionStatus, Customer, CustomerStatus, FINALIZER, PlatformConnection, UsageStatus};
use hermes_state::sql::{CustomerRecord, SqlError};
use hermes_state::tenancy::{self, ApplyError, route_from_key};
use hermes_state::{ApiKeyHash, CustomerId};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{self, Event as Finalized};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, debug, info_span, warn};

use self::api_key::ApiKey;
use self::status::{NameClaim, Outcome};
use crate::conditions::{self, reason};
use crate::context::Context;
use crate::{Error, Result};

/// The controller's name in metrics and spans.
pub const CONTROLLER: &str = "customer";

/// The field manager of status patches.
pub const FIELD_MANAGER: &str = "hermes-operator";

/// How often a Customer is reconciled without a change: refreshes usage in
/// status and repairs state lost behind the operator's back.
pub const RESYNC: Duration = Duration::from_secs(600);

/// How often a refused duplicate checks whether its name became free.
pub const DUPLICATE_RECHECK: Duration = Duration::from_secs(60);

/// The usage counter the server increments per tool call.
pub const TOOL_CALLS_COUNTER: &str = "tool_calls";

/// Reconciles one Customer: adds the finalizer, then applies it, or cleans
/// up what it wrote when it is being deleted.
///
/// # Errors
///
/// Any step's [`Error`]; the caller retries with backoff.
pub async fn reconcile(customer: Arc<Customer>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let span =
        info_span!("reconcile", controller = CONTROLLER, object.ref = %ObjectRef::from_obj(&*customer));

    let key = object_key(&customer);
    let result = reconcile_inner(customer, &ctx).instrument(span).await;
    if result.is_ok() {
        ctx.backoff.reset(&key);
    }
    result
}

/// What the controller does after a failed reconcile: count it, log it once
/// with its causes, and retry after this object's next backoff delay.
pub fn error_policy(customer: Arc<Customer>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(CONTROLLER, error.metric_label());
    let delay = ctx.backoff.next_delay(&object_key(&customer));
    warn!(
        object.ref = %ObjectRef::from_obj(&*customer),
        error = %crate::error::chain(error),
        retry_in_s = delay.as_secs(),
        "customer reconcile failed"
    );
    Action::requeue(delay)
}

/// The backoff key of a Customer.
fn object_key(customer: &Customer) -> String {
    format!(
        "customer/{}/{}",
        customer.namespace().unwrap_or_default(),
        customer.name_any()
    )
}

async fn reconcile_inner(customer: Arc<Customer>, ctx: &Context) -> Result<Action> {
    let namespace = customer.namespace().ok_or(Error::MissingObjectKey("Customer"))?;
    ctx.caches_ready().await?;

    // A duplicate never received the finalizer, so it never wrote anything:
    // refuse it without touching the object beyond its status.
    let has_finalizer = customer.finalizers().iter().any(|f| f == FINALIZER);
    if !has_finalizer && let NameClaim::DuplicateOf { namespace: holder } = claim(&customer, ctx) {
        if customer.meta().deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        return refuse_duplicate(&customer, ctx, &namespace, &holder).await;
    }

    let api: Api<Customer> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer::finalizer(&api, FINALIZER, customer, |event| async {
        match event {
            Finalized::Apply(customer) => apply(&customer, ctx, &namespace).await,
            Finalized::Cleanup(customer) => cleanup(&customer, ctx, &namespace).await,
        }
    })
    .await
    .map_err(|error| Error::FinalizerFailed(Box::new(error)))
}

fn claim(customer: &Customer, ctx: &Context) -> NameClaim {
    // Only Customers of the same name matter; filtering first avoids
    // cloning the whole cache on every reconcile.
    let name = customer.name_any();
    status::name_claim(customer, &ctx.customers.state_filter(|c| c.name_any() == name))
}

/// Publishes `DuplicateName` and writes nothing else.
async fn refuse_duplicate(
    customer: &Customer,
    ctx: &Context,
    namespace: &str,
    holder: &str,
) -> Result<Action> {
    let outcome = Outcome::not_ready(
        reason::DUPLICATE_NAME,
        format!(
            "customer id {:?} is already used by the Customer in namespace {holder:?}; \
             customer ids are unique across namespaces",
            customer.name_any()
        ),
    );
    let desired = status::with_outcome(
        customer.status.as_ref(),
        customer.meta().generation,
        &outcome,
        Timestamp::now(),
    );
    publish_status(customer, ctx, namespace, desired, &outcome, None).await?;
    Ok(Action::requeue(DUPLICATE_RECHECK))
}

/// Makes the state match the Customer.
async fn apply(customer: &Customer, ctx: &Context, namespace: &str) -> Result<Action> {
    if let NameClaim::DuplicateOf { namespace: holder } = claim(customer, ctx) {
        return refuse_duplicate(customer, ctx, namespace, &holder).await;
    }
    let summary = match tenancy::customer_summary(customer) {
        Ok(summary) => summary,
        Err(error) => {
            let outcome = Outcome::not_ready(reason::INVALID_NAME, error.to_string());
            return publish_failure(customer, ctx, namespace, &outcome).await;
        }
    };
    let id = summary.id.clone();

    // 1. The key.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let (key, key_secret) = match api_key::resolve(customer, &secrets, namespace).await? {
        ApiKey::Found { key, secret } => (key, secret),
        ApiKey::Invalid(message) => {
            let outcome = Outcome::not_ready(reason::API_KEY_SECRET_INVALID, message);
            return publish_failure(customer, ctx, namespace, &outcome).await;
        }
    };
    let hash = ApiKeyHash::of(&key);
    drop(key);

    // 2. The index, then the table. The previous row names the key this
    // customer had before, which is revoked once the new one is indexed.
    let previous = match ctx.sql.customer(&id).await {
        Ok(previous) => previous,
        Err(error) => return state_unavailable(customer, ctx, namespace, Error::SqlFailed(error)).await,
    };
    if let Err(error) = tenancy::apply_customer(ctx.store.as_ref(), &summary, &hash).await {
        return apply_failed(customer, ctx, namespace, error).await;
    }
    if let Some(old) = previous
        .as_ref()
        .map(|row| &row.api_key_hash)
        .filter(|old| **old != hash)
        && let Err(error) = tenancy::revoke_api_key(ctx.store.as_ref(), &id, old).await
    {
        return apply_failed(customer, ctx, namespace, error).await;
    }

    let now = Timestamp::now();
    let record = CustomerRecord {
        id: id.clone(),
        plan: summary.plan,
        active: summary.active,
        email: customer.spec.email.clone(),
        api_key_hash: hash,
        requests_per_minute: summary.requests_per_minute,
        tool_calls_per_month: summary.tool_calls_per_month,
        created_at: previous.as_ref().map_or(now, |row| row.created_at),
        updated_at: now,
        deleted_at: None,
    };
    match ctx.sql.upsert_customer(&record).await {
        Ok(()) => {}
        Err(error @ SqlError::ApiKeyHashTaken { .. }) => {
            let outcome = Outcome::not_ready(reason::API_KEY_CONFLICT, error.to_string());
            return publish_failure(customer, ctx, namespace, &outcome).await;
        }
        Err(error) => return state_unavailable(customer, ctx, namespace, Error::SqlFailed(error)).await,
    }

    // 3. The delivery target. A store failure here is published in the
    // status first, then fails the reconcile so it is retried.
    let delivery = delivery::publish(customer, ctx, namespace, &id).await?;

    // 4. The status.
    let outcome = if customer.spec.suspended {
        Outcome::not_ready(
            reason::SUSPENDED,
            "the customer is suspended: API calls with its key are refused",
        )
    } else {
        Outcome {
            status: ConditionStatus::True,
            reason: reason::READY,
            message: "the API key is indexed and the customer is active".to_owned(),
        }
    };
    let mut desired = status::with_outcome(
        customer.status.as_ref(),
        customer.meta().generation,
        &outcome,
        now,
    );
    desired.api_key_secret = Some(key_secret);
    desired.connected_platforms = status::connected_platforms(
        &connections_of(ctx, namespace, id.as_str()),
        namespace,
        id.as_str(),
    );
    desired.usage = usage(ctx, &id, now).await.or(desired.usage);
    let desired = status::with_delivery(
        desired,
        customer.meta().generation,
        delivery.outcome.as_ref(),
        now,
    );
    publish_status(
        customer,
        ctx,
        namespace,
        desired,
        &outcome,
        delivery.outcome.as_ref(),
    )
    .await?;

    match delivery.retry {
        Some(error) => Err(error),
        None => Ok(Action::requeue(RESYNC)),
    }
}

/// Removes what the Customer wrote, if it holds its name.
async fn cleanup(customer: &Customer, ctx: &Context, namespace: &str) -> Result<Action> {
    if let NameClaim::DuplicateOf { .. } = claim(customer, ctx) {
        // Another Customer holds the id and everything stored under it.
        return Ok(Action::await_change());
    }
    let Ok(id) = CustomerId::new(customer.name_any()) else {
        // An invalid id was refused before anything was written.
        return Ok(Action::await_change());
    };

    // Every key hash this customer may have indexed: the one its row
    // records and the one its Secret holds now (the row may not have been
    // written yet when a first apply failed half-way).
    let mut hashes: Vec<ApiKeyHash> = Vec::new();
    let row = ctx.sql.customer(&id).await.map_err(Error::SqlFailed)?;
    hashes.extend(row.map(|row| row.api_key_hash));
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    if let ApiKey::Found { key, .. } = current_key(customer, &secrets, namespace).await? {
        let hash = ApiKeyHash::of(&key);
        if !hashes.contains(&hash) {
            hashes.push(hash);
        }
    }

    // The routes of this customer's connections, as their statuses list them.
    let routes: Vec<_> = connections_of(ctx, namespace, id.as_str())
        .iter()
        .filter_map(|c| c.status.as_ref())
        .flat_map(|s| s.routes.iter().filter_map(|key| route_from_key(key)))
        .collect();

    for hash in hashes.iter().skip(1) {
        tenancy::revoke_api_key(ctx.store.as_ref(), &id, hash)
            .await
            .map_err(Error::StateWriteFailed)?;
    }
    let purged = tenancy::remove_customer(ctx.store.as_ref(), &id, hashes.first(), &routes)
        .await
        .map_err(Error::StateWriteFailed)?;
    ctx.sql
        .soft_delete_customer(&id)
        .await
        .map_err(Error::SqlFailed)?;

    debug!(purged, routes = routes.len(), "customer state removed");
    ctx.publish(
        customer,
        Event {
            type_: EventType::Normal,
            reason: "Cleanup".into(),
            note: Some(format!(
                "revoked the API key, released {} route(s), removed {purged} state key(s) and soft-deleted the customer",
                routes.len()
            )),
            action: "Cleanup".into(),
            secondary: None,
        },
    )
    .await;
    Ok(Action::await_change())
}

/// The cached PlatformConnections of one customer.
fn connections_of(ctx: &Context, namespace: &str, customer: &str) -> Vec<Arc<PlatformConnection>> {
    ctx.connections
        .state_filter(|c| c.namespace().as_deref() == Some(namespace) && c.spec.customer_ref == customer)
}

/// The key the Customer's Secret holds now, without generating one.
async fn current_key(customer: &Customer, secrets: &Api<Secret>, namespace: &str) -> Result<ApiKey> {
    let (name, field) = match &customer.spec.api_key_secret_ref {
        Some(reference) => (reference.name.clone(), reference.key.clone()),
        None => (
            api_key::generated_secret_name(&customer.name_any()),
            api_key::GENERATED_KEY_FIELD.to_owned(),
        ),
    };
    let secret = api_key::read(secrets, namespace, &name).await?;
    Ok(api_key::key_from_reference(secret.as_ref(), &name, &field))
}

/// The current period's tool calls, or `None` when the store cannot say.
async fn usage(ctx: &Context, id: &CustomerId, now: Timestamp) -> Option<UsageStatus> {
    let period = now.strftime("%Y-%m").to_string();
    match ctx.store.usage(id, &period).await {
        Ok(counters) => Some(UsageStatus {
            tool_calls: counters.get(TOOL_CALLS_COUNTER).copied().unwrap_or(0),
            period,
        }),
        Err(error) => {
            debug!(%error, "usage unavailable; status keeps the last known usage");
            None
        }
    }
}

/// Publishes a failure that only a change to a resource can fix; no retry
/// until the Customer or a Secret changes (or the periodic resync).
async fn publish_failure(
    customer: &Customer,
    ctx: &Context,
    namespace: &str,
    outcome: &Outcome,
) -> Result<Action> {
    let desired = status::with_outcome(
        customer.status.as_ref(),
        customer.meta().generation,
        outcome,
        Timestamp::now(),
    );
    publish_status(customer, ctx, namespace, desired, outcome, None).await?;
    Ok(Action::requeue(RESYNC))
}

/// Maps a failed apply: conflicts are published and wait for a change;
/// store failures are published as `StateUnavailable` and retried.
async fn apply_failed(
    customer: &Customer,
    ctx: &Context,
    namespace: &str,
    error: ApplyError,
) -> Result<Action> {
    if error.is_transient() {
        return state_unavailable(customer, ctx, namespace, Error::StateWriteFailed(error)).await;
    }
    let outcome = Outcome::not_ready(error.reason(), error.to_string());
    publish_failure(customer, ctx, namespace, &outcome).await
}

/// Publishes `StateUnavailable` (best effort) and fails the reconcile, so it
/// is retried with backoff.
async fn state_unavailable(
    customer: &Customer,
    ctx: &Context,
    namespace: &str,
    error: Error,
) -> Result<Action> {
    let outcome = Outcome::not_ready(reason::STATE_UNAVAILABLE, crate::error::chain(&error));
    let desired = status::with_outcome(
        customer.status.as_ref(),
        customer.meta().generation,
        &outcome,
        Timestamp::now(),
    );
    if let Err(patch_error) = publish_status(customer, ctx, namespace, desired, &outcome, None).await {
        debug!(error = %crate::error::chain(&patch_error), "cannot publish StateUnavailable");
    }
    Err(error)
}

/// Patches the status when it differs from the current one, and publishes an
/// Event when the `Ready` condition's status or reason changed, and another
/// when the `DeliveryReady` condition of `delivery` did.
async fn publish_status(
    customer: &Customer,
    ctx: &Context,
    namespace: &str,
    desired: CustomerStatus,
    outcome: &Outcome,
    delivery: Option<&Outcome>,
) -> Result<()> {
    let current = customer.status.as_ref();
    if current == Some(&desired) {
        return Ok(());
    }
    let transitioned = status::ready_transitioned(current, &desired);
    let delivery_transitioned = status::transitioned(current, &desired, conditions::DELIVERY_READY);

    let api: Api<Customer> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": Customer::api_version(&()),
        "kind": Customer::kind(&()),
        "status": desired,
    });
    api.patch_status(
        &customer.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::PatchStatusFailed)?;

    if transitioned {
        let normal = outcome.status == ConditionStatus::True || outcome.reason == reason::SUSPENDED;
        ctx.publish(customer, event(outcome, normal, "Reconcile")).await;
    }
    if let Some(delivery) = delivery.filter(|_| delivery_transitioned) {
        let normal = delivery.status == ConditionStatus::True;
        ctx.publish(customer, event(delivery, normal, "PublishDelivery"))
            .await;
    }
    Ok(())
}

/// The Event announcing `outcome`.
fn event(outcome: &Outcome, normal: bool, action: &str) -> Event {
    Event {
        type_: if normal {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: outcome.reason.to_owned(),
        note: Some(outcome.message.clone()),
        action: action.into(),
        secondary: None,
    }
}
