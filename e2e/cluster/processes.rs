//! The local processes the run starts: Redis, operators, the server.
//!
//! Each child is killed when its handle drops, so an aborted run leaves no
//! process behind. Their output goes to files in the run's log directory,
//! named after the process, for reading after a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// How long a started process may take to answer its readiness probe.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on loopback (released before the caller binds it, so a
/// race with another process is possible but unlikely).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A child process with its name and log file.
#[derive(Debug)]
pub struct Process {
    /// A short name, e.g. `operator-1`.
    pub name: String,
    child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Process {
    /// Starts `program` with `args` and `env` (on top of this process's
    /// environment minus the variables in `remove`), logging to `<logs>/<name>.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &BTreeMap<String, String>,
        remove: &[&str],
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        for variable in remove {
            command.env_remove(variable);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", name, program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the process has already exited")
    }

    /// Fails when the process has exited (with the tail of its log).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; its log ends:\n{}",
                self.name,
                tail(&self.log)
            );
        }
        Ok(())
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub async fn terminate(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
            if !status.success() {
                bail!("kill -TERM {pid} failed");
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("{} did not stop within 30 s of SIGTERM", self.name);
            }
        }
        Ok(())
    }

    /// The peak resident set size so far (`VmHWM`), in kibibytes.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        vm_hwm_kib(&status).with_context(|| format!("/proc/{pid}/status has no VmHWM line"))
    }
}

/// The `VmHWM` of a `/proc/<pid>/status` text, in kibibytes.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The last lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until `url` answers 200, or fails with the process's log tail.
pub async fn wait_http_ok(http: &reqwest::Client, url: &str, process: &mut Process) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        process.check_running()?;
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "{url} did not answer 200 within {START_TIMEOUT:?}; {} log:\n{}",
                process.name,
                tail(&process.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads one sample of a Prometheus text exposition: the value of the
/// series `name` with exactly `labels` (e.g. `controller="customer"`), or
/// 0 when the series is absent.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    let series = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A `redis-server` on a free port, without persistence, in `dir`.
pub async fn start_redis(logs: &Path, dir: &Path) -> anyhow::Result<(Process, String)> {
    let port = free_port()?;
    let port_text = port.to_string();
    let dir_text = dir.to_str().context("the run directory is not UTF-8")?;
    let mut redis = Process::spawn(
        "redis",
        Path::new("redis-server"),
        &[
            "--port",
            &port_text,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir_text,
        ],
        &BTreeMap::new(),
        &[],
        logs,
    )?;

    let started = Instant::now();
    loop {
        redis.check_running()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("redis-server did not listen on {port} within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((redis, format!("redis://127.0.0.1:{port}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kibibytes() {
        let status =
            "Name:\thermes-operator\nVmPeak:\t  812344 kB\nVmHWM:\t   45120 kB\nVmRSS:\t   44000 kB\n";

        assert_eq!(vm_hwm_kib(status), Some(45_120));
    }

    #[test]
    fn a_metric_sample_is_found_by_name_and_labels() {
        let text = "# HELP x\nhermes_operator_leader 1\nhermes_operator_reconciles_total{controller=\"customer\"} 42\n";

        assert_eq!(metric(text, "hermes_operator_leader", ""), 1.0);
        assert_eq!(
            metric(
                text,
                "hermes_operator_reconciles_total",
                "controller=\"customer\""
            ),
            42.0
        );
        assert_eq!(metric(text, "absent", ""), 0.0);
    }
}
