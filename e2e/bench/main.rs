//! `hermes-bench`: how fast the server answers, and how much memory it takes.
//!
//! Speed and memory are measured here, never by timed tests. One run:
//!
//! 1. starts a mock Graph API in this process ([`mock_graph`]) and seeds one
//!    customer with a random id, its API key and a WhatsApp connection into
//!    Redis and SQL with the operator's tenancy code ([`tenant`]) — or, with
//!    `--state embedded`, writes them as manifests for `hermes-server dev`;
//! 2. for each concurrency and each [`Target`], starts a fresh server child
//!    process ([`process`]): the real `hermes-server serve`, or the ceiling,
//!    a no-op axum route served by this binary's `ceiling` subcommand
//!    ([`ceiling`]) on the same tokio runtime;
//! 3. drives it with one load generator ([`load`]) for a warm-up and the
//!    measured duration, reads where the CPU went in that window ([`cpu`])
//!    and the child's peak RSS, and stops it;
//! 4. prints a table per concurrency and the spec's targets ([`report`]).
//!
//! The exit status is non-zero only when setup fails (Redis, SQL, a server
//! that does not start); a missed performance target is reported, not
//! failed.

mod ceiling;
mod cpu;
mod load;
mod mock_graph;
mod process;
mod report;
mod target;
mod tenant;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hermes_state::sql::SqlRepo;
use hermes_state::store::RedisStore;
use hermes_state::vault::Keyring;

use crate::cpu::{CpuSample, CpuUsage};
use crate::load::LoadPlan;
use crate::mock_graph::MockGraph;
use crate::process::{HermesLaunch, HermesState, Launch, ServerKind, ServerProcess};
use crate::report::{Row, Setup};
use crate::target::{ConnectionMode, Target, TargetContext};
use crate::tenant::BenchTenant;

/// The Redis the server and the seeding use when `REDIS_URL` is unset.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The file name of the temporary SQLite database used when `DATABASE_URL` is unset.
const TEMP_SQLITE_FILE: &str = "hermes-bench.sqlite";

/// The log filter of the server child: warnings only, so logging costs what
/// it costs in production at that level.
const DEFAULT_SERVER_LOG: &str = "warn";

/// Benchmark of the Hermes server: requests per second, latency and peak
/// memory of a full MCP tool call and of a signed WhatsApp webhook, against
/// a no-op ceiling.
///
/// Build the server first, in the same profile: `cargo build --release -p
/// hermes-server`, then `cargo run --release -p hermes-e2e --bin hermes-bench`.
#[derive(Debug, Parser)]
#[command(name = "hermes-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    /// Run the ceiling server instead of the benchmark (the benchmark starts it itself).
    #[command(subcommand)]
    command: Option<Command>,

    /// Options of the benchmark.
    #[command(flatten)]
    run: RunArgs,
}

/// The subcommands: the benchmark's own child processes.
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the ceiling target: `POST /mcp` answers a fixed tool result, doing nothing else.
    Ceiling(CeilingArgs),
}

/// Options of `hermes-bench ceiling`.
#[derive(Debug, Args)]
struct CeilingArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
}

/// Options of the benchmark.
#[derive(Debug, Args)]
struct RunArgs {
    /// How long each run is measured, after the warm-up (e.g. `10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// How long each run loads the server before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,

    /// Concurrent workers (each with one request in flight), comma-separated: one table each.
    #[arg(long, default_value = "32,128", value_delimiter = ',')]
    concurrency: Vec<usize>,

    /// The targets to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        default_value = "full,webhook,ceiling",
        value_delimiter = ','
    )]
    targets: Vec<Target>,

    /// The seeded WhatsApp connection: `live` calls the mock Graph API,
    /// `sandbox` records the message in the outbox instead (for profiling).
    #[arg(long, value_enum, default_value = "live")]
    connection: ConnectionMode,

    /// Where `hermes-server` keeps its state: `redis` runs `serve` over
    /// Redis and SQL, as in a cluster; `embedded` runs `dev` over its
    /// in-process store and SQLite, which shows what Redis costs (profiling).
    #[arg(long, value_enum, default_value = "redis")]
    state: StateMode,

    /// The Redis the server reads and the customer is seeded into.
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL)]
    redis_url: String,

    /// The SQL database (`mysql://…` or `sqlite://…`). Default: a SQLite file
    /// in a temporary folder, removed at exit.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,

    /// The `hermes-server` binary. Default: next to this binary, so both come
    /// from the same profile of the same target dir.
    #[arg(long)]
    server_bin: Option<PathBuf>,

    /// `RUST_LOG` of the server child.
    #[arg(long, default_value = DEFAULT_SERVER_LOG)]
    server_log: String,

    /// An extra environment variable of the server child, `NAME=VALUE`
    /// (repeatable), e.g. `MALLOC_ARENA_MAX=2` or `TOKIO_WORKER_THREADS=1`.
    #[arg(long, value_parser = parse_env_pair)]
    server_env: Vec<(String, String)>,
}

/// Where `hermes-server` keeps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StateMode {
    /// `hermes-server serve` over Redis and SQL.
    Redis,
    /// `hermes-server dev` over its embedded store.
    Embedded,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Ceiling(args)) => ceiling::serve(args.listen).await,
        None => bench(cli.run).await,
    }
}

/// The benchmark: setup, every run, the report, and cleanup.
async fn bench(args: RunArgs) -> Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency takes positive numbers, e.g. 32,128");
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than zero");
    }
    hermes_e2e::install_crypto_provider();

    let server_bin = match &args.server_bin {
        Some(path) => path.clone(),
        None => process::sibling_binary("hermes-server")?,
    };
    let stale = process::check_server_binary(&server_bin)?;
    let workdir = tempfile::tempdir().context("creating a temporary folder")?;
    let graph = MockGraph::start().await?;
    let mut tenant = BenchTenant::generate(args.connection)?;
    // The webhook target signs with it; `--server-env` comes after, as given.
    let meta_app_secret = generate_meta_app_secret();
    let mut extra_env = vec![("HERMES_META_APP_SECRET".to_owned(), meta_app_secret.clone())];
    extra_env.extend(args.server_env.iter().cloned());
    let launch = |state| HermesLaunch {
        binary: server_bin.clone(),
        state,
        whatsapp_api_base: graph.base_url.clone(),
        log_filter: args.server_log.clone(),
        extra_env: extra_env.clone(),
    };

    if args.state == StateMode::Embedded {
        tenant.write_manifests(workdir.path())?;
        let hermes = launch(HermesState::Embedded {
            manifests: workdir.path().to_owned(),
        });
        return run_all(&args, &hermes, &graph, &tenant, &meta_app_secret, None, stale).await;
    }

    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", workdir.path().join(TEMP_SQLITE_FILE).display()),
    };
    let store = RedisStore::connect_single(&args.redis_url)
        .await
        .context("connecting to REDIS_URL (start a Redis, or point REDIS_URL at one)")?;
    let sql = SqlRepo::connect(&database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let keyring_text = tenant::generate_keyring_text();
    let keyring = Keyring::parse(&keyring_text).context("the generated keyring")?;
    tenant.seed(&store, &sql, &keyring).await?;

    let hermes = launch(HermesState::Redis {
        redis_url: args.redis_url.clone(),
        database_url: database_url.clone(),
        keyring_text,
    });
    let state = format!(
        "{}, {}",
        report::redacted(&args.redis_url),
        report::redacted(&database_url)
    );
    let outcome = tokio::select! {
        outcome = run_all(&args, &hermes, &graph, &tenant, &meta_app_secret, Some(state), stale) => outcome,
        // Dropping the runs kills the server child of the current one.
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };

    // Clean up whatever happened: the customer's keys, including its audit
    // log, usage counters, inbox and webhook dedup keys, would otherwise
    // stay in Redis.
    let cleaned = tenant.remove(&store, &sql).await;
    outcome?;
    cleaned
}

/// Every run, and the report. `state` describes Redis and SQL, when used.
async fn run_all(
    args: &RunArgs,
    hermes: &HermesLaunch,
    graph: &MockGraph,
    tenant: &BenchTenant,
    meta_app_secret: &str,
    state: Option<String>,
    stale: Option<String>,
) -> Result<()> {
    let context = TargetContext {
        api_key: tenant.api_key().to_owned(),
        phone_number_id: tenant.phone_number_id().to_owned(),
        meta_app_secret: meta_app_secret.to_owned(),
    };

    let setup = Setup {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        customer: tenant.id().to_string(),
        connection: args.connection,
        graph_url: graph.base_url.clone(),
        state,
        server_bin: hermes.binary.display().to_string(),
        server_log: args.server_log.clone(),
        server_env: args.server_env.clone(),
        warmup: args.warmup,
        duration: args.duration,
        stale_server: stale,
    };
    print(&report::setup(&setup))?;

    let client = load::client(args.concurrency.iter().copied().max().unwrap_or(1))?;
    let mut all_rows = Vec::new();
    for &concurrency in &args.concurrency {
        let plan = LoadPlan {
            concurrency,
            warmup: args.warmup,
            duration: args.duration,
        };
        let mut rows = Vec::new();
        for &target in &args.targets {
            rows.push(measure(target, plan, hermes, graph, &client, &context).await?);
        }
        print(&report::table(concurrency, &rows))?;
        all_rows.extend(rows);
    }
    print(&report::targets(&all_rows))
}

/// One run: a fresh server for `target`, loaded as `plan` says, then stopped.
async fn measure(
    target: Target,
    plan: LoadPlan,
    hermes: &HermesLaunch,
    graph: &MockGraph,
    client: &reqwest::Client,
    context: &TargetContext,
) -> Result<Row> {
    let launch = match target.server() {
        ServerKind::Hermes => Launch::Hermes(hermes),
        ServerKind::Ceiling => Launch::Ceiling,
    };
    let server = ServerProcess::start(&launch, client).await?;
    let idle = server.memory();

    // CPU and Graph API sends are read at the ends of the measured window,
    // on the same clock as the load generator's.
    let request = Arc::new(target.request(&server.base_url, context)?);
    let window = async {
        tokio::time::sleep(plan.warmup).await;
        let start = (CpuSample::take(server.pid()), graph.sends());
        tokio::time::sleep(plan.duration).await;
        let end = (CpuSample::take(server.pid()), graph.sends());
        (start, end)
    };
    let (result, (start, end)) = tokio::join!(load::run(client, target, request, plan), window);

    let peak = server.memory();
    server.stop().await?;
    Ok(Row {
        target,
        concurrency: plan.concurrency,
        result,
        idle,
        peak,
        cpu: CpuUsage::between(&start.0, &end.0),
        graph_sends: end.1 - start.1,
    })
}

/// A random `HERMES_META_APP_SECRET`, as hex.
fn generate_meta_app_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes report text to stdout.
fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// `NAME=VALUE`.
fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// `10s`, `500ms`, `1m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 1m"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        _ => Err(format!("{text:?}: the unit must be ms, s or m")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_ms_s_and_m() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn server_env_takes_name_equals_value() {
        assert_eq!(
            parse_env_pair("MALLOC_ARENA_MAX=2"),
            Ok(("MALLOC_ARENA_MAX".to_owned(), "2".to_owned()))
        );
        assert!(parse_env_pair("=2").is_err());
        assert!(parse_env_pair("MALLOC_ARENA_MAX").is_err());
    }

    #[test]
    fn the_defaults_measure_every_default_target_at_32_and_128() {
        let cli = Cli::try_parse_from(["hermes-bench"]).expect("no arguments parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.run.concurrency, [32, 128]);
        assert_eq!(cli.run.targets, [Target::Full, Target::Webhook, Target::Ceiling]);
        assert_eq!(cli.run.duration, Duration::from_secs(10));
    }

    #[test]
    fn the_ceiling_subcommand_takes_a_listen_address() {
        let cli = Cli::try_parse_from(["hermes-bench", "ceiling", "--listen", "127.0.0.1:9"])
            .expect("the subcommand parses");
        assert!(matches!(cli.command, Some(Command::Ceiling(_))));
    }
}
