//! The LinkedIn Posts API, platforms.md section 4.
//!
//! `POST {base}/rest/posts` with `Authorization: Bearer <token>`, the
//! `LinkedIn-Version` the connection names and `X-Restli-Protocol-Version:
//! 2.0.0`. A success is 201 with an empty body; the post's URN is in the
//! `x-restli-id` header. Errors are `{status, serviceErrorCode, code,
//! message}`.
//!
//! Post text is in LinkedIn's "little" text format, where some characters
//! are markup; [`escape_commentary`] makes text appear as written.

use hermes_crds::Platform;
use http::HeaderValue;
use serde::{Deserialize, Serialize};

use super::http::{Answer, malformed, retry_after, send};
use super::{Endpoint, api_url, refusal};
use crate::tools::ToolError;

pub use hermes_state::tenancy::requirements::fields::ACCESS_TOKEN;

/// The Rest.li protocol version the Posts API requires.
pub const RESTLI_PROTOCOL_VERSION: &str = "2.0.0";

/// The characters the little text format reserves, which must be escaped
/// with a backslash to be plain text. From LinkedIn's little-text-format
/// page, which links the list rather than printing it; the list is the one
/// client libraries escape.
const RESERVED: [char; 15] = [
    '\\', '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '*', '_', '~',
];

/// Who sees a post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Visibility {
    /// Anyone, on or off LinkedIn.
    Public,
    /// The author's first-degree connections (members only).
    Connections,
}

/// A text post to publish.
#[derive(Clone, Copy, Debug)]
pub struct TextPost<'a> {
    /// The author's URN, `urn:li:person:…` or `urn:li:organization:…`.
    pub author: &'a str,
    /// The text as it should appear; escaped here.
    pub text: &'a str,
    /// Who sees it.
    pub visibility: Visibility,
}

/// The request body of a text post (platforms.md 4).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatePostBody<'a> {
    author: &'a str,
    commentary: String,
    visibility: Visibility,
    distribution: Distribution,
    lifecycle_state: &'static str,
    is_reshare_disabled_by_author: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Distribution {
    feed_distribution: &'static str,
    target_entities: &'static [&'static str],
    third_party_distribution_channels: &'static [&'static str],
}

/// A LinkedIn error body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    service_error_code: Option<i64>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Publishes a text post to the main feed and returns its URN.
///
/// # Errors
///
/// The errors of [`send`], and of [`error_from_answer`] for a non-success
/// status; `malformed response` when a success answer has no
/// `x-restli-id`.
pub async fn create_post(
    endpoint: &Endpoint<'_>,
    api_version: &str,
    access_token: &str,
    post: &TextPost<'_>,
) -> Result<String, ToolError> {
    let url = posts_url(endpoint.base_url)?;
    let version = HeaderValue::from_str(api_version).map_err(|_| {
        tracing::warn!("the LinkedIn API version cannot be a header value");
        ToolError::Internal
    })?;
    let body = CreatePostBody {
        author: post.author,
        commentary: escape_commentary(post.text),
        visibility: post.visibility,
        distribution: Distribution {
            feed_distribution: "MAIN_FEED",
            target_entities: &[],
            third_party_distribution_channels: &[],
        },
        lifecycle_state: "PUBLISHED",
        is_reshare_disabled_by_author: false,
    };

    let request = endpoint
        .http
        .post(url)
        .bearer_auth(access_token)
        .header("linkedin-version", version)
        .header("x-restli-protocol-version", RESTLI_PROTOCOL_VERSION)
        .json(&body);
    let answer = send(Platform::Linkedin, endpoint, request).await?;
    if !answer.status.is_success() {
        return Err(error_from_answer(&answer, access_token));
    }

    answer
        .headers
        .get("x-restli-id")
        .and_then(|id| id.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| malformed(Platform::Linkedin))
}

/// The tool error of a LinkedIn answer that is not a success.
///
/// A 429 is [`ToolError::RateLimited`], waiting as long as `Retry-After`
/// says when LinkedIn sends one. Otherwise it is [`ToolError::Platform`]
/// coded by `serviceErrorCode` (else the symbolic `code`, else the HTTP
/// status), its message followed by the symbolic code. The token is
/// removed from everything passed on.
pub fn error_from_answer(answer: &Answer, access_token: &str) -> ToolError {
    if answer.status == http::StatusCode::TOO_MANY_REQUESTS {
        return ToolError::RateLimited {
            platform: Platform::Linkedin,
            retry_after_secs: retry_after(&answer.headers),
        };
    }

    let Ok(body) = serde_json::from_slice::<ErrorBody>(&answer.body) else {
        return refusal(Platform::Linkedin, answer.status, None, None, &[access_token]);
    };
    let (code, message) = match (body.service_error_code, body.code, body.message) {
        (Some(number), Some(name), Some(message)) => {
            (Some(number.to_string()), Some(format!("{message} ({name})")))
        }
        (Some(number), name, message) => (Some(number.to_string()), message.or(name)),
        (None, name, message) => (name, message),
    };
    refusal(
        Platform::Linkedin,
        answer.status,
        code,
        message.as_deref(),
        &[access_token],
    )
}

/// `text` in the little text format, so that LinkedIn shows it as written.
///
/// Every [reserved](RESERVED) character is escaped with a backslash, except
/// in two places where plain text is already what LinkedIn makes of it:
/// inside a URL (`http://` or `https://` up to the next whitespace), which
/// LinkedIn links only when it is left alone, and a `#` that starts a word,
/// which LinkedIn shows as a hashtag. Without escaping, LinkedIn accepts
/// the post and silently cuts its text at the first reserved character.
/// Mentions (`@[Name](urn:li:…)`) cannot be written through this, by design.
pub fn escape_commentary(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + text.len() / 8);
    let mut rest = text;
    let mut previous: Option<char> = None;

    while !rest.is_empty() {
        // A URL runs verbatim to the next whitespace.
        if rest.starts_with("http://") || rest.starts_with("https://") {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            escaped.push_str(&rest[..end]);
            previous = rest[..end].chars().next_back();
            rest = &rest[end..];
            continue;
        }

        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        let starts_hashtag = c == '#'
            && chars.clone().next().is_some_and(char::is_alphanumeric)
            && previous.is_none_or(|before| !before.is_alphanumeric());
        if RESERVED.contains(&c) && !starts_hashtag {
            escaped.push('\\');
        }
        escaped.push(c);
        previous = Some(c);
        rest = chars.as_str();
    }
    escaped
}

/// `{base}/rest/posts`.
fn posts_url(base: &str) -> Result<reqwest::Url, ToolError> {
    api_url(Platform::Linkedin, base, &["rest", "posts"])
}

#[cfg(test)]
mod tests;
