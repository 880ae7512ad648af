//! The load generator, one implementation for every target.
//!
//! [`run`] starts `concurrency` workers on one shared HTTP client with
//! keep-alive; each sends the target's request, waits for the whole answer,
//! and sends the next, until the run ends. A request counts when it was
//! sent after the warm-up and answered before the end; its latency (send to
//! last body byte) goes into the worker's list. The lists are merged and
//! sorted at the end, which gives exact percentiles: at the rates this
//! machine reaches, a run holds at most a few hundred thousand samples.
//!
//! A closed loop like this one measures throughput at a fixed number of
//! requests in flight; it does not show the latency a server would have
//! under an open arrival rate above its capacity.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::task::JoinSet;

use crate::target::{PreparedRequest, Target};

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The shape of one run.
#[derive(Clone, Copy, Debug)]
pub struct LoadPlan {
    /// Workers, each with one request in flight.
    pub concurrency: usize,
    /// Load before measuring: connections open, caches fill, the server's pools grow.
    pub warmup: Duration,
    /// How long requests are measured.
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Latencies of successful measured requests, in microseconds, sorted.
    latencies_us: Vec<u32>,
    /// Measured requests that failed.
    pub errors: u64,
    /// The first failure, as an example.
    pub first_error: Option<String>,
    /// The measured duration.
    pub duration: Duration,
}

impl LoadResult {
    /// Successful measured requests.
    pub fn successes(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    /// Successful requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.successes() as f64 / self.duration.as_secs_f64()
    }

    /// The latency below which `quantile` (0 to 1) of successful requests
    /// answered, in milliseconds; `None` without successes.
    pub fn latency_ms(&self, quantile: f64) -> Option<f64> {
        let last = self.latencies_us.len().checked_sub(1)?;
        let rank = ((last as f64) * quantile).round() as usize;
        Some(f64::from(self.latencies_us[rank.min(last)]) / 1000.0)
    }

    /// The slowest successful request, in milliseconds.
    pub fn max_ms(&self) -> Option<f64> {
        self.latency_ms(1.0)
    }
}

/// The client every worker shares: HTTP/1.1 with keep-alive and room in the
/// pool for one idle connection per worker, so no request opens a new one
/// after the warm-up.
pub fn client(max_concurrency: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(max_concurrency)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .context("building the load generator's HTTP client")
}

/// Loads `target` with `request` as `plan` says, and measures it.
pub async fn run(
    client: &reqwest::Client,
    target: Target,
    request: Arc<PreparedRequest>,
    plan: LoadPlan,
) -> LoadResult {
    let started = Instant::now();
    let window = Window {
        from: started + plan.warmup,
        to: started + plan.warmup + plan.duration,
    };

    let mut workers = JoinSet::new();
    for _ in 0..plan.concurrency {
        workers.spawn(worker(client.clone(), target, Arc::clone(&request), window));
    }

    let mut result = LoadResult {
        duration: plan.duration,
        ..LoadResult::default()
    };
    while let Some(joined) = workers.join_next().await {
        let tally = match joined {
            Ok(tally) => tally,
            Err(e) => Tally {
                errors: 1,
                first_error: Some(format!("a worker failed: {e}")),
                ..Tally::default()
            },
        };
        result.latencies_us.extend(tally.latencies_us);
        result.errors += tally.errors;
        if result.first_error.is_none() {
            result.first_error = tally.first_error;
        }
    }
    result.latencies_us.sort_unstable();
    result
}

/// The measured part of a run.
#[derive(Clone, Copy, Debug)]
struct Window {
    from: Instant,
    to: Instant,
}

/// What one worker measured.
#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// Sends the request again and again until the window closes.
async fn worker(
    client: reqwest::Client,
    target: Target,
    request: Arc<PreparedRequest>,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let sent = Instant::now();
        if sent >= window.to {
            return tally;
        }

        let outcome = send(&client, target, &request).await;
        let answered = Instant::now();
        if sent < window.from || answered > window.to {
            continue;
        }
        match outcome {
            Ok(()) => {
                let micros = answered.duration_since(sent).as_micros();
                tally.latencies_us.push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Err(error) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(error);
            }
        }
    }
}

/// One request, read to its last byte and checked.
async fn send(client: &reqwest::Client, target: Target, request: &PreparedRequest) -> Result<(), String> {
    let (headers, body) = request.next();
    let response = client
        .request(request.method.clone(), request.url.clone())
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?;
    target.check(status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result_of(latencies_us: Vec<u32>) -> LoadResult {
        LoadResult {
            latencies_us,
            duration: Duration::from_secs(2),
            ..LoadResult::default()
        }
    }

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let result = result_of((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(result.latency_ms(0.5), Some(51.0));
        assert_eq!(result.latency_ms(0.99), Some(99.0));
        assert_eq!(result.max_ms(), Some(100.0));
        assert_eq!(result.requests_per_second(), 50.0);
    }

    #[test]
    fn a_run_without_successes_has_no_latency() {
        let result = result_of(Vec::new());
        assert_eq!(result.latency_ms(0.5), None);
        assert_eq!(result.requests_per_second(), 0.0);
    }
}
