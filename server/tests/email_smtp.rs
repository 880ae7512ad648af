//! `email_send` against a real SMTP server process (aiosmtpd with AUTH,
//! `support/smtp_server.py`): what the server receives, what its refusals
//! become, and the TLS modes with a certificate from a test CA.
//!
//! The tool is called over REST, through the whole router; the TLS modes
//! are called at the platform level, where the CA can be trusted (the tool
//! trusts the system's roots only).

mod common;
#[path = "support/email_servers.rs"]
mod servers;

use std::time::Duration;

use common::{TestApp, customer_resource, post, send};
use hermes_crds::{Plan, PlatformConnection, PlatformConnectionSpec};
use hermes_server::platforms::email::smtp::{self, OutgoingEmail};
use hermes_server::platforms::email::{Login, MailServer, Security, Trust};
use hermes_server::tools::ToolError;
use hermes_state::tenancy::SecretData;
use lettre::message::Mailbox;
use serde_json::{Value, json};
use servers::{Certificates, SmtpMode, SmtpServer};

const USERNAME: &str = "agent@example.com";
const PASSWORD: &str = "correct-horse-battery-staple";

/// An app with customer `acme` whose live email connection points at `port`.
async fn app_sending_to(port: u16, password: &str) -> (TestApp, String) {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    let spec: PlatformConnectionSpec = serde_json::from_value(json!({
        "customerRef": "acme",
        "platform": "email",
        "secretRef": { "name": "acme-email" },
        "email": {
            "smtpHost": "127.0.0.1",
            "smtpPort": port,
            "smtpTls": "none",
            "fromAddress": "Acme Agent <agent@example.com>",
        },
    }))
    .expect("valid spec");
    let mut connection = PlatformConnection::new("acme-email", spec);
    connection.metadata.namespace = Some("tests".into());
    let secret = SecretData::from_iter([("smtpUsername", USERNAME), ("smtpPassword", password)]);
    app.admin
        .apply(
            &customer_resource("acme", Plan::Pro, Default::default(), false),
            &connection,
            Some(&secret),
        )
        .await
        .expect("the email connection applies");
    (app, key)
}

async fn send_email(app: &TestApp, key: &str, args: Value) -> Value {
    let answer = send(&app.router(), post("/api/tools/email_send", key, args)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        !answer.text.contains(PASSWORD),
        "no answer carries the password: {}",
        answer.text
    );
    answer.body
}

fn plain_server() -> Option<SmtpServer> {
    SmtpServer::start(SmtpMode::Plain, USERNAME, PASSWORD, None)
}

/// The header block of a raw message, unfolded, as `(name, value)` pairs.
fn headers(data: &str) -> Vec<(String, String)> {
    let head = data.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn a_sent_message_reaches_the_smtp_server_with_its_headers_body_and_envelope() {
    let Some(server) = plain_server() else { return };
    let (app, key) = app_sending_to(server.port, PASSWORD).await;
    let args = json!({
        "to": ["Bob <bob@example.com>", "carol@example.com"],
        "cc": ["dave@example.com"],
        "bcc": ["erin@example.com"],
        "subject": "Quarterly numbers",
        "text": "The numbers are attached below.",
        "html": "<p>The numbers are <b>attached</b> below.</p>",
    });

    let answer = send_email(&app, &key, args).await;

    assert_eq!(answer["isError"], false, "{answer}");
    let message_id = answer["structured"]["messageId"]
        .as_str()
        .expect("a Message-ID")
        .to_owned();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@example.com>"),
        "{message_id}"
    );
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    let message = &stored[0];
    assert_eq!(message["mail_from"], "agent@example.com");
    assert_eq!(
        message["rcpt_tos"],
        json!([
            "bob@example.com",
            "carol@example.com",
            "dave@example.com",
            "erin@example.com"
        ])
    );
    assert_eq!(message["auth_login"], USERNAME);
    let data = message["data"].as_str().expect("the raw message");
    let headers = headers(data);
    assert_eq!(
        header(&headers, "from"),
        Some("\"Acme Agent\" <agent@example.com>")
    );
    assert_eq!(
        header(&headers, "to"),
        Some("Bob <bob@example.com>, carol@example.com")
    );
    assert_eq!(header(&headers, "cc"), Some("dave@example.com"));
    assert_eq!(header(&headers, "subject"), Some("Quarterly numbers"));
    assert_eq!(header(&headers, "message-id"), Some(message_id.as_str()));
    assert_eq!(header(&headers, "mime-version"), Some("1.0"));
    assert!(
        header(&headers, "content-type").is_some_and(|value| value.starts_with("multipart/alternative;")),
        "{headers:?}"
    );
    assert_eq!(header(&headers, "bcc"), None);
    assert!(!data.contains("erin@example.com"), "Bcc is only in the envelope");
    assert!(data.contains("The numbers are attached below."), "{data}");
    assert!(
        data.contains("<p>The numbers are <b>attached</b> below.</p>"),
        "{data}"
    );
    assert!(
        data.find("text/plain") < data.find("text/html"),
        "text comes first: {data}"
    );
}

#[tokio::test]
async fn a_reply_names_the_message_it_answers() {
    let Some(server) = plain_server() else { return };
    let (app, key) = app_sending_to(server.port, PASSWORD).await;
    let args = json!({
        "to": ["bob@example.com"],
        "subject": "Re: Lunch",
        "text": "Friday works.",
        "inReplyTo": "<lunch-1@example.com>",
    });

    let answer = send_email(&app, &key, args).await;

    assert_eq!(answer["isError"], false, "{answer}");
    let data = server.messages()[0]["data"]
        .as_str()
        .expect("the raw message")
        .to_owned();
    let headers = headers(&data);
    assert_eq!(header(&headers, "in-reply-to"), Some("<lunch-1@example.com>"));
    assert_eq!(header(&headers, "references"), Some("<lunch-1@example.com>"));
    assert!(
        header(&headers, "content-type").is_some_and(|value| value.starts_with("text/plain")),
        "{headers:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_failure_with_code_535_and_no_password() {
    let Some(server) = plain_server() else { return };
    let wrong = "wrong-password-123";
    let (app, key) = app_sending_to(server.port, wrong).await;

    let answer = send_email(
        &app,
        &key,
        json!({"to": ["bob@example.com"], "subject": "s", "text": "t"}),
    )
    .await;

    assert_eq!(answer["isError"], true);
    assert_eq!(answer["structured"]["error"]["kind"], "platform_error");
    assert_eq!(answer["structured"]["error"]["code"], "535");
    let text = answer["text"].as_str().expect("an error text");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!answer.to_string().contains(wrong), "{answer}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_busy_recipient_is_a_retry_later_refusal_and_nothing_is_delivered() {
    let Some(server) = plain_server() else { return };
    let (app, key) = app_sending_to(server.port, PASSWORD).await;

    let answer = send_email(
        &app,
        &key,
        json!({"to": ["bob@example.com", "busy@example.com"], "subject": "s", "text": "t"}),
    )
    .await;

    assert_eq!(answer["isError"], true);
    assert_eq!(answer["structured"]["error"]["code"], "451");
    assert!(
        answer["text"]
            .as_str()
            .is_some_and(|text| text.contains("retry later")),
        "{answer}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_unknown_recipient_is_refused_with_the_servers_550() {
    let Some(server) = plain_server() else { return };
    let (app, key) = app_sending_to(server.port, PASSWORD).await;

    let answer = send_email(
        &app,
        &key,
        json!({"to": ["nobody@example.com"], "subject": "s", "text": "t"}),
    )
    .await;

    assert_eq!(answer["isError"], true);
    assert_eq!(answer["structured"]["error"]["code"], "550");
    assert!(
        answer["text"]
            .as_str()
            .is_some_and(|text| text.contains("No such user")),
        "{answer}"
    );
}

#[tokio::test]
async fn an_smtp_port_nobody_listens_on_is_an_unreachable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a loopback port binds")
        .port();
    let (app, key) = app_sending_to(port, PASSWORD).await;

    let answer = send_email(
        &app,
        &key,
        json!({"to": ["bob@example.com"], "subject": "s", "text": "t"}),
    )
    .await;

    assert_eq!(answer["isError"], true);
    assert_eq!(answer["structured"]["error"]["kind"], "unreachable");
}

/// Sends one message straight through the platform client.
async fn send_over(port: u16, security: Security, trust: &Trust) -> Result<String, ToolError> {
    let to: Vec<Mailbox> = vec!["bob@example.com".parse().expect("a valid address")];
    let email = OutgoingEmail {
        from: USERNAME,
        to: &to,
        cc: &[],
        bcc: &[],
        subject: "Over TLS",
        text: Some("Encrypted all the way."),
        html: None,
        in_reply_to: None,
    };
    let server = MailServer {
        host: "127.0.0.1",
        port,
        security,
        trust,
        timeout: Duration::from_secs(10),
    };
    let login = Login {
        username: USERNAME,
        password: PASSWORD,
    };
    smtp::send(&server, &login, &email).await
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_when_the_servers_certificate_is_trusted() {
    let Some(certs) = Certificates::generate() else {
        return;
    };
    let trust = Trust::WithRoots(vec![certs.ca()]);

    for (mode, security) in [
        (SmtpMode::StartTls, Security::StartTls),
        (SmtpMode::Implicit, Security::Implicit),
    ] {
        let Some(server) = SmtpServer::start(mode, USERNAME, PASSWORD, Some(&certs)) else {
            return;
        };

        let message_id = send_over(server.port, security, &trust).await;

        assert!(message_id.is_ok(), "{mode:?}: {message_id:?}");
        let stored = server.messages();
        assert_eq!(stored.len(), 1, "{mode:?}");
        assert_eq!(stored[0]["auth_login"], USERNAME, "{mode:?}");
    }
}

#[tokio::test]
async fn a_certificate_the_system_does_not_trust_is_refused_before_anything_is_sent() {
    let Some(certs) = Certificates::generate() else {
        return;
    };

    for (mode, security) in [
        (SmtpMode::StartTls, Security::StartTls),
        (SmtpMode::Implicit, Security::Implicit),
    ] {
        let Some(server) = SmtpServer::start(mode, USERNAME, PASSWORD, Some(&certs)) else {
            return;
        };

        let result = send_over(server.port, security, &Trust::System).await;

        assert!(
            matches!(result, Err(ToolError::Unreachable(_))),
            "{mode:?}: {result:?}"
        );
        assert!(server.messages().is_empty(), "{mode:?}");
    }
}

#[tokio::test]
async fn plain_mode_does_not_upgrade_even_when_the_server_offers_starttls() {
    let Some(certs) = Certificates::generate() else {
        return;
    };
    let Some(server) = SmtpServer::start(SmtpMode::StartTls, USERNAME, PASSWORD, Some(&certs)) else {
        return;
    };

    // The server offers AUTH only after STARTTLS, so a plain session cannot log in.
    let result = send_over(server.port, Security::Plain, &Trust::System).await;

    assert!(
        matches!(&result, Err(ToolError::Platform { code, .. }) if code == "auth_unsupported"),
        "{result:?}"
    );
    assert!(server.messages().is_empty());
}
