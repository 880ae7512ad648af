//! The template, media and read-receipt tools through `invoke`, against a
//! recording mock of the Graph API. (`whatsapp_send_message` is covered in
//! `tools/tests.rs`.)

use std::sync::Arc;

use axum::http::StatusCode;
use hermes_state::store::StreamKind;

use super::*;
use crate::app::AppState;
use crate::platforms::mock_api::{MockApi, Received, Reply};
use crate::tools::fixture::{self, WhatsappConnection};
use crate::tools::{Registry, ToolResult, invoke};

const TOKEN: &str = "EAAG-acme-live-token-0123456789";
const PHONE_NUMBER_ID: &str = "106540352242922";
const WAMID: &str = "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI";

/// The three tools, calls timing out after `timeout`.
fn registry(timeout: Duration) -> Registry {
    Registry::new(vec![
        Arc::new(SendTemplate::new().with_timeout(timeout)),
        Arc::new(SendMedia::new().with_timeout(timeout)),
        Arc::new(MarkRead::new().with_timeout(timeout)),
    ])
}

/// `acme` with a live WhatsApp connection to `mock`.
async fn live_app(mock: &MockApi, timeout: Duration) -> AppState {
    let mut app = fixture::app().await;
    app.registry = registry(timeout);
    fixture::connect_whatsapp(
        &app,
        WhatsappConnection {
            customer: "acme",
            phone_number_id: PHONE_NUMBER_ID,
            access_token: Some(TOKEN),
            sandbox: false,
            api_base: Some(&mock.base_url),
        },
    )
    .await;
    app
}

async fn sandbox_app() -> AppState {
    let mut app = fixture::app().await;
    app.registry = registry(CALL_TIMEOUT);
    fixture::connect_whatsapp(
        &app,
        WhatsappConnection {
            customer: "acme",
            phone_number_id: PHONE_NUMBER_ID,
            access_token: None,
            sandbox: true,
            api_base: None,
        },
    )
    .await;
    app
}

async fn call(app: &AppState, tool: &str, args: Value) -> ToolResult {
    invoke(app, &fixture::tenant("acme"), "req-1", tool, args)
        .await
        .expect("a connected tool routes")
}

/// Calls `tool` against a mock answering `reply`, the call timing out
/// after `timeout`.
async fn call_against(
    reply: Reply,
    timeout: Duration,
    tool: &str,
    args: Value,
) -> (ToolResult, Vec<Received>) {
    let mock = MockApi::start(reply).await;
    let app = live_app(&mock, timeout).await;
    let result = call(&app, tool, args).await;
    (result, mock.received())
}

/// [`call_against`] with the production deadline.
async fn against(reply: Reply, tool: &str, args: Value) -> (ToolResult, Vec<Received>) {
    call_against(reply, CALL_TIMEOUT, tool, args).await
}

fn accepted() -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({"messaging_product": "whatsapp", "contacts": [{"input": "15551234567", "wa_id": "15551234567"}],
               "messages": [{"id": WAMID}]}),
        vec![],
    )
}

fn read_confirmed() -> Reply {
    Reply::Json(StatusCode::OK, json!({"success": true}), vec![])
}

fn invalid_token() -> Reply {
    Reply::Json(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"message": "Invalid OAuth access token", "type": "OAuthException", "code": 190,
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}),
        vec![],
    )
}

fn throttled() -> Reply {
    Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": {"message": "(#130429) Rate limit hit", "code": 130429}}),
        vec![("retry-after", "30")],
    )
}

fn template_args() -> Value {
    json!({"to": "15551234567", "name": "order_update", "languageCode": "en_US", "bodyParameters": ["Ada", "#42"]})
}

fn media_args() -> Value {
    json!({"to": "15551234567", "kind": "image", "link": "https://cdn.example.com/cat.jpg", "caption": "a cat"})
}

fn read_args() -> Value {
    json!({"messageId": "wamid.RECEIVED"})
}

/// The serialized result, after checking the token is nowhere in it.
fn without_token(result: &ToolResult) -> String {
    let serialized = serde_json::to_string(result).expect("a result serializes");
    assert!(!serialized.contains(TOKEN), "{serialized}");
    serialized
}

/// The error object of a failed result, after checking the token is nowhere in it.
fn failure(result: &ToolResult) -> &Value {
    let serialized = without_token(result);
    assert!(result.is_error, "{serialized}");
    &result.structured["error"]
}

/// The error matrix every tool shares: invalid token, throttling, a 5xx,
/// no answer, an unreadable answer; each a failed result without the token.
async fn refusals_are_failed_results(tool: &str, args: Value) {
    let (result, received) = against(invalid_token(), tool, args.clone()).await;
    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error", "{tool}");
    assert_eq!(error["code"], "190", "{tool}");
    assert_eq!(received.len(), 1, "{tool}");

    let (result, _) = against(throttled(), tool, args.clone()).await;
    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited", "{tool}");
    assert_eq!(error["retryAfterSecs"], 30, "{tool}");
    assert_eq!(result.text, "whatsapp rate limit reached; retry after 30 s");

    let (result, _) = against(
        Reply::Raw(StatusCode::BAD_GATEWAY, "upstream"),
        tool,
        args.clone(),
    )
    .await;
    assert_eq!(failure(&result)["code"], "http_502", "{tool}");

    let (result, _) = call_against(Reply::Hang, Duration::from_millis(200), tool, args.clone()).await;
    assert_eq!(failure(&result)["kind"], "timeout", "{tool}");

    let (result, _) = against(Reply::Raw(StatusCode::OK, "<html>portal</html>"), tool, args).await;
    assert_eq!(failure(&result)["code"], "malformed_response", "{tool}");
}

/// Checks every `(args, field)` case is refused naming `field`, sending nothing.
async fn invalid_arguments_are_refused(tool: &str, cases: &[(Value, &str)]) {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;

    for (args, field) in cases {
        let result = call(&app, tool, args.clone()).await;

        let error = failure(&result);
        assert_eq!(error["kind"], "invalid_argument", "{args}");
        assert_eq!(error["field"], *field, "{args}");
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_template_is_sent_with_its_body_parameters_and_answers_the_wamid() {
    let (result, received) = against(accepted(), SEND_TEMPLATE, template_args()).await;

    without_token(&result);
    assert_eq!(
        result.structured,
        json!({"messageId": WAMID, "to": "15551234567"})
    );
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(
        request.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551234567",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": "Ada"}, {"type": "text", "text": "#42"}]}],
            },
        })
    );
}

#[tokio::test]
async fn template_components_are_passed_on_before_the_body_parameters() {
    let args = json!({
        "to": "15551234567", "name": "shipping", "languageCode": "de",
        "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/box.jpg"}}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A12"}]},
        ],
        "bodyParameters": ["Ada"],
    });

    let (result, received) = against(accepted(), SEND_TEMPLATE, args).await;

    assert!(!result.is_error, "{}", result.text);
    let components = &received[0].body["template"]["components"];
    assert_eq!(components[0]["type"], "header");
    assert_eq!(
        components[1],
        json!({"type": "button", "sub_type": "url", "index": "0",
        "parameters": [{"type": "text", "text": "A12"}]})
    );
    assert_eq!(components[2]["type"], "body");
}

#[tokio::test]
async fn invalid_template_arguments_are_refused_naming_the_field() {
    let base = |patch: Value| {
        let mut args = template_args();
        for (key, value) in patch.as_object().expect("patches are objects") {
            args[key] = value.clone();
        }
        args
    };
    invalid_arguments_are_refused(
        SEND_TEMPLATE,
        &[
            (json!({"to": "15551234567", "languageCode": "en_US"}), "name"),
            (base(json!({"to": "+15551234567"})), "to"),
            (base(json!({"name": "Order Update"})), "name"),
            (base(json!({"languageCode": "english"})), "languageCode"),
            (base(json!({"bodyParameters": [""]})), "bodyParameters[0]"),
            (base(json!({"components": [{"parameters": []}]})), "components[0]"),
            (
                base(json!({"components": [{"type": "header", "parameters": ["x"]}]})),
                "components[0]",
            ),
            (
                base(
                    json!({"components": [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}]}),
                ),
                "bodyParameters",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn template_refusals_are_failed_results_without_the_token() {
    refusals_are_failed_results(SEND_TEMPLATE, template_args()).await;
}

#[tokio::test]
async fn a_sandbox_template_is_recorded_in_the_outbox() {
    let app = sandbox_app().await;

    let result = call(&app, SEND_TEMPLATE, template_args()).await;

    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(
        result.structured,
        json!({"messageId": format!("sandbox-{}", outbox[0].id), "to": "15551234567", "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], SEND_TEMPLATE);
    assert_eq!(event["template"], "order_update");
    assert_eq!(event["languageCode"], "en_US");
    assert_eq!(event["components"][0]["parameters"][1]["text"], "#42");
}

#[tokio::test]
async fn an_image_is_sent_by_link_and_answers_the_wamid() {
    let (result, received) = against(accepted(), SEND_MEDIA, media_args()).await;

    without_token(&result);
    assert_eq!(
        result.structured,
        json!({"messageId": WAMID, "to": "15551234567"})
    );
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(
        request.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551234567",
            "type": "image",
            "image": {"link": "https://cdn.example.com/cat.jpg", "caption": "a cat"},
        })
    );
}

#[tokio::test]
async fn a_document_is_sent_with_its_filename() {
    let args = json!({"to": "15551234567", "kind": "document", "link": "https://cdn.example.com/i.pdf",
                      "filename": "invoice-42.pdf", "replyTo": "wamid.ORIGINAL"});

    let (result, received) = against(accepted(), SEND_MEDIA, args).await;

    assert!(!result.is_error, "{}", result.text);
    let body = &received[0].body;
    assert_eq!(
        body["document"],
        json!({"link": "https://cdn.example.com/i.pdf", "filename": "invoice-42.pdf"})
    );
    assert_eq!(body["context"], json!({"message_id": "wamid.ORIGINAL"}));
}

#[tokio::test]
async fn invalid_media_arguments_are_refused_naming_the_field() {
    let with = |kind: &str, extra: Value| {
        let mut args = json!({"to": "15551234567", "kind": kind, "link": "https://cdn.example.com/a"});
        for (key, value) in extra.as_object().expect("extras are objects") {
            args[key] = value.clone();
        }
        args
    };
    invalid_arguments_are_refused(
        SEND_MEDIA,
        &[
            (with("gif", json!({})), "kind"),
            (
                with("image", json!({"link": "http://cdn.example.com/a.jpg"})),
                "link",
            ),
            (
                with("image", json!({"link": "ftp://cdn.example.com/a.jpg"})),
                "link",
            ),
            (with("audio", json!({"caption": "hear this"})), "caption"),
            (with("sticker", json!({"caption": "hi"})), "caption"),
            (with("image", json!({"filename": "a.jpg"})), "filename"),
            (with("document", json!({"filename": "../a.pdf"})), "filename"),
            (with("image", json!({"caption": "x".repeat(1025)})), "caption"),
        ],
    )
    .await;
}

#[tokio::test]
async fn media_refusals_are_failed_results_without_the_token() {
    refusals_are_failed_results(SEND_MEDIA, media_args()).await;
}

#[tokio::test]
async fn a_sandbox_media_message_is_recorded_in_the_outbox() {
    let app = sandbox_app().await;

    let result = call(&app, SEND_MEDIA, media_args()).await;

    assert_eq!(result.structured["sandbox"], true);
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    let event = &outbox[0].event;
    assert_eq!(event["tool"], SEND_MEDIA);
    assert_eq!(event["kind"], "image");
    assert_eq!(event["link"], "https://cdn.example.com/cat.jpg");
    assert_eq!(event["caption"], "a cat");
}

#[tokio::test]
async fn a_message_is_marked_read_and_answers_read() {
    let (result, received) = against(read_confirmed(), MARK_READ, read_args()).await;

    without_token(&result);
    assert_eq!(
        result.structured,
        json!({"messageId": "wamid.RECEIVED", "read": true})
    );
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(
        request.body,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.RECEIVED"})
    );
}

#[tokio::test]
async fn marking_a_message_read_twice_answers_the_same() {
    let mock = MockApi::start(read_confirmed()).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;

    let first = call(&app, MARK_READ, read_args()).await;
    let second = call(&app, MARK_READ, read_args()).await;

    assert_eq!(first, second);
    assert_eq!(mock.received().len(), 2);
}

#[tokio::test]
async fn invalid_read_receipt_arguments_are_refused_naming_the_field() {
    invalid_arguments_are_refused(
        MARK_READ,
        &[
            (json!({}), "messageId"),
            (json!({"messageId": ""}), "messageId"),
            (json!({"messageId": "wamid with spaces"}), "messageId"),
            (json!({"messageId": "wamid.X", "typing": true}), "typing"),
        ],
    )
    .await;
}

#[tokio::test]
async fn read_receipt_refusals_are_failed_results_without_the_token() {
    refusals_are_failed_results(MARK_READ, read_args()).await;
}

#[tokio::test]
async fn a_sandbox_read_receipt_is_recorded_in_the_outbox() {
    let app = sandbox_app().await;

    let result = call(&app, MARK_READ, read_args()).await;

    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(
        result.structured,
        json!({"messageId": "wamid.RECEIVED", "read": true,
               "outboxId": format!("sandbox-{}", outbox[0].id), "sandbox": true})
    );
    assert_eq!(outbox[0].event["to"], "wamid.RECEIVED");
    assert_eq!(outbox[0].event["status"], "read");
}

#[test]
fn only_the_read_receipt_is_idempotent_and_every_tool_reaches_whatsapp() {
    let registry = registry(CALL_TIMEOUT);
    let spec = |name: &str| registry.get(name).expect("registered").spec().clone();

    assert!(spec(MARK_READ).annotations.idempotent);
    assert!(!spec(SEND_TEMPLATE).annotations.idempotent);
    assert!(!spec(SEND_MEDIA).annotations.idempotent);
    for name in [SEND_TEMPLATE, SEND_MEDIA, MARK_READ] {
        let spec = spec(name);
        assert_eq!(spec.platform, Some(Platform::Whatsapp), "{name}");
        assert!(spec.annotations.open_world, "{name}");
        assert!(!spec.annotations.read_only, "{name}");
        assert!(!spec.annotations.destructive, "{name}");
    }
}
