//! Two server instances over one Redis share the rate limit and the quota,
//! as replicas behind a Service do.
//!
//! Runs against `REDIS_URL` when it is set; skipped otherwise, unless
//! `HERMES_REQUIRE_SERVICES=1`, which turns the skip into a failure. Each
//! run uses a fresh customer id, so runs never see each other's counters.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{Limits, TestApp, customer_resource, get, send, send_whatsapp, unique_customer};
use hermes_crds::Plan;
use hermes_state::sql::SqlRepo;
use hermes_state::store::{RedisStore, Store};
use hermes_state::{ApiKeyHash, tenancy};

/// Two apps over the Redis of `REDIS_URL`, or `None` to skip.
async fn two_instances() -> Option<(TestApp, TestApp)> {
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()) else {
        assert!(
            std::env::var("HERMES_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "HERMES_REQUIRE_SERVICES=1 but REDIS_URL is not set"
        );
        return None;
    };
    let mut apps = Vec::new();
    for _ in 0..2 {
        let store: Arc<dyn Store> = Arc::new(RedisStore::connect_single(&url).await.expect("redis answers"));
        let sql = SqlRepo::connect("sqlite::memory:").await.expect("sqlite opens");
        apps.push(TestApp::over(store, sql).await);
    }
    let second = apps.pop()?;
    let first = apps.pop()?;
    Some((first, second))
}

/// Registers the customer in the shared index and gives it a sandbox WhatsApp connection.
async fn shared_customer(a: &TestApp, b: &TestApp, limits: Limits) -> (String, String) {
    let id = unique_customer("shared");
    let customer = customer_resource(id.as_str(), Plan::Free, limits, false);
    let summary = tenancy::customer_summary(&customer).expect("valid customer");
    let key = tenancy::generate_api_key().to_string();
    tenancy::apply_customer(a.state.store.as_ref(), &summary, &ApiKeyHash::of(&key))
        .await
        .expect("customer applies");
    a.admin.add_customer(id.clone(), customer.clone());
    b.admin.add_customer(id.clone(), customer);
    (id.to_string(), key)
}

#[tokio::test]
async fn the_rate_limit_holds_across_two_instances() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let limits = Limits {
        requests_per_minute: Some(3),
        ..Limits::default()
    };
    let (_id, key) = shared_customer(&a, &b, limits).await;

    let on_a = send(&a.router(), get("/api/usage", &key)).await;
    let on_b = send(&b.router(), get("/api/usage", &key)).await;

    assert_eq!(on_a.status, StatusCode::OK, "{}", on_a.text);
    assert_eq!(on_b.status, StatusCode::TOO_MANY_REQUESTS, "{}", on_b.text);
}

#[tokio::test]
async fn the_monthly_quota_holds_across_two_instances() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let limits = Limits {
        tool_calls_per_month: Some(1),
        ..Limits::default()
    };
    let (id, key) = shared_customer(&a, &b, limits).await;
    // Routes are global keys: a phone number id of this run only.
    let phone_number_id: String = std::iter::once('1')
        .chain(id.chars().filter(char::is_ascii_digit))
        .take(15)
        .collect();
    a.connect_sandbox_whatsapp(&id, &phone_number_id).await;

    let on_a = send_whatsapp(&a.router(), &key).await;
    let on_b = send_whatsapp(&b.router(), &key).await;

    assert_eq!(on_a.status, StatusCode::OK, "{}", on_a.text);
    assert_eq!(on_b.status, StatusCode::TOO_MANY_REQUESTS, "{}", on_b.text);
    assert_eq!(on_b.body["error"]["code"], "quota_exceeded");

    let customer = hermes_state::CustomerId::new(id).expect("valid id");
    let route = hermes_state::store::Route {
        platform: hermes_crds::Platform::Whatsapp,
        id: phone_number_id,
    };
    tenancy::remove_customer(
        a.state.store.as_ref(),
        &customer,
        Some(&ApiKeyHash::of(&key)),
        &[route],
    )
    .await
    .expect("the run's keys are removed");
}
