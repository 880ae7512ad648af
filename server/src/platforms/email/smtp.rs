//! Sending: one message built with lettre and submitted over SMTP
//! (RFC 6409), with AUTH PLAIN or LOGIN (RFC 4954).
//!
//! The message carries a Message-ID Hermes makes (`<random@sender domain>`),
//! which is the send's answer: the SMTP server names no id of its own that
//! a recipient could ever see.

use std::error::Error as _;

use hermes_crds::Platform;
use lettre::message::header::{InReplyTo, References};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::response::Code;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::{debug, warn};

use super::{Login, MailServer, Security, Trust, malformed, refused};
use crate::tools::ToolError;

/// A message to send.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingEmail<'a> {
    /// The sender, the connection's `fromAddress`: `name@example.com` or
    /// `Name <name@example.com>`.
    pub from: &'a str,
    /// The To recipients, at least one.
    pub to: &'a [Mailbox],
    /// The Cc recipients.
    pub cc: &'a [Mailbox],
    /// The Bcc recipients: in the envelope, never in the headers.
    pub bcc: &'a [Mailbox],
    /// The subject.
    pub subject: &'a str,
    /// The plain-text body.
    pub text: Option<&'a str>,
    /// The HTML body. With a text body too, the message is
    /// `multipart/alternative` with the text first.
    pub html: Option<&'a str>,
    /// The Message-ID (with its angle brackets) this message replies to; it
    /// becomes `In-Reply-To` and `References`.
    pub in_reply_to: Option<&'a str>,
}

/// A message ready to submit.
#[derive(Debug)]
pub struct Composed {
    /// The message, headers and body, with its envelope.
    pub message: Message,
    /// Its Message-ID, with the angle brackets.
    pub message_id: String,
}

/// Builds the message: headers, envelope, and a text, HTML, or
/// `multipart/alternative` body.
///
/// # Errors
///
/// [`ToolError::Platform`] with code `invalid_from_address` when the
/// connection's `fromAddress` is not an address; `invalid_message` when
/// lettre refuses the message (a message without a body is one: the tool
/// requires text or HTML before it gets here).
pub fn compose(email: &OutgoingEmail<'_>) -> Result<Composed, ToolError> {
    let from: Mailbox = email.from.parse().map_err(|_| {
        refused(
            "invalid_from_address",
            "the connection's fromAddress is not an email address".to_owned(),
        )
    })?;
    let message_id = format!("<{:032x}@{}>", rand::random::<u128>(), from.email.domain());

    let mut builder = Message::builder()
        .from(from)
        .subject(email.subject)
        .message_id(Some(message_id.clone()));
    for to in email.to {
        builder = builder.to(to.clone());
    }
    for cc in email.cc {
        builder = builder.cc(cc.clone());
    }
    for bcc in email.bcc {
        builder = builder.bcc(bcc.clone());
    }
    if let Some(parent) = email.in_reply_to {
        builder = builder
            .header(InReplyTo::from(parent.to_owned()))
            .header(References::from(parent.to_owned()));
    }

    let built = match (email.text, email.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        )),
        (Some(text), None) => builder.singlepart(SinglePart::plain(text.to_owned())),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.to_owned())),
        (None, None) => {
            return Err(refused(
                "invalid_message",
                "a message needs a text or an HTML body".to_owned(),
            ));
        }
    };
    let message =
        built.map_err(|error| refused("invalid_message", format!("the message cannot be built: {error}")))?;

    Ok(Composed { message, message_id })
}

/// Builds `email` and submits it to `server` with `login`; returns its
/// Message-ID.
///
/// # Errors
///
/// The errors of [`compose`], and:
/// - [`ToolError::Timeout`] when the server has not accepted the message
///   within the server's deadline;
/// - [`ToolError::Unreachable`] when no connection could be made, or TLS
///   could not be established (certificate not trusted, no STARTTLS);
/// - [`ToolError::Platform`] with the SMTP reply code for a refusal:
///   `authentication failed` for 530, 534 and 535, `retry later` for any
///   transient (4xx) reply; `malformed_response` when the server does not
///   speak SMTP.
pub async fn send(
    server: &MailServer<'_>,
    login: &Login<'_>,
    email: &OutgoingEmail<'_>,
) -> Result<String, ToolError> {
    let Composed { message, message_id } = compose(email)?;
    let transport = transport(server, login)?;

    // lettre's own timeout bounds each step; this one bounds the whole exchange.
    match tokio::time::timeout(server.timeout, transport.send(message)).await {
        Err(_elapsed) => Err(ToolError::Timeout(Platform::Email)),
        Ok(Ok(_response)) => Ok(message_id),
        Ok(Err(error)) => Err(smtp_error(&error, login)),
    }
}

/// The transport for one submission: the server, its TLS mode, the login
/// and the per-step timeout.
///
/// lettre keeps the login in plain `String`s, which are freed but not wiped
/// when the transport drops at the end of the call; the opened credentials
/// themselves are wiped. This holds until lettre's `Credentials` zeroize.
fn transport(
    server: &MailServer<'_>,
    login: &Login<'_>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, ToolError> {
    let credentials = Credentials::new(login.username.to_owned(), login.password.to_owned());
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host)
            .port(server.port)
            .tls(tls_mode(server)?)
            .credentials(credentials)
            .timeout(Some(server.timeout))
            .build(),
    )
}

/// lettre's TLS mode for the server: implicit TLS is `Wrapper` (TLS from
/// the first byte), STARTTLS is `Required` (never a plain fallback, so no
/// credential is sent before TLS), plain is `None`.
///
/// # Errors
///
/// [`ToolError::Internal`] when the TLS parameters cannot be built (no
/// roots to verify against, an extra root that does not parse).
pub fn tls_mode(server: &MailServer<'_>) -> Result<Tls, ToolError> {
    let parameters = || -> Result<TlsParameters, ToolError> {
        let built = match server.trust {
            Trust::System => TlsParameters::new(server.host.to_owned()),
            Trust::WithRoots(roots) => roots
                .iter()
                .try_fold(TlsParameters::builder(server.host.to_owned()), |builder, root| {
                    Certificate::from_der(root.to_vec()).map(|root| builder.add_root_certificate(root))
                })
                .and_then(|builder| builder.build_rustls()),
        };
        built.map_err(|error| {
            warn!(%error, "SMTP TLS parameters cannot be built");
            ToolError::Internal
        })
    };

    Ok(match server.security {
        Security::Implicit => Tls::Wrapper(parameters()?),
        Security::StartTls => Tls::Required(parameters()?),
        Security::Plain => Tls::None,
    })
}

/// The reply codes that mean the login was refused: authentication
/// required (530), mechanism too weak or an app password required (534),
/// credentials invalid (535).
fn is_authentication_failure(code: Code) -> bool {
    matches!(code.to_string().as_str(), "530" | "534" | "535")
}

/// What a lettre error means for the caller. The server's text is kept,
/// scrubbed of the login; lettre's own texts name no secret.
fn smtp_error(error: &lettre::transport::smtp::Error, login: &Login<'_>) -> ToolError {
    let detail = error
        .source()
        .map(|source| login.scrub(&source.to_string()))
        .unwrap_or_default();
    debug!(error = %login.scrub(&error.to_string()), "SMTP submission failed");

    if let Some(code) = error.status() {
        let message = if is_authentication_failure(code) {
            format!("authentication failed: {code} {detail}")
        } else if error.is_transient() {
            format!("temporarily refused, retry later: {code} {detail}")
        } else {
            format!("refused: {code} {detail}")
        };
        return refused(code.to_string(), message.trim_end().to_owned());
    }

    if error.is_timeout() {
        ToolError::Timeout(Platform::Email)
    } else if error.is_response() {
        malformed()
    } else if error.is_client() {
        client_error(&detail)
    } else {
        // Connection, network and TLS failures, shutdown: nothing was accepted.
        ToolError::Unreachable(Platform::Email)
    }
}

/// lettre's client-side refusals that are the server's doing; any other is
/// a message Hermes should not have built.
fn client_error(detail: &str) -> ToolError {
    if detail.contains("STARTTLS") {
        refused(
            "starttls_unsupported",
            "the SMTP server does not offer STARTTLS, which the connection's smtpTls requires".to_owned(),
        )
    } else if detail.contains("authentication mechanism") {
        refused(
            "auth_unsupported",
            "the SMTP server offers no authentication mechanism Hermes supports (PLAIN, LOGIN) on this connection"
                .to_owned(),
        )
    } else if detail.contains("SMTPUTF8") || detail.contains("8BITMIME") {
        refused(
            "unsupported_content",
            format!("the SMTP server cannot take this message: {detail}"),
        )
    } else {
        warn!(error = detail, "SMTP client refused the submission");
        ToolError::Internal
    }
}

#[cfg(test)]
mod tests;
