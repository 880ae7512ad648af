//! The Telegram client against a recording mock of the Bot API.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::platforms::mock_api::{MockApi, Reply, client};

const TOKEN: &str = "123456789:AAE-test-token_0123456789abcdefghij";

fn hello() -> TextMessage<'static> {
    TextMessage {
        chat_id: ChatId::Id(-1001234567890),
        text: "hello",
        parse_mode: None,
        reply_to: None,
        disable_notification: false,
    }
}

fn sent() -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({
            "ok": true,
            "result": {
                "message_id": 42,
                "date": 1700000000,
                "chat": {"id": -1001234567890_i64, "type": "supergroup"},
                "text": "hello",
            },
        }),
        vec![],
    )
}

fn failure(status: StatusCode, error_code: i64, description: &str) -> Reply {
    Reply::Json(
        status,
        json!({"ok": false, "error_code": error_code, "description": description}),
        vec![],
    )
}

async fn send_to(mock: &MockApi, message: &TextMessage<'_>, timeout: Duration) -> Result<i64, ToolError> {
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout,
    };
    send_message(&endpoint, TOKEN, message).await
}

async fn send_hello(reply: Reply) -> Result<i64, ToolError> {
    let mock = MockApi::start(reply).await;
    send_to(&mock, &hello(), Duration::from_secs(5)).await
}

/// The error, after checking that nothing of it names the token.
fn without_token(error: ToolError) -> ToolError {
    assert!(!error.to_string().contains(TOKEN), "{error}");
    assert!(!format!("{error:?}").contains(TOKEN), "{error:?}");
    error
}

#[tokio::test]
async fn a_text_message_is_posted_to_send_message_under_the_bot_token_path() {
    let mock = MockApi::start(sent()).await;

    let message_id = send_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect("a sent message is answered with its id");

    assert_eq!(message_id, 42);
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(
        request.body,
        json!({"chat_id": -1001234567890_i64, "text": "hello"})
    );
}

#[tokio::test]
async fn a_silent_html_reply_sets_reply_parameters_parse_mode_and_disable_notification() {
    let mock = MockApi::start(sent()).await;
    let reply = TextMessage {
        text: "<b>done</b>",
        parse_mode: Some(ParseMode::Html),
        reply_to: Some(41),
        disable_notification: true,
        ..hello()
    };

    send_to(&mock, &reply, Duration::from_secs(5))
        .await
        .expect("a sent reply is answered");

    assert_eq!(
        mock.received()[0].body,
        json!({
            "chat_id": -1001234567890_i64,
            "text": "<b>done</b>",
            "parse_mode": "HTML",
            "reply_parameters": {"message_id": 41},
            "disable_notification": true,
        })
    );
}

#[tokio::test]
async fn a_channel_username_is_sent_as_a_string_and_markdown_by_its_name() {
    let mock = MockApi::start(sent()).await;
    let message = TextMessage {
        chat_id: ChatId::Username("@hermes_news"),
        parse_mode: Some(ParseMode::MarkdownV2),
        ..hello()
    };

    send_to(&mock, &message, Duration::from_secs(5))
        .await
        .expect("a sent message is answered");

    let body = &mock.received()[0].body;
    assert_eq!(body["chat_id"], "@hermes_news");
    assert_eq!(body["parse_mode"], "MarkdownV2");
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it_before_the_bot_segment() {
    let mock = MockApi::start(sent()).await;
    let base_url = format!("{}/telegram/", mock.base_url);
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &base_url,
        timeout: Duration::from_secs(5),
    };

    send_message(&endpoint, TOKEN, &hello())
        .await
        .expect("a sent message is answered");

    assert_eq!(
        mock.received()[0].path,
        format!("/telegram/bot{TOKEN}/sendMessage")
    );
}

#[tokio::test]
async fn a_revoked_token_is_a_platform_error_with_telegrams_error_code() {
    let error = send_hello(failure(StatusCode::UNAUTHORIZED, 401, "Unauthorized"))
        .await
        .expect_err("a 401 fails");

    let error = without_token(error);
    assert!(
        matches!(&error, ToolError::Platform { platform: Platform::Telegram, code, message }
            if code == "401" && message == "Unauthorized"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_bot_removed_from_the_chat_is_a_platform_error_with_its_description() {
    let error = send_hello(failure(
        StatusCode::FORBIDDEN,
        403,
        "Forbidden: bot is not a member of the channel chat",
    ))
    .await
    .expect_err("a 403 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "403" && message == "Forbidden: bot is not a member of the channel chat"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_group_upgraded_to_a_supergroup_names_the_new_chat_id() {
    let reply = Reply::Json(
        StatusCode::BAD_REQUEST,
        json!({
            "ok": false,
            "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1009876543210_i64},
        }),
        vec![],
    );

    let error = send_hello(reply).await.expect_err("a migrated group fails");

    assert!(
        matches!(&error, ToolError::Platform { message, .. }
            if message.ends_with("(the chat's id is now -1009876543210)")),
        "{error:?}"
    );
}

#[tokio::test]
async fn flood_control_is_rate_limited_for_as_long_as_retry_after_says() {
    let reply = Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "ok": false,
            "error_code": 429,
            "description": "Too Many Requests: retry after 17",
            "parameters": {"retry_after": 17},
        }),
        vec![],
    );

    let error = send_hello(reply).await.expect_err("a 429 fails");

    assert!(
        matches!(
            without_token(error),
            ToolError::RateLimited {
                platform: Platform::Telegram,
                retry_after_secs: Some(17)
            }
        ),
        "rate limited for 17 s"
    );
}

#[tokio::test]
async fn a_429_without_an_envelope_waits_as_long_as_the_retry_after_header_says() {
    let reply = Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!("slow down"),
        vec![("retry-after", "9")],
    );

    let error = send_hello(reply).await.expect_err("a 429 fails");

    assert!(
        matches!(
            error,
            ToolError::RateLimited {
                retry_after_secs: Some(9),
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_server_error_without_an_envelope_is_named_by_its_status() {
    let error = send_hello(Reply::Raw(StatusCode::BAD_GATEWAY, "<html>Bad Gateway</html>"))
        .await
        .expect_err("a 502 fails");

    assert!(
        matches!(&without_token(error), ToolError::Platform { code, message, .. }
            if code == "http_502" && message == "telegram answered HTTP 502 Bad Gateway"),
        "a 502 is named by its status"
    );
}

#[tokio::test]
async fn a_platform_that_never_answers_times_out() {
    let mock = MockApi::start(Reply::Hang).await;

    let error = send_to(&mock, &hello(), Duration::from_millis(200))
        .await
        .expect_err("no answer fails");

    assert!(
        matches!(without_token(error), ToolError::Timeout(Platform::Telegram)),
        "a hanging platform times out"
    );
}

#[tokio::test]
async fn a_success_answer_that_is_not_json_is_a_malformed_response() {
    let error = send_hello(Reply::Raw(StatusCode::OK, "<html>captive portal</html>"))
        .await
        .expect_err("an unreadable answer fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_ok_envelope_without_a_message_is_a_malformed_response() {
    let error = send_hello(Reply::Json(
        StatusCode::OK,
        json!({"ok": true, "result": true}),
        vec![],
    ))
    .await
    .expect_err("an answer without a message id fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failure_envelope_with_a_success_status_is_still_a_failure() {
    let error = send_hello(failure(StatusCode::OK, 400, "Bad Request: message text is empty"))
        .await
        .expect_err("ok: false fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "400"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_description_quoting_the_token_is_redacted() {
    let description = format!("Not Found: no bot {TOKEN}");

    let error = send_hello(failure(StatusCode::NOT_FOUND, 404, &description))
        .await
        .expect_err("a 404 fails");

    let error = without_token(error);
    assert!(error.to_string().contains("[redacted]"), "{error}");
}

#[tokio::test]
async fn a_platform_nobody_listens_for_is_unreachable_without_naming_the_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port is free");
    let base_url = format!("http://{}", listener.local_addr().expect("bound"));
    drop(listener);
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &base_url,
        timeout: Duration::from_secs(5),
    };

    let error = send_message(&endpoint, TOKEN, &hello())
        .await
        .expect_err("a closed port fails");

    assert!(
        matches!(without_token(error), ToolError::Unreachable(Platform::Telegram)),
        "a closed port is unreachable"
    );
}
