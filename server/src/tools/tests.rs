//! `invoke`, the registry and the standard tools, over embedded state.

use axum::http::StatusCode;
use hermes_state::store::{AuditEntry, AuditQuery, StreamKind};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::fixture::{self, WhatsappConnection};
use super::*;
use crate::platforms::mock_api::{MockApi, Reply};

const WAMID: &str = "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI";

fn sandbox<'a>(customer: &'a str, phone_number_id: &'a str) -> WhatsappConnection<'a> {
    WhatsappConnection {
        customer,
        phone_number_id,
        access_token: None,
        sandbox: true,
        api_base: None,
    }
}

async fn audit_of(app: &AppState, customer: &str) -> Vec<AuditEntry> {
    let now = Timestamp::now();
    let query = AuditQuery {
        from: now - SignedDuration::from_hours(1),
        to: now + SignedDuration::from_hours(1),
        limit: 100,
        cursor: None,
    };
    app.store
        .read_audit(&fixture::tenant(customer).id, &query)
        .await
        .expect("the audit log reads")
        .entries
}

fn send_args() -> Value {
    json!({"to": "15551234567", "message": "hello"})
}

#[test]
fn the_standard_registry_offers_tools_for_every_platform_and_the_tenant_wide_ones() {
    let registry = Registry::standard();

    let specs: Vec<_> = registry.all().map(|tool| tool.spec()).collect();

    for platform in Platform::ALL {
        assert!(
            specs.iter().any(|spec| spec.platform == Some(platform)),
            "no tool for {platform}"
        );
    }
    let tenant_wide: Vec<_> = specs
        .iter()
        .filter(|s| s.platform.is_none())
        .map(|s| s.name)
        .collect();
    assert_eq!(tenant_wide, ["connections_status", "inbox_list"]);
    let mut names: Vec<_> = specs.iter().map(|spec| spec.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), specs.len(), "tool names are unique");
    assert!(names.contains(&"whatsapp_send_message"));
}

#[test]
fn input_schemas_are_closed_objects_naming_their_constraints() {
    let registry = Registry::standard();
    let send = registry.get("whatsapp_send_message").expect("registered").spec();
    let status = registry.get("connections_status").expect("registered").spec();

    let schema = Value::Object((*send.input_schema).clone());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!(["to", "message"]));
    assert_eq!(schema["properties"]["to"]["pattern"], "^[1-9][0-9]{6,14}$");
    assert_eq!(schema["properties"]["message"]["maxLength"], 4096);
    assert!(schema["properties"]["replyTo"].is_object());
    assert!(schema["properties"]["previewUrl"].is_object());
    assert_eq!(status.input_schema.get("type"), Some(&json!("object")));
    assert!(status.annotations.read_only);
    assert!(!send.annotations.read_only);
}

#[test]
fn visible_tools_are_those_of_ready_connections_and_the_tenant_wide_ones() {
    let registry = Registry::standard();
    let state = |ready| ConnectionState {
        platform: Platform::Whatsapp,
        ready,
        sandbox: false,
        reason: "Ready".into(),
        last_error: None,
        updated_at: Timestamp::now(),
    };
    let names = |states: &[ConnectionState]| -> Vec<&str> {
        registry
            .visible(states)
            .into_iter()
            .map(|spec| spec.name)
            .collect()
    };

    let ready = names(&[state(true)]);
    assert!(ready.contains(&"whatsapp_send_message"));
    assert!(ready.contains(&"whatsapp_mark_read"));
    assert!(ready.contains(&"connections_status") && ready.contains(&"inbox_list"));
    assert!(
        ready.iter().all(|name| {
            let spec = registry.get(name).expect("listed tools are registered").spec();
            matches!(spec.platform, None | Some(Platform::Whatsapp))
        }),
        "only WhatsApp and tenant-wide tools: {ready:?}"
    );
    assert_eq!(names(&[state(false)]), ["connections_status", "inbox_list"]);
    assert_eq!(names(&[]), ["connections_status", "inbox_list"]);
}

#[tokio::test]
async fn a_tool_of_a_platform_the_tenant_has_not_connected_is_unknown_and_audited_as_denied() {
    let app = fixture::app().await;

    let error = invoke(
        &app,
        &fixture::tenant("acme"),
        "req-1",
        "whatsapp_send_message",
        send_args(),
    )
    .await
    .expect_err("no connection, no tool");

    assert!(matches!(error, InvokeError::UnknownTool(name) if name == "whatsapp_send_message"));
    let audit = audit_of(&app, "acme").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].outcome, AuditOutcome::Denied);
    assert_eq!(audit[0].reason.as_deref(), Some("not_connected"));
    assert_eq!(audit[0].request_id, "req-1");
}

#[tokio::test]
async fn a_name_that_matches_no_tool_is_unknown_and_leaves_no_audit_entry() {
    let app = fixture::app().await;

    let error = invoke(&app, &fixture::tenant("acme"), "req-1", "rm_rf", json!({}))
        .await
        .expect_err("no such tool");

    assert!(matches!(error, InvokeError::UnknownTool(name) if name == "rm_rf"));
    assert!(audit_of(&app, "acme").await.is_empty());
}

#[tokio::test]
async fn invalid_arguments_are_a_failed_result_naming_the_field() {
    let app = fixture::app().await;
    fixture::connect_whatsapp(&app, sandbox("acme", "1001")).await;
    let tenant = fixture::tenant("acme");
    let cases = [
        (json!({"to": "+15551234567", "message": "hi"}), "to"),
        (json!({"to": "15551234567"}), "message"),
        (json!({"to": "15551234567", "message": ""}), "message"),
        (
            json!({"to": "15551234567", "message": "x".repeat(4097)}),
            "message",
        ),
        (
            json!({"to": "15551234567", "message": "hi", "previewUrl": "yes"}),
            "previewUrl",
        ),
        (json!({"to": "15551234567", "message": "hi", "cc": "x"}), "cc"),
    ];

    for (args, field) in cases {
        let result = invoke(&app, &tenant, "req-1", "whatsapp_send_message", args.clone())
            .await
            .expect("invalid arguments still route");

        assert!(result.is_error, "{args}");
        assert_eq!(result.structured["error"]["kind"], "invalid_argument", "{args}");
        assert_eq!(result.structured["error"]["field"], field, "{args}");
        assert!(result.text.contains(&format!("`{field}`")), "{}", result.text);
    }
    let audit = audit_of(&app, "acme").await;
    assert!(
        audit.iter().all(|entry| entry.outcome == AuditOutcome::Denied
            && entry.reason.as_deref() == Some("invalid_argument"))
    );
}

#[tokio::test]
async fn a_sandbox_send_records_the_message_in_the_outbox_and_calls_nothing() {
    let app = fixture::app().await;
    fixture::connect_whatsapp(&app, sandbox("acme", "1001")).await;
    let tenant = fixture::tenant("acme");

    let args = json!({"to": "15551234567", "message": "hello", "replyTo": "wamid.X"});
    let result = invoke(&app, &tenant, "req-1", "whatsapp_send_message", args)
        .await
        .expect("a sandbox send routes");

    assert!(!result.is_error, "{}", result.text);
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &tenant.id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        result.structured,
        json!({"messageId": format!("sandbox-{}", outbox[0].id), "to": "15551234567", "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], "whatsapp_send_message");
    assert_eq!(event["platform"], "whatsapp");
    assert_eq!(event["to"], "15551234567");
    assert_eq!(event["message"], "hello");
    assert_eq!(event["replyTo"], "wamid.X");
    assert!(event["at"].is_string());
}

#[tokio::test]
async fn a_live_send_goes_to_the_connections_api_base_and_is_audited_without_its_body() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::OK,
        json!({"messages": [{"id": WAMID}]}),
        vec![],
    ))
    .await;
    let app = fixture::app().await;
    fixture::connect_whatsapp(
        &app,
        WhatsappConnection {
            customer: "acme",
            phone_number_id: "1002",
            access_token: Some("EAAG-acme-token"),
            sandbox: false,
            api_base: Some(&mock.base_url),
        },
    )
    .await;

    let result = invoke(
        &app,
        &fixture::tenant("acme"),
        "req-7",
        "whatsapp_send_message",
        send_args(),
    )
    .await
    .expect("a live send routes");

    assert_eq!(
        result.structured,
        json!({"messageId": WAMID, "to": "15551234567"})
    );
    let received = mock.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v27.0/1002/messages");
    assert_eq!(received[0].headers["authorization"], "Bearer EAAG-acme-token");
    let audit = audit_of(&app, "acme").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].outcome, AuditOutcome::Allowed);
    assert_eq!(audit[0].tool, "whatsapp_send_message");
    assert_eq!(audit[0].platform, Some(Platform::Whatsapp));
    assert_eq!(audit[0].request_id, "req-7");
    let logged = serde_json::to_string(&audit[0]).expect("an audit entry serializes");
    assert!(!logged.contains("hello") && !logged.contains("EAAG"), "{logged}");
}

#[tokio::test]
async fn a_platform_refusal_is_a_failed_result_audited_with_its_code() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"message": "Invalid OAuth access token", "type": "OAuthException", "code": 190}}),
        vec![],
    ))
    .await;
    let app = fixture::app().await;
    fixture::connect_whatsapp(
        &app,
        WhatsappConnection {
            customer: "acme",
            phone_number_id: "1003",
            access_token: Some("EAAG-expired"),
            sandbox: false,
            api_base: Some(&mock.base_url),
        },
    )
    .await;

    let result = invoke(
        &app,
        &fixture::tenant("acme"),
        "req-1",
        "whatsapp_send_message",
        send_args(),
    )
    .await
    .expect("a refused send still routes");

    assert!(result.is_error);
    assert_eq!(result.structured["error"]["kind"], "platform_error");
    assert_eq!(result.structured["error"]["code"], "190");
    assert!(!result.text.contains("EAAG-expired"));
    let audit = audit_of(&app, "acme").await;
    assert_eq!(audit[0].outcome, AuditOutcome::Failed);
    assert_eq!(audit[0].reason.as_deref(), Some("platform_error:190"));
}

#[tokio::test]
async fn a_call_past_the_monthly_quota_is_refused_with_the_limit() {
    let app = fixture::app().await;
    let mut tenant = fixture::tenant("acme");
    tenant.tool_calls_per_month = Some(1);

    invoke(&app, &tenant, "req-1", "connections_status", json!({}))
        .await
        .expect("the first call is within the quota");
    let error = invoke(&app, &tenant, "req-2", "connections_status", json!({}))
        .await
        .expect_err("the second call is over the quota");

    assert!(
        matches!(&error, InvokeError::QuotaExceeded { limit: 1, period } if period.len() == 7),
        "{error:?}"
    );
    let audit = audit_of(&app, "acme").await;
    assert_eq!(audit[1].outcome, AuditOutcome::Denied);
    assert_eq!(audit[1].reason.as_deref(), Some("quota_exceeded"));
}

#[tokio::test]
async fn connection_status_reports_every_platform_with_its_state() {
    let app = fixture::app().await;
    fixture::connect_whatsapp(&app, sandbox("acme", "1004")).await;
    fixture::fail_connection(
        &app,
        "acme",
        Platform::Telegram,
        "SecretMissing",
        "Secret \"tg\" not found",
    )
    .await;

    let result = invoke(
        &app,
        &fixture::tenant("acme"),
        "req-1",
        "connections_status",
        json!({}),
    )
    .await
    .expect("a tenant-wide tool is always offered");

    let connections = result.structured["connections"].as_array().expect("a list");
    assert_eq!(connections.len(), Platform::ALL.len());
    let of = |platform: &str| {
        connections
            .iter()
            .find(|c| c["platform"] == platform)
            .expect("every platform is listed")
    };
    assert_eq!(
        of("whatsapp"),
        &json!({"platform": "whatsapp", "connected": true, "ready": true, "sandbox": true,
                "reason": "Ready", "lastError": null})
    );
    assert_eq!(
        of("telegram"),
        &json!({"platform": "telegram", "connected": true, "ready": false, "sandbox": false,
                "reason": "SecretMissing", "lastError": "Secret \"tg\" not found"})
    );
    assert_eq!(
        of("email"),
        &json!({"platform": "email", "connected": false, "ready": false, "sandbox": false,
                "reason": "NotConnected", "lastError": null})
    );
}

#[test]
fn argument_errors_name_nested_paths() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only deserialization is under test")]
    struct Args {
        recipients: Vec<u32>,
    }

    let error =
        parse_args::<Args>(json!({"recipients": [1, 2, "three"]})).expect_err("a string is not a number");

    assert!(
        matches!(&error, ToolError::InvalidArgument { field, .. } if field == "recipients[2]"),
        "{error:?}"
    );
}

#[test]
fn arguments_that_are_not_an_object_are_named_as_the_arguments() {
    let error = parse_args::<whatsapp::SendMessageArgs>(json!([1])).expect_err("an array is not an object");

    assert!(
        matches!(&error, ToolError::InvalidArgument { field, .. } if field == "arguments"),
        "{error:?}"
    );
}
