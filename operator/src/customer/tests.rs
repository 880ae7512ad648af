//! The Customer reconciler's wire contract, against a mocked API server.
//!
//! Each scenario arranges a Customer and the state, runs one reconcile in a
//! task while the test answers the requests it makes, and verifies those
//! requests (method, path, body) and what ended up in the store and table.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hermes_crds::SecretKeyRef;
use hermes_state::sql::CustomerRecord;
use hermes_state::store::{Route, Store};
use hermes_state::{ApiKeyHash, CustomerId};
use http::{Method, StatusCode};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::*;
use crate::fixtures::*;

const KEY_A: &str = "hk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "hk_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn acme() -> CustomerId {
    CustomerId::new("acme").expect("acme is a valid customer id")
}

fn run(h: &Harness, customer: &Customer) -> JoinHandle<Result<Action>> {
    tokio::spawn(reconcile(Arc::new(customer.clone()), h.ctx.clone()))
}

async fn finish(task: JoinHandle<Result<Action>>) -> Result<Action> {
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the reconcile finished")
        .expect("the reconcile did not panic")
}

/// The key a generated-Secret create request carries.
fn key_in(create: &Value) -> String {
    let encoded = create["data"]["apiKey"]
        .as_str()
        .expect("the Secret carries data.apiKey");
    let bytes = STANDARD.decode(encoded).expect("Secret data is base64");
    String::from_utf8(bytes).expect("the key is text")
}

/// The generated Secret of `customer`, holding `key`, as the API returns it.
fn owned_secret(customer: &Customer, key: &str) -> Value {
    let mut secret = api_key::generated_secret(customer, NAMESPACE, key);
    secret.metadata.resource_version = Some("301".into());
    to_json(&secret)
}

/// Answers a status patch with the Customer carrying that status, and
/// returns the patch for inspection.
async fn expect_status_patch(h: &mut Harness, customer: &Customer) -> Value {
    let patch = h
        .api
        .expect(Method::PATCH, &format!("{}/status", customer_path("acme")))
        .await;
    assert!(
        patch.query.contains("fieldManager=hermes-operator"),
        "{}",
        patch.query
    );
    assert!(patch.query.contains("force=true"), "{}", patch.query);
    assert_eq!(patch.body["apiVersion"], "hermes.squaremcp.com/v1alpha1");
    assert_eq!(patch.body["kind"], "Customer");
    let body = patch.body.clone();
    let status = patch.status().clone();
    patch.ok(&with_status(customer, &status));
    body
}

/// Answers an Event creation and returns the Event.
async fn expect_event(h: &mut Harness) -> Value {
    let event = h.api.expect(Method::POST, &events_path()).await;
    let body = event.body.clone();
    event.created_echo();
    body
}

fn ready_of(status_patch: &Value) -> &Value {
    status_patch["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
        .expect("the status carries a Ready condition")
}

#[tokio::test]
async fn the_finalizer_is_added_before_anything_is_written() {
    let mut h = Harness::new().await;
    let acme_customer = customer("acme", false);
    h.cache_customer(&acme_customer);

    let task = run(&h, &acme_customer);
    let patch = h.api.expect(Method::PATCH, &customer_path("acme")).await;
    assert!(
        h.store.writes().is_empty(),
        "the store was written before the finalizer"
    );
    assert!(
        h.ctx
            .sql
            .customer(&acme())
            .await
            .expect("sqlite answers")
            .is_none()
    );
    assert_eq!(
        patch.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [hermes_crds::FINALIZER]},
        ])
    );
    patch.ok(&with_finalizer(&acme_customer));

    let action = finish(task).await.expect("the reconcile succeeded");
    assert_eq!(action, Action::await_change());
    h.api.expect_no_more().await;
    assert!(h.store.writes().is_empty());
}

#[tokio::test]
async fn a_customer_without_a_key_reference_gets_a_generated_key_in_a_secret_it_owns() {
    let mut h = Harness::new().await;
    let acme_customer = customer("acme", true);
    h.cache_customer(&acme_customer);

    let task = run(&h, &acme_customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .not_found();
    let create = h.api.expect(Method::POST, &secrets_path()).await;
    let key = key_in(&create.body);
    let owners = &create.body["metadata"]["ownerReferences"];
    assert_eq!(
        owners,
        &json!([{
            "apiVersion": "hermes.squaremcp.com/v1alpha1", "kind": "Customer", "name": "acme",
            "uid": "uid-acme", "controller": true, "blockOwnerDeletion": true,
        }])
    );
    assert_eq!(create.body["metadata"]["name"], "acme-api-key");
    assert!(
        key.starts_with("hk_") && key.len() == 46,
        "a generated key looks like hk_…"
    );
    create.created_echo();

    let status_patch = expect_status_patch(&mut h, &acme_customer).await;
    let event = expect_event(&mut h).await;
    let action = finish(task).await.expect("the reconcile succeeded");

    let status = &status_patch["status"];
    assert_eq!(status["observedGeneration"], 3);
    assert_eq!(status["apiKeySecret"], "acme-api-key");
    assert_eq!(status["connectedPlatforms"], json!([]));
    let ready = ready_of(&status_patch);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("True"), &json!("Ready"))
    );
    assert_eq!(ready["observedGeneration"], 3);
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("Ready"), &json!("Normal"))
    );
    assert_eq!(event["regarding"]["name"], "acme");
    assert_eq!(action, Action::requeue(RESYNC));

    let summary = h
        .store
        .get_api_key(&ApiKeyHash::of(&key))
        .await
        .expect("the store answers")
        .expect("the generated key is indexed");
    assert_eq!((summary.id.as_str(), summary.active), ("acme", true));
    let row = h
        .ctx
        .sql
        .customer(&acme())
        .await
        .expect("sqlite answers")
        .expect("the row exists");
    assert_eq!(row.api_key_hash, ApiKeyHash::of(&key));
    assert_eq!(row.email, "ops@acme.example");
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn an_existing_generated_key_is_reused_not_replaced() {
    let mut h = Harness::new().await;
    let acme_customer = customer("acme", true);
    h.cache_customer(&acme_customer);

    let task = run(&h, &acme_customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&acme_customer, KEY_A));
    expect_status_patch(&mut h, &acme_customer).await;
    expect_event(&mut h).await;
    finish(task).await.expect("the reconcile succeeded");

    let indexed = h
        .store
        .get_api_key(&ApiKeyHash::of(KEY_A))
        .await
        .expect("the store answers");
    assert!(indexed.is_some(), "the existing key is indexed");
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_second_customer_of_the_same_name_is_refused_and_writes_nothing() {
    let mut h = Harness::new().await;
    let mut holder = customer("acme", true);
    holder.metadata.namespace = Some("team-0".into());
    holder.metadata.creation_timestamp = Some(Time(
        Timestamp::from_second(1_600_000_000).expect("a fixed second is a valid timestamp"),
    ));
    let duplicate = customer("acme", false);
    h.cache_customer(&holder);
    h.cache_customer(&duplicate);

    let task = run(&h, &duplicate);
    let status_patch = expect_status_patch(&mut h, &duplicate).await;
    let event = expect_event(&mut h).await;
    let action = finish(task).await.expect("the reconcile succeeded");

    let ready = ready_of(&status_patch);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("DuplicateName"))
    );
    assert!(ready["message"].as_str().is_some_and(|m| m.contains("team-0")));
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("DuplicateName"), &json!("Warning"))
    );
    assert_eq!(action, Action::requeue(DUPLICATE_RECHECK));
    assert!(h.store.writes().is_empty(), "a duplicate writes nothing");
    assert!(
        h.ctx
            .sql
            .customer(&acme())
            .await
            .expect("sqlite answers")
            .is_none()
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_suspended_customer_is_indexed_inactive_at_once() {
    let mut h = Harness::new().await;
    let mut suspended = customer("acme", true);
    suspended.spec.suspended = true;
    h.cache_customer(&suspended);

    let task = run(&h, &suspended);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&suspended, KEY_A));
    let status_patch = expect_status_patch(&mut h, &suspended).await;
    let event = expect_event(&mut h).await;
    finish(task).await.expect("the reconcile succeeded");

    let ready = ready_of(&status_patch);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("Suspended"))
    );
    assert_eq!(event["reason"], "Suspended");
    let summary = h
        .store
        .get_api_key(&ApiKeyHash::of(KEY_A))
        .await
        .expect("the store answers")
        .expect("the key stays indexed");
    assert!(!summary.active, "a suspended customer's key is inactive");
    let row = h
        .ctx
        .sql
        .customer(&acme())
        .await
        .expect("sqlite answers")
        .expect("the row exists");
    assert!(!row.active);
}

#[tokio::test]
async fn a_missing_key_secret_is_reported_and_nothing_is_written() {
    let mut h = Harness::new().await;
    let mut referencing = customer("acme", true);
    referencing.spec.api_key_secret_ref = Some(SecretKeyRef {
        name: "acme-keys".into(),
        key: "token".into(),
    });
    h.cache_customer(&referencing);

    let task = run(&h, &referencing);
    h.api
        .expect(Method::GET, &secret_path("acme-keys"))
        .await
        .not_found();
    let status_patch = expect_status_patch(&mut h, &referencing).await;
    let event = expect_event(&mut h).await;
    finish(task)
        .await
        .expect("a missing Secret is reported, not an error");

    let ready = ready_of(&status_patch);
    assert_eq!(ready["reason"], "ApiKeySecretInvalid");
    assert!(ready["message"].as_str().is_some_and(|m| m.contains("acme-keys")));
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("ApiKeySecretInvalid"), &json!("Warning"))
    );
    assert!(h.store.writes().is_empty());
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_replaced_key_is_indexed_and_the_old_one_revoked() {
    let mut h = Harness::new().await;
    let acme_customer = ready_customer("acme");
    h.cache_customer(&acme_customer);
    seed_customer(&h, KEY_A).await;

    let task = run(&h, &acme_customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&acme_customer, KEY_B));
    expect_status_patch(&mut h, &acme_customer).await;
    finish(task).await.expect("the reconcile succeeded");

    let old = h
        .store
        .get_api_key(&ApiKeyHash::of(KEY_A))
        .await
        .expect("the store answers");
    let new = h
        .store
        .get_api_key(&ApiKeyHash::of(KEY_B))
        .await
        .expect("the store answers");
    assert!(old.is_none(), "the old key no longer authenticates");
    assert!(new.is_some(), "the new key authenticates");
    let row = h
        .ctx
        .sql
        .customer(&acme())
        .await
        .expect("sqlite answers")
        .expect("the row exists");
    assert_eq!(row.api_key_hash, ApiKeyHash::of(KEY_B));
}

/// Writes what an earlier successful apply with `key` left behind, plus a
/// credential and a route of one of acme's connections.
async fn seed_customer(h: &Harness, key: &str) {
    let summary = hermes_state::store::CustomerSummary {
        id: acme(),
        plan: hermes_crds::Plan::Pro,
        active: true,
        requests_per_minute: None,
        tool_calls_per_month: None,
    };
    h.store
        .put_api_key(&ApiKeyHash::of(key), &summary)
        .await
        .expect("the store accepts the seed");
    let now = Timestamp::now();
    h.ctx
        .sql
        .upsert_customer(&CustomerRecord {
            id: acme(),
            plan: hermes_crds::Plan::Pro,
            active: true,
            email: "ops@acme.example".into(),
            api_key_hash: ApiKeyHash::of(key),
            requests_per_minute: None,
            tool_calls_per_month: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
        .await
        .expect("sqlite accepts the seed");
    h.store.clear_writes();
}

fn wa_route() -> Route {
    Route {
        platform: hermes_crds::Platform::Whatsapp,
        id: "106540352242922".into(),
    }
}

#[tokio::test]
async fn deleting_a_customer_removes_its_state_before_the_finalizer_is_removed() {
    let mut h = Harness::new().await;
    let mut deleting = ready_customer("acme");
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    h.cache_customer(&deleting);
    seed_customer(&h, KEY_A).await;
    // One of acme's connections wrote a credential and owns a route.
    let written = tenancy::apply_connection(
        h.store.as_ref(),
        &h.ctx.keyring,
        &tenancy::plan_connection(
            &deleting,
            &whatsapp_connection(true),
            Some(&[("accessToken", "EAAG-token")].into_iter().collect()),
        )
        .expect("the seed connection plans"),
        &[],
    )
    .await
    .expect("the seed connection applies");
    let mut connection = whatsapp_connection(true);
    connection.status = Some(hermes_crds::PlatformConnectionStatus {
        routes: vec![hermes_state::keyspace::route(&written.routes[0])],
        ..Default::default()
    });
    h.cache_connection(&connection);

    let task = run(&h, &deleting);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&deleting, KEY_A));
    let event = expect_event(&mut h).await;
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("Cleanup"), &json!("Normal"))
    );

    let remove = h.api.expect(Method::PATCH, &customer_path("acme")).await;
    let store = h.store.as_ref();
    assert!(
        store
            .get_api_key(&ApiKeyHash::of(KEY_A))
            .await
            .expect("answers")
            .is_none()
    );
    assert!(store.route_owner(&wa_route()).await.expect("answers").is_none());
    assert!(
        store
            .get_credentials(&acme(), hermes_crds::Platform::Whatsapp)
            .await
            .expect("answers")
            .is_none()
    );
    assert!(
        store
            .connection_states(&acme())
            .await
            .expect("answers")
            .is_empty()
    );
    let row = h
        .ctx
        .sql
        .customer(&acme())
        .await
        .expect("sqlite answers")
        .expect("the row is kept");
    assert!(
        row.deleted_at.is_some(),
        "the row is soft-deleted before the finalizer goes"
    );
    assert_eq!(
        remove.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": hermes_crds::FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ])
    );
    remove.ok(&to_json(&customer("acme", false)));

    assert_eq!(
        finish(task).await.expect("the cleanup succeeded"),
        Action::await_change()
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_failing_cleanup_keeps_the_finalizer_and_retries_with_backoff() {
    let mut h = Harness::new().await;
    let mut deleting = ready_customer("acme");
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    h.cache_customer(&deleting);
    seed_customer(&h, KEY_A).await;
    h.store.fail(true);

    let task = run(&h, &deleting);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&deleting, KEY_A));
    let error = finish(task).await.expect_err("the store is down");
    h.api.expect_no_more().await;

    assert_eq!(error.metric_label(), "StateWriteFailed");
    let first = error_policy(Arc::new(deleting.clone()), &error, h.ctx.clone());
    let second = error_policy(Arc::new(deleting), &error, h.ctx.clone());
    assert_eq!(first, Action::requeue(std::time::Duration::from_secs(1)));
    assert_eq!(second, Action::requeue(std::time::Duration::from_secs(2)));
}

#[tokio::test]
async fn a_store_outage_is_reported_as_state_unavailable_and_fails_the_reconcile() {
    let mut h = Harness::new().await;
    let acme_customer = customer("acme", true);
    h.cache_customer(&acme_customer);
    h.store.fail(true);

    let task = run(&h, &acme_customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&acme_customer, KEY_A));
    let status_patch = expect_status_patch(&mut h, &acme_customer).await;
    let event = expect_event(&mut h).await;
    let error = finish(task).await.expect_err("the store is down");

    assert_eq!(ready_of(&status_patch)["reason"], "StateUnavailable");
    assert_eq!(event["type"], "Warning");
    assert_eq!(error.metric_label(), "StateWriteFailed");
    assert!(
        h.ctx
            .sql
            .customer(&acme())
            .await
            .expect("sqlite answers")
            .is_none()
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn an_api_error_on_the_status_patch_fails_the_reconcile() {
    let mut h = Harness::new().await;
    let acme_customer = customer("acme", true);
    h.cache_customer(&acme_customer);

    let task = run(&h, &acme_customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&acme_customer, KEY_A));
    h.api
        .expect(Method::PATCH, &format!("{}/status", customer_path("acme")))
        .await
        .respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "message": "etcd down"}),
        );
    let error = finish(task).await.expect_err("the patch failed");

    assert_eq!(error.metric_label(), "PatchStatusFailed");
}

// ---------------------------------------------------------------------------
// Delivery

/// The signing secret of acme's delivery, as its Secret holds it.
const SIGNING_SECRET: &str = "whsec-acme-7f3a9c0e5b21d4-signing";

/// The URL acme's events are delivered to.
const DELIVERY_URL: &str = "https://hooks.acme.example/hermes";

/// `customer` with a delivery signed with Secret `acme-delivery` field `signingSecret`.
fn delivering(mut customer: Customer) -> Customer {
    customer.spec.delivery = Some(hermes_crds::Delivery {
        url: DELIVERY_URL.into(),
        signing_secret_ref: SecretKeyRef {
            name: "acme-delivery".into(),
            key: "signingSecret".into(),
        },
    });
    customer
}

/// The Secret `acme-delivery` with `fields`, as the API returns it.
fn delivery_secret(fields: &[(&str, &str)]) -> Value {
    to_json(&secret("acme-delivery", fields))
}

/// `customer` as it is once `status_patch` was applied.
fn after(customer: &Customer, status_patch: &Value) -> Customer {
    let mut next = customer.clone();
    next.status = Some(
        serde_json::from_value(status_patch["status"].clone()).expect("the patched status deserializes"),
    );
    next
}

fn delivery_ready_of(status_patch: &Value) -> Option<&Value> {
    status_patch["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == "DeliveryReady"))
}

/// Runs a first reconcile of a delivering acme whose signing Secret holds
/// [`SIGNING_SECRET`]; returns the status patch.
async fn publish_delivery(h: &mut Harness, customer: &Customer) -> Value {
    let task = run(h, customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(customer, KEY_A));
    h.api
        .expect(Method::GET, &secret_path("acme-delivery"))
        .await
        .ok(&delivery_secret(&[("signingSecret", SIGNING_SECRET)]));
    let status_patch = expect_status_patch(h, customer).await;
    let ready_event = expect_event(h).await;
    let delivery_event = expect_event(h).await;
    let action = finish(task).await.expect("the reconcile succeeded");

    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(ready_event["reason"], "Ready");
    assert_eq!(
        (&delivery_event["reason"], &delivery_event["type"]),
        (&json!("TargetPublished"), &json!("Normal"))
    );
    status_patch
}

#[tokio::test]
async fn a_customer_with_a_delivery_publishes_its_target_sealed_with_the_signing_secret() {
    let mut h = Harness::new().await;
    let acme_customer = delivering(customer("acme", true));
    h.cache_customer(&acme_customer);

    let status_patch = publish_delivery(&mut h, &acme_customer).await;

    let delivery = delivery_ready_of(&status_patch).expect("the status carries DeliveryReady");
    assert_eq!(
        (&delivery["status"], &delivery["reason"]),
        (&json!("True"), &json!("TargetPublished"))
    );
    assert_eq!(delivery["observedGeneration"], 3);
    assert_eq!(ready_of(&status_patch)["status"], "True");
    let stored = h
        .store
        .get_delivery_target(&acme())
        .await
        .expect("the store answers")
        .expect("a target is stored");
    assert_eq!(stored.url, DELIVERY_URL);
    assert_eq!(stored.signing_secret.kid, "k1");
    assert!(
        !serde_json::to_string(&stored)
            .expect("a target serializes")
            .contains(SIGNING_SECRET),
        "the stored target holds the signing secret sealed only"
    );
    let opened = tenancy::load_delivery_target(h.store.as_ref(), &h.ctx.keyring, &acme())
        .await
        .expect("the target opens")
        .expect("a target is stored");
    assert_eq!(opened.signing_secret.as_str(), SIGNING_SECRET);
    assert_eq!(
        h.store.delivery_customers().await.expect("the store answers"),
        vec![acme()]
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn removing_the_delivery_from_the_spec_removes_the_target() {
    let mut h = Harness::new().await;
    let acme_customer = delivering(customer("acme", true));
    h.cache_customer(&acme_customer);
    let published = publish_delivery(&mut h, &acme_customer).await;
    let mut undelivered = after(&acme_customer, &published);
    undelivered.spec.delivery = None;
    h.cache_customer(&undelivered);

    let task = run(&h, &undelivered);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&undelivered, KEY_A));
    let status_patch = expect_status_patch(&mut h, &undelivered).await;
    let action = finish(task).await.expect("the reconcile succeeded");

    assert_eq!(action, Action::requeue(RESYNC));
    assert!(
        delivery_ready_of(&status_patch).is_none(),
        "DeliveryReady goes with the delivery"
    );
    assert_eq!(ready_of(&status_patch)["status"], "True");
    assert!(
        h.store
            .get_delivery_target(&acme())
            .await
            .expect("the store answers")
            .is_none()
    );
    assert!(
        h.store
            .delivery_customers()
            .await
            .expect("the store answers")
            .is_empty()
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_missing_signing_secret_is_reported_as_delivery_not_ready_and_publishes_no_target() {
    let mut h = Harness::new().await;
    let acme_customer = delivering(customer("acme", true));
    h.cache_customer(&acme_customer);

    let task = run(&h, &acme_customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&acme_customer, KEY_A));
    h.api
        .expect(Method::GET, &secret_path("acme-delivery"))
        .await
        .not_found();
    let status_patch = expect_status_patch(&mut h, &acme_customer).await;
    let ready_event = expect_event(&mut h).await;
    let delivery_event = expect_event(&mut h).await;
    let action = finish(task)
        .await
        .expect("a missing Secret is reported, not an error");

    assert_eq!(action, Action::requeue(RESYNC));
    let ready = ready_of(&status_patch);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("True"), &json!("Ready")),
        "the customer can still call the API"
    );
    let delivery = delivery_ready_of(&status_patch).expect("the status carries DeliveryReady");
    assert_eq!(
        (&delivery["status"], &delivery["reason"]),
        (&json!("False"), &json!("DeliverySecretMissing"))
    );
    let message = delivery["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("acme-delivery") && message.contains("signingSecret"),
        "{message}"
    );
    assert_eq!(ready_event["reason"], "Ready");
    assert_eq!(
        (&delivery_event["reason"], &delivery_event["type"]),
        (&json!("DeliverySecretMissing"), &json!("Warning"))
    );
    assert!(
        h.store
            .get_delivery_target(&acme())
            .await
            .expect("the store answers")
            .is_none()
    );
    assert!(!h.store.writes().contains(&"put_delivery_target"));
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_signing_secret_gone_missing_keeps_the_last_published_target() {
    let mut h = Harness::new().await;
    let acme_customer = delivering(customer("acme", true));
    h.cache_customer(&acme_customer);
    let published = after(&acme_customer, &publish_delivery(&mut h, &acme_customer).await);

    let task = run(&h, &published);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&published, KEY_A));
    h.api
        .expect(Method::GET, &secret_path("acme-delivery"))
        .await
        .not_found();
    let status_patch = expect_status_patch(&mut h, &published).await;
    let delivery_event = expect_event(&mut h).await;
    finish(task)
        .await
        .expect("a missing Secret is reported, not an error");

    assert_eq!(
        delivery_ready_of(&status_patch).map(|c| &c["reason"]),
        Some(&json!("DeliverySecretMissing"))
    );
    assert_eq!(delivery_event["reason"], "DeliverySecretMissing");
    let kept = tenancy::load_delivery_target(h.store.as_ref(), &h.ctx.keyring, &acme())
        .await
        .expect("the target opens")
        .expect("the last target is kept");
    assert_eq!(kept.signing_secret.as_str(), SIGNING_SECRET);
    h.api.expect_no_more().await;
}

/// Makes the store fail from the next `put_delivery_target` on.
fn fail_at_put_delivery_target(h: &Harness) {
    let store = h.store.clone();
    h.store.before_write(
        "put_delivery_target",
        Box::new(move || {
            Box::pin(async move {
                store.fail(true);
            })
        }),
    );
}

#[tokio::test]
async fn a_store_failure_while_publishing_the_target_is_reported_and_retried() {
    let mut h = Harness::new().await;
    let acme_customer = delivering(customer("acme", true));
    h.cache_customer(&acme_customer);
    fail_at_put_delivery_target(&h);

    let task = run(&h, &acme_customer);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&acme_customer, KEY_A));
    h.api
        .expect(Method::GET, &secret_path("acme-delivery"))
        .await
        .ok(&delivery_secret(&[("signingSecret", SIGNING_SECRET)]));
    let status_patch = expect_status_patch(&mut h, &acme_customer).await;
    expect_event(&mut h).await;
    let delivery_event = expect_event(&mut h).await;
    let error = finish(task).await.expect_err("the store is down");

    assert_eq!(error.metric_label(), "PublishDeliveryFailed");
    assert_eq!(
        error_policy(Arc::new(acme_customer.clone()), &error, h.ctx.clone()),
        Action::requeue(std::time::Duration::from_secs(1))
    );
    assert_eq!(ready_of(&status_patch)["status"], "True");
    assert_eq!(
        delivery_ready_of(&status_patch).map(|c| (&c["status"], &c["reason"])),
        Some((&json!("False"), &json!("StateUnavailable")))
    );
    assert_eq!(
        (&delivery_event["reason"], &delivery_event["type"]),
        (&json!("StateUnavailable"), &json!("Warning"))
    );
    h.store.fail(false);
    assert!(
        h.store
            .get_delivery_target(&acme())
            .await
            .expect("the store answers")
            .is_none()
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn nothing_a_customer_reconcile_logs_emits_or_writes_to_status_contains_a_secret_value() {
    let logs = LogBuffer::default();
    let _subscriber = tracing::subscriber::set_default(logs.subscriber());
    let mut h = Harness::new().await;
    let acme_customer = delivering(customer("acme", true));
    h.cache_customer(&acme_customer);

    // Published.
    let published = after(&acme_customer, &publish_delivery(&mut h, &acme_customer).await);

    // Not published: the secret sits in a field the delivery does not name.
    let task = run(&h, &published);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&published, KEY_A));
    h.api
        .expect(Method::GET, &secret_path("acme-delivery"))
        .await
        .ok(&delivery_secret(&[("signing", SIGNING_SECRET)]));
    expect_status_patch(&mut h, &published).await;
    expect_event(&mut h).await;
    finish(task).await.expect("a missing field is reported");

    // The store fails while the target is written.
    fail_at_put_delivery_target(&h);
    let task = run(&h, &published);
    h.api
        .expect(Method::GET, &secret_path("acme-api-key"))
        .await
        .ok(&owned_secret(&published, KEY_A));
    h.api
        .expect(Method::GET, &secret_path("acme-delivery"))
        .await
        .ok(&delivery_secret(&[("signingSecret", SIGNING_SECRET)]));
    expect_status_patch(&mut h, &published).await;
    expect_event(&mut h).await;
    let error = finish(task).await.expect_err("the store is down");
    error_policy(Arc::new(published.clone()), &error, h.ctx.clone());

    let logged = logs.contents();
    assert!(
        logged.contains("customer reconcile failed"),
        "the log capture works: {logged}"
    );
    let sent = h.api.statuses_and_events();
    assert!(sent.len() >= 7, "statuses and events were captured: {sent:?}");
    for secret in [SIGNING_SECRET, KEY_A] {
        assert!(!logged.contains(secret), "a log line holds a secret value");
        for body in &sent {
            assert!(
                !body.contains(secret),
                "a status or Event holds a secret value: {body}"
            );
        }
    }
}
