//! Bad input gets a 4xx with a JSON error, never a 500 or a panic.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{TEST_MAX_BODY_BYTES, TestApp, get, post, request, send};
use serde_json::json;

async fn app_with_key() -> (TestApp, String) {
    let app = TestApp::embedded().await;
    let key = app.active_customer("acme").await;
    app.connect_sandbox_whatsapp("acme", "106540352242922").await;
    (app, key)
}

fn raw(
    method: Method,
    uri: &str,
    key: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {key}"));
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(body.into()).expect("valid request")
}

#[tokio::test]
async fn malformed_json_gets_400() {
    let (app, key) = app_with_key().await;
    for uri in ["/api/tools/whatsapp_send_message", "/api/connect/whatsapp"] {
        let answer = send(
            &app.router(),
            raw(Method::POST, uri, &key, Some("application/json"), "{\"to\": "),
        )
        .await;

        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}: {}", answer.text);
        assert_eq!(answer.body["error"]["code"], "malformed_json", "{uri}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_415() {
    let (app, key) = app_with_key().await;
    for uri in ["/api/tools/whatsapp_send_message", "/api/connect/whatsapp"] {
        let answer = send(
            &app.router(),
            raw(Method::POST, uri, &key, Some("text/plain"), "to=1"),
        )
        .await;

        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{uri}: {}",
            answer.text
        );
        assert_eq!(answer.body["error"]["code"], "unsupported_media_type");
    }
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let (app, key) = app_with_key().await;
    let big = format!("{{\"message\": \"{}\"}}", "x".repeat(TEST_MAX_BODY_BYTES + 1));
    for uri in [
        "/api/tools/whatsapp_send_message",
        "/api/connect/whatsapp",
        "/mcp",
    ] {
        let answer = send(
            &app.router(),
            raw(Method::POST, uri, &key, Some("application/json"), big.clone()),
        )
        .await;

        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
    }
}

#[tokio::test]
async fn an_oversized_body_without_a_length_gets_413() {
    let (app, key) = app_with_key().await;
    let chunks = vec![
        Ok::<_, std::io::Error>(vec![b' '; TEST_MAX_BODY_BYTES]),
        Ok(b"{}".to_vec()),
    ];
    let body = Body::from_stream(futures::stream::iter(chunks));

    let answer = send(
        &app.router(),
        raw(
            Method::POST,
            "/api/connect/whatsapp",
            &key,
            Some("application/json"),
            body,
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answer.text);
}

#[tokio::test]
async fn an_unknown_route_gets_a_json_404() {
    let (app, key) = app_with_key().await;

    let answer = send(&app.router(), get("/api/nothing-here", &key)).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_wrong_method_gets_a_json_405() {
    let (app, key) = app_with_key().await;

    let answer = send(
        &app.router(),
        request(Method::PUT, "/api/usage", Some(&key), None),
    )
    .await;

    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn an_unknown_platform_gets_404_naming_it() {
    let (app, key) = app_with_key().await;

    let answer = send(&app.router(), post("/api/connect/myspace", &key, json!({}))).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.text.contains("myspace"), "{}", answer.text);
}

#[tokio::test]
async fn arguments_that_are_not_an_object_get_422() {
    let (app, key) = app_with_key().await;

    let answer = send(
        &app.router(),
        post("/api/tools/whatsapp_send_message", &key, json!([1, 2])),
    )
    .await;

    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text);
}

#[tokio::test]
async fn invalid_tool_arguments_are_a_tool_error_not_a_server_error() {
    let (app, key) = app_with_key().await;

    let answer = send(
        &app.router(),
        post("/api/tools/whatsapp_send_message", &key, json!({"to": 5})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["isError"], true);
}

#[tokio::test]
async fn invalid_audit_parameters_get_400_naming_them() {
    let (app, key) = app_with_key().await;
    for (uri, name) in [
        ("/api/audit?from=yesterday", "from"),
        ("/api/audit?limit=501", "limit"),
        ("/api/audit?limit=abc", "limit"),
        (
            "/api/audit?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        ("/api/outbox?limit=0", "limit"),
    ] {
        let answer = send(&app.router(), get(uri, &key)).await;

        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}: {}", answer.text);
        assert!(answer.text.contains(name), "{uri}: {}", answer.text);
    }
}

#[tokio::test]
async fn a_connect_body_error_names_the_field_and_never_the_secret() {
    let (app, key) = app_with_key().await;
    let cases = [
        (
            json!({ "secrets": { "accessToken": 12345 } }),
            "secrets.accessToken",
        ),
        (json!({ "secrets": "hunter2-secret" }), "secrets"),
        (json!({ "secrets": { "passwrd": "hunter2-secret" } }), "passwrd"),
        (
            json!({ "settings": { "phoneNumberId": "1" }, "secrets": { "accessToken": "hunter2-secret" } }),
            "businessAccountId",
        ),
    ];
    for (body, field) in cases {
        let answer = send(&app.router(), post("/api/connect/whatsapp", &key, body.clone())).await;

        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.text
        );
        assert!(answer.text.contains(field), "{body}: {}", answer.text);
        assert!(
            !answer.text.contains("hunter2") && !answer.text.contains("12345"),
            "{}",
            answer.text
        );
    }
}

#[tokio::test]
async fn mcp_without_a_key_gets_401_not_a_crash() {
    let (app, _key) = app_with_key().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("content-type", "application/json")
        .body(Body::from("not json at all"))
        .expect("valid request");

    let answer = send(&app.router(), request).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["jsonrpc"], "2.0");
}
