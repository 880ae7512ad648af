//! Inbound webhooks: verified, stored durably in the customer's inbox, then
//! acknowledged.
//!
//! | route | sender | verified by |
//! |---|---|---|
//! | `GET /webhook/whatsapp`, `GET /webhook/instagram` | Meta's subscription handshake | `hub.verify_token` ([`meta::verify_subscription`]) |
//! | `POST /webhook/whatsapp` | WhatsApp Cloud API | `X-Hub-Signature-256` ([`meta`]) |
//! | `POST /webhook/instagram` | Instagram (`object: "instagram"`) | `X-Hub-Signature-256` ([`meta`]) |
//! | `POST /webhook/telegram/{connection}` | Telegram Bot API | `X-Telegram-Bot-Api-Secret-Token` ([`telegram`]) |
//!
//! Every POST takes the same steps, in order: read the raw body (at most
//! [`InboundSettings::max_body_bytes`], else 413); verify who sent it (else
//! 401, and nothing is read from the body but the ids that choose the
//! secret); parse it with the pure functions of [`payload`] (else 400);
//! append each event to the inbox of the customer owning its route, once
//! per dedup key; answer 200. If an append fails the answer is 503 and the
//! sender retries; what was appended before is recognised as a duplicate
//! then. An event whose route no customer owns is counted, logged as a
//! warning and dropped: the sender would retry it in vain.
//!
//! The events then go to the customer's own endpoint, if it named one, by
//! the [`delivery`](crate::delivery) worker.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hermes_crds::Platform;
use hermes_state::CustomerId;
use hermes_state::store::{Appended, InboundEvent, Route};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::delivery::DeliverySettings;

pub mod meta;
pub mod payload;
pub mod signature;
pub mod telegram;

use payload::{ParsedEvent, PayloadError};
use signature::SignatureError;

/// The largest webhook body accepted by default: 3 MiB, above Meta's 3 MB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How many events a customer's inbox keeps by default; older ones are trimmed.
pub const DEFAULT_INBOX_MAX_LEN: usize = 10_000;

/// What the inbound side of a server does: webhook limits, the inbox, and
/// delivery to the customers' endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundSettings {
    /// The largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How many events a customer's inbox keeps, about.
    pub inbox_max_len: usize,
    /// The delivery worker's settings.
    pub delivery: DeliverySettings,
}

impl Default for InboundSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            inbox_max_len: DEFAULT_INBOX_MAX_LEN,
            delivery: DeliverySettings::default(),
        }
    }
}

/// The command-line options of the inbound side (each also an environment variable).
#[derive(Debug, Clone, clap::Args)]
pub struct InboundArgs {
    /// The largest webhook body accepted, in bytes. Meta's payloads reach 3 MB.
    #[arg(long, env = "HERMES_WEBHOOK_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub webhook_max_body_bytes: usize,

    /// How many inbound events each customer's inbox keeps; older ones are trimmed.
    #[arg(long, env = "HERMES_INBOX_MAX_LEN", default_value_t = DEFAULT_INBOX_MAX_LEN)]
    pub inbox_max_len: usize,

    /// Delivery to the customers' own endpoints.
    #[command(flatten)]
    pub delivery: crate::delivery::DeliveryArgs,
}

/// An inbound option that cannot be used; names the variable and the value.
#[derive(Debug, thiserror::Error)]
pub enum InboundConfigError {
    /// A size or count is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The delivery claim timeout does not leave room for a request to finish.
    #[error(
        "HERMES_DELIVERY_CLAIM_TIMEOUT_SECS ({claim}) must be greater than HERMES_DELIVERY_TIMEOUT_SECS \
         ({request}): a delivery still in flight would be handed to another worker"
    )]
    ClaimTimeoutTooShort {
        /// The claim timeout, in seconds.
        claim: u64,
        /// The request timeout, in seconds.
        request: u64,
    },
}

impl InboundArgs {
    /// The settings these options describe.
    ///
    /// # Errors
    ///
    /// [`InboundConfigError`] naming the variable at fault.
    pub fn settings(&self) -> Result<InboundSettings, InboundConfigError> {
        if self.webhook_max_body_bytes == 0 {
            return Err(InboundConfigError::Zero("HERMES_WEBHOOK_MAX_BODY_BYTES"));
        }
        if self.inbox_max_len == 0 {
            return Err(InboundConfigError::Zero("HERMES_INBOX_MAX_LEN"));
        }
        Ok(InboundSettings {
            max_body_bytes: self.webhook_max_body_bytes,
            inbox_max_len: self.inbox_max_len,
            delivery: self.delivery.settings()?,
        })
    }
}

/// The webhook routes, with their own body limit.
pub fn router(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/webhook/whatsapp",
            get(meta::verify_subscription).post(meta::receive_whatsapp),
        )
        .route(
            "/webhook/instagram",
            get(meta::verify_subscription).post(meta::receive_instagram),
        )
        .route("/webhook/telegram/{connection}", post(telegram::receive))
        .layer(DefaultBodyLimit::max(app.settings.inbound.max_body_bytes))
}

/// The path prefix every webhook route shares.
pub const PATH_PREFIX: &str = "/webhook/";

/// Why a webhook request is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is over [`InboundSettings::max_body_bytes`].
    #[error("the body is larger than this endpoint accepts")]
    PayloadTooLarge,
    /// The body could not be read to its end.
    #[error("the body could not be read")]
    BodyUnreadable,
    /// The signature header is missing or malformed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// No secret the body could be signed with gives its signature.
    #[error("the signature does not match the body")]
    SignatureInvalid,
    /// `X-Telegram-Bot-Api-Secret-Token` is missing.
    #[error("the secret token header is missing")]
    SecretTokenMissing,
    /// `X-Telegram-Bot-Api-Secret-Token` is not the connection's.
    #[error("the secret token does not match")]
    SecretTokenInvalid,
    /// The URL names no connection that can receive webhooks.
    #[error("no connection here receives this webhook")]
    UnknownConnection,
    /// The body is not what the platform sends.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The subscription handshake's mode or verify token is wrong.
    #[error("verification refused")]
    VerificationRefused,
    /// The handshake's challenge is not something to echo.
    #[error("hub.challenge must be 1 to 256 visible ASCII characters")]
    InvalidChallenge,
    /// The inbox (or the credentials behind a route) could not be reached.
    #[error("the inbox is unavailable; retry later")]
    Unavailable,
}

impl WebhookError {
    /// The one mapping from a refusal to its status and stable code.
    pub fn classify(&self) -> (StatusCode, &'static str) {
        match self {
            WebhookError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            WebhookError::BodyUnreadable => (StatusCode::BAD_REQUEST, "body_unreadable"),
            WebhookError::Signature(SignatureError::Missing) => {
                (StatusCode::UNAUTHORIZED, "signature_missing")
            }
            WebhookError::Signature(SignatureError::Malformed) => {
                (StatusCode::UNAUTHORIZED, "signature_malformed")
            }
            WebhookError::SignatureInvalid => (StatusCode::UNAUTHORIZED, "signature_invalid"),
            WebhookError::SecretTokenMissing => (StatusCode::UNAUTHORIZED, "secret_token_missing"),
            WebhookError::SecretTokenInvalid => (StatusCode::UNAUTHORIZED, "secret_token_invalid"),
            WebhookError::UnknownConnection => (StatusCode::NOT_FOUND, "unknown_connection"),
            WebhookError::Payload(PayloadError::NotJson { .. }) => {
                (StatusCode::BAD_REQUEST, "malformed_json")
            }
            WebhookError::Payload(PayloadError::UnexpectedObject { .. }) => {
                (StatusCode::BAD_REQUEST, "unexpected_object")
            }
            WebhookError::Payload(PayloadError::Shape { .. }) => (StatusCode::BAD_REQUEST, "invalid_payload"),
            WebhookError::VerificationRefused => (StatusCode::FORBIDDEN, "verification_refused"),
            WebhookError::InvalidChallenge => (StatusCode::BAD_REQUEST, "invalid_challenge"),
            WebhookError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

    /// The refusal of a body the extractor could not read.
    fn from_rejection(rejection: &BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebhookError::PayloadTooLarge
        } else {
            WebhookError::BodyUnreadable
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let (status, code) = self.classify();
        let body = json!({ "error": { "code": code, "message": self.to_string() } });
        (status, axum::Json(body)).into_response()
    }
}

/// The raw body of a webhook, or the refusal of one that could not be read.
fn raw_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, WebhookError> {
    body.map_err(|rejection| WebhookError::from_rejection(&rejection))
}

/// What became of the events of one webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events appended to an inbox.
    pub stored: u64,
    /// Events an inbox already had (redeliveries).
    pub duplicate: u64,
    /// Events for an account no customer owns, dropped.
    pub unroutable: u64,
    /// Events for an account whose connection did not sign the body, dropped.
    pub refused: u64,
    /// Parts of the body that are not stored (echoes, other change fields).
    pub skipped: u64,
}

/// The outcome labels of the webhook metric.
mod outcome {
    pub const RECEIVED: &str = "received";
    pub const REJECTED: &str = "rejected";
    pub const FAILED: &str = "failed";
    pub const STORED: &str = "stored";
    pub const DUPLICATE: &str = "duplicate";
    pub const UNROUTABLE: &str = "unroutable";
    pub const REFUSED: &str = "refused";
    pub const SKIPPED: &str = "skipped";
}

/// Counts a webhook request's outcome in the metrics, and turns it into the answer.
fn conclude(app: &AppState, platform: Platform, result: Result<Tally, WebhookError>) -> Response {
    let metrics = &app.metrics;
    let name = platform.as_str();
    metrics.observe_webhook(name, outcome::RECEIVED, 1);
    match result {
        Ok(tally) => {
            for (label, count) in [
                (outcome::STORED, tally.stored),
                (outcome::DUPLICATE, tally.duplicate),
                (outcome::UNROUTABLE, tally.unroutable),
                (outcome::REFUSED, tally.refused),
                (outcome::SKIPPED, tally.skipped),
            ] {
                if count > 0 {
                    metrics.observe_webhook(name, label, count);
                }
            }
            tracing::debug!(
                stored = tally.stored,
                duplicate = tally.duplicate,
                unroutable = tally.unroutable,
                "webhook stored"
            );
            StatusCode::OK.into_response()
        }
        Err(error) => {
            let (status, code) = error.classify();
            let label = if status.is_server_error() {
                outcome::FAILED
            } else {
                outcome::REJECTED
            };
            metrics.observe_webhook(name, label, 1);
            tracing::debug!(%error, code, "webhook refused");
            error.into_response()
        }
    }
}

/// Appends one event to `customer`'s inbox, stamped with the time it arrived.
async fn append(
    app: &AppState,
    customer: &CustomerId,
    parsed: ParsedEvent,
) -> Result<Appended, WebhookError> {
    let mut event = parsed.event.to_json();
    event.insert("receivedAt".into(), json!(jiff::Timestamp::now()));
    let inbound = InboundEvent {
        dedup_key: parsed.dedup_key,
        event: Value::Object(event),
        status_of: parsed.status_of,
    };
    app.store
        .append_inbound(customer, &inbound, app.settings.inbound.inbox_max_len)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "appending to an inbox failed; answering 503 for a retry");
            WebhookError::Unavailable
        })
}

/// The customers owning the routes of one request, looked up once each.
#[derive(Debug, Default)]
struct Owners {
    known: HashMap<String, Option<CustomerId>>,
}

impl Owners {
    async fn of(
        &mut self,
        app: &AppState,
        platform: Platform,
        account: &str,
    ) -> Result<Option<CustomerId>, WebhookError> {
        if let Some(owner) = self.known.get(account) {
            return Ok(owner.clone());
        }
        let route = Route {
            platform,
            id: account.to_owned(),
        };
        let owner = app.store.route_owner(&route).await.map_err(|error| {
            tracing::warn!(%error, "reading a route failed; answering 503 for a retry");
            WebhookError::Unavailable
        })?;
        self.known.insert(account.to_owned(), owner.clone());
        Ok(owner)
    }
}
