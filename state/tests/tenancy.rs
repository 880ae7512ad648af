//! The tenancy appliers over the embedded store: what they write, what they
//! refuse to overwrite, what they remove, and that no secret reaches an error.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use hermes_crds::{Customer, CustomerSpec, Platform, PlatformConnection, PlatformConnectionSpec};
use hermes_state::store::{
    AuditEntry, AuditPage, AuditQuery, ConnectionState, EmbeddedStore, RateDecision, RateLimit, Route,
    RouteClaim, Store, StoreError, StreamEvent, StreamKind, UsageCounters,
};
use hermes_state::tenancy::{
    ApplyError, ConnectionPlan, Credentials, SecretData, TenancyError, apply_connection, apply_customer,
    customer_summary, load_credentials, mark_connection_failed, plan_connection, reencrypt_if_needed,
    remove_connection, remove_customer, revoke_api_key,
};
use hermes_state::vault::{Envelope, Keyring};
use hermes_state::{ApiKeyHash, CustomerId};
use serde_json::json;

/// Every secret value the fixtures hold contains this.
const SECRET_MARK: &str = "s3cr3t-VALUE";

const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn id(name: &str) -> CustomerId {
    CustomerId::new(name).expect("fixture ids are valid")
}

fn ring(spec: &str) -> Keyring {
    Keyring::parse(spec).expect("fixture keyrings are valid")
}

fn customer(name: &str) -> Customer {
    let spec: CustomerSpec = serde_json::from_value(json!({
        "displayName": name,
        "email": format!("ops@{name}.example"),
        "plan": "starter",
    }))
    .expect("the fixture is a valid Customer spec");
    let mut customer = Customer::new(name, spec);
    customer.metadata.namespace = Some("tenants".into());
    customer
}

fn whatsapp_connection(customer: &str, phone_number_id: &str) -> PlatformConnection {
    connection(
        customer,
        json!({
            "customerRef": customer,
            "platform": "whatsapp",
            "secretRef": {"name": format!("{customer}-whatsapp")},
            "whatsapp": {"phoneNumberId": phone_number_id, "businessAccountId": "102290129340398"},
        }),
    )
}

fn discord_connection(customer: &str) -> PlatformConnection {
    connection(
        customer,
        json!({
            "customerRef": customer,
            "platform": "discord",
            "secretRef": {"name": format!("{customer}-discord")},
            "discord": {"applicationId": "1234567890"},
        }),
    )
}

fn connection(customer: &str, spec: serde_json::Value) -> PlatformConnection {
    let spec: PlatformConnectionSpec =
        serde_json::from_value(spec).expect("the fixture is a valid connection spec");
    let mut connection = PlatformConnection::new(&format!("{customer}-{}", spec.platform), spec);
    connection.metadata.namespace = Some("tenants".into());
    connection
}

fn secret(fields: &[(&str, &str)]) -> SecretData {
    fields
        .iter()
        .map(|(key, value)| (*key, format!("{SECRET_MARK}-{value}")))
        .collect()
}

fn whatsapp_plan(customer_name: &str, phone_number_id: &str, token: &str) -> ConnectionPlan {
    plan_connection(
        &customer(customer_name),
        &whatsapp_connection(customer_name, phone_number_id),
        Some(&secret(&[("accessToken", token)])),
    )
    .expect("the fixture plans")
}

fn discord_plan(customer_name: &str) -> ConnectionPlan {
    plan_connection(
        &customer(customer_name),
        &discord_connection(customer_name),
        Some(&secret(&[("botToken", "bot")])),
    )
    .expect("the fixture plans")
}

fn wa(phone_number_id: &str) -> Route {
    Route {
        platform: Platform::Whatsapp,
        id: phone_number_id.into(),
    }
}

fn assert_no_secret_in(error: &ApplyError) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    let mut chain = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(&format!("{cause} / "));
        source = cause.source();
    }
    assert!(
        !display.contains(SECRET_MARK),
        "Display leaks a secret: {display}"
    );
    assert!(!debug.contains(SECRET_MARK), "Debug leaks a secret: {debug}");
    assert!(!chain.contains(SECRET_MARK), "a source leaks a secret: {chain}");
}

/// Everything one customer has in the store, to compare before and after.
async fn snapshot(store: &dyn Store, customer: &CustomerId, routes: &[Route]) -> String {
    let mut credentials = Vec::new();
    for platform in Platform::ALL {
        credentials.push(
            store
                .get_credentials(customer, platform)
                .await
                .expect("the store answers"),
        );
    }
    let mut owners = Vec::new();
    for route in routes {
        owners.push(store.route_owner(route).await.expect("the store answers"));
    }
    let states = store
        .connection_states(customer)
        .await
        .expect("the store answers");
    format!("{credentials:?} {owners:?} {states:?}")
}

// --- applying a connection ---

#[tokio::test]
async fn an_applied_connection_can_be_opened_routed_and_is_ready() {
    let store = EmbeddedStore::new();
    let keyring = ring(&format!("k1:{K1}"));
    let plan = whatsapp_plan("acme", "1065", "token");

    let applied = apply_connection(&store, &keyring, &plan, &[])
        .await
        .expect("nothing conflicts");

    let opened = load_credentials(&store, &keyring, &id("acme"), Platform::Whatsapp)
        .await
        .expect("the envelope opens")
        .expect("credentials were written");
    assert_eq!(opened, plan.credentials);
    assert_eq!(
        store.route_owner(&wa("1065")).await.expect("the store answers"),
        Some(id("acme"))
    );
    let states = store
        .connection_states(&id("acme"))
        .await
        .expect("the store answers");
    assert_eq!(states.len(), 1);
    assert!(states[0].ready && !states[0].sandbox && states[0].last_error.is_none());
    assert_eq!(states[0].reason, "Ready");
    assert_eq!(applied.key_id, "k1");
    assert_eq!(applied.routes, [wa("1065")]);
    assert_eq!(applied.fingerprint, plan.fingerprint(&keyring));
}

#[tokio::test]
async fn applying_the_same_plan_twice_succeeds_and_keeps_the_route() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    let plan = whatsapp_plan("acme", "1065", "token");

    apply_connection(&store, &keyring, &plan, &[])
        .await
        .expect("first apply");
    let again = apply_connection(&store, &keyring, &plan, &[wa("1065")]).await;

    assert!(again.is_ok(), "{again:?}");
    assert_eq!(
        store.route_owner(&wa("1065")).await.expect("the store answers"),
        Some(id("acme"))
    );
}

#[tokio::test]
async fn a_sandbox_connection_is_published_as_a_ready_sandbox() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    let sandbox = connection(
        "acme",
        json!({"customerRef": "acme", "platform": "x", "sandbox": true, "x": {}}),
    );
    let plan = plan_connection(&customer("acme"), &sandbox, None).expect("a sandbox needs no Secret");

    apply_connection(&store, &keyring, &plan, &[])
        .await
        .expect("nothing conflicts");

    let states = store
        .connection_states(&id("acme"))
        .await
        .expect("the store answers");
    assert!(states[0].ready && states[0].sandbox);
}

// --- route conflicts ---

#[tokio::test]
async fn a_route_of_another_customer_is_a_conflict_that_writes_nothing() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    apply_connection(
        &store,
        &keyring,
        &whatsapp_plan("globex", "1065", "globex-token"),
        &[],
    )
    .await
    .expect("globex claims the number first");
    let globex_before = snapshot(&store, &id("globex"), &[wa("1065")]).await;

    let error = apply_connection(
        &store,
        &keyring,
        &whatsapp_plan("acme", "1065", "acme-token"),
        &[],
    )
    .await
    .expect_err("the number belongs to globex");

    assert!(
        matches!(&error, ApplyError::RouteConflict { route, owner } if route == &wa("1065") && owner == &id("globex")),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "route wa_phone_id:1065 is already owned by customer globex"
    );
    assert_eq!(error.reason(), "RouteConflict");
    assert!(!error.is_transient());
    assert_eq!(
        snapshot(&store, &id("globex"), &[wa("1065")]).await,
        globex_before
    );
    assert_eq!(
        store
            .get_credentials(&id("acme"), Platform::Whatsapp)
            .await
            .expect("the store answers"),
        None
    );
    assert!(
        store
            .connection_states(&id("acme"))
            .await
            .expect("the store answers")
            .is_empty()
    );
}

#[tokio::test]
async fn a_conflict_releases_only_the_routes_this_call_newly_claimed() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    store
        .claim_route(&wa("owned"), &id("acme"))
        .await
        .expect("the store answers");
    store
        .claim_route(&wa("taken"), &id("globex"))
        .await
        .expect("the store answers");
    let mut plan = whatsapp_plan("acme", "free", "token");
    plan.routes = vec![wa("free"), wa("owned"), wa("taken")];

    let error = apply_connection(&store, &keyring, &plan, &[])
        .await
        .expect_err("taken is globex's");

    assert!(matches!(error, ApplyError::RouteConflict { .. }), "{error:?}");
    assert_eq!(
        store.route_owner(&wa("free")).await.expect("the store answers"),
        None
    );
    assert_eq!(
        store.route_owner(&wa("owned")).await.expect("the store answers"),
        Some(id("acme"))
    );
    assert_eq!(
        store.route_owner(&wa("taken")).await.expect("the store answers"),
        Some(id("globex"))
    );
}

#[tokio::test]
async fn a_conflicting_update_keeps_the_credentials_and_route_already_stored() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    let first = whatsapp_plan("acme", "1065", "first-token");
    apply_connection(&store, &keyring, &first, &[])
        .await
        .expect("nothing conflicts");
    store
        .claim_route(&wa("2041"), &id("globex"))
        .await
        .expect("the store answers");

    let error = apply_connection(
        &store,
        &keyring,
        &whatsapp_plan("acme", "2041", "second-token"),
        &[wa("1065")],
    )
    .await
    .expect_err("2041 is globex's");

    assert!(matches!(error, ApplyError::RouteConflict { .. }), "{error:?}");
    let stored = load_credentials(&store, &keyring, &id("acme"), Platform::Whatsapp)
        .await
        .expect("the envelope opens")
        .expect("the first credentials are still there");
    assert_eq!(stored, first.credentials);
    assert_eq!(
        store.route_owner(&wa("1065")).await.expect("the store answers"),
        Some(id("acme"))
    );
}

// --- changing routes ---

#[tokio::test]
async fn a_changed_phone_number_releases_the_previous_route() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    apply_connection(&store, &keyring, &whatsapp_plan("acme", "1065", "token"), &[])
        .await
        .expect("nothing conflicts");

    let applied = apply_connection(
        &store,
        &keyring,
        &whatsapp_plan("acme", "2041", "token"),
        &[wa("1065")],
    )
    .await
    .expect("nothing conflicts");

    assert_eq!(applied.released, [wa("1065")]);
    assert_eq!(
        store.route_owner(&wa("1065")).await.expect("the store answers"),
        None
    );
    assert_eq!(
        store.route_owner(&wa("2041")).await.expect("the store answers"),
        Some(id("acme"))
    );
}

#[tokio::test]
async fn a_previous_route_now_owned_by_another_customer_is_left_alone() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    store
        .claim_route(&wa("1065"), &id("globex"))
        .await
        .expect("the store answers");

    let applied = apply_connection(
        &store,
        &keyring,
        &whatsapp_plan("acme", "2041", "token"),
        &[wa("1065")],
    )
    .await
    .expect("nothing conflicts");

    assert!(applied.released.is_empty());
    assert_eq!(
        store.route_owner(&wa("1065")).await.expect("the store answers"),
        Some(id("globex"))
    );
}

// --- failures while writing ---

#[tokio::test]
async fn a_failed_credentials_write_releases_the_routes_it_claimed() {
    let store = FailingStore::default();
    store.fail_put_credentials.store(true, Ordering::SeqCst);
    let keyring = Keyring::generate("k1");

    let error = apply_connection(&store, &keyring, &whatsapp_plan("acme", "1065", "token"), &[])
        .await
        .expect_err("the store refuses credentials");

    assert!(
        matches!(error, ApplyError::WriteCredentialsFailed(_)),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(error.reason(), "StateUnavailable");
    assert_no_secret_in(&error);
    assert_eq!(
        store
            .inner
            .route_owner(&wa("1065"))
            .await
            .expect("the store answers"),
        None
    );
    assert!(
        store
            .inner
            .connection_states(&id("acme"))
            .await
            .expect("the store answers")
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_credentials_write_keeps_routes_owned_before() {
    let store = FailingStore::default();
    let keyring = Keyring::generate("k1");
    let plan = whatsapp_plan("acme", "1065", "token");
    apply_connection(&store, &keyring, &plan, &[])
        .await
        .expect("the store accepts");
    store.fail_put_credentials.store(true, Ordering::SeqCst);

    apply_connection(&store, &keyring, &plan, &[wa("1065")])
        .await
        .expect_err("the store refuses credentials");

    assert_eq!(
        store
            .inner
            .route_owner(&wa("1065"))
            .await
            .expect("the store answers"),
        Some(id("acme"))
    );
}

// --- failures published ---

#[tokio::test]
async fn a_failed_connection_is_published_not_ready_and_keeps_its_credentials() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    let plan = whatsapp_plan("acme", "1065", "token");
    apply_connection(&store, &keyring, &plan, &[])
        .await
        .expect("nothing conflicts");
    let bad_edit = plan_connection(
        &customer("acme"),
        &whatsapp_connection("acme", "1065"),
        Some(&SecretData::new()),
    )
    .expect_err("the Secret lost its token");

    mark_connection_failed(
        &store,
        &id("acme"),
        Platform::Whatsapp,
        false,
        bad_edit.reason(),
        &bad_edit.to_string(),
    )
    .await
    .expect("the store answers");

    let states = store
        .connection_states(&id("acme"))
        .await
        .expect("the store answers");
    assert!(!states[0].ready);
    assert_eq!(states[0].reason, "SecretFieldsMissing");
    assert_eq!(
        states[0].last_error.as_deref(),
        Some("the whatsapp Secret lacks accessToken (it needs accessToken)")
    );
    assert!(
        store
            .get_credentials(&id("acme"), Platform::Whatsapp)
            .await
            .expect("the store answers")
            .is_some()
    );
    assert_eq!(
        store.route_owner(&wa("1065")).await.expect("the store answers"),
        Some(id("acme"))
    );
}

// --- removing a connection ---

#[tokio::test]
async fn removing_a_connection_removes_exactly_what_was_written() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    apply_connection(&store, &keyring, &whatsapp_plan("acme", "1065", "token"), &[])
        .await
        .expect("nothing conflicts");
    apply_connection(&store, &keyring, &discord_plan("acme"), &[])
        .await
        .expect("nothing conflicts");
    apply_connection(&store, &keyring, &whatsapp_plan("globex", "2041", "token"), &[])
        .await
        .expect("nothing conflicts");
    let globex_before = snapshot(&store, &id("globex"), &[wa("2041")]).await;

    remove_connection(&store, &id("acme"), Platform::Whatsapp, &[wa("1065")])
        .await
        .expect("the store answers");

    assert_eq!(
        store
            .get_credentials(&id("acme"), Platform::Whatsapp)
            .await
            .expect("the store answers"),
        None
    );
    assert_eq!(
        store.route_owner(&wa("1065")).await.expect("the store answers"),
        None
    );
    let states = store
        .connection_states(&id("acme"))
        .await
        .expect("the store answers");
    assert_eq!(
        states.iter().map(|state| state.platform).collect::<Vec<_>>(),
        [Platform::Discord]
    );
    assert!(
        store
            .get_credentials(&id("acme"), Platform::Discord)
            .await
            .expect("the store answers")
            .is_some()
    );
    assert_eq!(
        snapshot(&store, &id("globex"), &[wa("2041")]).await,
        globex_before
    );
}

#[tokio::test]
async fn removing_a_connection_leaves_a_route_of_another_customer() {
    let store = EmbeddedStore::new();
    store
        .claim_route(&wa("2041"), &id("globex"))
        .await
        .expect("the store answers");

    remove_connection(&store, &id("acme"), Platform::Whatsapp, &[wa("2041")])
        .await
        .expect("the store answers");

    assert_eq!(
        store.route_owner(&wa("2041")).await.expect("the store answers"),
        Some(id("globex"))
    );
}

#[tokio::test]
async fn removing_a_connection_twice_succeeds() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    apply_connection(&store, &keyring, &whatsapp_plan("acme", "1065", "token"), &[])
        .await
        .expect("nothing conflicts");

    remove_connection(&store, &id("acme"), Platform::Whatsapp, &[wa("1065")])
        .await
        .expect("first removal");
    let again = remove_connection(&store, &id("acme"), Platform::Whatsapp, &[wa("1065")]).await;

    assert!(again.is_ok(), "{again:?}");
}

// --- customers and API keys ---

#[tokio::test]
async fn an_applied_customer_authorizes_by_its_key_hash() {
    let store = EmbeddedStore::new();
    let hash = ApiKeyHash::of("hk_acme");
    let summary = customer_summary(&customer("acme")).expect("acme is a valid id");

    apply_customer(&store, &summary, &hash)
        .await
        .expect("the store answers");

    assert_eq!(
        store.get_api_key(&hash).await.expect("the store answers"),
        Some(summary)
    );
}

#[tokio::test]
async fn suspending_a_customer_deactivates_its_key_at_once() {
    let store = EmbeddedStore::new();
    let hash = ApiKeyHash::of("hk_acme");
    let mut acme = customer("acme");
    apply_customer(&store, &customer_summary(&acme).expect("valid id"), &hash)
        .await
        .expect("the store answers");

    acme.spec.suspended = true;
    apply_customer(&store, &customer_summary(&acme).expect("valid id"), &hash)
        .await
        .expect("the store answers");

    let indexed = store
        .get_api_key(&hash)
        .await
        .expect("the store answers")
        .expect("still indexed");
    assert!(!indexed.active);

    acme.spec.suspended = false;
    apply_customer(&store, &customer_summary(&acme).expect("valid id"), &hash)
        .await
        .expect("the store answers");
    let indexed = store
        .get_api_key(&hash)
        .await
        .expect("the store answers")
        .expect("still indexed");
    assert!(indexed.active);
}

#[tokio::test]
async fn a_key_already_indexed_for_another_customer_is_a_conflict() {
    let store = EmbeddedStore::new();
    let hash = ApiKeyHash::of(&format!("hk_{SECRET_MARK}"));
    let globex = customer_summary(&customer("globex")).expect("valid id");
    apply_customer(&store, &globex, &hash)
        .await
        .expect("the store answers");

    let error = apply_customer(
        &store,
        &customer_summary(&customer("acme")).expect("valid id"),
        &hash,
    )
    .await
    .expect_err("the key is globex's");

    assert!(
        matches!(&error, ApplyError::ApiKeyConflict { owner } if owner == &id("globex")),
        "{error:?}"
    );
    assert_no_secret_in(&error);
    assert_eq!(
        store.get_api_key(&hash).await.expect("the store answers"),
        Some(globex)
    );
}

#[tokio::test]
async fn revoking_leaves_a_key_of_another_customer() {
    let store = EmbeddedStore::new();
    let hash = ApiKeyHash::of("hk_globex");
    apply_customer(
        &store,
        &customer_summary(&customer("globex")).expect("valid id"),
        &hash,
    )
    .await
    .expect("the store answers");

    let revoked = revoke_api_key(&store, &id("acme"), &hash)
        .await
        .expect("the store answers");

    assert!(!revoked);
    assert!(
        store
            .get_api_key(&hash)
            .await
            .expect("the store answers")
            .is_some()
    );
}

#[tokio::test]
async fn revoking_a_replaced_key_removes_it() {
    let store = EmbeddedStore::new();
    let old = ApiKeyHash::of("hk_old");
    let new = ApiKeyHash::of("hk_new");
    let summary = customer_summary(&customer("acme")).expect("valid id");
    apply_customer(&store, &summary, &old)
        .await
        .expect("the store answers");

    apply_customer(&store, &summary, &new)
        .await
        .expect("the store answers");
    let revoked = revoke_api_key(&store, &id("acme"), &old)
        .await
        .expect("the store answers");

    assert!(revoked);
    assert_eq!(store.get_api_key(&old).await.expect("the store answers"), None);
    assert_eq!(
        store.get_api_key(&new).await.expect("the store answers"),
        Some(summary)
    );
}

#[tokio::test]
async fn removing_a_customer_removes_its_state_and_nothing_of_another() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    let acme_key = ApiKeyHash::of("hk_acme");
    let globex_key = ApiKeyHash::of("hk_globex");
    for (name, key, phone) in [("acme", &acme_key, "1065"), ("globex", &globex_key, "2041")] {
        apply_customer(&store, &customer_summary(&customer(name)).expect("valid id"), key)
            .await
            .expect("the store answers");
        apply_connection(&store, &keyring, &whatsapp_plan(name, phone, "token"), &[])
            .await
            .expect("nothing conflicts");
        apply_connection(&store, &keyring, &discord_plan(name), &[])
            .await
            .expect("nothing conflicts");
    }
    let globex_before = snapshot(&store, &id("globex"), &[wa("2041")]).await;

    let purged = remove_customer(&store, &id("acme"), Some(&acme_key), &[wa("1065"), wa("2041")])
        .await
        .expect("the store answers");

    assert!(
        purged >= 3,
        "credentials of two platforms and the connection states: {purged}"
    );
    assert_eq!(
        snapshot(&store, &id("acme"), &[wa("1065")]).await,
        snapshot(&EmbeddedStore::new(), &id("acme"), &[wa("1065")]).await
    );
    assert_eq!(
        store.get_api_key(&acme_key).await.expect("the store answers"),
        None
    );
    assert_eq!(
        snapshot(&store, &id("globex"), &[wa("2041")]).await,
        globex_before
    );
    assert!(
        store
            .get_api_key(&globex_key)
            .await
            .expect("the store answers")
            .is_some()
    );
}

#[tokio::test]
async fn removing_a_customer_twice_succeeds() {
    let store = EmbeddedStore::new();
    let key = ApiKeyHash::of("hk_acme");

    remove_customer(&store, &id("acme"), Some(&key), &[wa("1065")])
        .await
        .expect("nothing to remove");
    let again = remove_customer(&store, &id("acme"), Some(&key), &[wa("1065")]).await;

    assert!(again.is_ok(), "{again:?}");
}

// --- key rotation ---

#[tokio::test]
async fn reencryption_after_rotation_rewrites_under_the_new_primary() {
    let store = EmbeddedStore::new();
    let plan = whatsapp_plan("acme", "1065", "token");
    apply_connection(&store, &ring(&format!("k1:{K1}")), &plan, &[])
        .await
        .expect("nothing conflicts");
    let rotated = ring(&format!("k2:{K2},k1:{K1}"));

    let rewritten = reencrypt_if_needed(&store, &rotated, &id("acme"), Platform::Whatsapp)
        .await
        .expect("k1 is still in the ring");

    assert!(rewritten);
    let envelope = store
        .get_credentials(&id("acme"), Platform::Whatsapp)
        .await
        .expect("the store answers")
        .expect("credentials are stored");
    assert_eq!(envelope.kid, "k2");
    let only_k2 = ring(&format!("k2:{K2}"));
    let opened = load_credentials(&store, &only_k2, &id("acme"), Platform::Whatsapp)
        .await
        .expect("k2 opens it alone")
        .expect("credentials are stored");
    assert_eq!(opened, plan.credentials);
}

#[tokio::test]
async fn reencryption_leaves_what_the_primary_sealed() {
    let store = EmbeddedStore::new();
    let keyring = ring(&format!("k2:{K2},k1:{K1}"));
    apply_connection(&store, &keyring, &whatsapp_plan("acme", "1065", "token"), &[])
        .await
        .expect("nothing conflicts");
    let before = store
        .get_credentials(&id("acme"), Platform::Whatsapp)
        .await
        .expect("the store answers");

    let rewritten = reencrypt_if_needed(&store, &keyring, &id("acme"), Platform::Whatsapp)
        .await
        .expect("the primary opens it");

    assert!(!rewritten);
    assert_eq!(
        store
            .get_credentials(&id("acme"), Platform::Whatsapp)
            .await
            .expect("the store answers"),
        before
    );
}

#[tokio::test]
async fn reencryption_of_absent_credentials_does_nothing() {
    let rewritten = reencrypt_if_needed(
        &EmbeddedStore::new(),
        &Keyring::generate("k1"),
        &id("acme"),
        Platform::X,
    )
    .await
    .expect("nothing to read");

    assert!(!rewritten);
}

#[tokio::test]
async fn reencryption_without_the_old_key_fails_and_keeps_the_envelope() {
    let store = EmbeddedStore::new();
    apply_connection(
        &store,
        &ring(&format!("k1:{K1}")),
        &whatsapp_plan("acme", "1065", "token"),
        &[],
    )
    .await
    .expect("nothing conflicts");
    let before = store
        .get_credentials(&id("acme"), Platform::Whatsapp)
        .await
        .expect("the store answers");

    let error = reencrypt_if_needed(
        &store,
        &ring(&format!("k2:{K2}")),
        &id("acme"),
        Platform::Whatsapp,
    )
    .await
    .expect_err("k1 was dropped too early");

    assert!(
        matches!(error, ApplyError::Credentials(TenancyError::OpenFailed(_))),
        "{error:?}"
    );
    assert_no_secret_in(&error);
    assert_eq!(
        store
            .get_credentials(&id("acme"), Platform::Whatsapp)
            .await
            .expect("the store answers"),
        before
    );
}

// --- secrets never leak ---

#[tokio::test]
async fn credentials_sealed_for_another_customer_do_not_open_and_do_not_leak() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    apply_connection(&store, &keyring, &whatsapp_plan("acme", "1065", "token"), &[])
        .await
        .expect("nothing conflicts");
    let acme_envelope = store
        .get_credentials(&id("acme"), Platform::Whatsapp)
        .await
        .expect("the store answers")
        .expect("credentials are stored");
    store
        .put_credentials(&id("globex"), Platform::Whatsapp, &acme_envelope)
        .await
        .expect("the store answers");

    let error = load_credentials(&store, &keyring, &id("globex"), Platform::Whatsapp)
        .await
        .expect_err("the envelope is bound to acme");

    assert!(
        matches!(error, ApplyError::Credentials(TenancyError::OpenFailed(_))),
        "{error:?}"
    );
    assert_no_secret_in(&error);
}

#[tokio::test]
async fn a_sealed_document_that_is_not_credentials_is_reported_without_its_contents() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    let not_credentials = format!(r#"{{"platform":"whatsapp","secrets":["{SECRET_MARK}"]}}"#);
    let envelope = keyring
        .seal(&id("acme"), Platform::Whatsapp, not_credentials.as_bytes())
        .expect("sealing works");
    store
        .put_credentials(&id("acme"), Platform::Whatsapp, &envelope)
        .await
        .expect("the store answers");

    let error = load_credentials(&store, &keyring, &id("acme"), Platform::Whatsapp)
        .await
        .expect_err("secrets must be a map");

    assert!(
        matches!(
            error,
            ApplyError::Credentials(TenancyError::CredentialsMalformed { .. })
        ),
        "{error:?}"
    );
    assert_no_secret_in(&error);
}

#[tokio::test]
async fn no_apply_error_carries_a_secret_value() {
    let store = EmbeddedStore::new();
    let keyring = Keyring::generate("k1");
    store
        .claim_route(&wa("1065"), &id("globex"))
        .await
        .expect("the store answers");
    let failing = FailingStore::default();
    failing.fail_put_credentials.store(true, Ordering::SeqCst);
    let plan = whatsapp_plan("acme", "1065", "token");

    let conflict = apply_connection(&store, &keyring, &plan, &[])
        .await
        .expect_err("conflict");
    let write_failed = apply_connection(&failing, &keyring, &plan, &[])
        .await
        .expect_err("write fails");
    let stored = Credentials::from_bytes(&plan.credentials.to_bytes()).expect("round trip");

    for error in [conflict, write_failed] {
        assert_no_secret_in(&error);
    }
    assert!(!format!("{stored:?}").contains(SECRET_MARK));
}

/// An embedded store whose credential writes fail on demand.
#[derive(Debug, Default)]
struct FailingStore {
    inner: EmbeddedStore,
    fail_put_credentials: AtomicBool,
}

#[async_trait]
impl Store for FailingStore {
    async fn put_credentials(
        &self,
        customer: &CustomerId,
        platform: Platform,
        envelope: &Envelope,
    ) -> Result<(), StoreError> {
        if self.fail_put_credentials.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection refused".into()));
        }
        self.inner.put_credentials(customer, platform, envelope).await
    }

    async fn get_credentials(
        &self,
        customer: &CustomerId,
        platform: Platform,
    ) -> Result<Option<Envelope>, StoreError> {
        self.inner.get_credentials(customer, platform).await
    }

    async fn delete_credentials(
        &self,
        customer: &CustomerId,
        platform: Platform,
    ) -> Result<bool, StoreError> {
        self.inner.delete_credentials(customer, platform).await
    }

    async fn put_connection_state(
        &self,
        customer: &CustomerId,
        state: &ConnectionState,
    ) -> Result<(), StoreError> {
        self.inner.put_connection_state(customer, state).await
    }

    async fn connection_states(&self, customer: &CustomerId) -> Result<Vec<ConnectionState>, StoreError> {
        self.inner.connection_states(customer).await
    }

    async fn delete_connection_state(
        &self,
        customer: &CustomerId,
        platform: Platform,
    ) -> Result<(), StoreError> {
        self.inner.delete_connection_state(customer, platform).await
    }

    async fn claim_route(&self, route: &Route, customer: &CustomerId) -> Result<RouteClaim, StoreError> {
        self.inner.claim_route(route, customer).await
    }

    async fn route_owner(&self, route: &Route) -> Result<Option<CustomerId>, StoreError> {
        self.inner.route_owner(route).await
    }

    async fn release_route(&self, route: &Route, customer: &CustomerId) -> Result<bool, StoreError> {
        self.inner.release_route(route, customer).await
    }

    async fn put_api_key(
        &self,
        hash: &ApiKeyHash,
        summary: &hermes_state::store::CustomerSummary,
    ) -> Result<(), StoreError> {
        self.inner.put_api_key(hash, summary).await
    }

    async fn get_api_key(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<hermes_state::store::CustomerSummary>, StoreError> {
        self.inner.get_api_key(hash).await
    }

    async fn delete_api_key(&self, hash: &ApiKeyHash) -> Result<(), StoreError> {
        self.inner.delete_api_key(hash).await
    }

    async fn append_audit(&self, customer: &CustomerId, entry: &AuditEntry) -> Result<(), StoreError> {
        self.inner.append_audit(customer, entry).await
    }

    async fn read_audit(&self, customer: &CustomerId, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        self.inner.read_audit(customer, query).await
    }

    async fn incr_usage(
        &self,
        customer: &CustomerId,
        period: &str,
        counter: &str,
        by: u64,
    ) -> Result<u64, StoreError> {
        self.inner.incr_usage(customer, period, counter, by).await
    }

    async fn usage(&self, customer: &CustomerId, period: &str) -> Result<UsageCounters, StoreError> {
        self.inner.usage(customer, period).await
    }

    async fn check_rate(&self, customer: &CustomerId, limit: RateLimit) -> Result<RateDecision, StoreError> {
        self.inner.check_rate(customer, limit).await
    }

    async fn append_event(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        event: &serde_json::Value,
        max_len: usize,
    ) -> Result<String, StoreError> {
        self.inner.append_event(kind, customer, event, max_len).await
    }

    async fn read_events(
        &self,
        kind: StreamKind,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamEvent>, StoreError> {
        self.inner.read_events(kind, customer, after, limit).await
    }

    async fn append_inbound(
        &self,
        customer: &CustomerId,
        inbound: &hermes_state::store::InboundEvent,
        max_len: usize,
    ) -> Result<hermes_state::store::Appended, StoreError> {
        self.inner.append_inbound(customer, inbound, max_len).await
    }

    async fn message_status(
        &self,
        customer: &CustomerId,
        message_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.message_status(customer, message_id).await
    }

    async fn put_delivery_target(
        &self,
        customer: &CustomerId,
        target: &hermes_state::store::DeliveryTarget,
    ) -> Result<(), StoreError> {
        self.inner.put_delivery_target(customer, target).await
    }

    async fn get_delivery_target(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<hermes_state::store::DeliveryTarget>, StoreError> {
        self.inner.get_delivery_target(customer).await
    }

    async fn delete_delivery_target(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        self.inner.delete_delivery_target(customer).await
    }

    async fn delivery_customers(&self) -> Result<Vec<CustomerId>, StoreError> {
        self.inner.delivery_customers().await
    }

    async fn claim_deliveries(
        &self,
        customer: &CustomerId,
        consumer: &str,
        claim_timeout: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<hermes_state::store::DeliveryJob>, StoreError> {
        self.inner
            .claim_deliveries(customer, consumer, claim_timeout, limit)
            .await
    }

    async fn complete_delivery(&self, customer: &CustomerId, job_id: &str) -> Result<bool, StoreError> {
        self.inner.complete_delivery(customer, job_id).await
    }

    async fn retry_delivery(
        &self,
        customer: &CustomerId,
        job: &hermes_state::store::DeliveryJob,
        delay: std::time::Duration,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.inner.retry_delivery(customer, job, delay, error).await
    }

    async fn dead_letter_delivery(
        &self,
        customer: &CustomerId,
        job: &hermes_state::store::DeliveryJob,
        error: &str,
    ) -> Result<Option<String>, StoreError> {
        self.inner.dead_letter_delivery(customer, job, error).await
    }

    async fn dead_letters(
        &self,
        customer: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<hermes_state::store::DeadLetter>, StoreError> {
        self.inner.dead_letters(customer, after, limit).await
    }

    async fn replay_dead_letter(&self, customer: &CustomerId, id: &str) -> Result<bool, StoreError> {
        self.inner.replay_dead_letter(customer, id).await
    }

    async fn purge_customer(&self, customer: &CustomerId) -> Result<u64, StoreError> {
        self.inner.purge_customer(customer).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
