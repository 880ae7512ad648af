//! `hermes-operator`: runs the controllers (default), or prints the CRDs.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use hermes_operator::config::{Cli, Command, RedisTarget, RunConfig, SHUTDOWN_GRACE};
use hermes_operator::controllers::{self, Dependencies};
use hermes_operator::leader::{self, LeaseSettings};
use hermes_operator::metrics::Metrics;
use hermes_operator::probes::{self, Probes};
use hermes_operator::telegram::{self, Webhooks};
use hermes_operator::telemetry;
use hermes_state::sql::SqlRepo;
use hermes_state::store::{RedisStore, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crds) => print_crds(),
        Some(Command::Run) | None => run(cli.run).await,
    }
}

/// Writes the CRD YAML to stdout.
fn print_crds() -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(hermes_crds::crd_yaml().as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the CRDs to stdout failed")
}

async fn run(config: RunConfig) -> anyhow::Result<()> {
    telemetry::init(config.log_format);
    let keyring = Arc::new(config.keyring()?);
    let (lease_duration, lease_grace) = config.lease_timings()?;
    let public_url = config.public_url()?;
    let store = connect_store(&config).await?;
    let sql = SqlRepo::connect(config.database_url()?)
        .await
        .context("connecting to the SQL database failed")?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes failed (in-cluster config or KUBECONFIG)")?;
    info!(primary_key = %keyring.primary_id(), "keyring loaded");

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding HERMES_METRICS_LISTEN {} failed", config.metrics_listen))?;
    info!(address = %config.metrics_listen, "probes and metrics listening");
    let router = probes::router(Probes {
        metrics: metrics.clone(),
        store: store.clone(),
    });
    let probes_task = tokio::spawn(probes::serve(listener, router, shutdown.clone()));

    let http = telegram::http_client().context("building the HTTP client failed")?;
    let webhooks = public_url.map(|url| Webhooks::new(http, url, config.telegram_api_base.clone()));
    let identity = config.identity();
    let deps = Dependencies {
        client: client.clone(),
        store,
        sql,
        keyring,
        metrics: metrics.clone(),
        webhooks,
        identity: identity.clone(),
        concurrency: config.concurrency,
    };
    let settings = LeaseSettings {
        name: config.lease_name.clone(),
        namespace: config
            .lease_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned()),
        identity,
        duration_seconds: lease_duration,
        grace_seconds: lease_grace,
    };

    let led = leader::run_while_leading(
        client,
        settings,
        metrics,
        shutdown.clone(),
        SHUTDOWN_GRACE,
        |stop| controllers::run(deps, stop),
    )
    .await;

    shutdown.cancel();
    match probes_task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "the probe server failed"),
        Err(error) => warn!(%error, "the probe server task failed"),
    }
    led?;
    info!("stopped");
    Ok(())
}

/// Connects to the Redis or Redis Cluster the configuration names.
async fn connect_store(config: &RunConfig) -> anyhow::Result<Arc<dyn Store>> {
    let store = match config.redis_target()? {
        RedisTarget::Single(url) => RedisStore::connect_single(&url).await,
        RedisTarget::Cluster(seeds) => RedisStore::connect_cluster(&seeds).await,
    }
    .context("connecting to Redis failed")?;
    Ok(Arc::new(store))
}

/// Cancels `shutdown` on SIGTERM or ctrl-c.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM; only ctrl-c stops the operator");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        _ = ctrl_c => info!("ctrl-c received; shutting down"),
        () = terminate => info!("SIGTERM received; shutting down"),
    }
    shutdown.cancel();
}
