//! The harness of the inbound tests (`webhook*.rs`, `delivery*.rs`): an app
//! over a chosen store with Meta and delivery settings of the test's
//! choosing, customers with real (non-sandbox) connections whose
//! credentials carry webhook secrets, signed webhook requests, and reads of
//! what ended up where.
//!
//! Every id is random, so tests share a Redis with each other and with
//! earlier runs without flushing it.

#![allow(dead_code, reason = "each test binary uses part of the harness")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hermes_crds::{
    Customer, CustomerSpec, Delivery, Plan, PlatformConnection, PlatformConnectionSpec, SecretKeyRef,
};
use hermes_server::app::{self, AppState, LocalAdmin, Settings};
use hermes_server::webhook::InboundSettings;
use hermes_server::webhook::signature::meta_signature;
use hermes_state::sql::{CustomerRecord, SqlRepo};
use hermes_state::store::{EmbeddedStore, RedisStore, Store, StreamEvent, StreamKind};
use hermes_state::tenancy::{self, SecretData};
use hermes_state::vault::Keyring;
use hermes_state::{ApiKeyHash, CustomerId};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The deployment's Meta app secret in test apps.
pub const APP_SECRET: &str = "deployment-app-secret";

/// The deployment's verify token in test apps.
pub const VERIFY_TOKEN: &str = "verify-me-please";

/// The webhook body limit of test apps: small, so the oversized test stays cheap.
pub const WEBHOOK_MAX_BODY_BYTES: usize = 256 * 1024;

/// Random lowercase hex.
pub fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A random WhatsApp phone number id (digits).
pub fn phone_number_id() -> String {
    format!("1{:015}", rand::random::<u64>() % 1_000_000_000_000_000)
}

/// A fresh customer id.
pub fn customer_id() -> CustomerId {
    CustomerId::new(format!("t-{}", random_hex())).expect("t-<hex> is a valid id")
}

/// The settings of test apps.
pub fn settings(inbound: InboundSettings) -> Settings {
    Settings {
        graph_api_version: "v27.0".into(),
        allowed_hosts: vec!["localhost".into()],
        max_body_bytes: 64 * 1024,
        public_url: Some("https://hermes.test".into()),
        meta_app_secret: Some(APP_SECRET.into()),
        meta_verify_token: Some(VERIFY_TOKEN.into()),
        inbound,
        ..Settings::default()
    }
}

/// The inbound settings of test apps: a small body limit, delivery off
/// (tests that deliver run their own workers).
pub fn inbound_settings() -> InboundSettings {
    let mut inbound = InboundSettings {
        max_body_bytes: WEBHOOK_MAX_BODY_BYTES,
        ..InboundSettings::default()
    };
    inbound.delivery.enabled = false;
    inbound
}

/// A test app and its backends.
#[derive(Debug, Clone)]
pub struct Harness {
    pub state: AppState,
    pub admin: Arc<LocalAdmin>,
}

impl Harness {
    /// An app over the embedded store.
    pub async fn embedded() -> Self {
        Self::over(Arc::new(EmbeddedStore::new()), inbound_settings()).await
    }

    /// An app over `store`.
    pub async fn over(store: Arc<dyn Store>, inbound: InboundSettings) -> Self {
        let sql = SqlRepo::connect("sqlite::memory:")
            .await
            .expect("in-memory sqlite opens");
        let keyring = Arc::new(Keyring::generate("test"));
        let admin = Arc::new(LocalAdmin::new(store.clone(), keyring.clone()));
        let state = AppState::new(store, sql, keyring, settings(inbound), admin.clone())
            .expect("the app state builds");
        Self { state, admin }
    }

    pub fn router(&self) -> Router {
        app::router(self.state.clone())
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// Registers a customer (index, SQL row, admin), with a delivery target
    /// when `delivery` is `(url, signing secret)`; returns its API key.
    pub async fn customer(&self, id: &CustomerId, delivery: Option<(&str, &str)>) -> String {
        let customer = customer_resource(id, delivery.map(|(url, _)| url));
        let summary = tenancy::customer_summary(&customer).expect("valid customer");
        let key = tenancy::generate_api_key().to_string();
        let hash = ApiKeyHash::of(&key);

        tenancy::apply_customer(self.store(), &summary, &hash)
            .await
            .expect("customer applies");
        let now = jiff::Timestamp::now();
        let record = CustomerRecord {
            id: summary.id.clone(),
            plan: summary.plan,
            active: summary.active,
            email: format!("ops@{id}.example"),
            api_key_hash: hash,
            requests_per_minute: None,
            tool_calls_per_month: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        self.state
            .sql
            .upsert_customer(&record)
            .await
            .expect("customer row writes");
        self.admin.add_customer(summary.id.clone(), customer.clone());

        let secret: Option<SecretData> =
            delivery.map(|(_, secret)| [("signingSecret", secret)].into_iter().collect());
        self.admin
            .apply_delivery(&customer, secret.as_ref())
            .await
            .expect("delivery applies");
        key
    }

    /// Connects WhatsApp for `customer` on `phone_number_id`, with the
    /// connection's own Meta `appSecret` when given.
    pub async fn connect_whatsapp(
        &self,
        customer: &CustomerId,
        phone_number_id: &str,
        app_secret: Option<&str>,
    ) {
        let mut secret = SecretData::new();
        secret.insert("accessToken", "EAAG-test-token");
        if let Some(app_secret) = app_secret {
            secret.insert("appSecret", app_secret);
        }
        let settings = json!({ "phoneNumberId": phone_number_id, "businessAccountId": "102290129340398" });
        self.connect(customer, "whatsapp", settings, secret).await;
    }

    /// Connects Instagram for `customer` on the account `user_id`.
    pub async fn connect_instagram(&self, customer: &CustomerId, user_id: &str) {
        let mut secret = SecretData::new();
        secret.insert("accessToken", "IGQ-test-token");
        self.connect(customer, "instagram", json!({ "userId": user_id }), secret)
            .await;
    }

    /// Connects Telegram for `customer` as connection `name` (in namespace
    /// `tests`) with the webhook secret token `token`; returns the route id.
    pub async fn connect_telegram(&self, customer: &CustomerId, name: &str, token: &str) -> String {
        let mut secret = SecretData::new();
        secret.insert("botToken", "123456:test-bot-token");
        secret.insert("webhookSecretToken", token);
        let connection = connection(
            customer,
            name,
            "telegram",
            json!({ "botUsername": "hermes_test_bot" }),
        );
        self.admin
            .apply(&customer_resource(customer, None), &connection, Some(&secret))
            .await
            .expect("telegram connection applies");
        format!("tests.{name}")
    }

    async fn connect(&self, customer: &CustomerId, platform: &str, settings: Value, secret: SecretData) {
        let name = format!("{customer}-{platform}");
        let connection = connection(customer, &name, platform, settings);
        self.admin
            .apply(&customer_resource(customer, None), &connection, Some(&secret))
            .await
            .expect("connection applies");
    }

    /// Every event of `customer`'s inbox.
    pub async fn inbox(&self, customer: &CustomerId) -> Vec<StreamEvent> {
        self.store()
            .read_events(StreamKind::Inbox, customer, None, 1000)
            .await
            .expect("the inbox reads")
    }

    /// Sends one request through the router.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        send(&self.router(), request).await
    }

    /// The metrics text.
    pub fn metrics(&self) -> String {
        self.state.metrics.render()
    }
}

pub fn customer_resource(id: &CustomerId, delivery_url: Option<&str>) -> Customer {
    let mut customer = Customer::new(
        id.as_str(),
        CustomerSpec {
            display_name: id.to_string(),
            email: format!("ops@{id}.example"),
            plan: Plan::Pro,
            suspended: false,
            api_key_secret_ref: None,
            delivery: delivery_url.map(|url| Delivery {
                url: url.to_owned(),
                signing_secret_ref: SecretKeyRef {
                    name: format!("{id}-delivery"),
                    key: "signingSecret".into(),
                },
            }),
            limits: None,
        },
    );
    customer.metadata.namespace = Some("tests".into());
    customer
}

fn connection(customer: &CustomerId, name: &str, platform: &str, settings: Value) -> PlatformConnection {
    let spec: PlatformConnectionSpec = serde_json::from_value(json!({
        "customerRef": customer.as_str(),
        "platform": platform,
        "sandbox": false,
        "secretRef": { "name": name },
        platform: settings,
    }))
    .expect("valid spec");
    let mut connection = PlatformConnection::new(name, spec);
    connection.metadata.namespace = Some("tests".into());
    connection
}

// --- payloads ---

/// A WhatsApp webhook body with one `messages` change per `(phone number id, value)`.
pub fn whatsapp_body(changes: &[(&str, Value)]) -> Vec<u8> {
    let changes: Vec<Value> = changes
        .iter()
        .map(|(phone_number_id, value)| {
            let mut value = value.clone();
            value["messaging_product"] = json!("whatsapp");
            value["metadata"] =
                json!({ "display_phone_number": "15550783881", "phone_number_id": phone_number_id });
            json!({ "field": "messages", "value": value })
        })
        .collect();
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "102290129340398", "changes": changes }] })
        .to_string()
        .into_bytes()
}

/// The `value` of a change with one inbound text message.
pub fn text_message(wamid: &str, text: &str) -> Value {
    json!({
        "contacts": [{ "profile": { "name": "Sheena" }, "wa_id": "16505551234" }],
        "messages": [{ "from": "16505551234", "id": wamid, "timestamp": "1749416383", "type": "text", "text": { "body": text } }],
    })
}

/// The `value` of a change with one delivery status.
pub fn status_update(wamid: &str, status: &str) -> Value {
    json!({
        "statuses": [{ "id": wamid, "status": status, "timestamp": "1749416400", "recipient_id": "16505551234" }],
    })
}

/// A random wamid.
pub fn wamid() -> String {
    format!("wamid.HBgL{}", random_hex())
}

// --- requests ---

/// A webhook POST with `signature` as `X-Hub-Signature-256`, if any.
pub fn webhook(path: &str, body: Vec<u8>, signature: Option<String>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header("x-hub-signature-256", signature);
    }
    builder.body(Body::from(body)).expect("valid request")
}

/// A webhook POST signed with `secret`.
pub fn signed(path: &str, body: Vec<u8>, secret: &str) -> Request<Body> {
    let signature = meta_signature(secret.as_bytes(), &body);
    webhook(path, body, Some(signature))
}

/// A Telegram webhook POST with the secret token, if any.
pub fn telegram(connection: &str, body: Vec<u8>, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(format!("/webhook/telegram/{connection}"))
        .header("host", "localhost")
        .header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("x-telegram-bot-api-secret-token", token);
    }
    builder.body(Body::from(body)).expect("valid request")
}

/// An authenticated API request.
pub fn api(method: Method, uri: &str, key: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {key}"));
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("valid request"),
        None => builder.body(Body::empty()).expect("valid request"),
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

/// Sends one request through a router.
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

// --- services ---

/// The value of a service variable, `None` to skip, or a panic when
/// `HERMES_REQUIRE_SERVICES=1` and it is missing.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ if std::env::var("HERMES_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{var} is not set and HERMES_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping: {var} is not set");
            None
        }
    }
}

/// The shared Redis of `REDIS_URL`, if configured.
pub async fn shared_redis() -> Option<Arc<dyn Store>> {
    let url = service_url("REDIS_URL")?;
    let store = RedisStore::connect_single(&url).await.expect("REDIS_URL answers");
    Some(Arc::new(store))
}

/// The shared Redis Cluster of `REDIS_CLUSTER_URLS`, if configured.
pub async fn shared_cluster() -> Option<Arc<dyn Store>> {
    let urls = service_url("REDIS_CLUSTER_URLS")?;
    let seeds: Vec<&str> = urls.split(',').map(str::trim).collect();
    let store = RedisStore::connect_cluster(&seeds)
        .await
        .expect("REDIS_CLUSTER_URLS answers");
    Some(Arc::new(store))
}

/// Waits until `check` holds, polling every 20 ms, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
