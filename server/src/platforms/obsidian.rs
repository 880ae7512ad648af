//! The Obsidian Local REST API plugin, platforms.md section 7.
//!
//! The plugin runs inside the customer's own Obsidian, at the connection's
//! `baseUrl` (by default `https://127.0.0.1:27124`, with a self-signed
//! certificate). Every call carries `Authorization: Bearer <API key>`.
//! Notes live at `/vault/{path}`: `GET` reads one, `PUT` creates or
//! replaces it, `POST` appends to it (creating it when missing). Search is
//! `POST /search/simple/`. A failure answers `{"errorCode": <5 digits>,
//! "message": …}`, the first three digits being the HTTP status.
//!
//! Reads are retried once when the plugin answers 5xx or does not answer
//! in time: nothing changes on a read, so a second try is safe. Writes are
//! never retried, since the first may have landed (an append twice is two
//! appends).

use std::sync::OnceLock;

use hermes_crds::Platform;
use http::StatusCode;
use serde::Deserialize;
use tracing::{debug, warn};

use super::http::{Answer, malformed, retry_after, send};
use super::{Endpoint, api_url, refusal};
use crate::tools::ToolError;

/// The secret field holding the plugin's API key.
pub const API_KEY: &str = "apiKey";

/// The content type of notes, sent and asked for.
pub const MARKDOWN: &str = "text/markdown";

/// The shared client for plugins whose certificate is not verified
/// (`certificateVerification: skip`), built on first use.
///
/// The plugin serves a self-signed certificate by default, which no root
/// store trusts; a connection that says `skip` accepts any certificate
/// (and any host name) from its plugin. Only such connections use this
/// client; every other call goes through the verifying one.
///
/// # Errors
///
/// [`ToolError::Internal`] when the client cannot be built (a TLS setup
/// failure, the same for every call: the failure is kept, not retried).
pub fn unverified_client() -> Result<&'static reqwest::Client, ToolError> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();

    let client = CLIENT.get_or_init(|| {
        // The same crypto provider the shared client installs; a second
        // install is a no-op reporting the provider already there.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .connect_timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("hermes/", env!("CARGO_PKG_VERSION")))
            .build()
            .inspect_err(|error| warn!(%error, "building the unverified Obsidian client failed"))
            .ok()
    });
    client.as_ref().ok_or(ToolError::Internal)
}

/// Creates the note at `path` with `content`, or replaces its content.
/// Writing the same content twice leaves the same note.
///
/// `path` is relative to the vault root, with `/` between folders, and has
/// been checked to stay inside the vault (the tool's `NotePath`); each
/// segment is percent-encoded here.
///
/// # Errors
///
/// The errors of [`send`]; for a non-success answer,
/// [`ToolError::RateLimited`] on 429 (the plugin throttles failed
/// authentications), else [`ToolError::Platform`] with the plugin's
/// `errorCode` and message, the API key scrubbed from it.
pub async fn put_note(
    endpoint: &Endpoint<'_>,
    api_key: &str,
    path: &str,
    content: &str,
) -> Result<(), ToolError> {
    write_note(endpoint, reqwest::Method::PUT, api_key, path, content).await
}

/// Appends `content` to the end of the note at `path`, creating the note
/// when it does not exist. Not idempotent: appending twice appends twice.
///
/// # Errors
///
/// As [`put_note`].
pub async fn append_note(
    endpoint: &Endpoint<'_>,
    api_key: &str,
    path: &str,
    content: &str,
) -> Result<(), ToolError> {
    write_note(endpoint, reqwest::Method::POST, api_key, path, content).await
}

/// Sends `content` as markdown to the note at `path` with `method`: `PUT`
/// replaces the note, `POST` appends to it.
async fn write_note(
    endpoint: &Endpoint<'_>,
    method: reqwest::Method,
    api_key: &str,
    path: &str,
    content: &str,
) -> Result<(), ToolError> {
    let url = vault_url(endpoint.base_url, path)?;
    let request = endpoint
        .http
        .request(method, url)
        .bearer_auth(api_key)
        .header(http::header::CONTENT_TYPE, MARKDOWN)
        .body(content.to_owned());

    let answer = send(Platform::Obsidian, endpoint, request).await?;
    expect_success(&answer, api_key, Some(path))
}

/// The markdown of the note at `path`. Retried once on 5xx or timeout.
///
/// # Errors
///
/// As [`put_note`], a 404 being "note not found"; a platform error with
/// code `not_text` when the file is not UTF-8 text (an image, a PDF), and
/// `malformed response` when it is larger than
/// [`MAX_RESPONSE_BYTES`](super::http::MAX_RESPONSE_BYTES).
pub async fn read_note(endpoint: &Endpoint<'_>, api_key: &str, path: &str) -> Result<String, ToolError> {
    let url = vault_url(endpoint.base_url, path)?;
    let request = || {
        endpoint
            .http
            .get(url.clone())
            .bearer_auth(api_key)
            .header(http::header::ACCEPT, MARKDOWN)
    };

    let answer = send_read(endpoint, request).await?;
    expect_success(&answer, api_key, Some(path))?;
    String::from_utf8(answer.body).map_err(|_| ToolError::Platform {
        platform: Platform::Obsidian,
        code: "not_text".to_owned(),
        message: format!("`{path}` is not a text note"),
    })
}

/// One note that matched a search.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SearchHit {
    /// The note's path in the vault.
    pub filename: String,
    /// Obsidian's relevance score; higher is better.
    pub score: f64,
    /// Where the query matched, with the text around each match.
    #[serde(default)]
    pub matches: Vec<SearchMatch>,
}

/// One match within a note.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SearchMatch {
    /// The match's position in the note.
    #[serde(rename = "match")]
    pub span: MatchSpan,
    /// The text around the match.
    pub context: String,
}

/// A match's position, in UTF-16 code units (as the plugin, in
/// JavaScript, counts) from the start of the note, or of its file name.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct MatchSpan {
    /// Where the match starts.
    pub start: u64,
    /// Where it ends.
    pub end: u64,
    /// Where the match is, `content` or `filename`; plugins before 5.x do
    /// not say (content, then).
    #[serde(default)]
    pub source: Option<String>,
}

/// The notes matching `query` (Obsidian's simple search), each with up to
/// `context_length` characters of text around every match. Retried once
/// on 5xx or timeout.
///
/// # Errors
///
/// As [`put_note`]; `malformed response` when the answer is not the
/// plugin's list of hits.
pub async fn search(
    endpoint: &Endpoint<'_>,
    api_key: &str,
    query: &str,
    context_length: u32,
) -> Result<Vec<SearchHit>, ToolError> {
    let url = api_url(Platform::Obsidian, endpoint.base_url, &["search", "simple", ""])?;
    let context_length = context_length.to_string();
    let request = || {
        endpoint
            .http
            .post(url.clone())
            .query(&[("query", query), ("contextLength", context_length.as_str())])
            .bearer_auth(api_key)
    };

    let answer = send_read(endpoint, request).await?;
    expect_success(&answer, api_key, None)?;
    serde_json::from_slice(&answer.body).map_err(|_| malformed(Platform::Obsidian))
}

/// Sends a read, and sends it once more when the first answer is a 5xx or
/// none came in time. `request` builds the request afresh for each try.
async fn send_read(
    endpoint: &Endpoint<'_>,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, ToolError> {
    let first = send(Platform::Obsidian, endpoint, request()).await;
    let transient = match &first {
        Ok(answer) => answer.status.is_server_error(),
        Err(error) => matches!(error, ToolError::Timeout(_)),
    };
    if !transient {
        return first;
    }

    debug!("obsidian read failed transiently; retrying once");
    send(Platform::Obsidian, endpoint, request()).await
}

/// The plugin's error body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginError {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// `Ok` for a success answer, else the error it carries.
fn expect_success(answer: &Answer, api_key: &str, note: Option<&str>) -> Result<(), ToolError> {
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(refused(answer, api_key, note))
    }
}

/// The tool error of a plugin answer that is not a success: 429 is
/// [`ToolError::RateLimited`] (the plugin throttles failed
/// authentications), 404 on a `note` is "note not found" naming it, anything
/// else the plugin's `errorCode` and message with the API key scrubbed
/// ([`refusal`]).
fn refused(answer: &Answer, api_key: &str, note: Option<&str>) -> ToolError {
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        return ToolError::RateLimited {
            platform: Platform::Obsidian,
            retry_after_secs: retry_after(&answer.headers),
        };
    }

    let error = serde_json::from_slice::<PluginError>(&answer.body).ok();
    let code = error
        .as_ref()
        .and_then(|error| error.error_code)
        .map(|code| code.to_string());
    let not_found = match note {
        Some(note) if answer.status == StatusCode::NOT_FOUND => Some(format!("note not found: `{note}`")),
        Some(_) | None => None,
    };
    let message = not_found
        .as_deref()
        .or_else(|| error.as_ref().and_then(|error| error.message.as_deref()));
    refusal(Platform::Obsidian, answer.status, code, message, &[api_key])
}

/// `{base}/vault/{path}`, each segment of `path` percent-encoded.
fn vault_url(base: &str, path: &str) -> Result<reqwest::Url, ToolError> {
    let segments: Vec<&str> = std::iter::once("vault").chain(path.split('/')).collect();
    api_url(Platform::Obsidian, base, &segments)
}

#[cfg(test)]
mod tests;
