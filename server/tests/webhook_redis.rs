//! Inbound webhooks over Redis: the storage-sensitive scenarios on the
//! shared Redis (`REDIS_URL`) and Redis Cluster (`REDIS_CLUSTER_URLS`), and
//! a Redis of the test's own, stopped under a webhook and restarted.
//!
//! The shared servers are never flushed: every customer, number and
//! message id is random.

mod webhook_support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hermes_state::store::{RedisStore, Store};
use webhook_support::{
    APP_SECRET, Harness, customer_id, eventually, inbound_settings, phone_number_id, shared_cluster,
    shared_redis, signed, text_message, wamid, whatsapp_body,
};

async fn a_payload_delivered_three_times_is_stored_once(store: Arc<dyn Store>) {
    let app = Harness::over(store, inbound_settings()).await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let body = whatsapp_body(&[(&number, text_message(&wamid(), "hello"))]);

    for _ in 0..3 {
        let answer = app
            .send(signed("/webhook/whatsapp", body.clone(), APP_SECRET))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }

    assert_eq!(app.inbox(&acme).await.len(), 1);
    app.store().purge_customer(&acme).await.expect("purge works");
}

async fn one_post_for_two_numbers_lands_in_each_customers_inbox(store: Arc<dyn Store>) {
    let app = Harness::over(store, inbound_settings()).await;
    let (acme, beta) = (customer_id(), customer_id());
    let (acme_number, beta_number) = (phone_number_id(), phone_number_id());
    for (customer, number) in [(&acme, &acme_number), (&beta, &beta_number)] {
        app.customer(customer, None).await;
        app.connect_whatsapp(customer, number, None).await;
    }
    let body = whatsapp_body(&[
        (&acme_number, text_message(&wamid(), "for acme")),
        (&beta_number, text_message(&wamid(), "for beta")),
    ]);

    let answer = app.send(signed("/webhook/whatsapp", body, APP_SECRET)).await;

    assert_eq!(answer.status, StatusCode::OK);
    let acme_inbox = app.inbox(&acme).await;
    let beta_inbox = app.inbox(&beta).await;
    assert_eq!(acme_inbox.len(), 1);
    assert_eq!(acme_inbox[0].event["text"], "for acme");
    assert_eq!(beta_inbox.len(), 1);
    assert_eq!(beta_inbox[0].event["text"], "for beta");
    for customer in [&acme, &beta] {
        app.store().purge_customer(customer).await.expect("purge works");
    }
}

#[tokio::test]
async fn on_redis_a_payload_delivered_three_times_is_stored_once() {
    let Some(store) = shared_redis().await else { return };
    a_payload_delivered_three_times_is_stored_once(store).await;
}

#[tokio::test]
async fn on_a_redis_cluster_a_payload_delivered_three_times_is_stored_once() {
    let Some(store) = shared_cluster().await else {
        return;
    };
    a_payload_delivered_three_times_is_stored_once(store).await;
}

#[tokio::test]
async fn on_redis_one_post_for_two_customers_numbers_lands_in_each_customers_own_inbox() {
    let Some(store) = shared_redis().await else { return };
    one_post_for_two_numbers_lands_in_each_customers_inbox(store).await;
}

#[tokio::test]
async fn on_a_redis_cluster_one_post_for_two_customers_numbers_lands_in_each_customers_own_inbox() {
    let Some(store) = shared_cluster().await else {
        return;
    };
    one_post_for_two_numbers_lands_in_each_customers_inbox(store).await;
}

// --- a Redis of the test's own ---

/// A `redis-server` this test starts on a free port, with an append-only
/// file in a temporary folder so its data survives a restart.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    process: Option<Child>,
}

impl OwnRedis {
    /// Starts one, or `None` (a skip) when `redis-server` is not installed,
    /// unless `HERMES_REQUIRE_SERVICES=1`.
    fn start() -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            assert!(
                std::env::var("HERMES_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "redis-server is not installed and HERMES_REQUIRE_SERVICES=1"
            );
            eprintln!("skipping: redis-server is not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().expect("a temporary folder"),
            process: None,
        };
        redis.launch();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let process = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.process = Some(process);
    }

    /// Waits until it answers PING.
    async fn ready(&self) {
        let url = self.url();
        eventually(Duration::from_secs(10), "the test's redis to answer", || {
            let url = url.clone();
            async move {
                match RedisStore::connect_single(&url).await {
                    Ok(store) => store.ping().await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // Killed, not shut down: what a crash or a lost node looks like.
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn with_its_redis_stopped_the_webhook_answers_5xx_and_after_a_restart_the_redelivery_is_stored() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    redis.ready().await;
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect_single(&redis.url())
            .await
            .expect("the test's redis answers"),
    );
    let app = Harness::over(store.clone(), inbound_settings()).await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let before = whatsapp_body(&[(&number, text_message(&wamid(), "before"))]);
    let during = whatsapp_body(&[(&number, text_message(&wamid(), "during"))]);
    assert_eq!(
        app.send(signed("/webhook/whatsapp", before, APP_SECRET))
            .await
            .status,
        StatusCode::OK
    );

    redis.stop();
    let answer = app
        .send(signed("/webhook/whatsapp", during.clone(), APP_SECRET))
        .await;

    assert!(
        answer.status.is_server_error(),
        "never 200 without storing: {}",
        answer.status
    );
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["error"]["code"], "unavailable");

    redis.launch();
    redis.ready().await;
    eventually(Duration::from_secs(10), "the store to reconnect", || {
        let store = store.clone();
        async move { store.ping().await.is_ok() }
    })
    .await;
    let redelivered = app.send(signed("/webhook/whatsapp", during, APP_SECRET)).await;

    assert_eq!(redelivered.status, StatusCode::OK);
    let texts: Vec<String> = app
        .inbox(&acme)
        .await
        .into_iter()
        .filter_map(|e| e.event["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(texts, ["before", "during"]);
}
