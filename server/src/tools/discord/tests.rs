//! `discord_send_message` through `invoke`, against a recording mock of the Discord API.

use std::sync::Arc;

use axum::http::StatusCode;
use hermes_state::store::StreamKind;

use super::*;
use crate::app::AppState;
use crate::platforms::mock_api::{MockApi, Reply};
use crate::tools::every_platform::{Connection, connect};
use crate::tools::{Registry, ToolResult, fixture, invoke};

const TOKEN: &str = "MTEzOTQ3MjAxOTM4NjU2NDYyOA.GhXyZw.live-token-abcdefghij";
const CHANNEL_ID: &str = "1139472019386564628";
const DEFAULT_CHANNEL_ID: &str = "1139472019386564000";

fn settings(default_channel: Option<&str>) -> Value {
    let mut settings = json!({"applicationId": "1139400000000000000"});
    if let Some(channel) = default_channel {
        settings["defaultChannelId"] = json!(channel);
    }
    settings
}

fn created() -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({"id": "1139480000000000001", "channel_id": CHANNEL_ID, "content": "hello"}),
        vec![],
    )
}

/// `acme` with a live Discord connection to `mock`, each attempt timing out after `timeout`.
async fn live_app(mock: &MockApi, default_channel: Option<&str>, timeout: Duration) -> AppState {
    let mut app = fixture::app().await;
    app.registry = Registry::new(vec![Arc::new(SendMessage::new().with_timeout(timeout))]);
    let secrets = [("botToken", TOKEN)];
    connect(
        &app,
        Connection::live(
            "acme",
            Platform::Discord,
            settings(default_channel),
            &secrets,
            &mock.base_url,
        ),
    )
    .await;
    app
}

async fn call(app: &AppState, args: Value) -> ToolResult {
    invoke(app, &fixture::tenant("acme"), "req-1", NAME, args)
        .await
        .expect("a connected tool routes")
}

/// Sends `hello` to the channel on a mock answering `reply`.
async fn send_hello(reply: Reply) -> (ToolResult, MockApi) {
    let mock = MockApi::start(reply).await;
    let app = live_app(&mock, None, CALL_TIMEOUT).await;
    let result = call(&app, json!({"channelId": CHANNEL_ID, "content": "hello"})).await;
    (result, mock)
}

/// The error object of a failed result, after checking the token is nowhere in it.
fn failure(result: &ToolResult) -> &Value {
    let serialized = serde_json::to_string(result).expect("a result serializes");
    assert!(!serialized.contains(TOKEN), "{serialized}");
    assert!(result.is_error, "{serialized}");
    &result.structured["error"]
}

#[tokio::test]
async fn a_message_is_posted_in_the_named_channel_with_a_nonce_and_answers_its_id() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, Some(DEFAULT_CHANNEL_ID), CALL_TIMEOUT).await;

    let result = call(
        &app,
        json!({"channelId": CHANNEL_ID, "content": "hello", "replyTo": "1139470000000000009"}),
    )
    .await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        result.structured,
        json!({"messageId": "1139480000000000001", "channelId": CHANNEL_ID})
    );
    assert!(
        !serde_json::to_string(&result)
            .expect("serializes")
            .contains(TOKEN)
    );
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/channels/{CHANNEL_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bot {TOKEN}"));
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(
        request.headers["user-agent"]
            .to_str()
            .is_ok_and(|agent| agent.starts_with("DiscordBot ("))
    );
    let nonce = request.body["nonce"].as_str().expect("a nonce");
    assert_eq!(
        request.body,
        json!({
            "content": "hello",
            "nonce": nonce,
            "enforce_nonce": true,
            "message_reference": {"message_id": "1139470000000000009"},
        })
    );
}

#[tokio::test]
async fn without_a_channel_the_connections_default_channel_is_used() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, Some(DEFAULT_CHANNEL_ID), CALL_TIMEOUT).await;

    let result = call(&app, json!({"content": "hello"})).await;

    assert_eq!(result.structured["channelId"], DEFAULT_CHANNEL_ID);
    assert_eq!(
        mock.received()[0].path,
        format!("/channels/{DEFAULT_CHANNEL_ID}/messages")
    );
}

#[tokio::test]
async fn without_a_channel_or_a_default_one_the_channel_is_a_missing_argument() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, None, CALL_TIMEOUT).await;

    let result = call(&app, json!({"content": "hello"})).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "invalid_argument");
    assert_eq!(error["field"], "channelId");
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn an_invalid_token_is_a_failed_result_named_by_its_status() {
    let (result, _mock) = send_hello(Reply::Json(
        StatusCode::UNAUTHORIZED,
        json!({"message": "401: Unauthorized", "code": 0}),
        vec![],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["platform"], "discord");
    assert_eq!(error["code"], "http_401");
    assert_eq!(result.text, "discord error http_401: 401: Unauthorized");
}

#[tokio::test]
async fn a_missing_permission_is_a_failed_result_with_discords_code() {
    let (result, mock) = send_hello(Reply::Json(
        StatusCode::FORBIDDEN,
        json!({"message": "Missing Access", "code": 50001}),
        vec![],
    ))
    .await;

    assert_eq!(failure(&result)["code"], "50001");
    assert_eq!(mock.received().len(), 1, "a 403 is not retried");
}

#[tokio::test]
async fn invalid_arguments_are_refused_naming_the_field_and_nothing_is_sent() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, Some(DEFAULT_CHANNEL_ID), CALL_TIMEOUT).await;
    let cases = [
        (
            json!({"channelId": 1139472019386564628_u64, "content": "hi"}),
            "channelId",
        ),
        (json!({"channelId": "general", "content": "hi"}), "channelId"),
        (
            json!({"channelId": "99999999999999999999", "content": "hi"}),
            "channelId",
        ),
        (json!({"channelId": CHANNEL_ID}), "content"),
        (json!({"channelId": CHANNEL_ID, "content": ""}), "content"),
        (
            json!({"channelId": CHANNEL_ID, "content": "x".repeat(2001)}),
            "content",
        ),
        (
            json!({"channelId": CHANNEL_ID, "content": "hi", "replyTo": "latest"}),
            "replyTo",
        ),
        (
            json!({"channelId": CHANNEL_ID, "content": "hi", "tts": true}),
            "tts",
        ),
    ];

    for (args, field) in cases {
        let result = call(&app, args.clone()).await;

        let error = failure(&result);
        assert_eq!(error["kind"], "invalid_argument", "{args}");
        assert_eq!(error["field"], field, "{args}");
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_rate_limit_reaches_the_caller_with_its_retry_time_rounded_up() {
    let (result, mock) = send_hello(Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false}),
        vec![("retry-after", "2"), ("x-ratelimit-reset-after", "1.500")],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["retryAfterSecs"], 2);
    assert_eq!(mock.received().len(), 1, "a 429 is not retried");
}

#[tokio::test]
async fn a_server_error_is_retried_once_with_the_same_nonce_then_reported_by_its_status() {
    let (result, mock) = send_hello(Reply::Raw(StatusCode::SERVICE_UNAVAILABLE, "unavailable")).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "http_503");
    let received = mock.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body["nonce"], received[1].body["nonce"]);
}

#[tokio::test]
async fn a_discord_that_never_answers_is_a_timeout_after_one_retry() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, None, Duration::from_millis(200)).await;

    let result = call(&app, json!({"channelId": CHANNEL_ID, "content": "hello"})).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "timeout");
    assert_eq!(error["platform"], "discord");
    let received = mock.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body["nonce"], received[1].body["nonce"]);
}

#[tokio::test]
async fn a_malformed_answer_is_a_failed_result() {
    let (result, _mock) = send_hello(Reply::Raw(StatusCode::OK, "<html>captive portal</html>")).await;

    assert_eq!(failure(&result)["code"], "malformed_response");
}

#[tokio::test]
async fn a_sandbox_send_records_the_message_in_the_outbox_in_the_default_channel() {
    let app = fixture::app().await;
    connect(
        &app,
        Connection::sandbox("acme", Platform::Discord, settings(Some(DEFAULT_CHANNEL_ID))),
    )
    .await;
    let tenant = fixture::tenant("acme");

    let result = invoke(&app, &tenant, "req-1", NAME, json!({"content": "hello"}))
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
        json!({"messageId": format!("sandbox-{}", outbox[0].id), "channelId": DEFAULT_CHANNEL_ID, "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], NAME);
    assert_eq!(event["platform"], "discord");
    assert_eq!(event["to"], DEFAULT_CHANNEL_ID);
    assert_eq!(event["content"], "hello");
}
