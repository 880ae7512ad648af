//! `hermes-server`: `serve` (the cluster deployment) and `dev` (a laptop).
//!
//! This file only wires: it reads the command line, builds the state each
//! mode needs, and runs the router until SIGTERM or ctrl-c, then drains for
//! at most [`DRAIN_TIMEOUT`] and writes the last usage to the ledger.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use hermes_crds::Platform;
use hermes_server::app::{self, AppState, KubeAdmin, LocalAdmin, NoAdmin, TenantAdmin};
use hermes_server::config::{Cli, Command, DevArgs, LogFormat, ServeArgs};
use hermes_server::{delivery, dev, meter};
use hermes_state::sql::SqlRepo;
use hermes_state::store::{EmbeddedStore, RedisStore, Store};
use hermes_state::vault::Keyring;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// How long requests in flight may finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQL database of `dev` and single-user mode when `DATABASE_URL` is unset.
const EMBEDDED_DATABASE_URL: &str = "sqlite::memory:";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let default_format = match cli.command {
        Command::Serve(_) => LogFormat::Json,
        Command::Dev(_) => LogFormat::Text,
    };
    init_logging(&cli.log_filter, cli.log_format.unwrap_or(default_format))?;

    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Dev(args) => run_dev(args).await,
    }
}

fn init_logging(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("RUST_LOG {filter:?} is not a valid filter"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber failed: {e}"))
}

/// `serve`: Redis and SQL, or single-user mode on embedded state.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.server.settings(args.listen)?;
    let keyring_text = args.server.keyring_text()?;

    let cluster_urls = args.redis_cluster_urls.join(",");
    let redis = RedisStore::from_env_urls(args.redis_url.as_deref(), Some(&cluster_urls))
        .await
        .context("connecting to Redis (REDIS_URL / REDIS_CLUSTER_URLS)")?;

    let app = match (redis, &args.api_key) {
        (Some(redis), _) => {
            let keyring = match keyring_text {
                Some(text) => Keyring::parse(&text).context("HERMES_ENCRYPTION_KEYS")?,
                None => bail!(
                    "set HERMES_ENCRYPTION_KEYS or HERMES_ENCRYPTION_KEYS_FILE: the credentials in Redis are sealed"
                ),
            };
            let Some(database_url) = &args.database_url else {
                bail!("set DATABASE_URL (mysql://… or sqlite://…) next to REDIS_URL / REDIS_CLUSTER_URLS");
            };
            let sql = SqlRepo::connect(database_url)
                .await
                .context("connecting to DATABASE_URL")?;
            let admin: Arc<dyn TenantAdmin> = match kube::Client::try_default().await {
                Ok(client) => Arc::new(KubeAdmin::new(client)),
                Err(e) => {
                    tracing::warn!(error = %e, "no Kubernetes API: connect and disconnect are refused");
                    Arc::new(NoAdmin)
                }
            };
            AppState::new(Arc::new(redis), sql, Arc::new(keyring), settings, admin)?
        }
        (None, Some(api_key)) => {
            let keyring = match keyring_text {
                Some(text) => Keyring::parse(&text).context("HERMES_ENCRYPTION_KEYS")?,
                None => Keyring::generate("local"),
            };
            let database_url = args.database_url.as_deref().unwrap_or(EMBEDDED_DATABASE_URL);
            let sql = SqlRepo::connect(database_url)
                .await
                .context("connecting to DATABASE_URL")?;
            let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new());
            let keyring = Arc::new(keyring);
            let admin = Arc::new(LocalAdmin::new(store.clone(), keyring.clone()));

            let connected = dev::apply_single_user(api_key, store.as_ref(), &sql, &admin, |var| {
                std::env::var(var).ok().filter(|value| !value.is_empty())
            })
            .await?;
            let platforms: Vec<&str> = connected.iter().map(|p| p.as_str()).collect();
            tracing::info!(customer = dev::LOCAL_CUSTOMER, platforms = ?platforms, "single-user mode");

            AppState::new(store, sql, keyring, settings, admin)?
        }
        (None, None) => bail!(
            "set REDIS_URL or REDIS_CLUSTER_URLS (with DATABASE_URL), or HERMES_API_KEY for single-user mode"
        ),
    };

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding HERMES_LISTEN {}", args.listen))?;
    run(app, listener).await
}

/// `dev`: the manifests of a folder on embedded state.
async fn run_dev(args: DevArgs) -> anyhow::Result<()> {
    let mut settings = args.server.settings(args.listen)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding --listen {}", args.listen))?;
    let address: SocketAddr = listener.local_addr()?;
    let base_url = format!("http://{address}");
    settings.public_url.get_or_insert_with(|| base_url.clone());

    let keyring = match args.server.keyring_text()? {
        Some(text) => Keyring::parse(&text).context("HERMES_ENCRYPTION_KEYS")?,
        None => Keyring::generate("dev"),
    };
    let keyring = Arc::new(keyring);
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new());
    let sql = SqlRepo::connect(EMBEDDED_DATABASE_URL)
        .await
        .context("opening the embedded SQLite")?;
    let admin = Arc::new(LocalAdmin::new(store.clone(), keyring.clone()));

    let manifests = dev::read_manifests(&args.manifests)?;
    let customers = dev::apply_manifests(&manifests, store.as_ref(), &sql, &admin).await?;
    tracing::info!(
        manifests = %args.manifests.display(),
        customers = customers.len(),
        connections = manifests.connections.len(),
        "manifests applied"
    );

    let mut whatsapp_customer = None;
    for customer in &customers {
        let states = store.connection_states(&customer.id).await?;
        if states.iter().any(|s| s.platform == Platform::Whatsapp && s.ready) {
            whatsapp_customer = Some(customer.id.clone());
            break;
        }
    }

    let app = AppState::new(store, sql, keyring, settings, admin)?;
    let banner = dev::banner(&base_url, &customers, whatsapp_customer.as_ref());
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(banner.as_bytes())?;
    stdout.flush()?;
    drop(stdout);

    run(app, listener).await
}

/// Serves until SIGTERM or ctrl-c, drains, then flushes usage.
async fn run(app: AppState, listener: TcpListener) -> anyhow::Result<()> {
    let stop_serving = CancellationToken::new();
    let stop_flushing = CancellationToken::new();
    let flusher = meter::spawn_flusher(app.clone(), stop_flushing.clone());
    // A delivery in flight at shutdown is abandoned; another replica (or
    // this one, restarted) takes it over after the claim timeout.
    let stop_delivering = CancellationToken::new();
    let deliverer = delivery::spawn(app.clone(), stop_delivering.clone());

    tracing::info!(address = %listener.local_addr()?, "listening");
    let router = app::router(app);
    let graceful = stop_serving.clone();
    let mut server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { graceful.cancelled().await })
            .await
    });

    let outcome = tokio::select! {
        result = &mut server => Some(result),
        () = shutdown_signal() => None,
    };
    let served = match outcome {
        Some(result) => result,
        None => {
            tracing::info!(drain_secs = DRAIN_TIMEOUT.as_secs(), "shutting down");
            stop_serving.cancel();
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
                Ok(result) => result,
                Err(_elapsed) => {
                    tracing::warn!("requests still in flight after the drain timeout; closing them");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };

    stop_delivering.cancel();
    if let Some(deliverer) = deliverer {
        deliverer.await.context("the delivery worker panicked")?;
    }
    stop_flushing.cancel();
    flusher.await.context("the usage flusher panicked")?;
    served
        .context("the server task panicked")?
        .context("serving failed")
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
