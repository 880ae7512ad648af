//! Decoding messages, bounding what a server may send, and what IMAP
//! refusals become, against a scripted IMAP peer on loopback. The exchange
//! with a real IMAP server (Dovecot) is in `server/tests/email_imap.rs`.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::platforms::email::Trust;

const USERNAME: &str = "agent@example.com";
const PASSWORD: &str = "imap-pa55-that-must-not-leak";

fn login() -> Login<'static> {
    Login {
        username: USERNAME,
        password: PASSWORD,
    }
}

const ALTERNATIVE: &str = "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\n\
To: Agent <agent@example.com>, other@example.com\r\n\
Cc: carol@example.com\r\n\
Reply-To: replies@example.de\r\n\
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgQmVybGlu?=\r\n\
Date: Tue, 02 Dec 2025 09:30:00 +0100\r\n\
Message-ID: <alt-1@example.de>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=C3=BC=C3=9Fe, the plain part.\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>The <b>HTML</b> part.</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n\
--outer--\r\n";

const HTML_ONLY: &str = "From: news@example.com\r\n\
Subject: Only HTML\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><body><h1>Title</h1><p>First &amp; second.</p></body></html>\r\n";

#[test]
fn the_plain_part_is_the_text_and_headers_are_decoded() {
    let message = content_of(7, ALTERNATIVE.as_bytes(), true, Some(900)).expect("a message parses");

    assert_eq!(message.uid, 7);
    assert_eq!(message.subject.as_deref(), Some("Grüße aus Berlin"));
    assert_eq!(
        message.from,
        [EmailAddress {
            name: Some("Jürgen Müller".to_owned()),
            address: "juergen@example.de".to_owned(),
        }]
    );
    assert_eq!(message.to.len(), 2);
    assert_eq!(message.to[1].address, "other@example.com");
    assert_eq!(message.cc[0].address, "carol@example.com");
    assert_eq!(message.reply_to[0].address, "replies@example.de");
    assert_eq!(message.message_id.as_deref(), Some("<alt-1@example.de>"));
    assert_eq!(message.date.as_deref(), Some("2025-12-02T09:30:00+01:00"));
    assert_eq!(message.text.trim_end(), "Grüße, the plain part.");
    assert!(message.seen);
    assert!(!message.truncated);
    assert_eq!(
        message.attachments,
        [Attachment {
            filename: Some("report.pdf".to_owned()),
            content_type: "application/pdf".to_owned(),
            size: 19,
        }]
    );
}

#[test]
fn an_html_only_message_is_read_as_text() {
    let message = content_of(1, HTML_ONLY.as_bytes(), false, None).expect("a message parses");

    assert!(message.text.contains("Title"), "{}", message.text);
    assert!(message.text.contains("First & second."), "{}", message.text);
    assert!(!message.text.contains("<p>"), "{}", message.text);
    assert!(!message.seen);
}

#[test]
fn a_long_text_is_cut_at_the_character_bound_and_marked_truncated() {
    let body = "é".repeat(MAX_TEXT_CHARS + 10);
    let raw = format!("Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}");

    let message = content_of(1, raw.as_bytes(), false, None).expect("a message parses");

    assert_eq!(message.text.chars().count(), MAX_TEXT_CHARS);
    assert!(message.truncated);
}

#[test]
fn a_message_larger_than_what_was_fetched_is_marked_truncated() {
    let message =
        content_of(1, HTML_ONLY.as_bytes(), false, Some(MAX_FETCH_BYTES + 1)).expect("a message parses");

    assert!(message.truncated);
}

#[test]
fn a_listing_entry_reads_the_fetched_header_fields() {
    let header = b"Date: Mon, 01 Dec 2025 10:00:00 +0000\r\n\
From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>\r\n\
Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n\
Message-ID: <m1@example.fr>\r\n\r\n";

    let entry = entry_of(42, Some(header), false, Some(1234));

    assert_eq!(
        entry,
        InboxEntry {
            uid: 42,
            from: Some(EmailAddress {
                name: Some("André".to_owned()),
                address: "andre@example.fr".to_owned(),
            }),
            subject: Some("Café".to_owned()),
            date: Some("2025-12-01T10:00:00Z".to_owned()),
            message_id: Some("<m1@example.fr>".to_owned()),
            seen: false,
            size: Some(1234),
        }
    );
}

#[tokio::test]
async fn a_bounded_stream_fails_once_the_server_sent_more_than_its_limit() {
    let (mut server, client) = tokio::io::duplex(64);
    let mut bounded = Bounded::new(client, 10);
    let mut buffer = [0_u8; 64];

    server
        .write_all(b"0123456789")
        .await
        .expect("the duplex takes ten bytes");
    let first = bounded
        .read(&mut buffer)
        .await
        .expect("ten bytes are within the limit");
    server
        .write_all(b"x")
        .await
        .expect("the duplex takes one more byte");
    let second = bounded.read(&mut buffer).await;

    assert_eq!(first, 10);
    let error = second.expect_err("the eleventh byte is over the limit");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
}

/// What the scripted peer answers; `{tag}` becomes the command's tag.
#[derive(Clone, Copy, Debug)]
struct Script {
    greeting: &'static str,
    login: &'static str,
    examine: &'static str,
    fetch: &'static str,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            greeting: "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] peer ready\r\n",
            login: "{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n",
            examine: "* 2 EXISTS\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n{tag} OK [READ-ONLY] Examine completed\r\n",
            fetch: "{tag} OK Fetch completed\r\n",
        }
    }
}

/// A one-connection IMAP peer answering by the command's name; returns its port.
async fn peer(script: Script) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port binds");
    let port = listener
        .local_addr()
        .expect("a bound socket has an address")
        .port();

    tokio::spawn(async move {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        if write.write_all(script.greeting.as_bytes()).await.is_err() {
            return;
        }
        while let Ok(Some(line)) = lines.next_line().await {
            let mut words = line.split(' ');
            let tag = words.next().unwrap_or_default();
            let mut command = words.next().unwrap_or_default().to_ascii_uppercase();
            if command == "UID" {
                command = words.next().unwrap_or_default().to_ascii_uppercase();
            }
            let reply = match command.as_str() {
                "LOGIN" => script.login,
                "EXAMINE" => script.examine,
                "FETCH" => script.fetch,
                "LOGOUT" => "* BYE logging out\r\n{tag} OK Logout completed\r\n",
                _ => "{tag} BAD unknown command\r\n",
            };
            if write
                .write_all(reply.replace("{tag}", tag).as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    port
}

fn server(port: u16, trust: &Trust, timeout: Duration) -> MailServer<'_> {
    MailServer {
        host: "127.0.0.1",
        port,
        security: Security::Plain,
        trust,
        timeout,
    }
}

async fn list_with(script: Script) -> Result<Inbox, ToolError> {
    let port = peer(script).await;
    let trust = Trust::System;
    list_inbox(&server(port, &trust, Duration::from_secs(5)), &login(), 10).await
}

fn platform_code(result: Result<Inbox, ToolError>) -> String {
    match result {
        Err(ToolError::Platform { code, message, .. }) => {
            assert!(!message.contains(PASSWORD), "{message}");
            code
        }
        other => panic!("expected a platform error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_listing_is_newest_first_with_flags_and_sizes() {
    let script = Script {
        fetch: "* 1 FETCH (UID 11 FLAGS (\\Seen) RFC822.SIZE 120 BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {18}\r\n\
Subject: older\r\n\r\n)\r\n\
* 2 FETCH (UID 12 FLAGS () RFC822.SIZE 340 BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {18}\r\n\
Subject: newer\r\n\r\n)\r\n\
{tag} OK Fetch completed\r\n",
        ..Script::default()
    };

    let inbox = list_with(script).await.expect("the peer answers a listing");

    assert_eq!(inbox.total, 2);
    let summary: Vec<_> = inbox
        .messages
        .iter()
        .map(|m| (m.uid, m.subject.as_deref(), m.seen, m.size))
        .collect();
    assert_eq!(
        summary,
        [
            (12, Some("newer"), false, Some(340)),
            (11, Some("older"), true, Some(120))
        ]
    );
}

#[tokio::test]
async fn an_empty_inbox_is_listed_without_a_fetch() {
    let script = Script {
        examine: "* 0 EXISTS\r\n{tag} OK [READ-ONLY] Examine completed\r\n",
        fetch: "{tag} BAD no fetch expected\r\n",
        ..Script::default()
    };

    let inbox = list_with(script).await.expect("an empty inbox lists");

    assert_eq!(
        inbox,
        Inbox {
            total: 0,
            messages: vec![]
        }
    );
}

#[tokio::test]
async fn a_refused_login_is_an_authentication_failure_without_the_password() {
    let script = Script {
        login: "{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        ..Script::default()
    };

    assert_eq!(platform_code(list_with(script).await), "authentication_failed");
}

#[tokio::test]
async fn a_refused_examine_is_an_imap_no_naming_the_step() {
    let script = Script {
        examine: "{tag} NO [NONEXISTENT] Mailbox doesn't exist: INBOX\r\n",
        ..Script::default()
    };

    let result = list_with(script).await;

    assert!(
        matches!(&result, Err(ToolError::Platform { code, message, .. }) if code == "imap_no" && message.contains("EXAMINE INBOX")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_rejected_fetch_is_an_imap_bad() {
    let script = Script {
        fetch: "{tag} BAD Error in IMAP command FETCH\r\n",
        ..Script::default()
    };

    assert_eq!(platform_code(list_with(script).await), "imap_bad");
}

#[tokio::test]
async fn a_server_saying_bye_at_once_is_unavailable() {
    let script = Script {
        greeting: "* BYE Too many connections\r\n",
        ..Script::default()
    };

    assert_eq!(platform_code(list_with(script).await), "unavailable");
}

#[tokio::test]
async fn a_peer_that_does_not_speak_imap_is_a_malformed_response() {
    let script = Script {
        greeting: "220 smtp.example.com ESMTP\r\n",
        ..Script::default()
    };

    assert_eq!(platform_code(list_with(script).await), "malformed_response");
}

#[tokio::test]
async fn reading_a_uid_the_inbox_does_not_have_is_not_found() {
    let port = peer(Script::default()).await;
    let trust = Trust::System;

    let result = read_message(&server(port, &trust, Duration::from_secs(5)), &login(), 99).await;

    assert!(
        matches!(&result, Err(ToolError::Platform { code, .. }) if code == "not_found"),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_peer_that_never_greets_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port binds");
    let port = listener
        .local_addr()
        .expect("a bound socket has an address")
        .port();
    let holder = tokio::spawn(async move {
        let accepted = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(accepted);
    });
    let trust = Trust::System;

    let result = list_inbox(&server(port, &trust, Duration::from_millis(300)), &login(), 10).await;

    assert!(
        matches!(result, Err(ToolError::Timeout(Platform::Email))),
        "{result:?}"
    );
    holder.abort();
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port binds");
        listener
            .local_addr()
            .expect("a bound socket has an address")
            .port()
    };
    let trust = Trust::System;

    let result = list_inbox(&server(port, &trust, Duration::from_secs(5)), &login(), 10).await;

    assert!(
        matches!(result, Err(ToolError::Unreachable(Platform::Email))),
        "{result:?}"
    );
}
