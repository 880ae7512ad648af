//! `email_send`, `email_list_inbox` and `email_read_message`: the
//! customer's mailbox over SMTP and IMAP.
//!
//! Sending follows `whatsapp_send_message`: arguments validated field by
//! field, the sandbox checked first (a sandbox connection records the
//! message in the outbox and needs no credentials), then the platform call.
//! Reading needs the connection's `imapHost`; a sandbox connection has an
//! empty inbox.

use std::borrow::Cow;

use async_trait::async_trait;
use hermes_crds::Platform;
use lettre::message::Mailbox;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::record_in_outbox;
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::CALL_TIMEOUT;
use crate::platforms::email::imap::{self, Inbox, MAX_LIST, MessageContent};
use crate::platforms::email::smtp::{self, OutgoingEmail};
use crate::platforms::email::{EmailConnection, MailServer, Trust, load_connection};

/// The name of the send tool.
pub const SEND: &str = "email_send";

/// The name of the listing tool.
pub const LIST_INBOX: &str = "email_list_inbox";

/// The name of the reading tool.
pub const READ_MESSAGE: &str = "email_read_message";

/// The most addresses one of `to`, `cc` and `bcc` may name.
pub const MAX_RECIPIENTS_PER_FIELD: usize = 50;

/// The most addresses a message may name in all. RFC 5321 requires
/// servers to take 100 recipients per message; beyond that some refuse.
pub const MAX_RECIPIENTS: usize = 100;

/// The longest subject, in characters (RFC 5322's line length).
pub const MAX_SUBJECT_CHARS: usize = 998;

/// The largest text or HTML body, in bytes.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// How many messages `email_list_inbox` lists when the call does not say.
pub const DEFAULT_LIST_LIMIT: u32 = 20;

// --- arguments ---

/// The arguments of `email_send`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendArgs {
    /// The recipients, 1 to 50 addresses: `name@example.com` or `Name <name@example.com>`.
    pub to: Recipients<1>,
    /// Copy recipients, up to 50; they are shown to every recipient.
    #[serde(default)]
    pub cc: Recipients<0>,
    /// Blind copy recipients, up to 50; no recipient sees them.
    #[serde(default)]
    pub bcc: Recipients<0>,
    /// The subject, 1 to 998 characters on one line.
    pub subject: Subject,
    /// The plain-text body. Give `text`, `html`, or both (then mail clients choose).
    #[serde(default)]
    pub text: Option<Body>,
    /// The HTML body. Give `text`, `html`, or both (then mail clients choose).
    #[serde(default)]
    pub html: Option<Body>,
    /// The Message-ID of the message this one answers, e.g. `<abc@example.com>`, as
    /// `email_list_inbox` and `email_read_message` return it; mail clients then thread them.
    #[serde(default)]
    pub in_reply_to: Option<MessageId>,
}

/// What `email_send` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentEmail {
    /// The sent message's Message-ID header, e.g. `<5f3c…@example.com>`, or `sandbox-…`
    /// for a sandbox connection.
    pub message_id: String,
    /// True when the message was recorded in the outbox of a sandbox connection instead of sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// The arguments of `email_list_inbox`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInboxArgs {
    /// How many of the newest messages to list, 1 to 50. Defaults to 20.
    #[serde(default)]
    pub limit: Option<ListLimit>,
}

/// What `email_list_inbox` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxListing {
    /// The inbox.
    #[serde(flatten)]
    pub inbox: Inbox,
    /// True for a sandbox connection, whose inbox is always empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// The arguments of `email_read_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadMessageArgs {
    /// The message's UID, as `email_list_inbox` returns it.
    pub uid: Uid,
}

/// One recipient address: `name@example.com` or `Name <name@example.com>`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Recipient(Mailbox);

impl TryFrom<String> for Recipient {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let expected = "expected an email address such as `name@example.com` or `Name <name@example.com>`";
        if value.contains(['\r', '\n']) {
            return Err(expected);
        }
        value.trim().parse::<Mailbox>().map(Self).map_err(|_| expected)
    }
}

impl JsonSchema for Recipient {
    fn schema_name() -> Cow<'static, str> {
        "Recipient".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 3, "maxLength": 320 })
    }
}

/// `MIN` to [`MAX_RECIPIENTS_PER_FIELD`] recipients.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<Recipient>")]
pub struct Recipients<const MIN: usize>(Vec<Recipient>);

impl<const MIN: usize> Recipients<MIN> {
    /// The addresses.
    pub fn mailboxes(&self) -> Vec<Mailbox> {
        self.0.iter().map(|recipient| recipient.0.clone()).collect()
    }

    /// How many addresses there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The addresses as given, for the outbox.
    fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|recipient| recipient.0.to_string()).collect()
    }
}

impl<const MIN: usize> TryFrom<Vec<Recipient>> for Recipients<MIN> {
    type Error = String;

    fn try_from(value: Vec<Recipient>) -> Result<Self, Self::Error> {
        if value.len() < MIN {
            Err(format!("needs at least {MIN} address"))
        } else if value.len() > MAX_RECIPIENTS_PER_FIELD {
            Err(format!(
                "names {} addresses; at most {MAX_RECIPIENTS_PER_FIELD}",
                value.len()
            ))
        } else {
            Ok(Self(value))
        }
    }
}

impl<const MIN: usize> JsonSchema for Recipients<MIN> {
    fn schema_name() -> Cow<'static, str> {
        "Recipients".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<Recipient>();
        json_schema!({
            "type": "array",
            "items": item,
            "minItems": MIN,
            "maxItems": MAX_RECIPIENTS_PER_FIELD,
        })
    }
}

/// A subject: 1 to [`MAX_SUBJECT_CHARS`] characters, one line, not only whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Subject(String);

impl TryFrom<String> for Subject {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else if value.contains(['\r', '\n']) {
            Err("must be one line".to_owned())
        } else if chars > MAX_SUBJECT_CHARS {
            Err(format!("is {chars} characters; at most {MAX_SUBJECT_CHARS}"))
        } else {
            Ok(Self(value))
        }
    }
}

impl JsonSchema for Subject {
    fn schema_name() -> Cow<'static, str> {
        "Subject".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_CHARS, "pattern": "^[^\r\n]*$" })
    }
}

/// A message body: not only whitespace, at most [`MAX_BODY_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Body(String);

impl TryFrom<String> for Body {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else if value.len() > MAX_BODY_BYTES {
            Err(format!("is {} bytes; at most {MAX_BODY_BYTES}", value.len()))
        } else {
            Ok(Self(value))
        }
    }
}

impl JsonSchema for Body {
    fn schema_name() -> Cow<'static, str> {
        "Body".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1 })
    }
}

/// A Message-ID, `<left@right>`; the angle brackets may be left out.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MessageId(String);

impl TryFrom<String> for MessageId {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bare = value.trim();
        let bare = bare
            .strip_prefix('<')
            .and_then(|inner| inner.strip_suffix('>'))
            .unwrap_or(bare);
        let visible = bare
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>'));
        let shape = bare
            .split_once('@')
            .is_some_and(|(left, right)| !left.is_empty() && !right.is_empty());
        if visible && shape && bare.len() <= 900 {
            Ok(Self(format!("<{bare}>")))
        } else {
            Err("expected a Message-ID such as `<abc@example.com>`")
        }
    }
}

impl JsonSchema for MessageId {
    fn schema_name() -> Cow<'static, str> {
        "MessageId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 3, "maxLength": 902 })
    }
}

/// How many messages to list: 1 to [`MAX_LIST`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct ListLimit(u32);

impl TryFrom<u32> for ListLimit {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if (1..=MAX_LIST).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("must be 1 to {MAX_LIST}"))
        }
    }
}

impl JsonSchema for ListLimit {
    fn schema_name() -> Cow<'static, str> {
        "ListLimit".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": DEFAULT_LIST_LIMIT })
    }
}

/// An IMAP UID: a positive 32-bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct Uid(u32);

impl TryFrom<u32> for Uid {
    type Error = &'static str;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if value == 0 {
            Err("UIDs start at 1")
        } else {
            Ok(Self(value))
        }
    }
}

impl JsonSchema for Uid {
    fn schema_name() -> Cow<'static, str> {
        "Uid".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": u32::MAX })
    }
}

/// The checks across fields: a body, and at most [`MAX_RECIPIENTS`] in all.
fn check_send(args: &SendArgs) -> Result<(), ToolError> {
    if args.text.is_none() && args.html.is_none() {
        return Err(ToolError::InvalidArgument {
            field: "text".to_owned(),
            message: "give `text`, `html`, or both".to_owned(),
        });
    }

    let counts = [
        ("to", args.to.len()),
        ("cc", args.cc.len()),
        ("bcc", args.bcc.len()),
    ];
    let mut total = 0;
    for (field, count) in counts {
        total += count;
        if total > MAX_RECIPIENTS {
            return Err(ToolError::InvalidArgument {
                field: field.to_owned(),
                message: format!(
                    "to, cc and bcc together name {total} or more addresses; at most {MAX_RECIPIENTS}"
                ),
            });
        }
    }
    Ok(())
}

// --- the tools ---

/// True when the caller's published state marks the email connection a sandbox.
fn state_says_sandbox(cx: &ToolContext<'_>) -> bool {
    cx.connections
        .iter()
        .any(|c| c.platform == Platform::Email && c.sandbox)
}

/// The connection to call, `None` for a sandbox. Either side saying sandbox
/// is enough; the published state is read first so a sandbox needs no
/// credentials at all.
async fn live_connection(cx: &ToolContext<'_>) -> Result<Option<EmailConnection>, ToolError> {
    if state_says_sandbox(cx) {
        return Ok(None);
    }
    let connection = load_connection(cx.app, &cx.tenant.id).await?;
    Ok((!connection.credentials.sandbox).then_some(connection))
}

/// `email_send`.
#[derive(Debug)]
pub struct SendEmail {
    spec: ToolSpec,
}

impl SendEmail {
    /// The tool, with its schemas generated from [`SendArgs`] and [`SentEmail`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: SEND,
                title: "Send an email",
                description: "Sends an email from the customer's mailbox (the connection's from address) \
                              over SMTP. Give `text`, `html`, or both. Bcc recipients receive the message \
                              without any recipient seeing them. Returns the message's Message-ID, which \
                              replies quote in `inReplyTo`.",
                platform: Some(Platform::Email),
                input_schema: schema_of::<SendArgs>(),
                output_schema: Some(schema_of::<SentEmail>()),
                annotations: Annotations::SEND,
            },
        }
    }
}

impl Default for SendEmail {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for SendEmail {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: SendArgs = parse_args(args)?;
        check_send(&args)?;

        let sent = match live_connection(cx).await? {
            Some(connection) => send_live(&connection, &args).await?,
            None => record_sent(cx, &args).await?,
        };
        to_structured(&sent)
    }
}

/// Sends over SMTP.
async fn send_live(connection: &EmailConnection, args: &SendArgs) -> Result<SentEmail, ToolError> {
    let trust = Trust::System;
    let server = connection.smtp_server(&trust, CALL_TIMEOUT);
    let login = connection.smtp_login()?;
    let (to, cc, bcc) = (args.to.mailboxes(), args.cc.mailboxes(), args.bcc.mailboxes());
    let email = OutgoingEmail {
        from: &connection.settings.from_address,
        to: &to,
        cc: &cc,
        bcc: &bcc,
        subject: &args.subject.0,
        text: args.text.as_ref().map(|body| body.0.as_str()),
        html: args.html.as_ref().map(|body| body.0.as_str()),
        in_reply_to: args.in_reply_to.as_ref().map(|id| id.0.as_str()),
    };

    let message_id = smtp::send(&server, &login, &email).await?;
    Ok(SentEmail {
        message_id,
        sandbox: false,
    })
}

/// Records the message in the customer's outbox.
async fn record_sent(cx: &ToolContext<'_>, args: &SendArgs) -> Result<SentEmail, ToolError> {
    let mut fields = Map::new();
    fields.insert("subject".into(), json!(args.subject.0));
    if !args.cc.is_empty() {
        fields.insert("cc".into(), json!(args.cc.to_strings()));
    }
    if !args.bcc.is_empty() {
        fields.insert("bcc".into(), json!(args.bcc.to_strings()));
    }
    if let Some(text) = &args.text {
        fields.insert("text".into(), json!(text.0));
    }
    if let Some(html) = &args.html {
        fields.insert("html".into(), json!(html.0));
    }
    if let Some(in_reply_to) = &args.in_reply_to {
        fields.insert("inReplyTo".into(), json!(in_reply_to.0));
    }

    let to = args.to.to_strings().join(", ");
    let message_id = record_in_outbox(cx, SEND, Platform::Email, &to, fields).await?;

    Ok(SentEmail {
        message_id,
        sandbox: true,
    })
}

/// The IMAP server of a live connection.
///
/// # Errors
///
/// [`ToolError::Platform`] with code `imap_not_configured` when the
/// connection names no `imapHost`.
fn imap_server<'a>(connection: &'a EmailConnection, trust: &'a Trust) -> Result<MailServer<'a>, ToolError> {
    MailServer::imap(&connection.settings, trust, CALL_TIMEOUT).ok_or_else(|| ToolError::Platform {
        platform: Platform::Email,
        code: "imap_not_configured".to_owned(),
        message: "the email connection names no imapHost, so its inbox cannot be read".to_owned(),
    })
}

/// The annotations of the reading tools.
const READING: Annotations = Annotations {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: true,
};

/// `email_list_inbox`.
#[derive(Debug)]
pub struct ListInbox {
    spec: ToolSpec,
}

impl ListInbox {
    /// The tool, with its schemas generated from [`ListInboxArgs`] and [`InboxListing`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: LIST_INBOX,
                title: "List the inbox",
                description: "Lists the newest messages of the customer's inbox over IMAP, newest first: \
                              UID, sender, subject, date, Message-ID and whether it has been read. Listing \
                              marks nothing as read. Read a message with `email_read_message` and its UID.",
                platform: Some(Platform::Email),
                input_schema: schema_of::<ListInboxArgs>(),
                output_schema: Some(schema_of::<InboxListing>()),
                annotations: READING,
            },
        }
    }
}

impl Default for ListInbox {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for ListInbox {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: ListInboxArgs = parse_args(args)?;
        let limit = args.limit.map_or(DEFAULT_LIST_LIMIT, |limit| limit.0);

        let listing = match live_connection(cx).await? {
            Some(connection) => {
                let trust = Trust::System;
                let server = imap_server(&connection, &trust)?;
                let login = connection.imap_login()?;
                InboxListing {
                    inbox: imap::list_inbox(&server, &login, limit).await?,
                    sandbox: false,
                }
            }
            None => InboxListing {
                inbox: Inbox {
                    total: 0,
                    messages: Vec::new(),
                },
                sandbox: true,
            },
        };
        to_structured(&listing)
    }
}

/// `email_read_message`.
#[derive(Debug)]
pub struct ReadMessage {
    spec: ToolSpec,
}

impl ReadMessage {
    /// The tool, with its schemas generated from [`ReadMessageArgs`] and [`MessageContent`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: READ_MESSAGE,
                title: "Read an email",
                description: "Reads one message of the customer's inbox by its UID (from \
                              `email_list_inbox`): sender, recipients, subject, date, Message-ID, the text \
                              body (the plain-text part, or the HTML part as text; `truncated` when a \
                              long body was cut) and the names of its attachments. Reading does not \
                              mark the message as read.",
                platform: Some(Platform::Email),
                input_schema: schema_of::<ReadMessageArgs>(),
                output_schema: Some(schema_of::<MessageContent>()),
                annotations: READING,
            },
        }
    }
}

impl Default for ReadMessage {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for ReadMessage {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let ReadMessageArgs { uid: Uid(uid) } = parse_args(args)?;

        let Some(connection) = live_connection(cx).await? else {
            return Err(ToolError::Platform {
                platform: Platform::Email,
                code: "not_found".to_owned(),
                message: format!("the sandbox inbox is empty; it has no message with UID {uid}"),
            });
        };
        let trust = Trust::System;
        let server = imap_server(&connection, &trust)?;
        let login = connection.imap_login()?;
        to_structured(&imap::read_message(&server, &login, uid).await?)
    }
}

#[cfg(test)]
mod tests;
