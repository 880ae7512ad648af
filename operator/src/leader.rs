//! One active replica: the controllers run only while this process holds
//! the Lease.
//!
//! Every replica contends for the Lease (kube-lease-manager renews it
//! `grace` seconds before it expires). The holder runs the controllers; the
//! others wait. On shutdown the holder drains its reconciles and releases
//! the Lease, so a standby takes over at once instead of after expiry. A
//! holder that loses the Lease (it could not renew in time) stops its
//! controllers and returns [`LeaderError::LeadershipLost`]; the process
//! exits and its restart rejoins as a standby. Restarting is simpler to
//! reason about than re-entering leadership with half-torn-down watches.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// How long releasing the Lease may take on shutdown.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// How this replica contends for the Lease.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// Seconds the Lease stays valid after a renewal.
    pub duration_seconds: u64,
    /// Seconds before expiry the holder renews.
    pub grace_seconds: u64,
}

/// Why leading ended other than by a requested shutdown.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be read or created.
    #[error("preparing the lease {namespace}/{name} failed")]
    PrepareLeaseFailed {
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The lease manager's error.
        #[source]
        source: LeaseManagerError,
    },
    /// The lease manager stopped unexpectedly.
    #[error("the lease manager stopped")]
    LeaseManagerStopped,
    /// Another replica took the Lease while this one held it.
    #[error("leadership of lease {0} was lost")]
    LeadershipLost(String),
}

/// Runs `work` while this replica holds the Lease, until `shutdown` is
/// cancelled or leadership is lost.
///
/// `work` receives a token cancelled when it must stop; it should drain
/// and return. `drain` bounds how long that may take.
///
/// # Errors
///
/// [`LeaderError`] when the Lease cannot be used or was lost.
pub async fn run_while_leading<W, F>(
    client: Client,
    settings: LeaseSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    drain: Duration,
    work: W,
) -> Result<(), LeaderError>
where
    W: FnOnce(CancellationToken) -> F,
    F: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration_seconds)
        .with_grace(settings.grace_seconds)
        .build()
        .await
        .map_err(|source| LeaderError::PrepareLeaseFailed {
            namespace: settings.namespace.clone(),
            name: settings.name.clone(),
            source,
        })?;
    let (mut leading, manager_task) = manager.watch().await;
    let lease = format!("{}/{}", settings.namespace, settings.name);

    info!(lease = %lease, identity = %settings.identity, "waiting for leadership");
    let acquired = tokio::select! {
        acquired = wait_for(&mut leading, true) => acquired,
        () = shutdown.cancelled() => false,
    };
    if !acquired {
        return release(leading, manager_task, shutdown.is_cancelled()).await;
    }
    info!(lease = %lease, "leader acquired");
    metrics.set_leader(true);

    let stop = shutdown.child_token();
    let mut work = std::pin::pin!(work(stop.clone()));
    let lost = tokio::select! {
        () = &mut work => false,
        // Lost, or the manager stopped renewing: either way the Lease is not ours.
        _ = wait_for(&mut leading, false) => true,
        () = shutdown.cancelled() => false,
    };

    stop.cancel();
    if tokio::time::timeout(drain, &mut work).await.is_err() {
        warn!(
            drain_s = drain.as_secs(),
            "reconciles still running after the drain period; stopping anyway"
        );
    }
    metrics.set_leader(false);

    if lost {
        warn!(lease = %lease, "leadership lost");
        drop(leading);
        return Err(LeaderError::LeadershipLost(lease));
    }
    info!(lease = %lease, "releasing leadership");
    release(leading, manager_task, true).await
}

/// Waits until the lease state is `wanted`; false if the manager stopped first.
async fn wait_for(leading: &mut watch::Receiver<bool>, wanted: bool) -> bool {
    leading.wait_for(|state| *state == wanted).await.is_ok()
}

/// Closes the channel, which makes the manager release the Lease, and waits
/// (bounded) for it to finish. `requested` says whether a shutdown asked for this.
async fn release(
    leading: watch::Receiver<bool>,
    manager_task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    requested: bool,
) -> Result<(), LeaderError> {
    drop(leading);
    match tokio::time::timeout(RELEASE_TIMEOUT, manager_task).await {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(error))) => warn!(%error, "cannot release the lease; it expires on its own"),
        Ok(Err(error)) => warn!(%error, "the lease manager task failed"),
        Err(_) => warn!("releasing the lease timed out; it expires on its own"),
    }
    if requested {
        Ok(())
    } else {
        Err(LeaderError::LeaseManagerStopped)
    }
}
