//! The Instagram tools through `invoke`, against a recording mock of the Graph API.

use std::sync::Arc;

use axum::http::StatusCode;
use hermes_state::store::StreamKind;
use serde_json::json;

use super::*;
use crate::app::AppState;
use crate::platforms::mock_api::{MockApi, Received, Reply};
use crate::tools::every_platform::{Connection, connect};
use crate::tools::{Registry, ToolResult, fixture, invoke};

const TOKEN: &str = "IGQVJ-acme-live-token-0123456789";
const USER_ID: &str = "17841400000000000";
const CONTAINER_ID: &str = "17889455560051444";
const MEDIA_ID: &str = "17920238422030506";
const IGSID: &str = "1254459154682919";

/// Three container checks without waiting between them.
const QUICK: ContainerPolling = ContainerPolling {
    interval: Duration::ZERO,
    max_checks: 3,
};

fn settings(login: &str) -> Value {
    json!({"userId": USER_ID, "login": login})
}

/// The two tools, calls timing out after `timeout`.
fn registry(timeout: Duration) -> Registry {
    Registry::new(vec![
        Arc::new(PublishPhoto::new().with_timeout(timeout).with_polling(QUICK)),
        Arc::new(SendMessage::new().with_timeout(timeout)),
    ])
}

/// `acme` with a live Instagram Login connection to `mock`.
async fn live_app(mock: &MockApi, timeout: Duration) -> AppState {
    let mut app = fixture::app().await;
    app.registry = registry(timeout);
    connect(
        &app,
        Connection::live(
            "acme",
            Platform::Instagram,
            settings("instagram"),
            &[("accessToken", TOKEN)],
            &mock.base_url,
        ),
    )
    .await;
    app
}

async fn call(app: &AppState, tool: &str, args: Value) -> ToolResult {
    invoke(app, &fixture::tenant("acme"), "req-1", tool, args)
        .await
        .expect("a connected tool routes")
}

/// Calls `tool` against a mock answering `replies` in order.
async fn call_against(
    replies: Vec<Reply>,
    timeout: Duration,
    tool: &str,
    args: Value,
) -> (ToolResult, Vec<Received>) {
    let mock = MockApi::start_script(replies).await;
    let app = live_app(&mock, timeout).await;
    let result = call(&app, tool, args).await;
    (result, mock.received())
}

fn photo_args() -> Value {
    json!({"imageUrl": "https://cdn.example.com/bronz-fonz.jpg", "caption": "#BronzFonz"})
}

fn message_args() -> Value {
    json!({"recipientId": IGSID, "message": "hello"})
}

async fn publish(replies: Vec<Reply>) -> (ToolResult, Vec<Received>) {
    call_against(replies, CALL_TIMEOUT, PUBLISH_PHOTO, photo_args()).await
}

async fn message(replies: Vec<Reply>) -> (ToolResult, Vec<Received>) {
    call_against(replies, CALL_TIMEOUT, SEND_MESSAGE, message_args()).await
}

fn id(id: &str) -> Reply {
    Reply::Json(StatusCode::OK, json!({ "id": id }), vec![])
}

fn status(code: &str) -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({"status_code": code, "id": CONTAINER_ID}),
        vec![],
    )
}

fn invalid_token() -> Reply {
    Reply::Json(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException", "code": 190, "fbtrace_id": "AmFGcW_3hwDB"}}),
        vec![],
    )
}

fn throttled() -> Reply {
    Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": {"message": "(#4) Application request limit reached", "code": 4}}),
        vec![("retry-after", "120")],
    )
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

#[tokio::test]
async fn a_photo_is_published_and_answers_the_media_and_container_ids() {
    let (result, received) = publish(vec![
        id(CONTAINER_ID),
        status("IN_PROGRESS"),
        status("FINISHED"),
        id(MEDIA_ID),
    ])
    .await;

    without_token(&result);
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        result.structured,
        json!({"mediaId": MEDIA_ID, "containerId": CONTAINER_ID})
    );
    let steps: Vec<_> = received
        .iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect();
    assert_eq!(
        steps,
        [
            format!("POST /v27.0/{USER_ID}/media"),
            format!("GET /v27.0/{CONTAINER_ID}"),
            format!("GET /v27.0/{CONTAINER_ID}"),
            format!("POST /v27.0/{USER_ID}/media_publish"),
        ]
    );
    assert!(
        received
            .iter()
            .all(|request| request.headers["authorization"] == format!("Bearer {TOKEN}"))
    );
    assert_eq!(
        received[0].body,
        json!({"image_url": "https://cdn.example.com/bronz-fonz.jpg", "caption": "#BronzFonz"})
    );
    assert_eq!(received[1].query.as_deref(), Some("fields=status_code"));
    assert_eq!(received[3].body, json!({"creation_id": CONTAINER_ID}));
}

#[tokio::test]
async fn publishing_with_an_invalid_token_is_a_failed_result_with_code_190() {
    let (result, received) = publish(vec![invalid_token()]).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["platform"], "instagram");
    assert_eq!(error["code"], "190");
    assert!(
        result
            .text
            .starts_with("instagram error 190: Invalid OAuth access token"),
        "{}",
        result.text
    );
    assert_eq!(received.len(), 1, "nothing after the refused container");
}

#[tokio::test]
async fn invalid_photo_arguments_are_refused_naming_the_field_and_nothing_is_sent() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;
    let cases = [
        (json!({}), "imageUrl"),
        (json!({"imageUrl": "http://cdn.example.com/a.jpg"}), "imageUrl"),
        (
            json!({"imageUrl": "https://user:pw@cdn.example.com/a.jpg"}),
            "imageUrl",
        ),
        (json!({"imageUrl": "not a url"}), "imageUrl"),
        (
            json!({"imageUrl": "https://cdn.example.com/a.jpg", "caption": "x".repeat(2201)}),
            "caption",
        ),
        (
            json!({"imageUrl": "https://cdn.example.com/a.jpg", "caption": "  "}),
            "caption",
        ),
        (
            json!({"imageUrl": "https://cdn.example.com/a.jpg", "alt": "x"}),
            "alt",
        ),
    ];

    for (args, field) in cases {
        let result = call(&app, PUBLISH_PHOTO, args.clone()).await;

        let error = failure(&result);
        assert_eq!(error["kind"], "invalid_argument", "{args}");
        assert_eq!(error["field"], field, "{args}");
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_rate_limited_publish_tells_the_caller_when_to_retry() {
    let (result, _) = publish(vec![throttled()]).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["retryAfterSecs"], 120);
    assert_eq!(result.text, "instagram rate limit reached; retry after 120 s");
}

#[tokio::test]
async fn a_server_error_while_publishing_is_a_failed_result_named_by_its_status() {
    let (result, _) = publish(vec![Reply::Raw(StatusCode::INTERNAL_SERVER_ERROR, "oops")]).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "http_500");
}

#[tokio::test]
async fn a_publish_that_gets_no_answer_times_out() {
    let (result, _) = call_against(
        vec![Reply::Hang],
        Duration::from_millis(200),
        PUBLISH_PHOTO,
        photo_args(),
    )
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "timeout");
    assert_eq!(result.text, "instagram did not answer in time");
}

#[tokio::test]
async fn a_container_answer_that_is_not_json_is_a_malformed_response() {
    let (result, received) = publish(vec![Reply::Raw(StatusCode::OK, "<html>login</html>")]).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "malformed_response");
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn a_container_never_finished_is_a_bounded_failure_and_nothing_is_published() {
    let (result, received) = publish(vec![id(CONTAINER_ID), status("IN_PROGRESS")]).await;

    let error = failure(&result);
    assert_eq!(error["code"], "container_not_ready");
    assert!(result.text.contains("nothing was published"), "{}", result.text);
    assert_eq!(received.len(), 1 + QUICK.max_checks as usize);
    assert!(
        received
            .iter()
            .all(|request| !request.path.ends_with("/media_publish"))
    );
}

#[tokio::test]
async fn a_container_in_error_is_a_failed_result_and_nothing_is_published() {
    let (result, received) = publish(vec![id(CONTAINER_ID), status("ERROR")]).await;

    let error = failure(&result);
    assert_eq!(error["code"], "container_error");
    assert!(
        result.text.contains("could not process the image"),
        "{}",
        result.text
    );
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_sandbox_post_is_recorded_in_the_outbox_and_calls_nothing() {
    let mut app = fixture::app().await;
    app.registry = registry(CALL_TIMEOUT);
    connect(
        &app,
        Connection::sandbox("acme", Platform::Instagram, settings("instagram")),
    )
    .await;

    let result = call(&app, PUBLISH_PHOTO, photo_args()).await;

    assert!(!result.is_error, "{}", result.text);
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        result.structured,
        json!({"mediaId": format!("sandbox-{}", outbox[0].id), "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], PUBLISH_PHOTO);
    assert_eq!(event["platform"], "instagram");
    assert_eq!(event["to"], "feed");
    assert_eq!(event["imageUrl"], "https://cdn.example.com/bronz-fonz.jpg");
    assert_eq!(event["caption"], "#BronzFonz");
}

#[tokio::test]
async fn a_direct_message_is_sent_to_the_accounts_messages_edge_and_answers_its_id() {
    let (result, received) = message(vec![Reply::Json(
        StatusCode::OK,
        json!({"recipient_id": IGSID, "message_id": "aWdfZAG1faXRlbToxOklH"}),
        vec![],
    )])
    .await;

    without_token(&result);
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        result.structured,
        json!({"messageId": "aWdfZAG1faXRlbToxOklH", "recipientId": IGSID})
    );
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{USER_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({"recipient": {"id": IGSID}, "message": {"text": "hello"}})
    );
}

#[tokio::test]
async fn a_facebook_login_connection_sends_as_the_page_through_the_deployments_api_base() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::OK,
        json!({"recipient_id": IGSID, "message_id": "m_1"}),
        vec![],
    ))
    .await;
    let mut settings_with_base = fixture::settings();
    settings_with_base
        .api_bases
        .insert(Platform::Instagram, mock.base_url.clone());
    let mut app = fixture::app().await;
    app.settings = Arc::new(settings_with_base);
    app.registry = registry(CALL_TIMEOUT);
    connect(
        &app,
        Connection {
            customer: "acme",
            platform: Platform::Instagram,
            settings: settings("facebook"),
            secrets: &[("accessToken", TOKEN)],
            sandbox: false,
            api_base: None,
        },
    )
    .await;

    let result = call(&app, SEND_MESSAGE, message_args()).await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(mock.received()[0].path, "/v27.0/me/messages");
}

#[tokio::test]
async fn a_direct_message_with_an_invalid_token_is_a_failed_result_with_code_190() {
    let (result, _) = message(vec![invalid_token()]).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "190");
}

#[tokio::test]
async fn invalid_message_arguments_are_refused_naming_the_field_and_nothing_is_sent() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;
    let cases = [
        (json!({"message": "hi"}), "recipientId"),
        (json!({"recipientId": "12/34", "message": "hi"}), "recipientId"),
        (json!({"recipientId": IGSID}), "message"),
        (json!({"recipientId": IGSID, "message": ""}), "message"),
        // 501 characters, 1002 bytes: the limit is in bytes.
        (
            json!({"recipientId": IGSID, "message": "é".repeat(501)}),
            "message",
        ),
    ];

    for (args, field) in cases {
        let result = call(&app, SEND_MESSAGE, args.clone()).await;

        let error = failure(&result);
        assert_eq!(error["kind"], "invalid_argument", "{args}");
        assert_eq!(error["field"], field, "{args}");
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_rate_limited_direct_message_tells_the_caller_when_to_retry() {
    let (result, _) = message(vec![throttled()]).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["retryAfterSecs"], 120);
}

#[tokio::test]
async fn a_server_error_on_a_direct_message_is_a_failed_result_named_by_its_status() {
    let (result, _) = message(vec![Reply::Raw(StatusCode::SERVICE_UNAVAILABLE, "down")]).await;

    let error = failure(&result);
    assert_eq!(error["code"], "http_503");
}

#[tokio::test]
async fn a_direct_message_that_gets_no_answer_times_out() {
    let (result, _) = call_against(
        vec![Reply::Hang],
        Duration::from_millis(200),
        SEND_MESSAGE,
        message_args(),
    )
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "timeout");
}

#[tokio::test]
async fn a_direct_message_answer_without_an_id_is_a_malformed_response() {
    let (result, _) = message(vec![Reply::Json(StatusCode::OK, json!({"ok": true}), vec![])]).await;

    let error = failure(&result);
    assert_eq!(error["code"], "malformed_response");
}

#[tokio::test]
async fn a_sandbox_direct_message_is_recorded_in_the_outbox() {
    let mut app = fixture::app().await;
    app.registry = registry(CALL_TIMEOUT);
    connect(
        &app,
        Connection::sandbox("acme", Platform::Instagram, settings("instagram")),
    )
    .await;

    let result = call(&app, SEND_MESSAGE, message_args()).await;

    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(
        result.structured,
        json!({"messageId": format!("sandbox-{}", outbox[0].id), "recipientId": IGSID, "sandbox": true})
    );
    assert_eq!(outbox[0].event["to"], IGSID);
    assert_eq!(outbox[0].event["message"], "hello");
}

#[test]
fn the_tools_declare_themselves_as_open_world_sends() {
    for tool in [
        PublishPhoto::new().spec().clone(),
        SendMessage::new().spec().clone(),
    ] {
        assert_eq!(tool.platform, Some(Platform::Instagram));
        assert!(tool.annotations.open_world, "{}", tool.name);
        assert!(!tool.annotations.read_only, "{}", tool.name);
        assert!(!tool.annotations.idempotent, "{}", tool.name);
        assert_eq!(tool.input_schema["additionalProperties"], false, "{}", tool.name);
    }
}
