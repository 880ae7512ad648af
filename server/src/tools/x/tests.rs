//! `x_post` through `invoke`, against a recording mock of the X API.

use std::sync::Arc;

use axum::http::StatusCode;
use hermes_state::store::StreamKind;

use super::*;
use crate::app::AppState;
use crate::platforms::mock_api::{MockApi, Reply};
use crate::tools::every_platform::{Connection, connect};
use crate::tools::{Registry, ToolResult, fixture, invoke};

const BEARER: &str = "bGl2ZS1vYXV0aDItdXNlci10b2tlbg-live-bearer";
const OAUTH1: [(&str, &str); 4] = [
    ("consumerKey", "live-consumer-key-0123"),
    ("consumerSecret", "live-consumer-secret-4567"),
    ("accessToken", "1234-live-access-token-89ab"),
    ("accessTokenSecret", "live-access-token-secret-cdef"),
];

fn created() -> Reply {
    Reply::Json(
        StatusCode::CREATED,
        json!({"data": {"id": "1445880548472328192", "text": "hello"}}),
        vec![],
    )
}

/// `acme` with a live X connection to `mock` holding `secrets`.
async fn live_app(mock: &MockApi, secrets: &[(&str, &str)], timeout: Duration) -> AppState {
    let mut app = fixture::app().await;
    app.registry = Registry::new(vec![Arc::new(CreatePost::new().with_timeout(timeout))]);
    connect(
        &app,
        Connection::live(
            "acme",
            Platform::X,
            json!({"username": "hermes"}),
            secrets,
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

/// Posts `hello` with the bearer token to a mock answering `reply`.
async fn post_hello(reply: Reply) -> (ToolResult, MockApi) {
    let mock = MockApi::start(reply).await;
    let app = live_app(&mock, &[("bearerToken", BEARER)], CALL_TIMEOUT).await;
    let result = call(&app, json!({"text": "hello"})).await;
    (result, mock)
}

/// Asserts no credential is anywhere in the result.
fn assert_no_secret(result: &ToolResult) {
    let serialized = serde_json::to_string(result).expect("a result serializes");
    assert!(!serialized.contains(BEARER), "{serialized}");
    for (_, secret) in OAUTH1 {
        assert!(!serialized.contains(secret), "{serialized}");
    }
}

/// The error object of a failed result, after checking no credential is in it.
fn failure(result: &ToolResult) -> &Value {
    assert_no_secret(result);
    assert!(result.is_error, "{}", result.text);
    &result.structured["error"]
}

#[tokio::test]
async fn a_post_is_published_with_the_bearer_token_and_answers_its_id() {
    let (result, mock) = post_hello(created()).await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.structured, json!({"postId": "1445880548472328192"}));
    assert_no_secret(&result);
    let received = mock.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, "/2/tweets");
    assert_eq!(received[0].headers["authorization"], format!("Bearer {BEARER}"));
    assert_eq!(received[0].headers["content-type"], "application/json");
    assert_eq!(received[0].body, json!({"text": "hello"}));
}

#[tokio::test]
async fn a_reply_quoting_a_post_names_both_in_the_request() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, &[("bearerToken", BEARER)], CALL_TIMEOUT).await;

    let result = call(
        &app,
        json!({"text": "hello", "replyTo": "1445880548472328100", "quoteTweetId": "1445880548472328111"}),
    )
    .await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(
        mock.received()[0].body,
        json!({
            "text": "hello",
            "reply": {"in_reply_to_tweet_id": "1445880548472328100"},
            "quote_tweet_id": "1445880548472328111",
        })
    );
}

#[tokio::test]
async fn an_oauth1_connection_signs_the_post_without_sending_its_secrets() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, &OAUTH1, CALL_TIMEOUT).await;

    let result = call(&app, json!({"text": "hello"})).await;

    assert!(!result.is_error, "{}", result.text);
    let header = mock.received()[0].headers["authorization"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(header.starts_with("OAuth "), "{header}");
    assert!(
        header.contains(r#"oauth_consumer_key="live-consumer-key-0123""#),
        "{header}"
    );
    assert!(
        header.contains(r#"oauth_token="1234-live-access-token-89ab""#),
        "{header}"
    );
    assert!(
        header.contains(r#"oauth_signature_method="HMAC-SHA1""#),
        "{header}"
    );
    assert!(header.contains("oauth_signature=\""), "{header}");
    assert!(!header.contains("live-consumer-secret") && !header.contains("live-access-token-secret"));
}

#[tokio::test]
async fn the_bearer_token_is_preferred_when_oauth1_keys_are_there_too() {
    let mock = MockApi::start(created()).await;
    let mut secrets = OAUTH1.to_vec();
    secrets.push(("bearerToken", BEARER));
    let app = live_app(&mock, &secrets, CALL_TIMEOUT).await;

    call(&app, json!({"text": "hello"})).await;

    assert_eq!(
        mock.received()[0].headers["authorization"],
        format!("Bearer {BEARER}")
    );
}

#[tokio::test]
async fn an_unauthorized_token_is_a_failed_result_named_by_its_status() {
    let (result, _mock) = post_hello(Reply::Json(
        StatusCode::UNAUTHORIZED,
        json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
        vec![],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["platform"], "x");
    assert_eq!(error["code"], "http_401");
    assert_eq!(result.text, "x error http_401: Unauthorized");
}

#[tokio::test]
async fn invalid_arguments_are_refused_naming_the_field_and_nothing_is_sent() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, &[("bearerToken", BEARER)], CALL_TIMEOUT).await;
    let cases = [
        (json!({}), "text"),
        (json!({"text": ""}), "text"),
        (json!({"text": "x".repeat(281)}), "text"),
        (json!({"text": "hi", "replyTo": "latest"}), "replyTo"),
        (
            json!({"text": "hi", "replyTo": 1445880548472328100_u64}),
            "replyTo",
        ),
        (
            json!({"text": "hi", "quoteTweetId": "12345678901234567890"}),
            "quoteTweetId",
        ),
        (json!({"text": "hi", "media": {"media_ids": ["1"]}}), "media"),
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
async fn a_text_of_280_characters_of_any_script_is_accepted() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, &[("bearerToken", BEARER)], CALL_TIMEOUT).await;

    let result = call(&app, json!({"text": "é".repeat(280)})).await;

    assert!(!result.is_error, "{}", result.text);
}

#[tokio::test]
async fn a_rate_limit_reaches_the_caller_with_the_seconds_until_the_window_resets() {
    // 2100-01-01T00:00:00Z.
    let (result, _mock) = post_hello(Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
        vec![("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "4102444800")],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    let wait = error["retryAfterSecs"].as_i64().expect("a wait in seconds");
    let expected = 4_102_444_800 - jiff::Timestamp::now().as_second();
    assert!((expected - 5..=expected).contains(&wait), "{wait} s");
    assert!(
        result.text.contains(&format!("retry after {wait} s")),
        "{}",
        result.text
    );
}

#[tokio::test]
async fn a_server_error_is_a_failed_result_named_by_its_status() {
    let (result, _mock) = post_hello(Reply::Raw(StatusCode::SERVICE_UNAVAILABLE, "Over capacity")).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "http_503");
}

#[tokio::test]
async fn an_x_that_never_answers_is_a_timeout() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, &OAUTH1, Duration::from_millis(300)).await;

    let result = call(&app, json!({"text": "hello"})).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "timeout");
    assert_eq!(error["platform"], "x");
}

#[tokio::test]
async fn a_malformed_answer_is_a_failed_result() {
    let (result, _mock) = post_hello(Reply::Json(StatusCode::CREATED, json!({"data": null}), vec![])).await;

    assert_eq!(failure(&result)["code"], "malformed_response");
}

#[tokio::test]
async fn a_sandbox_post_is_recorded_in_the_outbox_and_calls_nothing() {
    let app = fixture::app().await;
    connect(&app, Connection::sandbox("acme", Platform::X, json!({}))).await;
    let tenant = fixture::tenant("acme");

    let args = json!({"text": "hello", "replyTo": "1445880548472328100"});
    let result = invoke(&app, &tenant, "req-1", NAME, args)
        .await
        .expect("a sandbox post routes");

    assert!(!result.is_error, "{}", result.text);
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &tenant.id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        result.structured,
        json!({"postId": format!("sandbox-{}", outbox[0].id), "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], NAME);
    assert_eq!(event["platform"], "x");
    assert_eq!(event["to"], "feed");
    assert_eq!(event["text"], "hello");
    assert_eq!(event["replyTo"], "1445880548472328100");
}
