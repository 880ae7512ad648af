//! `cluster-e2e`: Hermes against a real Kubernetes cluster (kind, k3d, any
//! KUBECONFIG). CI has no cluster, so this is run by hand; `run.sh` next to
//! this file builds everything and runs it.
//!
//! The operator and the server run as local processes against a Redis this
//! program starts (or `REDIS_URL`) and `DATABASE_URL` (MySQL; SQLite in a
//! temporary directory when unset); only the CRDs and the test objects go
//! into the cluster. In order, it checks that:
//!
//! 1. the CRDs install and the operator starts and takes the Lease;
//! 2. every example connection becomes Ready;
//! 3. Redis holds ciphertexts (no example secret value anywhere) and the
//!    routes the connections report;
//! 4. each generated API key authenticates against `hermes-server serve`;
//! 5. changing a credentials Secret changes the stored ciphertext within seconds;
//! 6. deleting a Customer leaves no key of it in Redis;
//! 7. with two operators only the Lease holder reconciles, and the other
//!    takes over when the holder stops;
//! 8. a cold start over N generated Customers and connections (default
//!    1000, `--scale`) reaches all-Ready, reporting the time and the
//!    operator's peak RSS.
//!
//! Everything it creates lives in two namespaces named after the run,
//! deleted at the end (with the operator still running, so its finalizers
//! clean the state) unless `--keep` is given. The CRDs stay installed.

mod cluster;
mod processes;
mod redis_state;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use hermes_crds::{Customer, CustomerSpec, Plan, PlatformConnection, PlatformConnectionSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use kube::{Client, ResourceExt};

use crate::cluster::Examples;
use crate::processes::{Process, free_port, metric, wait_http_ok};
use crate::redis_state::RedisView;

/// `cluster-e2e`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "cluster-e2e",
    about = "Runs Hermes against the cluster KUBECONFIG names"
)]
struct Args {
    /// The repository's `manifests/` folder; the examples come from `examples/` in it.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests"))]
    manifests: PathBuf,

    /// Where `hermes-operator` and `hermes-server` are; defaults to this program's folder.
    #[arg(long, env = "HERMES_E2E_BIN_DIR")]
    bin_dir: Option<PathBuf>,

    /// A Redis to use; a `redis-server` on a free port is started when unset.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,

    /// The SQL database (`mysql://…`); SQLite in the run's folder when unset.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// How many Customers (each with one connection) the cold start creates.
    #[arg(long, default_value_t = 1000)]
    scale: usize,

    /// Skip the cold start.
    #[arg(long)]
    skip_scale: bool,

    /// The prefix of the run's namespaces.
    #[arg(long, default_value = "hermes-e2e")]
    namespace_prefix: String,

    /// How long the example connections may take to become Ready.
    #[arg(long, default_value_t = 180)]
    ready_timeout_seconds: u64,

    /// How long the cold start may take.
    #[arg(long, default_value_t = 3600)]
    scale_timeout_seconds: u64,

    /// API requests in flight while creating the cold-start objects.
    #[arg(long, default_value_t = 64)]
    parallel: usize,

    /// Leave the namespaces and their objects in place.
    #[arg(long)]
    keep: bool,
}

/// The Lease timings of the run's operators: short, so failover is quick.
const LEASE_DURATION_SECONDS: &str = "10";
const LEASE_GRACE_SECONDS: &str = "3";

/// How long a Secret change may take to reach Redis.
const SECRET_CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes a line of the report.
fn say(line: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout only loses the report; the checks still decide the exit code.
    let _ignored = writeln!(stdout, "{}", line.as_ref()).and_then(|()| stdout.flush());
}

/// Runs `step`, reporting its name, outcome and duration.
async fn step<T>(name: &str, step: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    say(format!("▶ {name}"));
    let started = Instant::now();
    let result = step.await;
    match &result {
        Ok(_) => say(format!("✔ {name} ({:.1} s)", started.elapsed().as_secs_f64())),
        Err(error) => say(format!("✘ {name}: {error:#}")),
    }
    result.with_context(|| format!("step failed: {name}"))
}

/// 32 random bytes from the kernel, as hex.
fn random_hex(bytes: usize) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut buffer = vec![0_u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut buffer))
        .context("reading /dev/urandom")?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// What every operator process of the run shares.
#[derive(Debug, Clone)]
struct Launch {
    bin_dir: PathBuf,
    logs: PathBuf,
    env: BTreeMap<String, String>,
}

/// Variables of the caller's environment that would change what the
/// children connect to.
const INHERITED_NOISE: &[&str] = &[
    "REDIS_CLUSTER_URLS",
    "HERMES_ENCRYPTION_KEYS_FILE",
    "HERMES_PUBLIC_URL",
    "HERMES_METRICS_LISTEN",
    "HERMES_LISTEN",
    "POD_NAME",
];

/// A running operator and where its metrics are.
#[derive(Debug)]
struct Operator {
    process: Process,
    metrics_url: String,
}

impl Launch {
    /// Starts an operator named `name`, waits until it is ready.
    async fn operator(&self, name: &str, http: &reqwest::Client) -> anyhow::Result<Operator> {
        let port = free_port()?;
        let mut env = self.env.clone();
        env.insert("HERMES_METRICS_LISTEN".into(), format!("127.0.0.1:{port}"));
        env.insert("POD_NAME".into(), name.into());
        let mut process = Process::spawn(
            name,
            &self.bin_dir.join("hermes-operator"),
            &[],
            &env,
            INHERITED_NOISE,
            &self.logs,
        )?;
        wait_http_ok(http, &format!("http://127.0.0.1:{port}/readyz"), &mut process).await?;
        Ok(Operator {
            process,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
        })
    }

    /// Starts `hermes-server serve` and returns it with its base URL.
    async fn server(&self, http: &reqwest::Client) -> anyhow::Result<(Process, String)> {
        let port = free_port()?;
        let mut env = self.env.clone();
        env.insert("HERMES_LISTEN".into(), format!("127.0.0.1:{port}"));
        env.insert(
            "HERMES_ALLOWED_HOSTS".into(),
            format!("127.0.0.1:{port},127.0.0.1,localhost"),
        );
        let mut process = Process::spawn(
            "server",
            &self.bin_dir.join("hermes-server"),
            &["serve"],
            &env,
            INHERITED_NOISE,
            &self.logs,
        )?;
        let base = format!("http://127.0.0.1:{port}");
        wait_http_ok(http, &format!("{base}/readyz"), &mut process).await?;
        Ok((process, base))
    }
}

impl Operator {
    async fn metrics(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        let response = http.get(&self.metrics_url).send().await?.error_for_status()?;
        Ok(response.text().await?)
    }

    /// Reconciles this operator ran, both controllers together.
    async fn reconciles(&self, http: &reqwest::Client) -> anyhow::Result<f64> {
        let text = self.metrics(http).await?;
        Ok(metric(
            &text,
            "hermes_operator_reconciles_total",
            "controller=\"customer\"",
        ) + metric(
            &text,
            "hermes_operator_reconciles_total",
            "controller=\"platformconnection\"",
        ))
    }

    async fn is_leader(&self, http: &reqwest::Client) -> anyhow::Result<bool> {
        Ok(metric(&self.metrics(http).await?, "hermes_operator_leader", "") == 1.0)
    }

    /// Waits until this operator holds the Lease.
    async fn wait_leader(&mut self, http: &reqwest::Client, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while !self.is_leader(http).await? {
            self.process.check_running()?;
            ensure!(
                started.elapsed() < timeout,
                "{} did not take the Lease within {timeout:?}",
                self.process.name
            );
            tokio::time::sleep(cluster::POLL).await;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let run = random_hex(3)?;
    let namespace = format!("{}-{run}", args.namespace_prefix);
    let scale_namespace = format!("{}-scale-{run}", args.namespace_prefix);
    let work = std::env::temp_dir().join(format!("hermes-cluster-e2e-{run}"));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    say(format!(
        "run {run}: namespaces {namespace} and {scale_namespace}; logs in {}",
        work.display()
    ));

    let client = Client::try_default()
        .await
        .context("connecting to the cluster (KUBECONFIG or in-cluster config)")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this program lives in a folder")?
            .to_path_buf(),
    };
    for binary in ["hermes-operator", "hermes-server"] {
        ensure!(
            bin_dir.join(binary).exists(),
            "{} not found in {}: build it (run.sh does) or pass --bin-dir",
            binary,
            bin_dir.display()
        );
    }

    // State: Redis and SQL on this machine.
    let (_redis_process, redis_url) = match &args.redis_url {
        Some(url) => (None, url.clone()),
        None => {
            let (process, url) = processes::start_redis(&work, &work).await?;
            (Some(process), url)
        }
    };
    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            say("DATABASE_URL is not set: using SQLite in the run folder (set it to test MySQL)");
            format!("sqlite://{}", work.join("hermes.db").display())
        }
    };
    let launch = Launch {
        bin_dir,
        logs: work.clone(),
        env: BTreeMap::from([
            ("REDIS_URL".into(), redis_url.clone()),
            ("DATABASE_URL".into(), database_url),
            (
                "HERMES_ENCRYPTION_KEYS".into(),
                format!("e2e{run}:{}", random_hex(32)?),
            ),
            ("HERMES_LEASE_NAME".into(), format!("hermes-e2e-{run}")),
            ("POD_NAMESPACE".into(), namespace.clone()),
            (
                "HERMES_LEASE_DURATION_SECONDS".into(),
                LEASE_DURATION_SECONDS.into(),
            ),
            ("HERMES_LEASE_GRACE_SECONDS".into(), LEASE_GRACE_SECONDS.into()),
            ("HERMES_LOG_FORMAT".into(), "text".into()),
            ("RUST_LOG".into(), "info".into()),
        ]),
    };
    let redis = RedisView::connect(&redis_url).await?;
    let examples = Examples::load(&args.manifests.join("examples"), &namespace)?;
    let ready_timeout = Duration::from_secs(args.ready_timeout_seconds);

    step("install the CRDs", cluster::install_crds(&client)).await?;
    let customer_names: Vec<String> = examples.customers.iter().map(ResourceExt::name_any).collect();
    step(
        "the example customer ids are free",
        cluster::check_names_free(&client, &customer_names, &namespace),
    )
    .await?;
    cluster::ensure_namespace(&client, &namespace).await?;

    let first = step("the operator starts and takes the Lease", async {
        let mut operator = launch.operator("operator-1", &http).await?;
        operator.wait_leader(&http, Duration::from_secs(60)).await?;
        Ok(operator)
    })
    .await?;
    let mut operator = Some(first);

    let run = Run {
        args: &args,
        client: &client,
        http: &http,
        launch: &launch,
        redis: &redis,
        examples: &examples,
        namespace: &namespace,
        scale_namespace: &scale_namespace,
        ready_timeout,
    };
    let outcome = run.checks(&mut operator).await;
    // Cleanup needs a running operator: its finalizers hold every object.
    if operator.is_none() && !args.keep {
        match launch.operator("operator-cleanup", &http).await {
            Ok(started) => operator = Some(started),
            Err(error) => say(format!("cannot start an operator for the cleanup: {error:#}")),
        }
    }

    if args.keep {
        say(format!(
            "--keep: leaving {namespace} and {scale_namespace} in place"
        ));
    } else {
        let cleanup = step("clean up (the operator removes what it wrote)", async {
            cluster::delete_namespaces(
                &client,
                &[namespace.clone(), scale_namespace.clone()],
                Duration::from_secs(1800),
            )
            .await
        })
        .await;
        if let Err(error) = cleanup {
            say(format!("cleanup incomplete: {error:#}"));
        }
    }
    if let Some(operator) = operator {
        operator.process.terminate().await?;
    }
    outcome?;
    say("all checks passed");
    Ok(())
}

/// What the checks share.
struct Run<'a> {
    args: &'a Args,
    client: &'a Client,
    http: &'a reqwest::Client,
    launch: &'a Launch,
    redis: &'a RedisView,
    examples: &'a Examples,
    namespace: &'a str,
    scale_namespace: &'a str,
    ready_timeout: Duration,
}

impl Run<'_> {
    /// Every check after the operator started. `operator` holds the running
    /// operator; the lease check hands it over to a second one, the cold start
    /// replaces it with a fresh one.
    async fn checks(&self, operator: &mut Option<Operator>) -> anyhow::Result<()> {
        let Run {
            args,
            client,
            http,
            launch,
            redis,
            examples,
            namespace,
            scale_namespace,
            ready_timeout,
        } = *self;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let customers: Api<Customer> = Api::namespaced(client.clone(), namespace);
        let connections: Api<PlatformConnection> = Api::namespaced(client.clone(), namespace);

        // 2. Every example connection becomes Ready.
        let ready = step("every example connection becomes Ready", async {
            cluster::apply_all(&secrets, examples.secrets.clone(), 8).await?;
            cluster::apply_all(&customers, examples.customers.clone(), 8).await?;
            cluster::apply_all(&connections, examples.connections.clone(), 8).await?;
            let names: BTreeSet<String> = examples.connections.iter().map(ResourceExt::name_any).collect();
            let ready = cluster::wait_connections_ready(client, namespace, &names, ready_timeout).await?;
            say(format!("  {} connections Ready", ready.len()));
            Ok(ready)
        })
        .await?;

        // 3. Ciphertexts and routes, never plaintext.
        step("Redis holds ciphertexts, the routes, and no plaintext", async {
            let dump = redis.dump().await?;
            let leaks = redis_state::keys_holding(&dump, &examples.secret_values());
            ensure!(
                leaks.is_empty(),
                "plaintext secret values found in Redis keys {leaks:?}"
            );

            for connection in &ready {
                let customer = &connection.spec.customer_ref;
                let key = format!("creds:{{{customer}}}:{}", connection.spec.platform);
                let value = redis
                    .get(&key)
                    .await?
                    .with_context(|| format!("{key} is missing"))?;
                let envelope: serde_json::Value =
                    serde_json::from_str(&value).with_context(|| format!("{key} is not JSON"))?;
                for field in ["v", "kid", "nonce", "ct"] {
                    ensure!(
                        !envelope[field].is_null(),
                        "{key} lacks the envelope field {field}"
                    );
                }
                let status = connection.status.clone().unwrap_or_default();
                for route in &status.routes {
                    let owner = redis.get(route).await?;
                    ensure!(
                        owner.as_deref() == Some(customer.as_str()),
                        "route {route} is owned by {owner:?}, not {customer}"
                    );
                }
                if let Some(whatsapp) = &connection.spec.whatsapp {
                    let route = format!("wa_phone_id:{}", whatsapp.phone_number_id);
                    ensure!(
                        status.routes.contains(&route),
                        "{} does not report {route}",
                        connection.name_any()
                    );
                }
            }
            say(format!(
                "  {} keys scanned, {} credentials checked",
                dump.len(),
                ready.len()
            ));
            Ok(())
        })
        .await?;

        // 4. The generated API keys authenticate.
        let (server, base) = step("the server starts", launch.server(http)).await?;
        let server_result = step("each generated API key authenticates", async {
            for customer in &examples.customers {
                let name = customer.name_any();
                let customer = cluster::wait_customer_ready(client, namespace, &name, ready_timeout).await?;
                let secret_name = customer
                    .status
                    .and_then(|s| s.api_key_secret)
                    .with_context(|| format!("Customer {name} reports no apiKeySecret"))?;
                let secret = secrets.get(&secret_name).await?;
                let key = secret
                    .data
                    .and_then(|data| {
                        data.get("apiKey")
                            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    })
                    .with_context(|| format!("Secret {secret_name} has no apiKey"))?;
                ensure!(
                    key.starts_with("hk_"),
                    "the generated key of {name} does not look like hk_…"
                );

                let response = http
                    .get(format!("{base}/api/connections"))
                    .bearer_auth(&key)
                    .send()
                    .await?;
                let status = response.status();
                let body = response.text().await?;
                ensure!(
                    status.is_success(),
                    "GET /api/connections as {name} answered {status}: {body}"
                );
                let expected: Vec<&str> = ready
                    .iter()
                    .filter(|c| c.spec.customer_ref == name)
                    .map(|c| c.spec.platform.as_str())
                    .collect();
                for platform in expected {
                    ensure!(
                        body.contains(platform),
                        "/api/connections of {name} does not list {platform}: {body}"
                    );
                }
            }
            let refused = http
                .get(format!("{base}/api/connections"))
                .bearer_auth("hk_not-a-real-key-000000000000000000000000000")
                .send()
                .await?
                .status();
            ensure!(
                refused == reqwest::StatusCode::UNAUTHORIZED,
                "an unknown key answered {refused}, not 401"
            );
            Ok(())
        })
        .await;
        server.terminate().await?;
        server_result?;

        // 5. A Secret change reaches Redis within seconds.
        step(
            "a Secret change re-encrypts the stored credentials within seconds",
            async {
                let connection = ready
                    .iter()
                    .find(|c| c.spec.secret_ref.is_some() && c.spec.whatsapp.is_some())
                    .or_else(|| ready.iter().find(|c| c.spec.secret_ref.is_some()))
                    .context("no example connection reads a Secret")?;
                let secret_name = connection
                    .spec
                    .secret_ref
                    .as_ref()
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                let key = format!(
                    "creds:{{{}}}:{}",
                    connection.spec.customer_ref, connection.spec.platform
                );
                let before = redis.get(&key).await?;

                let mut changed = examples
                    .secrets
                    .iter()
                    .find(|s| s.name_any() == secret_name)
                    .cloned()
                    .context("the connection's Secret is among the examples")?;
                let new_value = format!("rotated-{}", random_hex(8)?);
                let data = changed.string_data.get_or_insert_with(Default::default);
                let field = data.keys().next().cloned().context("the Secret has fields")?;
                data.insert(field, new_value.clone());
                let started = Instant::now();
                cluster::apply(&secrets, &changed).await?;

                loop {
                    let now = redis.get(&key).await?;
                    if now != before {
                        say(format!(
                            "  ciphertext changed {:.1} s after the Secret",
                            started.elapsed().as_secs_f64()
                        ));
                        break;
                    }
                    ensure!(
                        started.elapsed() < SECRET_CHANGE_TIMEOUT,
                        "{key} unchanged {SECRET_CHANGE_TIMEOUT:?} after the Secret changed"
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                let leaks = redis_state::keys_holding(&redis.dump().await?, &[new_value]);
                ensure!(leaks.is_empty(), "the new plaintext is in Redis keys {leaks:?}");
                Ok(())
            },
        )
        .await?;

        // 6. Deleting a Customer leaves nothing of it.
        step("deleting a Customer leaves no key of it in Redis", async {
            let victim = examples
                .customers
                .iter()
                .map(ResourceExt::name_any)
                .min_by_key(|name| ready.iter().filter(|c| &c.spec.customer_ref == name).count())
                .context("the examples have customers")?;
            let before = redis_state::keys_of_customer(&redis.dump().await?, &victim);
            ensure!(!before.is_empty(), "Customer {victim} had no keys to begin with");

            customers.delete(&victim, &DeleteParams::default()).await?;
            let started = Instant::now();
            while customers.get_opt(&victim).await?.is_some() {
                ensure!(
                    started.elapsed() < ready_timeout,
                    "Customer {victim} was not deleted within {ready_timeout:?}"
                );
                tokio::time::sleep(cluster::POLL).await;
            }
            let left = redis_state::keys_of_customer(&redis.dump().await?, &victim);
            ensure!(
                left.is_empty(),
                "keys of deleted Customer {victim} remain: {left:?}"
            );
            say(format!("  {} keys of {victim} removed", before.len()));

            // Its connections go too; their cleanup must not bring anything back.
            let theirs: Vec<String> = ready
                .iter()
                .filter(|c| c.spec.customer_ref == victim)
                .map(ResourceExt::name_any)
                .collect();
            for name in &theirs {
                connections.delete(name, &DeleteParams::default()).await?;
            }
            for name in &theirs {
                while connections.get_opt(name).await?.is_some() {
                    ensure!(
                        started.elapsed() < ready_timeout,
                        "connection {name} was not deleted"
                    );
                    tokio::time::sleep(cluster::POLL).await;
                }
            }
            let left = redis_state::keys_of_customer(&redis.dump().await?, &victim);
            ensure!(left.is_empty(), "keys of {victim} reappeared: {left:?}");
            Ok(())
        })
        .await?;

        // 7. One active replica.
        step("with two operators only the Lease holder reconciles", async {
            let holder = operator.take().context("an operator runs")?;
            let mut standby = launch.operator("operator-2", http).await?;
            // Give the standby time to contend; it must stay a standby.
            tokio::time::sleep(Duration::from_secs(5)).await;
            ensure!(
                holder.is_leader(http).await?,
                "operator-1 lost the Lease to a newcomer"
            );
            ensure!(!standby.is_leader(http).await?, "both operators claim the Lease");

            let leader_before = holder.reconciles(http).await?;
            let probe = probe_customer("lease-probe-1", namespace);
            cluster::apply(&customers, &probe).await?;
            cluster::wait_customer_ready(client, namespace, &probe.name_any(), ready_timeout).await?;
            let leader_after = holder.reconciles(http).await?;
            ensure!(
                leader_after > leader_before,
                "the leader did not reconcile the probe Customer"
            );
            ensure!(
                standby.reconciles(http).await? == 0.0,
                "the standby reconciled while not holding the Lease"
            );

            // The holder stops: it releases the Lease and the standby takes over.
            let handover = Instant::now();
            holder.process.terminate().await?;
            standby.wait_leader(http, Duration::from_secs(60)).await?;
            say(format!(
                "  operator-2 took over {:.1} s after operator-1 stopped",
                handover.elapsed().as_secs_f64()
            ));
            let probe = probe_customer("lease-probe-2", namespace);
            cluster::apply(&customers, &probe).await?;
            cluster::wait_customer_ready(client, namespace, &probe.name_any(), ready_timeout).await?;
            ensure!(
                standby.reconciles(http).await? > 0.0,
                "the new leader does not reconcile"
            );
            *operator = Some(standby);
            Ok(())
        })
        .await?;

        // 8. Cold start.
        if args.skip_scale {
            say("--skip-scale: no cold start");
            return Ok(());
        }
        step(
            &format!("cold start over {} Customers and PlatformConnections", args.scale),
            async { cold_start(args, client, http, launch, scale_namespace, operator).await },
        )
        .await
    }
}

/// A Customer that exists only to be reconciled.
fn probe_customer(name: &str, namespace: &str) -> Customer {
    let mut customer = Customer::new(
        name,
        CustomerSpec {
            display_name: name.into(),
            email: "e2e@hermes.example".into(),
            plan: Plan::Free,
            suspended: false,
            api_key_secret_ref: None,
            delivery: None,
            limits: None,
        },
    );
    customer.metadata.namespace = Some(namespace.into());
    customer
}

/// Stops the operator, creates N Customers, Secrets and connections, starts
/// a fresh operator and times it to all-Ready.
async fn cold_start(
    args: &Args,
    client: &Client,
    http: &reqwest::Client,
    launch: &Launch,
    scale_namespace: &str,
    operator: &mut Option<Operator>,
) -> anyhow::Result<()> {
    let n = args.scale;
    let run = scale_namespace.rsplit('-').next().unwrap_or("0");
    let run_number = u32::from_str_radix(run, 16).unwrap_or(0);

    if let Some(running) = operator.take() {
        running.process.terminate().await?;
    }

    cluster::ensure_namespace(client, scale_namespace).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), scale_namespace);
    let customers: Api<Customer> = Api::namespaced(client.clone(), scale_namespace);
    let connections: Api<PlatformConnection> = Api::namespaced(client.clone(), scale_namespace);
    let names: Vec<String> = (0..n).map(|i| format!("s{run}-{i:05}")).collect();

    let created = Instant::now();
    let secret_objects = names
        .iter()
        .map(|name| {
            let mut secret = Secret::default();
            secret.metadata.name = Some(format!("{name}-wa"));
            secret.metadata.namespace = Some(scale_namespace.into());
            secret.string_data = Some([("accessToken".to_owned(), format!("scale-token-{name}"))].into());
            secret
        })
        .collect();
    cluster::apply_all(&secrets, secret_objects, args.parallel).await?;
    let customer_objects = names
        .iter()
        .map(|name| probe_customer(name, scale_namespace))
        .collect();
    cluster::apply_all(&customers, customer_objects, args.parallel).await?;
    let connection_objects = names
        .iter()
        .enumerate()
        .map(|(i, name)| -> anyhow::Result<PlatformConnection> {
            let spec: PlatformConnectionSpec = serde_json::from_value(serde_json::json!({
                "customerRef": name,
                "platform": "whatsapp",
                "sandbox": true,
                "secretRef": {"name": format!("{name}-wa")},
                "whatsapp": {
                    "phoneNumberId": format!("9{run_number:010}{i:07}"),
                    "businessAccountId": "100000000000000",
                },
            }))?;
            let mut connection = PlatformConnection::new(&format!("{name}-wa"), spec);
            connection.metadata.namespace = Some(scale_namespace.into());
            Ok(connection)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    cluster::apply_all(&connections, connection_objects, args.parallel).await?;
    say(format!(
        "  created {} objects in {:.1} s",
        3 * n,
        created.elapsed().as_secs_f64()
    ));

    // The clock starts when the fresh operator process starts.
    let started = Instant::now();
    let mut fresh = launch.operator("operator-cold", http).await?;
    fresh.wait_leader(http, Duration::from_secs(60)).await?;
    let timeout = Duration::from_secs(args.scale_timeout_seconds);
    let mut last_report = Instant::now();
    loop {
        fresh.process.check_running()?;
        let ready = cluster::count_ready_connections(client, scale_namespace).await?;
        if ready == n {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            say(format!(
                "  {ready}/{n} Ready after {:.0} s",
                started.elapsed().as_secs_f64()
            ));
            last_report = Instant::now();
        }
        if started.elapsed() > timeout {
            bail!("only {ready}/{n} connections Ready after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak_kib = fresh.process.peak_rss_kib()?;
    let reconciles = fresh.reconciles(http).await?;
    say(format!(
        "  cold start: {n} Customers + {n} PlatformConnections all Ready in {elapsed:.1} s \
         ({:.0} connections/s), {reconciles:.0} reconciles",
        n as f64 / elapsed
    ));
    say(format!(
        "  operator peak RSS (VmHWM): {:.1} MiB",
        peak_kib as f64 / 1024.0
    ));
    *operator = Some(fresh);
    Ok(())
}
