//! A customer connected to every platform: [`connect`], which writes a
//! connection of any platform as the operator would, and the test that such
//! a customer's `tools/list` offers the platform tools with their schemas
//! and annotations.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use hermes_crds::{Customer, Platform, PlatformConnection};
use hermes_state::tenancy::{self, SecretData};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::fixture;
use crate::app::AppState;

/// A connection to write with [`connect`].
#[derive(Debug, Clone)]
pub struct Connection<'a> {
    /// The customer.
    pub customer: &'a str,
    /// The platform.
    pub platform: Platform,
    /// The platform's settings block, camelCase as in a manifest.
    pub settings: Value,
    /// The Secret's fields; none for a sandbox without a Secret.
    pub secrets: &'a [(&'a str, &'a str)],
    /// A sandbox connection.
    pub sandbox: bool,
    /// The connection's `apiBase`.
    pub api_base: Option<&'a str>,
}

impl<'a> Connection<'a> {
    /// A sandbox connection of `customer` without a Secret.
    pub fn sandbox(customer: &'a str, platform: Platform, settings: Value) -> Self {
        Self {
            customer,
            platform,
            settings,
            secrets: &[],
            sandbox: true,
            api_base: None,
        }
    }

    /// A live connection of `customer` to the platform API at `api_base`.
    pub fn live(
        customer: &'a str,
        platform: Platform,
        settings: Value,
        secrets: &'a [(&'a str, &'a str)],
        api_base: &'a str,
    ) -> Self {
        Self {
            customer,
            platform,
            settings,
            secrets,
            sandbox: false,
            api_base: Some(api_base),
        }
    }
}

/// Writes a connection as the operator would: plan, seal, publish Ready.
pub async fn connect(app: &AppState, connection: Connection<'_>) {
    let customer: Customer = serde_json::from_value(json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "Customer",
        "metadata": { "name": connection.customer, "namespace": "default" },
        "spec": { "displayName": connection.customer, "email": "ops@example.com" },
    }))
    .expect("the test Customer is valid");

    let platform = connection.platform.as_str();
    let mut spec = json!({
        "customerRef": connection.customer,
        "platform": platform,
        "sandbox": connection.sandbox,
    });
    spec[platform] = connection.settings;
    if !connection.secrets.is_empty() {
        spec["secretRef"] = json!({ "name": platform });
    }
    if let Some(api_base) = connection.api_base {
        spec["apiBase"] = json!(api_base);
    }
    let resource: PlatformConnection = serde_json::from_value(json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "PlatformConnection",
        "metadata": { "name": format!("{}-{platform}", connection.customer), "namespace": "default" },
        "spec": spec,
    }))
    .expect("the test PlatformConnection is valid");

    let secret =
        (!connection.secrets.is_empty()).then(|| SecretData::from_iter(connection.secrets.iter().copied()));
    let plan =
        tenancy::plan_connection(&customer, &resource, secret.as_ref()).expect("the test connection plans");
    tenancy::apply_connection(app.store.as_ref(), &app.keyring, &plan, &[])
        .await
        .expect("the test connection applies");
}

/// A valid settings block of every platform.
fn settings_of(platform: Platform) -> Value {
    match platform {
        Platform::Email => {
            json!({"smtpHost": "smtp.example.com", "smtpPort": 465, "fromAddress": "a@example.com"})
        }
        Platform::Whatsapp => json!({"phoneNumberId": "3001", "businessAccountId": "3002"}),
        Platform::Linkedin => json!({"authorUrn": "urn:li:person:8675309", "apiVersion": "202607"}),
        Platform::Telegram => json!({"botUsername": "hermes_test_bot"}),
        Platform::Discord => json!({"applicationId": "1139400000000000000"}),
        Platform::Instagram => json!({"userId": "17841400000000000"}),
        Platform::X => json!({}),
        Platform::Obsidian => json!({"baseUrl": "https://127.0.0.1:27124"}),
    }
}

/// Lets every request through as the tenant `acme`, as the authentication
/// middleware would.
async fn as_acme(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(fixture::tenant("acme"));
    next.run(request).await
}

#[tokio::test]
async fn tools_list_for_a_customer_on_every_platform_offers_the_telegram_discord_x_and_linkedin_tools() {
    let app = fixture::app().await;
    for platform in Platform::ALL {
        connect(&app, Connection::sandbox("acme", platform, settings_of(platform))).await;
    }
    let request = Request::builder()
        .method("POST")
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).to_string(),
        ))
        .expect("the request is valid");

    let response = crate::mcp::router(app.clone())
        .layer(middleware::from_fn(as_acme))
        .oneshot(request)
        .await
        .expect("the router is infallible");

    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body is readable")
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("tools/list answers JSON");
    let tools = body["result"]["tools"].as_array().expect("a list of tools");
    let listed: Vec<&str> = tools.iter().filter_map(|tool| tool["name"].as_str()).collect();
    let registered: Vec<&str> = app.registry.all().map(|tool| tool.spec().name).collect();
    assert_eq!(listed, registered, "every tool is offered");

    let expected = [
        ("telegram_send_message", vec!["chatId", "text"]),
        ("discord_send_message", vec!["content"]),
        ("x_post", vec!["text"]),
        ("linkedin_create_post", vec!["text"]),
    ];
    for (name, required) in expected {
        let tool = tools
            .iter()
            .find(|tool| tool["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"));
        assert!(tool["title"].is_string(), "{name}");
        assert!(
            tool["description"].as_str().is_some_and(|text| text.len() > 40),
            "{name}"
        );
        let input = &tool["inputSchema"];
        assert_eq!(input["type"], "object", "{name}");
        assert_eq!(input["additionalProperties"], false, "{name}");
        assert_eq!(input["required"], json!(required), "{name}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{name}");
        assert_eq!(
            tool["annotations"],
            json!({
                "title": tool["title"],
                "readOnlyHint": false,
                "destructiveHint": false,
                "idempotentHint": false,
                "openWorldHint": true,
            }),
            "{name}"
        );
    }
    let telegram = &tools[listed
        .iter()
        .position(|name| *name == "telegram_send_message")
        .expect("listed")];
    let properties = &telegram["inputSchema"]["properties"];
    assert_eq!(properties["text"]["maxLength"], 4096);
    assert_eq!(
        properties["parseMode"]["enum"],
        json!(["MarkdownV2", "HTML", "none"])
    );
    assert_eq!(properties["chatId"]["type"], json!(["integer", "string"]));
    let linkedin = &tools[listed
        .iter()
        .position(|name| *name == "linkedin_create_post")
        .expect("listed")];
    assert_eq!(
        linkedin["inputSchema"]["properties"]["visibility"]["enum"],
        json!(["PUBLIC", "CONNECTIONS"])
    );
}
