//! The Discord HTTP API (v10), platforms.md section 3.
//!
//! `POST {base}/channels/{channel id}/messages` with `Authorization: Bot
//! <token>` and a JSON body; the answer is the created message. Errors are
//! `{code, message, errors}`; a 429 is `{message, retry_after, global}`
//! with `Retry-After` and `X-RateLimit-Reset-After` headers.
//!
//! Every message carries a fresh `nonce` with `enforce_nonce`, so Discord
//! drops a second message with the same nonce sent shortly after the
//! first. That makes one automatic retry safe: a send that timed out or met
//! a 5xx is sent once more, with the same nonce, and cannot post twice.

use std::time::Duration;

use hermes_crds::Platform;
use http::HeaderValue;
use http::header::{AUTHORIZATION, USER_AGENT};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::debug;

use super::http::{Answer, malformed, send};
use super::{Endpoint, api_url, refusal};
use crate::tools::ToolError;

pub use hermes_state::tenancy::requirements::fields::BOT_TOKEN;

/// The `User-Agent` Discord requires of bots: `DiscordBot ($url, $version)`.
pub const USER_AGENT_VALUE: &str = concat!(
    "DiscordBot (https://hermes.squaremcp.com, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// How long to wait before the one retry of a send that met a 5xx or timed
/// out: long enough for a restarted upstream to answer, short enough that
/// the whole call stays well inside an MCP client's patience. With the
/// retry, a send takes at most twice the endpoint's timeout plus this.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A message to create.
#[derive(Clone, Copy, Debug)]
pub struct ChannelMessage<'a> {
    /// The channel's snowflake id.
    pub channel_id: &'a str,
    /// The text, 1 to 2000 characters.
    pub content: &'a str,
    /// The id of a message in the channel this one replies to.
    pub reply_to: Option<&'a str>,
}

/// The JSON parameters of Create Message that Hermes sets (platforms.md 3.2).
#[derive(Debug, Serialize)]
struct CreateMessageBody<'a> {
    content: &'a str,
    nonce: &'a str,
    enforce_nonce: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_reference: Option<MessageReference<'a>>,
}

#[derive(Debug, Serialize)]
struct MessageReference<'a> {
    message_id: &'a str,
}

/// The created message, as far as Hermes reads it.
#[derive(Debug, Deserialize)]
struct CreatedMessage {
    id: String,
}

/// A Discord error body, a 429's included.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    /// Per-field errors of a 50035 "Invalid Form Body".
    #[serde(default)]
    errors: Option<Value>,
    /// Seconds to wait, fractional, on a 429.
    #[serde(default)]
    retry_after: Option<f64>,
}

/// Creates a message in a channel as the bot `bot_token` and returns the
/// message's id.
///
/// The message carries a nonce generated here. A send that times out or is
/// answered with a 5xx is sent once more, after [`RETRY_PAUSE`], with the
/// same nonce; what the second attempt meets is the result.
///
/// # Errors
///
/// The errors of [`send`], and of [`error_from_answer`] for a non-success
/// status; `malformed response` when a success answer names no message.
pub async fn create_message(
    endpoint: &Endpoint<'_>,
    bot_token: &str,
    message: &ChannelMessage<'_>,
) -> Result<String, ToolError> {
    let url = messages_url(endpoint.base_url, message.channel_id)?;
    let authorization = authorization(bot_token)?;
    let nonce = new_nonce();
    let body = CreateMessageBody {
        content: message.content,
        nonce: &nonce,
        enforce_nonce: true,
        message_reference: message.reply_to.map(|message_id| MessageReference { message_id }),
    };
    let attempt = || {
        let request = endpoint
            .http
            .post(url.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .json(&body);
        send(Platform::Discord, endpoint, request)
    };

    let answer = match attempt().await {
        Err(ToolError::Timeout(_)) => {
            debug!("discord send timed out; retrying once with the same nonce");
            tokio::time::sleep(RETRY_PAUSE).await;
            attempt().await?
        }
        Ok(answer) if answer.status.is_server_error() => {
            debug!(status = %answer.status, "discord answered a server error; retrying once with the same nonce");
            tokio::time::sleep(RETRY_PAUSE).await;
            attempt().await?
        }
        first => first?,
    };
    if !answer.status.is_success() {
        return Err(error_from_answer(&answer, bot_token));
    }

    let created: CreatedMessage =
        serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::Discord))?;
    Ok(created.id)
}

/// The tool error of a Discord answer that is not a success.
///
/// A 429 is [`ToolError::RateLimited`], waiting as long as the body's
/// `retry_after`, else `Retry-After`, else `X-RateLimit-Reset-After` says
/// (fractions round up). Otherwise an error body with a non-zero `code` is
/// [`ToolError::Platform`] with that code, its message followed by the
/// per-field errors; a body without one (Discord answers a bad token with
/// code 0) is named by the HTTP status. The token is removed from
/// everything passed on.
pub fn error_from_answer(answer: &Answer, bot_token: &str) -> ToolError {
    let body = serde_json::from_slice::<ErrorBody>(&answer.body).ok();

    if answer.status == http::StatusCode::TOO_MANY_REQUESTS {
        let retry_after_secs = body
            .as_ref()
            .and_then(|body| body.retry_after)
            .or_else(|| header_seconds(&answer.headers, "retry-after"))
            .or_else(|| header_seconds(&answer.headers, "x-ratelimit-reset-after"))
            .map(whole_seconds);
        return ToolError::RateLimited {
            platform: Platform::Discord,
            retry_after_secs,
        };
    }

    let Some(body) = body else {
        return refusal(Platform::Discord, answer.status, None, None, &[bot_token]);
    };
    let mut message = body.message.unwrap_or_default();
    let fields = body.errors.as_ref().map(field_errors).unwrap_or_default();
    if !fields.is_empty() {
        message.push_str(": ");
        message.push_str(&fields.join("; "));
    }
    let code = body.code.filter(|code| *code != 0).map(|code| code.to_string());
    refusal(
        Platform::Discord,
        answer.status,
        code,
        Some(&message),
        &[bot_token],
    )
}

/// The per-field errors of an "Invalid Form Body", as `path: message`.
///
/// Discord nests them by field path (`{"content": {"_errors": [{code,
/// message}]}}`, array indices as keys); the path is joined with dots.
fn field_errors(errors: &Value) -> Vec<String> {
    fn walk(path: &mut Vec<String>, value: &Value, out: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            return;
        };
        for (key, value) in object {
            if key == "_errors" {
                let messages = value.as_array().into_iter().flatten();
                for message in messages.filter_map(|error| error.get("message")?.as_str()) {
                    out.push(format!("{}: {message}", path.join(".")));
                }
            } else {
                path.push(key.clone());
                walk(path, value, out);
                path.pop();
            }
        }
    }

    let mut out = Vec::new();
    walk(&mut Vec::new(), errors, &mut out);
    out
}

/// A header's value as (possibly fractional) seconds.
fn header_seconds(headers: &http::HeaderMap, name: &str) -> Option<f64> {
    let seconds: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

/// Fractional seconds rounded up to whole ones; never negative.
fn whole_seconds(seconds: f64) -> u64 {
    // Clamped first, so the cast neither wraps nor truncates (and a float
    // to integer cast saturates anyway).
    seconds.ceil().clamp(0.0, f64::from(u32::MAX)) as u64
}

/// A nonce for one message: 16 hex digits, inside Discord's 25 characters.
fn new_nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `Bot <token>`, marked sensitive so it is never printed.
fn authorization(bot_token: &str) -> Result<HeaderValue, ToolError> {
    let mut value = HeaderValue::from_str(&format!("Bot {bot_token}")).map_err(|_| {
        tracing::warn!("the Discord bot token cannot be a header value");
        ToolError::Internal
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `{base}/channels/{channel id}/messages`, each segment escaped.
fn messages_url(base: &str, channel_id: &str) -> Result<reqwest::Url, ToolError> {
    api_url(Platform::Discord, base, &["channels", channel_id, "messages"])
}

#[cfg(test)]
mod tests;
