//! What the benchmark prints: the setup, a table per concurrency, and the
//! spec's targets next to what was measured.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cpu::CpuUsage;
use crate::load::LoadResult;
use crate::process::{Memory, ServerKind};
use crate::target::{ConnectionMode, Target};
use crate::tenant::{REQUESTS_PER_MINUTE, TOOL_CALLS_PER_MONTH};

/// The spec's throughput target: the full path reaches this share of the ceiling.
pub const TARGET_SHARE_OF_CEILING: f64 = 0.30;

/// The spec's latency target: p99 of the full path at this concurrency…
pub const TARGET_P99_CONCURRENCY: usize = 32;

/// …stays below this many milliseconds.
pub const TARGET_P99_MS: f64 = 5.0;

/// The spec's memory target: the server's peak RSS stays below this many MiB.
pub const TARGET_RSS_MIB: f64 = 64.0;

/// How the benchmark was set up.
#[derive(Debug)]
pub struct Setup {
    /// CPU cores this process may use.
    pub cores: usize,
    /// The seeded customer's id.
    pub customer: String,
    /// The seeded connection.
    pub connection: ConnectionMode,
    /// The mock Graph API.
    pub graph_url: String,
    /// Redis and SQL, passwords redacted; `None` for the embedded store.
    pub state: Option<String>,
    /// The server binary.
    pub server_bin: String,
    /// The server's `RUST_LOG`.
    pub server_log: String,
    /// Further variables of the server, as given.
    pub server_env: Vec<(String, String)>,
    /// The warm-up of each run.
    pub warmup: Duration,
    /// The measured duration of each run.
    pub duration: Duration,
    /// A warning about the server binary, if any.
    pub stale_server: Option<String>,
}

/// One run's line of a table.
#[derive(Debug)]
pub struct Row {
    /// What was measured.
    pub target: Target,
    /// At how many requests in flight.
    pub concurrency: usize,
    /// The measurement.
    pub result: LoadResult,
    /// The server's memory before the load.
    pub idle: Option<Memory>,
    /// The server's memory after it.
    pub peak: Option<Memory>,
    /// Where the CPU went in the measured window.
    pub cpu: Option<CpuUsage>,
    /// Sends the mock Graph API answered in the measured window.
    pub graph_sends: u64,
}

/// The setup, before any run.
pub fn setup(setup: &Setup) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "hermes-bench");
    let _ = writeln!(
        text,
        "  machine    {} CPU cores, shared by the load generator, the mock Graph API, the server \
         under test and Redis (and MySQL if used): absolute numbers are lower than on a dedicated \
         server; compare runs on the same machine, and the full/ceiling ratio",
        setup.cores
    );
    let _ = writeln!(
        text,
        "  customer   {} (plan enterprise, limits override: {REQUESTS_PER_MINUTE} requests/minute, \
         {TOOL_CALLS_PER_MONTH} tool calls/month: the rate limit and quota run on every request but \
         never trigger)",
        setup.customer
    );
    let connection = match setup.connection {
        ConnectionMode::Live => format!("live, Graph API mocked at {}", setup.graph_url),
        ConnectionMode::Sandbox => "sandbox (messages recorded in the outbox, no platform call)".to_owned(),
    };
    let _ = writeln!(text, "  whatsapp   {connection}");
    let (state, mode) = match &setup.state {
        Some(state) => (state.as_str(), "serve"),
        None => (
            "embedded (hermes-server dev: in-process store, SQLite in memory)",
            "dev",
        ),
    };
    let _ = writeln!(text, "  state      {state}");
    let extra: String = setup
        .server_env
        .iter()
        .map(|(name, value)| format!(" {name}={value}"))
        .collect();
    let _ = writeln!(
        text,
        "  server     {} {mode} (RUST_LOG={}{extra}), a fresh process per run",
        setup.server_bin, setup.server_log
    );
    let _ = writeln!(
        text,
        "  runs       {} warm-up, then {} measured; closed loop, one request in flight per worker, \
         keep-alive",
        human(setup.warmup),
        human(setup.duration)
    );
    if let Some(warning) = &setup.stale_server {
        let _ = writeln!(text, "  warning    {warning}");
    }
    text
}

/// The table of one concurrency.
pub fn table(concurrency: usize, rows: &[Row]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "\nconcurrency {concurrency}");
    let _ = writeln!(
        text,
        "  {:<8} {:>11} {:>8} {:>8} {:>8} {:>7} {:>12} {:>8} {:>9}",
        "target", "requests/s", "p50 ms", "p99 ms", "max ms", "errors", "CPU µs/req", "RSS MiB", "peak MiB"
    );
    for row in rows {
        let result = &row.result;
        let _ = writeln!(
            text,
            "  {:<8} {:>11.0} {:>8} {:>8} {:>8} {:>7} {:>12} {:>8} {:>9}",
            row.target.as_str(),
            result.requests_per_second(),
            millis(result.latency_ms(0.50)),
            millis(result.latency_ms(0.99)),
            millis(result.max_ms()),
            result.errors,
            cpu_per_request(row),
            mebibytes(row.idle.map(|m| m.rss_kib)),
            mebibytes(row.peak.map(|m| m.peak_kib)),
        );
    }
    for target in [Target::Full, Target::Rest, Target::Webhook] {
        if let Some(share) = share_of_ceiling(rows, target) {
            let _ = writeln!(
                text,
                "  {} / ceiling requests/s: {:.1} %",
                target.as_str(),
                share * 100.0
            );
        }
    }
    for row in rows {
        let name = row.target.as_str();
        if let Some(cpu) = &row.cpu {
            let cores = |time: Duration| time.as_secs_f64() / row.result.duration.as_secs_f64();
            let _ = writeln!(
                text,
                "  {name}: CPU in cores: server {:.2}, hermes-bench {:.2}, others {:.2} (Redis, and \
                 any other process), of {:.2}",
                cores(cpu.server),
                cores(cpu.bench),
                cores(cpu.others),
                cores(cpu.capacity),
            );
        }
        if row.target == Target::Webhook {
            let _ = writeln!(
                text,
                "  {name}: {} signed messages, each with its own id, answered 200 (verified, routed, \
                 stored in the inbox)",
                row.result.successes()
            );
        } else if row.target.server() == ServerKind::Hermes {
            let _ = writeln!(
                text,
                "  {name}: {} tool calls answered, the mock Graph API received {} sends",
                row.result.successes(),
                row.graph_sends
            );
        }
        if let Some(error) = &row.result.first_error {
            let _ = writeln!(text, "  {name}: first error: {error}");
        }
    }
    text
}

/// The spec's targets against what was measured.
pub fn targets(rows: &[Row]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "\ntargets (spec)                        measured");

    let mut concurrencies: Vec<usize> = rows.iter().map(|row| row.concurrency).collect();
    concurrencies.dedup();
    for concurrency in concurrencies {
        let at: Vec<&Row> = rows.iter().filter(|row| row.concurrency == concurrency).collect();
        let full = at.iter().find(|row| row.target == Target::Full);
        let ceiling = at.iter().find(|row| row.target == Target::Ceiling);
        if let (Some(full), Some(ceiling)) = (full, ceiling) {
            let share = full.result.requests_per_second() / ceiling.result.requests_per_second();
            let _ = writeln!(
                text,
                "  full ≥ {:.0} % of ceiling (c={concurrency:<3})     {:>5.1} %   {}",
                TARGET_SHARE_OF_CEILING * 100.0,
                share * 100.0,
                verdict(share >= TARGET_SHARE_OF_CEILING)
            );
        }
        if concurrency == TARGET_P99_CONCURRENCY
            && let Some(p99) = full.and_then(|row| row.result.latency_ms(0.99))
        {
            let _ = writeln!(
                text,
                "  full p99 < {TARGET_P99_MS} ms (c={concurrency:<3})          {p99:>6.2} ms  {}",
                verdict(p99 < TARGET_P99_MS)
            );
        }
    }

    let peak_kib = rows
        .iter()
        .filter(|row| row.target.server() == ServerKind::Hermes)
        .filter_map(|row| row.peak.map(|m| m.peak_kib))
        .max();
    if let Some(peak_kib) = peak_kib {
        let peak_mib = peak_kib as f64 / 1024.0;
        let _ = writeln!(
            text,
            "  hermes-server peak RSS < {TARGET_RSS_MIB} MiB      {peak_mib:>6.1} MiB {}",
            verdict(peak_mib < TARGET_RSS_MIB)
        );
    }
    text
}

/// `target`'s requests/s over the ceiling's in one table, when both ran.
fn share_of_ceiling(rows: &[Row], target: Target) -> Option<f64> {
    let rps = |target| {
        rows.iter()
            .find(|row| row.target == target)
            .map(|row| row.result.requests_per_second())
    };
    let ceiling = rps(Target::Ceiling).filter(|rps| *rps > 0.0)?;
    Some(rps(target)? / ceiling)
}

/// The server's CPU time per successful request, in microseconds.
fn cpu_per_request(row: &Row) -> String {
    match (&row.cpu, row.result.successes()) {
        (Some(cpu), successes) if successes > 0 => {
            format!("{:.0}", cpu.server.as_secs_f64() * 1e6 / successes as f64)
        }
        _ => "-".to_owned(),
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"))
}

fn mebibytes(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |kib| format!("{:.1}", kib as f64 / 1024.0))
}

fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// A URL without its password: `redis://user:secret@host` → `redis://user:***@host`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{}", &rest[userinfo.len() + 1..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_not_printed() {
        assert_eq!(
            redacted("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("mysql://root:hunter2@db/hermes"),
            "mysql://root:***@db/hermes"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn durations_print_in_seconds_or_milliseconds() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    }
}
