//! Wiring both controllers to their watches and running them together.
//!
//! Five watches feed them: Customers and PlatformConnections (each the main
//! resource of its controller, cached in a reflector both controllers read),
//! and Secrets, Customers and PlatformConnections again as triggers (see
//! [`triggers`]). Secrets are not cached: a trigger only
//! maps a Secret to the objects that read it, and the reconcile reads the
//! Secret itself when it needs it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hermes_crds::{Customer, PlatformConnection};
use hermes_state::sql::SqlRepo;
use hermes_state::store::Store;
use hermes_state::vault::Keyring;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Config;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::context::Context;
use crate::metrics::Metrics;
use crate::telegram::Webhooks;
use crate::{connection, customer, triggers};

/// How long a burst of triggers for one Customer is coalesced into one
/// reconcile: connections turning Ready one after another during a cold
/// start would otherwise reconcile their Customer once each.
const CUSTOMER_DEBOUNCE: Duration = Duration::from_millis(500);

/// What the controllers are built from.
#[derive(Clone)]
pub struct Dependencies {
    /// The Kubernetes API.
    pub client: Client,
    /// Runtime state.
    pub store: Arc<dyn Store>,
    /// The customers table.
    pub sql: SqlRepo,
    /// The credential keyring.
    pub keyring: Arc<Keyring>,
    /// Shared metrics.
    pub metrics: Arc<Metrics>,
    /// Registers Telegram webhooks, when a public URL is known.
    pub webhooks: Option<Webhooks>,
    /// This replica's identity, reported in Events.
    pub identity: String,
    /// How many objects each controller reconciles at once.
    pub concurrency: u16,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependencies")
            .field("store", &self.store)
            .field("keyring", &self.keyring)
            .field("identity", &self.identity)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Runs both controllers until `stop` is cancelled, then lets running
/// reconciles finish and returns.
pub async fn run(deps: Dependencies, stop: CancellationToken) {
    let client = deps.client.clone();
    let customers_api = Api::<Customer>::all(client.clone());
    let connections_api = Api::<PlatformConnection>::all(client.clone());
    let secrets_api = Api::<Secret>::all(client.clone());
    let watch = watcher::Config::default().any_semantic();

    let customer_controller = Controller::new(customers_api.clone(), watch.clone());
    let connection_controller = Controller::new(connections_api.clone(), watch.clone());
    let customers = customer_controller.store();
    let connections = connection_controller.store();

    let ctx = Arc::new(Context {
        recorder: Context::recorder(client.clone(), &deps.identity),
        client,
        store: deps.store,
        sql: deps.sql,
        keyring: deps.keyring,
        metrics: deps.metrics,
        customers: customers.clone(),
        connections: connections.clone(),
        backoff: Arc::new(Backoff::default()),
        webhooks: deps.webhooks,
    });

    let customer_run = {
        let customers_for_secrets = customers.clone();
        let customers_for_connections = customers.clone();
        customer_controller
            .watches(connections_api, watch.clone(), move |connection| {
                triggers::customer_to_refresh(&customers_for_connections.state(), &connection)
            })
            .watches(secrets_api.clone(), watch.clone(), move |secret| {
                triggers::customers_reading_secret(&customers_for_secrets.state(), &secret)
            })
            .with_config(
                Config::default()
                    .concurrency(deps.concurrency)
                    .debounce(CUSTOMER_DEBOUNCE),
            )
            .graceful_shutdown_on(stop.clone().cancelled_owned())
            .run(customer::reconcile, customer::error_policy, ctx.clone())
            .for_each(|result| async move { log_run_error(customer::CONTROLLER, result) })
    };

    let connection_run = {
        let connections_for_secrets = connections.clone();
        let connections_for_customers = connections.clone();
        connection_controller
            .watches(secrets_api, watch.clone(), move |secret| {
                triggers::connections_reading_secret(&connections_for_secrets.state(), &secret)
            })
            .watches(customers_api, watch, move |customer| {
                triggers::connections_of_customer(&connections_for_customers.state(), &customer)
            })
            .with_config(Config::default().concurrency(deps.concurrency))
            .graceful_shutdown_on(stop.clone().cancelled_owned())
            .run(connection::reconcile, connection::error_policy, ctx.clone())
            .for_each(|result| async move { log_run_error(connection::CONTROLLER, result) })
    };

    info!("controllers started");
    futures::join!(customer_run, connection_run);
    info!("controllers stopped");
}

/// Logs what the controller stream reports besides reconcile results.
///
/// Reconcile failures were logged by the error policy already. A failing
/// watch (RBAC, a missing CRD) is what an operator must act on; an object
/// gone before its reconcile ran is routine.
fn log_run_error<T, E: std::error::Error + 'static>(
    controller: &'static str,
    result: Result<T, kube::runtime::controller::Error<E, watcher::Error>>,
) {
    use kube::runtime::controller::Error as RunError;

    match result {
        Ok(_) | Err(RunError::ReconcilerFailed(..)) => {}
        Err(error @ RunError::QueueError(_)) => {
            warn!(controller, error = %crate::error::chain(&error), "watch failed; retrying");
        }
        Err(error @ (RunError::ObjectNotFound(_) | RunError::RunnerError(_))) => {
            debug!(controller, error = %crate::error::chain(&error), "controller event");
        }
    }
}
