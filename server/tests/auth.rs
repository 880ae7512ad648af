//! Authentication on `/api` and `/mcp`: which keys get in, and what the others get.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Limits, TestApp, get, mcp_tool_call, request, send};
use hermes_crds::Plan;
use hermes_state::ApiKeyHash;
use serde_json::json;

const CHALLENGE: &str =
    r#"Bearer resource_metadata="https://hermes.test/.well-known/oauth-protected-resource""#;

#[tokio::test]
async fn a_bearer_key_reaches_the_api() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;

    let answer = send(&app.router(), get("/api/connections", &key)).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["customerId"], "acme");
}

#[tokio::test]
async fn an_x_api_key_header_reaches_the_api() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    let request = Request::builder()
        .uri("/api/usage")
        .header("x-api-key", &key)
        .body(Body::empty())
        .expect("valid request");

    let answer = send(&app.router(), request).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["customerId"], "acme");
}

#[tokio::test]
async fn an_unknown_key_gets_401_with_the_resource_metadata_challenge() {
    let app = TestApp::embedded().await;
    app.active_customer("acme").await;

    let answer = send(&app.router(), get("/api/tools", "hk_not-a-key")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers[header::WWW_AUTHENTICATE], CHALLENGE);
    assert_eq!(answer.body["error"]["code"], "unknown_api_key");
}

#[tokio::test]
async fn a_missing_key_gets_401_with_the_challenge() {
    let app = TestApp::embedded().await;

    let answer = send(&app.router(), request(Method::GET, "/api/tools", None, None)).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers[header::WWW_AUTHENTICATE], CHALLENGE);
    assert_eq!(answer.body["error"]["code"], "missing_api_key");
}

#[tokio::test]
async fn a_malformed_authorization_header_gets_401() {
    let app = TestApp::embedded().await;
    for value in ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "Bearer two words"] {
        let request = Request::builder()
            .uri("/api/tools")
            .header("authorization", value)
            .body(Body::empty())
            .expect("valid request");

        let answer = send(&app.router(), request).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(answer.body["error"]["code"], "malformed_api_key", "{value}");
    }
}

#[tokio::test]
async fn a_suspended_customer_gets_403() {
    let app = TestApp::embedded().await;
    let key = app.customer("acme", Plan::Pro, Limits::default(), true).await;

    let answer = send(&app.router(), get("/api/tools", &key)).await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body["error"]["code"], "customer_suspended");
}

#[tokio::test]
async fn an_unknown_key_on_mcp_gets_a_json_rpc_error() {
    let app = TestApp::embedded().await;

    let answer = send(
        &app.router(),
        mcp_tool_call("hk_nobody", "whatsapp_send_message", json!({})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers[header::WWW_AUTHENTICATE], CHALLENGE);
    assert_eq!(answer.body["jsonrpc"], "2.0");
    assert!(answer.body["error"]["code"].is_i64(), "{}", answer.text);
    assert_eq!(answer.body["error"]["data"]["code"], "unknown_api_key");
}

#[tokio::test]
async fn the_protected_resource_metadata_names_the_mcp_endpoint() {
    let app = TestApp::embedded().await;
    let request = Request::builder()
        .uri("/.well-known/oauth-protected-resource")
        .body(Body::empty())
        .expect("valid request");

    let answer = send(&app.router(), request).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["resource"], "https://hermes.test/mcp");
    assert_eq!(answer.body["bearer_methods_supported"], json!(["header"]));
}

#[tokio::test]
async fn a_key_missing_from_the_index_is_found_in_sql_and_indexed_again() {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    let hash = ApiKeyHash::of(&key);
    app.state
        .store
        .delete_api_key(&hash)
        .await
        .expect("index entry removed");

    let answer = send(&app.router(), get("/api/usage", &key)).await;

    assert_eq!(answer.status, StatusCode::OK);
    let indexed = app.state.store.get_api_key(&hash).await.expect("index readable");
    assert_eq!(
        indexed.map(|summary| summary.id.to_string()),
        Some("acme".to_owned())
    );
}
