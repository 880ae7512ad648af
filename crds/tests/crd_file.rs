//! The committed CRD file is generated: this test is both its check and its
//! generator. Run with `HERMES_BLESS=1` to rewrite the file from the types.

use std::path::PathBuf;

use hermes_crds::{Customer, PlatformConnection, crd_yaml};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

fn committed_crd_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/crds/hermes.squaremcp.com.yaml")
}

fn bless_requested() -> bool {
    std::env::var("HERMES_BLESS").is_ok_and(|value| value == "1")
}

/// The first line that differs, so a failure points at the drift instead of
/// printing two files of several hundred lines.
fn first_difference(committed: &str, generated: &str) -> String {
    let mut committed_lines = committed.lines();
    let mut generated_lines = generated.lines();
    for number in 1.. {
        match (committed_lines.next(), generated_lines.next()) {
            (None, None) => break,
            (left, right) if left == right => continue,
            (left, right) => {
                return format!("line {number}:\n  committed: {left:?}\n  generated: {right:?}");
            }
        }
    }
    "the files differ only in line endings or the final newline".to_owned()
}

#[test]
fn committed_crd_file_equals_crd_yaml() {
    let path = committed_crd_file();
    let generated = crd_yaml();

    if bless_requested() {
        std::fs::write(&path, &generated).expect("manifests/crds is writable");
        return;
    }

    let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}.\nGenerate it with: HERMES_BLESS=1 cargo test -p hermes-crds --test crd_file",
            path.display()
        )
    });
    assert!(
        committed == generated,
        "{} is out of date with the hermes-crds types ({}).\n\
         Regenerate it with: HERMES_BLESS=1 cargo test -p hermes-crds --test crd_file",
        path.display(),
        first_difference(&committed, &generated),
    );
}

#[test]
fn crd_yaml_parses_back_into_the_generated_definitions() {
    let yaml = crd_yaml();

    let parsed: Vec<CustomResourceDefinition> =
        serde_saphyr::from_str_multiple(&yaml).expect("crd_yaml is valid multi-document YAML");

    assert_eq!(parsed, vec![Customer::crd(), PlatformConnection::crd()]);
}

#[test]
fn crd_yaml_opens_with_the_generated_by_comment() {
    let yaml = crd_yaml();

    let first_line = yaml.lines().next().unwrap_or_default();

    assert!(
        first_line.starts_with('#'),
        "first line is not a comment: {first_line:?}"
    );
    assert!(
        first_line.contains("hermes-operator crds"),
        "first line: {first_line:?}"
    );
}

#[test]
fn both_crds_carry_cel_validation_rules() {
    for crd in [Customer::crd(), PlatformConnection::crd()] {
        let json = serde_json::to_string(&crd).expect("a CRD serializes to JSON");

        assert!(
            json.contains("x-kubernetes-validations"),
            "{} has no CEL rules",
            crd.spec.names.kind
        );
    }
}

#[test]
fn both_crds_declare_short_names_status_subresource_and_printer_columns() {
    let expected = [
        (Customer::crd(), "cust", "Plan"),
        (PlatformConnection::crd(), "pconn", "Platform"),
    ];

    for (crd, short_name, column) in expected {
        let kind = &crd.spec.names.kind;
        let version = &crd.spec.versions[0];

        assert_eq!(
            crd.spec.names.short_names,
            Some(vec![short_name.to_owned()]),
            "{kind}"
        );
        assert!(
            version.subresources.as_ref().is_some_and(|s| s.status.is_some()),
            "{kind} has no status subresource"
        );
        let columns = version.additional_printer_columns.as_deref().unwrap_or_default();
        assert!(
            columns.iter().any(|c| c.name == column),
            "{kind} has no {column} column"
        );
        assert!(
            columns.iter().any(|c| c.name == "Ready"),
            "{kind} has no Ready column"
        );
    }
}
