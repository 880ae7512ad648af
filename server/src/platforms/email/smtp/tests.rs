//! Composing messages, choosing the TLS mode, and what SMTP refusals become,
//! against a scripted SMTP peer on loopback. The exchange with a real SMTP
//! server is in `server/tests/email_smtp.rs`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::platforms::email::Trust;

const USERNAME: &str = "agent@example.com";
const PASSWORD: &str = "pa55-word-that-must-not-leak";

fn login() -> Login<'static> {
    Login {
        username: USERNAME,
        password: PASSWORD,
    }
}

fn mailboxes(addresses: &[&str]) -> Vec<Mailbox> {
    addresses
        .iter()
        .map(|address| address.parse().expect("test addresses are valid"))
        .collect()
}

fn formatted(email: &OutgoingEmail<'_>) -> (Composed, String) {
    let composed = compose(email).expect("the message composes");
    let text = String::from_utf8(composed.message.formatted()).expect("the message is UTF-8");
    (composed, text)
}

/// What the scripted peer answers; every other command gets `250 OK`.
#[derive(Clone, Copy, Debug)]
struct Script {
    greeting: &'static str,
    ehlo: &'static str,
    auth: &'static str,
    rcpt: &'static str,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            greeting: "220 peer ESMTP ready\r\n",
            ehlo: "250-peer\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
            auth: "235 2.7.0 Authentication successful\r\n",
            rcpt: "250 2.1.5 OK\r\n",
        }
    }
}

/// A one-connection SMTP peer answering by the command's verb; returns its
/// port and the command lines it received.
async fn peer(script: Script) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port binds");
    let port = listener
        .local_addr()
        .expect("a bound socket has an address")
        .port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);

    tokio::spawn(async move {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        if write.write_all(script.greeting.as_bytes()).await.is_err() {
            return;
        }
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                in_data = line != ".";
                if !in_data {
                    let _ = write.write_all(b"250 2.0.0 queued\r\n").await;
                }
                continue;
            }
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.clone());
            let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" => script.ehlo,
                "AUTH" => script.auth,
                "RCPT" => script.rcpt,
                "DATA" => {
                    in_data = true;
                    "354 go ahead\r\n"
                }
                "QUIT" => "221 bye\r\n",
                _ => "250 OK\r\n",
            };
            if write.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    (port, received)
}

async fn send_to(port: u16, security: Security, timeout: Duration) -> Result<String, ToolError> {
    let to = mailboxes(&["bob@example.com"]);
    let email = OutgoingEmail {
        from: USERNAME,
        to: &to,
        cc: &[],
        bcc: &[],
        subject: "Hello",
        text: Some("Hi Bob"),
        html: None,
        in_reply_to: None,
    };
    let trust = Trust::System;
    let server = MailServer {
        host: "127.0.0.1",
        port,
        security,
        trust: &trust,
        timeout,
    };
    send(&server, &login(), &email).await
}

async fn send_with(script: Script) -> Result<String, ToolError> {
    let (port, _received) = peer(script).await;
    send_to(port, Security::Plain, Duration::from_secs(5)).await
}

fn platform_error(result: Result<String, ToolError>) -> (String, String) {
    match result {
        Err(ToolError::Platform { code, message, .. }) => (code, message),
        other => panic!("expected a platform error, got {other:?}"),
    }
}

#[test]
fn a_text_and_html_message_is_multipart_alternative_with_every_visible_header() {
    let (to, cc, bcc) = (
        mailboxes(&["Bob <bob@example.com>"]),
        mailboxes(&["carol@example.com"]),
        mailboxes(&["erin@example.com"]),
    );
    let email = OutgoingEmail {
        from: "Agent <agent@example.com>",
        to: &to,
        cc: &cc,
        bcc: &bcc,
        subject: "Quarterly numbers",
        text: Some("See below."),
        html: Some("<p>See below.</p>"),
        in_reply_to: Some("<parent@example.com>"),
    };

    let (composed, text) = formatted(&email);

    assert!(text.contains("From: Agent <agent@example.com>\r\n"), "{text}");
    assert!(text.contains("To: Bob <bob@example.com>\r\n"), "{text}");
    assert!(text.contains("Cc: carol@example.com\r\n"), "{text}");
    assert!(text.contains("Subject: Quarterly numbers\r\n"), "{text}");
    assert!(
        text.contains(&format!("Message-ID: {}\r\n", composed.message_id)),
        "{text}"
    );
    assert!(text.contains("In-Reply-To: <parent@example.com>\r\n"), "{text}");
    assert!(text.contains("References: <parent@example.com>\r\n"), "{text}");
    assert!(text.contains("Content-Type: multipart/alternative;"), "{text}");
    assert!(text.contains("Content-Type: text/plain; charset=utf-8"), "{text}");
    assert!(text.contains("Content-Type: text/html; charset=utf-8"), "{text}");
    assert!(
        !text.contains("erin@example.com"),
        "Bcc stays out of the headers: {text}"
    );
    let envelope: Vec<String> = composed
        .message
        .envelope()
        .to()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        envelope,
        ["bob@example.com", "carol@example.com", "erin@example.com"]
    );
    assert_eq!(
        composed
            .message
            .envelope()
            .from()
            .map(ToString::to_string)
            .as_deref(),
        Some("agent@example.com")
    );
}

#[test]
fn the_message_id_is_random_and_names_the_senders_domain() {
    let to = mailboxes(&["bob@example.com"]);
    let email = OutgoingEmail {
        from: "agent@mail.example.org",
        to: &to,
        cc: &[],
        bcc: &[],
        subject: "s",
        text: Some("t"),
        html: None,
        in_reply_to: None,
    };

    let first = compose(&email).expect("composes").message_id;
    let second = compose(&email).expect("composes").message_id;

    assert!(
        first.starts_with('<') && first.ends_with("@mail.example.org>"),
        "{first}"
    );
    assert_ne!(first, second);
}

#[test]
fn an_html_only_message_is_a_single_text_html_part() {
    let to = mailboxes(&["bob@example.com"]);
    let email = OutgoingEmail {
        from: "agent@example.com",
        to: &to,
        cc: &[],
        bcc: &[],
        subject: "s",
        text: None,
        html: Some("<b>hi</b>"),
        in_reply_to: None,
    };

    let (_, text) = formatted(&email);

    assert!(text.contains("Content-Type: text/html; charset=utf-8"), "{text}");
    assert!(!text.contains("multipart"), "{text}");
}

#[test]
fn a_from_address_that_is_not_an_address_is_named_as_such() {
    let to = mailboxes(&["bob@example.com"]);
    let email = OutgoingEmail {
        from: "not an address",
        to: &to,
        cc: &[],
        bcc: &[],
        subject: "s",
        text: Some("t"),
        html: None,
        in_reply_to: None,
    };

    let error = compose(&email).expect_err("the sender is not an address");

    assert!(matches!(error, ToolError::Platform { code, .. } if code == "invalid_from_address"));
}

#[test]
fn each_tls_mode_maps_to_lettres_matching_mode() {
    let trust = Trust::System;
    let server = |security| MailServer {
        host: "smtp.example.com",
        port: 465,
        security,
        trust: &trust,
        timeout: Duration::from_secs(5),
    };

    assert!(matches!(
        tls_mode(&server(Security::Implicit)),
        Ok(Tls::Wrapper(_))
    ));
    assert!(matches!(
        tls_mode(&server(Security::StartTls)),
        Ok(Tls::Required(_))
    ));
    assert!(matches!(tls_mode(&server(Security::Plain)), Ok(Tls::None)));
}

#[tokio::test]
async fn an_accepted_message_answers_its_message_id_after_authenticating() {
    let (port, received) = peer(Script::default()).await;

    let message_id = send_to(port, Security::Plain, Duration::from_secs(5))
        .await
        .expect("the peer accepts the message");

    assert!(message_id.ends_with("@example.com>"), "{message_id}");
    let received = received.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let verbs: Vec<&str> = received
        .iter()
        .map(|line| line.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        verbs[..5],
        ["EHLO", "AUTH", "MAIL", "RCPT", "DATA"],
        "{received:?}"
    );
}

#[tokio::test]
async fn a_refused_login_is_an_authentication_failure_with_the_smtp_code_and_no_secret() {
    let script = Script {
        auth: "535 5.7.8 Authentication credentials invalid\r\n",
        ..Script::default()
    };

    let (code, message) = platform_error(send_with(script).await);

    assert_eq!(code, "535");
    assert!(message.starts_with("authentication failed: 535"), "{message}");
    assert!(message.contains("credentials invalid"), "{message}");
    assert!(!message.contains(PASSWORD));
}

#[tokio::test]
async fn a_server_text_quoting_the_login_is_scrubbed() {
    let script = Script {
        auth: "535 5.7.8 wrong password pa55-word-that-must-not-leak for agent@example.com\r\n",
        ..Script::default()
    };

    let (_, message) = platform_error(send_with(script).await);

    assert!(!message.contains(PASSWORD), "{message}");
    assert!(!message.contains(USERNAME), "{message}");
    assert!(message.contains("[redacted]"), "{message}");
}

#[tokio::test]
async fn a_transient_refusal_asks_to_retry_later_with_its_code() {
    let script = Script {
        rcpt: "451 4.3.0 Mailbox temporarily unavailable\r\n",
        ..Script::default()
    };

    let (code, message) = platform_error(send_with(script).await);

    assert_eq!(code, "451");
    assert!(message.contains("retry later"), "{message}");
}

#[tokio::test]
async fn a_permanent_refusal_of_a_recipient_keeps_the_servers_reason() {
    let script = Script {
        rcpt: "550 5.1.1 No such user here\r\n",
        ..Script::default()
    };

    let (code, message) = platform_error(send_with(script).await);

    assert_eq!(code, "550");
    assert!(message.contains("No such user here"), "{message}");
}

#[tokio::test]
async fn a_peer_that_does_not_speak_smtp_is_a_malformed_response() {
    let script = Script {
        greeting: "HTTP/1.1 400 Bad Request\r\n\r\n",
        ..Script::default()
    };

    let (code, _) = platform_error(send_with(script).await);

    assert_eq!(code, "malformed_response");
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails_before_any_credential_is_sent() {
    let (port, received) = peer(Script::default()).await;

    let (code, _) = platform_error(send_to(port, Security::StartTls, Duration::from_secs(5)).await);

    assert_eq!(code, "starttls_unsupported");
    let received = received.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert!(
        received.iter().all(|line| !line.starts_with("AUTH")),
        "{received:?}"
    );
}

#[tokio::test]
async fn a_server_offering_no_known_mechanism_is_named() {
    let script = Script {
        ehlo: "250-peer\r\n250 AUTH CRAM-MD5\r\n",
        ..Script::default()
    };

    let (code, _) = platform_error(send_with(script).await);

    assert_eq!(code, "auth_unsupported");
}

#[tokio::test]
async fn a_peer_that_never_answers_times_out() {
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

    let result = send_to(port, Security::Plain, Duration::from_millis(300)).await;

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

    let result = send_to(port, Security::Plain, Duration::from_secs(5)).await;

    assert!(
        matches!(result, Err(ToolError::Unreachable(Platform::Email))),
        "{result:?}"
    );
}
