//! The server child processes: started fresh for each run, so each run's
//! peak memory is its own, and stopped with SIGTERM after it.
//!
//! Both kinds are binaries of this workspace built in the same profile:
//! `hermes-server serve`, found next to this binary (`cargo build --release
//! -p hermes-server` puts it there), and this binary's own `ceiling`
//! subcommand. Each gets a loopback port chosen here, its environment set
//! from scratch (nothing of the caller's leaks in: a stray
//! `REDIS_CLUSTER_URLS` or `KUBECONFIG` would change what is measured), and
//! its stderr written to a log file that a failed start quotes.
//!
//! Memory is read from `/proc/<pid>/status`: `VmRSS` now and `VmHWM`, the
//! peak resident set since the process started. Linux only; elsewhere it is
//! reported as unknown.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::process::{Child, Command};

/// How long a server may take to answer its readiness probe.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often readiness is probed while a server starts.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// How long a server may drain after SIGTERM before it is killed. The
/// server's own drain bound is 10 s; idle, it stops at once.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How much of a failed server's log an error quotes.
const LOG_TAIL_BYTES: usize = 4096;

/// The kinds of server a target runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// `hermes-server serve` over Redis and SQL.
    Hermes,
    /// `hermes-bench ceiling`: one no-op route.
    Ceiling,
}

/// How `hermes-server` is started.
#[derive(Debug)]
pub struct HermesLaunch {
    /// The binary.
    pub binary: PathBuf,
    /// Where its state is.
    pub state: HermesState,
    /// `HERMES_WHATSAPP_API_BASE`: the mock Graph API.
    pub whatsapp_api_base: String,
    /// `RUST_LOG`.
    pub log_filter: String,
    /// Further variables, set last.
    pub extra_env: Vec<(String, String)>,
}

/// The state `hermes-server` serves from.
#[derive(Debug)]
pub enum HermesState {
    /// `serve` over Redis and SQL, where the customer was seeded.
    Redis {
        /// `REDIS_URL`.
        redis_url: String,
        /// `DATABASE_URL`.
        database_url: String,
        /// `HERMES_ENCRYPTION_KEYS`: the keyring the seeding sealed with.
        keyring_text: String,
    },
    /// `dev` over its embedded store and SQLite, from a folder of manifests.
    Embedded {
        /// `--manifests`.
        manifests: PathBuf,
    },
}

/// A server to start.
#[derive(Debug)]
pub enum Launch<'a> {
    /// `hermes-server serve` or `dev`.
    Hermes(&'a HermesLaunch),
    /// `hermes-bench ceiling`.
    Ceiling,
}

/// A server's resident memory, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident set since the process started.
    pub peak_kib: u64,
}

/// A running server child process; killed if dropped without [`stop`](Self::stop).
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    log: tempfile::NamedTempFile,
}

impl ServerProcess {
    /// Starts a server and waits until it answers its readiness probe
    /// (`/readyz` for Hermes: Redis and SQL reachable; `/healthz` for the ceiling).
    ///
    /// # Errors
    ///
    /// When the binary cannot be started, exits, or is not ready within
    /// [`START_TIMEOUT`]; the error quotes the end of its log.
    pub async fn start(launch: &Launch<'_>, client: &reqwest::Client) -> Result<Self> {
        let address = free_loopback_address()?;
        let log = tempfile::Builder::new()
            .prefix("hermes-bench-server-")
            .suffix(".log")
            .tempfile()
            .context("creating the server's log file")?;
        let stderr = log.reopen().context("opening the server's log file")?;

        let (mut command, probe) = match launch {
            Launch::Hermes(hermes) => (hermes_command(hermes, address), "/readyz"),
            Launch::Ceiling => (ceiling_command(address)?, "/healthz"),
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let child = command.spawn().context("starting the server process")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the server process exited at once"))?;

        let mut server = Self {
            child,
            pid,
            base_url: format!("http://{address}"),
            log,
        };
        server.wait_ready(client, probe).await?;
        Ok(server)
    }

    /// Polls `probe` until it answers 200.
    async fn wait_ready(&mut self, client: &reqwest::Client, probe: &str) -> Result<()> {
        let url = format!("{}{probe}", self.base_url);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("checking the server process")? {
                bail!(
                    "the server exited during start ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            let ready = client
                .get(&url)
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server did not answer {probe} within {}s; its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's memory now, or `None` where `/proc` cannot tell.
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        Some(Memory {
            rss_kib: status_field_kib(&status, "VmRSS")?,
            peak_kib: status_field_kib(&status, "VmHWM")?,
        })
    }

    /// Sends SIGTERM, and kills the process if it has not exited after [`STOP_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent or the process cannot be reaped.
    pub async fn stop(mut self) -> Result<()> {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .context("running kill -TERM")?;
        if !signalled.success() {
            self.child.kill().await.context("killing the server")?;
            return Ok(());
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(exited) => {
                exited.context("waiting for the server to exit")?;
            }
            Err(_elapsed) => self.child.kill().await.context("killing the server")?,
        }
        Ok(())
    }

    /// The end of the server's log.
    fn log_tail(&self) -> String {
        let text = std::fs::read(self.log.path()).unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL_BYTES);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }
}

/// `hermes-server serve` (or `dev`) with exactly the environment the benchmark needs.
fn hermes_command(launch: &HermesLaunch, address: SocketAddr) -> Command {
    let mut command = Command::new(&launch.binary);
    command.env_clear();
    match &launch.state {
        HermesState::Redis {
            redis_url,
            database_url,
            keyring_text,
        } => {
            command
                .arg("serve")
                .env("REDIS_URL", redis_url)
                .env("DATABASE_URL", database_url)
                .env("HERMES_ENCRYPTION_KEYS", keyring_text);
        }
        HermesState::Embedded { manifests } => {
            command.arg("dev").arg("--manifests").arg(manifests);
        }
    }
    command
        .env("HERMES_LISTEN", address.to_string())
        .env("HERMES_WHATSAPP_API_BASE", &launch.whatsapp_api_base)
        .env("RUST_LOG", &launch.log_filter)
        .envs(launch.extra_env.iter().map(|(name, value)| (name, value)));
    command
}

/// This binary's `ceiling` subcommand, with as bare an environment.
fn ceiling_command(address: SocketAddr) -> Result<Command> {
    let binary = std::env::current_exe().context("locating the hermes-bench binary")?;
    let mut command = Command::new(binary);
    command
        .args(["ceiling", "--listen", &address.to_string()])
        .env_clear();
    Ok(command)
}

/// A loopback address with a port the OS just handed out.
///
/// The port is free when this returns; a process could take it before the
/// server binds it, which on a benchmark machine does not happen.
fn free_loopback_address() -> Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free loopback port")?;
    listener.local_addr().context("reading the free port")
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// A binary in the folder of this one: the same profile of the same target dir.
///
/// # Errors
///
/// When this binary's path is unknown.
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the hermes-bench binary")?;
    Ok(exe.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// The folders, relative to the workspace, whose files `hermes-server` is built from.
const SERVER_SOURCES: [&str; 5] = ["server", "state", "crds", "migrations", "Cargo.lock"];

/// Checks that the server binary exists; returns a warning when a source
/// it is built from changed after it was built (in the checkout this
/// binary was compiled in, when that is still there).
///
/// # Errors
///
/// When the binary is missing, with the command that builds it.
pub fn check_server_binary(binary: &Path) -> Result<Option<String>> {
    let server = std::fs::metadata(binary).with_context(|| {
        format!(
            "no hermes-server at {}: build it first, in the same profile as hermes-bench \
             (`cargo build --release -p hermes-server`), or pass --server-bin",
            binary.display()
        )
    })?;
    let Ok(built) = server.modified() else {
        return Ok(None);
    };

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let newest = SERVER_SOURCES
        .iter()
        .filter_map(|source| newest_modification(&workspace.join(source)))
        .max();
    Ok(newest.filter(|changed| *changed > built).map(|_| {
        format!(
            "the server's sources changed after {} was built: rebuild it \
             (`cargo build --release -p hermes-server`) to measure them",
            binary.display()
        )
    }))
}

/// The latest modification time of a file, or of any file under a folder.
fn newest_modification(path: &Path) -> Option<std::time::SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_dir() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest_modification(&entry.ok()?.path()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_and_current_rss_are_read_from_proc_status() {
        let status = "Name:\thermes-server\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM"), Some(30720));
        assert_eq!(status_field_kib(status, "VmRSS"), Some(20480));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_reports_its_own_memory() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if !status.is_empty() {
            let peak = status_field_kib(&status, "VmHWM").expect("Linux reports VmHWM");
            let now = status_field_kib(&status, "VmRSS").expect("Linux reports VmRSS");
            assert!(peak >= now);
        }
    }
}
