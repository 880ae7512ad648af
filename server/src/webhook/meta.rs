//! Meta's webhooks: WhatsApp and Instagram.
//!
//! **Subscription handshake.** When a callback URL is saved in the App
//! Dashboard, Meta calls `GET` with `hub.mode=subscribe`, `hub.challenge`
//! and `hub.verify_token`; the answer is the challenge, raw, when the token
//! is the deployment's `HERMES_META_VERIFY_TOKEN`, and 403 otherwise.
//!
//! **Signature.** Every POST carries `X-Hub-Signature-256: sha256=<hex>`,
//! the HMAC-SHA256 of the raw body under the Meta app's secret. Two kinds
//! of app may send:
//!
//! - the deployment's own app (`HERMES_META_APP_SECRET`), trusted for
//!   every account;
//! - a tenant's own app, whose secret is the connection's `appSecret`
//!   credential. Such a body is trusted only for the accounts of
//!   connections holding that same secret: a tenant cannot sign events into
//!   another tenant's inbox with its own app.
//!
//! To find a tenant's secret, the routing ids of the unverified body are
//! read ([`payload::whatsapp::accounts`]), at most [`MAX_SECRET_CANDIDATES`]
//! of them; nothing else of an unverified body is used.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hermes_crds::Platform;
use hermes_state::CustomerId;
use hermes_state::tenancy::requirements::fields::APP_SECRET;
use hermes_state::tenancy::{self, ApplyError};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::payload::{self, MetaBatch, PayloadError};
use super::signature::{META_SIGNATURE_HEADER, MetaSignature, tokens_match};
use super::{Owners, Tally, WebhookError, append, conclude, raw_body};
use crate::app::AppState;

/// How many accounts of an unverified body are tried for a tenant's app
/// secret. A genuine body from a tenant's app names that tenant's accounts
/// only, so a few suffice; the bound keeps a forged body from costing more.
pub const MAX_SECRET_CANDIDATES: usize = 8;

/// The longest `hub.challenge` echoed.
const MAX_CHALLENGE_LEN: usize = 256;

/// The query of Meta's subscription handshake.
#[derive(Debug, Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhook/whatsapp` and `GET /webhook/instagram`: Meta's
/// subscription handshake. 200 with the raw challenge, or 403.
pub async fn verify_subscription(
    State(app): State<AppState>,
    query: Result<Query<Handshake>, QueryRejection>,
) -> Response {
    match handshake(&app, query.ok().map(|Query(query)| query)) {
        Ok(challenge) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        Err(error) => {
            tracing::debug!(%error, "webhook verification refused");
            error.into_response()
        }
    }
}

fn handshake(app: &AppState, query: Option<Handshake>) -> Result<String, WebhookError> {
    let query = query.ok_or(WebhookError::VerificationRefused)?;
    let expected = app
        .settings
        .meta_verify_token
        .as_deref()
        .filter(|token| !token.is_empty())
        .ok_or(WebhookError::VerificationRefused)?;
    let presented = query.verify_token.unwrap_or_default();
    if query.mode.as_deref() != Some("subscribe") || !tokens_match(expected.as_bytes(), presented.as_bytes())
    {
        return Err(WebhookError::VerificationRefused);
    }

    let challenge = query.challenge.unwrap_or_default();
    let echoable =
        (1..=MAX_CHALLENGE_LEN).contains(&challenge.len()) && challenge.bytes().all(|b| b.is_ascii_graphic());
    if echoable {
        Ok(challenge)
    } else {
        Err(WebhookError::InvalidChallenge)
    }
}

/// `POST /webhook/whatsapp`.
pub async fn receive_whatsapp(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = receive(&app, Source::Whatsapp, &headers, body).await;
    conclude(&app, Platform::Whatsapp, result)
}

/// `POST /webhook/instagram`.
pub async fn receive_instagram(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = receive(&app, Source::Instagram, &headers, body).await;
    conclude(&app, Platform::Instagram, result)
}

/// The Meta platform a webhook comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    Whatsapp,
    Instagram,
}

impl Source {
    fn platform(self) -> Platform {
        match self {
            Source::Whatsapp => Platform::Whatsapp,
            Source::Instagram => Platform::Instagram,
        }
    }

    fn parse(self, body: &[u8]) -> Result<MetaBatch, PayloadError> {
        match self {
            Source::Whatsapp => payload::whatsapp::parse(body),
            Source::Instagram => payload::instagram::parse(body),
        }
    }

    fn accounts(self, body: &[u8]) -> Vec<String> {
        match self {
            Source::Whatsapp => payload::whatsapp::accounts(body, MAX_SECRET_CANDIDATES),
            Source::Instagram => payload::instagram::accounts(body, MAX_SECRET_CANDIDATES),
        }
    }
}

/// Who signed a body.
enum Signer {
    /// The deployment's Meta app.
    Deployment,
    /// A tenant's own Meta app, with this secret.
    Tenant(Zeroizing<String>),
}

async fn receive(
    app: &AppState,
    source: Source,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Tally, WebhookError> {
    let body = raw_body(body)?;
    let signer = verify(app, source, headers, &body).await?;
    let batch = source.parse(&body)?;
    store(app, source.platform(), &signer, batch).await
}

/// Verifies the body's signature with the deployment's secret, then with
/// the app secrets of the connections the body names.
async fn verify(
    app: &AppState,
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Signer, WebhookError> {
    let signature = MetaSignature::from_header(headers.get(META_SIGNATURE_HEADER))?;

    if let Some(secret) = app.settings.meta_app_secret.as_deref().filter(|s| !s.is_empty())
        && signature.verifies(secret.as_bytes(), body)
    {
        return Ok(Signer::Deployment);
    }

    let platform = source.platform();
    let mut owners = Owners::default();
    for account in source.accounts(body) {
        let Some(owner) = owners.of(app, platform, &account).await? else {
            continue;
        };
        if let Some(secret) = app_secret(app, &owner, platform).await?
            && signature.verifies(secret.as_bytes(), body)
        {
            return Ok(Signer::Tenant(secret));
        }
    }
    Err(WebhookError::SignatureInvalid)
}

/// The `appSecret` credential of a customer's connection, if it has one.
async fn app_secret(
    app: &AppState,
    customer: &CustomerId,
    platform: Platform,
) -> Result<Option<Zeroizing<String>>, WebhookError> {
    match tenancy::load_credentials(app.store.as_ref(), &app.keyring, customer, platform).await {
        Ok(credentials) => Ok(credentials
            .as_ref()
            .and_then(|credentials| credentials.secret(APP_SECRET))
            .map(|secret| Zeroizing::new(secret.to_owned()))),
        Err(ApplyError::ReadCredentialsFailed(error)) => {
            tracing::warn!(%error, "reading credentials failed; answering 503 for a retry");
            Err(WebhookError::Unavailable)
        }
        Err(error) => {
            tracing::warn!(%error, customer = %customer, %platform, "a connection's credentials do not open");
            Ok(None)
        }
    }
}

/// Appends every event of a verified batch to the inbox of its account's owner.
async fn store(
    app: &AppState,
    platform: Platform,
    signer: &Signer,
    batch: MetaBatch,
) -> Result<Tally, WebhookError> {
    let mut tally = Tally {
        skipped: batch.skipped as u64,
        ..Tally::default()
    };
    let mut owners = Owners::default();
    let mut trusted: Vec<(CustomerId, bool)> = Vec::new();

    for event in batch.events {
        let Some(owner) = owners.of(app, platform, &event.account).await? else {
            tracing::warn!(%platform, account = %event.account, "webhook event for an account no customer owns; dropped");
            tally.unroutable += 1;
            continue;
        };
        if !signed_for(app, signer, &owner, platform, &mut trusted).await? {
            tracing::warn!(%platform, account = %event.account, customer = %owner, "webhook signed by another tenant's app; event dropped");
            tally.refused += 1;
            continue;
        }

        let appended = append(app, &owner, event).await?;
        if appended.is_duplicate() {
            tally.duplicate += 1;
        } else {
            tally.stored += 1;
        }
    }
    Ok(tally)
}

/// Whether `signer` may speak for `owner`'s account: the deployment's app
/// may; a tenant's app only if `owner`'s connection holds the same secret.
async fn signed_for(
    app: &AppState,
    signer: &Signer,
    owner: &CustomerId,
    platform: Platform,
    trusted: &mut Vec<(CustomerId, bool)>,
) -> Result<bool, WebhookError> {
    let Signer::Tenant(secret) = signer else {
        return Ok(true);
    };
    if let Some((_, known)) = trusted.iter().find(|(customer, _)| customer == owner) {
        return Ok(*known);
    }
    let own = app_secret(app, owner, platform).await?;
    let same = own.is_some_and(|own| tokens_match(own.as_bytes(), secret.as_bytes()));
    trusted.push((owner.clone(), same));
    Ok(same)
}
