//! The harness the server's integration tests share: an app over embedded
//! state (or Redis), customers with API keys, sandbox connections, and
//! requests sent through the router with `oneshot`.

#![allow(dead_code, reason = "each test binary uses part of the harness")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hermes_crds::{Customer, CustomerSpec, LimitOverrides, Plan, PlatformConnection, PlatformConnectionSpec};
use hermes_server::app::{self, AppState, LocalAdmin, Settings};
use hermes_state::sql::{CustomerRecord, SqlRepo};
use hermes_state::store::{EmbeddedStore, Store};
use hermes_state::vault::Keyring;
use hermes_state::{ApiKeyHash, CustomerId, tenancy};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The body limit of test apps: small, so the oversized-body test stays cheap.
pub const TEST_MAX_BODY_BYTES: usize = 64 * 1024;

/// An app and what the tests need to set it up.
#[derive(Debug, Clone)]
pub struct TestApp {
    pub state: AppState,
    pub admin: Arc<LocalAdmin>,
}

/// The limits of a test customer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub requests_per_minute: Option<u32>,
    pub tool_calls_per_month: Option<u64>,
}

pub fn settings() -> Settings {
    Settings {
        graph_api_version: "v27.0".into(),
        allowed_hosts: vec!["localhost".into()],
        max_body_bytes: TEST_MAX_BODY_BYTES,
        public_url: Some("https://hermes.test".into()),
        ..Settings::default()
    }
}

impl TestApp {
    /// An app over the embedded store and an in-memory SQLite.
    pub async fn embedded() -> Self {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new());
        let sql = SqlRepo::connect("sqlite::memory:")
            .await
            .expect("in-memory sqlite opens");
        Self::over(store, sql).await
    }

    /// An app over the given backends.
    pub async fn over(store: Arc<dyn Store>, sql: SqlRepo) -> Self {
        let keyring = Arc::new(Keyring::generate("test"));
        let admin = Arc::new(LocalAdmin::new(store.clone(), keyring.clone()));
        let state =
            AppState::new(store, sql, keyring, settings(), admin.clone()).expect("the app state builds");
        Self { state, admin }
    }

    pub fn router(&self) -> Router {
        app::router(self.state.clone())
    }

    /// Registers a customer (index, SQL row, admin) and returns its API key.
    pub async fn customer(&self, id: &str, plan: Plan, limits: Limits, suspended: bool) -> String {
        let customer = customer_resource(id, plan, limits, suspended);
        let summary = tenancy::customer_summary(&customer).expect("valid customer");
        let key = tenancy::generate_api_key().to_string();
        let hash = ApiKeyHash::of(&key);

        tenancy::apply_customer(self.state.store.as_ref(), &summary, &hash)
            .await
            .expect("customer applies");
        self.state
            .sql
            .upsert_customer(&record(&summary, &hash))
            .await
            .expect("customer row writes");
        self.admin.add_customer(summary.id.clone(), customer);
        key
    }

    /// A plain active customer on the pro plan.
    pub async fn active_customer(&self, id: &str) -> String {
        self.customer(id, Plan::Pro, Limits::default(), false).await
    }

    /// Gives the customer a sandbox WhatsApp connection.
    pub async fn connect_sandbox_whatsapp(&self, id: &str, phone_number_id: &str) {
        let customer = customer_resource(id, Plan::Pro, Limits::default(), false);
        let connection = whatsapp_connection(id, phone_number_id);
        self.admin
            .apply(&customer, &connection, None)
            .await
            .expect("sandbox connection applies");
    }
}

pub fn customer_resource(id: &str, plan: Plan, limits: Limits, suspended: bool) -> Customer {
    let mut customer = Customer::new(
        id,
        CustomerSpec {
            display_name: id.to_owned(),
            email: format!("ops@{id}.example"),
            plan,
            suspended,
            api_key_secret_ref: None,
            delivery: None,
            limits: Some(LimitOverrides {
                requests_per_minute: limits.requests_per_minute,
                tool_calls_per_month: limits.tool_calls_per_month,
            }),
        },
    );
    customer.metadata.namespace = Some("tests".into());
    customer
}

pub fn whatsapp_connection(customer: &str, phone_number_id: &str) -> PlatformConnection {
    let spec: PlatformConnectionSpec = serde_json::from_value(json!({
        "customerRef": customer,
        "platform": "whatsapp",
        "sandbox": true,
        "whatsapp": { "phoneNumberId": phone_number_id, "businessAccountId": "102290129340398" },
    }))
    .expect("valid spec");
    let mut connection = PlatformConnection::new(&format!("{customer}-whatsapp"), spec);
    connection.metadata.namespace = Some("tests".into());
    connection
}

fn record(summary: &hermes_state::store::CustomerSummary, hash: &ApiKeyHash) -> CustomerRecord {
    let now = jiff::Timestamp::now();
    CustomerRecord {
        id: summary.id.clone(),
        plan: summary.plan,
        active: summary.active,
        email: format!("ops@{}.example", summary.id),
        api_key_hash: hash.clone(),
        requests_per_minute: summary.requests_per_minute,
        tool_calls_per_month: summary.tool_calls_per_month,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Sends one request through the router.
pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body reads")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// A request with the API key as a Bearer token.
pub fn request(method: Method, uri: &str, key: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost");
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("valid request"),
        None => builder.body(Body::empty()).expect("valid request"),
    }
}

pub fn get(uri: &str, key: &str) -> Request<Body> {
    request(Method::GET, uri, Some(key), None)
}

pub fn post(uri: &str, key: &str, body: Value) -> Request<Body> {
    request(Method::POST, uri, Some(key), Some(body))
}

/// A legacy-era MCP `tools/call`, as the dev banner's curl sends it.
pub fn mcp_tool_call(key: &str, name: &str, arguments: Value) -> Request<Body> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": { "name": name, "arguments": arguments },
    });
    Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(body.to_string()))
        .expect("valid request")
}

/// Sends a sandbox WhatsApp message over REST; returns the answer.
pub async fn send_whatsapp(router: &Router, key: &str) -> Answer {
    send(
        router,
        post(
            "/api/tools/whatsapp_send_message",
            key,
            json!({ "to": "15551234567", "message": "hello" }),
        ),
    )
    .await
}

/// A customer id no other test run uses, for tests on shared backends.
pub fn unique_customer(prefix: &str) -> CustomerId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    CustomerId::new(format!("{prefix}-{nanos}-{}", std::process::id())).expect("valid id")
}
