//! `linkedin_create_post` through `invoke`, against a recording mock of the Posts API.

use std::sync::Arc;

use axum::http::StatusCode;
use hermes_state::store::StreamKind;

use super::*;
use crate::app::AppState;
use crate::platforms::mock_api::{MockApi, Reply};
use crate::tools::every_platform::{Connection, connect};
use crate::tools::{Registry, ToolResult, fixture, invoke};

const TOKEN: &str = "AQV-live-member-token-abcdefghij0123";
const AUTHOR: &str = "urn:li:organization:2414183";
const POST_URN: &str = "urn:li:share:7140000000000000000";

fn settings() -> Value {
    json!({"authorUrn": AUTHOR, "apiVersion": "202607"})
}

fn created() -> Reply {
    Reply::Json(StatusCode::CREATED, json!(null), vec![("x-restli-id", POST_URN)])
}

/// `acme` with a live LinkedIn connection to `mock`, calls timing out after `timeout`.
async fn live_app(mock: &MockApi, timeout: Duration) -> AppState {
    let mut app = fixture::app().await;
    app.registry = Registry::new(vec![Arc::new(CreatePost::new().with_timeout(timeout))]);
    let secrets = [("accessToken", TOKEN)];
    connect(
        &app,
        Connection::live("acme", Platform::Linkedin, settings(), &secrets, &mock.base_url),
    )
    .await;
    app
}

async fn call(app: &AppState, args: Value) -> ToolResult {
    invoke(app, &fixture::tenant("acme"), "req-1", NAME, args)
        .await
        .expect("a connected tool routes")
}

/// Posts `hello` to a mock answering `reply`.
async fn post_hello(reply: Reply) -> (ToolResult, MockApi) {
    let mock = MockApi::start(reply).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;
    let result = call(&app, json!({"text": "hello"})).await;
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
async fn a_post_is_published_as_the_connections_author_and_answers_its_urn() {
    let (result, mock) = post_hello(created()).await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.structured, json!({"postId": POST_URN}));
    assert!(
        !serde_json::to_string(&result)
            .expect("serializes")
            .contains(TOKEN)
    );
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/rest/posts");
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(request.headers["linkedin-version"], "202607");
    assert_eq!(request.headers["x-restli-protocol-version"], "2.0.0");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({
            "author": AUTHOR,
            "commentary": "hello",
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        })
    );
}

#[tokio::test]
async fn a_connections_only_post_says_so_and_its_markup_characters_are_escaped() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;

    let result = call(
        &app,
        json!({"text": "Q3 (draft) is out: https://example.com/q3 #reports", "visibility": "CONNECTIONS"}),
    )
    .await;

    assert!(!result.is_error, "{}", result.text);
    let body = &mock.received()[0].body;
    assert_eq!(body["visibility"], "CONNECTIONS");
    assert_eq!(
        body["commentary"],
        r"Q3 \(draft\) is out: https://example.com/q3 #reports"
    );
}

#[tokio::test]
async fn an_invalid_token_is_a_failed_result_with_the_service_error_code() {
    let (result, _mock) = post_hello(Reply::Json(
        StatusCode::UNAUTHORIZED,
        json!({"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"}),
        vec![],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["platform"], "linkedin");
    assert_eq!(error["code"], "65600");
    assert_eq!(
        result.text,
        "linkedin error 65600: Invalid access token (INVALID_ACCESS_TOKEN)"
    );
}

#[tokio::test]
async fn invalid_arguments_are_refused_naming_the_field_and_nothing_is_sent() {
    let mock = MockApi::start(created()).await;
    let app = live_app(&mock, CALL_TIMEOUT).await;
    let cases = [
        (json!({}), "text"),
        (json!({"text": "\n"}), "text"),
        (json!({"text": "x".repeat(3001)}), "text"),
        (json!({"text": "hi", "visibility": "public"}), "visibility"),
        (json!({"text": "hi", "visibility": "LOGGED_IN"}), "visibility"),
        (json!({"text": "hi", "author": "urn:li:person:1"}), "author"),
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
async fn a_rate_limit_reaches_the_caller_with_its_retry_time() {
    let (result, _mock) = post_hello(Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"status": 429, "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}),
        vec![("retry-after", "3600")],
    ))
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["retryAfterSecs"], 3600);
}

#[tokio::test]
async fn a_server_error_is_a_failed_result_named_by_its_status() {
    let (result, _mock) = post_hello(Reply::Raw(StatusCode::BAD_GATEWAY, "Bad Gateway")).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "http_502");
}

#[tokio::test]
async fn a_linkedin_that_never_answers_is_a_timeout() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, Duration::from_millis(300)).await;

    let result = call(&app, json!({"text": "hello"})).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "timeout");
    assert_eq!(error["platform"], "linkedin");
}

#[tokio::test]
async fn a_success_without_the_post_id_header_is_a_malformed_response() {
    let (result, _mock) = post_hello(Reply::Json(StatusCode::CREATED, json!(null), vec![])).await;

    assert_eq!(failure(&result)["code"], "malformed_response");
}

#[tokio::test]
async fn a_sandbox_post_is_recorded_in_the_outbox_and_calls_nothing() {
    let app = fixture::app().await;
    connect(&app, Connection::sandbox("acme", Platform::Linkedin, settings())).await;
    let tenant = fixture::tenant("acme");

    let result = invoke(&app, &tenant, "req-1", NAME, json!({"text": "hello"}))
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
    assert_eq!(event["platform"], "linkedin");
    assert_eq!(event["to"], "feed");
    assert_eq!(event["text"], "hello");
    assert_eq!(event["visibility"], "PUBLIC");
}
