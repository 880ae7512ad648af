//! The Obsidian client against a recording mock of the plugin.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::platforms::mock_api::{MockApi, Received, Reply, client};

const API_KEY_VALUE: &str = "b8c3e1f0d2a94c57a1e6f03b9d7c2e48";

/// The deadline of calls the mock answers.
const DEADLINE: Duration = Duration::from_secs(5);

fn plugin_error(status: StatusCode, code: i64, message: &str) -> Reply {
    Reply::Json(status, json!({ "errorCode": code, "message": message }), vec![])
}

fn no_content() -> Reply {
    Reply::Raw(StatusCode::NO_CONTENT, "")
}

/// Runs `call` against a mock answering `replies` in order; returns what
/// the call answered and what the mock received.
async fn against<T, F>(
    replies: Vec<Reply>,
    timeout: Duration,
    call: F,
) -> (Result<T, ToolError>, Vec<Received>)
where
    F: AsyncFnOnce(&Endpoint<'_>) -> Result<T, ToolError>,
{
    let mock = MockApi::start_script(replies).await;
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout,
    };
    let result = call(&endpoint).await;
    (result, mock.received())
}

#[tokio::test]
async fn a_note_is_put_at_its_vault_path_as_markdown_with_the_api_key() {
    let (result, received) = against(vec![no_content()], DEADLINE, async |endpoint| {
        put_note(endpoint, API_KEY_VALUE, "Projects/Plan.md", "# Plan\n").await
    })
    .await;

    result.expect("a 204 is a written note");
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, "/vault/Projects/Plan.md");
    assert_eq!(
        request.headers["authorization"],
        format!("Bearer {API_KEY_VALUE}")
    );
    assert_eq!(request.headers["content-type"], "text/markdown");
    assert_eq!(request.text, "# Plan\n");
}

#[tokio::test]
async fn each_segment_of_a_note_path_is_percent_encoded() {
    let (result, received) = against(vec![no_content()], DEADLINE, async |endpoint| {
        put_note(endpoint, API_KEY_VALUE, "Daily notes/Café #1?.md", "x").await
    })
    .await;

    result.expect("a 204 is a written note");
    assert_eq!(received[0].path, "/vault/Daily%20notes/Caf%C3%A9%20%231%3F.md");
    assert_eq!(received[0].query, None);
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it_before_the_vault() {
    let mock = MockApi::start(no_content()).await;
    let base_url = format!("{}/obsidian/", mock.base_url);
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &base_url,
        timeout: DEADLINE,
    };

    put_note(&endpoint, API_KEY_VALUE, "a.md", "x")
        .await
        .expect("a 204 is a written note");

    assert_eq!(mock.received()[0].path, "/obsidian/vault/a.md");
}

#[tokio::test]
async fn an_append_is_posted_to_the_vault_path() {
    let (result, received) = against(vec![no_content()], DEADLINE, async |endpoint| {
        append_note(endpoint, API_KEY_VALUE, "Inbox.md", "- call Bob\n").await
    })
    .await;

    result.expect("a 204 is an appended note");
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/vault/Inbox.md");
    assert_eq!(request.headers["content-type"], "text/markdown");
    assert_eq!(request.text, "- call Bob\n");
}

#[tokio::test]
async fn a_note_is_read_as_markdown() {
    let (result, received) = against(
        vec![Reply::Raw(StatusCode::OK, "---\ntags: [plan]\n---\n# Plan\n")],
        DEADLINE,
        async |endpoint| read_note(endpoint, API_KEY_VALUE, "Projects/Plan.md").await,
    )
    .await;

    assert_eq!(
        result.expect("a 200 is a note"),
        "---\ntags: [plan]\n---\n# Plan\n"
    );
    let request = &received[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/vault/Projects/Plan.md");
    assert_eq!(request.headers["accept"], "text/markdown");
    assert_eq!(
        request.headers["authorization"],
        format!("Bearer {API_KEY_VALUE}")
    );
}

#[tokio::test]
async fn a_missing_note_is_note_not_found() {
    let (result, received) = against(
        vec![plugin_error(StatusCode::NOT_FOUND, 40400, "Not Found")],
        DEADLINE,
        async |endpoint| read_note(endpoint, API_KEY_VALUE, "Nope.md").await,
    )
    .await;

    let error = result.expect_err("a 404 fails");
    assert!(
        matches!(&error, ToolError::Platform { platform: Platform::Obsidian, code, message }
            if code == "40400" && message == "note not found: `Nope.md`"),
        "{error:?}"
    );
    assert_eq!(received.len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_wrong_api_key_is_a_platform_error_with_code_40101() {
    let (result, _) = against(
        vec![plugin_error(
            StatusCode::UNAUTHORIZED,
            40101,
            "Authorization required.  Find your API Key in the 'Local REST API' section of your Obsidian settings.",
        )],
        DEADLINE,
        async |endpoint| put_note(endpoint, API_KEY_VALUE, "a.md", "x").await,
    )
    .await;

    let error = result.expect_err("a 401 fails");
    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "40101" && message.starts_with("Authorization required.")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_plugin_message_quoting_the_api_key_is_scrubbed() {
    let (result, _) = against(
        vec![plugin_error(
            StatusCode::BAD_REQUEST,
            40010,
            &format!("bad request with key {API_KEY_VALUE}"),
        )],
        DEADLINE,
        async |endpoint| put_note(endpoint, API_KEY_VALUE, "a.md", "x").await,
    )
    .await;

    let error = result.expect_err("a 400 fails");
    assert!(!error.to_string().contains(API_KEY_VALUE), "{error}");
    assert!(error.to_string().contains("[redacted]"), "{error}");
}

#[tokio::test]
async fn too_many_failed_authentications_are_rate_limited_for_as_long_as_retry_after_says() {
    let (result, _) = against(
        vec![Reply::Json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"errorCode": 42901, "message": "Too many failed authentication attempts."}),
            vec![("retry-after", "900")],
        )],
        DEADLINE,
        async |endpoint| read_note(endpoint, API_KEY_VALUE, "a.md").await,
    )
    .await;

    let error = result.expect_err("a 429 fails");
    assert!(
        matches!(
            error,
            ToolError::RateLimited {
                platform: Platform::Obsidian,
                retry_after_secs: Some(900)
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_read_answered_5xx_is_retried_once_and_may_then_succeed() {
    let (result, received) = against(
        vec![
            plugin_error(StatusCode::INTERNAL_SERVER_ERROR, 50000, "oops"),
            Reply::Raw(StatusCode::OK, "# Plan\n"),
        ],
        DEADLINE,
        async |endpoint| read_note(endpoint, API_KEY_VALUE, "Plan.md").await,
    )
    .await;

    assert_eq!(result.expect("the retry succeeds"), "# Plan\n");
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_read_answered_5xx_twice_fails_with_the_second_answer() {
    let (result, received) = against(
        vec![Reply::Raw(StatusCode::SERVICE_UNAVAILABLE, "busy")],
        DEADLINE,
        async |endpoint| read_note(endpoint, API_KEY_VALUE, "Plan.md").await,
    )
    .await;

    let error = result.expect_err("two 503s fail");
    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "http_503"),
        "{error:?}"
    );
    assert_eq!(received.len(), 2, "one retry, no more");
}

#[tokio::test]
async fn a_read_that_times_out_is_retried_once() {
    let (result, received) = against(vec![Reply::Hang], Duration::from_millis(200), async |endpoint| {
        read_note(endpoint, API_KEY_VALUE, "Plan.md").await
    })
    .await;

    let error = result.expect_err("no answer fails");
    assert!(
        matches!(error, ToolError::Timeout(Platform::Obsidian)),
        "{error:?}"
    );
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_write_answered_5xx_is_not_retried() {
    let (result, received) = against(
        vec![plugin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50020,
            "File operation failed.",
        )],
        DEADLINE,
        async |endpoint| append_note(endpoint, API_KEY_VALUE, "Inbox.md", "- x").await,
    )
    .await;

    let error = result.expect_err("a 500 fails");
    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "50020"),
        "{error:?}"
    );
    assert_eq!(received.len(), 1, "an append may have landed; it is not repeated");
}

#[tokio::test]
async fn a_file_that_is_not_text_is_refused_as_not_a_note() {
    let (result, _) = against(
        vec![Reply::Bytes(StatusCode::OK, b"\x89PNG\r\n\x1a\n\xff\xfe")],
        DEADLINE,
        async |endpoint| read_note(endpoint, API_KEY_VALUE, "picture.png").await,
    )
    .await;

    let error = result.expect_err("binary content fails");
    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "not_text" && message == "`picture.png` is not a text note"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_search_posts_the_query_and_context_length_and_reads_the_hits() {
    let hits = json!([
        {"filename": "Projects/Plan.md", "score": -0.25,
         "matches": [{"match": {"start": 10, "end": 14, "source": "content"}, "context": "the plan for Q1"}]},
        {"filename": "Inbox.md", "score": -1.5, "matches": []},
    ]);
    let (result, received) = against(
        vec![Reply::Json(StatusCode::OK, hits, vec![])],
        DEADLINE,
        async |endpoint| search(endpoint, API_KEY_VALUE, "plan & Q1", 40).await,
    )
    .await;

    let hits = result.expect("a 200 is a list of hits");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].filename, "Projects/Plan.md");
    assert_eq!(
        hits[0].matches,
        [SearchMatch {
            span: MatchSpan {
                start: 10,
                end: 14,
                source: Some("content".to_owned()),
            },
            context: "the plan for Q1".to_owned(),
        }]
    );
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/search/simple/");
    assert_eq!(
        request.query.as_deref(),
        Some("query=plan+%26+Q1&contextLength=40")
    );
    assert_eq!(
        request.headers["authorization"],
        format!("Bearer {API_KEY_VALUE}")
    );
}

#[tokio::test]
async fn a_search_answer_that_is_not_a_list_of_hits_is_a_malformed_response() {
    let (result, _) = against(
        vec![Reply::Json(StatusCode::OK, json!({"hits": []}), vec![])],
        DEADLINE,
        async |endpoint| search(endpoint, API_KEY_VALUE, "plan", 100).await,
    )
    .await;

    let error = result.expect_err("an unexpected shape fails");
    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[test]
fn the_unverified_client_is_built_once() {
    let first = unverified_client().expect("the client builds");
    let second = unverified_client().expect("the client builds");

    assert!(std::ptr::eq(first, second));
}
