//! One customer's key never reaches another customer's data: a test per endpoint.
//!
//! Each test gives `globex` something on the endpoint, then reads it with
//! `acme`'s key and finds only acme's own.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, get, request, send, send_whatsapp};
use serde_json::json;

async fn two_customers() -> (TestApp, String, String) {
    let app = TestApp::embedded().await;
    let acme = app.active_customer("acme").await;
    let globex = app.active_customer("globex").await;
    (app, acme, globex)
}

#[tokio::test]
async fn connections_of_another_customer_are_not_listed() {
    let (app, acme, _globex) = two_customers().await;
    app.connect_sandbox_whatsapp("globex", "109876543210987").await;

    let answer = send(&app.router(), get("/api/connections", &acme)).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["customerId"], "acme");
    let whatsapp = &answer.body["connections"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["platform"] == "whatsapp")
        .cloned()
        .expect("whatsapp is listed");
    assert_eq!(whatsapp["connected"], false);
}

#[tokio::test]
async fn tools_of_another_customers_connection_are_neither_listed_nor_callable() {
    let (app, acme, _globex) = two_customers().await;
    app.connect_sandbox_whatsapp("globex", "109876543210987").await;

    let listed = send(&app.router(), get("/api/tools", &acme)).await;
    let called = send_whatsapp(&app.router(), &acme).await;

    let names: Vec<_> = listed.body["tools"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!names.contains(&"whatsapp_send_message".to_owned()), "{names:?}");
    assert_eq!(called.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn usage_of_another_customer_is_not_counted() {
    let (app, acme, globex) = two_customers().await;
    app.connect_sandbox_whatsapp("globex", "109876543210987").await;
    send_whatsapp(&app.router(), &globex).await;

    let answer = send(&app.router(), get("/api/usage", &acme)).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["customerId"], "acme");
    assert_eq!(answer.body["toolCalls"], 0);
    assert_eq!(
        answer.body["requests"], 1,
        "only this request of acme's: {}",
        answer.text
    );
}

#[tokio::test]
async fn audit_entries_of_another_customer_are_not_returned() {
    let (app, acme, globex) = two_customers().await;
    app.connect_sandbox_whatsapp("globex", "109876543210987").await;
    let sent = send_whatsapp(&app.router(), &globex).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);

    let theirs = send(&app.router(), get("/api/audit", &globex)).await;
    let ours = send(&app.router(), get("/api/audit", &acme)).await;

    assert_eq!(
        theirs.body["entries"].as_array().map(Vec::len),
        Some(1),
        "{}",
        theirs.text
    );
    assert_eq!(ours.status, StatusCode::OK);
    assert_eq!(ours.body["entries"], json!([]));
}

#[tokio::test]
async fn outbox_messages_of_another_customer_are_not_returned() {
    let (app, acme, globex) = two_customers().await;
    app.connect_sandbox_whatsapp("globex", "109876543210987").await;
    send_whatsapp(&app.router(), &globex).await;

    let answer = send(&app.router(), get("/api/outbox", &acme)).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["events"], json!([]));
}

#[tokio::test]
async fn disconnecting_never_touches_another_customers_connection() {
    let (app, acme, globex) = two_customers().await;
    app.connect_sandbox_whatsapp("globex", "109876543210987").await;

    let answer = send(
        &app.router(),
        request(Method::DELETE, "/api/connections/whatsapp", Some(&acme), None),
    )
    .await;
    let theirs = send(&app.router(), get("/api/tools", &globex)).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(theirs.text.contains("whatsapp_send_message"), "{}", theirs.text);
}

#[tokio::test]
async fn connecting_an_account_another_customer_holds_is_refused() {
    let (app, acme, _globex) = two_customers().await;
    app.connect_sandbox_whatsapp("globex", "109876543210987").await;
    let body = json!({
        "sandbox": true,
        "settings": { "phoneNumberId": "109876543210987", "businessAccountId": "1" },
    });

    let answer = send(&app.router(), common::post("/api/connect/whatsapp", &acme, body)).await;

    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert!(
        !answer.text.contains("globex"),
        "the owner is not revealed: {}",
        answer.text
    );
}
