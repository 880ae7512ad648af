//! The X API v2, platforms.md section 6.
//!
//! `POST {base}/2/tweets` with a JSON body, authenticated as a user: either
//! an OAuth 2.0 user token (`Authorization: Bearer …`) or an OAuth 1.0a
//! signature over the consumer key and the user's access token
//! (`Authorization: OAuth …`, RFC 5849, HMAC-SHA1). A success is 201 with
//! `{"data": {"id", "text"}}`.
//!
//! Errors are problem objects (`{title, detail, type, status}`) or, in
//! older shapes, `{"errors": [{message, code}]}`. A 429 says when the
//! window resets in `x-rate-limit-reset` (Unix seconds).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hermes_crds::Platform;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderValue;
use http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use super::http::{Answer, malformed, retry_after, send};
use super::{Endpoint, api_url, refusal};
use crate::tools::ToolError;

pub use hermes_state::tenancy::requirements::fields::{
    ACCESS_TOKEN, ACCESS_TOKEN_SECRET, BEARER_TOKEN, CONSUMER_KEY, CONSUMER_SECRET,
};

/// The rate-limit windows X reports on a post, each as `<prefix>-remaining`
/// and `<prefix>-reset`: the 15-minute window, and the 24-hour caps per
/// user and per app (the latter two seen in client code, platforms.md 6).
const RATE_LIMIT_WINDOWS: [&str; 3] = ["x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"];

/// How a call authenticates as the user.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    /// An OAuth 2.0 user access token.
    Bearer(&'a str),
    /// OAuth 1.0a user context.
    OAuth1(OAuth1Keys<'a>),
}

/// The four OAuth 1.0a values a request is signed with.
#[derive(Clone, Copy)]
pub struct OAuth1Keys<'a> {
    /// The app's consumer (API) key.
    pub consumer_key: &'a str,
    /// The app's consumer (API) secret.
    pub consumer_secret: &'a str,
    /// The user's access token.
    pub access_token: &'a str,
    /// The user's access token secret.
    pub access_token_secret: &'a str,
}

impl std::fmt::Debug for OAuth1Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuth1Keys { .. }")
    }
}

impl Auth<'_> {
    /// Every credential value, to scrub from what X says.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::Bearer(token) => vec![token],
            Auth::OAuth1(keys) => vec![
                keys.consumer_key,
                keys.consumer_secret,
                keys.access_token,
                keys.access_token_secret,
            ],
        }
    }
}

/// A post to create.
#[derive(Clone, Copy, Debug)]
pub struct NewPost<'a> {
    /// The text.
    pub text: &'a str,
    /// The id of the post this one replies to.
    pub reply_to: Option<&'a str>,
    /// The id of the post this one quotes.
    pub quote_post_id: Option<&'a str>,
}

/// The request body of `POST /2/tweets` as far as Hermes sets it.
#[derive(Debug, Serialize)]
struct CreatePostBody<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<Reply<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quote_tweet_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Reply<'a> {
    in_reply_to_tweet_id: &'a str,
}

/// The success answer.
#[derive(Debug, Deserialize)]
struct Created {
    data: Option<CreatedPost>,
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, Deserialize)]
struct CreatedPost {
    id: String,
}

/// A problem object, with the legacy `errors` array beside it.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

/// One entry of `errors`: a partial-error problem or a legacy `{code, message}`.
#[derive(Debug, Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Creates a post as the authenticated user and returns its id.
///
/// # Errors
///
/// The errors of [`send`], and of [`error_from_answer`] for a non-success
/// status or a success answer that carries only errors; `malformed
/// response` when a success answer names no post.
pub async fn create_post(
    endpoint: &Endpoint<'_>,
    auth: &Auth<'_>,
    post: &NewPost<'_>,
) -> Result<String, ToolError> {
    let url = tweets_url(endpoint.base_url)?;
    let body = CreatePostBody {
        text: post.text,
        reply: post
            .reply_to
            .map(|in_reply_to_tweet_id| Reply { in_reply_to_tweet_id }),
        quote_tweet_id: post.quote_post_id,
    };
    let authorization = match auth {
        Auth::Bearer(token) => header_value(&format!("Bearer {token}"))?,
        Auth::OAuth1(keys) => {
            let nonce = format!("{:032x}", rand::random::<u128>());
            let timestamp = jiff::Timestamp::now().as_second().to_string();
            header_value(&oauth1_authorization("POST", &url, keys, &nonce, &timestamp))?
        }
    };

    let request = endpoint
        .http
        .post(url)
        .header(AUTHORIZATION, authorization)
        .json(&body);
    let answer = send(Platform::X, endpoint, request).await?;
    if !answer.status.is_success() {
        return Err(error_from_answer(&answer, &auth.secrets()));
    }

    let created: Created = serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::X))?;
    match created {
        Created { data: Some(post), .. } => Ok(post.id),
        Created { errors, .. } if !errors.is_empty() => Err(error_from_answer(&answer, &auth.secrets())),
        Created { .. } => Err(malformed(Platform::X)),
    }
}

/// The tool error of an X answer that failed.
///
/// A 429 is [`ToolError::RateLimited`], waiting until the latest reset of
/// the windows the headers report exhausted (else until
/// `x-rate-limit-reset`, else as long as `Retry-After` says). Otherwise it
/// is [`ToolError::Platform`]: the code is the problem type's last segment
/// (`usage-capped`, `credits-depleted`) or the legacy numeric code, the
/// message the problem's title and detail. Every credential value is
/// removed from what is passed on.
pub fn error_from_answer(answer: &Answer, secrets: &[&str]) -> ToolError {
    if answer.status == http::StatusCode::TOO_MANY_REQUESTS {
        return ToolError::RateLimited {
            platform: Platform::X,
            retry_after_secs: wait_until_reset(&answer.headers, jiff::Timestamp::now())
                .or_else(|| retry_after(&answer.headers)),
        };
    }

    let problem = serde_json::from_slice::<Problem>(&answer.body).unwrap_or_default();
    let first = problem.errors.first();
    let code = problem_code(problem.kind.as_deref())
        .or_else(|| first.and_then(|error| error.code).map(|code| code.to_string()))
        .or_else(|| problem_code(first.and_then(|error| error.kind.as_deref())));
    let message = describe(problem.title.as_deref(), problem.detail.as_deref()).or_else(|| {
        first.and_then(|error| {
            error
                .message
                .clone()
                .or_else(|| describe(error.title.as_deref(), error.detail.as_deref()))
        })
    });
    refusal(Platform::X, answer.status, code, message.as_deref(), secrets)
}

/// The last path segment of a problem type, e.g. `usage-capped` of
/// `https://api.x.com/2/problems/usage-capped`; `None` for `about:blank`.
fn problem_code(kind: Option<&str>) -> Option<String> {
    let kind = kind?.trim();
    if kind.is_empty() || kind == "about:blank" {
        return None;
    }
    kind.rsplit('/').next().map(str::to_owned)
}

/// `title: detail`, or whichever of them there is.
fn describe(title: Option<&str>, detail: Option<&str>) -> Option<String> {
    match (title, detail) {
        (Some(title), Some(detail)) if title != detail => Some(format!("{title}: {detail}")),
        (Some(text), _) | (None, Some(text)) => Some(text.to_owned()),
        (None, None) => None,
    }
}

/// Seconds from `now` until the rate limit lifts.
///
/// The latest reset among the windows whose `-remaining` is 0 wins; when
/// no window says it is exhausted, `x-rate-limit-reset` is taken. A reset
/// in the past means now.
fn wait_until_reset(headers: &http::HeaderMap, now: jiff::Timestamp) -> Option<u64> {
    let number = |name: String| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };

    let exhausted = RATE_LIMIT_WINDOWS
        .iter()
        .filter(|window| number(format!("{window}-remaining")) == Some(0))
        .filter_map(|window| number(format!("{window}-reset")))
        .max();
    let reset = exhausted.or_else(|| number("x-rate-limit-reset".to_owned()))?;

    let wait = reset.saturating_sub(now.as_second());
    Some(u64::try_from(wait).unwrap_or(0))
}

/// The `Authorization: OAuth …` value of a request (RFC 5849 section 3).
///
/// The signed parameters are the `oauth_*` protocol parameters alone: the
/// request has no query, and a JSON body is not signed (only form bodies are).
pub fn oauth1_authorization(
    method: &str,
    url: &reqwest::Url,
    keys: &OAuth1Keys<'_>,
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut parameters = vec![
        ("oauth_consumer_key", keys.consumer_key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", timestamp),
        ("oauth_token", keys.access_token),
        ("oauth_version", "1.0"),
    ];
    let base = signature_base_string(method, url, &parameters);
    let signature = hmac_sha1_signature(&base, keys.consumer_secret, keys.access_token_secret);

    parameters.push(("oauth_signature", &signature));
    parameters.sort_unstable();
    let fields: Vec<String> = parameters
        .iter()
        .map(|(name, value)| format!("{}=\"{}\"", percent_encode(name), percent_encode(value)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}

/// The signature base string (RFC 5849 section 3.4.1): the method, the base
/// string URI and the normalized parameters, each percent-encoded, joined by `&`.
pub fn signature_base_string(method: &str, url: &reqwest::Url, parameters: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = parameters
        .iter()
        .map(|(name, value)| (percent_encode(name), percent_encode(value)))
        .collect();
    encoded.sort_unstable();
    let normalized: Vec<String> = encoded
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();

    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(&base_string_uri(url)),
        percent_encode(&normalized.join("&"))
    )
}

/// The base string URI (RFC 5849 section 3.4.1.2): scheme and host in lower
/// case, the port only when it is not the scheme's default, the path, and
/// no query or fragment. [`reqwest::Url`] already lower-cases and drops
/// default ports.
fn base_string_uri(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// HMAC-SHA1 over the base string, keyed with the two encoded secrets
/// joined by `&`, in base64 (RFC 5849 section 3.4.2).
pub fn hmac_sha1_signature(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    );
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(base_string.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// RFC 5849's percent-encoding (section 3.6): every byte of the UTF-8 text
/// except the unreserved `A-Z a-z 0-9 - . _ ~` becomes `%XX`, upper-case hex.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// An `Authorization` value, marked sensitive so it is never printed.
fn header_value(value: &str) -> Result<HeaderValue, ToolError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        tracing::warn!("an X credential cannot be a header value");
        ToolError::Internal
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `{base}/2/tweets`.
fn tweets_url(base: &str) -> Result<reqwest::Url, ToolError> {
    api_url(Platform::X, base, &["2", "tweets"])
}

#[cfg(test)]
mod tests;
