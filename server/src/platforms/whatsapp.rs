//! The WhatsApp Cloud API (Meta Graph API), platforms.md section 1.
//!
//! `POST {base}/{version}/{phone-number-id}/messages` with
//! `Authorization: Bearer <access token>` and a JSON body. Text, template
//! and media messages answer with the sent message's wamid; a read receipt
//! goes to the same edge and answers `{"success": true}`. Errors are Graph
//! error objects ([`super::graph`]).

use std::collections::BTreeMap;

use hermes_crds::Platform;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::{error_from_answer, post_json};
use super::http::{Answer, malformed};
use super::{Endpoint, api_url};
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
/// The errors of [`send`](super::http::send), and of [`error_from_answer`] for a non-success
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

    let answer = post_to_messages(endpoint, url, access_token, &body).await?;
    sent_wamid(&answer)
}

/// A template message to send (platforms.md 1.2): the only kind WhatsApp
/// delivers outside the 24-hour customer-service window.
#[derive(Clone, Copy, Debug)]
pub struct TemplateMessage<'a> {
    /// The recipient's number, E.164 digits without the `+`.
    pub to: &'a str,
    /// The approved template's name.
    pub name: &'a str,
    /// The template's language code, e.g. `en_US`.
    pub language_code: &'a str,
    /// The template's components with their parameters, in the Graph API's
    /// own shape (`{"type": "body", "parameters": [...]}`); empty for a
    /// template without variables.
    pub components: &'a [Value],
}

#[derive(Debug, Serialize)]
struct SendTemplateBody<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    template: TemplateBody<'a>,
}

#[derive(Debug, Serialize)]
struct TemplateBody<'a> {
    name: &'a str,
    language: TemplateLanguage<'a>,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    components: &'a [Value],
}

#[derive(Debug, Serialize)]
struct TemplateLanguage<'a> {
    code: &'a str,
}

/// Sends a template message from the phone number `phone_number_id` and
/// returns the sent message's wamid.
///
/// # Errors
///
/// As [`send_text`].
pub async fn send_template(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    phone_number_id: &str,
    access_token: &str,
    message: &TemplateMessage<'_>,
) -> Result<String, ToolError> {
    let url = messages_url(endpoint.base_url, graph_version, phone_number_id)?;
    let body = SendTemplateBody {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: message.to,
        kind: "template",
        template: TemplateBody {
            name: message.name,
            language: TemplateLanguage {
                code: message.language_code,
            },
            components: message.components,
        },
    };

    let answer = post_to_messages(endpoint, url, access_token, &body).await?;
    sent_wamid(&answer)
}

/// The kinds of media message WhatsApp sends by link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// A picture (JPEG or PNG); may have a caption.
    Image,
    /// A voice or audio file; no caption.
    Audio,
    /// A video; may have a caption.
    Video,
    /// A file shown with its name; may have a caption and a filename.
    Document,
    /// A WebP sticker; no caption.
    Sticker,
}

impl MediaKind {
    /// The message `type`, also the name of the member holding the media.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// Whether WhatsApp shows a caption with this kind.
    pub fn takes_caption(self) -> bool {
        match self {
            MediaKind::Image | MediaKind::Video | MediaKind::Document => true,
            MediaKind::Audio | MediaKind::Sticker => false,
        }
    }
}

/// A media message to send by link.
#[derive(Clone, Copy, Debug)]
pub struct MediaMessage<'a> {
    /// The recipient's number, E.164 digits without the `+`.
    pub to: &'a str,
    /// What the media is.
    pub kind: MediaKind,
    /// The public `https` URL WhatsApp downloads the media from.
    pub link: &'a str,
    /// The caption, for kinds that [take one](MediaKind::takes_caption).
    pub caption: Option<&'a str>,
    /// The file name shown with a document.
    pub filename: Option<&'a str>,
    /// The wamid of the message this one replies to.
    pub reply_to: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct SendMediaBody<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    /// Serialized under the kind's name (`"image": {...}`), which is the
    /// one member that differs between the kinds.
    #[serde(flatten)]
    media: BTreeMap<&'static str, MediaBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<ReplyContext<'a>>,
}

#[derive(Debug, Serialize)]
struct MediaBody<'a> {
    link: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<&'a str>,
}

/// Sends a media message by link from the phone number `phone_number_id`
/// and returns the sent message's wamid. WhatsApp fetches the link itself,
/// after accepting the message: a link it cannot fetch fails later, in a
/// status webhook, not here.
///
/// # Errors
///
/// As [`send_text`].
pub async fn send_media(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    phone_number_id: &str,
    access_token: &str,
    message: &MediaMessage<'_>,
) -> Result<String, ToolError> {
    let url = messages_url(endpoint.base_url, graph_version, phone_number_id)?;
    let media = MediaBody {
        link: message.link,
        caption: message.caption,
        filename: message.filename,
    };
    let body = SendMediaBody {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: message.to,
        kind: message.kind.as_str(),
        media: BTreeMap::from([(message.kind.as_str(), media)]),
        context: message.reply_to.map(|message_id| ReplyContext { message_id }),
    };

    let answer = post_to_messages(endpoint, url, access_token, &body).await?;
    sent_wamid(&answer)
}

#[derive(Debug, Serialize)]
struct MarkReadBody<'a> {
    messaging_product: &'static str,
    status: &'static str,
    message_id: &'a str,
}

#[derive(Debug, Deserialize)]
struct SuccessAnswer {
    success: bool,
}

/// Marks the received message `message_id` (and, in WhatsApp's view, every
/// earlier message of the conversation) as read: the sender sees blue
/// ticks. Marking a message read twice has no further effect.
///
/// # Errors
///
/// The errors of [`send`](super::http::send) and [`error_from_answer`]; `malformed response`
/// when the answer is not `{"success": …}`, and a platform error with code
/// `not_confirmed` when it is `{"success": false}`.
pub async fn mark_read(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    phone_number_id: &str,
    access_token: &str,
    message_id: &str,
) -> Result<(), ToolError> {
    let url = messages_url(endpoint.base_url, graph_version, phone_number_id)?;
    let body = MarkReadBody {
        messaging_product: "whatsapp",
        status: "read",
        message_id,
    };

    let answer = post_to_messages(endpoint, url, access_token, &body).await?;
    let confirmed: SuccessAnswer =
        serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::Whatsapp))?;
    if confirmed.success {
        Ok(())
    } else {
        Err(ToolError::Platform {
            platform: Platform::Whatsapp,
            code: "not_confirmed".to_owned(),
            message: "WhatsApp answered without confirming the read receipt".to_owned(),
        })
    }
}

/// Posts `body` to the messages edge; a non-success answer becomes the
/// Graph error it carries.
async fn post_to_messages(
    endpoint: &Endpoint<'_>,
    url: reqwest::Url,
    access_token: &str,
    body: &impl Serialize,
) -> Result<Answer, ToolError> {
    post_json(
        Platform::Whatsapp,
        endpoint,
        url,
        access_token,
        body,
        |answer, token| error_from_answer(Platform::Whatsapp, answer, token),
    )
    .await
}

/// The wamid of a success answer to a send.
fn sent_wamid(answer: &Answer) -> Result<String, ToolError> {
    let sent: SendAnswer = serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::Whatsapp))?;
    sent.messages
        .into_iter()
        .next()
        .map(|entry| entry.id)
        .ok_or_else(|| malformed(Platform::Whatsapp))
}

/// `{base}/{version}/{phone number id}/messages`, each segment escaped.
fn messages_url(base: &str, graph_version: &str, phone_number_id: &str) -> Result<reqwest::Url, ToolError> {
    api_url(
        Platform::Whatsapp,
        base,
        &[graph_version, phone_number_id, "messages"],
    )
}

#[cfg(test)]
mod tests;
