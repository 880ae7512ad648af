//! Telegram's webhooks: `POST /webhook/telegram/{connection}`.
//!
//! Each Telegram connection has its own URL, named by its route id
//! (`<namespace>.<connection name>`), and its own secret token: the
//! `webhookSecretToken` credential, which the bot's `setWebhook` was given
//! and Telegram repeats in `X-Telegram-Bot-Api-Secret-Token` on every call.
//! The token is checked in constant time before the body is parsed; the
//! update then goes to the inbox of the customer owning the connection,
//! once per `update_id`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use hermes_crds::Platform;
use hermes_state::tenancy::requirements::fields::WEBHOOK_SECRET_TOKEN;
use hermes_state::tenancy::{self, ApplyError};

use super::payload;
use super::signature::{TELEGRAM_SECRET_HEADER, tokens_match};
use super::{Owners, Tally, WebhookError, append, conclude, raw_body};
use crate::app::AppState;

/// The longest connection id: a namespace (63), a dot and a name (253).
const MAX_CONNECTION_ID_LEN: usize = 317;

/// `POST /webhook/telegram/{connection}`.
pub async fn receive(
    State(app): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = receive_update(&app, &connection, &headers, body).await;
    conclude(&app, Platform::Telegram, result)
}

async fn receive_update(
    app: &AppState,
    connection: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Tally, WebhookError> {
    if !is_connection_id(connection) {
        return Err(WebhookError::UnknownConnection);
    }
    let presented = headers
        .get(TELEGRAM_SECRET_HEADER)
        .ok_or(WebhookError::SecretTokenMissing)?;

    let owner = Owners::default()
        .of(app, Platform::Telegram, connection)
        .await?
        .ok_or(WebhookError::UnknownConnection)?;
    let credentials = match tenancy::load_credentials(
        app.store.as_ref(),
        &app.keyring,
        &owner,
        Platform::Telegram,
    )
    .await
    {
        Ok(Some(credentials)) => credentials,
        Ok(None) => return Err(WebhookError::UnknownConnection),
        Err(ApplyError::ReadCredentialsFailed(error)) => {
            tracing::warn!(%error, "reading credentials failed; answering 503 for a retry");
            return Err(WebhookError::Unavailable);
        }
        Err(error) => {
            // Telegram retries for a while: a keyring put right in time loses nothing.
            tracing::warn!(%error, customer = %owner, "the telegram connection's credentials do not open");
            return Err(WebhookError::Unavailable);
        }
    };
    let expected = credentials
        .secret(WEBHOOK_SECRET_TOKEN)
        .ok_or(WebhookError::SecretTokenInvalid)?;
    if !tokens_match(expected.as_bytes(), presented.as_bytes()) {
        return Err(WebhookError::SecretTokenInvalid);
    }

    let body = raw_body(body)?;
    let event = payload::telegram::parse(connection, &body)?;
    let appended = append(app, &owner, event).await?;
    Ok(Tally {
        stored: u64::from(!appended.is_duplicate()),
        duplicate: u64::from(appended.is_duplicate()),
        ..Tally::default()
    })
}

/// A route id as tenancy writes them: 1 to 317 of `A-Z a-z 0-9 . _ -`.
fn is_connection_id(id: &str) -> bool {
    (1..=MAX_CONNECTION_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
