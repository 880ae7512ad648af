//! The Instagram Graph API, platforms.md section 5.
//!
//! An account connected through Instagram Login is reached at
//! `graph.instagram.com`, one connected through Facebook Login at
//! `graph.facebook.com` ([`default_api_base`]). Both take
//! `/{version}/…` paths and `Authorization: Bearer <access token>`, and
//! both answer a failure with the Graph error object ([`super::graph`]).
//!
//! - Publishing a photo takes three calls: create a media container from a
//!   public image URL, wait until Instagram has fetched and processed it,
//!   then publish the container ([`publish_photo`]).
//! - A direct message is one call ([`send_message`]), accepted only within
//!   24 hours of the recipient's last message to the account.

use std::time::Duration;

use hermes_crds::{InstagramLogin, Platform};
use serde::{Deserialize, Serialize};

use super::graph::{error_from_answer, post_json};
use super::http::{Answer, malformed, retry_after, send};
use super::{Endpoint, api_url};
use crate::tools::ToolError;

/// The secret field holding the Instagram (or Page) access token.
pub const ACCESS_TOKEN: &str = "accessToken";

/// Graph error codes that mean "slow down" on the Instagram side, besides
/// the ones [`super::graph`] already reads as such: user request limit
/// (17), Page request limit (32) and API call rate limit (613).
pub const THROTTLING_CODES: [&str; 3] = ["17", "32", "613"];

/// The API host of an account, by the login flow that issued its token.
pub fn default_api_base(login: InstagramLogin) -> &'static str {
    match login {
        InstagramLogin::Instagram => "https://graph.instagram.com",
        InstagramLogin::Facebook => "https://graph.facebook.com",
    }
}

/// How long [`publish_photo`] waits for Instagram to process a container.
///
/// Meta suggests checking a container once a minute for up to five
/// minutes; a tool call cannot wait that long, and photos are usually ready
/// within seconds. The container is checked right after it is created and
/// then every `interval`, at most `max_checks` times; a photo not ready by
/// then is reported as not published rather than waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerPolling {
    /// The wait between two checks.
    pub interval: Duration,
    /// The most checks made before giving up; at least one is made.
    pub max_checks: u32,
}

impl ContainerPolling {
    /// Ten checks two seconds apart: at most 18 s of waiting, inside the
    /// time an MCP client waits for a tool.
    pub const DEFAULT: Self = Self {
        interval: Duration::from_secs(2),
        max_checks: 10,
    };
}

impl Default for ContainerPolling {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A photo to publish to the account's feed.
#[derive(Clone, Copy, Debug)]
pub struct Photo<'a> {
    /// The public `https` URL Instagram fetches the image (JPEG) from.
    pub image_url: &'a str,
    /// The caption, when there is one.
    pub caption: Option<&'a str>,
}

/// A published photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The id of the new Instagram media object (the post).
    pub media_id: String,
    /// The id of the container the post was published from.
    pub container_id: String,
}

#[derive(Debug, Serialize)]
struct CreateContainerBody<'a> {
    image_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct PublishBody<'a> {
    creation_id: &'a str,
}

/// `{"id": …}`, the answer to creating and to publishing a container.
#[derive(Debug, Deserialize)]
struct IdAnswer {
    id: String,
}

#[derive(Debug, Deserialize)]
struct StatusAnswer {
    status_code: String,
}

/// Publishes `photo` to the feed of the account `user_id` and returns the
/// new post's id.
///
/// Creates a container (`POST /{version}/{user_id}/media`), checks it
/// (`GET /{version}/{container}?fields=status_code`) as `polling` allows
/// until it is `FINISHED`, then publishes it
/// (`POST /{version}/{user_id}/media_publish`).
///
/// # Errors
///
/// The errors of [`send`] and of the Graph error object for any of the
/// three calls, and [`ToolError::Platform`] with code
/// - `container_error` when Instagram could not process the image (often
///   an image URL it cannot fetch, or not a JPEG);
/// - `container_expired` when the container expired before it was published;
/// - `container_unexpected_status` for any other state than `IN_PROGRESS`;
/// - `container_not_ready` when it was still `IN_PROGRESS` after the last
///   check. Nothing was published then; the container expires unused.
pub async fn publish_photo(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    user_id: &str,
    access_token: &str,
    photo: &Photo<'_>,
    polling: ContainerPolling,
) -> Result<Published, ToolError> {
    let container_id = create_container(endpoint, graph_version, user_id, access_token, photo).await?;

    wait_until_finished(endpoint, graph_version, &container_id, access_token, polling).await?;

    let url = api_url(
        Platform::Instagram,
        endpoint.base_url,
        &[graph_version, user_id, "media_publish"],
    )?;
    let body = PublishBody {
        creation_id: &container_id,
    };
    let answer = post_json(Platform::Instagram, endpoint, url, access_token, &body, error_of).await?;
    let published: IdAnswer = parse(&answer)?;

    Ok(Published {
        media_id: published.id,
        container_id,
    })
}

/// Creates an image container and returns its id.
async fn create_container(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    user_id: &str,
    access_token: &str,
    photo: &Photo<'_>,
) -> Result<String, ToolError> {
    let url = api_url(
        Platform::Instagram,
        endpoint.base_url,
        &[graph_version, user_id, "media"],
    )?;
    let body = CreateContainerBody {
        image_url: photo.image_url,
        caption: photo.caption,
    };
    let answer = post_json(Platform::Instagram, endpoint, url, access_token, &body, error_of).await?;
    parse::<IdAnswer>(&answer).map(|container| container.id)
}

/// Checks the container until it is `FINISHED`, at most `polling.max_checks`
/// times.
async fn wait_until_finished(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    container_id: &str,
    access_token: &str,
    polling: ContainerPolling,
) -> Result<(), ToolError> {
    let checks = polling.max_checks.max(1);
    for check in 1..=checks {
        let status = container_status(endpoint, graph_version, container_id, access_token).await?;
        match status.as_str() {
            "FINISHED" => return Ok(()),
            "IN_PROGRESS" => {}
            "ERROR" => {
                return Err(container_failed(
                    "container_error",
                    format!(
                        "Instagram could not process the image (container {container_id} status ERROR); \
                         the image URL must be public and serve a JPEG"
                    ),
                ));
            }
            "EXPIRED" => {
                return Err(container_failed(
                    "container_expired",
                    format!("the media container {container_id} expired before it was published"),
                ));
            }
            other => {
                return Err(container_failed(
                    "container_unexpected_status",
                    format!("the media container {container_id} is {other:?}, not ready to publish"),
                ));
            }
        }
        if check < checks {
            tokio::time::sleep(polling.interval).await;
        }
    }

    let waited = polling.interval.saturating_mul(checks - 1);
    Err(container_failed(
        "container_not_ready",
        format!(
            "Instagram was still processing the image after {checks} checks over {} s; \
             nothing was published (container {container_id})",
            waited.as_secs()
        ),
    ))
}

/// The `status_code` of a container.
async fn container_status(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    container_id: &str,
    access_token: &str,
) -> Result<String, ToolError> {
    let url = api_url(
        Platform::Instagram,
        endpoint.base_url,
        &[graph_version, container_id],
    )?;
    let request = endpoint
        .http
        .get(url)
        .query(&[("fields", "status_code")])
        .bearer_auth(access_token);
    let answer = send(Platform::Instagram, endpoint, request).await?;
    if !answer.status.is_success() {
        return Err(error_of(&answer, access_token));
    }
    parse::<StatusAnswer>(&answer).map(|status| status.status_code)
}

fn container_failed(code: &str, message: String) -> ToolError {
    ToolError::Platform {
        platform: Platform::Instagram,
        code: code.to_owned(),
        message,
    }
}

/// A text direct message to send.
#[derive(Clone, Copy, Debug)]
pub struct DirectMessage<'a> {
    /// The recipient's Instagram-scoped id (IGSID), as inbound messages name the sender.
    pub recipient_id: &'a str,
    /// The text, at most 1000 bytes of UTF-8.
    pub text: &'a str,
}

#[derive(Debug, Serialize)]
struct SendMessageBody<'a> {
    recipient: Recipient<'a>,
    message: MessageBody<'a>,
}

#[derive(Debug, Serialize)]
struct Recipient<'a> {
    id: &'a str,
}

#[derive(Debug, Serialize)]
struct MessageBody<'a> {
    text: &'a str,
}

#[derive(Debug, Deserialize)]
struct SendMessageAnswer {
    message_id: String,
}

/// Sends a text direct message and returns its message id.
///
/// With Instagram Login the message goes to `/{version}/{user_id}/messages`.
/// With Facebook Login the token is the linked Page's, and the Messenger
/// Platform takes the message at the Page's own edge; the Page id is not
/// among the connection's settings, so it is addressed as
/// `/{version}/me/messages`, which the Page token resolves to that Page.
///
/// # Errors
///
/// The errors of [`send`] and of the Graph error object; Instagram refuses
/// a message outside the 24-hour window with code 10 (subcode 2534022).
pub async fn send_message(
    endpoint: &Endpoint<'_>,
    graph_version: &str,
    login: InstagramLogin,
    user_id: &str,
    access_token: &str,
    message: &DirectMessage<'_>,
) -> Result<String, ToolError> {
    let sender = match login {
        InstagramLogin::Instagram => user_id,
        InstagramLogin::Facebook => "me",
    };
    let url = api_url(
        Platform::Instagram,
        endpoint.base_url,
        &[graph_version, sender, "messages"],
    )?;
    let body = SendMessageBody {
        recipient: Recipient {
            id: message.recipient_id,
        },
        message: MessageBody { text: message.text },
    };

    let answer = post_json(Platform::Instagram, endpoint, url, access_token, &body, error_of).await?;
    parse::<SendMessageAnswer>(&answer).map(|sent| sent.message_id)
}

/// The tool error of a Graph error answer, with Instagram's own throttling
/// codes read as rate limits too.
fn error_of(answer: &Answer, access_token: &str) -> ToolError {
    match error_from_answer(Platform::Instagram, answer, access_token) {
        ToolError::Platform { code, .. } if THROTTLING_CODES.contains(&code.as_str()) => {
            ToolError::RateLimited {
                platform: Platform::Instagram,
                retry_after_secs: retry_after(&answer.headers),
            }
        }
        error => error,
    }
}

/// A success answer's body as `T`.
fn parse<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<T, ToolError> {
    serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::Instagram))
}

#[cfg(test)]
mod tests;
