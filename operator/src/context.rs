//! What every reconcile shares: the API client, the state backends, the
//! keyring, the caches of both resources, and the instruments.

use std::sync::Arc;

use hermes_crds::{Customer, PlatformConnection};
use hermes_state::sql::SqlRepo;
use hermes_state::store::Store;
use hermes_state::vault::Keyring;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};
use kube::runtime::reflector;
use kube::{Resource, ResourceExt};
use tracing::debug;

use crate::Error;
use crate::backoff::Backoff;
use crate::metrics::Metrics;
use crate::telegram::Webhooks;

/// The `reportingController` of every Event the operator publishes.
pub const REPORTING_CONTROLLER: &str = "hermes-operator";

/// The state shared by both controllers' reconciles.
#[derive(Clone)]
pub struct Context {
    /// The Kubernetes API.
    pub client: Client,
    /// Runtime state: credentials, routes, the API-key index.
    pub store: Arc<dyn Store>,
    /// The customers table.
    pub sql: SqlRepo,
    /// Seals credentials; its primary key id is part of every fingerprint.
    pub keyring: Arc<Keyring>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Counts and times reconciles.
    pub metrics: Arc<Metrics>,
    /// Every Customer, as the Customer controller's watch sees them.
    pub customers: reflector::Store<Customer>,
    /// Every PlatformConnection, as the connection controller's watch sees them.
    pub connections: reflector::Store<PlatformConnection>,
    /// Retry delays per object.
    pub backoff: Arc<Backoff>,
    /// Registers Telegram webhooks; `None` without `HERMES_PUBLIC_URL`.
    pub webhooks: Option<Webhooks>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("store", &self.store)
            .field("keyring", &self.keyring)
            .field("customers", &self.customers.len())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A recorder reporting as `identity` (the pod name).
    pub fn recorder(client: Client, identity: &str) -> Recorder {
        Recorder::new(
            client,
            Reporter {
                controller: REPORTING_CONTROLLER.to_owned(),
                instance: Some(identity.to_owned()),
            },
        )
    }

    /// Waits until both caches hold a complete list.
    ///
    /// The caches decide what is written (who holds a name or a platform,
    /// which routes a cleanup releases), so no reconcile acts on a cache
    /// still being filled.
    ///
    /// # Errors
    ///
    /// [`Error::CacheUnavailable`] when a cache's watch was dropped.
    pub async fn caches_ready(&self) -> crate::Result<()> {
        self.customers
            .wait_until_ready()
            .await
            .map_err(|_| Error::CacheUnavailable("Customer"))?;
        self.connections
            .wait_until_ready()
            .await
            .map_err(|_| Error::CacheUnavailable("PlatformConnection"))
    }

    /// Publishes an Event about `object`.
    ///
    /// Events are a courtesy to the humans reading `kubectl describe`: a
    /// failure to publish one is logged at debug and never fails the
    /// reconcile. `note` must not hold a secret value.
    pub async fn publish<K>(&self, object: &K, event: Event)
    where
        K: Resource<DynamicType = ()> + ResourceExt,
    {
        let reference = object.object_ref(&());
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            debug!(%error, reason = %event.reason, "cannot publish event");
        }
    }
}
