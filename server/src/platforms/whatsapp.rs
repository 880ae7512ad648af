//! The WhatsApp Cloud API (Meta Graph API), platforms.md section 1.
//!
//! `POST {base}/{version}/{phone-number-id}/messages` with
//! `Authorization: Bearer <access token>` and a JSON body; the answer names
//! the sent message's wamid. Errors are Graph error objects ([`super::graph`]).

use hermes_crds::Platform;
use serde::{Deserialize, Serialize};

use super::Endpoint;
use super::graph::error_from_answer;
use super::http::{malformed, send};
use crate::tools::ToolError;

/// The secret field holding the system-user access token.
pub const ACCESS_TOKEN: &str = "accessToken";

/// A text message to send.
#[derive(Clone, Copy, Debug)]
pub struct TextMessage<'a> {
    /// The recipient's number, E.164 digits without the `+`.
    pub to: &'a str,
    /// The text, 1 to 4096 characters.
    pub body: &'a str,
    /// The wamid of the message this one replies to.
    pub reply_to: Option<&'a str>,
    /// Whether WhatsApp renders a preview of the first link.
    pub preview_url: bool,
}

/// The request body of a text message (platforms.md 1.2).
#[derive(Debug, Serialize)]
struct SendTextBody<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    text: TextBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<ReplyContext<'a>>,
}

#[derive(Debug, Serialize)]
struct TextBody<'a> {
    body: &'a str,
    preview_url: bool,
}

#[derive(Debug, Serialize)]
struct ReplyContext<'a> {
    message_id: &'a str,
}

/// The success answer of a send (`MessageResponsePayload`), as far as Hermes reads it.
#[derive(Debug, Deserialize)]
struct SendAnswer {
    messages: Vec<SentEntry>,
}

#[derive(Debug, Deserialize)]
struct SentEntry {
    id: String,
}

/// Sends a text message from the phone number `phone_number_id` and returns
/// the sent message's wamid.
///
/// # Errors
///
/// The errors of [`send`], and of [`error_from_answer`] for a non-success
/// status; `malformed response` when a success answer names no message.
pub async fn send_text(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    phone_number_id: &str,
    access_token: &str,
    message: &TextMessage<'_>,
) -> Result<String, ToolError> {
    let url = messages_url(endpoint.base_url, graph_version, phone_number_id)?;
    let body = SendTextBody {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: message.to,
        kind: "text",
        text: TextBody {
            body: message.body,
            preview_url: message.preview_url,
        },
        context: message.reply_to.map(|message_id| ReplyContext { message_id }),
    };

    let request = endpoint.http.post(url).bearer_auth(access_token).json(&body);
    let answer = send(Platform::Whatsapp, endpoint, request).await?;
    if !answer.status.is_success() {
        return Err(error_from_answer(Platform::Whatsapp, &answer, access_token));
    }

    let sent: SendAnswer = serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::Whatsapp))?;
    sent.messages
        .into_iter()
        .next()
        .map(|entry| entry.id)
        .ok_or_else(|| malformed(Platform::Whatsapp))
}

/// `{base}/{version}/{phone number id}/messages`, each segment escaped.
fn messages_url(base: &str, graph_version: &str, phone_number_id: &str) -> Result<reqwest::Url, ToolError> {
    let mut url = reqwest::Url::parse(base).map_err(|_| {
        tracing::warn!("the WhatsApp API base is not a URL");
        ToolError::Internal
    })?;
    url.path_segments_mut()
        .map_err(|()| {
            tracing::warn!("the WhatsApp API base cannot have a path");
            ToolError::Internal
        })?
        .pop_if_empty()
        .extend([graph_version, phone_number_id, "messages"]);
    Ok(url)
}

#[cfg(test)]
mod tests;
