//! `manifests/` is what `kubectl apply -k manifests/` installs. These tests
//! read it without a cluster: every YAML file parses and every object is
//! addressable, the kustomization's resources exist (resolved recursively),
//! and the objects reference each other consistently — Deployments their
//! ServiceAccounts and Secrets, bindings their roles and subjects, Services
//! their pods — with the security settings the Deployments promise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// Every document of a YAML file, empty documents left out.
fn documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()));
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{} is readable: {e}", dir.display()))
        {
            let path = entry.expect("directory entries are readable").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn is_kustomization(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "kustomization.yaml")
}

/// The files a kustomization installs, following directory resources into
/// their own kustomizations. Panics naming any entry that does not exist.
fn resolve(kustomization: &Path, files: &mut Vec<PathBuf>) {
    let dir = kustomization
        .parent()
        .expect("a kustomization lives in a directory");
    let document = documents(kustomization)
        .into_iter()
        .next()
        .expect("a kustomization has a document");
    let resources = document["resources"].as_array().cloned().unwrap_or_default();
    assert!(
        !resources.is_empty(),
        "{} lists no resources",
        kustomization.display()
    );

    for resource in resources {
        let entry = resource.as_str().expect("resources are paths");
        let path = dir.join(entry);
        assert!(
            path.exists(),
            "{} lists {entry:?}, which does not exist",
            kustomization.display()
        );
        if path.is_dir() {
            let nested = path.join("kustomization.yaml");
            assert!(
                nested.exists(),
                "{entry:?} is a directory without a kustomization.yaml"
            );
            resolve(&nested, files);
        } else {
            files.push(path);
        }
    }
}

/// Every object `kubectl apply -k manifests/` installs.
fn installed_objects() -> Vec<Value> {
    let mut files = Vec::new();
    resolve(&manifests_dir().join("kustomization.yaml"), &mut files);
    files.iter().flat_map(|path| documents(path)).collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or("default")
}

fn exists(objects: &[Value], kind: &str, namespace_of: Option<&str>, wanted: &str) -> bool {
    objects
        .iter()
        .any(|o| o["kind"] == kind && name(o) == wanted && namespace_of.is_none_or(|ns| namespace(o) == ns))
}

fn containers(deployment: &Value) -> Vec<&Value> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

#[test]
fn every_manifest_parses_and_every_object_has_api_version_kind_and_name() {
    let files = yaml_files(&manifests_dir());
    assert!(files.len() > 10, "manifests/ holds the install and the examples");

    for path in files.iter().filter(|path| !is_kustomization(path)) {
        for object in documents(path) {
            for field in ["apiVersion", "kind"] {
                assert!(
                    object[field].is_string(),
                    "{}: an object lacks {field}",
                    path.display()
                );
            }
            assert!(
                !name(&object).is_empty(),
                "{}: a {} lacks metadata.name",
                path.display(),
                object["kind"]
            );
        }
    }
}

#[test]
fn every_kustomization_resource_exists_and_the_install_covers_what_it_should() {
    let objects = installed_objects();

    for (kind, wanted) in [
        ("CustomResourceDefinition", "customers.hermes.squaremcp.com"),
        (
            "CustomResourceDefinition",
            "platformconnections.hermes.squaremcp.com",
        ),
        ("Namespace", "hermes-system"),
        ("Deployment", "hermes-operator"),
        ("Deployment", "hermes-server"),
        ("Service", "hermes-server"),
        ("Deployment", "redis"),
        ("Deployment", "mysql"),
        ("Secret", "hermes-encryption-keys"),
    ] {
        assert!(
            exists(&objects, kind, None, wanted),
            "the install lacks {kind} {wanted}"
        );
    }
}

#[test]
fn deployments_run_as_their_service_accounts_with_the_secrets_they_read() {
    let objects = installed_objects();

    for deployment in of_kind(&objects, "Deployment") {
        let ns = namespace(deployment);
        let pod = &deployment["spec"]["template"]["spec"];
        if let Some(account) = pod["serviceAccountName"].as_str() {
            assert!(
                exists(&objects, "ServiceAccount", Some(ns), account),
                "Deployment {} runs as ServiceAccount {account}, which is not installed",
                name(deployment)
            );
        }
        for container in containers(deployment) {
            for env in container["env"].as_array().into_iter().flatten() {
                if let Some(secret) = env["valueFrom"]["secretKeyRef"]["name"].as_str() {
                    assert!(
                        exists(&objects, "Secret", Some(ns), secret),
                        "Deployment {} reads Secret {secret}, which is not installed",
                        name(deployment)
                    );
                }
            }
        }
    }
}

#[test]
fn rbac_bindings_reference_installed_roles_and_accounts() {
    let objects = installed_objects();

    for binding in of_kind(&objects, "RoleBinding")
        .into_iter()
        .chain(of_kind(&objects, "ClusterRoleBinding"))
    {
        let role_kind = binding["roleRef"]["kind"]
            .as_str()
            .expect("a binding names its role kind");
        let role = binding["roleRef"]["name"]
            .as_str()
            .expect("a binding names its role");
        let role_ns = (role_kind == "Role").then(|| namespace(binding));
        assert!(
            exists(&objects, role_kind, role_ns, role),
            "{} {} binds {role_kind} {role}, which is not installed",
            binding["kind"],
            name(binding)
        );
        for subject in binding["subjects"].as_array().into_iter().flatten() {
            if subject["kind"] == "ServiceAccount" {
                let account = subject["name"].as_str().expect("a subject has a name");
                let ns = subject["namespace"].as_str();
                assert!(
                    exists(&objects, "ServiceAccount", ns, account),
                    "{} binds ServiceAccount {account}, which is not installed",
                    name(binding)
                );
            }
        }
    }
}

#[test]
fn services_select_installed_pods() {
    let objects = installed_objects();

    for service in of_kind(&objects, "Service") {
        let selector = service["spec"]["selector"]
            .as_object()
            .expect("a Service selects pods");
        let selected = of_kind(&objects, "Deployment").into_iter().any(|deployment| {
            let labels = &deployment["spec"]["template"]["metadata"]["labels"];
            namespace(deployment) == namespace(service)
                && selector.iter().all(|(key, value)| &labels[key] == value)
        });
        assert!(selected, "Service {} selects no installed pod", name(service));
    }
}

#[test]
fn hermes_deployments_are_probed_and_locked_down() {
    let objects = installed_objects();

    for deployment in of_kind(&objects, "Deployment") {
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"],
            true,
            "{}",
            name(deployment)
        );
        for container in containers(deployment) {
            let security = &container["securityContext"];
            let context = format!("{} container {}", name(deployment), container["name"]);
            assert_eq!(security["allowPrivilegeEscalation"], false, "{context}");
            assert_eq!(security["readOnlyRootFilesystem"], true, "{context}");
            assert_eq!(
                security["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{context}"
            );
            assert!(
                container["resources"]["requests"].is_object(),
                "{context} requests no resources"
            );
        }
    }

    for hermes in ["hermes-operator", "hermes-server"] {
        let deployment = of_kind(&objects, "Deployment")
            .into_iter()
            .find(|d| name(d) == hermes)
            .expect("the Hermes Deployments are installed");
        let container = containers(deployment)[0];
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{hermes}"
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{hermes}"
        );
        let reads_keyring = container["env"].as_array().into_iter().flatten().any(|env| {
            env["name"] == "HERMES_ENCRYPTION_KEYS"
                && env["valueFrom"]["secretKeyRef"]["name"] == "hermes-encryption-keys"
        });
        assert!(
            reads_keyring,
            "{hermes} reads its keyring from the encryption-key Secret"
        );
    }
}

#[test]
fn the_operator_role_grants_what_the_controllers_use_and_no_deletes() {
    let objects = installed_objects();
    let rules = |kind: &str, wanted: &str| -> Vec<Value> {
        objects
            .iter()
            .find(|o| o["kind"] == kind && name(o) == wanted)
            .and_then(|role| role["rules"].as_array().cloned())
            .unwrap_or_else(|| panic!("{kind} {wanted} is installed"))
    };
    let grants = |rules: &[Value], resource: &str| -> BTreeSet<String> {
        rules
            .iter()
            .filter(|rule| {
                rule["resources"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r == resource))
            })
            .flat_map(|rule| rule["verbs"].as_array().cloned().unwrap_or_default())
            .filter_map(|verb| verb.as_str().map(str::to_owned))
            .collect()
    };
    let set = |verbs: &[&str]| verbs.iter().map(|v| (*v).to_owned()).collect::<BTreeSet<_>>();

    let cluster = rules("ClusterRole", "hermes-operator");
    assert_eq!(
        grants(&cluster, "customers"),
        set(&["get", "list", "watch", "patch", "update"])
    );
    assert_eq!(
        grants(&cluster, "platformconnections/status"),
        set(&["get", "patch", "update"])
    );
    assert_eq!(grants(&cluster, "customers/finalizers"), set(&["update"]));
    assert_eq!(
        grants(&cluster, "secrets"),
        set(&["get", "list", "watch", "create", "update"])
    );
    assert_eq!(grants(&cluster, "events"), set(&["create", "patch"]));
    assert!(
        grants(&cluster, "leases").is_empty(),
        "leases are granted in one namespace only"
    );

    let lease = rules("Role", "hermes-operator-leader-election");
    assert_eq!(
        grants(&lease, "leases"),
        set(&["get", "create", "update", "patch"])
    );

    let server = rules("ClusterRole", "hermes-server");
    assert_eq!(grants(&server, "customers"), set(&["get", "list", "watch"]));
    assert!(grants(&server, "secrets").contains("create"));
    assert!(
        !grants(&server, "secrets").contains("list"),
        "the server never lists Secrets"
    );
}
