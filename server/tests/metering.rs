//! The rate limit, the monthly quota and the durable usage ledger.

mod common;

use axum::http::{StatusCode, header};
use common::{Limits, TestApp, get, mcp_tool_call, send, send_whatsapp};
use hermes_crds::Plan;
use hermes_server::meter;
use hermes_state::CustomerId;
use serde_json::json;

#[tokio::test]
async fn a_customer_over_its_rate_limit_gets_429_with_retry_after() {
    let app = TestApp::embedded().await;
    // Three a minute allows a burst of one: the second request waits 20 s.
    let limits = Limits {
        requests_per_minute: Some(3),
        ..Limits::default()
    };
    let key = app.customer("acme", Plan::Free, limits, false).await;

    let first = send(&app.router(), get("/api/usage", &key)).await;
    let second = send(&app.router(), get("/api/usage", &key)).await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = second.headers[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(second.body["error"]["retryAfterSeconds"], retry_after);
}

#[tokio::test]
async fn a_rate_limited_mcp_call_gets_a_json_rpc_error_with_retry_after() {
    let app = TestApp::embedded().await;
    let limits = Limits {
        requests_per_minute: Some(3),
        ..Limits::default()
    };
    let key = app.customer("acme", Plan::Free, limits, false).await;
    send(&app.router(), get("/api/usage", &key)).await;

    let answer = send(
        &app.router(),
        mcp_tool_call(&key, "whatsapp_send_message", json!({})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(answer.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(answer.body["jsonrpc"], "2.0");
    assert!(
        answer.body["error"]["data"]["retryAfterSeconds"]
            .as_u64()
            .is_some(),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn a_customer_over_its_monthly_quota_gets_429_saying_so() {
    let app = TestApp::embedded().await;
    let limits = Limits {
        tool_calls_per_month: Some(2),
        ..Limits::default()
    };
    let key = app.customer("acme", Plan::Free, limits, false).await;
    app.connect_sandbox_whatsapp("acme", "106540352242922").await;

    let first = send_whatsapp(&app.router(), &key).await;
    let second = send_whatsapp(&app.router(), &key).await;
    let third = send_whatsapp(&app.router(), &key).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.body["error"]["code"], "quota_exceeded");
    let message = third.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("monthly quota of 2 tool calls is used up"),
        "{message}"
    );
}

#[tokio::test]
async fn usage_reports_requests_tool_calls_and_the_quota() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    app.connect_sandbox_whatsapp("acme", "106540352242922").await;
    send_whatsapp(&app.router(), &key).await;

    let answer = send(&app.router(), get("/api/usage", &key)).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["plan"], "pro");
    assert_eq!(answer.body["period"], meter::current_period());
    assert_eq!(answer.body["requests"], 2);
    assert_eq!(answer.body["toolCalls"], 1);
    assert_eq!(answer.body["quota"]["toolCallsPerMonth"], 250_000);
    assert_eq!(answer.body["quota"]["remainingToolCalls"], 249_999);
}

#[tokio::test]
async fn flushing_writes_admitted_usage_to_the_ledger() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    app.connect_sandbox_whatsapp("acme", "106540352242922").await;
    send_whatsapp(&app.router(), &key).await;
    send(&app.router(), get("/api/usage", &key)).await;

    let written = meter::flush(&app.state).await;

    assert_eq!(written, 1);
    let acme = CustomerId::new("acme").expect("valid id");
    let row = app
        .state
        .sql
        .usage(&acme, &meter::current_period())
        .await
        .expect("ledger readable")
        .expect("a ledger row");
    assert_eq!((row.requests, row.tool_calls), (2, 1));
    assert_eq!(
        app.state.meter.pending(&acme, &meter::current_period()),
        meter::Delta::default()
    );
}

#[tokio::test]
async fn a_second_flush_adds_only_what_came_since() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    send(&app.router(), get("/api/usage", &key)).await;
    meter::flush(&app.state).await;
    send(&app.router(), get("/api/usage", &key)).await;

    meter::flush(&app.state).await;

    let acme = CustomerId::new("acme").expect("valid id");
    let row = app
        .state
        .sql
        .usage(&acme, &meter::current_period())
        .await
        .expect("ledger readable")
        .expect("a ledger row");
    assert_eq!(row.requests, 2);
}

#[tokio::test]
async fn two_instances_flushing_to_one_ledger_add_up() {
    // One SQL database (DATABASE_URL when set, else a SQLite file), two
    // instances each with their own in-process deltas.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = match std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty()) {
        Some(url) => url,
        None => format!("sqlite://{}", dir.path().join("ledger.db").display()),
    };
    let sql = hermes_state::sql::SqlRepo::connect(&url)
        .await
        .expect("the database answers");
    let store: std::sync::Arc<dyn hermes_state::store::Store> =
        std::sync::Arc::new(hermes_state::store::EmbeddedStore::new());
    let a = TestApp::over(store.clone(), sql.clone()).await;
    let b = TestApp::over(store, sql).await;
    let id = common::unique_customer("ledger");
    let key = a.active_customer(id.as_str()).await;

    send(&a.router(), get("/api/usage", &key)).await;
    send(&b.router(), get("/api/usage", &key)).await;
    send(&b.router(), get("/api/usage", &key)).await;
    meter::flush(&a.state).await;
    meter::flush(&b.state).await;

    let row = a
        .state
        .sql
        .usage(&id, &meter::current_period())
        .await
        .expect("ledger readable")
        .expect("a ledger row");
    assert_eq!(row.requests, 3);
}
