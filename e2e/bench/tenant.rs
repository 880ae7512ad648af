//! The benchmark's customer: seeded into Redis and SQL as the operator
//! would write it, and removed again at the end.
//!
//! The customer has a random id, so runs against a shared Redis never meet,
//! the `enterprise` plan, and limit overrides far above anything two cores
//! can send ([`REQUESTS_PER_MINUTE`], [`TOOL_CALLS_PER_MONTH`]): the rate
//! limit and the quota are still checked on every request, as in
//! production, but never refuse one. Its WhatsApp connection is live by
//! default, with no `apiBase` of its own: the server's
//! `HERMES_WHATSAPP_API_BASE` points it at the mock.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use hermes_crds::{Customer, PlatformConnection};
use hermes_state::sql::{CustomerRecord, SqlRepo};
use hermes_state::store::{Route, Store};
use hermes_state::tenancy::{self, SecretData};
use hermes_state::vault::Keyring;
use hermes_state::{ApiKeyHash, CustomerId};
use jiff::Timestamp;
use serde_json::json;
use zeroize::Zeroizing;

use crate::target::ConnectionMode;

/// The rate-limit override: a million requests a second.
pub const REQUESTS_PER_MINUTE: u32 = 60_000_000;

/// The quota override: a trillion tool calls a month.
pub const TOOL_CALLS_PER_MONTH: u64 = 1_000_000_000_000;

/// The key id of the benchmark's keyring.
const KEY_ID: &str = "bench";

/// The seeded customer.
#[derive(Debug)]
pub struct BenchTenant {
    id: CustomerId,
    api_key: Zeroizing<String>,
    routes: Vec<Route>,
}

impl BenchTenant {
    /// Writes a customer and its WhatsApp connection with the tenancy code:
    /// the API-key index and sealed credentials in `store`, the customer row
    /// in `sql`.
    ///
    /// # Errors
    ///
    /// When a resource does not plan or a backend refuses a write.
    pub async fn seed(
        store: &dyn Store,
        sql: &SqlRepo,
        keyring: &Keyring,
        mode: ConnectionMode,
    ) -> Result<Self> {
        let name = format!("bench-{:08x}", rand::random::<u32>());
        let api_key = tenancy::generate_api_key();
        let hash = ApiKeyHash::of(&api_key);

        let customer: Customer = serde_json::from_value(json!({
            "apiVersion": "hermes.squaremcp.com/v1alpha1",
            "kind": "Customer",
            "metadata": { "name": name, "namespace": "default" },
            "spec": {
                "displayName": "hermes-bench",
                "email": format!("ops@{name}.example"),
                "plan": "enterprise",
                "limits": {
                    "requestsPerMinute": REQUESTS_PER_MINUTE,
                    "toolCallsPerMonth": TOOL_CALLS_PER_MONTH,
                },
            },
        }))
        .context("the benchmark's Customer")?;
        let summary = tenancy::customer_summary(&customer)?;
        tenancy::apply_customer(store, &summary, &hash)
            .await
            .context("writing the customer to Redis")?;

        let now = Timestamp::now();
        let record = CustomerRecord {
            id: summary.id.clone(),
            plan: summary.plan,
            active: summary.active,
            email: customer.spec.email.clone(),
            api_key_hash: hash,
            requests_per_minute: summary.requests_per_minute,
            tool_calls_per_month: summary.tool_calls_per_month,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let mut seeded = Self {
            id: summary.id,
            api_key,
            routes: Vec::new(),
        };
        sql.upsert_customer(&record)
            .await
            .context("writing the customer to SQL")?;

        // From here on a failure leaves state behind unless it is removed.
        match connect_whatsapp(store, keyring, &customer, mode).await {
            Ok(routes) => {
                seeded.routes = routes;
                Ok(seeded)
            }
            Err(error) => {
                let _ = seeded.remove(store, sql).await;
                Err(error)
            }
        }
    }

    /// The customer id.
    pub fn id(&self) -> &CustomerId {
        &self.id
    }

    /// The customer's API key.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Removes everything of the customer from the store (API key,
    /// credentials, route, audit log, usage, outbox) and soft-deletes its
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
}

/// Writes `customer`'s WhatsApp connection, as the operator would from a
/// PlatformConnection and its Secret; returns the routes it claimed.
async fn connect_whatsapp(
    store: &dyn Store,
    keyring: &Keyring,
    customer: &Customer,
    mode: ConnectionMode,
) -> Result<Vec<Route>> {
    let name = customer.metadata.name.clone().unwrap_or_default();
    // A random phone number id, so no other customer's route is in the way.
    let phone_number_id = format!("9{:014}", rand::random::<u64>() % 100_000_000_000_000);
    let connection: PlatformConnection = serde_json::from_value(json!({
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
    }))
    .context("the benchmark's PlatformConnection")?;
    let secret = SecretData::from_iter([("accessToken", "hermes-bench-access-token")]);

    let plan = tenancy::plan_connection(customer, &connection, Some(&secret))?;
    let applied = tenancy::apply_connection(store, keyring, &plan, &[])
        .await
        .context("writing the WhatsApp connection to Redis")?;
    Ok(applied.routes)
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
}
