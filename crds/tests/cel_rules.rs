//! The CEL rules in the CRDs, evaluated client-side with the same engine
//! kube's `validate_cel` uses. What these tests accept and reject is what
//! the apiserver accepts and rejects at `kubectl apply`.

use hermes_crds::{
    Customer, CustomerSpec, Delivery, DiscordSettings, EmailSettings, InstagramSettings, LinkedinSettings,
    ObsidianSettings, Plan, Platform, PlatformConnection, PlatformConnectionSpec, SecretKeyRef, SecretRef,
    TelegramSettings, WhatsappSettings, XSettings,
};
use kube::CustomResourceExt;
use kube::core::cel::{ValidationErrors, Validator};
use serde_json::{Value, json};

// ---------------------------------------------------------------- fixtures

fn customer() -> Customer {
    Customer::new(
        "acme",
        CustomerSpec {
            display_name: "Acme Corporation".to_owned(),
            email: "ops@acme.example".to_owned(),
            plan: Plan::Pro,
            suspended: false,
            api_key_secret_ref: None,
            delivery: None,
            limits: None,
        },
    )
}

fn empty_spec(platform: Platform) -> PlatformConnectionSpec {
    PlatformConnectionSpec {
        customer_ref: "acme".to_owned(),
        platform,
        secret_ref: Some(SecretRef {
            name: format!("acme-{platform}"),
        }),
        sandbox: false,
        api_base: None,
        whatsapp: None,
        telegram: None,
        discord: None,
        email: None,
        linkedin: None,
        instagram: None,
        x: None,
        obsidian: None,
    }
}

/// Sets the settings block named after `platform` on `spec`, leaving the others as they are.
fn set_block(spec: &mut PlatformConnectionSpec, platform: Platform) {
    match platform {
        Platform::Whatsapp => {
            spec.whatsapp = Some(WhatsappSettings {
                phone_number_id: "106540352242922".to_owned(),
                business_account_id: "102290129340398".to_owned(),
            });
        }
        Platform::Telegram => {
            spec.telegram = Some(TelegramSettings {
                bot_username: "acme_support_bot".to_owned(),
            });
        }
        Platform::Discord => {
            spec.discord = Some(DiscordSettings {
                application_id: "1187654321098765432".to_owned(),
                default_channel_id: None,
            });
        }
        Platform::Email => {
            spec.email = Some(EmailSettings {
                smtp_host: "smtp.acme.example".to_owned(),
                smtp_port: 587,
                smtp_tls: Default::default(),
                from_address: "support@acme.example".to_owned(),
                imap_host: None,
                imap_port: None,
            });
        }
        Platform::Linkedin => {
            spec.linkedin = Some(LinkedinSettings {
                author_urn: "urn:li:organization:2414183".to_owned(),
                api_version: "202506".to_owned(),
            });
        }
        Platform::Instagram => {
            spec.instagram = Some(InstagramSettings {
                user_id: "17841405822304914".to_owned(),
                login: Default::default(),
            });
        }
        Platform::X => spec.x = Some(XSettings::default()),
        Platform::Obsidian => {
            spec.obsidian = Some(ObsidianSettings {
                base_url: "https://127.0.0.1:27124".to_owned(),
                certificate_verification: Default::default(),
            });
        }
    }
}

/// A valid, non-sandbox connection on `platform` with its block set.
fn connection(platform: Platform) -> PlatformConnection {
    let mut spec = empty_spec(platform);
    set_block(&mut spec, platform);
    PlatformConnection::new(&format!("acme-{platform}"), spec)
}

/// The rejection messages, joined, so an assertion can name the rule that fired.
fn messages(result: Result<(), ValidationErrors>) -> String {
    match result {
        Ok(()) => String::new(),
        Err(errors) => errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Validates raw JSON against a CRD's schema, the way the apiserver sees a
/// manifest that typed Rust could not even express (a negative limit).
fn validate_raw<K: CustomResourceExt>(object: &Value) -> Result<(), ValidationErrors> {
    let crd = K::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("a derived CRD has an openAPIV3Schema");
    let schema = serde_json::to_value(schema).expect("a schema serializes to JSON");
    Validator::new().validate(&schema, object, None)
}

// ------------------------------------------------------- PlatformConnection

#[test]
fn a_connection_with_its_platform_block_passes_for_every_platform() {
    for platform in Platform::ALL {
        let pconn = connection(platform);

        let result = pconn.validate_cel();

        assert!(result.is_ok(), "{platform}: {}", messages(result));
    }
}

#[test]
fn a_connection_without_its_platform_block_is_rejected_for_every_platform() {
    for platform in Platform::ALL {
        let pconn = PlatformConnection::new("acme", empty_spec(platform));

        let rejected = messages(pconn.validate_cel());

        let expected = format!(
            "spec.{platform} is required when platform is {platform} and no other platform block may be set"
        );
        assert!(rejected.contains(&expected), "{platform}: got {rejected:?}");
    }
}

#[test]
fn a_connection_with_another_platforms_block_instead_of_its_own_is_rejected() {
    let mut spec = empty_spec(Platform::Whatsapp);
    set_block(&mut spec, Platform::Telegram);
    let pconn = PlatformConnection::new("acme-whatsapp", spec);

    let rejected = messages(pconn.validate_cel());

    assert!(
        rejected.contains("spec.whatsapp is required when platform is whatsapp"),
        "{rejected:?}"
    );
}

#[test]
fn a_connection_with_a_second_platform_block_is_rejected_for_every_pair() {
    for platform in Platform::ALL {
        for extra in Platform::ALL.into_iter().filter(|p| *p != platform) {
            let mut pconn = connection(platform);
            set_block(&mut pconn.spec, extra);

            let rejected = messages(pconn.validate_cel());

            assert!(
                rejected.contains(&format!(
                    "spec.{platform} is required when platform is {platform}"
                )),
                "{platform} with a {extra} block: got {rejected:?}"
            );
        }
    }
}

#[test]
fn changing_platform_on_update_is_rejected() {
    let old = connection(Platform::Whatsapp);
    let new = connection(Platform::Telegram);
    assert!(new.validate_cel().is_ok(), "the new object is valid on its own");

    let rejected = messages(new.validate_cel_update(&old));

    assert!(rejected.contains("platform is immutable"), "{rejected:?}");
}

#[test]
fn changing_customer_ref_on_update_is_rejected() {
    let old = connection(Platform::Whatsapp);
    let mut new = old.clone();
    new.spec.customer_ref = "globex".to_owned();

    let rejected = messages(new.validate_cel_update(&old));

    assert!(rejected.contains("customerRef is immutable"), "{rejected:?}");
}

#[test]
fn an_update_that_keeps_platform_and_customer_ref_passes() {
    let old = connection(Platform::Whatsapp);
    let mut new = old.clone();
    new.spec.sandbox = true;
    new.spec.api_base = Some("http://127.0.0.1:9000/graph".to_owned());
    if let Some(whatsapp) = new.spec.whatsapp.as_mut() {
        whatsapp.phone_number_id = "109876543210987".to_owned();
    }

    let result = new.validate_cel_update(&old);

    assert!(result.is_ok(), "{}", messages(result));
}

#[test]
fn a_connection_without_secret_ref_is_rejected_unless_sandbox() {
    let mut pconn = connection(Platform::Discord);
    pconn.spec.secret_ref = None;

    let rejected = messages(pconn.validate_cel());
    pconn.spec.sandbox = true;
    let sandboxed = pconn.validate_cel();

    assert!(
        rejected.contains("spec.secretRef is required unless sandbox is true"),
        "{rejected:?}"
    );
    assert!(sandboxed.is_ok(), "{}", messages(sandboxed));
}

#[test]
fn a_raw_connection_without_sandbox_or_secret_ref_is_rejected() {
    // `sandbox` absent: the schema default (false) applies before the rules run.
    let object = json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "PlatformConnection",
        "metadata": {"name": "acme-x"},
        "spec": {"customerRef": "acme", "platform": "x", "x": {}},
    });

    let rejected = messages(validate_raw::<PlatformConnection>(&object));

    assert!(rejected.contains("spec.secretRef is required"), "{rejected:?}");
}

#[test]
fn an_api_base_without_an_http_scheme_is_rejected() {
    for bad in [
        "ftp://graph.example",
        "graph.example",
        "https://",
        "https://host with space",
    ] {
        let mut pconn = connection(Platform::Whatsapp);
        pconn.spec.api_base = Some(bad.to_owned());

        let rejected = messages(pconn.validate_cel());

        assert!(
            rejected.contains("apiBase must start with http:// or https://"),
            "{bad}: {rejected:?}"
        );
    }
}

#[test]
fn an_api_base_with_an_http_or_https_scheme_passes() {
    for good in [
        "http://127.0.0.1:9000",
        "https://graph.facebook.com/v23.0",
        "http://mock:8080/",
    ] {
        let mut pconn = connection(Platform::Whatsapp);
        pconn.spec.api_base = Some(good.to_owned());

        let result = pconn.validate_cel();

        assert!(result.is_ok(), "{good}: {}", messages(result));
    }
}

#[test]
fn an_obsidian_base_url_without_an_http_scheme_is_rejected() {
    let mut pconn = connection(Platform::Obsidian);
    if let Some(obsidian) = pconn.spec.obsidian.as_mut() {
        obsidian.base_url = "127.0.0.1:27124".to_owned();
    }

    let rejected = messages(pconn.validate_cel());

    assert!(
        rejected.contains("obsidian.baseUrl must start with http:// or https://"),
        "{rejected:?}"
    );
}

// ----------------------------------------------------------------- Customer

#[test]
fn a_well_formed_customer_passes() {
    let result = customer().validate_cel();

    assert!(result.is_ok(), "{}", messages(result));
}

#[test]
fn a_customer_with_a_malformed_email_is_rejected() {
    for bad in [
        "",
        "ops",
        "ops@",
        "@acme.example",
        "ops@acme",
        "ops @acme.example",
        "a@b@c.example",
    ] {
        let mut cust = customer();
        cust.spec.email = bad.to_owned();

        let rejected = messages(cust.validate_cel());

        assert!(
            rejected.contains("email must be an address"),
            "{bad:?}: {rejected:?}"
        );
    }
}

#[test]
fn a_customer_with_a_blank_display_name_is_rejected() {
    for blank in ["", "   "] {
        let mut cust = customer();
        cust.spec.display_name = blank.to_owned();

        let rejected = messages(cust.validate_cel());

        assert!(
            rejected.contains("displayName must not be empty"),
            "{blank:?}: {rejected:?}"
        );
    }
}

#[test]
fn a_plan_outside_the_four_fails_to_deserialize() {
    let yaml = "
apiVersion: hermes.squaremcp.com/v1alpha1
kind: Customer
metadata: {name: acme}
spec: {displayName: Acme, email: ops@acme.example, plan: premium}
";

    let error = serde_saphyr::from_str::<Customer>(yaml).expect_err("premium is not a plan");

    assert!(error.to_string().contains("premium"), "{error}");
}

#[test]
fn the_crd_schema_allows_exactly_the_four_plans() {
    let crd = serde_json::to_value(Customer::crd()).expect("a CRD serializes to JSON");

    let plans = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["plan"]["enum"];

    assert_eq!(plans, &json!(["free", "starter", "pro", "enterprise"]));
}

#[test]
fn a_delivery_url_must_be_https_unless_it_is_localhost() {
    let cases = [
        ("https://hooks.acme.example/hermes", true),
        ("http://localhost:9000/inbound", true),
        ("http://127.0.0.1/inbound", true),
        ("http://[::1]:8080", true),
        ("http://hooks.acme.example/hermes", false),
        ("http://localhost.evil.example/", false),
        ("ftp://hooks.acme.example", false),
        ("hooks.acme.example", false),
    ];

    for (url, accepted) in cases {
        let mut cust = customer();
        cust.spec.delivery = Some(Delivery {
            url: url.to_owned(),
            signing_secret_ref: SecretKeyRef {
                name: "acme-delivery".to_owned(),
                key: "signingSecret".to_owned(),
            },
        });

        let rejected = messages(cust.validate_cel());

        if accepted {
            assert!(rejected.is_empty(), "{url} should pass: {rejected:?}");
        } else {
            assert!(
                rejected.contains("delivery.url must be an https:// URL"),
                "{url}: {rejected:?}"
            );
        }
    }
}

#[test]
fn negative_limit_overrides_are_rejected() {
    let object = json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "Customer",
        "metadata": {"name": "acme"},
        "spec": {
            "displayName": "Acme",
            "email": "ops@acme.example",
            "limits": {"requestsPerMinute": -1, "toolCallsPerMonth": -5},
        },
    });

    let rejected = messages(validate_raw::<Customer>(&object));

    assert!(
        rejected.contains("limits.requestsPerMinute must not be negative"),
        "{rejected:?}"
    );
    assert!(
        rejected.contains("limits.toolCallsPerMonth must not be negative"),
        "{rejected:?}"
    );
}

#[test]
fn zero_limit_overrides_pass() {
    let object = json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "Customer",
        "metadata": {"name": "acme"},
        "spec": {
            "displayName": "Acme",
            "email": "ops@acme.example",
            "limits": {"requestsPerMinute": 0, "toolCallsPerMonth": 0},
        },
    });

    let result = validate_raw::<Customer>(&object);

    assert!(result.is_ok(), "{}", messages(result));
}
