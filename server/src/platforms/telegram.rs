//! The Telegram Bot API, platforms.md section 2.
//!
//! `POST {base}/bot<token>/sendMessage` with a JSON body. Every answer is
//! an envelope: `{"ok": true, "result": …}` on success, `{"ok": false,
//! "error_code", "description", "parameters": {"retry_after",
//! "migrate_to_chat_id"}}` on failure.
//!
//! The bot token is part of the request URL, so the URL is a secret here:
//! [`send`] neither logs nor returns it, and Telegram's descriptions are
//! scrubbed of the token before they reach a [`ToolError`].

use hermes_crds::Platform;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::http::{Answer, malformed, retry_after, send};
use super::{Endpoint, api_url, refusal};
use crate::tools::ToolError;

pub use hermes_state::tenancy::requirements::fields::BOT_TOKEN;

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ChatId<'a> {
    /// A chat's numeric id (negative for groups and channels).
    Id(i64),
    /// A public channel's username, with the `@`.
    Username(&'a str),
}

/// How Telegram reads formatting out of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ParseMode {
    /// Telegram's MarkdownV2 dialect.
    MarkdownV2,
    /// A subset of HTML tags.
    #[serde(rename = "HTML")]
    Html,
}

/// A text message to send.
#[derive(Clone, Copy, Debug)]
pub struct TextMessage<'a> {
    /// The chat.
    pub chat_id: ChatId<'a>,
    /// The text, 1 to 4096 characters after entity parsing.
    pub text: &'a str,
    /// How the text is formatted; plain text when `None`.
    pub parse_mode: Option<ParseMode>,
    /// The id of a message in the same chat this one replies to.
    pub reply_to: Option<i64>,
    /// Whether the recipients are notified without sound.
    pub disable_notification: bool,
}

/// The `sendMessage` parameters Hermes sets (platforms.md 2.2).
#[derive(Debug, Serialize)]
struct SendMessageBody<'a> {
    chat_id: ChatId<'a>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_mode: Option<ParseMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_parameters: Option<ReplyParameters>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    disable_notification: bool,
}

/// `reply_parameters`, which replaced the legacy `reply_to_message_id`.
#[derive(Debug, Serialize)]
struct ReplyParameters {
    message_id: i64,
}

/// The envelope of every Bot API answer.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

/// `ResponseParameters` of a failed call.
#[derive(Debug, Deserialize)]
struct ResponseParameters {
    /// Seconds to wait after hitting flood control.
    #[serde(default)]
    retry_after: Option<u64>,
    /// The supergroup a group became; the old chat id no longer works.
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// The sent `Message`, as far as Hermes reads it.
#[derive(Debug, Deserialize)]
struct SentMessage {
    message_id: i64,
}

/// Sends a text message as the bot `bot_token` and returns the sent
/// message's id.
///
/// # Errors
///
/// The errors of [`send`], and of [`error_from_answer`] for a failure
/// envelope or a non-success status; `malformed response` when a success
/// answer is not an envelope naming a message.
pub async fn send_message(
    endpoint: &Endpoint<'_>,
    bot_token: &str,
    message: &TextMessage<'_>,
) -> Result<i64, ToolError> {
    let url = method_url(endpoint.base_url, bot_token, "sendMessage")?;
    let body = SendMessageBody {
        chat_id: message.chat_id,
        text: message.text,
        parse_mode: message.parse_mode,
        reply_parameters: message.reply_to.map(|message_id| ReplyParameters { message_id }),
        disable_notification: message.disable_notification,
    };

    let request = endpoint.http.post(url).json(&body);
    let answer = send(Platform::Telegram, endpoint, request).await?;
    if !answer.status.is_success() {
        return Err(error_from_answer(&answer, bot_token));
    }

    let envelope: Envelope<SentMessage> =
        serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::Telegram))?;
    match envelope {
        Envelope {
            ok: true,
            result: Some(sent),
            ..
        } => Ok(sent.message_id),
        Envelope { ok: true, .. } => Err(malformed(Platform::Telegram)),
        Envelope { ok: false, .. } => Err(error_from_answer(&answer, bot_token)),
    }
}

/// The tool error of a failed Bot API call.
///
/// A 429 status or `error_code` is [`ToolError::RateLimited`], waiting as
/// long as `parameters.retry_after` says (else the `Retry-After` header).
/// Otherwise it is [`ToolError::Platform`] with `error_code` as the code and
/// the description as the message, naming the chat a group migrated to; an
/// answer that is not an envelope is named by its HTTP status. The token
/// is removed from everything passed on.
pub fn error_from_answer(answer: &Answer, bot_token: &str) -> ToolError {
    let envelope = serde_json::from_slice::<Envelope<IgnoredAny>>(&answer.body).ok();
    let Some(envelope) = envelope else {
        if answer.status == http::StatusCode::TOO_MANY_REQUESTS {
            return rate_limited(retry_after(&answer.headers));
        }
        return refusal(Platform::Telegram, answer.status, None, None, &[bot_token]);
    };

    let parameters = envelope.parameters.unwrap_or(ResponseParameters {
        retry_after: None,
        migrate_to_chat_id: None,
    });
    if answer.status == http::StatusCode::TOO_MANY_REQUESTS || envelope.error_code == Some(429) {
        return rate_limited(parameters.retry_after.or_else(|| retry_after(&answer.headers)));
    }

    let mut message = envelope.description;
    if let Some(chat_id) = parameters.migrate_to_chat_id {
        let text = message.get_or_insert_with(|| "the group was upgraded to a supergroup".to_owned());
        text.push_str(&format!(" (the chat's id is now {chat_id})"));
    }
    refusal(
        Platform::Telegram,
        answer.status,
        envelope.error_code.map(|code| code.to_string()),
        message.as_deref(),
        &[bot_token],
    )
}

fn rate_limited(retry_after_secs: Option<u64>) -> ToolError {
    ToolError::RateLimited {
        platform: Platform::Telegram,
        retry_after_secs,
    }
}

/// `{base}/bot<token>/<method>`, each segment escaped. No error names the URL.
fn method_url(base: &str, bot_token: &str, method: &str) -> Result<reqwest::Url, ToolError> {
    api_url(
        Platform::Telegram,
        base,
        &[format!("bot{bot_token}").as_str(), method],
    )
}

#[cfg(test)]
mod tests;
