//! Platform clients: what the tools call to reach WhatsApp, Telegram and the rest.
//!
//! Every platform module has the same shape: request and response types
//! that follow the platform's own documentation, and one async function per
//! operation that takes an [`Endpoint`] and the connection's settings and
//! secrets, and returns the platform's answer or a [`ToolError`].
//!
//! - [`load_connection`] opens a tenant's sealed credentials and picks the
//!   base URL to call;
//! - [`http`] sends a request with a deadline, reads a bounded answer and
//!   parses `Retry-After`;
//! - [`graph`] reads the Meta Graph API error object, shared by WhatsApp and Instagram;
//! - [`sandbox`] is the outbox a sandbox connection writes instead of calling out;
//! - [`whatsapp`] is the WhatsApp Cloud API;
//! - [`telegram`], [`discord`], [`x`] and [`linkedin`] are those platforms'
//!   HTTP APIs, each reading its own error body and handing it to [`refusal`];
//! - [`email`] is SMTP and IMAP, reached through the connection's settings
//!   rather than a base URL;
//! - [`instagram`] is the Instagram Graph API (publishing and messaging);
//! - [`obsidian`] is the Obsidian Local REST API plugin, reached at the
//!   connection's `baseUrl`.
//!
//! No function here logs or returns a credential: platform messages are
//! scrubbed of the token that was sent before they reach a [`ToolError`].

use std::time::Duration;

use hermes_crds::Platform;
use hermes_state::CustomerId;
use hermes_state::tenancy::Credentials;
use tracing::warn;

use crate::app::AppState;
use crate::tools::ToolError;

pub mod discord;
pub mod email;
pub mod graph;
pub mod http;
pub mod instagram;
pub mod linkedin;
pub mod obsidian;
pub mod sandbox;
pub mod telegram;
pub mod whatsapp;
pub mod x;

#[cfg(test)]
pub(crate) mod mock_api;

/// How long one platform call may take, connection included, before it
/// fails with [`ToolError::Timeout`]. Platforms answer sends in well under
/// a second; twenty covers their slow moments and stays inside the time an
/// MCP client waits for a tool.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The public API base URL of a platform, used when neither the connection
/// nor the deployment configures one. `None` for platforms that are not
/// reached over a fixed HTTP base (email's SMTP server and the Obsidian
/// plugin's URL come from the connection's settings).
pub fn default_api_base(platform: Platform) -> Option<&'static str> {
    match platform {
        Platform::Whatsapp => Some("https://graph.facebook.com"),
        Platform::Instagram => Some("https://graph.instagram.com"),
        Platform::Linkedin => Some("https://api.linkedin.com"),
        Platform::Telegram => Some("https://api.telegram.org"),
        Platform::Discord => Some("https://discord.com/api/v10"),
        Platform::X => Some("https://api.x.com"),
        Platform::Email | Platform::Obsidian => None,
    }
}

/// Where and how one platform call is sent.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    /// The shared client (one connection pool for every platform).
    pub http: &'a reqwest::Client,
    /// The platform's API base URL, without a trailing path for the operation.
    pub base_url: &'a str,
    /// The deadline of the whole call.
    pub timeout: Duration,
}

/// One tenant's connection to one platform, opened for a call.
#[derive(Debug)]
pub struct Connection {
    /// The opened credentials; secret values are wiped when this is dropped.
    pub credentials: Credentials,
    /// The API base URL: the connection's own `apiBase`, else the
    /// deployment's setting, else [`default_api_base`], else the `baseUrl`
    /// of the connection's settings (Obsidian).
    pub base_url: String,
}

impl Connection {
    /// The endpoint to call this connection's platform through.
    pub fn endpoint<'a>(&'a self, app: &'a AppState) -> Endpoint<'a> {
        Endpoint {
            http: &app.http,
            base_url: &self.base_url,
            timeout: CALL_TIMEOUT,
        }
    }

    /// The endpoint to call this connection's platform through, with
    /// `timeout` as the deadline of the call instead of [`CALL_TIMEOUT`].
    pub fn endpoint_with_timeout<'a>(&'a self, app: &'a AppState, timeout: Duration) -> Endpoint<'a> {
        Endpoint {
            timeout,
            ..self.endpoint(app)
        }
    }

    /// A secret field of the connection.
    ///
    /// # Errors
    ///
    /// [`ToolError::Internal`] when the field is missing: the operator
    /// checks required fields before it marks a connection Ready, so a
    /// missing one means the stored document and this server disagree.
    pub fn secret(&self, name: &str) -> Result<&str, ToolError> {
        self.credentials.secret(name).ok_or_else(|| {
            warn!(
                platform = %self.credentials.platform,
                field = name,
                "stored credentials lack a required secret field"
            );
            ToolError::Internal
        })
    }

    /// The connection's platform settings as the platform's settings type.
    ///
    /// # Errors
    ///
    /// [`ToolError::Internal`] when the stored settings do not have that shape.
    pub fn settings<T: serde::de::DeserializeOwned>(&self) -> Result<T, ToolError> {
        self.credentials.settings_as().map_err(|error| {
            warn!(%error, "stored connection settings are malformed");
            ToolError::Internal
        })
    }
}

/// Loads and opens `customer`'s credentials for `platform`.
///
/// # Errors
///
/// - [`ToolError::NotConnected`] when no credentials are stored (the
///   connection was removed after the caller's tool list was computed);
/// - [`ToolError::Internal`] when the store cannot be read, the envelope
///   does not open under this server's keyring, or the document is
///   malformed. The cause is logged, without any secret.
pub async fn load_connection(
    app: &AppState,
    customer: &CustomerId,
    platform: Platform,
) -> Result<Connection, ToolError> {
    let credentials = open_credentials(app, customer, platform).await?;

    let base_url = credentials
        .api_base
        .clone()
        .or_else(|| app.settings.api_bases.get(&platform).cloned())
        .or_else(|| default_api_base(platform).map(str::to_owned))
        .or_else(|| settings_base_url(&credentials))
        .ok_or_else(|| {
            warn!(%platform, "no API base URL configured");
            ToolError::Internal
        })?;

    Ok(Connection {
        credentials,
        base_url,
    })
}

/// Reads `customer`'s sealed credentials for `platform` from the store and
/// opens them under this server's keyring.
///
/// # Errors
///
/// - [`ToolError::NotConnected`] when no credentials are stored;
/// - [`ToolError::Internal`] when the store cannot be read or the envelope
///   does not open. The cause is logged, without any secret.
pub async fn open_credentials(
    app: &AppState,
    customer: &CustomerId,
    platform: Platform,
) -> Result<Credentials, ToolError> {
    let envelope = match app.store.get_credentials(customer, platform).await {
        Ok(Some(envelope)) => envelope,
        Ok(None) => return Err(ToolError::NotConnected(platform)),
        Err(error) => {
            warn!(%error, %platform, "credentials unreadable from the store");
            return Err(ToolError::Internal);
        }
    };

    Credentials::open(&app.keyring, customer, platform, &envelope).map_err(|error| {
        warn!(%error, %platform, "stored credentials do not open");
        ToolError::Internal
    })
}

/// The `baseUrl` of a connection's settings, for platforms whose address is
/// the tenant's own (the Obsidian plugin).
fn settings_base_url(credentials: &Credentials) -> Option<String> {
    credentials.settings.get("baseUrl")?.as_str().map(str::to_owned)
}

/// `{base}/{segments…}`, each segment escaped (an empty last segment gives
/// a trailing slash): the URL of one operation of `platform`'s API.
///
/// # Errors
///
/// [`ToolError::Internal`] when the configured base is not a URL that can
/// have a path; the cause is logged, without the URL.
pub fn api_url(platform: Platform, base: &str, segments: &[&str]) -> Result<reqwest::Url, ToolError> {
    let mut url = reqwest::Url::parse(base).map_err(|_| {
        warn!(%platform, "the API base is not a URL");
        ToolError::Internal
    })?;
    url.path_segments_mut()
        .map_err(|()| {
            warn!(%platform, "the API base cannot have a path");
            ToolError::Internal
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// The connection a send of `platform` goes through, or `None` when it must
/// be recorded in the sandbox outbox instead.
///
/// Either side saying sandbox is enough: a send that should have been
/// recorded must never reach the platform. The published connection states
/// (`states`, as the tool call read them) are consulted first, so a sandbox
/// connection needs no credentials at all.
///
/// # Errors
///
/// Those of [`load_connection`].
pub async fn load_live_connection(
    app: &AppState,
    customer: &CustomerId,
    platform: Platform,
    states: &[hermes_state::store::ConnectionState],
) -> Result<Option<Connection>, ToolError> {
    if states
        .iter()
        .any(|state| state.platform == platform && state.sandbox)
    {
        return Ok(None);
    }
    let connection = load_connection(app, customer, platform).await?;
    Ok((!connection.credentials.sandbox).then_some(connection))
}

/// The tool error of a platform answer that is neither a success nor a rate
/// limit, from what the platform's error body said.
///
/// `code` is the platform's own error code and `message` its reason, as the
/// platform module read them; without a code the HTTP status names the
/// error (`http_<status>`), and without a message the status describes it.
/// Every value of `secrets` (what was sent to authenticate) is removed from
/// both, and the message is cut to [`graph::MAX_MESSAGE_CHARS`]: platforms
/// do not quote credentials back, but the message reaches the caller, so it
/// is never trusted not to.
pub fn refusal(
    platform: Platform,
    status: ::http::StatusCode,
    code: Option<String>,
    message: Option<&str>,
    secrets: &[&str],
) -> ToolError {
    let code = match code {
        Some(code) => scrub(&code, secrets),
        None => format!("http_{}", status.as_u16()),
    };
    let message = match message.map(str::trim).filter(|message| !message.is_empty()) {
        Some(message) => scrub(message, secrets),
        None => format!("{platform} answered HTTP {status}"),
    };
    ToolError::Platform {
        platform,
        code,
        message,
    }
}

/// `text` with every non-empty value of `secrets` replaced by `[redacted]`,
/// cut to [`graph::MAX_MESSAGE_CHARS`].
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let text = secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| text.replace(secret, "[redacted]"));
    graph::redact(&text, "")
}
