//! The manifests in `manifests/examples/` are what `hermes-server dev` loads
//! and what the README tells newcomers to `kubectl apply`. These tests hold
//! them to the typed API: every document is a known kind, every field is one
//! the type knows, and every resource passes the CRDs' CEL rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hermes_crds::{Customer, Plan, Platform, PlatformConnection};
use k8s_openapi::api::core::v1::Secret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One document of one example file, deserialized into its kind.
#[derive(Debug)]
enum Manifest {
    Customer(Box<Customer>),
    PlatformConnection(Box<PlatformConnection>),
    Secret(Box<Secret>),
}

/// Every document of every example file, sorted by kind.
#[derive(Debug, Default)]
struct Examples {
    customers: Vec<Customer>,
    connections: Vec<PlatformConnection>,
    secrets: Vec<Secret>,
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples")
}

fn example_files() -> Vec<PathBuf> {
    let entries = std::fs::read_dir(examples_dir()).expect("manifests/examples exists");
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("manifests/examples is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    files
}

/// Parses `value` as `K`, then checks that re-serializing it keeps every field
/// the manifest set: a misspelt optional field would otherwise be dropped
/// silently by serde.
fn typed<K: DeserializeOwned + Serialize>(value: &Value) -> Result<K, String> {
    let typed: K = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let round_trip = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    match unknown_field(value, &round_trip, "") {
        Some(path) => Err(format!("field {path} is not part of the type (misspelt?)")),
        None => Ok(typed),
    }
}

/// The first path in `written` that `typed` does not carry with the same value.
fn unknown_field(written: &Value, typed: &Value, path: &str) -> Option<String> {
    match (written, typed) {
        (Value::Object(written), Value::Object(typed)) => written.iter().find_map(|(key, value)| {
            let path = format!("{path}.{key}");
            match typed.get(key) {
                Some(typed_value) => unknown_field(value, typed_value, &path),
                None => Some(path),
            }
        }),
        (written, typed) if written == typed => None,
        _ => Some(path.to_owned()),
    }
}

fn parse_document(value: &Value) -> Result<Manifest, String> {
    match value.get("kind").and_then(Value::as_str) {
        Some("Customer") => typed(value).map(|c| Manifest::Customer(Box::new(c))),
        Some("PlatformConnection") => typed(value).map(|p| Manifest::PlatformConnection(Box::new(p))),
        Some("Secret") => typed(value).map(|s| Manifest::Secret(Box::new(s))),
        Some(other) => Err(format!(
            "unknown kind {other:?}; examples hold Customer, PlatformConnection and Secret"
        )),
        None => Err("document has no kind".to_owned()),
    }
}

fn parse_file(path: &Path) -> Result<Vec<Manifest>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(&text).map_err(|e| e.to_string())?;
    documents
        .iter()
        .enumerate()
        .map(|(index, document)| parse_document(document).map_err(|e| format!("document {}: {e}", index + 1)))
        .collect()
}

/// Loads every example, failing with the name of each file that does not parse.
fn load_examples() -> Examples {
    let mut examples = Examples::default();
    let mut failures = Vec::new();

    for path in example_files() {
        match parse_file(&path) {
            Ok(manifests) => {
                for manifest in manifests {
                    match manifest {
                        Manifest::Customer(c) => examples.customers.push(*c),
                        Manifest::PlatformConnection(p) => examples.connections.push(*p),
                        Manifest::Secret(s) => examples.secrets.push(*s),
                    }
                }
            }
            Err(error) => failures.push(format!("{}: {error}", path.display())),
        }
    }

    assert!(
        failures.is_empty(),
        "example manifests that do not parse:\n{}",
        failures.join("\n")
    );
    examples
}

fn name_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.name.as_deref().unwrap_or_default()
}

// -------------------------------------------------------------------- tests

#[test]
fn every_example_manifest_deserializes_into_its_typed_kind() {
    let examples = load_examples();

    assert_eq!(examples.customers.len(), 2, "customers");
    assert_eq!(examples.connections.len(), 9, "platform connections");
    assert_eq!(examples.secrets.len(), 9, "secrets");
}

#[test]
fn an_unknown_kind_or_misspelt_field_fails_to_load() {
    let unknown_kind =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let misspelt = serde_json::json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "PlatformConnection",
        "metadata": {"name": "acme-x"},
        "spec": {"customerRef": "acme", "platform": "x", "sandbox": true, "x": {"userName": "acme"}},
    });

    let unknown_kind = parse_document(&unknown_kind).expect_err("ConfigMap is not an example kind");
    let misspelt = parse_document(&misspelt).expect_err("userName is not a field of XSettings");

    assert!(
        unknown_kind.contains("unknown kind \"ConfigMap\""),
        "{unknown_kind}"
    );
    assert!(misspelt.contains(".spec.x.userName"), "{misspelt}");
}

#[test]
fn every_example_passes_the_crd_cel_rules() {
    let examples = load_examples();
    let mut failures = Vec::new();

    for customer in &examples.customers {
        if let Err(errors) = customer.validate_cel() {
            failures.push(format!("Customer {}: {errors}", name_of(&customer.metadata)));
        }
    }
    for connection in &examples.connections {
        if let Err(errors) = connection.validate_cel() {
            failures.push(format!(
                "PlatformConnection {}: {errors}",
                name_of(&connection.metadata)
            ));
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_example_lives_in_the_hermes_demo_namespace() {
    let examples = load_examples();

    let namespaces: BTreeSet<Option<&str>> = examples
        .customers
        .iter()
        .map(|c| &c.metadata)
        .chain(examples.connections.iter().map(|p| &p.metadata))
        .chain(examples.secrets.iter().map(|s| &s.metadata))
        .map(|metadata| metadata.namespace.as_deref())
        .collect();

    assert_eq!(namespaces, BTreeSet::from([Some("hermes-demo")]));
}

#[test]
fn the_example_customers_are_acme_on_pro_and_globex_on_free_with_generated_keys() {
    let examples = load_examples();

    let plans: BTreeMap<&str, Plan> = examples
        .customers
        .iter()
        .map(|c| (name_of(&c.metadata), c.spec.plan))
        .collect();

    assert_eq!(
        plans,
        BTreeMap::from([("acme", Plan::Pro), ("globex", Plan::Free)])
    );
    assert!(
        examples
            .customers
            .iter()
            .all(|c| c.spec.api_key_secret_ref.is_none())
    );
}

#[test]
fn acme_has_one_sandbox_connection_for_every_platform() {
    let examples = load_examples();

    let acme: Vec<&PlatformConnection> = examples
        .connections
        .iter()
        .filter(|p| p.spec.customer_ref == "acme")
        .collect();
    let platforms: BTreeSet<Platform> = acme.iter().map(|p| p.spec.platform).collect();

    assert_eq!(acme.len(), Platform::ALL.len());
    assert_eq!(platforms, BTreeSet::from(Platform::ALL));
    assert!(
        acme.iter().all(|p| p.spec.sandbox),
        "every example connection is a sandbox"
    );
}

#[test]
fn globex_has_one_sandbox_whatsapp_connection_on_its_own_phone_number() {
    let examples = load_examples();

    let phone_ids = |customer: &str| -> Vec<String> {
        examples
            .connections
            .iter()
            .filter(|p| p.spec.customer_ref == customer)
            .filter_map(|p| p.spec.whatsapp.as_ref())
            .map(|w| w.phone_number_id.clone())
            .collect()
    };
    let globex: Vec<&PlatformConnection> = examples
        .connections
        .iter()
        .filter(|p| p.spec.customer_ref == "globex")
        .collect();

    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0].spec.platform, Platform::Whatsapp);
    assert!(globex[0].spec.sandbox);
    assert_eq!(phone_ids("acme"), vec!["106540352242922".to_owned()]);
    assert_eq!(phone_ids("globex").len(), 1);
    assert_ne!(phone_ids("globex"), phone_ids("acme"));
}

#[test]
fn every_example_connection_names_an_opaque_secret_holding_its_platform_fields() {
    let examples = load_examples();
    let secrets: BTreeMap<&str, &Secret> = examples
        .secrets
        .iter()
        .map(|s| (name_of(&s.metadata), s))
        .collect();

    for connection in &examples.connections {
        let name = name_of(&connection.metadata);
        let secret_name = connection
            .spec
            .secret_ref
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default();
        let secret = secrets
            .get(secret_name)
            .unwrap_or_else(|| panic!("{name}: no example Secret named {secret_name:?}"));

        let keys: BTreeSet<&str> = secret
            .string_data
            .iter()
            .flat_map(|data| data.keys())
            .map(String::as_str)
            .collect();
        let expected: BTreeSet<&str> = match connection.spec.platform {
            Platform::Whatsapp => ["accessToken", "appSecret"].into(),
            Platform::Telegram => ["botToken", "webhookSecretToken"].into(),
            Platform::Discord => ["botToken"].into(),
            Platform::Email => ["smtpUsername", "smtpPassword"].into(),
            Platform::Linkedin => ["accessToken"].into(),
            Platform::Instagram => ["accessToken"].into(),
            Platform::X => ["bearerToken"].into(),
            Platform::Obsidian => ["apiKey"].into(),
        };

        assert_eq!(secret.type_.as_deref(), Some("Opaque"), "{secret_name}");
        assert_eq!(keys, expected, "{name}: fields of Secret {secret_name}");
    }
}
