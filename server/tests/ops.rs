//! Health, readiness, metrics and request ids.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, get, send, send_whatsapp};

fn open(uri: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("valid request")
}

#[tokio::test]
async fn healthz_answers_without_a_key() {
    let app = TestApp::embedded().await;

    let answer = send(&app.router(), open("/healthz")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_when_store_and_sql_answer() {
    let app = TestApp::embedded().await;

    let answer = send(&app.router(), open("/readyz")).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["store"], "ok");
    assert_eq!(answer.body["sql"], "ok");
}

#[tokio::test]
async fn readyz_answers_503_when_sql_is_gone() {
    let app = TestApp::embedded().await;
    app.state.sql.close().await;

    let answer = send(&app.router(), open("/readyz")).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["sql"], "unavailable");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_tool_calls_by_outcome() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    app.connect_sandbox_whatsapp("acme", "106540352242922").await;
    send_whatsapp(&app.router(), &key).await;

    let answer = send(&app.router(), open("/metrics")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.text.contains(
            r#"hermes_http_requests_total{route="/api/tools/{name}",method="POST",status="200"} 1"#
        ),
        "{}",
        answer.text
    );
    assert!(
        answer.text.contains(r#"tool="whatsapp_send_message""#),
        "{}",
        answer.text
    );
    assert!(
        answer
            .text
            .contains("hermes_http_request_duration_seconds_bucket")
    );
}

#[tokio::test]
async fn a_request_id_is_generated_and_returned() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;

    let answer = send(&app.router(), get("/api/usage", &key)).await;

    let id = answer.headers["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 36, "a uuid: {id}");
}

#[tokio::test]
async fn a_client_request_id_is_kept_and_audited() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    app.connect_sandbox_whatsapp("acme", "106540352242922").await;
    let mut request = common::post(
        "/api/tools/whatsapp_send_message",
        &key,
        serde_json::json!({ "to": "15551234567", "message": "hi" }),
    );
    request
        .headers_mut()
        .insert("x-request-id", "trace-me-123".parse().expect("valid value"));

    let answer = send(&app.router(), request).await;
    let audit = send(&app.router(), get("/api/audit", &key)).await;

    assert_eq!(answer.headers["x-request-id"], "trace-me-123");
    assert_eq!(
        audit.body["entries"][0]["requestId"], "trace-me-123",
        "{}",
        audit.text
    );
}

#[tokio::test]
async fn an_unusable_client_request_id_is_replaced() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    let mut request = get("/api/usage", &key);
    request
        .headers_mut()
        .insert("x-request-id", "not ok; {injected}".parse().expect("valid value"));

    let answer = send(&app.router(), request).await;

    let id = answer.headers["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 36, "a fresh uuid: {id}");
}
