//! Reading: the inbox over IMAP (RFC 3501), read-only.
//!
//! Every call is one session: connect (implicit TLS, STARTTLS or plain),
//! read the greeting, `LOGIN`, `EXAMINE INBOX`, one `FETCH`, `LOGOUT`.
//! `EXAMINE` opens the mailbox read-only and bodies are fetched with
//! `BODY.PEEK`, so reading never marks a message seen nor changes any flag.
//!
//! Messages are parsed with `mail-parser`: headers are decoded (RFC 2047
//! encoded words, charsets), the text body is the `text/plain` part, or the
//! HTML part turned into text when there is none.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_imap::imap_proto::{AttributeValue, Response, Status};
use async_imap::{Client, Session};
use hermes_crds::Platform;
use mail_parser::{MessageParser, MimeHeaders};
use rustls::pki_types::ServerName;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

use super::{Login, MailServer, Security, malformed, refused};
use crate::tools::ToolError;

/// The most messages one listing returns.
pub const MAX_LIST: u32 = 50;

/// The most bytes of one message fetched to read it. Text bodies are far
/// smaller; what lies beyond is attachments, which are named but not returned.
pub const MAX_FETCH_BYTES: u32 = 1024 * 1024;

/// The most characters of a text body returned; the rest is cut and the
/// message marked `truncated`.
pub const MAX_TEXT_CHARS: usize = 100_000;

/// The most bytes read from the server in one session. A listing of
/// [`MAX_LIST`] header blocks or one [`MAX_FETCH_BYTES`] fetch stays far
/// below it; a server sending more is not answering what was asked, and
/// would otherwise grow the client's buffer up to async-imap's 512 MiB cap.
pub const MAX_SESSION_BYTES: u64 = 8 * 1024 * 1024;

/// The headers a listing fetches for each message.
const LIST_ITEMS: &str = "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)])";

/// The mailbox both tools read.
const INBOX: &str = "INBOX";

/// A mailbox address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailAddress {
    /// The display name, when the header gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address, `name@example.com`.
    pub address: String,
}

/// One message of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxEntry {
    /// The message's IMAP UID in the inbox; `email_read_message` takes it.
    pub uid: u32,
    /// The sender.
    pub from: Option<EmailAddress>,
    /// The subject, decoded.
    pub subject: Option<String>,
    /// The `Date` header, RFC 3339.
    pub date: Option<String>,
    /// The `Message-ID`, with its angle brackets (for `inReplyTo`).
    pub message_id: Option<String>,
    /// True when the message has been read (the `\Seen` flag).
    pub seen: bool,
    /// The message's size in bytes.
    pub size: Option<u32>,
}

/// The newest messages of the inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inbox {
    /// How many messages the inbox holds.
    pub total: u32,
    /// The newest messages, newest first.
    pub messages: Vec<InboxEntry>,
}

/// An attachment of a message read: named, not returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The file name, when the message gives one.
    pub filename: Option<String>,
    /// The MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The decoded size in bytes (of what was fetched).
    pub size: usize,
}

/// One message, read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageContent {
    /// The message's IMAP UID in the inbox.
    pub uid: u32,
    /// The `Message-ID`, with its angle brackets (for `inReplyTo`).
    pub message_id: Option<String>,
    /// The `From` addresses.
    pub from: Vec<EmailAddress>,
    /// The `To` addresses.
    pub to: Vec<EmailAddress>,
    /// The `Cc` addresses.
    pub cc: Vec<EmailAddress>,
    /// The `Reply-To` addresses.
    pub reply_to: Vec<EmailAddress>,
    /// The subject, decoded.
    pub subject: Option<String>,
    /// The `Date` header, RFC 3339.
    pub date: Option<String>,
    /// True when the message has been read (the `\Seen` flag); reading it here does not set it.
    pub seen: bool,
    /// The text body: the `text/plain` part, or the HTML part as text.
    pub text: String,
    /// True when the text was cut: it exceeded the character bound, or the
    /// message exceeded the bytes fetched.
    pub truncated: bool,
    /// The attachments, by name and type.
    pub attachments: Vec<Attachment>,
}

/// Lists the newest `limit` messages of the inbox (at most [`MAX_LIST`]).
///
/// # Errors
///
/// The errors of a session: [`ToolError::Timeout`] past the server's
/// deadline; [`ToolError::Unreachable`] when no connection (or no TLS) could
/// be made or it was lost; [`ToolError::Platform`] with code
/// `authentication_failed` when the login is refused, `imap_no` or
/// `imap_bad` when a command is, `malformed_response` when the server does
/// not speak IMAP.
pub async fn list_inbox(server: &MailServer<'_>, login: &Login<'_>, limit: u32) -> Result<Inbox, ToolError> {
    let limit = limit.clamp(1, MAX_LIST);
    within(server, async {
        let mut session = open(server, login).await?;
        let mailbox = session
            .examine(INBOX)
            .await
            .map_err(|error| command_error(error, Step::Examine))?;

        let total = mailbox.exists;
        let mut messages = Vec::new();
        if total > 0 {
            let first = total.saturating_sub(limit - 1).max(1);
            let fetched = fetch(&mut session, &format!("FETCH {first}:{total} {LIST_ITEMS}")).await?;
            messages = fetched.iter().filter_map(entry).collect::<Vec<_>>();
            messages.sort_by_key(|message| std::cmp::Reverse(message.uid));
        }

        close(session).await;
        Ok(Inbox { total, messages })
    })
    .await
}

/// Reads the inbox message with UID `uid`, without marking it seen.
///
/// # Errors
///
/// The errors of [`list_inbox`], and [`ToolError::Platform`] with code
/// `not_found` when the inbox has no message with that UID.
pub async fn read_message(
    server: &MailServer<'_>,
    login: &Login<'_>,
    uid: u32,
) -> Result<MessageContent, ToolError> {
    within(server, async {
        let mut session = open(server, login).await?;
        session
            .examine(INBOX)
            .await
            .map_err(|error| command_error(error, Step::Examine))?;

        let command = format!("UID FETCH {uid} (UID FLAGS RFC822.SIZE BODY.PEEK[]<0.{MAX_FETCH_BYTES}>)");
        let fetched = fetch(&mut session, &command).await?;
        close(session).await;

        // A server may add unsolicited FETCH answers about other messages.
        let message = fetched
            .iter()
            .find(|message| message.uid == Some(uid))
            .ok_or_else(|| refused("not_found", format!("the inbox has no message with UID {uid}")))?;
        let raw = message.body.as_deref().ok_or_else(malformed)?;
        content_of(uid, raw, message.seen, message.size).ok_or_else(malformed)
    })
    .await
}

/// Runs one session within the server's deadline.
async fn within<T>(
    server: &MailServer<'_>,
    session: impl Future<Output = Result<T, ToolError>>,
) -> Result<T, ToolError> {
    tokio::time::timeout(server.timeout, session)
        .await
        .unwrap_or(Err(ToolError::Timeout(Platform::Email)))
}

/// The step of a session, for what a failure says.
#[derive(Clone, Copy, Debug)]
enum Step {
    Greeting,
    StartTls,
    Login,
    Examine,
    Fetch,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Greeting => "the greeting",
            Step::StartTls => "STARTTLS",
            Step::Login => "LOGIN",
            Step::Examine => "EXAMINE INBOX",
            Step::Fetch => "FETCH",
        })
    }
}

/// The byte stream a session runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

type Stream = Box<dyn Io>;

/// Connects, secures the connection as the server asks, reads the
/// greeting and logs in.
async fn open(server: &MailServer<'_>, login: &Login<'_>) -> Result<Session<Stream>, ToolError> {
    let tcp = TcpStream::connect((server.host, server.port))
        .await
        .map_err(|error| {
            debug!(%error, "IMAP connect failed");
            super::io_error(&error)
        })?;
    let tcp = Bounded::new(tcp, MAX_SESSION_BYTES);

    let client: Client<Stream> = match server.security {
        Security::Plain => {
            let mut client = Client::new(Box::new(tcp) as Stream);
            greeting(&mut client).await?;
            client
        }
        Security::Implicit => {
            let tls = handshake(server, tcp).await?;
            let mut client = Client::new(Box::new(tls) as Stream);
            greeting(&mut client).await?;
            client
        }
        Security::StartTls => {
            // The greeting comes once, before STARTTLS; none follows the handshake.
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|error| command_error(error, Step::StartTls))?;
            let tls = handshake(server, client.into_inner()).await?;
            Client::new(Box::new(tls) as Stream)
        }
    };

    client
        .login(login.username, login.password)
        .await
        .map_err(|(error, _client)| login_error(error, login))
}

/// The TLS handshake, verifying the server's certificate for its host name.
async fn handshake(
    server: &MailServer<'_>,
    tcp: Bounded<TcpStream>,
) -> Result<tokio_rustls::client::TlsStream<Bounded<TcpStream>>, ToolError> {
    let name = ServerName::try_from(server.host.to_owned()).map_err(|_| {
        debug!("the IMAP host is not a valid TLS server name");
        ToolError::Unreachable(Platform::Email)
    })?;
    let connector = tokio_rustls::TlsConnector::from(server.trust.client_config()?);
    connector.connect(name, tcp).await.map_err(|error| {
        debug!(%error, "IMAP TLS handshake failed");
        ToolError::Unreachable(Platform::Email)
    })
}

/// Reads the server's greeting: `OK` (or `PREAUTH`) to go on.
async fn greeting<T: Io>(client: &mut Client<T>) -> Result<(), ToolError> {
    let response = client
        .read_response()
        .await
        .map_err(|error| session_io_error(&error, Step::Greeting))?
        .ok_or(ToolError::Unreachable(Platform::Email))?;

    match response.parsed() {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye, ..
        } => Err(refused(
            "unavailable",
            "the IMAP server refused the connection (BYE)".to_owned(),
        )),
        other => {
            debug!(response = ?other, "IMAP greeting is not a greeting");
            Err(malformed())
        }
    }
}

/// One message's answer to a FETCH, as far as Hermes reads it.
#[derive(Debug, Default)]
struct Fetched {
    uid: Option<u32>,
    seen: bool,
    size: Option<u32>,
    /// `BODY[HEADER…]`: the header fields asked for.
    header: Option<Vec<u8>>,
    /// `BODY[]`: the message, or its first bytes.
    body: Option<Vec<u8>>,
}

impl Fetched {
    fn from_attributes(attributes: &[AttributeValue<'_>]) -> Self {
        let mut fetched = Self::default();
        for attribute in attributes {
            match attribute {
                AttributeValue::Uid(uid) => fetched.uid = Some(*uid),
                AttributeValue::Rfc822Size(size) => fetched.size = Some(*size),
                AttributeValue::Flags(flags) => {
                    fetched.seen = flags.iter().any(|flag| flag.eq_ignore_ascii_case("\\Seen"));
                }
                AttributeValue::BodySection {
                    section: None,
                    data: Some(data),
                    ..
                } => fetched.body = Some(data.to_vec()),
                AttributeValue::BodySection {
                    section: Some(_),
                    data: Some(data),
                    ..
                } => fetched.header = Some(data.to_vec()),
                _ => {}
            }
        }
        fetched
    }
}

/// Runs a FETCH command (`FETCH …` or `UID FETCH …`) and reads its answers
/// up to its tagged completion, which must be `OK`.
///
/// async-imap's own fetch streams end at the completion without reading
/// its status, so a refused FETCH would look like an empty one; this reads
/// the answers itself.
async fn fetch(session: &mut Session<Stream>, command: &str) -> Result<Vec<Fetched>, ToolError> {
    let tag = session
        .run_command(command)
        .await
        .map_err(|error| command_error(error, Step::Fetch))?;

    let mut fetched = Vec::new();
    loop {
        let response = session
            .read_response()
            .await
            .map_err(|error| session_io_error(&error, Step::Fetch))?
            .ok_or(ToolError::Unreachable(Platform::Email))?;
        match response.parsed() {
            Response::Fetch(_, attributes) => fetched.push(Fetched::from_attributes(attributes)),
            Response::Done {
                tag: done, status, ..
            } if *done == tag => {
                return match status {
                    Status::Ok => Ok(fetched),
                    Status::No => Err(refused(
                        "imap_no",
                        format!("the IMAP server refused {} (NO)", Step::Fetch),
                    )),
                    Status::Bad => Err(refused(
                        "imap_bad",
                        format!("the IMAP server rejected {} (BAD)", Step::Fetch),
                    )),
                    Status::PreAuth | Status::Bye => Err(malformed()),
                };
            }
            // Untagged updates: new messages, expunges, other messages' flags.
            _ => {}
        }
    }
}

/// Logs out; the answers have been read, so a failure here changes nothing.
async fn close(mut session: Session<Stream>) {
    if let Err(error) = session.logout().await {
        debug!(%error, "IMAP logout failed");
    }
}

/// A listing entry from a FETCH of [`LIST_ITEMS`]; `None` without a UID.
fn entry(fetched: &Fetched) -> Option<InboxEntry> {
    Some(entry_of(
        fetched.uid?,
        fetched.header.as_deref(),
        fetched.seen,
        fetched.size,
    ))
}

/// A listing entry from the header fields fetched.
fn entry_of(uid: u32, header: Option<&[u8]>, seen: bool, size: Option<u32>) -> InboxEntry {
    let parsed = header.and_then(|header| MessageParser::new().parse_headers(header));
    let (from, subject, date, message_id) = match &parsed {
        Some(message) => (
            addresses(message.from()).into_iter().next(),
            message.subject().map(str::to_owned),
            message.date().map(|date| date.to_rfc3339()),
            message.message_id().map(|id| format!("<{id}>")),
        ),
        None => (None, None, None, None),
    };
    InboxEntry {
        uid,
        from,
        subject,
        date,
        message_id,
        seen,
        size,
    }
}

/// A message read from its raw bytes (the first [`MAX_FETCH_BYTES`] of
/// `size`); `None` when they are not a message.
fn content_of(uid: u32, raw: &[u8], seen: bool, size: Option<u32>) -> Option<MessageContent> {
    let message = MessageParser::new().parse(raw)?;

    let body = message.body_text(0).unwrap_or_default();
    let cut = body.char_indices().nth(MAX_TEXT_CHARS).map(|(at, _)| at);
    let text = cut.map_or(&*body, |at| &body[..at]).to_owned();
    let partial = size.is_some_and(|size| size > MAX_FETCH_BYTES);

    let attachments = message
        .attachments()
        .map(|part| Attachment {
            filename: part.attachment_name().map(str::to_owned),
            content_type: part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |kind| match kind.subtype() {
                    Some(subtype) => format!("{}/{subtype}", kind.ctype()),
                    None => kind.ctype().to_owned(),
                },
            ),
            size: part.len(),
        })
        .collect();

    Some(MessageContent {
        uid,
        message_id: message.message_id().map(|id| format!("<{id}>")),
        from: addresses(message.from()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        reply_to: addresses(message.reply_to()),
        subject: message.subject().map(str::to_owned),
        date: message.date().map(|date| date.to_rfc3339()),
        seen,
        text,
        truncated: cut.is_some() || partial,
        attachments,
    })
}

/// The addresses of a header, groups flattened; entries without an address are left out.
fn addresses(header: Option<&mail_parser::Address<'_>>) -> Vec<EmailAddress> {
    header
        .into_iter()
        .flat_map(|address| address.iter())
        .filter_map(|addr| {
            Some(EmailAddress {
                name: addr.name().map(str::to_owned),
                address: addr.address()?.to_owned(),
            })
        })
        .collect()
}

/// What a refused or failed LOGIN means. The server's text is not kept: a
/// refusal says no more than "authentication failed" to the caller.
fn login_error(error: async_imap::error::Error, login: &Login<'_>) -> ToolError {
    use async_imap::error::Error;

    match error {
        Error::No(_) | Error::Bad(_) => {
            debug!(error = %login.scrub(&error.to_string()), "IMAP login refused");
            refused(
                "authentication_failed",
                "authentication failed (IMAP LOGIN refused)".to_owned(),
            )
        }
        Error::Validate(_) => refused(
            "authentication_failed",
            "the IMAP user name or password cannot be sent: it contains a line break".to_owned(),
        ),
        other => command_error(other, Step::Login),
    }
}

/// What a failed command means for the caller.
fn command_error(error: async_imap::error::Error, step: Step) -> ToolError {
    use async_imap::error::Error;

    debug!(%error, %step, "IMAP command failed");
    match error {
        Error::No(_) => refused("imap_no", format!("the IMAP server refused {step} (NO)")),
        Error::Bad(_) => refused("imap_bad", format!("the IMAP server rejected {step} (BAD)")),
        Error::Io(error) => session_io_error(&error, step),
        Error::ConnectionLost => ToolError::Unreachable(Platform::Email),
        Error::Parse(_) => malformed(),
        // Validation only fails for a LOGIN argument ([`login_error`]) or a
        // mailbox name, and Hermes sends no mailbox name but INBOX; APPEND is
        // never sent; the enum is non-exhaustive, and a new variant is one
        // Hermes cannot interpret.
        _ => ToolError::Internal,
    }
}

/// What an I/O failure in a session means: a deadline, an answer that is
/// not IMAP (async-imap reports parse failures as `Other`; [`Bounded`] and
/// TLS report `InvalidData`), or a lost connection.
fn session_io_error(error: &io::Error, step: Step) -> ToolError {
    debug!(%error, %step, "IMAP I/O failed");
    match error.kind() {
        io::ErrorKind::TimedOut => ToolError::Timeout(Platform::Email),
        io::ErrorKind::Other | io::ErrorKind::InvalidData => malformed(),
        _ => ToolError::Unreachable(Platform::Email),
    }
}

/// A stream that fails once more than a set number of bytes has been read.
#[derive(Debug)]
struct Bounded<S> {
    inner: S,
    limit: u64,
    remaining: u64,
}

impl<S> Bounded<S> {
    fn new(inner: S, limit: u64) -> Self {
        Self {
            inner,
            limit,
            remaining: limit,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = u64::try_from(buf.filled().len() - before).unwrap_or(u64::MAX);

        match self.remaining.checked_sub(read) {
            Some(remaining) => {
                self.remaining = remaining;
                Poll::Ready(Ok(()))
            }
            None => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the server sent more than {} bytes", self.limit),
            ))),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
