//! The benchmark's customer, written as the operator would write it.
//!
//! The customer has a random id, so runs against a shared Redis never meet,
//! the `enterprise` plan, and limit overrides far above anything two cores
//! can send ([`REQUESTS_PER_MINUTE`], [`TOOL_CALLS_PER_MONTH`]): the rate
//! limit and the quota are still checked on every request, as in
//! production, but never refuse one. Its WhatsApp connection is live by
//! default, with no `apiBase` of its own: the server's
//! `HERMES_WHATSAPP_API_BASE` points it at the mock.
//!
//! The same resources reach the server one of two ways: [`BenchTenant::seed`]
//! applies them to Redis and SQL with the tenancy code (and
//! [`BenchTenant::remove`] takes them out again), or
//! [`BenchTenant::write_manifests`] writes them as files for
//! `hermes-server dev`, which applies them to its embedded state.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use hermes_crds::{Customer, PlatformConnection};
use hermes_state::sql::{CustomerRecord, SqlRepo};
use hermes_state::store::{Route, Store};
use hermes_state::tenancy::{self, SecretData};
use hermes_state::vault::Keyring;
use hermes_state::{ApiKeyHash, CustomerId};
use jiff::Timestamp;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::target::ConnectionMode;

/// The rate-limit override: a million requests a second.
pub const REQUESTS_PER_MINUTE: u32 = 60_000_000;

/// The quota override: a trillion tool calls a month.
pub const TOOL_CALLS_PER_MONTH: u64 = 1_000_000_000_000;

/// The key id of the benchmark's keyring.
const KEY_ID: &str = "bench";

/// The access token of the WhatsApp connection (the mock accepts any).
const ACCESS_TOKEN: &str = "hermes-bench-access-token";

/// The benchmark's customer and its WhatsApp connection.
#[derive(Debug)]
pub struct BenchTenant {
    id: CustomerId,
    api_key: Zeroizing<String>,
    customer: Customer,
    connection: PlatformConnection,
    phone_number_id: String,
    routes: Vec<Route>,
}

impl BenchTenant {
    /// A customer with a random id and API key, and its WhatsApp connection
    /// (a random phone number id, so no other customer's route is in the way).
    ///
    /// # Errors
    ///
    /// When the resources do not deserialize, which is a bug here.
    pub fn generate(mode: ConnectionMode) -> Result<Self> {
        let name = format!("bench-{:08x}", rand::random::<u32>());
        let phone_number_id = format!("9{:014}", rand::random::<u64>() % 100_000_000_000_000);

        let customer: Customer =
            serde_json::from_value(customer_resource(&name, None)).context("the benchmark's Customer")?;
        let connection: PlatformConnection =
            serde_json::from_value(connection_resource(&name, &phone_number_id, mode))
                .context("the benchmark's PlatformConnection")?;
        Ok(Self {
            id: tenancy::customer_summary(&customer)?.id,
            api_key: tenancy::generate_api_key(),
            customer,
            connection,
            phone_number_id,
            routes: Vec::new(),
        })
    }

    /// The customer id.
    pub fn id(&self) -> &CustomerId {
        &self.id
    }

    /// The customer's API key.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The phone number id of its WhatsApp connection: the route of its webhooks.
    pub fn phone_number_id(&self) -> &str {
        &self.phone_number_id
    }

    /// Writes the customer and its connection with the tenancy code: the
    /// API-key index and sealed credentials in `store`, the customer row in
    /// `sql`. On failure, what was written is removed.
    ///
    /// # Errors
    ///
    /// When the connection does not plan or a backend refuses a write.
    pub async fn seed(&mut self, store: &dyn Store, sql: &SqlRepo, keyring: &Keyring) -> Result<()> {
        let written = self.write(store, sql, keyring).await;
        if written.is_err() {
            let _ = self.remove(store, sql).await;
        }
        written
    }

    async fn write(&mut self, store: &dyn Store, sql: &SqlRepo, keyring: &Keyring) -> Result<()> {
        let summary = tenancy::customer_summary(&self.customer)?;
        let hash = ApiKeyHash::of(&self.api_key);
        tenancy::apply_customer(store, &summary, &hash)
            .await
            .context("writing the customer to Redis")?;

        let now = Timestamp::now();
        let record = CustomerRecord {
            id: summary.id.clone(),
            plan: summary.plan,
            active: summary.active,
            email: self.customer.spec.email.clone(),
            api_key_hash: hash,
            requests_per_minute: summary.requests_per_minute,
            tool_calls_per_month: summary.tool_calls_per_month,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        sql.upsert_customer(&record)
            .await
            .context("writing the customer to SQL")?;

        let secret = SecretData::from_iter([("accessToken", ACCESS_TOKEN)]);
        let plan = tenancy::plan_connection(&self.customer, &self.connection, Some(&secret))?;
        self.routes = plan.routes.clone();
        tenancy::apply_connection(store, keyring, &plan, &[])
            .await
            .context("writing the WhatsApp connection to Redis")?;
        Ok(())
    }

    /// Removes everything of the customer from the store (API key,
    /// credentials, route, audit log, usage, outbox, inbox and its
    /// deduplication keys: every key tagged with its id) and soft-deletes its
    /// SQL row, the only deletion the repository offers.
    ///
    /// # Errors
    ///
    /// When a backend refuses; what could be removed is removed.
    pub async fn remove(&self, store: &dyn Store, sql: &SqlRepo) -> Result<()> {
        let hash = ApiKeyHash::of(&self.api_key);
        let purged = tenancy::remove_customer(store, &self.id, Some(&hash), &self.routes)
            .await
            .context("removing the benchmark's customer from Redis");
        let deleted = sql
            .soft_delete_customer(&self.id)
            .await
            .context("deleting the benchmark's customer from SQL");
        purged?;
        deleted?;
        Ok(())
    }

    /// Writes the customer, its connection and their Secrets as one
    /// manifest file in `dir`, for `hermes-server dev --manifests dir`.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write_manifests(&self, dir: &Path) -> Result<()> {
        let name = self.id.as_str();
        let api_key_secret = format!("{name}-api-key");
        let customer = customer_resource(name, Some(&api_key_secret));
        let connection = serde_json::to_value(&self.connection).context("the PlatformConnection as JSON")?;

        let documents = [
            customer,
            secret_resource(&api_key_secret, "apiKey", &self.api_key),
            connection,
            secret_resource(&format!("{name}-whatsapp"), "accessToken", ACCESS_TOKEN),
        ];
        // YAML is a superset of JSON: one JSON document per YAML document.
        let text: Vec<String> = documents.iter().map(Value::to_string).collect();
        std::fs::write(dir.join("bench.yaml"), text.join("\n---\n"))
            .with_context(|| format!("writing the benchmark's manifests to {}", dir.display()))
    }
}

/// The Customer, with its API key in a Secret when `api_key_secret` names one.
fn customer_resource(name: &str, api_key_secret: Option<&str>) -> Value {
    let mut spec = json!({
        "displayName": "hermes-bench",
        "email": format!("ops@{name}.example"),
        "plan": "enterprise",
        "limits": {
            "requestsPerMinute": REQUESTS_PER_MINUTE,
            "toolCallsPerMonth": TOOL_CALLS_PER_MONTH,
        },
    });
    if let Some(secret) = api_key_secret {
        spec["apiKeySecretRef"] = json!({ "name": secret, "key": "apiKey" });
    }
    json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "Customer",
        "metadata": { "name": name, "namespace": "default" },
        "spec": spec,
    })
}

/// The customer's WhatsApp PlatformConnection; its Secret holds [`ACCESS_TOKEN`].
fn connection_resource(name: &str, phone_number_id: &str, mode: ConnectionMode) -> Value {
    json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "PlatformConnection",
        "metadata": { "name": format!("{name}-whatsapp"), "namespace": "default" },
        "spec": {
            "customerRef": name,
            "platform": "whatsapp",
            "secretRef": { "name": format!("{name}-whatsapp") },
            "sandbox": mode == ConnectionMode::Sandbox,
            "whatsapp": { "phoneNumberId": phone_number_id, "businessAccountId": "102290129340398" },
        },
    })
}

/// A Secret with one field.
fn secret_resource(name: &str, key: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": "default" },
        "stringData": { key: value },
    })
}

/// A fresh one-key keyring, as `HERMES_ENCRYPTION_KEYS` text: the seeding
/// seals with it and the server opens with it.
pub fn generate_keyring_text() -> String {
    let key: [u8; 32] = rand::random();
    let mut text = format!("{KEY_ID}:");
    for byte in key {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_keyring_parses() {
        let text = generate_keyring_text();
        let keyring = Keyring::parse(&text).expect("the generated keyring parses");
        assert_eq!(keyring.primary_id(), KEY_ID);
    }

    #[test]
    fn two_generated_keyrings_differ() {
        assert_ne!(generate_keyring_text(), generate_keyring_text());
    }

    #[test]
    fn the_customer_never_meets_its_limits() {
        let tenant = BenchTenant::generate(ConnectionMode::Live).expect("the resources are valid");
        let summary = tenancy::customer_summary(&tenant.customer).expect("the Customer plans");
        assert_eq!(summary.requests_per_minute, Some(REQUESTS_PER_MINUTE));
        assert_eq!(summary.tool_calls_per_month, Some(TOOL_CALLS_PER_MONTH));
        assert_eq!(summary.plan, hermes_crds::Plan::Enterprise);
    }

    #[test]
    fn the_manifests_are_what_dev_reads() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let tenant = BenchTenant::generate(ConnectionMode::Sandbox).expect("the resources are valid");
        tenant
            .write_manifests(dir.path())
            .expect("the manifests are written");

        let manifests = hermes_server::dev::read_manifests(dir.path()).expect("dev reads them");
        assert_eq!(manifests.customers.len(), 1);
        assert_eq!(manifests.connections.len(), 1);
        assert_eq!(manifests.secrets.len(), 2);
        assert!(manifests.connections[0].resource.spec.sandbox);
    }
}
