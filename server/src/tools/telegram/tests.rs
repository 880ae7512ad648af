//! `telegram_send_message` through `invoke`, against a recording mock of the Bot API.

use std::sync::Arc;

use axum::http::StatusCode;
use hermes_state::store::StreamKind;
use serde_json::json;

use super::*;
use crate::app::AppState;
use crate::platforms::mock_api::{MockApi, Reply};
use crate::tools::every_platform::{Connection, connect};
use crate::tools::{Registry, ToolResult, fixture, invoke};

const TOKEN: &str = "123456789:AAE-live-token_abcdefghij0123456789";

fn settings() -> Value {
    json!({"botUsername": "hermes_test_bot"})
}

/// `acme` with a live Telegram connection to `mock`, calls timing out after `timeout`.
async fn live_app(mock: &MockApi, timeout: Duration) -> AppState {
    let mut app = fixture::app().await;
    app.registry = Registry::new(vec![Arc::new(SendMessage::new().with_timeout(timeout))]);
    let secrets = [("botToken", TOKEN), ("webhookSecretToken", "webhook-secret-0123")];
    connect(
        &app,
        Connection::live("acme", Platform::Telegram, settings(), &secrets, &mock.base_url),
    )
    .await;
    app
}

async fn call(app: &AppState, args: Value) -> ToolResult {
    invoke(app, &fixture::tenant("acme"), "req-1", NAME, args)
        .await
        .expect("a connected tool routes")
}

/// Sends `hello` to a mock answering `reply`; returns the result and the mock.
async fn send_hello(reply: Reply) -> (ToolResult, MockApi) {
    let mock = MockApi::start(reply).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;
    let result = call(&app, json!({"chatId": -1001234567890_i64, "text": "hello"})).await;
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
async fn a_message_is_sent_through_send_message_and_answers_its_id() {
    let (result, mock) = send_hello(Reply::Json(
        StatusCode::OK,
        json!({"ok": true, "result": {"message_id": 42, "date": 1700000000, "chat": {"id": -1001234567890_i64, "type": "channel"}}}),
        vec![],
    ))
    .await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        result.structured,
        json!({"messageId": "42", "chatId": "-1001234567890"})
    );
    assert!(
        !serde_json::to_string(&result)
            .expect("serializes")
            .contains(TOKEN)
    );
    let received = mock.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(received[0].headers["content-type"], "application/json");
    assert_eq!(
        received[0].body,
        json!({"chat_id": -1001234567890_i64, "text": "hello"})
    );
}

#[tokio::test]
async fn every_option_reaches_the_bot_api_and_a_numeric_string_is_a_chat_id() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::OK,
        json!({"ok": true, "result": {"message_id": 43}}),
        vec![],
    ))
    .await;
    let app = live_app(&mock, CALL_TIMEOUT).await;

    let result = call(
        &app,
        json!({"chatId": "-1001234567890", "text": "*done*", "parseMode": "MarkdownV2",
               "replyToMessageId": "42", "disableNotification": true}),
    )
    .await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        mock.received()[0].body,
        json!({
            "chat_id": -1001234567890_i64,
            "text": "*done*",
            "parse_mode": "MarkdownV2",
            "reply_parameters": {"message_id": 42},
            "disable_notification": true,
        })
    );
}

#[tokio::test]
async fn a_revoked_token_is_a_failed_result_with_telegrams_error_code() {
    let (result, _mock) = send_hello(Reply::Json(
        StatusCode::UNAUTHORIZED,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        vec![],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["platform"], "telegram");
    assert_eq!(error["code"], "401");
    assert_eq!(result.text, "telegram error 401: Unauthorized");
}

#[tokio::test]
async fn invalid_arguments_are_refused_naming_the_field_and_nothing_is_sent() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;
    let cases = [
        (json!({"text": "hi"}), "chatId"),
        (json!({"chatId": "hermes_news", "text": "hi"}), "chatId"),
        (json!({"chatId": "@abc", "text": "hi"}), "chatId"),
        (json!({"chatId": 0, "text": "hi"}), "chatId"),
        (json!({"chatId": 1.5, "text": "hi"}), "chatId"),
        (json!({"chatId": 42}), "text"),
        (json!({"chatId": 42, "text": " "}), "text"),
        (json!({"chatId": 42, "text": "x".repeat(4097)}), "text"),
        (
            json!({"chatId": 42, "text": "hi", "parseMode": "Markdown"}),
            "parseMode",
        ),
        (
            json!({"chatId": 42, "text": "hi", "replyToMessageId": 0}),
            "replyToMessageId",
        ),
        (
            json!({"chatId": 42, "text": "hi", "replyToMessageId": "last"}),
            "replyToMessageId",
        ),
        (
            json!({"chatId": 42, "text": "hi", "disableNotification": "yes"}),
            "disableNotification",
        ),
        (json!({"chatId": 42, "text": "hi", "silent": true}), "silent"),
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
async fn flood_control_reaches_the_caller_with_its_retry_time() {
    let (result, _mock) = send_hello(Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 17",
               "parameters": {"retry_after": 17}}),
        vec![],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["retryAfterSecs"], 17);
    assert_eq!(result.text, "telegram rate limit reached; retry after 17 s");
}

#[tokio::test]
async fn a_server_error_is_a_failed_result_named_by_its_status() {
    let (result, _mock) = send_hello(Reply::Raw(StatusCode::BAD_GATEWAY, "<html>Bad Gateway</html>")).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "http_502");
}

#[tokio::test]
async fn a_bot_api_that_never_answers_is_a_timeout() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, Duration::from_millis(300)).await;

    let result = call(&app, json!({"chatId": 42, "text": "hello"})).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "timeout");
    assert_eq!(error["platform"], "telegram");
}

#[tokio::test]
async fn a_malformed_answer_is_a_failed_result() {
    let (result, _mock) = send_hello(Reply::Raw(StatusCode::OK, "<html>captive portal</html>")).await;

    let error = failure(&result);
    assert_eq!(error["code"], "malformed_response");
}

#[tokio::test]
async fn a_sandbox_send_records_the_message_in_the_outbox_and_calls_nothing() {
    let app = fixture::app().await;
    connect(&app, Connection::sandbox("acme", Platform::Telegram, settings())).await;
    let tenant = fixture::tenant("acme");

    let args = json!({"chatId": "@hermes_news", "text": "hello", "parseMode": "HTML", "replyToMessageId": 7});
    let result = invoke(&app, &tenant, "req-1", NAME, args)
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
        json!({"messageId": format!("sandbox-{}", outbox[0].id), "chatId": "@hermes_news", "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], NAME);
    assert_eq!(event["platform"], "telegram");
    assert_eq!(event["to"], "@hermes_news");
    assert_eq!(event["text"], "hello");
    assert_eq!(event["parseMode"], "HTML");
    assert_eq!(event["replyToMessageId"], 7);
    assert_eq!(event["disableNotification"], false);
}
