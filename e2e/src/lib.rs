//! End-to-end tests of Hermes: the whole server on a real socket, state
//! written by the operator's tenancy code, platform APIs mocked on loopback,
//! and real clients (rmcp's own, and plain HTTP).
//!
//! This library holds what the tests in `tests/` share:
//!
//! - [`Hermes`]: the server's full router (authentication, rate limits,
//!   MCP, REST) on `127.0.0.1:0`, over embedded state and in-memory SQLite;
//! - [`Hermes::add_customer`] and [`Hermes::connect_whatsapp`]: tenants and
//!   connections written exactly as the operator writes them;
//! - [`MockGraph`]: a Graph API stand-in that records every request.
//!
//! Everything listens on loopback only and stops when dropped.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use hermes_crds::{Customer, PlatformConnection};
use hermes_server::app::{AppState, NoAdmin, Settings};
use hermes_state::ApiKeyHash;
use hermes_state::sql::SqlRepo;
use hermes_state::store::EmbeddedStore;
use hermes_state::tenancy::{self, SecretData};
use hermes_state::vault::Keyring;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The Graph API version the test server is configured with.
pub const GRAPH_API_VERSION: &str = "v27.0";

/// Installs the TLS crypto provider reqwest needs before any client is
/// built (reqwest is compiled without one, as in the server).
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// A Hermes server running in this process on a loopback port.
#[derive(Debug)]
pub struct Hermes {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The server's state, for seeding and for reading what it wrote.
    pub app: AppState,
    server: JoinHandle<()>,
}

impl Hermes {
    /// Starts the full router over fresh embedded state.
    ///
    /// # Errors
    ///
    /// When the database, the state or the listener cannot be set up.
    pub async fn start() -> Result<Self> {
        install_crypto_provider();
        let settings = Settings {
            graph_api_version: GRAPH_API_VERSION.to_owned(),
            allowed_hosts: vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            max_body_bytes: 1024 * 1024,
            ..Settings::default()
        };
        let sql = SqlRepo::connect("sqlite::memory:").await.context("open SQLite")?;
        let app = AppState::new(
            Arc::new(EmbeddedStore::new()),
            sql,
            Arc::new(Keyring::generate("e2e")),
            settings,
            Arc::new(NoAdmin),
        )
        .context("build the server state")?;

        let listener = TcpListener::bind("127.0.0.1:0").await.context("bind loopback")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let router = hermes_server::app::router(app.clone());
        let server = tokio::spawn(async move {
            // The server runs until the test drops it; an error here ends the test's requests.
            let _ = axum::serve(listener, router).await;
        });

        Ok(Self {
            base_url,
            app,
            server,
        })
    }

    /// Writes a Customer with this API key, as the operator does.
    ///
    /// # Errors
    ///
    /// When the Customer is invalid or the store refuses.
    pub async fn add_customer(&self, name: &str, api_key: &str) -> Result<Customer> {
        let customer: Customer = serde_json::from_value(json!({
            "apiVersion": "hermes.squaremcp.com/v1alpha1",
            "kind": "Customer",
            "metadata": { "name": name, "namespace": "default" },
            "spec": { "displayName": name, "email": format!("ops@{name}.example"), "plan": "pro" },
        }))?;
        let summary = tenancy::customer_summary(&customer)?;
        tenancy::apply_customer(self.app.store.as_ref(), &summary, &ApiKeyHash::of(api_key)).await?;
        Ok(customer)
    }

    /// Writes a live (non-sandbox) WhatsApp connection of `customer`, with
    /// its Secret's `accessToken` and an `apiBase` override, as the operator does.
    ///
    /// # Errors
    ///
    /// When the connection does not plan or the store refuses.
    pub async fn connect_whatsapp(
        &self,
        customer: &Customer,
        phone_number_id: &str,
        access_token: &str,
        api_base: &str,
    ) -> Result<()> {
        let name = customer.metadata.name.clone().unwrap_or_default();
        let connection: PlatformConnection = serde_json::from_value(json!({
            "apiVersion": "hermes.squaremcp.com/v1alpha1",
            "kind": "PlatformConnection",
            "metadata": { "name": format!("{name}-whatsapp"), "namespace": "default" },
            "spec": {
                "customerRef": name,
                "platform": "whatsapp",
                "secretRef": { "name": format!("{name}-whatsapp") },
                "apiBase": api_base,
                "whatsapp": { "phoneNumberId": phone_number_id, "businessAccountId": "102290129340398" },
            },
        }))?;
        let secret = SecretData::from_iter([("accessToken", access_token)]);

        let plan = tenancy::plan_connection(customer, &connection, Some(&secret))?;
        tenancy::apply_connection(self.app.store.as_ref(), &self.app.keyring, &plan, &[]).await?;
        Ok(())
    }

    /// The MCP endpoint's URL.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }
}

impl Drop for Hermes {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One request the mock Graph API received.
#[derive(Clone, Debug)]
pub struct GraphRequest {
    /// The Graph API version in the path, e.g. `v27.0`.
    pub version: String,
    /// The phone number id in the path.
    pub phone_number_id: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The JSON body (`Null` when the body is not JSON).
    pub body: Value,
}

/// A Graph API stand-in serving `POST /{version}/{phone-number-id}/messages`
/// on a loopback port, answering each send with a fresh wamid.
#[derive(Debug)]
pub struct MockGraph {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    received: Arc<Mutex<Vec<GraphRequest>>>,
    server: JoinHandle<()>,
}

impl MockGraph {
    /// Starts the mock.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> Result<Self> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let router = axum::Router::new()
            .route("/{version}/{phone_number_id}/messages", post(send_message))
            .with_state(Arc::clone(&received));

        let listener = TcpListener::bind("127.0.0.1:0").await.context("bind loopback")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            base_url,
            received,
            server,
        })
    }

    /// Every send received so far, oldest first.
    pub fn received(&self) -> Vec<GraphRequest> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The wamid the mock answers its `n`th send with (0-based).
    pub fn wamid(n: usize) -> String {
        format!("wamid.E2E{n}")
    }
}

impl Drop for MockGraph {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn send_message(
    State(received): State<Arc<Mutex<Vec<GraphRequest>>>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let to = body["to"].clone();

    let mut received = received.lock().unwrap_or_else(PoisonError::into_inner);
    let wamid = MockGraph::wamid(received.len());
    received.push(GraphRequest {
        version,
        phone_number_id,
        headers,
        body,
    });

    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": wamid, "message_status": "accepted" }],
    }))
}
