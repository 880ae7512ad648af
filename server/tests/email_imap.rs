//! `email_list_inbox` and `email_read_message` against a real IMAP server:
//! Dovecot, started per test with its own configuration, one user, and an
//! inbox written as Maildir files. The TLS modes are called at the platform
//! level with a certificate from a test CA.

mod common;
#[path = "support/email_servers.rs"]
mod servers;

use std::time::Duration;

use common::{TestApp, customer_resource, post, send};
use hermes_crds::{Plan, PlatformConnection, PlatformConnectionSpec};
use hermes_server::platforms::email::imap;
use hermes_server::platforms::email::{Login, MailServer, Security, Trust};
use hermes_server::tools::ToolError;
use hermes_state::tenancy::SecretData;
use serde_json::{Value, json};
use servers::{Certificates, Dovecot, StoredMessage};

const USERNAME: &str = "agent@example.com";
const PASSWORD: &str = "imap-correct-horse";

const LUNCH: &str = "From: Alice Example <alice@example.com>\r\n\
To: agent@example.com\r\n\
Subject: Lunch on Friday\r\n\
Date: Mon, 01 Dec 2025 10:00:00 +0000\r\n\
Message-ID: <lunch-1@example.com>\r\n\
\r\n\
Shall we meet at noon?\r\n";

const REPORT: &str = "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\n\
To: Agent <agent@example.com>\r\n\
Cc: carol@example.com\r\n\
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgQmVybGlu?=\r\n\
Date: Tue, 02 Dec 2025 09:30:00 +0100\r\n\
Message-ID: <report-2@example.de>\r\n\
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
Gr=C3=BC=C3=9Fe, the report is attached.\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>The report is <b>attached</b>.</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n\
--outer--\r\n";

const NEWSLETTER: &str = "From: news@example.org\r\n\
To: agent@example.com\r\n\
Subject: Weekly digest\r\n\
Date: Wed, 03 Dec 2025 08:00:00 +0000\r\n\
Message-ID: <digest-3@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><body><h1>This week</h1><p>Three things &amp; more.</p></body></html>\r\n";

fn inbox() -> [StoredMessage<'static>; 3] {
    [
        StoredMessage {
            raw: LUNCH,
            seen: true,
        },
        StoredMessage {
            raw: REPORT,
            seen: false,
        },
        StoredMessage {
            raw: NEWSLETTER,
            seen: false,
        },
    ]
}

fn dovecot() -> Option<Dovecot> {
    Dovecot::start(USERNAME, PASSWORD, &inbox(), None)
}

/// An app with customer `acme` whose live email connection reads from
/// `imap_port` with `secrets`.
async fn app_reading_from(imap_port: u16, secrets: &[(&str, &str)]) -> (TestApp, String) {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    let spec: PlatformConnectionSpec = serde_json::from_value(json!({
        "customerRef": "acme",
        "platform": "email",
        "secretRef": { "name": "acme-email" },
        "email": {
            "smtpHost": "127.0.0.1",
            "smtpPort": 2525,
            "smtpTls": "none",
            "fromAddress": "agent@example.com",
            "imapHost": "127.0.0.1",
            "imapPort": imap_port,
        },
    }))
    .expect("valid spec");
    let mut connection = PlatformConnection::new("acme-email", spec);
    connection.metadata.namespace = Some("tests".into());
    let secret = SecretData::from_iter(secrets.iter().copied());
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

async fn app_for(dovecot: &Dovecot) -> (TestApp, String) {
    app_reading_from(
        dovecot.imap_port,
        &[("smtpUsername", USERNAME), ("smtpPassword", PASSWORD)],
    )
    .await
}

async fn call(app: &TestApp, key: &str, tool: &str, args: Value) -> Value {
    let answer = send(&app.router(), post(&format!("/api/tools/{tool}"), key, args)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.body
}

async fn list(app: &TestApp, key: &str, limit: u32) -> Vec<Value> {
    let answer = call(app, key, "email_list_inbox", json!({"limit": limit})).await;
    assert_eq!(answer["isError"], false, "{answer}");
    assert_eq!(answer["structured"]["total"], 3, "{answer}");
    answer["structured"]["messages"]
        .as_array()
        .expect("a message list")
        .clone()
}

fn uid_of(messages: &[Value], subject: &str) -> u64 {
    messages
        .iter()
        .find(|message| message["subject"] == subject)
        .and_then(|message| message["uid"].as_u64())
        .unwrap_or_else(|| panic!("no message with subject {subject:?} in {messages:?}"))
}

#[tokio::test]
async fn the_inbox_lists_the_newest_messages_first_with_sender_subject_date_and_read_flag() {
    let Some(dovecot) = dovecot() else { return };
    let (app, key) = app_for(&dovecot).await;

    let all = list(&app, &key, 50).await;
    let newest_two = list(&app, &key, 2).await;

    assert_eq!(all.len(), 3);
    let uids: Vec<u64> = all
        .iter()
        .map(|message| message["uid"].as_u64().expect("a UID"))
        .collect();
    assert!(
        uids.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first: {uids:?}"
    );
    assert_eq!(newest_two, all[..2]);
    let lunch = all
        .iter()
        .find(|message| message["subject"] == "Lunch on Friday")
        .expect("the lunch message is listed");
    assert_eq!(
        lunch["from"],
        json!({"name": "Alice Example", "address": "alice@example.com"})
    );
    assert_eq!(lunch["date"], "2025-12-01T10:00:00Z");
    assert_eq!(lunch["messageId"], "<lunch-1@example.com>");
    assert_eq!(lunch["seen"], true);
    assert!(lunch["size"].as_u64().is_some_and(|size| size > 100), "{lunch}");
    let report = all
        .iter()
        .find(|message| message["subject"] == "Grüße aus Berlin")
        .expect("the encoded subject is decoded");
    assert_eq!(report["from"]["name"], "Jürgen Müller");
    assert_eq!(report["seen"], false);
}

#[tokio::test]
async fn reading_a_message_returns_its_headers_plain_text_and_attachments_without_marking_it_read() {
    let Some(dovecot) = dovecot() else { return };
    let (app, key) = app_for(&dovecot).await;
    let uid = uid_of(&list(&app, &key, 50).await, "Grüße aus Berlin");

    let answer = call(&app, &key, "email_read_message", json!({"uid": uid})).await;

    assert_eq!(answer["isError"], false, "{answer}");
    let message = &answer["structured"];
    assert_eq!(message["uid"], uid);
    assert_eq!(message["messageId"], "<report-2@example.de>");
    assert_eq!(
        message["from"],
        json!([{"name": "Jürgen Müller", "address": "juergen@example.de"}])
    );
    assert_eq!(
        message["to"],
        json!([{"name": "Agent", "address": "agent@example.com"}])
    );
    assert_eq!(message["cc"], json!([{"address": "carol@example.com"}]));
    assert_eq!(message["date"], "2025-12-02T09:30:00+01:00");
    assert_eq!(
        message["text"].as_str().map(str::trim_end),
        Some("Grüße, the report is attached.")
    );
    assert_eq!(message["truncated"], false);
    assert_eq!(message["seen"], false);
    assert_eq!(
        message["attachments"],
        json!([{"filename": "report.pdf", "contentType": "application/pdf", "size": 19}])
    );
    let after = list(&app, &key, 50).await;
    let report = after
        .iter()
        .find(|listed| listed["uid"] == uid)
        .expect("the message is still listed");
    assert_eq!(
        report["seen"], false,
        "reading used BODY.PEEK on a read-only mailbox"
    );
}

#[tokio::test]
async fn an_html_only_message_is_read_as_text() {
    let Some(dovecot) = dovecot() else { return };
    let (app, key) = app_for(&dovecot).await;
    let uid = uid_of(&list(&app, &key, 50).await, "Weekly digest");

    let answer = call(&app, &key, "email_read_message", json!({"uid": uid})).await;

    let text = answer["structured"]["text"].as_str().expect("a text body");
    assert!(
        text.contains("This week") && text.contains("Three things & more."),
        "{text}"
    );
    assert!(!text.contains("<h1>"), "{text}");
}

#[tokio::test]
async fn a_uid_the_inbox_does_not_have_is_not_found() {
    let Some(dovecot) = dovecot() else { return };
    let (app, key) = app_for(&dovecot).await;

    let answer = call(&app, &key, "email_read_message", json!({"uid": 4_000_000})).await;

    assert_eq!(answer["isError"], true);
    assert_eq!(answer["structured"]["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_failure_that_does_not_name_it() {
    let Some(dovecot) = dovecot() else { return };
    let wrong = "not-the-imap-password";
    let (app, key) = app_reading_from(
        dovecot.imap_port,
        &[("smtpUsername", USERNAME), ("smtpPassword", wrong)],
    )
    .await;

    for (tool, args) in [
        ("email_list_inbox", json!({})),
        ("email_read_message", json!({"uid": 1})),
    ] {
        let answer = call(&app, &key, tool, args).await;

        assert_eq!(answer["isError"], true, "{tool}");
        assert_eq!(
            answer["structured"]["error"]["code"], "authentication_failed",
            "{tool}"
        );
        assert!(!answer.to_string().contains(wrong), "{tool}: {answer}");
    }
}

#[tokio::test]
async fn the_imap_login_overrides_the_smtp_login_when_the_secret_has_one() {
    let Some(dovecot) = dovecot() else { return };
    let secrets = [
        ("smtpUsername", "smtp-only-user"),
        ("smtpPassword", "smtp-only-password"),
        ("imapUsername", USERNAME),
        ("imapPassword", PASSWORD),
    ];
    let (app, key) = app_reading_from(dovecot.imap_port, &secrets).await;

    let messages = list(&app, &key, 50).await;

    assert_eq!(messages.len(), 3);
}

/// Lists the inbox straight through the platform client.
async fn list_over(port: u16, security: Security, trust: &Trust) -> Result<imap::Inbox, ToolError> {
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
    imap::list_inbox(&server, &login, 10).await
}

#[tokio::test]
async fn starttls_and_implicit_tls_read_the_inbox_when_the_servers_certificate_is_trusted() {
    let Some(certs) = Certificates::generate() else {
        return;
    };
    let Some(dovecot) = Dovecot::start(USERNAME, PASSWORD, &inbox(), Some(&certs)) else {
        return;
    };
    let trust = Trust::WithRoots(vec![certs.ca()]);
    let imaps_port = dovecot.imaps_port.expect("TLS is on");

    let upgraded = list_over(dovecot.imap_port, Security::StartTls, &trust).await;
    let implicit = list_over(imaps_port, Security::Implicit, &trust).await;

    assert_eq!(upgraded.expect("STARTTLS reads the inbox").total, 3);
    assert_eq!(implicit.expect("implicit TLS reads the inbox").total, 3);
}

#[tokio::test]
async fn a_certificate_the_system_does_not_trust_is_refused_before_logging_in() {
    let Some(certs) = Certificates::generate() else {
        return;
    };
    let Some(dovecot) = Dovecot::start(USERNAME, PASSWORD, &inbox(), Some(&certs)) else {
        return;
    };
    let imaps_port = dovecot.imaps_port.expect("TLS is on");

    let upgraded = list_over(dovecot.imap_port, Security::StartTls, &Trust::System).await;
    let implicit = list_over(imaps_port, Security::Implicit, &Trust::System).await;

    assert!(matches!(upgraded, Err(ToolError::Unreachable(_))), "{upgraded:?}");
    assert!(matches!(implicit, Err(ToolError::Unreachable(_))), "{implicit:?}");
}
