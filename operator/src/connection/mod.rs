//! The PlatformConnection controller.
//!
//! For each connection it waits until its Customer is usable, reads the
//! Secret it references, plans the state ([`tenancy::plan_connection`]),
//! and writes it only when the plan's fingerprint differs from the one in
//! status (or the stored ciphertext is missing or sealed by an older key).
//! A route another customer owns is reported as `RouteConflict` and never
//! overwritten; credentials that do not satisfy the platform are reported
//! as `CredentialsInvalid`, naming the fields, and the connection is
//! published as not ready so the server stops offering its tools.
//!
//! Deleting a connection removes its credentials, its published state and
//! the routes its status lists; the finalizer keeps the resource until that
//! succeeded. The decisions live in [`status`] (pure); this module does the I/O.

pub mod status;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use hermes_crds::{ConditionStatus, FINALIZER, Platform, PlatformConnection, PlatformConnectionStatus};
use hermes_state::CustomerId;
use hermes_state::tenancy::{self, ApplyError, ConnectionPlan, SecretData, route_from_key};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{self, Event as Finalized};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, debug, info_span, warn};

use self::status::Outcome;
use crate::conditions::reason;
use crate::context::Context;
use crate::telegram;
use crate::{Error, Result};

/// The controller's name in metrics and spans.
pub const CONTROLLER: &str = "platformconnection";

/// The field manager of status patches.
pub const FIELD_MANAGER: &str = "hermes-operator";

/// How often a connection is reconciled without a change: repairs state
/// lost behind the operator's back and retries a failed webhook registration.
pub const RESYNC: Duration = Duration::from_secs(600);

/// How often a refused duplicate checks whether its platform became free.
pub const DUPLICATE_RECHECK: Duration = Duration::from_secs(60);

/// Reconciles one PlatformConnection: adds the finalizer, then applies it,
/// or removes what it wrote when it is being deleted.
///
/// # Errors
///
/// Any step's [`Error`]; the caller retries with backoff.
pub async fn reconcile(connection: Arc<PlatformConnection>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let span =
        info_span!("reconcile", controller = CONTROLLER, object.ref = %ObjectRef::from_obj(&*connection));

    reconcile_inner(connection, &ctx).instrument(span).await
}

/// What the controller does after a failed reconcile: count it, log it once
/// with its causes, and retry after this object's next backoff delay.
pub fn error_policy(connection: Arc<PlatformConnection>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(CONTROLLER, error.metric_label());
    let delay = ctx.backoff.next_delay(&object_key(&connection));
    warn!(
        object.ref = %ObjectRef::from_obj(&*connection),
        error = %crate::error::chain(error),
        retry_in_s = delay.as_secs(),
        "platformconnection reconcile failed"
    );
    Action::requeue(delay)
}

/// The backoff key of a connection.
fn object_key(connection: &PlatformConnection) -> String {
    format!(
        "platformconnection/{}/{}",
        connection.namespace().unwrap_or_default(),
        connection.name_any()
    )
}

async fn reconcile_inner(connection: Arc<PlatformConnection>, ctx: &Context) -> Result<Action> {
    let namespace = connection
        .namespace()
        .ok_or(Error::MissingObjectKey("PlatformConnection"))?;
    ctx.caches_ready().await?;

    // A duplicate never received the finalizer, so it never wrote anything.
    let has_finalizer = connection.finalizers().iter().any(|f| f == FINALIZER);
    if !has_finalizer && let Some(holder) = holder_of(&connection, ctx) {
        if connection.meta().deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        return refuse_duplicate(&connection, ctx, &namespace, &holder).await;
    }

    let api: Api<PlatformConnection> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer::finalizer(&api, FINALIZER, connection, |event| async {
        match event {
            Finalized::Apply(connection) => apply(&connection, ctx, &namespace).await,
            Finalized::Cleanup(connection) => {
                let action = cleanup(&connection, ctx).await?;
                ctx.backoff.reset(&object_key(&connection));
                Ok(action)
            }
        }
    })
    .await
    .map_err(|error| Error::FinalizerFailed(Box::new(error)))
}

/// The older connection holding this one's customer and platform, if any.
fn holder_of(connection: &PlatformConnection, ctx: &Context) -> Option<String> {
    // Filtering first avoids cloning the whole cache on every reconcile.
    let namespace = connection.namespace();
    let siblings = ctx.connections.state_filter(|c| {
        c.namespace() == namespace
            && c.spec.customer_ref == connection.spec.customer_ref
            && c.spec.platform == connection.spec.platform
    });
    status::platform_holder(connection, &siblings)
}

/// Publishes `DuplicatePlatform` and writes nothing else.
async fn refuse_duplicate(
    connection: &PlatformConnection,
    ctx: &Context,
    namespace: &str,
    holder: &str,
) -> Result<Action> {
    let outcome = Outcome::not_ready(
        reason::DUPLICATE_PLATFORM,
        format!(
            "PlatformConnection {holder:?} already connects customer {:?} to {}; \
             a customer has one connection per platform",
            connection.spec.customer_ref, connection.spec.platform
        ),
    );
    publish_outcome(connection, ctx, namespace, &outcome).await?;
    Ok(Action::requeue(DUPLICATE_RECHECK))
}

/// Where an apply ended.
enum Applied {
    /// The Customer is not usable yet: retry with this object's backoff.
    Waiting,
    /// Done for now; the action says when to look again.
    Done(Action),
}

/// Makes the state match the connection. Waiting on the Customer backs off
/// per object; any other outcome resets the backoff.
async fn apply(connection: &PlatformConnection, ctx: &Context, namespace: &str) -> Result<Action> {
    let key = object_key(connection);
    match apply_steps(connection, ctx, namespace).await? {
        Applied::Waiting => Ok(Action::requeue(ctx.backoff.next_delay(&key))),
        Applied::Done(action) => {
            ctx.backoff.reset(&key);
            Ok(action)
        }
    }
}

async fn apply_steps(connection: &PlatformConnection, ctx: &Context, namespace: &str) -> Result<Applied> {
    if let Some(holder) = holder_of(connection, ctx) {
        return refuse_duplicate(connection, ctx, namespace, &holder)
            .await
            .map(Applied::Done);
    }
    let spec = &connection.spec;

    // 1. The Customer must be usable.
    let customer_ref = ObjectRef::new(&spec.customer_ref).within(namespace);
    let customer = ctx.customers.get(&customer_ref);
    if let Some(blocker) = status::customer_blocker(customer.as_deref(), &spec.customer_ref) {
        let outcome = Outcome::not_ready(reason::CUSTOMER_NOT_READY, blocker);
        publish_outcome(connection, ctx, namespace, &outcome).await?;
        return Ok(Applied::Waiting);
    }
    let Some(customer) = customer else {
        return Ok(Applied::Waiting);
    };

    // 2. The Secret's fields, and the plan.
    let secret = match read_secret(connection, ctx, namespace).await? {
        Ok(secret) => secret,
        Err(error) => {
            return plan_failed(connection, ctx, namespace, &error)
                .await
                .map(Applied::Done);
        }
    };
    let plan = match tenancy::plan_connection(&customer, connection, secret.as_ref()) {
        Ok(plan) => plan,
        Err(error) => {
            return plan_failed(connection, ctx, namespace, &error)
                .await
                .map(Applied::Done);
        }
    };
    drop(secret);

    // 3. Write only what changed.
    let fingerprint = plan.fingerprint(&ctx.keyring);
    let stored = ctx
        .store
        .get_credentials(&plan.customer, plan.platform)
        .await
        .map_err(Error::StateReadFailed);
    let stored = match stored {
        Ok(stored) => stored,
        Err(error) => {
            return state_unavailable(connection, ctx, namespace, error)
                .await
                .map(Applied::Done);
        }
    };
    let stored_under_primary = stored
        .as_ref()
        .is_some_and(|envelope| ctx.keyring.is_primary(envelope));
    let current = connection.status.as_ref();

    let mut desired = if status::needs_write(current, &fingerprint, stored_under_primary) {
        let previous: Vec<_> = current
            .map(|s| s.routes.iter().filter_map(|key| route_from_key(key)).collect())
            .unwrap_or_default();
        let applied =
            match tenancy::apply_connection(ctx.store.as_ref(), &ctx.keyring, &plan, &previous).await {
                Ok(applied) => applied,
                Err(error) => {
                    return apply_failed(connection, ctx, namespace, &plan, error)
                        .await
                        .map(Applied::Done);
                }
            };
        debug!(key_id = %applied.key_id, released = applied.released.len(), "connection written");

        let mut desired = ready_status(connection, &plan);
        desired.fingerprint = Some(applied.fingerprint);
        desired.key_id = Some(applied.key_id);
        desired
    } else {
        debug!("connection unchanged; nothing written");
        ready_status(connection, &plan)
    };

    // 4. The Telegram webhook, when this connection receives through one.
    desired.webhook = webhook(ctx, connection, &plan, current).await;

    publish_status(connection, ctx, namespace, desired, &ready_outcome(&plan)).await?;
    Ok(Applied::Done(Action::requeue(RESYNC)))
}

/// The status of a written (or unchanged) connection.
fn ready_status(connection: &PlatformConnection, plan: &ConnectionPlan) -> PlatformConnectionStatus {
    let mut desired = status::with_outcome(
        connection.status.as_ref(),
        connection.meta().generation,
        &ready_outcome(plan),
        Timestamp::now(),
    );
    desired.routes = plan.route_keys();
    desired
}

fn ready_outcome(plan: &ConnectionPlan) -> Outcome {
    let mode = if plan.sandbox() { "sandbox " } else { "" };
    Outcome::ready(format!("{mode}credentials stored for {}", plan.platform))
}

/// Registers the Telegram webhook when it is due, and returns what
/// `status.webhook` should say.
///
/// Due means: a non-sandbox Telegram connection, a public URL configured,
/// and a status that does not already record a registration of this URL.
async fn webhook(
    ctx: &Context,
    connection: &PlatformConnection,
    plan: &ConnectionPlan,
    current: Option<&PlatformConnectionStatus>,
) -> Option<String> {
    let previous = current.and_then(|s| s.webhook.clone());
    if plan.platform != Platform::Telegram || plan.sandbox() {
        return None;
    }
    let Some(webhooks) = &ctx.webhooks else {
        return previous;
    };
    let route = plan.routes.first()?;
    let registered = format!("{}{}", telegram::REGISTERED, webhooks.url_for(&route.id));
    if previous.as_deref() == Some(registered.as_str()) {
        return previous;
    }

    let outcome = webhooks.register(plan).await;
    if outcome.starts_with(telegram::FAILED) {
        ctx.publish(
            connection,
            Event {
                type_: EventType::Warning,
                reason: "WebhookRegistrationFailed".into(),
                note: Some(outcome.clone()),
                action: "RegisterWebhook".into(),
                secondary: None,
            },
        )
        .await;
    }
    Some(outcome)
}

/// Reads the referenced Secret's fields: `Ok(Ok(None))` when the spec names
/// no Secret or it does not exist, `Ok(Err(_))` when it is not UTF-8.
async fn read_secret(
    connection: &PlatformConnection,
    ctx: &Context,
    namespace: &str,
) -> Result<Result<Option<SecretData>, tenancy::TenancyError>> {
    let Some(reference) = &connection.spec.secret_ref else {
        return Ok(Ok(None));
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|source| Error::ReadSecretFailed {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
            source,
        })?;
    Ok(secret.as_ref().map(SecretData::from_secret).transpose())
}

/// Publishes a plan that failed (`CredentialsInvalid` or `InvalidSpec`),
/// with an Event, and marks the stored connection failed so the server
/// stops offering its tools. Waits for a change to the connection or Secret.
async fn plan_failed(
    connection: &PlatformConnection,
    ctx: &Context,
    namespace: &str,
    error: &tenancy::TenancyError,
) -> Result<Action> {
    let reason = status::plan_failure_reason(error);
    let message = error.to_string();

    if let Ok(customer) = CustomerId::new(&connection.spec.customer_ref)
        && let Err(error) = tenancy::mark_connection_failed(
            ctx.store.as_ref(),
            &customer,
            connection.spec.platform,
            connection.spec.sandbox,
            reason,
            &message,
        )
        .await
    {
        return state_unavailable(connection, ctx, namespace, Error::StateWriteFailed(error)).await;
    }

    let outcome = Outcome::not_ready(reason, message);
    publish_outcome(connection, ctx, namespace, &outcome).await?;
    Ok(Action::requeue(RESYNC))
}

/// Maps a failed write: a route conflict or sealing failure is published and
/// waits for a change; a store failure is published as `StateUnavailable`
/// and retried.
async fn apply_failed(
    connection: &PlatformConnection,
    ctx: &Context,
    namespace: &str,
    plan: &ConnectionPlan,
    error: ApplyError,
) -> Result<Action> {
    if error.is_transient() {
        return state_unavailable(connection, ctx, namespace, Error::StateWriteFailed(error)).await;
    }

    let reason = match &error {
        ApplyError::RouteConflict { .. } => reason::ROUTE_CONFLICT,
        _ => error.reason(),
    };
    let message = error.to_string();
    // Publishing the failure is itself a write of this connection's own state.
    if let Err(mark_error) = tenancy::mark_connection_failed(
        ctx.store.as_ref(),
        &plan.customer,
        plan.platform,
        plan.sandbox(),
        reason,
        &message,
    )
    .await
    {
        return state_unavailable(connection, ctx, namespace, Error::StateWriteFailed(mark_error)).await;
    }
    let outcome = Outcome::not_ready(reason, message);
    publish_outcome(connection, ctx, namespace, &outcome).await?;
    Ok(Action::requeue(RESYNC))
}

/// Publishes `StateUnavailable` (best effort) and fails the reconcile, so it
/// is retried with backoff.
async fn state_unavailable(
    connection: &PlatformConnection,
    ctx: &Context,
    namespace: &str,
    error: Error,
) -> Result<Action> {
    let outcome = Outcome::not_ready(reason::STATE_UNAVAILABLE, crate::error::chain(&error));
    if let Err(patch_error) = publish_outcome(connection, ctx, namespace, &outcome).await {
        debug!(error = %crate::error::chain(&patch_error), "cannot publish StateUnavailable");
    }
    Err(error)
}

/// Removes what the connection wrote: its credentials, its published state
/// and the routes its status lists (those its customer owns).
async fn cleanup(connection: &PlatformConnection, ctx: &Context) -> Result<Action> {
    if holder_of(connection, ctx).is_some() {
        // An older connection holds this customer and platform and its state.
        return Ok(Action::await_change());
    }
    let Ok(customer) = CustomerId::new(&connection.spec.customer_ref) else {
        // An invalid customer id was refused before anything was written.
        return Ok(Action::await_change());
    };
    let routes: Vec<_> = connection
        .status
        .as_ref()
        .map(|s| s.routes.iter().filter_map(|key| route_from_key(key)).collect())
        .unwrap_or_default();

    tenancy::remove_connection(ctx.store.as_ref(), &customer, connection.spec.platform, &routes)
        .await
        .map_err(Error::StateWriteFailed)?;

    ctx.publish(
        connection,
        Event {
            type_: EventType::Normal,
            reason: "Cleanup".into(),
            note: Some(format!(
                "removed the stored credentials and released {} route(s)",
                routes.len()
            )),
            action: "Cleanup".into(),
            secondary: None,
        },
    )
    .await;
    Ok(Action::await_change())
}

/// Publishes `outcome` as the `Ready` condition, keeping the other fields.
async fn publish_outcome(
    connection: &PlatformConnection,
    ctx: &Context,
    namespace: &str,
    outcome: &Outcome,
) -> Result<()> {
    let desired = status::with_outcome(
        connection.status.as_ref(),
        connection.meta().generation,
        outcome,
        Timestamp::now(),
    );
    publish_status(connection, ctx, namespace, desired, outcome).await
}

/// Patches the status when it differs from the current one, and publishes an
/// Event when the `Ready` condition's status or reason changed.
async fn publish_status(
    connection: &PlatformConnection,
    ctx: &Context,
    namespace: &str,
    desired: PlatformConnectionStatus,
    outcome: &Outcome,
) -> Result<()> {
    let current = connection.status.as_ref();
    if current == Some(&desired) {
        return Ok(());
    }
    let transitioned = status::ready_transitioned(current, &desired);

    let api: Api<PlatformConnection> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": PlatformConnection::api_version(&()),
        "kind": PlatformConnection::kind(&()),
        "status": desired,
    });
    api.patch_status(
        &connection.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::PatchStatusFailed)?;

    if transitioned {
        let type_ = match outcome.status {
            ConditionStatus::True => EventType::Normal,
            ConditionStatus::False | ConditionStatus::Unknown => EventType::Warning,
        };
        ctx.publish(
            connection,
            Event {
                type_,
                reason: outcome.reason.to_owned(),
                note: Some(outcome.message.clone()),
                action: "Reconcile".into(),
                secondary: None,
            },
        )
        .await;
    }
    Ok(())
}
