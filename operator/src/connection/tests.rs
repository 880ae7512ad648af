//! The PlatformConnection reconciler's wire contract, against a mocked API
//! server, over the embedded store or a real `redis-server`.
//!
//! Each scenario arranges a connection, its Customer, its Secret and the
//! state, runs one reconcile in a task while the test answers the requests
//! it makes, and verifies those requests and what ended up in the store.

use std::sync::Arc;
use std::time::Duration;

use hermes_crds::{Platform, PlatformConnection};
use hermes_state::CustomerId;
use hermes_state::store::{EmbeddedStore, RedisStore, Route, RouteClaim, Store};
use hermes_state::tenancy::{self, Credentials};
use http::Method;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::*;
use crate::fixtures::*;

const TOKEN: &str = "EAAG-SUPERSECRET-7f3c9d";
const OTHER_TOKEN: &str = "EAAG-ROTATED-SECRET-11aa";
const PHONE: &str = "106540352242922";

fn acme() -> CustomerId {
    CustomerId::new("acme").expect("acme is a valid customer id")
}

fn wa_route() -> Route {
    Route {
        platform: Platform::Whatsapp,
        id: PHONE.into(),
    }
}

fn wa_secret(token: &str) -> Value {
    to_json(&secret("wa-creds", &[("accessToken", token)]))
}

fn run(h: &Harness, connection: &PlatformConnection) -> JoinHandle<Result<Action>> {
    tokio::spawn(reconcile(Arc::new(connection.clone()), h.ctx.clone()))
}

async fn finish(task: JoinHandle<Result<Action>>) -> Result<Action> {
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the reconcile finished")
        .expect("the reconcile did not panic")
}

/// A harness over `store` with a Ready `acme` cached.
async fn harness_with(store: Arc<dyn Store>) -> Harness {
    let mut h = Harness::with(store, KEY_K1, None).await;
    h.cache_customer(&ready_customer("acme"));
    h
}

/// Answers a status patch with the connection carrying that status, and
/// returns the patch body.
async fn expect_status_patch(h: &mut Harness, connection: &PlatformConnection) -> Value {
    let path = format!(
        "{}/status",
        connection_path(&connection.metadata.name.clone().unwrap_or_default())
    );
    let patch = h.api.expect(Method::PATCH, &path).await;
    assert!(
        patch.query.contains("fieldManager=hermes-operator"),
        "{}",
        patch.query
    );
    assert_eq!(patch.body["kind"], "PlatformConnection");
    let body = patch.body.clone();
    let status = patch.status().clone();
    patch.ok(&with_status(connection, &status));
    body
}

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

/// `connection` carrying the status of a patch, as the next watch event
/// would deliver it.
fn after(connection: &PlatformConnection, status_patch: &Value) -> PlatformConnection {
    let mut next = connection.clone();
    next.status = Some(
        serde_json::from_value(status_patch["status"].clone()).expect("the patched status deserializes"),
    );
    next
}

/// Runs a first, successful reconcile of the WhatsApp connection with `token`.
async fn write_whatsapp(h: &mut Harness, connection: &PlatformConnection, token: &str) -> Value {
    let task = run(h, connection);
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(token));
    let status_patch = expect_status_patch(h, connection).await;
    if crate::conditions::find_ready(&connection.status.clone().unwrap_or_default().conditions)
        .is_none_or(|c| c.status != hermes_crds::ConditionStatus::True)
    {
        expect_event(h).await;
    }
    assert_eq!(
        finish(task).await.expect("the reconcile succeeded"),
        Action::requeue(RESYNC)
    );
    status_patch
}

async fn stored_credentials(
    store: &dyn Store,
    keyring: &hermes_state::vault::Keyring,
) -> Option<Credentials> {
    tenancy::load_credentials(store, keyring, &acme(), Platform::Whatsapp)
        .await
        .expect("the stored credentials open")
}

#[tokio::test]
async fn the_finalizer_is_added_before_anything_is_written() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(false);
    h.cache_connection(&connection);

    let task = run(&h, &connection);
    let patch = h.api.expect(Method::PATCH, &connection_path("wa")).await;
    assert!(
        h.store.writes().is_empty(),
        "the store was written before the finalizer"
    );
    assert_eq!(
        patch.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [hermes_crds::FINALIZER]},
        ])
    );
    patch.ok(&with_finalizer(&connection));

    assert_eq!(
        finish(task).await.expect("the reconcile succeeded"),
        Action::await_change()
    );
    h.api.expect_no_more().await;
    assert!(h.store.writes().is_empty());
}

#[tokio::test]
async fn a_connection_waits_for_its_customer_with_growing_backoff_and_writes_nothing() {
    let mut h = Harness::new().await;
    let connection = whatsapp_connection(true);
    h.cache_connection(&connection);

    let task = run(&h, &connection);
    let status_patch = expect_status_patch(&mut h, &connection).await;
    let event = expect_event(&mut h).await;
    let first = finish(task).await.expect("waiting is not an error");

    let ready = ready_of(&status_patch);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("CustomerNotReady"))
    );
    assert_eq!(status_patch["status"]["observedGeneration"], 2);
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("CustomerNotReady"), &json!("Warning"))
    );
    assert_eq!(first, Action::requeue(Duration::from_secs(1)));

    // The same wait again: the status is already right, so nothing is sent.
    let task = run(&h, &after(&connection, &status_patch));
    let second = finish(task).await.expect("waiting is not an error");
    assert_eq!(second, Action::requeue(Duration::from_secs(2)));
    h.api.expect_no_more().await;
    assert!(h.store.writes().is_empty());
}

#[tokio::test]
async fn a_ready_connection_is_sealed_and_its_status_carries_fingerprint_routes_and_key_id() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);
    h.cache_connection(&connection);

    let task = run(&h, &connection);
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(TOKEN));
    let status_patch = expect_status_patch(&mut h, &connection).await;
    let event = expect_event(&mut h).await;
    assert_eq!(
        finish(task).await.expect("the reconcile succeeded"),
        Action::requeue(RESYNC)
    );

    let status = &status_patch["status"];
    let ready = ready_of(&status_patch);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("True"), &json!("Ready"))
    );
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(status["routes"], json!([format!("wa_phone_id:{PHONE}")]));
    assert_eq!(status["keyId"], "k1");
    assert!(
        status["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("k1:"))
    );
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("Ready"), &json!("Normal"))
    );

    let envelope = h
        .store
        .get_credentials(&acme(), Platform::Whatsapp)
        .await
        .expect("the store answers")
        .expect("credentials are stored");
    assert_eq!(envelope.kid, "k1");
    assert!(
        !serde_json::to_string(&envelope)
            .expect("serializes")
            .contains(TOKEN)
    );
    let opened = stored_credentials(h.store.as_ref(), &h.ctx.keyring)
        .await
        .expect("stored");
    assert_eq!(opened.secret("accessToken"), Some(TOKEN));
    assert_eq!(
        h.store.route_owner(&wa_route()).await.expect("answers"),
        Some(acme())
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn an_unchanged_connection_is_not_rewritten() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);
    let status_patch = write_whatsapp(&mut h, &connection, TOKEN).await;
    h.store.clear_writes();

    let task = run(&h, &after(&connection, &status_patch));
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(TOKEN));
    assert_eq!(
        finish(task).await.expect("the reconcile succeeded"),
        Action::requeue(RESYNC)
    );

    h.api.expect_no_more().await;
    assert!(
        h.store.writes().is_empty(),
        "unchanged input wrote {:?}",
        h.store.writes()
    );
}

#[tokio::test]
async fn a_changed_secret_is_rewritten_under_a_new_fingerprint() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);
    let first = write_whatsapp(&mut h, &connection, TOKEN).await;

    let second = write_whatsapp(&mut h, &after(&connection, &first), OTHER_TOKEN).await;

    assert_ne!(first["status"]["fingerprint"], second["status"]["fingerprint"]);
    let opened = stored_credentials(h.store.as_ref(), &h.ctx.keyring)
        .await
        .expect("stored");
    assert_eq!(opened.secret("accessToken"), Some(OTHER_TOKEN));
}

#[tokio::test]
async fn a_rotated_primary_key_reencrypts_the_credentials() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);
    let first = write_whatsapp(&mut h, &connection, TOKEN).await;

    h.rotate_keyring(&format!("{KEY_K2},{KEY_K1}"));
    let second = write_whatsapp(&mut h, &after(&connection, &first), TOKEN).await;

    assert_eq!(second["status"]["keyId"], "k2");
    assert!(
        second["status"]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("k2:"))
    );
    let envelope = h
        .store
        .get_credentials(&acme(), Platform::Whatsapp)
        .await
        .expect("the store answers")
        .expect("credentials are stored");
    assert_eq!(envelope.kid, "k2");
}

#[tokio::test]
async fn missing_secret_fields_are_credentials_invalid_naming_them() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);

    let task = run(&h, &connection);
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&to_json(&secret("wa-creds", &[("appSecret", TOKEN)])));
    let status_patch = expect_status_patch(&mut h, &connection).await;
    let event = expect_event(&mut h).await;
    finish(task)
        .await
        .expect("invalid credentials are reported, not an error");

    let ready = ready_of(&status_patch);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("CredentialsInvalid"))
    );
    assert!(
        ready["message"]
            .as_str()
            .is_some_and(|m| m.contains("accessToken")),
        "{ready}"
    );
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("CredentialsInvalid"), &json!("Warning"))
    );
    assert!(event["note"].as_str().is_some_and(|n| n.contains("accessToken")));

    let published = h
        .store
        .connection_states(&acme())
        .await
        .expect("the store answers");
    assert_eq!(published.len(), 1);
    assert!(
        !published[0].ready,
        "the server stops offering the connection's tools"
    );
    assert!(
        h.store
            .get_credentials(&acme(), Platform::Whatsapp)
            .await
            .expect("answers")
            .is_none()
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_route_owned_by_another_customer_is_a_conflict_and_is_not_overwritten() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let globex = CustomerId::new("globex").expect("globex is a valid customer id");
    let claim = h
        .store
        .claim_route(&wa_route(), &globex)
        .await
        .expect("the store answers");
    assert_eq!(claim, RouteClaim::Claimed);
    let connection = whatsapp_connection(true);

    let task = run(&h, &connection);
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(TOKEN));
    let status_patch = expect_status_patch(&mut h, &connection).await;
    let event = expect_event(&mut h).await;
    finish(task).await.expect("a conflict is reported, not an error");

    let ready = ready_of(&status_patch);
    assert_eq!(ready["reason"], "RouteConflict");
    assert!(ready["message"].as_str().is_some_and(|m| m.contains("globex")));
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("RouteConflict"), &json!("Warning"))
    );
    assert_eq!(
        h.store.route_owner(&wa_route()).await.expect("answers"),
        Some(globex)
    );
    assert!(
        h.store
            .get_credentials(&acme(), Platform::Whatsapp)
            .await
            .expect("answers")
            .is_none()
    );
}

#[tokio::test]
async fn a_second_connection_for_the_same_platform_is_refused_and_writes_nothing() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let holder = whatsapp_connection(true);
    let mut second = whatsapp_connection(false);
    second.metadata.name = Some("wa-2".into());
    second.metadata.creation_timestamp = Some(Time(
        Timestamp::from_second(1_800_000_000).expect("a fixed second is a valid timestamp"),
    ));
    h.cache_connection(&holder);
    h.cache_connection(&second);

    let task = run(&h, &second);
    let status_patch = expect_status_patch(&mut h, &second).await;
    expect_event(&mut h).await;
    assert_eq!(
        finish(task).await.expect("a duplicate is reported, not an error"),
        Action::requeue(DUPLICATE_RECHECK)
    );

    assert_eq!(ready_of(&status_patch)["reason"], "DuplicatePlatform");
    assert!(h.store.writes().is_empty());
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn deleting_a_connection_removes_its_state_before_the_finalizer_is_removed() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);
    let status_patch = write_whatsapp(&mut h, &connection, TOKEN).await;
    let mut deleting = after(&connection, &status_patch);
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    h.cache_connection(&deleting);

    let task = run(&h, &deleting);
    let event = expect_event(&mut h).await;
    assert_eq!(
        (&event["reason"], &event["type"]),
        (&json!("Cleanup"), &json!("Normal"))
    );
    let remove = h.api.expect(Method::PATCH, &connection_path("wa")).await;
    let store = h.store.as_ref();
    assert!(
        store
            .get_credentials(&acme(), Platform::Whatsapp)
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
    assert!(store.route_owner(&wa_route()).await.expect("answers").is_none());
    assert_eq!(
        remove.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": hermes_crds::FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ])
    );
    remove.ok(&to_json(&whatsapp_connection(false)));

    assert_eq!(
        finish(task).await.expect("the cleanup succeeded"),
        Action::await_change()
    );
    h.api.expect_no_more().await;
}

#[tokio::test]
async fn a_failing_cleanup_keeps_the_finalizer() {
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);
    let status_patch = write_whatsapp(&mut h, &connection, TOKEN).await;
    let mut deleting = after(&connection, &status_patch);
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    h.store.fail(true);

    let error = finish(run(&h, &deleting)).await.expect_err("the store is down");

    h.api.expect_no_more().await;
    assert_eq!(error.metric_label(), "StateWriteFailed");
}

/// What a connection left in a store, with the parts that differ between
/// equal runs (nonces, timestamps) taken out.
async fn snapshot(store: &dyn Store, keyring: &hermes_state::vault::Keyring) -> Value {
    let states: Vec<Value> = store
        .connection_states(&acme())
        .await
        .expect("the store answers")
        .into_iter()
        .map(|state| json!({"platform": state.platform, "ready": state.ready, "reason": state.reason}))
        .collect();
    let credentials = stored_credentials(store, keyring)
        .await
        .map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned());
    let envelope_kid = store
        .get_credentials(&acme(), Platform::Whatsapp)
        .await
        .expect("the store answers")
        .map(|e| e.kid);
    json!({
        "route_owner": store.route_owner(&wa_route()).await.expect("the store answers"),
        "states": states,
        "credentials": credentials,
        "kid": envelope_kid,
    })
}

/// The parts of a status patch that equal runs agree on.
fn comparable(status_patch: &Value) -> Value {
    let status = &status_patch["status"];
    let ready = ready_of(status_patch);
    json!({
        "fingerprint": status["fingerprint"], "routes": status["routes"], "keyId": status["keyId"],
        "observedGeneration": status["observedGeneration"],
        "ready": [ready["status"], ready["reason"], ready["message"]],
    })
}

#[tokio::test]
async fn a_redis_outage_mid_reconcile_fails_it_and_the_retry_converges_to_an_uninterrupted_run() {
    let Some(mut redis) = RedisProcess::start_on_free_port().await else {
        return;
    };
    let redis_store = RedisStore::connect_single(&redis.url())
        .await
        .expect("redis answers");
    let mut h = harness_with(Arc::new(redis_store)).await;
    // A command against a stopped Redis fails after its reconnect attempts, not at once.
    h.api.patience = Duration::from_secs(15);
    let connection = whatsapp_connection(true);

    // The route is claimed, then Redis goes down before the credentials are written.
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel::<()>();
    let (resume_tx, resume_rx) = tokio::sync::oneshot::channel::<()>();
    h.store.before_write(
        "put_credentials",
        Box::new(move || {
            Box::pin(async move {
                let _reached = reached_tx.send(());
                let _resumed = resume_rx.await;
            })
        }),
    );
    let task = run(&h, &connection);
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(TOKEN));
    reached_rx
        .await
        .expect("the reconcile reached the credentials write");
    redis.stop().await;
    resume_tx.send(()).expect("the reconcile waits to resume");

    let status_patch = expect_status_patch(&mut h, &connection).await;
    expect_event(&mut h).await;
    let error = finish(task).await.expect_err("redis is down");
    assert_eq!(ready_of(&status_patch)["reason"], "StateUnavailable");
    assert_eq!(error.metric_label(), "StateWriteFailed");
    let retry = error_policy(Arc::new(connection.clone()), &error, h.ctx.clone());
    assert_eq!(retry, Action::requeue(Duration::from_secs(1)));

    // Redis comes back with what it held: the route claimed before the
    // outage, and no credentials. The retry completes the write.
    redis.start().await;
    let partial = snapshot(h.store.as_ref(), &h.ctx.keyring).await;
    assert_eq!(
        partial["route_owner"], "acme",
        "the outage hit after the route was claimed"
    );
    assert_eq!(
        partial["credentials"],
        Value::Null,
        "and before the credentials were written"
    );
    let interrupted = after(&connection, &status_patch);
    let task = run(&h, &interrupted);
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(TOKEN));
    let retried = expect_status_patch(&mut h, &interrupted).await;
    expect_event(&mut h).await;
    finish(task).await.expect("the retry succeeded");

    // An uninterrupted run of the same connection, for comparison.
    let mut clean = harness_with(Arc::new(EmbeddedStore::new())).await;
    let uninterrupted = write_whatsapp(&mut clean, &connection, TOKEN).await;

    assert_eq!(comparable(&retried), comparable(&uninterrupted));
    assert_eq!(
        snapshot(h.store.as_ref(), &h.ctx.keyring).await,
        snapshot(clean.store.as_ref(), &clean.ctx.keyring).await
    );
}

#[tokio::test]
async fn nothing_a_reconcile_logs_emits_or_writes_to_status_contains_a_secret_value() {
    let logs = LogBuffer::default();
    let _subscriber = tracing::subscriber::set_default(logs.subscriber());
    let mut h = harness_with(Arc::new(EmbeddedStore::new())).await;
    let connection = whatsapp_connection(true);

    // Ready, then unchanged.
    let ready = write_whatsapp(&mut h, &connection, TOKEN).await;
    let task = run(&h, &after(&connection, &ready));
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(TOKEN));
    finish(task).await.expect("the unchanged reconcile succeeded");

    // Invalid: the token sits in a field the platform does not require.
    let task = run(&h, &after(&connection, &ready));
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&to_json(&secret("wa-creds", &[("appSecret", OTHER_TOKEN)])));
    expect_status_patch(&mut h, &connection).await;
    expect_event(&mut h).await;
    finish(task).await.expect("invalid credentials are reported");

    // The store fails mid-write.
    h.store.fail(true);
    let task = run(&h, &connection);
    h.api
        .expect(Method::GET, &secret_path("wa-creds"))
        .await
        .ok(&wa_secret(OTHER_TOKEN));
    expect_status_patch(&mut h, &connection).await;
    expect_event(&mut h).await;
    let error = finish(task).await.expect_err("the store is down");
    error_policy(Arc::new(connection.clone()), &error, h.ctx.clone());

    let logged = logs.contents();
    assert!(
        logged.contains("platformconnection reconcile failed"),
        "the log capture works: {logged}"
    );
    assert!(
        logged.contains("reconcile{controller=\"platformconnection\""),
        "{logged}"
    );
    let sent = h.api.statuses_and_events();
    assert!(sent.len() >= 6, "statuses and events were captured: {sent:?}");
    for secret in [TOKEN, OTHER_TOKEN] {
        assert!(!logged.contains(secret), "a log line holds a secret value");
        for body in &sent {
            assert!(
                !body.contains(secret),
                "a status or Event holds a secret value: {body}"
            );
        }
    }
}

/// A Bot API on loopback that accepts `setWebhook` and records the calls.
async fn mock_bot_api() -> (String, Arc<std::sync::Mutex<Vec<(String, Value)>>>) {
    use axum::extract::{Path, State};
    use axum::routing::post;

    type Calls = Arc<std::sync::Mutex<Vec<(String, Value)>>>;
    async fn set_webhook(
        State(calls): State<Calls>,
        Path(method): Path<String>,
        axum::Json(body): axum::Json<Value>,
    ) -> axum::Json<Value> {
        calls
            .lock()
            .expect("the call log is never poisoned")
            .push((method, body));
        axum::Json(json!({"ok": true, "result": true, "description": "Webhook was set"}))
    }

    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/{method}/setWebhook", post(set_webhook))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port is free");
    let address = listener.local_addr().expect("the listener has an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), calls)
}

#[tokio::test]
async fn a_ready_telegram_connection_registers_its_webhook_and_records_it_without_the_token() {
    const BOT_TOKEN: &str = "123456:AAH-telegram-secret-bot-token";
    const WEBHOOK_TOKEN: &str = "wh-secret-token-9b1e";
    let (api_base, calls) = mock_bot_api().await;
    let webhooks = crate::telegram::Webhooks::new(
        crate::telegram::http_client().expect("a client builds"),
        "https://hermes.example.com".into(),
        api_base,
    );
    let mut h = Harness::with(Arc::new(EmbeddedStore::new()), KEY_K1, Some(webhooks)).await;
    h.cache_customer(&ready_customer("acme"));
    let connection = connection(
        "tg",
        json!({
            "customerRef": "acme",
            "platform": "telegram",
            "secretRef": {"name": "tg-creds"},
            "telegram": {"botUsername": "acme_bot"},
        }),
        true,
    );

    let task = run(&h, &connection);
    h.api
        .expect(Method::GET, &secret_path("tg-creds"))
        .await
        .ok(&to_json(&secret(
            "tg-creds",
            &[("botToken", BOT_TOKEN), ("webhookSecretToken", WEBHOOK_TOKEN)],
        )));
    let status_patch = expect_status_patch(&mut h, &connection).await;
    expect_event(&mut h).await;
    finish(task).await.expect("the reconcile succeeded");

    let url = format!("https://hermes.example.com/webhook/telegram/{NAMESPACE}.tg");
    let recorded = calls.lock().expect("the call log is never poisoned").clone();
    assert_eq!(
        recorded,
        vec![(
            format!("bot{BOT_TOKEN}"),
            json!({"url": url, "secret_token": WEBHOOK_TOKEN})
        )]
    );
    assert_eq!(status_patch["status"]["webhook"], format!("registered {url}"));
    assert_eq!(
        status_patch["status"]["routes"],
        json!([format!("tg_connection:{NAMESPACE}.tg")])
    );
    let body = status_patch.to_string();
    assert!(!body.contains(BOT_TOKEN) && !body.contains(WEBHOOK_TOKEN));

    // Registered once: an unchanged connection does not call the Bot API again.
    let task = run(&h, &after(&connection, &status_patch));
    h.api
        .expect(Method::GET, &secret_path("tg-creds"))
        .await
        .ok(&to_json(&secret(
            "tg-creds",
            &[("botToken", BOT_TOKEN), ("webhookSecretToken", WEBHOOK_TOKEN)],
        )));
    finish(task).await.expect("the reconcile succeeded");
    assert_eq!(calls.lock().expect("the call log is never poisoned").len(), 1);
    h.api.expect_no_more().await;
}
