//! Delivery of inbound events to the customer's endpoint: a real HTTP
//! endpoint on loopback, workers run by the test, on the embedded store and
//! on the shared Redis (`REDIS_URL`) and Redis Cluster when configured.

mod webhook_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use hermes_server::delivery::Worker;
use hermes_server::delivery::signing::{self, DELIVERY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use hermes_server::webhook::InboundSettings;
use hermes_state::store::{EmbeddedStore, Store};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webhook_support::{
    APP_SECRET, Harness, api, customer_id, eventually, inbound_settings, phone_number_id, random_hex,
    shared_cluster, shared_redis, signed, text_message, wamid, whatsapp_body,
};

/// How long a test waits for something that takes well under a second.
const PATIENCE: Duration = Duration::from_secs(15);

/// What the test endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Every request, with this status.
    Answer(StatusCode),
    /// Holds the first request open forever; answers 200 to the others.
    HoldFirst,
}

/// One request the endpoint received.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Debug)]
struct Endpoint {
    url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Endpoint {
    /// A customer endpoint on a free loopback port.
    async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}/hermes", listener.local_addr().expect("an address"));
        let endpoint = Self {
            url,
            behaviour: Arc::new(Mutex::new(behaviour)),
            received: Arc::default(),
        };
        let router = Router::new()
            .route("/hermes", post(receive))
            .with_state(endpoint.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        endpoint
    }

    fn answer(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("not poisoned") = behaviour;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }

    fn count(&self) -> usize {
        self.received.lock().expect("not poisoned").len()
    }
}

async fn receive(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let (nth, behaviour) = {
        let mut received = endpoint.received.lock().expect("not poisoned");
        received.push(Received { headers, body });
        (received.len(), *endpoint.behaviour.lock().expect("not poisoned"))
    };
    match behaviour {
        Behaviour::Answer(status) => status,
        Behaviour::HoldFirst if nth == 1 => std::future::pending().await,
        Behaviour::HoldFirst => StatusCode::OK,
    }
}

/// Inbound settings with short delivery times; workers are run by the tests.
fn quick_delivery() -> InboundSettings {
    let mut inbound = inbound_settings();
    inbound.delivery.poll_interval = Duration::from_millis(20);
    inbound.delivery.claim_timeout = Duration::from_millis(1500);
    inbound.delivery.request_timeout = Duration::from_millis(1000);
    inbound.delivery.max_attempts = 3;
    inbound.delivery.backoff_base = Duration::from_millis(10);
    inbound.delivery.backoff_max = Duration::from_millis(40);
    inbound
}

/// An app whose customer delivers to `endpoint`, with one WhatsApp number;
/// returns the app, the customer's API key, the customer, its number and secret.
async fn delivering_app(
    store: Arc<dyn Store>,
    endpoint: &Endpoint,
) -> (Harness, String, hermes_state::CustomerId, String, String) {
    let app = Harness::over(store, quick_delivery()).await;
    let (acme, number) = (customer_id(), phone_number_id());
    let secret = format!("whsec-{}", random_hex());
    let key = app.customer(&acme, Some((&endpoint.url, &secret))).await;
    app.connect_whatsapp(&acme, &number, None).await;
    (app, key, acme, number, secret)
}

/// Asserts a received delivery carries a valid signature under `secret`,
/// and returns its body.
fn verified(received: &Received, secret: &str) -> Value {
    let header = |name: &str| {
        received
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = jiff::Timestamp::now().as_second();
    assert!(
        signing::verify(
            secret.as_bytes(),
            &header(TIMESTAMP_HEADER),
            &header(SIGNATURE_HEADER),
            &received.body,
            now,
            300
        ),
        "the delivery's signature verifies"
    );
    let body: Value = serde_json::from_slice(&received.body).expect("a JSON body");
    assert_eq!(body["id"], header(DELIVERY_ID_HEADER).as_str());
    body
}

async fn a_killed_worker_is_taken_over(store: Arc<dyn Store>) {
    let endpoint = Endpoint::start(Behaviour::HoldFirst).await;
    let (app, _key, acme, number, secret) = delivering_app(store, &endpoint).await;
    let body = whatsapp_body(&[(&number, text_message(&wamid(), "deliver me"))]);
    assert_eq!(
        app.send(signed("/webhook/whatsapp", body, APP_SECRET))
            .await
            .status,
        StatusCode::OK
    );

    let first = Worker::new(app.state.clone(), format!("first-{}", random_hex())).expect("a worker");
    let first = tokio::spawn(first.run(CancellationToken::new()));
    eventually(PATIENCE, "the first worker's request", || async {
        endpoint.count() >= 1
    })
    .await;
    first.abort();
    assert!(
        first.await.is_err_and(|e| e.is_cancelled()),
        "the first worker was killed mid-delivery"
    );

    let stop = CancellationToken::new();
    let second = Worker::new(app.state.clone(), format!("second-{}", random_hex())).expect("a worker");
    let second = tokio::spawn(second.run(stop.clone()));
    eventually(PATIENCE, "the second worker's delivery", || async {
        endpoint.count() >= 2
    })
    .await;
    eventually(PATIENCE, "the delivery to complete", || async {
        app.metrics()
            .contains(r#"hermes_deliveries_total{outcome="succeeded"} 1"#)
    })
    .await;
    stop.cancel();
    second.await.expect("the second worker stops cleanly");

    let received = endpoint.received();
    let inbox_id = app.inbox(&acme).await[0].id.clone();
    for delivery in &received {
        let body = verified(delivery, &secret);
        assert_eq!(body["id"], inbox_id.as_str(), "the same event, by its inbox id");
        assert_eq!(body["customer"], acme.as_str());
        assert_eq!(body["event"]["text"], "deliver me");
    }
    assert!(
        app.store()
            .dead_letters(&acme, None, 10)
            .await
            .expect("dead letters read")
            .is_empty()
    );
    assert!(app.metrics().contains("hermes_delivery_lag_seconds_count 1"));
    app.store().purge_customer(&acme).await.expect("purge works");
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_is_taken_over_after_the_claim_timeout_with_a_valid_signature() {
    a_killed_worker_is_taken_over(Arc::new(EmbeddedStore::new())).await;
}

#[tokio::test]
async fn on_redis_a_worker_killed_mid_delivery_is_taken_over_after_the_claim_timeout() {
    let Some(store) = shared_redis().await else { return };
    a_killed_worker_is_taken_over(store).await;
}

#[tokio::test]
async fn on_a_redis_cluster_a_worker_killed_mid_delivery_is_taken_over_after_the_claim_timeout() {
    let Some(store) = shared_cluster().await else {
        return;
    };
    a_killed_worker_is_taken_over(store).await;
}

async fn failing_endpoint_is_dead_lettered_and_replayed(store: Arc<dyn Store>) {
    let endpoint = Endpoint::start(Behaviour::Answer(StatusCode::SERVICE_UNAVAILABLE)).await;
    let (app, key, acme, number, secret) = delivering_app(store, &endpoint).await;
    let body = whatsapp_body(&[(&number, text_message(&wamid(), "retry me"))]);
    assert_eq!(
        app.send(signed("/webhook/whatsapp", body, APP_SECRET))
            .await
            .status,
        StatusCode::OK
    );
    let worker = Worker::new(app.state.clone(), format!("w-{}", random_hex())).expect("a worker");

    eventually(PATIENCE, "the delivery to be dead-lettered", || async {
        worker.run_once().await;
        !app.store()
            .dead_letters(&acme, None, 10)
            .await
            .expect("dead letters read")
            .is_empty()
    })
    .await;

    let attempts: Vec<String> = endpoint
        .received()
        .iter()
        .map(|r| {
            r.headers
                .get("hermes-attempt")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(attempts, ["1", "2", "3"], "three attempts, then given up");
    let dead = app
        .send(api(Method::GET, "/api/deliveries/dead", &key, None))
        .await;
    assert_eq!(dead.status, StatusCode::OK);
    let letter = &dead.body["deadLetters"][0];
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["error"], "http 503");
    assert_eq!(letter["event"]["text"], "retry me");
    let id = letter["id"].as_str().expect("an id").to_owned();

    endpoint.answer(Behaviour::Answer(StatusCode::NO_CONTENT));
    let replayed = app
        .send(api(
            Method::POST,
            &format!("/api/deliveries/dead/{id}/replay"),
            &key,
            None,
        ))
        .await;
    assert_eq!(replayed.status, StatusCode::OK);
    eventually(PATIENCE, "the replayed delivery", || async {
        worker.run_once().await;
        endpoint.count() >= 4
    })
    .await;

    let last = endpoint.received().pop().expect("a delivery");
    assert_eq!(verified(&last, &secret)["event"]["text"], "retry me");
    assert_eq!(
        last.headers.get("hermes-attempt").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let after = app
        .send(api(Method::GET, "/api/deliveries/dead", &key, None))
        .await;
    assert_eq!(after.body["deadLetters"], serde_json::json!([]));
    let again = app
        .send(api(
            Method::POST,
            &format!("/api/deliveries/dead/{id}/replay"),
            &key,
            None,
        ))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let metrics = app.metrics();
    assert!(
        metrics.contains(r#"hermes_deliveries_total{outcome="retried"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"hermes_deliveries_total{outcome="dead_lettered"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"hermes_deliveries_total{outcome="succeeded"} 1"#),
        "{metrics}"
    );
    app.store().purge_customer(&acme).await.expect("purge works");
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_then_dead_lettered_and_a_replay_delivers_it() {
    failing_endpoint_is_dead_lettered_and_replayed(Arc::new(EmbeddedStore::new())).await;
}

#[tokio::test]
async fn on_redis_a_failing_endpoint_is_retried_then_dead_lettered_and_a_replay_delivers_it() {
    let Some(store) = shared_redis().await else { return };
    failing_endpoint_is_dead_lettered_and_replayed(store).await;
}

#[tokio::test]
async fn an_endpoint_refusing_with_a_4xx_is_dead_lettered_at_once() {
    let endpoint = Endpoint::start(Behaviour::Answer(StatusCode::GONE)).await;
    let (app, key, acme, number, _secret) = delivering_app(Arc::new(EmbeddedStore::new()), &endpoint).await;
    let body = whatsapp_body(&[(&number, text_message(&wamid(), "gone"))]);
    app.send(signed("/webhook/whatsapp", body, APP_SECRET)).await;
    let worker = Worker::new(app.state.clone(), "w-1").expect("a worker");

    let attempted = worker.run_once().await;

    assert_eq!(attempted, 1);
    assert_eq!(endpoint.count(), 1);
    let dead = app
        .send(api(Method::GET, "/api/deliveries/dead", &key, None))
        .await;
    assert_eq!(dead.body["deadLetters"][0]["error"], "http 410");
    assert_eq!(dead.body["deadLetters"][0]["attempts"], 1);
    assert_eq!(app.inbox(&acme).await.len(), 1, "the event stays in the inbox");
}

#[tokio::test]
async fn a_customer_without_a_delivery_target_keeps_its_events_in_the_inbox_only() {
    let endpoint = Endpoint::start(Behaviour::Answer(StatusCode::OK)).await;
    let app = Harness::over(Arc::new(EmbeddedStore::new()), quick_delivery()).await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let body = whatsapp_body(&[(&number, text_message(&wamid(), "stay"))]);
    app.send(signed("/webhook/whatsapp", body, APP_SECRET)).await;
    let worker = Worker::new(app.state.clone(), "w-1").expect("a worker");

    let attempted = worker.run_once().await;

    assert_eq!(attempted, 0);
    assert_eq!(endpoint.count(), 0);
    assert_eq!(app.inbox(&acme).await.len(), 1);
}

#[tokio::test]
async fn dead_letter_routes_refuse_bad_ids_and_show_only_the_callers_letters() {
    let endpoint = Endpoint::start(Behaviour::Answer(StatusCode::GONE)).await;
    let (app, key, _acme, number, _secret) = delivering_app(Arc::new(EmbeddedStore::new()), &endpoint).await;
    let other = customer_id();
    let other_key = app.customer(&other, None).await;
    app.send(signed(
        "/webhook/whatsapp",
        whatsapp_body(&[(&number, text_message(&wamid(), "x"))]),
        APP_SECRET,
    ))
    .await;
    Worker::new(app.state.clone(), "w-1")
        .expect("a worker")
        .run_once()
        .await;
    let mine = app
        .send(api(Method::GET, "/api/deliveries/dead", &key, None))
        .await;
    let id = mine.body["deadLetters"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();

    let theirs = app
        .send(api(Method::GET, "/api/deliveries/dead", &other_key, None))
        .await;
    let their_replay = app
        .send(api(
            Method::POST,
            &format!("/api/deliveries/dead/{id}/replay"),
            &other_key,
            None,
        ))
        .await;
    let malformed = app
        .send(api(
            Method::POST,
            "/api/deliveries/dead/yesterday/replay",
            &key,
            None,
        ))
        .await;
    let bad_limit = app
        .send(api(Method::GET, "/api/deliveries/dead?limit=0", &key, None))
        .await;

    assert_eq!(theirs.body["deadLetters"], serde_json::json!([]));
    assert_eq!(their_replay.status, StatusCode::NOT_FOUND);
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
}
