//! The delivery worker: claims queued deliveries of every customer with a
//! delivery target, POSTs them signed, and records each outcome.
//!
//! One worker runs per replica ([`spawn`]); workers of all replicas are
//! consumers of the same group, so each queued delivery goes to one of them
//! at a time. Each pass reads the index of customers with a target, then
//! serves up to [`DeliverySettings::concurrency`] customers at once, each
//! one delivery at a time, in queue order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt;
use hermes_state::CustomerId;
use hermes_state::store::DeliveryJob;
use hermes_state::tenancy::{self, DeliveryPlan};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::signing::{ATTEMPT_HEADER, DELIVERY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{DeliverySettings, backoff, signing};
use crate::app::AppState;

/// How long a worker trusts a delivery target it read: a changed URL or
/// secret is picked up within this time.
const TARGET_CACHE_TTL: Duration = Duration::from_secs(10);

/// How long a delivery request may wait to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome labels of the delivery metric.
mod outcome {
    pub const SUCCEEDED: &str = "succeeded";
    pub const RETRIED: &str = "retried";
    pub const DEAD_LETTERED: &str = "dead_lettered";
}

/// Starts this replica's delivery worker, unless delivery is disabled; it
/// stops when `stop` is cancelled, abandoning a delivery in flight (another
/// worker takes it over after the claim timeout).
pub fn spawn(app: AppState, stop: CancellationToken) -> Option<JoinHandle<()>> {
    if !app.settings.inbound.delivery.enabled {
        tracing::info!("delivery to customer endpoints is disabled on this replica");
        return None;
    }
    match Worker::new(app, consumer_name()) {
        Ok(worker) => Some(tokio::spawn(worker.run(stop))),
        Err(error) => {
            tracing::error!(%error, "the delivery HTTP client cannot be built; deliveries wait for another replica");
            None
        }
    }
}

/// A consumer name unique to this process: the host (the pod's name in a
/// cluster) and a random suffix.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|host| !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "hermes".to_owned());
    format!("{host}-{:08x}", rand::random::<u32>())
}

/// A delivery worker: one consumer of the delivery group.
#[derive(Debug)]
pub struct Worker {
    app: AppState,
    settings: DeliverySettings,
    consumer: String,
    client: reqwest::Client,
    targets: Mutex<HashMap<CustomerId, CachedTarget>>,
}

#[derive(Debug)]
struct CachedTarget {
    read_at: Instant,
    target: Option<Arc<DeliveryPlan>>,
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// A failure worth retrying: 5xx, 408, 429, a timeout, no connection.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// A failure retrying will not fix: any other answer.
    Refused { reason: String },
}

impl Worker {
    /// A worker over `app`'s store and keyring, with the delivery settings
    /// of `app`, claiming as `consumer` (unique per worker).
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (a TLS setup failure).
    pub fn new(app: AppState, consumer: impl Into<String>) -> Result<Self, reqwest::Error> {
        let settings = app.settings.inbound.delivery.clone();
        // Redirects are not followed: a signed POST must reach the URL the
        // customer configured, not wherever that URL points.
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(settings.request_timeout))
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hermes-delivery/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            app,
            settings,
            consumer: consumer.into(),
            client,
            targets: Mutex::default(),
        })
    }

    /// Delivers until `stop` is cancelled: a pass, then a pause of
    /// [`DeliverySettings::poll_interval`], and again.
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!(consumer = %self.consumer, "delivery worker started");
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = self.run_once() => {}
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        tracing::info!(consumer = %self.consumer, "delivery worker stopped");
    }

    /// One pass over every customer with a delivery target; returns how
    /// many deliveries were attempted.
    pub async fn run_once(&self) -> usize {
        let customers = match self.app.store.delivery_customers().await {
            Ok(customers) => customers,
            Err(error) => {
                tracing::warn!(%error, "listing delivery customers failed; retrying next pass");
                return 0;
            }
        };
        futures::stream::iter(customers)
            .map(|customer| {
                let span = tracing::debug_span!("delivery", customer_id = %customer);
                self.serve(customer).instrument(span)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .fold(0, |total, attempted| async move { total + attempted })
            .await
    }

    /// Claims and delivers one batch of a customer's deliveries.
    async fn serve(&self, customer: CustomerId) -> usize {
        let Some(target) = self.target(&customer).await else {
            return 0;
        };
        let jobs = match self
            .app
            .store
            .claim_deliveries(
                &customer,
                &self.consumer,
                self.settings.claim_timeout,
                self.settings.batch,
            )
            .await
        {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(%error, "claiming deliveries failed; retrying next pass");
                return 0;
            }
        };

        let attempted = jobs.len();
        for job in jobs {
            let outcome = self.attempt(&customer, &target, &job).await;
            self.record(&customer, job, outcome).await;
        }
        attempted
    }

    /// The customer's delivery target, opened, from a short-lived cache.
    /// `None` when it has none, or it cannot be read now.
    async fn target(&self, customer: &CustomerId) -> Option<Arc<DeliveryPlan>> {
        if let Some(cached) = self.cached_targets().get(customer)
            && cached.read_at.elapsed() < TARGET_CACHE_TTL
        {
            return cached.target.clone();
        }

        let target =
            match tenancy::load_delivery_target(self.app.store.as_ref(), &self.app.keyring, customer).await {
                Ok(target) => target.map(Arc::new),
                Err(error) if error.is_transient() => {
                    tracing::debug!(%error, "reading a delivery target failed; retrying next pass");
                    return None;
                }
                Err(error) => {
                    // Another deployment's keyring, or a damaged target: its
                    // deliveries wait, unclaimed, for a worker that can open it.
                    tracing::warn!(%error, "a delivery target does not open; its deliveries wait");
                    None
                }
            };
        self.cached_targets().insert(
            customer.clone(),
            CachedTarget {
                read_at: Instant::now(),
                target: target.clone(),
            },
        );
        target
    }

    fn cached_targets(&self) -> std::sync::MutexGuard<'_, HashMap<CustomerId, CachedTarget>> {
        // The map is replaced entry by entry; a panic elsewhere leaves it sound.
        self.targets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// POSTs one delivery, signed.
    async fn attempt(&self, customer: &CustomerId, target: &DeliveryPlan, job: &DeliveryJob) -> Outcome {
        let body = json!({ "id": job.inbox_id, "customer": customer, "event": job.event }).to_string();
        let timestamp = jiff::Timestamp::now().as_second();
        let signature = signing::sign(target.signing_secret.as_bytes(), timestamp, body.as_bytes());

        let sent = self
            .client
            .post(&target.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_ID_HEADER, &job.inbox_id)
            .header(ATTEMPT_HEADER, job.attempt.saturating_add(1))
            .body(body)
            .send()
            .await;
        classify(sent)
    }

    /// Completes, schedules again or dead-letters a delivery after an attempt.
    async fn record(&self, customer: &CustomerId, job: DeliveryJob, outcome: Outcome) {
        let store = &self.app.store;
        let metrics = &self.app.metrics;
        let attempts = job.attempt.saturating_add(1);

        let recorded = match outcome {
            Outcome::Delivered => {
                let recorded = store.complete_delivery(customer, &job.id).await;
                if recorded.is_ok() {
                    metrics.observe_delivery(outcome::SUCCEEDED);
                    if let Some(lag) = lag_of(&job) {
                        metrics.observe_delivery_lag(lag.as_secs_f64());
                    }
                }
                recorded.map(drop)
            }
            Outcome::Retry { reason, retry_after } if attempts < self.settings.max_attempts => {
                let delay = backoff::delay(
                    attempts,
                    self.settings.backoff_base,
                    self.settings.backoff_max,
                    rand::random::<f64>(),
                    retry_after,
                );
                tracing::debug!(inbox_id = %job.inbox_id, attempts, %reason, delay_ms = delay.as_millis() as u64, "delivery failed; retrying");
                let recorded = store.retry_delivery(customer, &job, delay, &reason).await;
                if recorded.is_ok() {
                    metrics.observe_delivery(outcome::RETRIED);
                }
                recorded.map(drop)
            }
            Outcome::Retry { reason, .. } | Outcome::Refused { reason } => {
                tracing::warn!(inbox_id = %job.inbox_id, attempts, %reason, "delivery given up; kept as a dead letter");
                let recorded = store.dead_letter_delivery(customer, &job, &reason).await;
                if recorded.is_ok() {
                    metrics.observe_delivery(outcome::DEAD_LETTERED);
                }
                recorded.map(drop)
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, inbox_id = %job.inbox_id, "recording a delivery's outcome failed; it is attempted again after the claim timeout");
        }
    }
}

/// What an answer (or its absence) means for the delivery.
fn classify(sent: Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match sent {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Outcome::Delivered
            } else if status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT
            {
                Outcome::Retry {
                    reason: format!("http {}", status.as_u16()),
                    retry_after: retry_after(response.headers()),
                }
            } else {
                Outcome::Refused {
                    reason: format!("http {}", status.as_u16()),
                }
            }
        }
        Err(error) if error.is_builder() => Outcome::Refused {
            reason: "the delivery URL is not usable".to_owned(),
        },
        Err(error) if error.is_timeout() => Outcome::Retry {
            reason: "timed out".to_owned(),
            retry_after: None,
        },
        Err(error) if error.is_connect() => Outcome::Retry {
            reason: "connection failed".to_owned(),
            retry_after: None,
        },
        Err(_) => Outcome::Retry {
            reason: "request failed".to_owned(),
            retry_after: None,
        },
    }
}

/// A `Retry-After` in seconds (the HTTP-date form is not honoured).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// How long ago the event arrived at the webhook.
fn lag_of(job: &DeliveryJob) -> Option<Duration> {
    let received: jiff::Timestamp = job.event.get("receivedAt")?.as_str()?.parse().ok()?;
    let lag = jiff::Timestamp::now().duration_since(received);
    Duration::try_from(lag).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, "7".parse().expect("a valid header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("a valid header"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn the_lag_is_counted_from_the_arrival() {
        let received = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5);
        let job = DeliveryJob {
            id: "1-0".into(),
            inbox_id: "1-0".into(),
            event: json!({ "receivedAt": received }),
            attempt: 0,
            last_error: None,
        };

        let lag = lag_of(&job).expect("a lag");

        assert!(
            lag >= Duration::from_secs(5) && lag < Duration::from_secs(60),
            "{lag:?}"
        );
    }
}
