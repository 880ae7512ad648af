//! Email: SMTP submission for sending, IMAP for reading the inbox
//! (platforms.md section 8).
//!
//! - [`smtp`] builds a message and submits it with lettre;
//! - [`imap`] lists and reads the inbox with async-imap, read-only;
//! - this module holds what both share: where the servers are
//!   ([`MailServer`], derived from the connection's [`EmailSettings`]), how
//!   the connection is secured ([`Security`], [`Trust`]) and the login.
//!
//! Email is not an HTTP platform: the connection's settings name the
//! servers, and the deployment's API base for email, when configured, is an
//! `smtp://` URL that overrides the SMTP one ([`SmtpUrl`]). A call opens its
//! own connection and closes it when done; nothing is pooled, because the
//! credentials are opened for one call and wiped after it.
//!
//! Errors never carry a credential: server texts are scrubbed of the user
//! name and password that were sent before they reach a [`ToolError`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hermes_crds::{EmailSettings, Platform, SmtpTls};
use hermes_state::CustomerId;
use hermes_state::tenancy::Credentials;
use rustls::pki_types::CertificateDer;
use tracing::warn;

use crate::app::AppState;
use crate::tools::ToolError;

pub mod imap;
pub mod smtp;

#[cfg(test)]
mod tests;

pub use hermes_state::tenancy::requirements::fields::{
    IMAP_PASSWORD, IMAP_USERNAME, SMTP_PASSWORD, SMTP_USERNAME,
};

/// The IMAP port with implicit TLS (RFC 8314).
pub const IMAPS_PORT: u16 = 993;

/// The plain IMAP port, upgraded with STARTTLS unless the connection is a
/// local test setup (`smtpTls: none`).
pub const IMAP_PORT: u16 = 143;

/// How a connection to a mail server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (SMTP 465, IMAP 993).
    Implicit,
    /// A plain connection upgraded with STARTTLS before anything secret is
    /// sent; a server that does not offer it is an error, never a fallback.
    StartTls,
    /// No TLS at all: only for local test servers.
    Plain,
}

impl From<SmtpTls> for Security {
    fn from(tls: SmtpTls) -> Self {
        match tls {
            SmtpTls::Implicit => Security::Implicit,
            SmtpTls::Starttls => Security::StartTls,
            SmtpTls::None => Security::Plain,
        }
    }
}

/// Which certificates a mail server's TLS certificate may chain to.
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The operating system's roots, through the platform verifier.
    #[default]
    System,
    /// The system's roots and these extra ones: a server whose certificate
    /// a private CA issued.
    WithRoots(Vec<CertificateDer<'static>>),
}

impl Trust {
    /// A rustls client configuration verifying servers against these roots,
    /// with ring as the crypto provider.
    ///
    /// # Errors
    ///
    /// [`ToolError::Internal`] when the verifier cannot be built: no system
    /// roots and no extra ones, or an extra root that does not parse.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ToolError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let extra_roots = match self {
            Trust::System => Vec::new(),
            Trust::WithRoots(roots) => roots.clone(),
        };
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone()).map_err(
                |error| {
                    warn!(%error, "no TLS verifier for mail servers");
                    ToolError::Internal
                },
            )?;

        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| {
                warn!(%error, "ring offers no safe TLS version");
                ToolError::Internal
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// One mail server to call, and how.
#[derive(Clone, Copy, Debug)]
pub struct MailServer<'a> {
    /// The host name (or address) to connect to and to verify the certificate for.
    pub host: &'a str,
    /// The TCP port.
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
    /// Which certificates the server's certificate may chain to.
    pub trust: &'a Trust,
    /// The deadline of the whole call, connecting included.
    pub timeout: Duration,
}

impl<'a> MailServer<'a> {
    /// The SMTP submission server the settings name.
    pub fn smtp(settings: &'a EmailSettings, trust: &'a Trust, timeout: Duration) -> Self {
        Self {
            host: &settings.smtp_host,
            port: settings.smtp_port,
            security: settings.smtp_tls.into(),
            trust,
            timeout,
        }
    }

    /// The IMAP server the settings name, `None` when they name none.
    ///
    /// The settings have no IMAP TLS mode of their own, so it is derived:
    /// `smtpTls: none` marks a local test setup and IMAP is plain too;
    /// otherwise port 993 (the default) is implicit TLS and any other port
    /// is upgraded with STARTTLS, which is then required.
    pub fn imap(settings: &'a EmailSettings, trust: &'a Trust, timeout: Duration) -> Option<Self> {
        let host = settings.imap_host.as_deref()?;
        let plain = settings.smtp_tls == SmtpTls::None;
        let port = settings
            .imap_port
            .unwrap_or(if plain { IMAP_PORT } else { IMAPS_PORT });
        let security = match (plain, port) {
            (true, _) => Security::Plain,
            (false, IMAPS_PORT) => Security::Implicit,
            (false, _) => Security::StartTls,
        };
        Some(Self {
            host,
            port,
            security,
            trust,
            timeout,
        })
    }
}

/// An SMTP server named by URL, in lettre's forms: `smtp://host:port` is
/// plain, `smtp://host:port?tls=required` is STARTTLS, `smtps://host:port`
/// is implicit TLS. The deployment's `HERMES_EMAIL_API_BASE` names one to
/// override every connection's SMTP server (a local test server, a relay).
/// A connection's own `apiBase` is not read: the CRD admits only http(s)
/// URLs there, which name no SMTP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpUrl {
    /// The host name or address.
    pub host: String,
    /// The port: as given, else 465 for `smtps`, 587 for STARTTLS, 25 for plain.
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
}

impl SmtpUrl {
    /// Parses `url`; `None` when it is not an `smtp://` or `smtps://` URL
    /// naming a host, or asks for a `tls` mode other than `required`.
    pub fn parse(url: &str) -> Option<Self> {
        let url = reqwest::Url::parse(url).ok()?;
        let tls = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => Security::Implicit,
            ("smtp", Some("required")) => Security::StartTls,
            ("smtp", None) => Security::Plain,
            _ => return None,
        };
        let default_port = match security {
            Security::Implicit => 465,
            Security::StartTls => 587,
            Security::Plain => 25,
        };
        let host = url.host_str().filter(|host| !host.is_empty())?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Some(Self {
            host,
            port: url.port().unwrap_or(default_port),
            security,
        })
    }
}

/// A user name and password for one server.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    /// The user name.
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
}

impl fmt::Debug for Login<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl Login<'_> {
    /// `text` with the user name and password replaced by `[redacted]`, for
    /// server texts that reach a tool result. Servers do not echo them, but
    /// nothing guarantees it.
    pub fn scrub(&self, text: &str) -> String {
        let mut scrubbed = text.to_owned();
        for secret in [self.password, self.username] {
            if !secret.is_empty() {
                scrubbed = scrubbed.replace(secret, "[redacted]");
            }
        }
        scrubbed
    }
}

/// One tenant's email connection, opened for a call.
#[derive(Debug)]
pub struct EmailConnection {
    /// The opened credentials; secret values are wiped when this is dropped.
    pub credentials: Credentials,
    /// The connection's settings.
    pub settings: EmailSettings,
    /// The SMTP server that overrides the settings' one, when configured.
    pub smtp_url: Option<SmtpUrl>,
}

impl EmailConnection {
    /// The SMTP server to submit to: [`EmailConnection::smtp_url`], else the
    /// one the settings name.
    pub fn smtp_server<'a>(&'a self, trust: &'a Trust, timeout: Duration) -> MailServer<'a> {
        match &self.smtp_url {
            Some(url) => MailServer {
                host: &url.host,
                port: url.port,
                security: url.security,
                trust,
                timeout,
            },
            None => MailServer::smtp(&self.settings, trust, timeout),
        }
    }

    /// The SMTP login (`smtpUsername`, `smtpPassword`).
    ///
    /// # Errors
    ///
    /// [`ToolError::Internal`] when a field is missing: the operator checks
    /// required fields before it marks a connection Ready.
    pub fn smtp_login(&self) -> Result<Login<'_>, ToolError> {
        Ok(Login {
            username: self.secret(SMTP_USERNAME)?,
            password: self.secret(SMTP_PASSWORD)?,
        })
    }

    /// The IMAP login: `imapUsername` and `imapPassword`, each defaulting to
    /// its SMTP counterpart.
    ///
    /// # Errors
    ///
    /// As [`EmailConnection::smtp_login`].
    pub fn imap_login(&self) -> Result<Login<'_>, ToolError> {
        let smtp = self.smtp_login()?;
        Ok(Login {
            username: self.credentials.secret(IMAP_USERNAME).unwrap_or(smtp.username),
            password: self.credentials.secret(IMAP_PASSWORD).unwrap_or(smtp.password),
        })
    }

    fn secret(&self, name: &str) -> Result<&str, ToolError> {
        self.credentials.secret(name).ok_or_else(|| {
            warn!(
                field = name,
                "stored email credentials lack a required secret field"
            );
            ToolError::Internal
        })
    }
}

/// Loads and opens `customer`'s email credentials and reads their settings.
///
/// This is [`super::load_connection`] (sharing its [`super::open_credentials`]) for a platform whose servers the
/// settings name: the deployment's "API base" for email is an optional
/// [`SmtpUrl`] overriding the SMTP server.
///
/// # Errors
///
/// - [`ToolError::NotConnected`] when no credentials are stored;
/// - [`ToolError::Internal`] when the store cannot be read, the envelope
///   does not open, the settings are not email settings, or the SMTP URL
///   override is not one. The cause is logged, without any secret.
pub async fn load_connection(app: &AppState, customer: &CustomerId) -> Result<EmailConnection, ToolError> {
    let credentials = super::open_credentials(app, customer, Platform::Email).await?;
    let settings = credentials.settings_as::<EmailSettings>().map_err(|error| {
        warn!(%error, "stored email settings are malformed");
        ToolError::Internal
    })?;

    let smtp_url = match app.settings.api_bases.get(&Platform::Email) {
        None => None,
        Some(base) => Some(SmtpUrl::parse(base).ok_or_else(|| {
            warn!("HERMES_EMAIL_API_BASE is not an smtp:// or smtps:// URL");
            ToolError::Internal
        })?),
    };

    Ok(EmailConnection {
        credentials,
        settings,
        smtp_url,
    })
}

/// The error of an answer Hermes cannot read.
pub fn malformed() -> ToolError {
    super::http::malformed(Platform::Email)
}

/// A refusal by the mail server, with its code and scrubbed text.
fn refused(code: impl Into<String>, message: String) -> ToolError {
    ToolError::Platform {
        platform: Platform::Email,
        code: code.into(),
        message,
    }
}

/// What an I/O failure while connecting or talking means for the caller:
/// a timeout, or a server that could not be reached (refused, reset, TLS
/// handshake failed, DNS).
fn io_error(error: &std::io::Error) -> ToolError {
    match error.kind() {
        std::io::ErrorKind::TimedOut => ToolError::Timeout(Platform::Email),
        _ => ToolError::Unreachable(Platform::Email),
    }
}
