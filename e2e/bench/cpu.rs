//! Where the machine's CPU went during a run, from `/proc`.
//!
//! The load generator, the mock Graph API, the server and Redis share the
//! same few cores, and anything else running on the machine takes from
//! them too. A [`CpuSample`] at each end of the measured window gives, per
//! run: the server's CPU time (and so its CPU cost per request, which
//! depends far less on what else runs than requests/s do), this process's,
//! and everyone else's: Redis, and any build or browser that makes the
//! numbers noisy.
//!
//! Times in `/proc` are in clock ticks of `USER_HZ`, which Linux fixes at
//! 100 per second for user space on every architecture Hermes runs on.
//! Elsewhere than Linux every figure is unknown.

use std::time::Duration;

/// Clock ticks per second in `/proc/stat` and `/proc/<pid>/stat`.
const USER_HZ: u64 = 100;

/// CPU counters at one instant, in clock ticks.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    server: Option<u64>,
    bench: Option<u64>,
    busy: Option<u64>,
    total: Option<u64>,
}

/// CPU time spent between two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuUsage {
    /// By the server under test.
    pub server: Duration,
    /// By this process: the load generator and the mock Graph API.
    pub bench: Duration,
    /// By everything else: Redis (and MySQL), the kernel's own threads, and any other process.
    pub others: Duration,
    /// The capacity of the machine over the interval: wall time × cores.
    pub capacity: Duration,
}

impl CpuSample {
    /// Reads the counters of the server `server_pid`, this process and the machine.
    pub fn take(server_pid: u32) -> Self {
        let machine = machine_ticks();
        Self {
            server: process_ticks(&format!("/proc/{server_pid}/stat")),
            bench: process_ticks("/proc/self/stat"),
            busy: machine.map(|(busy, _)| busy),
            total: machine.map(|(_, total)| total),
        }
    }
}

impl CpuUsage {
    /// The CPU spent from `start` to `end`, if `/proc` told every figure.
    pub fn between(start: &CpuSample, end: &CpuSample) -> Option<Self> {
        let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        let server = delta(start.server, end.server)?;
        let bench = delta(start.bench, end.bench)?;
        let busy = delta(start.busy, end.busy)?;
        let total = delta(start.total, end.total)?;
        Some(Self {
            server: ticks(server),
            bench: ticks(bench),
            others: ticks(busy.saturating_sub(server + bench)),
            capacity: ticks(total),
        })
    }
}

fn ticks(count: u64) -> Duration {
    Duration::from_millis(count * 1000 / USER_HZ)
}

/// `utime + stime` of one process, from its `stat` file.
fn process_ticks(path: &str) -> Option<u64> {
    parse_process_ticks(&std::fs::read_to_string(path).ok()?)
}

/// Fields 14 and 15 of a `stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted after its `)`.
fn parse_process_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Busy and total ticks of all cores, from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The `cpu` line: user nice system idle iowait irq softirq steal …; idle
/// and iowait are the time nothing ran.
fn parse_machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|value| value.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = values.iter().sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_time_is_user_plus_system_after_the_command_name() {
        let stat = "4242 (tokio rt) S 1 4242 4242 0 -1 4194560 2411 0 0 0 150 37 0 0 20 0 3 0";
        assert_eq!(parse_process_ticks(stat), Some(187));
    }

    #[test]
    fn machine_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n";
        assert_eq!(parse_machine_ticks(stat), Some((160, 980)));
    }

    #[test]
    fn others_are_what_the_machine_spent_beyond_server_and_bench() {
        let start = CpuSample {
            server: Some(0),
            bench: Some(0),
            busy: Some(0),
            total: Some(0),
        };
        let end = CpuSample {
            server: Some(100),
            bench: Some(50),
            busy: Some(170),
            total: Some(200),
        };
        let usage = CpuUsage::between(&start, &end).expect("every figure is known");
        assert_eq!(usage.server, Duration::from_secs(1));
        assert_eq!(usage.others, Duration::from_millis(200));
        assert_eq!(usage.capacity, Duration::from_secs(2));
    }

    #[test]
    fn an_unknown_figure_makes_the_usage_unknown() {
        assert_eq!(
            CpuUsage::between(&CpuSample::default(), &CpuSample::default()),
            None
        );
    }
}
