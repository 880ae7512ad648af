//! The email tools over embedded state: argument validation, the sandbox,
//! and what a live connection without a reachable server answers. The
//! exchanges with real SMTP and IMAP servers are in `server/tests/email_*.rs`.

use hermes_crds::{Customer, PlatformConnection};
use hermes_state::store::StreamKind;
use hermes_state::tenancy::{self, SecretData};
use serde_json::json;

use super::*;
use crate::app::AppState;
use crate::tools::{Registry, ToolResult, fixture, invoke};

const PASSWORD: &str = "s3cret-smtp-password";

/// Writes an email connection as the operator would. `settings` is the
/// `email` block; `sandbox` connections get no Secret.
async fn connect_email(app: &AppState, customer: &str, settings: Value, sandbox: bool) {
    let resource: Customer = serde_json::from_value(json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "Customer",
        "metadata": { "name": customer, "namespace": "default" },
        "spec": { "displayName": customer, "email": "ops@example.com" },
    }))
    .expect("the test Customer is valid");

    let mut spec = json!({
        "customerRef": customer,
        "platform": "email",
        "sandbox": sandbox,
        "email": settings,
    });
    if !sandbox {
        spec["secretRef"] = json!({ "name": "email" });
    }
    let connection: PlatformConnection = serde_json::from_value(json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "PlatformConnection",
        "metadata": { "name": format!("{customer}-email"), "namespace": "default" },
        "spec": spec,
    }))
    .expect("the test PlatformConnection is valid");

    let secret = (!sandbox)
        .then(|| SecretData::from_iter([("smtpUsername", "agent@example.com"), ("smtpPassword", PASSWORD)]));
    let plan =
        tenancy::plan_connection(&resource, &connection, secret.as_ref()).expect("the test connection plans");
    tenancy::apply_connection(app.store.as_ref(), &app.keyring, &plan, &[])
        .await
        .expect("the test connection applies");
}

fn settings(smtp_port: u16) -> Value {
    json!({
        "smtpHost": "127.0.0.1",
        "smtpPort": smtp_port,
        "smtpTls": "none",
        "fromAddress": "Agent <agent@example.com>",
    })
}

async fn sandbox_app() -> AppState {
    let app = fixture::app().await;
    connect_email(&app, "acme", settings(2525), true).await;
    app
}

async fn call(app: &AppState, tool: &str, args: Value) -> ToolResult {
    invoke(app, &fixture::tenant("acme"), "req-1", tool, args)
        .await
        .expect("a connected tool routes")
}

/// A port on 127.0.0.1 nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port binds");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

fn hello() -> Value {
    json!({"to": ["bob@example.com"], "subject": "Hello", "text": "Hi Bob"})
}

#[test]
fn the_three_email_tools_are_registered_with_closed_input_schemas() {
    let registry = Registry::standard();

    for name in [SEND, LIST_INBOX, READ_MESSAGE] {
        let spec = registry.get(name).expect("registered").spec();
        assert_eq!(spec.platform, Some(Platform::Email), "{name}");
        assert_eq!(spec.input_schema["type"], "object", "{name}");
        assert_eq!(spec.input_schema["additionalProperties"], false, "{name}");
        assert!(spec.output_schema.is_some(), "{name}");
    }
    let send = registry.get(SEND).expect("registered").spec();
    assert!(!send.annotations.read_only && send.annotations.open_world);
    assert_eq!(send.input_schema["required"], json!(["to", "subject"]));
    assert_eq!(send.input_schema["properties"]["to"]["minItems"], 1);
    assert_eq!(send.input_schema["properties"]["to"]["maxItems"], 50);
    assert_eq!(send.input_schema["properties"]["cc"]["minItems"], 0);
    let list = registry.get(LIST_INBOX).expect("registered").spec();
    assert!(list.annotations.read_only && list.annotations.idempotent);
    assert_eq!(list.input_schema["properties"]["limit"]["maximum"], 50);
    let read = registry.get(READ_MESSAGE).expect("registered").spec();
    assert!(read.annotations.read_only);
    assert_eq!(read.input_schema["required"], json!(["uid"]));
}

#[tokio::test]
async fn invalid_send_arguments_are_refused_naming_the_field() {
    let app = sandbox_app().await;
    let many = |n: usize| -> Vec<String> { (0..n).map(|i| format!("r{i}@example.com")).collect() };
    let cases = [
        (
            json!({"to": ["bob@example.com", "not an address"], "subject": "s", "text": "t"}),
            "to[1]",
        ),
        (json!({"to": [], "subject": "s", "text": "t"}), "to"),
        (
            json!({"to": "bob@example.com", "subject": "s", "text": "t"}),
            "to",
        ),
        (json!({"to": many(51), "subject": "s", "text": "t"}), "to"),
        (
            json!({"to": ["bob@example.com"], "cc": ["x@"], "subject": "s", "text": "t"}),
            "cc[0]",
        ),
        (
            json!({"to": ["bob@example.com"], "bcc": ["a@b.example\r\nBcc: c@d.example"], "subject": "s", "text": "t"}),
            "bcc[0]",
        ),
        (json!({"to": ["bob@example.com"], "text": "t"}), "subject"),
        (
            json!({"to": ["bob@example.com"], "subject": "a\r\nBcc: eve@example.com", "text": "t"}),
            "subject",
        ),
        (
            json!({"to": ["bob@example.com"], "subject": " ", "text": "t"}),
            "subject",
        ),
        (json!({"to": ["bob@example.com"], "subject": "s"}), "text"),
        (
            json!({"to": ["bob@example.com"], "subject": "s", "html": ""}),
            "html",
        ),
        (
            json!({"to": ["bob@example.com"], "subject": "s", "text": "t", "inReplyTo": "no-at-sign"}),
            "inReplyTo",
        ),
        (
            json!({"to": ["bob@example.com"], "subject": "s", "text": "t", "attachments": []}),
            "attachments",
        ),
        (
            json!({"to": many(50), "cc": many(50), "bcc": many(1), "subject": "s", "text": "t"}),
            "bcc",
        ),
    ];

    for (args, field) in cases {
        let result = call(&app, SEND, args.clone()).await;

        assert!(result.is_error, "{args}");
        assert_eq!(result.structured["error"]["kind"], "invalid_argument", "{args}");
        assert_eq!(result.structured["error"]["field"], field, "{args}");
    }
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert!(outbox.is_empty(), "nothing invalid is recorded");
}

#[tokio::test]
async fn invalid_inbox_arguments_are_refused_naming_the_field() {
    let app = sandbox_app().await;
    let cases = [
        (LIST_INBOX, json!({"limit": 0}), "limit"),
        (LIST_INBOX, json!({"limit": 51}), "limit"),
        (LIST_INBOX, json!({"limit": "ten"}), "limit"),
        (READ_MESSAGE, json!({}), "uid"),
        (READ_MESSAGE, json!({"uid": 0}), "uid"),
        (READ_MESSAGE, json!({"uid": -3}), "uid"),
        (READ_MESSAGE, json!({"uid": 7, "markSeen": true}), "markSeen"),
    ];

    for (tool, args, field) in cases {
        let result = call(&app, tool, args.clone()).await;

        assert!(result.is_error, "{tool} {args}");
        assert_eq!(
            result.structured["error"]["kind"], "invalid_argument",
            "{tool} {args}"
        );
        assert_eq!(result.structured["error"]["field"], field, "{tool} {args}");
    }
}

#[tokio::test]
async fn a_sandbox_send_records_every_field_in_the_outbox_and_answers_a_sandbox_id() {
    let app = sandbox_app().await;
    let args = json!({
        "to": ["Bob <bob@example.com>", "carol@example.com"],
        "cc": ["dave@example.com"],
        "bcc": ["erin@example.com"],
        "subject": "Quarterly numbers",
        "text": "See below.",
        "html": "<p>See below.</p>",
        "inReplyTo": "abc@mail.example.com",
    });

    let result = call(&app, SEND, args).await;

    assert!(!result.is_error, "{}", result.text);
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        result.structured,
        json!({"messageId": format!("sandbox-{}", outbox[0].id), "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], "email_send");
    assert_eq!(event["platform"], "email");
    assert_eq!(event["to"], "Bob <bob@example.com>, carol@example.com");
    assert_eq!(event["cc"], json!(["dave@example.com"]));
    assert_eq!(event["bcc"], json!(["erin@example.com"]));
    assert_eq!(event["subject"], "Quarterly numbers");
    assert_eq!(event["text"], "See below.");
    assert_eq!(event["html"], "<p>See below.</p>");
    assert_eq!(event["inReplyTo"], "<abc@mail.example.com>");
}

#[tokio::test]
async fn a_sandbox_inbox_is_empty_and_has_no_message_to_read() {
    let app = sandbox_app().await;

    let listed = call(&app, LIST_INBOX, json!({})).await;
    let read = call(&app, READ_MESSAGE, json!({"uid": 1})).await;

    assert!(!listed.is_error, "{}", listed.text);
    assert_eq!(
        listed.structured,
        json!({"total": 0, "messages": [], "sandbox": true})
    );
    assert!(read.is_error);
    assert_eq!(read.structured["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_live_send_to_a_port_nobody_listens_on_is_unreachable_and_names_no_secret() {
    let app = fixture::app().await;
    connect_email(&app, "acme", settings(closed_port()), false).await;

    let result = call(&app, SEND, hello()).await;

    assert!(result.is_error);
    assert_eq!(
        result.structured["error"]["kind"], "unreachable",
        "{}",
        result.text
    );
    assert!(!result.text.contains(PASSWORD));
    assert!(!result.structured.to_string().contains(PASSWORD));
}

#[tokio::test]
async fn the_deployments_smtp_url_overrides_the_settings_smtp_server() {
    let mut app = fixture::app().await;
    let mut deployment = (*app.settings).clone();
    let api_base = format!("smtp://127.0.0.1:{}", closed_port());
    deployment.api_bases.insert(Platform::Email, api_base);
    app.settings = std::sync::Arc::new(deployment);
    let mut settings = settings(2525);
    settings["smtpHost"] = json!("smtp.invalid");
    connect_email(&app, "acme", settings, false).await;

    let result = call(&app, SEND, hello()).await;

    // Connection refused on loopback, not a failed lookup of `smtp.invalid`.
    assert_eq!(
        result.structured["error"]["kind"], "unreachable",
        "{}",
        result.text
    );
}

#[tokio::test]
async fn reading_the_inbox_of_a_connection_without_an_imap_host_says_so() {
    let app = fixture::app().await;
    connect_email(&app, "acme", settings(closed_port()), false).await;

    for (tool, args) in [(LIST_INBOX, json!({})), (READ_MESSAGE, json!({"uid": 1}))] {
        let result = call(&app, tool, args).await;

        assert!(result.is_error, "{tool}");
        assert_eq!(
            result.structured["error"]["code"], "imap_not_configured",
            "{tool}"
        );
    }
}

#[tokio::test]
async fn a_live_listing_against_a_port_nobody_listens_on_is_unreachable() {
    let app = fixture::app().await;
    let mut settings = settings(closed_port());
    settings["imapHost"] = json!("127.0.0.1");
    settings["imapPort"] = json!(closed_port());
    connect_email(&app, "acme", settings, false).await;

    let result = call(&app, LIST_INBOX, json!({"limit": 5})).await;

    assert!(result.is_error);
    assert_eq!(
        result.structured["error"]["kind"], "unreachable",
        "{}",
        result.text
    );
}

#[test]
fn message_ids_are_kept_in_angle_brackets_whether_given_with_them_or_not() {
    let with: MessageId = "<a.b@example.com>".to_owned().try_into().expect("valid");
    let without: MessageId = "a.b@example.com".to_owned().try_into().expect("valid");

    assert_eq!(with.0, "<a.b@example.com>");
    assert_eq!(without, with);
    assert!(MessageId::try_from("<a b@example.com>".to_owned()).is_err());
    assert!(MessageId::try_from("<@example.com>".to_owned()).is_err());
}
