//! The Obsidian tools through `invoke`, against a recording mock of the plugin.

use std::sync::Arc;

use axum::http::StatusCode;
use hermes_state::store::StreamKind;
use serde_json::json;

use super::*;
use crate::app::AppState;
use crate::platforms::mock_api::{MockApi, Received, Reply};
use crate::tools::every_platform::{Connection, connect};
use crate::tools::{Registry, ToolResult, fixture, invoke};

const KEY: &str = "b8c3e1f0d2a94c57a1e6f03b9d7c2e48";

/// The four tools, each call to the plugin timing out after `timeout`.
fn registry(timeout: Duration) -> Registry {
    Registry::new(vec![
        Arc::new(PutNote::new().with_timeout(timeout)),
        Arc::new(AppendNote::new().with_timeout(timeout)),
        Arc::new(ReadNote::new().with_timeout(timeout)),
        Arc::new(SearchVault::new().with_timeout(timeout)),
    ])
}

/// `acme` with a live Obsidian connection whose plugin is `mock`.
async fn live_app(mock: &MockApi, timeout: Duration, verification: &str) -> AppState {
    let mut app = fixture::app().await;
    app.registry = registry(timeout);
    connect(
        &app,
        Connection {
            customer: "acme",
            platform: Platform::Obsidian,
            settings: json!({"baseUrl": mock.base_url, "certificateVerification": verification}),
            secrets: &[("apiKey", KEY)],
            sandbox: false,
            api_base: None,
        },
    )
    .await;
    app
}

/// `acme` with a sandbox Obsidian connection.
async fn sandbox_app() -> AppState {
    let mut app = fixture::app().await;
    app.registry = registry(CALL_TIMEOUT);
    connect(
        &app,
        Connection::sandbox(
            "acme",
            Platform::Obsidian,
            json!({"baseUrl": "https://127.0.0.1:27124"}),
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

/// Calls `tool` against a plugin answering `replies` in order, each call
/// to it timing out after `timeout`.
async fn call_against(
    replies: Vec<Reply>,
    timeout: Duration,
    tool: &str,
    args: Value,
) -> (ToolResult, Vec<Received>) {
    let mock = MockApi::start_script(replies).await;
    let app = live_app(&mock, timeout, "verify").await;
    let result = call(&app, tool, args).await;
    (result, mock.received())
}

/// [`call_against`] with the production deadline.
async fn against(replies: Vec<Reply>, tool: &str, args: Value) -> (ToolResult, Vec<Received>) {
    call_against(replies, CALL_TIMEOUT, tool, args).await
}

fn plan() -> Value {
    json!({"path": "Projects/Plan.md", "content": "# Plan\n"})
}

fn read_plan() -> Value {
    json!({"path": "Projects/Plan.md"})
}

fn no_content() -> Reply {
    Reply::Raw(StatusCode::NO_CONTENT, "")
}

fn plugin_error(status: StatusCode, code: i64, message: &str) -> Reply {
    Reply::Json(status, json!({"errorCode": code, "message": message}), vec![])
}

fn unauthorized() -> Reply {
    plugin_error(
        StatusCode::UNAUTHORIZED,
        40101,
        "Authorization required.  Find your API Key in the 'Local REST API with MCP' section of your Obsidian settings.",
    )
}

fn throttled() -> Reply {
    Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"errorCode": 42901, "message": "Too many failed authentication attempts."}),
        vec![("retry-after", "900")],
    )
}

/// The serialized result, after checking the key is nowhere in it.
fn without_key(result: &ToolResult) -> String {
    let serialized = serde_json::to_string(result).expect("a result serializes");
    assert!(!serialized.contains(KEY), "{serialized}");
    serialized
}

/// The error object of a failed result, after checking the key is nowhere in it.
fn failure(result: &ToolResult) -> &Value {
    let serialized = without_key(result);
    assert!(result.is_error, "{serialized}");
    &result.structured["error"]
}

#[tokio::test]
async fn a_note_is_put_at_its_vault_path_and_answers_the_path() {
    let (result, received) = against(vec![no_content()], PUT_NOTE, plan()).await;

    without_key(&result);
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.structured, json!({"path": "Projects/Plan.md"}));
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, "/vault/Projects/Plan.md");
    assert_eq!(request.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(request.headers["content-type"], "text/markdown");
    assert_eq!(request.text, "# Plan\n");
}

#[tokio::test]
async fn a_put_with_a_wrong_api_key_is_a_failed_result_with_code_40101() {
    let (result, _) = against(vec![unauthorized()], PUT_NOTE, plan()).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["platform"], "obsidian");
    assert_eq!(error["code"], "40101");
    assert!(
        result
            .text
            .starts_with("obsidian error 40101: Authorization required."),
        "{}",
        result.text
    );
}

#[tokio::test]
async fn note_paths_leaving_the_vault_or_naming_no_note_are_refused_naming_the_path() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, CALL_TIMEOUT, "verify").await;
    let paths = [
        "",
        "../secrets.md",
        "Projects/../../secrets.md",
        "./Plan.md",
        "/etc/passwd",
        "C:/Users/a.md",
        "Projects\\Plan.md",
        "Projects//Plan.md",
        "Projects/",
        "Plan\u{0}.md",
        "Plan\n.md",
        "Plan.md/heading/Tasks",
        "Projects/block/Plan.md",
        "frontmatter/Plan.md",
    ];

    for path in paths {
        let result = call(&app, PUT_NOTE, json!({"path": path, "content": "x"})).await;

        let error = failure(&result);
        assert_eq!(error["kind"], "invalid_argument", "{path:?}");
        assert_eq!(error["field"], "path", "{path:?}");
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn content_larger_than_a_note_can_be_read_back_is_refused_naming_the_content() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, CALL_TIMEOUT, "verify").await;
    let content = "x".repeat(MAX_CONTENT_BYTES + 1);

    let result = call(&app, PUT_NOTE, json!({"path": "Big.md", "content": content})).await;

    assert_eq!(failure(&result)["field"], "content");
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_rate_limited_put_tells_the_caller_when_to_retry() {
    let (result, _) = against(vec![throttled()], PUT_NOTE, plan()).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["retryAfterSecs"], 900);
    assert_eq!(result.text, "obsidian rate limit reached; retry after 900 s");
}

#[tokio::test]
async fn a_put_answered_5xx_is_a_failed_result_and_is_not_retried() {
    let (result, received) = against(
        vec![plugin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50020,
            "File operation failed.",
        )],
        PUT_NOTE,
        plan(),
    )
    .await;

    let error = failure(&result);
    assert_eq!(error["code"], "50020");
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn a_put_that_gets_no_answer_times_out_and_is_not_retried() {
    let (result, received) =
        call_against(vec![Reply::Hang], Duration::from_millis(200), PUT_NOTE, plan()).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "timeout");
    assert_eq!(result.text, "obsidian did not answer in time");
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn a_refusal_whose_body_is_not_the_plugins_error_is_named_by_its_status() {
    let (result, _) = against(
        vec![Reply::Raw(StatusCode::BAD_REQUEST, "<html>proxy error</html>")],
        PUT_NOTE,
        plan(),
    )
    .await;

    let error = failure(&result);
    assert_eq!(error["code"], "http_400");
}

#[tokio::test]
async fn a_sandbox_put_is_recorded_in_the_outbox_and_calls_nothing() {
    let app = sandbox_app().await;

    let result = call(&app, PUT_NOTE, plan()).await;

    assert!(!result.is_error, "{}", result.text);
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        result.structured,
        json!({"path": "Projects/Plan.md", "outboxId": format!("sandbox-{}", outbox[0].id), "sandbox": true})
    );
    let event = &outbox[0].event;
    assert_eq!(event["tool"], PUT_NOTE);
    assert_eq!(event["platform"], "obsidian");
    assert_eq!(event["to"], "Projects/Plan.md");
    assert_eq!(event["content"], "# Plan\n");
}

#[tokio::test]
async fn an_append_is_posted_to_the_vault_path_and_answers_the_path() {
    let (result, received) = against(
        vec![no_content()],
        APPEND_NOTE,
        json!({"path": "Inbox.md", "content": "- call Bob\n"}),
    )
    .await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.structured, json!({"path": "Inbox.md"}));
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/vault/Inbox.md");
    assert_eq!(request.headers["content-type"], "text/markdown");
    assert_eq!(request.text, "- call Bob\n");
}

#[tokio::test]
async fn an_empty_append_is_refused_naming_the_content() {
    let (result, received) = against(
        vec![no_content()],
        APPEND_NOTE,
        json!({"path": "Inbox.md", "content": ""}),
    )
    .await;

    assert_eq!(failure(&result)["field"], "content");
    assert!(received.is_empty());
}

#[tokio::test]
async fn an_append_answered_5xx_is_not_retried() {
    let (result, received) = against(
        vec![Reply::Raw(StatusCode::BAD_GATEWAY, "bad gateway")],
        APPEND_NOTE,
        json!({"path": "Inbox.md", "content": "- x"}),
    )
    .await;

    assert_eq!(failure(&result)["code"], "http_502");
    assert_eq!(received.len(), 1, "an append may have landed; it is not repeated");
}

#[tokio::test]
async fn a_note_is_read_as_markdown_and_answers_its_content() {
    let (result, received) = against(
        vec![Reply::Raw(StatusCode::OK, "# Plan\n- [ ] ship\n")],
        READ_NOTE,
        read_plan(),
    )
    .await;

    without_key(&result);
    assert_eq!(
        result.structured,
        json!({"path": "Projects/Plan.md", "content": "# Plan\n- [ ] ship\n"})
    );
    let request = &received[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/vault/Projects/Plan.md");
    assert_eq!(request.headers["accept"], "text/markdown");
    assert_eq!(request.headers["authorization"], format!("Bearer {KEY}"));
}

#[tokio::test]
async fn a_missing_note_is_a_failed_result_saying_note_not_found() {
    let (result, received) = against(
        vec![plugin_error(StatusCode::NOT_FOUND, 40400, "Not Found")],
        READ_NOTE,
        read_plan(),
    )
    .await;

    let error = failure(&result);
    assert_eq!(error["kind"], "platform_error");
    assert_eq!(error["code"], "40400");
    assert_eq!(
        result.text,
        "obsidian error 40400: note not found: `Projects/Plan.md`"
    );
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn a_read_with_a_wrong_api_key_is_a_failed_result_with_code_40101_and_is_not_retried() {
    let (result, received) = against(vec![unauthorized()], READ_NOTE, read_plan()).await;

    assert_eq!(failure(&result)["code"], "40101");
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn a_read_path_leaving_the_vault_is_refused_naming_the_path() {
    let (result, received) = against(
        vec![Reply::Hang],
        READ_NOTE,
        json!({"path": "../.obsidian/plugins/obsidian-local-rest-api/data.json"}),
    )
    .await;

    assert_eq!(failure(&result)["field"], "path");
    assert!(received.is_empty());
}

#[tokio::test]
async fn a_rate_limited_read_tells_the_caller_when_to_retry() {
    let (result, received) = against(vec![throttled()], READ_NOTE, read_plan()).await;

    let error = failure(&result);
    assert_eq!(error["kind"], "rate_limited");
    assert_eq!(error["retryAfterSecs"], 900);
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn a_read_answered_5xx_is_retried_once_and_may_then_succeed() {
    let (result, received) = against(
        vec![
            plugin_error(StatusCode::INTERNAL_SERVER_ERROR, 50000, "oops"),
            Reply::Raw(StatusCode::OK, "# Plan\n"),
        ],
        READ_NOTE,
        read_plan(),
    )
    .await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.structured["content"], "# Plan\n");
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_read_answered_5xx_twice_is_a_failed_result() {
    let (result, received) = against(
        vec![Reply::Raw(StatusCode::SERVICE_UNAVAILABLE, "busy")],
        READ_NOTE,
        read_plan(),
    )
    .await;

    assert_eq!(failure(&result)["code"], "http_503");
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_read_that_gets_no_answer_is_retried_once_then_times_out() {
    let (result, received) = call_against(
        vec![Reply::Hang],
        Duration::from_millis(200),
        READ_NOTE,
        read_plan(),
    )
    .await;

    assert_eq!(failure(&result)["kind"], "timeout");
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_read_of_a_file_that_is_not_text_is_a_failed_result() {
    let (result, _) = against(
        vec![Reply::Bytes(StatusCode::OK, b"\x89PNG\r\n\x1a\n\xff\xfe")],
        READ_NOTE,
        json!({"path": "Attachments/cat.png"}),
    )
    .await;

    let error = failure(&result);
    assert_eq!(error["code"], "not_text");
}

#[tokio::test]
async fn a_sandbox_read_answers_an_empty_note_marked_sandbox() {
    let app = sandbox_app().await;

    let result = call(&app, READ_NOTE, read_plan()).await;

    assert_eq!(
        result.structured,
        json!({"path": "Projects/Plan.md", "content": "", "sandbox": true})
    );
}

#[tokio::test]
async fn a_search_answers_the_best_hits_first_with_the_text_around_each_match() {
    let hits = json!([
        {"filename": "Inbox.md", "score": -1.5,
         "matches": [{"match": {"start": 0, "end": 4, "source": "filename"}, "context": "Inbox"}]},
        {"filename": "Projects/Plan.md", "score": -0.25,
         "matches": [{"match": {"start": 10, "end": 14}, "context": "the plan for Q1"}]},
    ]);
    let (result, received) = against(
        vec![Reply::Json(StatusCode::OK, hits, vec![])],
        SEARCH,
        json!({"query": "plan", "contextLength": 40}),
    )
    .await;

    without_key(&result);
    assert_eq!(
        result.structured,
        json!({
            "hits": [
                {"path": "Projects/Plan.md", "score": -0.25,
                 "matches": [{"context": "the plan for Q1", "start": 10, "end": 14}]},
                {"path": "Inbox.md", "score": -1.5,
                 "matches": [{"context": "Inbox", "start": 0, "end": 4, "source": "filename"}]},
            ],
            "total": 2,
        })
    );
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/search/simple/");
    assert_eq!(request.query.as_deref(), Some("query=plan&contextLength=40"));
    assert_eq!(request.headers["authorization"], format!("Bearer {KEY}"));
}

#[tokio::test]
async fn a_search_without_a_context_length_asks_for_100_characters() {
    let (_, received) = against(
        vec![Reply::Json(StatusCode::OK, json!([]), vec![])],
        SEARCH,
        json!({"query": "plan"}),
    )
    .await;

    assert_eq!(received[0].query.as_deref(), Some("query=plan&contextLength=100"));
}

#[tokio::test]
async fn a_search_lists_at_most_50_hits_and_counts_them_all() {
    let hits: Vec<Value> = (0..60)
        .map(|n| json!({"filename": format!("n{n}.md"), "score": -f64::from(n), "matches": []}))
        .collect();
    let (result, _) = against(
        vec![Reply::Json(StatusCode::OK, Value::Array(hits), vec![])],
        SEARCH,
        json!({"query": "n"}),
    )
    .await;

    assert_eq!(result.structured["hits"].as_array().map(Vec::len), Some(MAX_HITS));
    assert_eq!(result.structured["total"], 60);
    assert_eq!(result.structured["hits"][0]["path"], "n0.md");
}

#[tokio::test]
async fn invalid_search_arguments_are_refused_naming_the_field() {
    let mock = MockApi::start(Reply::Hang).await;
    let app = live_app(&mock, CALL_TIMEOUT, "verify").await;
    let cases = [
        (json!({}), "query"),
        (json!({"query": " "}), "query"),
        (json!({"query": "x".repeat(1001)}), "query"),
        (json!({"query": "plan", "contextLength": 0}), "contextLength"),
        (json!({"query": "plan", "contextLength": 1001}), "contextLength"),
        (json!({"query": "plan", "contextLength": -1}), "contextLength"),
    ];

    for (args, field) in cases {
        let result = call(&app, SEARCH, args.clone()).await;

        let error = failure(&result);
        assert_eq!(error["kind"], "invalid_argument", "{args}");
        assert_eq!(error["field"], field, "{args}");
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_search_with_a_wrong_api_key_is_a_failed_result_with_code_40101() {
    let (result, _) = against(vec![unauthorized()], SEARCH, json!({"query": "plan"})).await;

    assert_eq!(failure(&result)["code"], "40101");
}

#[tokio::test]
async fn a_rate_limited_search_tells_the_caller_when_to_retry() {
    let (result, _) = against(vec![throttled()], SEARCH, json!({"query": "plan"})).await;

    assert_eq!(failure(&result)["retryAfterSecs"], 900);
}

#[tokio::test]
async fn a_search_answered_5xx_twice_is_a_failed_result_after_one_retry() {
    let (result, received) = against(
        vec![plugin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50010,
            "Error encountered while calling Obsidian `prepareSimpleSearch` API.",
        )],
        SEARCH,
        json!({"query": "plan"}),
    )
    .await;

    assert_eq!(failure(&result)["code"], "50010");
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_search_that_gets_no_answer_times_out_after_one_retry() {
    let (result, received) = call_against(
        vec![Reply::Hang],
        Duration::from_millis(200),
        SEARCH,
        json!({"query": "plan"}),
    )
    .await;

    assert_eq!(failure(&result)["kind"], "timeout");
    assert_eq!(received.len(), 2);
}

#[tokio::test]
async fn a_search_answer_that_is_not_a_list_of_hits_is_a_malformed_response() {
    let (result, _) = against(
        vec![Reply::Json(StatusCode::OK, json!({"hits": []}), vec![])],
        SEARCH,
        json!({"query": "plan"}),
    )
    .await;

    assert_eq!(failure(&result)["code"], "malformed_response");
}

#[tokio::test]
async fn a_sandbox_search_answers_no_hits_marked_sandbox() {
    let app = sandbox_app().await;

    let result = call(&app, SEARCH, json!({"query": "plan"})).await;

    assert_eq!(
        result.structured,
        json!({"hits": [], "total": 0, "sandbox": true})
    );
}

#[tokio::test]
async fn a_connection_that_skips_certificate_verification_reaches_its_plugin() {
    let mock = MockApi::start(Reply::Raw(StatusCode::OK, "# Plan\n")).await;
    let app = live_app(&mock, CALL_TIMEOUT, "skip").await;

    let result = call(&app, READ_NOTE, read_plan()).await;

    assert!(!result.is_error, "{}", result.text);
    assert_eq!(mock.received().len(), 1);
}

#[test]
fn reads_are_read_only_and_a_put_is_an_idempotent_overwrite() {
    let registry = registry(CALL_TIMEOUT);
    let annotations = |name: &str| registry.get(name).expect("registered").spec().annotations;

    for name in [READ_NOTE, SEARCH] {
        assert!(annotations(name).read_only, "{name}");
        assert!(annotations(name).idempotent, "{name}");
    }
    assert!(annotations(PUT_NOTE).idempotent);
    assert!(annotations(PUT_NOTE).destructive);
    assert!(!annotations(APPEND_NOTE).idempotent);
    assert!(!annotations(APPEND_NOTE).destructive);
    for name in [PUT_NOTE, APPEND_NOTE, READ_NOTE, SEARCH] {
        assert!(annotations(name).open_world, "{name}");
        assert!(
            !(annotations(name).read_only && annotations(name).destructive),
            "{name}"
        );
    }
}
