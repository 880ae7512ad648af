//! The LinkedIn client against a recording mock of the Posts API.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::platforms::mock_api::{MockApi, Reply, client};

const TOKEN: &str = "AQV-test-member-token-0123456789";
const AUTHOR: &str = "urn:li:person:8675309";
const VERSION: &str = "202607";
const POST_URN: &str = "urn:li:share:7140000000000000000";

fn hello() -> TextPost<'static> {
    TextPost {
        author: AUTHOR,
        text: "hello",
        visibility: Visibility::Public,
    }
}

fn created() -> Reply {
    Reply::Json(StatusCode::CREATED, json!(null), vec![("x-restli-id", POST_URN)])
}

fn linkedin_error(status: StatusCode, service_error_code: i64, code: &str, message: &str) -> Reply {
    Reply::Json(
        status,
        json!({"status": status.as_u16(), "serviceErrorCode": service_error_code, "code": code, "message": message}),
        vec![],
    )
}

async fn post_to(mock: &MockApi, post: &TextPost<'_>, timeout: Duration) -> Result<String, ToolError> {
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout,
    };
    create_post(&endpoint, VERSION, TOKEN, post).await
}

async fn post_hello(reply: Reply) -> Result<String, ToolError> {
    let mock = MockApi::start(reply).await;
    post_to(&mock, &hello(), Duration::from_secs(5)).await
}

/// The error, after checking that nothing of it names the token.
fn without_token(error: ToolError) -> ToolError {
    assert!(!error.to_string().contains(TOKEN), "{error}");
    assert!(!format!("{error:?}").contains(TOKEN), "{error:?}");
    error
}

#[tokio::test]
async fn a_text_post_is_published_with_the_versioned_restli_headers_and_its_urn_read_from_x_restli_id() {
    let mock = MockApi::start(created()).await;

    let urn = post_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect("a created post is answered with its URN");

    assert_eq!(urn, POST_URN);
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/rest/posts");
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(request.headers["linkedin-version"], VERSION);
    assert_eq!(request.headers["x-restli-protocol-version"], "2.0.0");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({
            "author": AUTHOR,
            "commentary": "hello",
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        })
    );
}

#[tokio::test]
async fn a_post_for_connections_only_says_so_and_its_text_is_escaped() {
    let mock = MockApi::start(created()).await;
    let post = TextPost {
        text: "Shipped (finally)!",
        visibility: Visibility::Connections,
        ..hello()
    };

    post_to(&mock, &post, Duration::from_secs(5))
        .await
        .expect("a created post is answered");

    let body = &mock.received()[0].body;
    assert_eq!(body["visibility"], "CONNECTIONS");
    assert_eq!(body["commentary"], r"Shipped \(finally\)!");
}

#[test]
fn reserved_characters_are_escaped_but_urls_and_hashtags_are_left_alone() {
    assert_eq!(
        escape_commentary(r"a_b *c* [d] {e} <f> |g| ~h~ @i \j"),
        r"a\_b \*c\* \[d\] \{e\} \<f\> \|g\| \~h\~ \@i \\j"
    );
    assert_eq!(
        escape_commentary("see https://example.com/a_(b)~c and #rust, C# #1"),
        r"see https://example.com/a_(b)~c and #rust, C\# #1"
    );
    assert_eq!(escape_commentary("# heading"), r"\# heading");
    assert_eq!(escape_commentary("plain text, ünïcödé"), "plain text, ünïcödé");
}

#[tokio::test]
async fn an_invalid_token_is_a_platform_error_with_the_service_error_code() {
    let error = post_hello(linkedin_error(
        StatusCode::UNAUTHORIZED,
        65600,
        "INVALID_ACCESS_TOKEN",
        "Invalid access token",
    ))
    .await
    .expect_err("a 401 fails");

    assert!(
        matches!(&without_token(error), ToolError::Platform { platform: Platform::Linkedin, code, message }
            if code == "65600" && message == "Invalid access token (INVALID_ACCESS_TOKEN)"),
        "a 401 keeps the service error code"
    );
}

#[tokio::test]
async fn a_missing_permission_without_a_service_code_is_coded_by_its_status() {
    let reply = Reply::Json(
        StatusCode::FORBIDDEN,
        json!({"status": 403, "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260701"}),
        vec![],
    );

    let error = post_hello(reply).await.expect_err("a 403 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "http_403" && message.starts_with("Not enough permissions")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_429_is_rate_limited_for_as_long_as_retry_after_says() {
    let reply = Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"status": 429, "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}),
        vec![("retry-after", "3600")],
    );

    let error = post_hello(reply).await.expect_err("a 429 fails");

    assert!(
        matches!(
            without_token(error),
            ToolError::RateLimited {
                platform: Platform::Linkedin,
                retry_after_secs: Some(3600)
            }
        ),
        "rate limited for an hour"
    );
}

#[tokio::test]
async fn a_server_error_without_an_error_body_is_named_by_its_status() {
    let error = post_hello(Reply::Raw(StatusCode::INTERNAL_SERVER_ERROR, "oops"))
        .await
        .expect_err("a 500 fails");

    assert!(
        matches!(&without_token(error), ToolError::Platform { code, .. } if code == "http_500"),
        "a 500 is named by its status"
    );
}

#[tokio::test]
async fn a_platform_that_never_answers_times_out() {
    let mock = MockApi::start(Reply::Hang).await;

    let error = post_to(&mock, &hello(), Duration::from_millis(200))
        .await
        .expect_err("no answer fails");

    assert!(
        matches!(without_token(error), ToolError::Timeout(Platform::Linkedin)),
        "a hanging platform times out"
    );
}

#[tokio::test]
async fn a_success_without_x_restli_id_is_a_malformed_response() {
    let error = post_hello(Reply::Raw(StatusCode::CREATED, ""))
        .await
        .expect_err("a success without an id fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_message_quoting_the_token_is_redacted() {
    let message = format!("token {TOKEN} was revoked");

    let error = post_hello(linkedin_error(
        StatusCode::UNAUTHORIZED,
        65601,
        "REVOKED_ACCESS_TOKEN",
        &message,
    ))
    .await
    .expect_err("a 401 fails");

    assert!(without_token(error).to_string().contains("[redacted]"));
}

#[tokio::test]
async fn a_version_that_cannot_be_a_header_fails_before_anything_is_sent() {
    let mock = MockApi::start(created()).await;
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout: Duration::from_secs(5),
    };

    let error = create_post(&endpoint, "2026\n07", TOKEN, &hello())
        .await
        .expect_err("a version with a line break is refused");

    assert!(matches!(error, ToolError::Internal), "{error:?}");
    assert!(mock.received().is_empty());
}
