//! Writing plans into a store, and removing what was written.
//!
//! Every function here is idempotent: repeating a call that succeeded
//! changes nothing, and repeating one that failed picks up where it
//! stopped. None writes a key of another customer, and none overwrites a
//! route another customer owns.

use hermes_crds::Platform;
use jiff::Timestamp;
use tracing::warn;

use super::{ConnectionPlan, Credentials, TenancyError};
use crate::store::{ConnectionState, CustomerSummary, Route, RouteClaim, Store, StoreError};
use crate::vault::Keyring;
use crate::{ApiKeyHash, CustomerId, keyspace};

/// The condition reason published with a ready connection.
const READY_REASON: &str = "Ready";

/// Why writing or removing state failed.
///
/// Each store step has its own variant, with the store's error as its
/// source. Messages never carry a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A route of the plan belongs to another customer; nothing was written.
    #[error("route {} is already owned by customer {owner}", keyspace::route(route))]
    RouteConflict {
        /// The contested route.
        route: Route,
        /// The customer owning it.
        owner: CustomerId,
    },

    /// The API key is already indexed for another customer; nothing was written.
    #[error("the API key is already in use by customer {owner}")]
    ApiKeyConflict {
        /// The customer the key is indexed for.
        owner: CustomerId,
    },

    /// Sealing, opening or parsing credentials failed.
    #[error(transparent)]
    Credentials(#[from] TenancyError),

    /// Claiming an inbound route failed.
    #[error("claiming route {} failed", keyspace::route(route))]
    ClaimRouteFailed {
        /// The route being claimed.
        route: Route,
        /// The store's error.
        #[source]
        source: StoreError,
    },

    /// Releasing an inbound route failed.
    #[error("releasing route {} failed", keyspace::route(route))]
    ReleaseRouteFailed {
        /// The route being released.
        route: Route,
        /// The store's error.
        #[source]
        source: StoreError,
    },

    /// Reading stored credentials failed.
    #[error("reading the stored credentials failed")]
    ReadCredentialsFailed(#[source] StoreError),

    /// Writing credentials failed.
    #[error("writing the credentials failed")]
    WriteCredentialsFailed(#[source] StoreError),

    /// Deleting credentials failed.
    #[error("deleting the credentials failed")]
    DeleteCredentialsFailed(#[source] StoreError),

    /// Publishing the connection state failed.
    #[error("publishing the connection state failed")]
    PublishStateFailed(#[source] StoreError),

    /// Deleting the connection state failed.
    #[error("deleting the connection state failed")]
    DeleteStateFailed(#[source] StoreError),

    /// Reading the API-key index failed.
    #[error("reading the API-key index failed")]
    ReadApiKeyFailed(#[source] StoreError),

    /// Writing the API-key index failed.
    #[error("writing the API-key index failed")]
    WriteApiKeyFailed(#[source] StoreError),

    /// Deleting from the API-key index failed.
    #[error("deleting the API-key index entry failed")]
    DeleteApiKeyFailed(#[source] StoreError),

    /// Purging the customer's keys failed.
    #[error("purging the customer's state failed")]
    PurgeFailed(#[source] StoreError),
}

impl ApplyError {
    /// A CamelCase reason for a `Ready=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::RouteConflict { .. } => "RouteConflict",
            ApplyError::ApiKeyConflict { .. } => "ApiKeyConflict",
            ApplyError::Credentials(error) => error.reason(),
            ApplyError::ClaimRouteFailed { .. }
            | ApplyError::ReleaseRouteFailed { .. }
            | ApplyError::ReadCredentialsFailed(_)
            | ApplyError::WriteCredentialsFailed(_)
            | ApplyError::DeleteCredentialsFailed(_)
            | ApplyError::PublishStateFailed(_)
            | ApplyError::DeleteStateFailed(_)
            | ApplyError::ReadApiKeyFailed(_)
            | ApplyError::WriteApiKeyFailed(_)
            | ApplyError::DeleteApiKeyFailed(_)
            | ApplyError::PurgeFailed(_) => "StateUnavailable",
        }
    }

    /// Whether retrying the same call later may succeed: true for store
    /// failures, false for conflicts and bad credentials, which need a change
    /// to a resource (or the keyring) first.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::RouteConflict { .. }
            | ApplyError::ApiKeyConflict { .. }
            | ApplyError::Credentials(_) => false,
            ApplyError::ClaimRouteFailed { .. }
            | ApplyError::ReleaseRouteFailed { .. }
            | ApplyError::ReadCredentialsFailed(_)
            | ApplyError::WriteCredentialsFailed(_)
            | ApplyError::DeleteCredentialsFailed(_)
            | ApplyError::PublishStateFailed(_)
            | ApplyError::DeleteStateFailed(_)
            | ApplyError::ReadApiKeyFailed(_)
            | ApplyError::WriteApiKeyFailed(_)
            | ApplyError::DeleteApiKeyFailed(_)
            | ApplyError::PurgeFailed(_) => true,
        }
    }
}

/// What [`apply_connection`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedConnection {
    /// The id of the key the credentials were sealed with.
    pub key_id: String,
    /// The routes the customer now owns for this connection.
    pub routes: Vec<Route>,
    /// Routes of the previous version of the connection that were released.
    pub released: Vec<Route>,
    /// The plan's [`fingerprint`](ConnectionPlan::fingerprint) under the keyring used.
    pub fingerprint: String,
}

/// Writes a connection plan: claims its routes, seals and stores its
/// credentials, publishes it as ready, then releases `previous_routes` the
/// plan no longer has (pass what the connection's status lists, or nothing).
///
/// # Guarantees
///
/// - Routes are claimed before anything else is written. If one belongs to
///   another customer, the routes this call newly claimed are released,
///   nothing else is written, and [`ApplyError::RouteConflict`] names the
///   route and its owner. Routes the customer already owned stay owned.
/// - If sealing or storing the credentials fails, the newly claimed routes
///   are released as well; credentials stored before stay as they were.
/// - A repeated call with the same plan rewrites the same state.
pub async fn apply_connection(
    store: &dyn Store,
    keyring: &Keyring,
    plan: &ConnectionPlan,
    previous_routes: &[Route],
) -> Result<AppliedConnection, ApplyError> {
    let claimed = claim_routes(store, &plan.customer, &plan.routes).await?;

    let key_id = match write_credentials(store, keyring, plan).await {
        Ok(key_id) => key_id,
        Err(error) => {
            release_claims(store, &plan.customer, &claimed).await;
            return Err(error);
        }
    };

    let ready = ConnectionState {
        platform: plan.platform,
        ready: true,
        sandbox: plan.sandbox(),
        reason: READY_REASON.to_owned(),
        last_error: None,
        updated_at: Timestamp::now(),
    };
    publish_state(store, &plan.customer, &ready).await?;

    let mut released = Vec::new();
    for stale in previous_routes
        .iter()
        .filter(|route| !plan.routes.contains(route))
    {
        if release_route(store, stale, &plan.customer).await? {
            released.push(stale.clone());
        }
    }

    Ok(AppliedConnection {
        key_id,
        routes: plan.routes.clone(),
        released,
        fingerprint: plan.fingerprint(keyring),
    })
}

/// Publishes a connection as not ready, with the reason and message of the
/// failure (say, a [`TenancyError`]'s [`reason`](TenancyError::reason) and
/// text), so the server stops offering its tools.
///
/// Stored credentials and routes are left as they are: a bad edit to a
/// Secret hides the connection's tools but loses nothing, and the next good
/// edit restores them. `message` must not hold a secret value; the errors
/// of this module never do.
pub async fn mark_connection_failed(
    store: &dyn Store,
    customer: &CustomerId,
    platform: Platform,
    sandbox: bool,
    reason: &str,
    message: &str,
) -> Result<(), ApplyError> {
    let failed = ConnectionState {
        platform,
        ready: false,
        sandbox,
        reason: reason.to_owned(),
        last_error: Some(message.to_owned()),
        updated_at: Timestamp::now(),
    };
    publish_state(store, customer, &failed).await
}

/// Removes what [`apply_connection`] wrote for one connection: its published
/// state (first, so its tools disappear at once), its credentials, and those
/// of `routes` the customer owns. Routes of other customers are untouched.
/// Removing what is already gone succeeds.
pub async fn remove_connection(
    store: &dyn Store,
    customer: &CustomerId,
    platform: Platform,
    routes: &[Route],
) -> Result<(), ApplyError> {
    store
        .delete_connection_state(customer, platform)
        .await
        .map_err(ApplyError::DeleteStateFailed)?;
    store
        .delete_credentials(customer, platform)
        .await
        .map_err(ApplyError::DeleteCredentialsFailed)?;
    for route in routes {
        release_route(store, route, customer).await?;
    }
    Ok(())
}

/// Indexes a customer's API key to its summary, so the server authorizes
/// with it at once; a suspended customer's summary (`active: false`) takes
/// effect on the next request.
///
/// # Errors
///
/// [`ApplyError::ApiKeyConflict`] when the key is indexed for another
/// customer (two Customers given the same key); the index is left as it is.
pub async fn apply_customer(
    store: &dyn Store,
    summary: &CustomerSummary,
    api_key_hash: &ApiKeyHash,
) -> Result<(), ApplyError> {
    let current = store
        .get_api_key(api_key_hash)
        .await
        .map_err(ApplyError::ReadApiKeyFailed)?;
    if let Some(current) = current
        && current.id != summary.id
    {
        return Err(ApplyError::ApiKeyConflict { owner: current.id });
    }

    store
        .put_api_key(api_key_hash, summary)
        .await
        .map_err(ApplyError::WriteApiKeyFailed)
}

/// Removes an API key from the index if it is indexed for `customer`, as
/// when a customer's key is replaced; true if it was removed. A key of
/// another customer is left alone.
pub async fn revoke_api_key(
    store: &dyn Store,
    customer: &CustomerId,
    api_key_hash: &ApiKeyHash,
) -> Result<bool, ApplyError> {
    let current = store
        .get_api_key(api_key_hash)
        .await
        .map_err(ApplyError::ReadApiKeyFailed)?;
    if current.is_none_or(|summary| &summary.id != customer) {
        return Ok(false);
    }

    store
        .delete_api_key(api_key_hash)
        .await
        .map_err(ApplyError::DeleteApiKeyFailed)?;
    Ok(true)
}

/// Removes everything of a customer: releases those of `routes` it owns,
/// revokes its API key (when given and indexed for it), and purges every
/// per-customer key (credentials, connection states, audit, usage,
/// streams). Returns how many per-customer keys were purged.
///
/// Nothing of another customer is touched. Safe to repeat.
pub async fn remove_customer(
    store: &dyn Store,
    customer: &CustomerId,
    api_key_hash: Option<&ApiKeyHash>,
    routes: &[Route],
) -> Result<u64, ApplyError> {
    for route in routes {
        release_route(store, route, customer).await?;
    }
    if let Some(hash) = api_key_hash {
        revoke_api_key(store, customer, hash).await?;
    }
    store
        .purge_customer(customer)
        .await
        .map_err(ApplyError::PurgeFailed)
}

/// Re-seals a connection's stored credentials under the keyring's primary
/// key if an older key sealed them; true if it rewrote them. Absent
/// credentials, or credentials already under the primary key, are left alone.
///
/// # Errors
///
/// [`ApplyError::Credentials`] with [`TenancyError::OpenFailed`] when no key
/// of the ring opens the stored envelope (the key that sealed it was
/// removed too early); the envelope is left as it is.
pub async fn reencrypt_if_needed(
    store: &dyn Store,
    keyring: &Keyring,
    customer: &CustomerId,
    platform: Platform,
) -> Result<bool, ApplyError> {
    let stored = store
        .get_credentials(customer, platform)
        .await
        .map_err(ApplyError::ReadCredentialsFailed)?;
    let Some(envelope) = stored else {
        return Ok(false);
    };

    let resealed = keyring
        .reseal(customer, platform, &envelope)
        .map_err(TenancyError::OpenFailed)?;
    let Some(resealed) = resealed else {
        return Ok(false);
    };

    store
        .put_credentials(customer, platform, &resealed)
        .await
        .map_err(ApplyError::WriteCredentialsFailed)?;
    Ok(true)
}

/// Opens the credentials stored for one connection, as the server does;
/// `None` when none are stored.
pub async fn load_credentials(
    store: &dyn Store,
    keyring: &Keyring,
    customer: &CustomerId,
    platform: Platform,
) -> Result<Option<Credentials>, ApplyError> {
    let stored = store
        .get_credentials(customer, platform)
        .await
        .map_err(ApplyError::ReadCredentialsFailed)?;
    match stored {
        Some(envelope) => Ok(Some(Credentials::open(keyring, customer, platform, &envelope)?)),
        None => Ok(None),
    }
}

/// Claims every route in order; returns those newly claimed (not those
/// already owned). On a conflict or a store error, releases what it newly
/// claimed before returning the error.
async fn claim_routes(
    store: &dyn Store,
    customer: &CustomerId,
    routes: &[Route],
) -> Result<Vec<Route>, ApplyError> {
    let mut claimed = Vec::new();
    for route in routes {
        let failure = match store.claim_route(route, customer).await {
            Ok(RouteClaim::Claimed) => {
                claimed.push(route.clone());
                continue;
            }
            Ok(RouteClaim::AlreadyOwned) => continue,
            Ok(RouteClaim::Conflict { owner }) => ApplyError::RouteConflict {
                route: route.clone(),
                owner,
            },
            Err(source) => ApplyError::ClaimRouteFailed {
                route: route.clone(),
                source,
            },
        };
        release_claims(store, customer, &claimed).await;
        return Err(failure);
    }
    Ok(claimed)
}

/// Undoes claims after a failure, best effort: the failure being reported
/// matters more, and a route left claimed is released by the next
/// successful removal or taken over by the next successful apply.
async fn release_claims(store: &dyn Store, customer: &CustomerId, claimed: &[Route]) {
    for route in claimed {
        if let Err(error) = store.release_route(route, customer).await {
            warn!(%error, route = %keyspace::route(route), customer = %customer, "cannot release a route claimed by a failed apply");
        }
    }
}

/// Seals the plan's credentials and stores them; returns the sealing key's id.
async fn write_credentials(
    store: &dyn Store,
    keyring: &Keyring,
    plan: &ConnectionPlan,
) -> Result<String, ApplyError> {
    let envelope = plan.credentials.seal(keyring, &plan.customer)?;
    store
        .put_credentials(&plan.customer, plan.platform, &envelope)
        .await
        .map_err(ApplyError::WriteCredentialsFailed)?;
    Ok(envelope.kid)
}

async fn release_route(store: &dyn Store, route: &Route, customer: &CustomerId) -> Result<bool, ApplyError> {
    store
        .release_route(route, customer)
        .await
        .map_err(|source| ApplyError::ReleaseRouteFailed {
            route: route.clone(),
            source,
        })
}

async fn publish_state(
    store: &dyn Store,
    customer: &CustomerId,
    state: &ConnectionState,
) -> Result<(), ApplyError> {
    store
        .put_connection_state(customer, state)
        .await
        .map_err(ApplyError::PublishStateFailed)
}
