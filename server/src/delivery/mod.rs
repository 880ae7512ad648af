//! Delivery of inbound events to the customer's own endpoint, signed, with
//! retries.
//!
//! A Customer that names `spec.delivery` (a URL and a signing secret) has
//! each event its webhooks append queued for delivery in the same atomic
//! step (see `hermes_state::store` and its `inbound` docs). [`Worker`]s —
//! one per server replica, sharing a Redis Stream consumer group per
//! customer — claim queued events and POST them:
//!
//! ```text
//! POST <spec.delivery.url>
//! Content-Type: application/json
//! Hermes-Timestamp: 1767000000
//! Hermes-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! Hermes-Delivery-Id: <inbox id>        (the same on every retry: dedupe on it)
//! Hermes-Attempt: 1
//!
//! {"id":"<inbox id>","customer":"acme","event":{…the inbox event…}}
//! ```
//!
//! A 2xx answer completes the delivery. A 5xx, 408 or 429 answer, a timeout
//! or a connection failure is retried after an exponential, jittered wait
//! ([`backoff::delay`], raised to the endpoint's `Retry-After`), until
//! [`DeliverySettings::max_attempts`]; then, or at once for any other
//! answer (a 4xx, a redirect), the event becomes a dead letter. Dead
//! letters are listed by `GET /api/deliveries/dead` and queued again by
//! `POST /api/deliveries/dead/{id}/replay` ([`rest`]).
//!
//! Delivery is at least once: a worker that dies mid-delivery leaves its
//! claim, and another worker takes it over after
//! [`DeliverySettings::claim_timeout`], delivering it again.

use std::time::Duration;

pub mod backoff;
pub mod rest;
pub mod signing;
mod worker;

pub use worker::{Worker, spawn};

use crate::webhook::InboundConfigError;

/// How often a worker looks for work by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long a claimed delivery is left to its worker by default.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one delivery request may take by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many attempts a delivery gets by default before it is a dead letter.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// The wait after the first failed attempt by default; it doubles after each.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);

/// The longest wait between attempts by default.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(600);

/// How many customers a worker delivers to at once by default.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// How many deliveries of one customer a worker claims at once.
pub const DEFAULT_BATCH: usize = 16;

/// How the delivery worker behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Whether this replica runs a worker.
    pub enabled: bool,
    /// How often the worker looks for work.
    pub poll_interval: Duration,
    /// How long a claimed delivery is left to its worker before another may
    /// take it over. Must exceed [`request_timeout`](Self::request_timeout).
    pub claim_timeout: Duration,
    /// How long one delivery request may take.
    pub request_timeout: Duration,
    /// How many attempts a delivery gets before it is a dead letter.
    pub max_attempts: u32,
    /// The wait after the first failed attempt.
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// How many customers the worker delivers to at once.
    pub concurrency: usize,
    /// How many deliveries of one customer the worker claims at once.
    pub batch: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: DEFAULT_POLL_INTERVAL,
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            concurrency: DEFAULT_CONCURRENCY,
            batch: DEFAULT_BATCH,
        }
    }
}

/// The command-line options of delivery (each also an environment variable).
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryArgs {
    /// Whether this replica delivers inbound events to the customers' endpoints.
    #[arg(long, env = "HERMES_DELIVERY_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub delivery_enabled: bool,

    /// How often the delivery worker looks for work, in milliseconds.
    #[arg(long, env = "HERMES_DELIVERY_POLL_INTERVAL_MS", default_value_t = millis(DEFAULT_POLL_INTERVAL))]
    pub delivery_poll_interval_ms: u64,

    /// How long a claimed delivery is left to its worker before another
    /// replica takes it over, in seconds.
    #[arg(long, env = "HERMES_DELIVERY_CLAIM_TIMEOUT_SECS", default_value_t = DEFAULT_CLAIM_TIMEOUT.as_secs())]
    pub delivery_claim_timeout_secs: u64,

    /// How long one delivery request may take, in seconds.
    #[arg(long, env = "HERMES_DELIVERY_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub delivery_timeout_secs: u64,

    /// How many attempts a delivery gets before it becomes a dead letter.
    #[arg(long, env = "HERMES_DELIVERY_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS)]
    pub delivery_max_attempts: u32,

    /// The wait after the first failed attempt, in milliseconds; it doubles after each.
    #[arg(long, env = "HERMES_DELIVERY_BACKOFF_BASE_MS", default_value_t = millis(DEFAULT_BACKOFF_BASE))]
    pub delivery_backoff_base_ms: u64,

    /// The longest wait between attempts, in seconds.
    #[arg(long, env = "HERMES_DELIVERY_BACKOFF_MAX_SECS", default_value_t = DEFAULT_BACKOFF_MAX.as_secs())]
    pub delivery_backoff_max_secs: u64,

    /// How many customers the worker delivers to at once.
    #[arg(long, env = "HERMES_DELIVERY_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY)]
    pub delivery_concurrency: usize,
}

impl DeliveryArgs {
    /// The settings these options describe.
    ///
    /// # Errors
    ///
    /// [`InboundConfigError`] naming the variable at fault.
    pub fn settings(&self) -> Result<DeliverySettings, InboundConfigError> {
        let nonzero = |value: u64, name: &'static str| {
            if value == 0 {
                Err(InboundConfigError::Zero(name))
            } else {
                Ok(value)
            }
        };
        nonzero(self.delivery_poll_interval_ms, "HERMES_DELIVERY_POLL_INTERVAL_MS")?;
        nonzero(self.delivery_timeout_secs, "HERMES_DELIVERY_TIMEOUT_SECS")?;
        nonzero(
            u64::from(self.delivery_max_attempts),
            "HERMES_DELIVERY_MAX_ATTEMPTS",
        )?;
        nonzero(self.delivery_backoff_base_ms, "HERMES_DELIVERY_BACKOFF_BASE_MS")?;
        nonzero(self.delivery_backoff_max_secs, "HERMES_DELIVERY_BACKOFF_MAX_SECS")?;
        nonzero(self.delivery_concurrency as u64, "HERMES_DELIVERY_CONCURRENCY")?;
        if self.delivery_claim_timeout_secs <= self.delivery_timeout_secs {
            return Err(InboundConfigError::ClaimTimeoutTooShort {
                claim: self.delivery_claim_timeout_secs,
                request: self.delivery_timeout_secs,
            });
        }

        Ok(DeliverySettings {
            enabled: self.delivery_enabled,
            poll_interval: Duration::from_millis(self.delivery_poll_interval_ms),
            claim_timeout: Duration::from_secs(self.delivery_claim_timeout_secs),
            request_timeout: Duration::from_secs(self.delivery_timeout_secs),
            max_attempts: self.delivery_max_attempts,
            backoff_base: Duration::from_millis(self.delivery_backoff_base_ms),
            backoff_max: Duration::from_secs(self.delivery_backoff_max_secs),
            concurrency: self.delivery_concurrency,
            batch: DEFAULT_BATCH,
        })
    }
}

const fn millis(duration: Duration) -> u64 {
    duration.as_secs() * 1000 + duration.subsec_millis() as u64
}
