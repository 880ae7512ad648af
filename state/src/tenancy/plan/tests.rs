use hermes_crds::{CustomerSpec, Plan, PlatformConnectionSpec};
use serde_json::json;

use super::*;
use crate::tenancy::requirements::fields::*;

/// Every secret value the fixtures hold contains this, so one `contains`
/// check proves no value reached an error message.
const SECRET_MARK: &str = "s3cr3t-VALUE";

const NAMESPACE: &str = "tenants";

fn customer(name: &str) -> Customer {
    let spec: CustomerSpec = serde_json::from_value(json!({
        "displayName": "Acme",
        "email": "ops@acme.example",
        "plan": "pro",
    }))
    .expect("the fixture is a valid Customer spec");
    let mut customer = Customer::new(name, spec);
    customer.metadata.namespace = Some(NAMESPACE.into());
    customer
}

/// The settings block a valid connection to `platform` carries.
fn block(platform: Platform) -> serde_json::Value {
    match platform {
        Platform::Email => {
            json!({"smtpHost": "smtp.acme.example", "smtpPort": 465, "fromAddress": "bot@acme.example"})
        }
        Platform::Whatsapp => {
            json!({"phoneNumberId": "106540352242922", "businessAccountId": "102290129340398"})
        }
        Platform::Linkedin => json!({"authorUrn": "urn:li:person:abc123", "apiVersion": "202601"}),
        Platform::Telegram => json!({"botUsername": "acme_bot"}),
        Platform::Discord => json!({"applicationId": "1234567890"}),
        Platform::Instagram => json!({"userId": "17841400000000000"}),
        Platform::X => json!({"username": "acme"}),
        Platform::Obsidian => json!({"baseUrl": "https://127.0.0.1:27124"}),
    }
}

fn spec(platform: Platform, sandbox: bool) -> serde_json::Value {
    let mut spec = json!({
        "customerRef": "acme",
        "platform": platform,
        "secretRef": {"name": format!("acme-{platform}")},
        "sandbox": sandbox,
    });
    spec[platform.as_str()] = block(platform);
    spec
}

fn connection_from(spec: serde_json::Value) -> PlatformConnection {
    let spec: PlatformConnectionSpec =
        serde_json::from_value(spec).expect("the fixture is a valid connection spec");
    let mut connection = PlatformConnection::new(&format!("acme-{}", spec.platform), spec);
    connection.metadata.namespace = Some(NAMESPACE.into());
    connection
}

fn connection(platform: Platform) -> PlatformConnection {
    connection_from(spec(platform, false))
}

fn sandbox_connection(platform: Platform) -> PlatformConnection {
    connection_from(spec(platform, true))
}

/// A Secret with every field the platform knows (for X, both alternatives),
/// each value marked.
fn full_secret(platform: Platform) -> SecretData {
    secret_requirements(platform)
        .known_fields()
        .map(|field| (field, format!("{SECRET_MARK}-{field}")))
        .collect()
}

/// A Secret with exactly `fields`, each value marked.
fn secret_with(fields: &[&str]) -> SecretData {
    fields
        .iter()
        .map(|field| (*field, format!("{SECRET_MARK}-{field}")))
        .collect()
}

fn plan(platform: Platform, secret: &SecretData) -> ConnectionPlan {
    plan_connection(&customer("acme"), &connection(platform), Some(secret)).expect("the fixture plans")
}

fn assert_no_secret_in(error: &TenancyError) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    assert!(
        !display.contains(SECRET_MARK),
        "Display leaks a secret: {display}"
    );
    assert!(!debug.contains(SECRET_MARK), "Debug leaks a secret: {debug}");
}

fn missing_fields(error: TenancyError) -> (Platform, Vec<String>) {
    match error {
        TenancyError::MissingSecretFields { platform, fields } => (platform, fields),
        other => panic!("expected MissingSecretFields, got {other:?}"),
    }
}

// --- required secret fields ---

#[test]
fn every_platform_plans_with_a_full_secret() {
    for platform in Platform::ALL {
        let plan = plan_connection(
            &customer("acme"),
            &connection(platform),
            Some(&full_secret(platform)),
        );

        assert!(plan.is_ok(), "{platform}: {plan:?}");
    }
}

#[test]
fn missing_each_required_field_is_an_error_naming_exactly_that_field() {
    for platform in Platform::ALL {
        for alternative in secret_requirements(platform).alternatives() {
            for &dropped in *alternative {
                let rest: Vec<&str> = alternative.iter().copied().filter(|f| *f != dropped).collect();
                let secret = secret_with(&rest);

                let error = plan_connection(&customer("acme"), &connection(platform), Some(&secret))
                    .expect_err("a required field is missing");

                assert_no_secret_in(&error);
                assert_eq!(
                    missing_fields(error),
                    (platform, vec![dropped.to_owned()]),
                    "{platform}"
                );
            }
        }
    }
}

#[test]
fn the_documented_fields_are_required_per_platform() {
    let required = |platform| {
        let error = plan_connection(&customer("acme"), &connection(platform), Some(&SecretData::new()))
            .expect_err("an empty Secret lacks fields");
        missing_fields(error).1
    };

    assert_eq!(required(Platform::Whatsapp), [ACCESS_TOKEN]);
    assert_eq!(required(Platform::Telegram), [BOT_TOKEN, WEBHOOK_SECRET_TOKEN]);
    assert_eq!(required(Platform::Discord), [BOT_TOKEN]);
    assert_eq!(required(Platform::Email), [SMTP_USERNAME, SMTP_PASSWORD]);
    assert_eq!(required(Platform::Linkedin), [ACCESS_TOKEN]);
    assert_eq!(required(Platform::Instagram), [ACCESS_TOKEN]);
    assert_eq!(required(Platform::X), [BEARER_TOKEN]);
    assert_eq!(required(Platform::Obsidian), [API_KEY]);
}

#[test]
fn optional_fields_may_be_absent() {
    let whatsapp = plan(Platform::Whatsapp, &secret_with(&[ACCESS_TOKEN]));
    let email = plan(Platform::Email, &secret_with(&[SMTP_USERNAME, SMTP_PASSWORD]));

    assert_eq!(whatsapp.credentials.secret(APP_SECRET), None);
    assert_eq!(email.credentials.secret(IMAP_PASSWORD), None);
}

#[test]
fn optional_fields_present_are_sealed() {
    let whatsapp = plan(Platform::Whatsapp, &secret_with(&[ACCESS_TOKEN, APP_SECRET]));

    assert_eq!(
        whatsapp.credentials.secret(APP_SECRET),
        Some(format!("{SECRET_MARK}-{APP_SECRET}").as_str())
    );
}

#[test]
fn x_accepts_a_bearer_token_alone() {
    let plan = plan(Platform::X, &secret_with(&[BEARER_TOKEN]));

    assert_eq!(
        plan.credentials.secrets.keys().collect::<Vec<_>>(),
        [BEARER_TOKEN]
    );
}

#[test]
fn x_accepts_the_four_oauth1_fields_without_a_bearer_token() {
    let oauth1 = [CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET];

    let plan = plan(Platform::X, &secret_with(&oauth1));

    assert_eq!(plan.credentials.secrets.len(), 4);
    assert_eq!(plan.credentials.secret(BEARER_TOKEN), None);
}

#[test]
fn x_with_part_of_oauth1_names_the_missing_oauth1_fields() {
    let secret = secret_with(&[CONSUMER_KEY, ACCESS_TOKEN]);

    let error = plan_connection(&customer("acme"), &connection(Platform::X), Some(&secret))
        .expect_err("half of OAuth 1.0a is not enough");

    assert!(
        error.to_string().contains("bearerToken, or all of consumerKey"),
        "{error}"
    );
    assert_eq!(missing_fields(error).1, [CONSUMER_SECRET, ACCESS_TOKEN_SECRET]);
}

#[test]
fn a_blank_required_value_counts_as_missing() {
    let secret: SecretData = [(BOT_TOKEN, "   "), (WEBHOOK_SECRET_TOKEN, "hook")]
        .into_iter()
        .collect();

    let error = plan_connection(&customer("acme"), &connection(Platform::Telegram), Some(&secret))
        .expect_err("a blank token is no token");

    assert_eq!(missing_fields(error).1, [BOT_TOKEN]);
}

#[test]
fn unknown_secret_fields_are_not_sealed() {
    let mut secret = full_secret(Platform::Discord);
    secret.insert("databasePassword", "unrelated");

    let plan = plan(Platform::Discord, &secret);

    assert_eq!(plan.credentials.secrets.keys().collect::<Vec<_>>(), [BOT_TOKEN]);
}

// --- secrets and sandboxes ---

#[test]
fn a_connection_that_is_not_a_sandbox_needs_a_secret() {
    let error = plan_connection(&customer("acme"), &connection(Platform::Whatsapp), None)
        .expect_err("no Secret, no credentials");

    assert!(
        matches!(&error, TenancyError::SecretRequired { platform: Platform::Whatsapp, secret_name: Some(name) } if name == "acme-whatsapp"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("\"acme-whatsapp\" named by spec.secretRef was not found"),
        "{error}"
    );
}

#[test]
fn a_connection_without_secret_ref_is_told_to_set_one() {
    let mut spec = spec(Platform::Discord, false);
    spec.as_object_mut()
        .expect("the spec is an object")
        .remove("secretRef");

    let error = plan_connection(&customer("acme"), &connection_from(spec), None).expect_err("no Secret");

    assert!(error.to_string().contains("set spec.secretRef"), "{error}");
}

#[test]
fn a_sandbox_plans_without_a_secret() {
    for platform in Platform::ALL {
        let plan = plan_connection(&customer("acme"), &sandbox_connection(platform), None)
            .expect("a sandbox needs no Secret");

        assert!(plan.sandbox(), "{platform}");
        assert!(plan.credentials.secrets.is_empty(), "{platform}");
    }
}

#[test]
fn a_sandbox_uses_the_fields_of_a_partial_secret() {
    let secret = secret_with(&[BOT_TOKEN]);

    let plan = plan_connection(
        &customer("acme"),
        &sandbox_connection(Platform::Telegram),
        Some(&secret),
    )
    .expect("a sandbox requires no field");

    assert_eq!(plan.credentials.secrets.keys().collect::<Vec<_>>(), [BOT_TOKEN]);
}

// --- ownership and shape ---

#[test]
fn a_customer_ref_naming_another_customer_is_refused() {
    let error = plan_connection(
        &customer("globex"),
        &connection(Platform::Discord),
        Some(&full_secret(Platform::Discord)),
    )
    .expect_err("the connection belongs to acme");

    assert_no_secret_in(&error);
    assert!(
        matches!(&error, TenancyError::CustomerRefMismatch { customer_ref, customer } if customer_ref == "acme" && customer == "globex"),
        "{error:?}"
    );
}

#[test]
fn a_customer_in_another_namespace_is_refused() {
    let mut acme = customer("acme");
    acme.metadata.namespace = Some("elsewhere".into());

    let error = plan_connection(
        &acme,
        &connection(Platform::Discord),
        Some(&full_secret(Platform::Discord)),
    )
    .expect_err("a connection must live with its customer");

    assert!(
        matches!(error, TenancyError::NamespaceMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn resources_without_a_namespace_share_the_default_one() {
    let mut acme = customer("acme");
    acme.metadata.namespace = None;
    let mut discord = connection(Platform::Discord);
    discord.metadata.namespace = Some("default".into());

    let plan = plan_connection(&acme, &discord, Some(&full_secret(Platform::Discord)));

    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn a_customer_name_that_is_not_a_valid_id_is_refused() {
    let mut spec = spec(Platform::Discord, false);
    spec["customerRef"] = json!("Acme_Corp");

    let error = plan_connection(
        &customer("Acme_Corp"),
        &connection_from(spec),
        Some(&full_secret(Platform::Discord)),
    )
    .expect_err("uppercase and underscores are not valid ids");

    assert!(matches!(error, TenancyError::InvalidCustomerId(_)), "{error:?}");
}

#[test]
fn a_missing_platform_block_is_refused() {
    let mut spec = spec(Platform::Whatsapp, false);
    spec.as_object_mut()
        .expect("the spec is an object")
        .remove("whatsapp");

    let error = plan_connection(
        &customer("acme"),
        &connection_from(spec),
        Some(&full_secret(Platform::Whatsapp)),
    )
    .expect_err("the whatsapp block is required");

    assert!(
        matches!(
            error,
            TenancyError::PlatformBlockMissing {
                platform: Platform::Whatsapp
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "spec.platform is whatsapp but spec.whatsapp is missing"
    );
}

#[test]
fn a_block_of_another_platform_is_refused_naming_it() {
    let mut spec = spec(Platform::Whatsapp, false);
    spec["telegram"] = block(Platform::Telegram);

    let error = plan_connection(
        &customer("acme"),
        &connection_from(spec),
        Some(&full_secret(Platform::Whatsapp)),
    )
    .expect_err("a telegram block has no place on a whatsapp connection");

    assert_no_secret_in(&error);
    assert!(
        matches!(&error, TenancyError::PlatformBlockMismatch { platform: Platform::Whatsapp, blocks } if blocks == &[Platform::Telegram]),
        "{error:?}"
    );
}

#[test]
fn only_a_wrong_block_is_reported_as_a_mismatch() {
    let mut spec = spec(Platform::Whatsapp, false);
    spec.as_object_mut()
        .expect("the spec is an object")
        .remove("whatsapp");
    spec["instagram"] = block(Platform::Instagram);

    let error = plan_connection(
        &customer("acme"),
        &connection_from(spec),
        Some(&full_secret(Platform::Whatsapp)),
    )
    .expect_err("an instagram block on a whatsapp connection");

    assert!(
        matches!(error, TenancyError::PlatformBlockMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn settings_carry_the_platform_block_in_camel_case() {
    let plan = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp));

    assert_eq!(plan.credentials.settings, block(Platform::Whatsapp));
    assert_eq!(plan.credentials.platform, Platform::Whatsapp);
}

#[test]
fn settings_defaults_are_written_out() {
    let plan = plan(Platform::Email, &full_secret(Platform::Email));

    assert_eq!(plan.credentials.settings["smtpTls"], json!("implicit"));
}

#[test]
fn api_base_is_carried_into_the_credentials() {
    let mut spec = spec(Platform::Discord, false);
    spec["apiBase"] = json!("http://127.0.0.1:9000/api/v10");

    let plan = plan_connection(
        &customer("acme"),
        &connection_from(spec),
        Some(&full_secret(Platform::Discord)),
    )
    .expect("a loopback http base is allowed");

    assert_eq!(
        plan.credentials.api_base.as_deref(),
        Some("http://127.0.0.1:9000/api/v10")
    );
}

#[test]
fn an_api_base_that_is_not_an_http_url_is_refused() {
    for bad in [
        "ftp://example.com",
        "example.com",
        "https://",
        "https://exa mple.com",
    ] {
        let mut spec = spec(Platform::Discord, false);
        spec["apiBase"] = json!(bad);

        let error = plan_connection(
            &customer("acme"),
            &connection_from(spec),
            Some(&full_secret(Platform::Discord)),
        )
        .expect_err("not an http(s) URL");

        assert!(
            matches!(
                error,
                TenancyError::InvalidSetting {
                    field: "spec.apiBase",
                    ..
                }
            ),
            "{bad}: {error:?}"
        );
    }
}

// --- routes ---

#[test]
fn whatsapp_routes_by_phone_number_id() {
    let plan = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp));

    assert_eq!(
        plan.routes,
        [Route {
            platform: Platform::Whatsapp,
            id: "106540352242922".into()
        }]
    );
    assert_eq!(plan.route_keys(), ["wa_phone_id:106540352242922"]);
}

#[test]
fn instagram_routes_by_user_id() {
    let plan = plan(Platform::Instagram, &full_secret(Platform::Instagram));

    assert_eq!(
        plan.routes,
        [Route {
            platform: Platform::Instagram,
            id: "17841400000000000".into()
        }]
    );
}

#[test]
fn telegram_routes_by_namespace_and_connection_name() {
    let plan = plan(Platform::Telegram, &full_secret(Platform::Telegram));

    assert_eq!(
        plan.routes,
        [Route {
            platform: Platform::Telegram,
            id: "tenants.acme-telegram".into()
        }]
    );
    assert_eq!(plan.route_keys(), ["tg_connection:tenants.acme-telegram"]);
}

#[test]
fn platforms_without_inbound_webhooks_have_no_routes() {
    for platform in [
        Platform::Email,
        Platform::Linkedin,
        Platform::Discord,
        Platform::X,
        Platform::Obsidian,
    ] {
        assert!(
            plan(platform, &full_secret(platform)).routes.is_empty(),
            "{platform}"
        );
    }
}

#[test]
fn a_route_id_that_cannot_be_a_key_is_refused() {
    for bad in ["", "1065 4035", "wa:1065", "{acme}", "1065/../x"] {
        let mut spec = spec(Platform::Whatsapp, false);
        spec["whatsapp"]["phoneNumberId"] = json!(bad);

        let error = plan_connection(
            &customer("acme"),
            &connection_from(spec),
            Some(&full_secret(Platform::Whatsapp)),
        )
        .expect_err("not a usable route id");

        assert!(
            matches!(
                error,
                TenancyError::InvalidSetting {
                    field: "spec.whatsapp.phoneNumberId",
                    ..
                }
            ),
            "{bad:?}: {error:?}"
        );
    }
}

#[test]
fn route_keys_parse_back_into_routes_for_every_platform() {
    for platform in Platform::ALL {
        let route = Route {
            platform,
            id: "abc-123.x".into(),
        };

        assert_eq!(
            route_from_key(&keyspace::route(&route)),
            Some(route),
            "{platform}"
        );
    }
}

#[test]
fn strings_that_are_not_route_keys_parse_to_nothing() {
    for key in ["", "wa_phone_id:", "creds:{acme}:whatsapp", "106540352242922"] {
        assert_eq!(route_from_key(key), None, "{key:?}");
    }
}

#[test]
fn telegram_connection_id_needs_a_name() {
    let mut telegram = connection(Platform::Telegram);
    telegram.metadata.name = None;

    let error = telegram_connection_id(&telegram).expect_err("no name, no id");

    assert!(matches!(
        error,
        TenancyError::NameMissing {
            kind: "PlatformConnection"
        }
    ));
}

// --- fingerprints ---

#[test]
fn an_unchanged_secret_gives_the_same_fingerprint() {
    let keyring = Keyring::generate("k1");

    let first = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp)).fingerprint(&keyring);
    let second = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp)).fingerprint(&keyring);

    assert_eq!(first, second);
    assert!(first.starts_with("k1:"), "{first}");
}

#[test]
fn a_changed_secret_gives_another_fingerprint() {
    let keyring = Keyring::generate("k1");
    let mut rotated = full_secret(Platform::Whatsapp);
    rotated.insert(ACCESS_TOKEN, "a-new-token");

    let before = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp)).fingerprint(&keyring);
    let after = plan(Platform::Whatsapp, &rotated).fingerprint(&keyring);

    assert_ne!(before, after);
}

#[test]
fn a_changed_setting_gives_another_fingerprint() {
    let keyring = Keyring::generate("k1");
    let mut spec = spec(Platform::Whatsapp, false);
    spec["whatsapp"]["phoneNumberId"] = json!("999");

    let before = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp)).fingerprint(&keyring);
    let after = plan_connection(
        &customer("acme"),
        &connection_from(spec),
        Some(&full_secret(Platform::Whatsapp)),
    )
    .expect("the fixture plans")
    .fingerprint(&keyring);

    assert_ne!(before, after);
}

#[test]
fn a_rotated_primary_key_gives_another_fingerprint() {
    let old = Keyring::parse(&format!("k1:{}", "11".repeat(32))).expect("valid keyring");
    let rotated =
        Keyring::parse(&format!("k2:{},k1:{}", "22".repeat(32), "11".repeat(32))).expect("valid keyring");
    let plan = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp));

    let before = plan.fingerprint(&old);
    let after = plan.fingerprint(&rotated);

    assert_ne!(before, after);
    assert!(after.starts_with("k2:"), "{after}");
}

#[test]
fn equal_credentials_of_two_customers_give_different_fingerprints() {
    let keyring = Keyring::generate("k1");
    let mut globex_spec = spec(Platform::Discord, false);
    globex_spec["customerRef"] = json!("globex");

    let acme = plan(Platform::Discord, &full_secret(Platform::Discord));
    let globex = plan_connection(
        &customer("globex"),
        &connection_from(globex_spec),
        Some(&full_secret(Platform::Discord)),
    )
    .expect("the fixture plans");

    assert_eq!(acme.credentials, globex.credentials);
    assert_ne!(acme.fingerprint(&keyring), globex.fingerprint(&keyring));
}

#[test]
fn a_fingerprint_does_not_contain_a_secret() {
    let keyring = Keyring::generate("k1");

    let fingerprint = plan(Platform::Whatsapp, &full_secret(Platform::Whatsapp)).fingerprint(&keyring);

    assert!(!fingerprint.contains(SECRET_MARK), "{fingerprint}");
}

// --- customers and API keys ---

#[test]
fn an_active_customer_summary_carries_plan_and_overrides() {
    let mut acme = customer("acme");
    acme.spec.limits = Some(hermes_crds::LimitOverrides {
        requests_per_minute: Some(600),
        tool_calls_per_month: None,
    });

    let summary = customer_summary(&acme).expect("acme is a valid id");

    assert_eq!(summary.id.as_str(), "acme");
    assert_eq!(summary.plan, Plan::Pro);
    assert!(summary.active);
    assert_eq!(summary.requests_per_minute, Some(600));
    assert_eq!(summary.tool_calls_per_month, None);
}

#[test]
fn a_suspended_customer_summary_is_inactive() {
    let mut acme = customer("acme");
    acme.spec.suspended = true;

    let summary = customer_summary(&acme).expect("acme is a valid id");

    assert!(!summary.active);
}

#[test]
fn a_customer_summary_needs_a_valid_id() {
    let error = customer_summary(&customer("Not Valid")).expect_err("spaces are not valid in ids");

    assert_eq!(error.reason(), "InvalidCustomerId");
}

#[test]
fn generated_api_keys_are_prefixed_url_safe_and_distinct() {
    let first = generate_api_key();
    let second = generate_api_key();

    assert!(first.starts_with(API_KEY_PREFIX), "{}", first.as_str());
    assert_eq!(first.len(), 46);
    let body = &first[API_KEY_PREFIX.len()..];
    assert!(
        body.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{}",
        first.as_str()
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(body).expect("the body is base64").len(),
        32
    );
    assert_ne!(first, second);
}

// --- secrets never leak ---

#[test]
fn no_planning_error_carries_a_secret_value() {
    let everything = || {
        let mut secret = SecretData::new();
        for platform in Platform::ALL {
            for field in secret_requirements(platform).known_fields() {
                secret.insert(field, format!("{SECRET_MARK}-{field}"));
            }
        }
        secret.insert("unknownField", SECRET_MARK);
        secret
    };
    let without = |spec: &mut serde_json::Value, key: &str| {
        spec.as_object_mut().expect("the spec is an object").remove(key);
    };

    let mut wrong_block = spec(Platform::Whatsapp, false);
    wrong_block["discord"] = block(Platform::Discord);
    let mut no_block = spec(Platform::Whatsapp, false);
    without(&mut no_block, "whatsapp");
    let mut bad_route = spec(Platform::Whatsapp, false);
    bad_route["whatsapp"]["phoneNumberId"] = json!(format!("{SECRET_MARK} x"));
    let mut bad_base = spec(Platform::Whatsapp, false);
    bad_base["apiBase"] = json!(format!("ftp://{SECRET_MARK}"));
    let mut other_customer = spec(Platform::Whatsapp, false);
    other_customer["customerRef"] = json!("globex");
    let partial_x: SecretData = [
        (CONSUMER_KEY, format!("{SECRET_MARK}-ck")),
        ("bearerToken", " ".into()),
    ]
    .into_iter()
    .collect();

    let cases: Vec<(&str, Result<ConnectionPlan, TenancyError>)> = vec![
        (
            "wrong block",
            plan_connection(
                &customer("acme"),
                &connection_from(wrong_block),
                Some(&everything()),
            ),
        ),
        (
            "no block",
            plan_connection(&customer("acme"), &connection_from(no_block), Some(&everything())),
        ),
        (
            "other customer",
            plan_connection(
                &customer("acme"),
                &connection_from(other_customer),
                Some(&everything()),
            ),
        ),
        (
            "missing fields",
            plan_connection(&customer("acme"), &connection(Platform::X), Some(&partial_x)),
        ),
        (
            "no secret",
            plan_connection(&customer("acme"), &connection(Platform::X), None),
        ),
        (
            "bad base",
            plan_connection(&customer("acme"), &connection_from(bad_base), Some(&everything())),
        ),
        (
            "bad route",
            plan_connection(
                &customer("acme"),
                &connection_from(bad_route),
                Some(&everything()),
            ),
        ),
    ];

    for (case, result) in cases {
        let error = result.expect_err(case);
        assert_no_secret_in(&error);
    }
}

#[test]
fn a_plan_debug_names_fields_but_not_values() {
    let plan = plan(Platform::Email, &full_secret(Platform::Email));

    let debug = format!("{plan:?}");

    assert!(debug.contains(SMTP_PASSWORD), "{debug}");
    assert!(!debug.contains(SECRET_MARK), "{debug}");
}

#[test]
fn every_error_reason_is_camel_case() {
    let errors = [
        TenancyError::SecretRequired {
            platform: Platform::X,
            secret_name: None,
        },
        TenancyError::PlatformBlockMissing {
            platform: Platform::X,
        },
        TenancyError::NameMissing { kind: "Customer" },
    ];

    for error in errors {
        let reason = error.reason();
        assert!(reason.chars().all(|c| c.is_ascii_alphanumeric()), "{reason}");
        assert!(reason.starts_with(|c: char| c.is_ascii_uppercase()), "{reason}");
    }
}
