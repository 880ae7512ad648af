//! Test state for the tool, platform and MCP tests: an embedded store, an
//! in-memory SQL database, a fresh keyring, and connections written with the
//! operator's own tenancy code.

use std::sync::Arc;

use hermes_crds::{Customer, Plan, Platform, PlatformConnection};
use hermes_state::CustomerId;
use hermes_state::sql::SqlRepo;
use hermes_state::store::EmbeddedStore;
use hermes_state::tenancy::{self, SecretData};
use hermes_state::vault::Keyring;
use serde_json::json;

use crate::app::{AppState, NoAdmin, Settings};
use crate::auth::Tenant;

/// The Graph API version the tests' settings name.
pub const GRAPH_VERSION: &str = "v27.0";

/// The settings of a test server on loopback.
pub fn settings() -> Settings {
    Settings {
        graph_api_version: GRAPH_VERSION.to_owned(),
        allowed_hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        allowed_origins: vec!["https://app.example:443".to_owned()],
        max_body_bytes: 64 * 1024,
        ..Settings::default()
    }
}

/// Fresh state: nothing stored, the standard registry.
pub async fn app() -> AppState {
    let store = Arc::new(EmbeddedStore::new());
    let keyring = Arc::new(Keyring::generate("k1"));
    let sql = SqlRepo::connect("sqlite::memory:")
        .await
        .expect("an in-memory SQLite database opens");
    AppState::new(store, sql, keyring, settings(), Arc::new(NoAdmin)).expect("the test HTTP client builds")
}

/// A tenant on the free plan.
pub fn tenant(id: &str) -> Tenant {
    Tenant {
        id: CustomerId::new(id).expect("test customer ids are valid"),
        plan: Plan::Free,
        requests_per_minute: None,
        tool_calls_per_month: None,
    }
}

/// A WhatsApp connection to write with [`connect`].
#[derive(Debug, Clone)]
pub struct WhatsappConnection<'a> {
    /// The customer.
    pub customer: &'a str,
    /// The phone number id (also the inbound route, so unique per test store).
    pub phone_number_id: &'a str,
    /// The access token; `None` for a sandbox without a Secret.
    pub access_token: Option<&'a str>,
    /// A sandbox connection.
    pub sandbox: bool,
    /// The connection's `apiBase`.
    pub api_base: Option<&'a str>,
}

/// Writes a WhatsApp connection as the operator would: plan, seal, publish Ready.
pub async fn connect_whatsapp(app: &AppState, connection: WhatsappConnection<'_>) {
    let customer: Customer = serde_json::from_value(json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "Customer",
        "metadata": { "name": connection.customer, "namespace": "default" },
        "spec": { "displayName": connection.customer, "email": "ops@example.com" },
    }))
    .expect("the test Customer is valid");

    let mut spec = json!({
        "customerRef": connection.customer,
        "platform": "whatsapp",
        "sandbox": connection.sandbox,
        "whatsapp": { "phoneNumberId": connection.phone_number_id, "businessAccountId": "2041" },
    });
    if connection.access_token.is_some() {
        spec["secretRef"] = json!({ "name": "whatsapp" });
    }
    if let Some(api_base) = connection.api_base {
        spec["apiBase"] = json!(api_base);
    }
    let resource: PlatformConnection = serde_json::from_value(json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "PlatformConnection",
        "metadata": { "name": format!("{}-whatsapp", connection.customer), "namespace": "default" },
        "spec": spec,
    }))
    .expect("the test PlatformConnection is valid");

    let secret: Option<SecretData> = connection
        .access_token
        .map(|token| SecretData::from_iter([("accessToken", token)]));
    let plan =
        tenancy::plan_connection(&customer, &resource, secret.as_ref()).expect("the test connection plans");
    tenancy::apply_connection(app.store.as_ref(), &app.keyring, &plan, &[])
        .await
        .expect("the test connection applies");
}

/// Publishes a connection that is not ready, as the operator does after a failure.
pub async fn fail_connection(
    app: &AppState,
    customer: &str,
    platform: Platform,
    reason: &str,
    message: &str,
) {
    let customer = CustomerId::new(customer).expect("test customer ids are valid");
    tenancy::mark_connection_failed(app.store.as_ref(), &customer, platform, false, reason, message)
        .await
        .expect("the failed state is published");
}
