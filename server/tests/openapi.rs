//! The committed `server/openapi.json` matches what the code generates.
//!
//! After changing the REST API, regenerate it with
//! `HERMES_BLESS=1 cargo test -p hermes-server --test openapi`.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, send};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = hermes_server::rest::openapi_pretty_json();

    if std::env::var("HERMES_BLESS").as_deref() == Ok("1") {
        std::fs::write(COMMITTED, &generated).expect("server/openapi.json is writable");
        return;
    }

    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "server/openapi.json is out of date; run `HERMES_BLESS=1 cargo test -p hermes-server --test openapi`"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_covers_every_api_route() {
    let document: serde_json::Value =
        serde_json::from_str(&hermes_server::rest::openapi_pretty_json()).expect("valid JSON");

    assert_eq!(document["openapi"], "3.1.0");
    for path in [
        "/api/tools",
        "/api/tools/{name}",
        "/api/connections",
        "/api/connect/{platform}",
        "/api/connections/{platform}",
        "/api/usage",
        "/api/audit",
        "/api/outbox",
        "/api/inbox",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} is not documented");
    }
}

#[tokio::test]
async fn the_document_is_served_at_openapi_json() {
    let app = TestApp::embedded().await;
    let request = Request::builder()
        .uri("/openapi.json")
        .body(Body::empty())
        .expect("valid request");

    let answer = send(&app.router(), request).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text, hermes_server::rest::openapi_pretty_json());
}
