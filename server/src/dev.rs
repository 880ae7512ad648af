//! Deployments without a cluster: `hermes-server dev` and single-user mode.
//!
//! Both keep state in the embedded store and SQLite and apply tenants with
//! the same tenancy code the operator runs, through
//! [`LocalAdmin`](crate::app::LocalAdmin):
//!
//! - **dev** ([`read_manifests`], [`apply_manifests`]): every Customer,
//!   PlatformConnection and Secret in a folder of YAML files. API keys are
//!   generated per customer, or read from the Secret a Customer's
//!   `apiKeySecretRef` names. [`banner`] tells the newcomer how to call it.
//! - **single-user** ([`apply_single_user`]): one implicit customer,
//!   [`LOCAL_CUSTOMER`], whose API key is `HERMES_API_KEY` and whose
//!   connections come from environment variables named after each field
//!   (`WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_PHONE_NUMBER_ID`, …).
//!
//! A connection that does not validate is published as failed, with the
//! reason, as the operator would do; the server still starts, and
//! `GET /api/connections` shows why. A document that is not a valid
//! resource at all stops `dev` with an error naming the file and the
//! document's position in it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hermes_crds::{
    Customer, CustomerSpec, DiscordSettings, EmailSettings, InstagramSettings, LinkedinSettings,
    ObsidianSettings, Plan, Platform, PlatformConnection, TelegramSettings, WhatsappSettings, XSettings,
};
use hermes_state::sql::{CustomerRecord, SqlRepo};
use hermes_state::store::Store;
use hermes_state::tenancy::{self, SecretData, secret_requirements};
use hermes_state::{ApiKeyHash, CustomerId};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::app::{ConnectRequest, LocalAdmin, TenantAdmin};
use crate::auth::Tenant;

/// The customer id of single-user mode.
pub const LOCAL_CUSTOMER: &str = "local";

/// The namespace of resources whose manifest names none, as `kubectl` assumes.
const DEFAULT_NAMESPACE: &str = "default";

/// Why `dev` or single-user mode could not set up its tenants.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The manifests folder could not be listed.
    #[error("cannot read the manifests folder {path}: {source}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A manifest file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{path} is not valid YAML: {reason}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's reason, with line and column.
        reason: String,
    },
    /// A document is not a valid resource of its kind.
    #[error("{path}, document {index}: {reason}")]
    Document {
        /// The file.
        path: PathBuf,
        /// The document's position in the file, from 1.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Two Customers share a name (the customer id), which must be unique across namespaces.
    #[error(
        "{path}, document {index}: Customer {name:?} is declared twice; a customer id must be unique across namespaces"
    )]
    DuplicateCustomer {
        /// The file of the second declaration.
        path: PathBuf,
        /// Its position in the file, from 1.
        index: usize,
        /// The name.
        name: String,
    },
    /// A Customer's `apiKeySecretRef` names a Secret or key that is not there.
    #[error(
        "Customer {customer:?}: apiKeySecretRef names Secret {secret:?} key {key:?}, which is not among the manifests"
    )]
    ApiKeySecretMissing {
        /// The Customer.
        customer: String,
        /// The Secret's name.
        secret: String,
        /// The key.
        key: String,
    },
    /// Writing a customer's state failed.
    #[error("applying Customer {customer:?} failed: {reason}")]
    ApplyCustomer {
        /// The Customer.
        customer: String,
        /// Why.
        reason: String,
    },
    /// Single-user configuration from the environment is incomplete or invalid.
    #[error("single-user {platform} connection (from {prefix}_* variables): {reason}")]
    SingleUser {
        /// The platform.
        platform: Platform,
        /// The variables' prefix, e.g. `WHATSAPP`.
        prefix: String,
        /// What is wrong.
        reason: String,
    },
}

/// A resource and where it was read.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The file.
    pub path: PathBuf,
    /// The document's position in the file, from 1.
    pub index: usize,
    /// The resource.
    pub resource: T,
}

/// The resources of a manifests folder.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Every Customer.
    pub customers: Vec<Located<Customer>>,
    /// Every PlatformConnection.
    pub connections: Vec<Located<PlatformConnection>>,
    /// Every Secret.
    pub secrets: Vec<Located<Secret>>,
}

/// Reads every `*.yaml` and `*.yml` file under `dir` (recursively, in path
/// order), keeping Customers, PlatformConnections and Secrets; documents of
/// other kinds are skipped.
///
/// # Errors
///
/// A [`DevError`] naming the file (and document) that could not be read.
pub fn read_manifests(dir: &Path) -> Result<Manifests, DevError> {
    let mut files = Vec::new();
    collect_yaml_files(dir, &mut files)?;
    files.sort();

    let mut manifests = Manifests::default();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| DevError::ReadFile {
            path: path.clone(),
            source,
        })?;
        read_documents(&path, &text, &mut manifests)?;
    }
    Ok(manifests)
}

fn collect_yaml_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), DevError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DevError::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| DevError::ReadDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_yaml_files(&path, files)?;
        } else if path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
    Ok(())
}

/// Sorts the documents of one file into `manifests` by their `kind`.
fn read_documents(path: &Path, text: &str, manifests: &mut Manifests) -> Result<(), DevError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| DevError::Yaml {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;

    for (position, document) in documents.into_iter().enumerate() {
        let index = position + 1;
        if document.is_null() {
            continue;
        }
        let kind = document.get("kind").and_then(Value::as_str).map(str::to_owned);
        let located = |reason: String| DevError::Document {
            path: path.to_owned(),
            index,
            reason,
        };
        match kind.as_deref() {
            Some("Customer") => manifests.customers.push(Located {
                path: path.to_owned(),
                index,
                resource: serde_json::from_value(document)
                    .map_err(|e| located(format!("not a valid Customer: {e}")))?,
            }),
            Some("PlatformConnection") => manifests.connections.push(Located {
                path: path.to_owned(),
                index,
                resource: serde_json::from_value(document)
                    .map_err(|e| located(format!("not a valid PlatformConnection: {e}")))?,
            }),
            Some("Secret") => manifests.secrets.push(Located {
                path: path.to_owned(),
                index,
                // serde's messages quote the offending value, which may be a
                // secret: name only where the fault is.
                resource: serde_path_to_error::deserialize::<_, Secret>(document).map_err(|e| {
                    located(format!(
                        "not a valid Secret: `{}` is missing or has the wrong type",
                        e.path()
                    ))
                })?,
            }),
            Some(other) => {
                tracing::debug!(path = %path.display(), index, kind = other, "skipping a document of another kind")
            }
            None => return Err(located("the document has no `kind`".into())),
        }
    }
    Ok(())
}

/// A customer set up for `dev` mode, with the API key to call it with.
#[derive(Debug)]
pub struct DevCustomer {
    /// The customer id.
    pub id: CustomerId,
    /// The plan.
    pub plan: Plan,
    /// The API key, wiped from memory when dropped.
    pub api_key: Zeroizing<String>,
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

fn find_secret<'a>(manifests: &'a Manifests, namespace: &str, name: &str) -> Option<&'a Secret> {
    manifests
        .secrets
        .iter()
        .map(|located| &located.resource)
        .find(|secret| {
            namespace_of(&secret.metadata) == namespace && secret.metadata.name.as_deref() == Some(name)
        })
}

/// Applies every Customer and PlatformConnection of `manifests`.
///
/// Customers go to the store's API-key index and SQL's `customers` table;
/// connections through `admin`. A connection that does not validate (or
/// whose Customer is not among the manifests) is published as failed with
/// its reason and logged as a warning.
///
/// # Errors
///
/// [`DevError`] for a duplicate Customer, a missing API-key Secret, or a
/// store or SQL failure.
pub async fn apply_manifests(
    manifests: &Manifests,
    store: &dyn Store,
    sql: &SqlRepo,
    admin: &LocalAdmin,
) -> Result<Vec<DevCustomer>, DevError> {
    let mut customers: Vec<DevCustomer> = Vec::new();

    for located in &manifests.customers {
        let customer = &located.resource;
        let name = customer.metadata.name.clone().unwrap_or_default();
        if customers.iter().any(|c| c.id.as_str() == name) {
            return Err(DevError::DuplicateCustomer {
                path: located.path.clone(),
                index: located.index,
                name,
            });
        }

        let api_key = match &customer.spec.api_key_secret_ref {
            Some(reference) => {
                let secret = find_secret(manifests, namespace_of(&customer.metadata), &reference.name);
                let value = secret
                    .and_then(|secret| SecretData::from_secret(secret).ok())
                    .and_then(|data| data.non_blank(&reference.key).map(str::to_owned))
                    .ok_or_else(|| DevError::ApiKeySecretMissing {
                        customer: name.clone(),
                        secret: reference.name.clone(),
                        key: reference.key.clone(),
                    })?;
                Zeroizing::new(value)
            }
            None => tenancy::generate_api_key(),
        };

        let id = register_customer(store, sql, customer, &api_key).await?;
        admin.add_customer(id.clone(), customer.clone());
        apply_delivery(manifests, admin, customer).await;
        customers.push(DevCustomer {
            id,
            plan: customer.spec.plan,
            api_key,
        });
    }

    for located in &manifests.connections {
        apply_connection(manifests, store, admin, located).await;
    }
    Ok(customers)
}

/// Writes a Customer's inbound delivery target (`spec.delivery`), with the
/// signing secret from the manifests' Secret; a delivery that cannot be
/// applied is logged as a warning, and the Customer's events wait in its inbox.
async fn apply_delivery(manifests: &Manifests, admin: &LocalAdmin, customer: &Customer) {
    let secret = customer.spec.delivery.as_ref().and_then(|delivery| {
        let name = &delivery.signing_secret_ref.name;
        let secret = find_secret(manifests, namespace_of(&customer.metadata), name)?;
        SecretData::from_secret(secret).ok()
    });
    if let Err(e) = admin.apply_delivery(customer, secret.as_ref()).await {
        tracing::warn!(error = %e, customer = ?customer.metadata.name, "the customer's delivery is not applied");
    }
}

/// Writes a Customer's API-key index entry and SQL row; returns its id.
async fn register_customer(
    store: &dyn Store,
    sql: &SqlRepo,
    customer: &Customer,
    api_key: &str,
) -> Result<CustomerId, DevError> {
    let name = customer.metadata.name.clone().unwrap_or_default();
    let failed = |reason: String| DevError::ApplyCustomer {
        customer: name.clone(),
        reason,
    };

    let summary = tenancy::customer_summary(customer).map_err(|e| failed(e.to_string()))?;
    let hash = ApiKeyHash::of(api_key);
    tenancy::apply_customer(store, &summary, &hash)
        .await
        .map_err(|e| failed(e.to_string()))?;

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
    sql.upsert_customer(&record)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(summary.id)
}

async fn apply_connection(
    manifests: &Manifests,
    store: &dyn Store,
    admin: &LocalAdmin,
    located: &Located<PlatformConnection>,
) {
    let connection = &located.resource;
    let spec = &connection.spec;
    let namespace = namespace_of(&connection.metadata);
    let span = tracing::warn_span!(
        "connection",
        path = %located.path.display(),
        index = located.index,
        customer = %spec.customer_ref,
        platform = %spec.platform,
    );
    let _entered = span.enter();

    let Some(customer) = manifests
        .customers
        .iter()
        .map(|located| &located.resource)
        .find(|c| c.metadata.name.as_deref() == Some(spec.customer_ref.as_str()))
    else {
        tracing::warn!("the connection's Customer is not among the manifests; skipped");
        return;
    };

    let secret = match &spec.secret_ref {
        Some(reference) => {
            match find_secret(manifests, namespace, &reference.name).map(SecretData::from_secret) {
                Some(Ok(data)) => Some(data),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the connection's Secret is unreadable");
                    None
                }
                None => None,
            }
        }
        None => None,
    };

    if let Err(e) = admin.apply(customer, connection, secret.as_ref()).await {
        tracing::warn!(error = %e, "connection not applied");
        if let Ok(id) = CustomerId::new(spec.customer_ref.clone())
            && let Err(e) = tenancy::mark_connection_failed(
                store,
                &id,
                spec.platform,
                spec.sandbox,
                e.reason(),
                &e.to_string(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not publish the connection's failure");
        }
    }
}

// --- single-user mode ---

/// The prefix of a platform's single-user variables, e.g. `WHATSAPP`.
pub fn env_prefix(platform: Platform) -> String {
    platform.as_str().to_ascii_uppercase()
}

/// The variable of one field: `accessToken` of WhatsApp is `WHATSAPP_ACCESS_TOKEN`.
pub fn env_var(platform: Platform, field: &str) -> String {
    let mut name = env_prefix(platform);
    name.push('_');
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The JSON Schema of a platform's settings block.
fn settings_schema(platform: Platform) -> schemars::Schema {
    match platform {
        Platform::Email => schemars::schema_for!(EmailSettings),
        Platform::Whatsapp => schemars::schema_for!(WhatsappSettings),
        Platform::Linkedin => schemars::schema_for!(LinkedinSettings),
        Platform::Telegram => schemars::schema_for!(TelegramSettings),
        Platform::Discord => schemars::schema_for!(DiscordSettings),
        Platform::Instagram => schemars::schema_for!(InstagramSettings),
        Platform::X => schemars::schema_for!(XSettings),
        Platform::Obsidian => schemars::schema_for!(ObsidianSettings),
    }
}

/// The settings fields a platform's block requires.
fn required_settings(platform: Platform) -> Vec<String> {
    let schema = settings_schema(platform);
    schema
        .as_object()
        .and_then(|o| o.get("required"))
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The settings fields of a platform and whether each is a number or a boolean.
fn settings_fields(platform: Platform) -> Vec<(String, Option<&'static str>)> {
    let schema = settings_schema(platform);
    let Some(properties) = schema
        .as_object()
        .and_then(|o| o.get("properties"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let types = property.get("type").map(Value::to_string).unwrap_or_default();
            let scalar = if types.contains("integer") {
                Some("integer")
            } else if types.contains("boolean") {
                Some("boolean")
            } else {
                None
            };
            (name.clone(), scalar)
        })
        .collect()
}

/// Every variable single-user mode reads for `platform`: its settings, its
/// secret fields, and `<PREFIX>_SANDBOX`.
pub fn env_vars(platform: Platform) -> Vec<String> {
    let mut vars: Vec<String> = settings_fields(platform)
        .into_iter()
        .map(|(field, _)| env_var(platform, &field))
        .collect();
    vars.extend(
        secret_requirements(platform)
            .known_fields()
            .map(|f| env_var(platform, f)),
    );
    vars.push(env_var(platform, "sandbox"));
    vars
}

/// Sets up single-user mode: the customer [`LOCAL_CUSTOMER`] (plan
/// enterprise) with `api_key`, and a connection for every platform any of
/// whose variables `env` returns. Returns the platforms connected.
///
/// # Errors
///
/// [`DevError::SingleUser`] naming the platform and what is missing or
/// invalid, when a platform's variables do not make a valid connection.
pub async fn apply_single_user(
    api_key: &str,
    store: &dyn Store,
    sql: &SqlRepo,
    admin: &LocalAdmin,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Platform>, DevError> {
    let mut customer = Customer::new(
        LOCAL_CUSTOMER,
        CustomerSpec {
            display_name: "Local".into(),
            email: "local@localhost".into(),
            plan: Plan::Enterprise,
            suspended: false,
            api_key_secret_ref: None,
            delivery: None,
            limits: None,
        },
    );
    customer.metadata.namespace = Some(DEFAULT_NAMESPACE.into());
    let id = register_customer(store, sql, &customer, api_key).await?;
    admin.add_customer(id.clone(), customer);

    let tenant = Tenant {
        id,
        plan: Plan::Enterprise,
        requests_per_minute: None,
        tool_calls_per_month: None,
    };
    let mut connected = Vec::new();
    for platform in Platform::ALL {
        if !env_vars(platform).iter().any(|var| env(var).is_some()) {
            continue;
        }
        let failed = |reason: String| DevError::SingleUser {
            platform,
            prefix: env_prefix(platform),
            reason,
        };

        let missing: Vec<String> = required_settings(platform)
            .iter()
            .map(|field| env_var(platform, field))
            .filter(|var| env(var).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(failed(format!("set {}", missing.join(", "))));
        }

        let mut settings = Map::new();
        for (field, scalar) in settings_fields(platform) {
            let var = env_var(platform, &field);
            let Some(raw) = env(&var) else { continue };
            let value = match scalar {
                Some("integer") => raw
                    .trim()
                    .parse::<u64>()
                    .map(Value::from)
                    .map_err(|_| failed(format!("{var} must be a whole number")))?,
                Some(_) => raw
                    .trim()
                    .parse::<bool>()
                    .map(Value::from)
                    .map_err(|_| failed(format!("{var} must be true or false")))?,
                None => Value::String(raw),
            };
            settings.insert(field, value);
        }

        let mut secrets = SecretData::new();
        for field in secret_requirements(platform).known_fields() {
            if let Some(value) = env(&env_var(platform, field)) {
                secrets.insert(field, value);
            }
        }
        let sandbox_var = env_var(platform, "sandbox");
        let sandbox = match env(&sandbox_var) {
            Some(raw) => raw
                .trim()
                .parse::<bool>()
                .map_err(|_| failed(format!("{sandbox_var} must be true or false")))?,
            None => false,
        };

        let request = ConnectRequest {
            platform,
            settings: Value::Object(settings),
            sandbox,
            api_base: None,
            secrets,
        };
        admin
            .connect(&tenant, request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        connected.push(platform);
    }
    Ok(connected)
}

// --- the banner ---

/// What `dev` prints once it listens: each customer's API key and a
/// paste-ready MCP call.
///
/// The call is a legacy-era (2025-11-25) `tools/call` of
/// `whatsapp_send_message`, which a stateless server answers without an
/// `initialize` first, with the `Accept` header the transport requires; the
/// answer is JSON. It is made as the first customer with a WhatsApp
/// connection (a sandbox one in the examples), so the message lands in that
/// customer's outbox.
pub fn banner(base_url: &str, customers: &[DevCustomer], whatsapp_customer: Option<&CustomerId>) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(text, "Hermes dev server listening on {base_url}");
    for customer in customers {
        let _ = writeln!(
            text,
            "customer {} (plan {}): API key {}",
            customer.id,
            customer.plan.as_str(),
            customer.api_key.as_str()
        );
    }

    let caller = whatsapp_customer
        .and_then(|id| customers.iter().find(|c| &c.id == id))
        .or_else(|| customers.first());
    if let Some(caller) = caller {
        let _ = writeln!(
            text,
            "\nSend a WhatsApp message as {} (sandbox: it lands in the outbox):",
            caller.id
        );
        let _ = writeln!(text, "{}", mcp_curl(base_url, &caller.api_key));
        let _ = writeln!(text, "\nRead the outbox:");
        let _ = writeln!(
            text,
            "curl -sS {base_url}/api/outbox -H 'Authorization: Bearer {}'",
            caller.api_key.as_str()
        );
    }
    text
}

/// The paste-ready `curl` of an MCP `tools/call` of `whatsapp_send_message`.
pub fn mcp_curl(base_url: &str, api_key: &str) -> String {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "whatsapp_send_message",
            "arguments": { "to": "15551234567", "message": "Hello from Hermes" },
        },
    });
    format!(
        "curl -sS {base_url}/mcp -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \
         -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' -d '{body}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_vars_are_the_screaming_field_names() {
        assert_eq!(
            env_var(Platform::Whatsapp, "accessToken"),
            "WHATSAPP_ACCESS_TOKEN"
        );
        assert_eq!(env_var(Platform::Telegram, "botToken"), "TELEGRAM_BOT_TOKEN");
        assert_eq!(env_var(Platform::X, "bearerToken"), "X_BEARER_TOKEN");
    }

    #[test]
    fn whatsapp_reads_its_ids_and_token_from_the_environment() {
        let vars = env_vars(Platform::Whatsapp);
        for var in [
            "WHATSAPP_ACCESS_TOKEN",
            "WHATSAPP_PHONE_NUMBER_ID",
            "WHATSAPP_BUSINESS_ACCOUNT_ID",
            "WHATSAPP_APP_SECRET",
        ] {
            assert!(vars.contains(&var.to_owned()), "{var} missing from {vars:?}");
        }
    }

    #[test]
    fn documents_of_other_kinds_are_skipped() {
        let mut manifests = Manifests::default();
        let yaml = "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: x\n";
        read_documents(Path::new("a.yaml"), yaml, &mut manifests).expect("a ConfigMap is skipped");
        assert!(manifests.customers.is_empty() && manifests.connections.is_empty());
    }

    #[test]
    fn a_malformed_document_is_named_by_file_and_position() {
        let mut manifests = Manifests::default();
        let yaml = "apiVersion: hermes.squaremcp.com/v1alpha1\nkind: Customer\nmetadata:\n  name: a\nspec:\n  displayName: A\n  email: a@a.example\n---\napiVersion: hermes.squaremcp.com/v1alpha1\nkind: Customer\nmetadata:\n  name: b\nspec:\n  plan: gold\n";

        let error =
            read_documents(Path::new("customers.yaml"), yaml, &mut manifests).expect_err("b is invalid");

        let message = error.to_string();
        assert!(message.contains("customers.yaml, document 2"), "{message}");
    }

    #[test]
    fn a_secret_error_never_quotes_a_value() {
        let mut manifests = Manifests::default();
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData: super-secret-token\n";

        let error =
            read_documents(Path::new("s.yaml"), yaml, &mut manifests).expect_err("stringData must be a map");

        assert!(!error.to_string().contains("super-secret-token"), "{error}");
    }

    #[test]
    fn the_curl_line_asks_for_json_or_sse() {
        let line = mcp_curl("http://127.0.0.1:8080", "hk_x");
        assert!(line.contains("-H 'Accept: application/json, text/event-stream'"));
        assert!(line.contains("\"name\":\"whatsapp_send_message\""));
    }
}
