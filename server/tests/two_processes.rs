//! Two `hermes-server serve` processes over one Redis enforce one rate limit
//! and one monthly quota: a customer cannot double its allowance by
//! spreading calls over replicas.
//!
//! Runs against `REDIS_URL` when it is set; skipped otherwise, unless
//! `HERMES_REQUIRE_SERVICES=1`, which turns the skip into a failure. Each
//! run uses a fresh customer id and phone number id on the shared Redis.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Limits, customer_resource, unique_customer, whatsapp_connection};
use hermes_crds::{Plan, Platform};
use hermes_state::store::{RedisStore, Route};
use hermes_state::vault::Keyring;
use hermes_state::{ApiKeyHash, CustomerId, tenancy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The keyring both processes and the test share (a test key, not a secret).
const KEYRING: &str = "t1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// How long a process may take to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("HERMES_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "HERMES_REQUIRE_SERVICES=1 but REDIS_URL is not set"
        );
    }
    url
}

/// A running `hermes-server serve` and its base URL.
struct Server {
    _process: Child,
    _database: tempfile::TempDir,
    base: String,
}

async fn start_server(redis_url: &str, client: &reqwest::Client) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let database = tempfile::tempdir().expect("a temp dir");
    let database_url = format!("sqlite://{}", database.path().join("hermes.db").display());
    let process = Command::new(env!("CARGO_BIN_EXE_hermes-server"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("REDIS_URL", redis_url)
        .env_remove("REDIS_CLUSTER_URLS")
        .env("DATABASE_URL", database_url)
        .env("HERMES_ENCRYPTION_KEYS", KEYRING)
        .env_remove("HERMES_ENCRYPTION_KEYS_FILE")
        .env_remove("HERMES_API_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let base = format!("http://127.0.0.1:{port}");

    // Wait for the health check to answer: the condition, not a fixed delay.
    let healthy = tokio::time::timeout(START_TIMEOUT, async {
        loop {
            if let Ok(answer) = client.get(format!("{base}/healthz")).send().await
                && answer.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(healthy.is_ok(), "{base} did not become healthy in time");

    Server {
        _process: process,
        _database: database,
        base,
    }
}

/// Indexes a fresh customer with `limits` and a sandbox WhatsApp connection,
/// as the operator would; returns its id, API key and route.
async fn seed_customer(store: &RedisStore, limits: Limits) -> (CustomerId, String, Route) {
    let keyring = Keyring::parse(KEYRING).expect("the test keyring parses");
    let id = unique_customer("procs");
    let customer = customer_resource(id.as_str(), Plan::Free, limits, false);
    let summary = tenancy::customer_summary(&customer).expect("valid customer");
    let key = tenancy::generate_api_key().to_string();
    tenancy::apply_customer(store, &summary, &ApiKeyHash::of(&key))
        .await
        .expect("customer applies");

    // Routes are global keys: a phone number id of this run only.
    let phone_number_id: String = std::iter::once('1')
        .chain(id.as_str().chars().filter(char::is_ascii_digit))
        .take(15)
        .collect();
    let connection = whatsapp_connection(id.as_str(), &phone_number_id);
    let plan = tenancy::plan_connection(&customer, &connection, None).expect("sandbox connection plans");
    tenancy::apply_connection(store, &keyring, &plan, &[])
        .await
        .expect("sandbox connection applies");
    let route = Route {
        platform: Platform::Whatsapp,
        id: phone_number_id,
    };
    (id, key, route)
}

async fn send_whatsapp(client: &reqwest::Client, server: &Server, key: &str) -> (StatusCode, Value) {
    let answer = client
        .post(format!("{}/api/tools/whatsapp_send_message", server.base))
        .bearer_auth(key)
        .json(&json!({ "to": "15551234567", "message": "hello" }))
        .send()
        .await
        .expect("the server answers");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn get_usage(client: &reqwest::Client, server: &Server, key: &str) -> reqwest::Response {
    client
        .get(format!("{}/api/usage", server.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("the server answers")
}

#[tokio::test]
async fn rate_limit_and_quota_hold_across_two_server_processes() {
    let Some(url) = redis_url() else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let store = RedisStore::connect_single(&url).await.expect("redis answers");
    let (first, second) = tokio::join!(start_server(&url, &client), start_server(&url, &client));

    // The rate limit: one request allowed at once, the second on the other process refused.
    let limited = Limits {
        requests_per_minute: Some(3),
        ..Limits::default()
    };
    let (limited_id, limited_key, limited_route) = seed_customer(&store, limited).await;
    let on_first = get_usage(&client, &first, &limited_key).await;
    let on_second = get_usage(&client, &second, &limited_key).await;
    assert_eq!(on_first.status(), StatusCode::OK);
    assert_eq!(on_second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        on_second.headers().contains_key("retry-after"),
        "a 429 says when to retry"
    );

    // The quota: one tool call a month, spent on the first process, refused on the second.
    let quota = Limits {
        tool_calls_per_month: Some(1),
        ..Limits::default()
    };
    let (quota_id, quota_key, quota_route) = seed_customer(&store, quota).await;
    let (status, body) = send_whatsapp(&client, &first, &quota_key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["isError"], false, "{body}");
    let (status, body) = send_whatsapp(&client, &second, &quota_key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");

    for (id, key, route) in [
        (limited_id, limited_key, limited_route),
        (quota_id, quota_key, quota_route),
    ] {
        tenancy::remove_customer(&store, &id, Some(&ApiKeyHash::of(&key)), &[route])
            .await
            .expect("the run's keys are removed");
    }
}
