//! The Discord client against a recording mock of the HTTP API.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::platforms::mock_api::{MockApi, Reply, client};

const CHANNEL_ID: &str = "1139472019386564628";
const TOKEN: &str = "MTEzOTQ3MjAxOTM4NjU2NDYyOA.GhXyZw.test-token-0123456789";

fn hello() -> ChannelMessage<'static> {
    ChannelMessage {
        channel_id: CHANNEL_ID,
        content: "hello",
        reply_to: None,
    }
}

fn created() -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({
            "id": "1139480000000000001",
            "channel_id": CHANNEL_ID,
            "content": "hello",
            "author": {"id": "1139400000000000000", "username": "hermes", "bot": true},
            "timestamp": "2026-12-03T10:00:00.000000+00:00",
        }),
        vec![],
    )
}

fn discord_error(status: StatusCode, code: i64, message: &str) -> Reply {
    Reply::Json(status, json!({"code": code, "message": message}), vec![])
}

fn endpoint_for<'a>(http: &'a reqwest::Client, mock: &'a MockApi, timeout: Duration) -> Endpoint<'a> {
    Endpoint {
        http,
        base_url: &mock.base_url,
        timeout,
    }
}

async fn send_to(
    mock: &MockApi,
    message: &ChannelMessage<'_>,
    timeout: Duration,
) -> Result<String, ToolError> {
    let http = client();
    create_message(&endpoint_for(&http, mock, timeout), TOKEN, message).await
}

async fn send_hello(reply: Reply) -> Result<String, ToolError> {
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
async fn a_message_is_posted_to_the_channel_with_the_bot_token_and_a_nonce_it_enforces() {
    let mock = MockApi::start(created()).await;

    let id = send_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect("a created message is answered with its id");

    assert_eq!(id, "1139480000000000001");
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/channels/{CHANNEL_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bot {TOKEN}"));
    assert_eq!(request.headers["content-type"], "application/json");
    let user_agent = request.headers["user-agent"].to_str().expect("ASCII");
    assert!(user_agent.starts_with("DiscordBot (https://"), "{user_agent}");
    let nonce = request.body["nonce"].as_str().expect("the nonce is a string");
    assert!((1..=25).contains(&nonce.len()), "{nonce}");
    assert_eq!(
        request.body,
        json!({"content": "hello", "nonce": nonce, "enforce_nonce": true})
    );
}

#[tokio::test]
async fn a_reply_names_the_replied_message_in_its_message_reference() {
    let mock = MockApi::start(created()).await;
    let reply = ChannelMessage {
        reply_to: Some("1139470000000000009"),
        ..hello()
    };

    send_to(&mock, &reply, Duration::from_secs(5))
        .await
        .expect("a created reply is answered");

    assert_eq!(
        mock.received()[0].body["message_reference"],
        json!({"message_id": "1139470000000000009"})
    );
}

#[tokio::test]
async fn every_send_gets_its_own_nonce() {
    let mock = MockApi::start(created()).await;

    for _ in 0..2 {
        send_to(&mock, &hello(), Duration::from_secs(5))
            .await
            .expect("a created message is answered");
    }

    let received = mock.received();
    assert_ne!(received[0].body["nonce"], received[1].body["nonce"]);
}

#[tokio::test]
async fn a_server_error_is_retried_once_with_the_same_nonce() {
    let mock = MockApi::start_script(vec![
        Reply::Raw(StatusCode::BAD_GATEWAY, "upstream connect error"),
        created(),
    ])
    .await;

    let id = send_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect("the retry succeeds");

    assert_eq!(id, "1139480000000000001");
    let received = mock.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, received[1].body);
    assert!(received[1].body["nonce"].is_string());
}

#[tokio::test]
async fn a_timed_out_send_is_retried_once_with_the_same_nonce() {
    let mock = MockApi::start_script(vec![Reply::Hang, created()]).await;

    let id = send_to(&mock, &hello(), Duration::from_millis(300))
        .await
        .expect("the retry succeeds");

    assert_eq!(id, "1139480000000000001");
    let received = mock.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body["nonce"], received[1].body["nonce"]);
}

#[tokio::test]
async fn a_server_error_twice_is_a_platform_error_named_by_its_status() {
    let mock = MockApi::start(Reply::Raw(StatusCode::SERVICE_UNAVAILABLE, "unavailable")).await;

    let error = send_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect_err("two 503s fail");

    assert_eq!(mock.received().len(), 2);
    assert!(
        matches!(&without_token(error), ToolError::Platform { code, .. } if code == "http_503"),
        "a 503 is named by its status"
    );
}

#[tokio::test]
async fn a_platform_that_never_answers_times_out_after_one_retry() {
    let mock = MockApi::start(Reply::Hang).await;

    let error = send_to(&mock, &hello(), Duration::from_millis(200))
        .await
        .expect_err("no answer fails");

    assert_eq!(mock.received().len(), 2);
    assert!(
        matches!(without_token(error), ToolError::Timeout(Platform::Discord)),
        "a hanging platform times out"
    );
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let mock = MockApi::start(discord_error(StatusCode::FORBIDDEN, 50013, "Missing Permissions")).await;

    let error = send_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect_err("a 403 fails");

    assert_eq!(mock.received().len(), 1);
    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "50013" && message == "Missing Permissions"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_invalid_token_is_a_platform_error_named_by_its_status() {
    let error = send_hello(discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"))
        .await
        .expect_err("a 401 fails");

    assert!(
        matches!(&without_token(error), ToolError::Platform { platform: Platform::Discord, code, message }
            if code == "http_401" && message == "401: Unauthorized"),
        "a code 0 is named by the status"
    );
}

#[tokio::test]
async fn an_invalid_form_body_lists_its_field_errors() {
    let reply = Reply::Json(
        StatusCode::BAD_REQUEST,
        json!({
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": {
                "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]},
                "message_reference": {"message_id": {"_errors": [{"code": "NUMBER_TYPE_COERCE", "message": "Value \"x\" is not snowflake."}]}},
            },
        }),
        vec![],
    );

    let error = send_hello(reply).await.expect_err("a 400 fails");

    let ToolError::Platform { code, message, .. } = &error else {
        panic!("expected a platform error, got {error:?}");
    };
    assert_eq!(code, "50035");
    assert_eq!(
        message,
        "Invalid Form Body: content: Must be 2000 or fewer in length.; \
         message_reference.message_id: Value \"x\" is not snowflake."
    );
}

#[tokio::test]
async fn a_429_is_rate_limited_for_the_bodys_retry_after_rounded_up() {
    let reply = Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "You are being rate limited.", "retry_after": 64.57, "global": false}),
        vec![("retry-after", "65"), ("x-ratelimit-scope", "user")],
    );

    let error = send_hello(reply).await.expect_err("a 429 fails");

    assert!(
        matches!(
            without_token(error),
            ToolError::RateLimited {
                platform: Platform::Discord,
                retry_after_secs: Some(65)
            }
        ),
        "rate limited for 65 s"
    );
}

#[tokio::test]
async fn a_429_without_a_body_waits_as_long_as_its_headers_say() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!(null),
        vec![("x-ratelimit-reset-after", "2.5")],
    ))
    .await;

    let error = send_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect_err("a 429 fails");

    assert_eq!(mock.received().len(), 1, "a 429 is not retried");
    assert!(
        matches!(
            error,
            ToolError::RateLimited {
                retry_after_secs: Some(3),
                ..
            }
        ),
        "{error:?}"
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
async fn a_message_quoting_the_token_is_redacted() {
    let message = format!("token {TOKEN} is not valid");

    let error = send_hello(discord_error(StatusCode::UNAUTHORIZED, 0, &message))
        .await
        .expect_err("a 401 fails");

    assert!(without_token(error).to_string().contains("[redacted]"));
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_fails_before_anything_is_sent() {
    let mock = MockApi::start(created()).await;
    let http = client();

    let error = create_message(
        &endpoint_for(&http, &mock, Duration::from_secs(5)),
        "bad\ntoken",
        &hello(),
    )
    .await
    .expect_err("a token with a line break is refused");

    assert!(matches!(error, ToolError::Internal), "{error:?}");
    assert!(mock.received().is_empty());
}

#[test]
fn fractional_waits_round_up_to_whole_seconds() {
    assert_eq!(whole_seconds(0.0), 0);
    assert_eq!(whole_seconds(0.001), 1);
    assert_eq!(whole_seconds(64.57), 65);
    assert_eq!(whole_seconds(-3.0), 0);
}
