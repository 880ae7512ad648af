//! Where the servers are and how they are secured, from a connection's settings.

use std::time::Duration;

use serde_json::json;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(5);

fn settings(extra: serde_json::Value) -> EmailSettings {
    let mut settings = json!({
        "smtpHost": "smtp.example.com",
        "smtpPort": 465,
        "fromAddress": "agent@example.com",
    });
    for (key, value) in extra.as_object().expect("extra settings are an object") {
        settings[key] = value.clone();
    }
    serde_json::from_value(settings).expect("valid email settings")
}

fn imap(extra: serde_json::Value) -> Option<(u16, Security)> {
    let settings = settings(extra);
    MailServer::imap(&settings, &Trust::System, TIMEOUT).map(|server| (server.port, server.security))
}

#[test]
fn the_smtp_server_is_the_one_the_settings_name_with_their_tls_mode() {
    let cases = [
        (json!({}), Security::Implicit),
        (json!({"smtpTls": "implicit"}), Security::Implicit),
        (
            json!({"smtpTls": "starttls", "smtpPort": 587}),
            Security::StartTls,
        ),
        (json!({"smtpTls": "none", "smtpPort": 2525}), Security::Plain),
    ];

    for (extra, security) in cases {
        let settings = settings(extra.clone());
        let server = MailServer::smtp(&settings, &Trust::System, TIMEOUT);

        assert_eq!(server.host, "smtp.example.com", "{extra}");
        assert_eq!(server.port, settings.smtp_port, "{extra}");
        assert_eq!(server.security, security, "{extra}");
    }
}

#[test]
fn imap_defaults_to_implicit_tls_on_993_and_upgrades_any_other_port_with_starttls() {
    assert_eq!(
        imap(json!({"imapHost": "imap.example.com"})),
        Some((993, Security::Implicit))
    );
    assert_eq!(
        imap(json!({"imapHost": "imap.example.com", "imapPort": 993, "smtpTls": "starttls"})),
        Some((993, Security::Implicit))
    );
    assert_eq!(
        imap(json!({"imapHost": "imap.example.com", "imapPort": 143})),
        Some((143, Security::StartTls))
    );
}

#[test]
fn imap_is_plain_only_when_smtp_is_plain_too() {
    assert_eq!(
        imap(json!({"imapHost": "127.0.0.1", "smtpTls": "none"})),
        Some((143, Security::Plain))
    );
    assert_eq!(
        imap(json!({"imapHost": "127.0.0.1", "imapPort": 1143, "smtpTls": "none"})),
        Some((1143, Security::Plain))
    );
}

#[test]
fn settings_without_an_imap_host_name_no_imap_server() {
    assert_eq!(imap(json!({"imapPort": 993})), None);
}

#[test]
fn a_login_is_scrubbed_from_server_texts_and_from_its_debug_form() {
    let login = Login {
        username: "agent@example.com",
        password: "hunter2-long",
    };

    let scrubbed = login.scrub("535 bad password hunter2-long for agent@example.com");

    assert_eq!(scrubbed, "535 bad password [redacted] for [redacted]");
    assert!(!format!("{login:?}").contains("hunter2-long"));
}

#[test]
fn an_extra_root_that_does_not_parse_builds_no_tls_configuration() {
    let trust = Trust::WithRoots(vec![CertificateDer::from(vec![1, 2, 3])]);

    assert!(matches!(trust.client_config(), Err(ToolError::Internal)));
}

#[test]
fn smtp_urls_name_the_server_and_its_tls_mode_in_lettres_forms() {
    let url = |text: &str| SmtpUrl::parse(text).map(|url| (url.host, url.port, url.security));

    assert_eq!(
        url("smtp://127.0.0.1:2525"),
        Some(("127.0.0.1".to_owned(), 2525, Security::Plain))
    );
    assert_eq!(
        url("smtp://relay.example.com?tls=required"),
        Some(("relay.example.com".to_owned(), 587, Security::StartTls))
    );
    assert_eq!(
        url("smtps://relay.example.com"),
        Some(("relay.example.com".to_owned(), 465, Security::Implicit))
    );
    assert_eq!(
        url("smtp://[::1]:2525"),
        Some(("::1".to_owned(), 2525, Security::Plain))
    );
    assert_eq!(
        url("smtp://relay.example.com"),
        Some(("relay.example.com".to_owned(), 25, Security::Plain))
    );
}

#[test]
fn anything_but_an_smtp_url_is_refused() {
    for text in [
        "https://smtp.example.com",
        "smtp://",
        "smtps://relay.example.com?tls=required",
        "smtp://relay.example.com?tls=opportunistic",
        "relay.example.com:25",
    ] {
        assert_eq!(SmtpUrl::parse(text), None, "{text}");
    }
}
