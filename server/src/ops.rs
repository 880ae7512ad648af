//! What an operator of the service watches: liveness, readiness and
//! Prometheus metrics.
//!
//! - `/healthz` answers 200 while the process serves at all.
//! - `/readyz` answers 200 only when both the state store and SQL answer a
//!   ping within [`READINESS_TIMEOUT`], so a load balancer stops sending
//!   traffic to a replica that lost its backends.
//! - `/metrics` renders [`Metrics`] in the OpenMetrics text format.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

/// How long `/readyz` waits for each backend before calling it unavailable.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The route label of requests no route matched; keeps label cardinality bounded.
const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolNameLabels {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanLabels {
    plan: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    platform: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Delivery lag buckets from 50 ms to about 1.9 days, quadrupling.
fn lag_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 4.0, 13))
}

/// Latency buckets from 5 ms to about 41 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    tool_calls: Family<ToolLabels, Counter>,
    tool_duration: Family<ToolNameLabels, Histogram, fn() -> Histogram>,
    rate_limited: Family<PlanLabels, Counter>,
    quota_exceeded: Family<PlanLabels, Counter>,
    usage_flush_failures: Counter,
    webhooks: Family<WebhookLabels, Counter>,
    deliveries: Family<OutcomeLabels, Counter>,
    delivery_lag: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics in their own registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hermes");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let tool_calls = Family::<ToolLabels, Counter>::default();
        let tool_duration =
            Family::<ToolNameLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let rate_limited = Family::<PlanLabels, Counter>::default();
        let quota_exceeded = Family::<PlanLabels, Counter>::default();
        let usage_flush_failures = Counter::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        let delivery_lag = lag_histogram();

        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            http_duration.clone(),
        );
        registry.register(
            "tool_calls",
            "Tool calls, by tool and outcome",
            tool_calls.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Time a tool call took, by tool",
            tool_duration.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Requests refused by the per-minute rate limit, by plan",
            rate_limited.clone(),
        );
        registry.register(
            "quota_exceeded_tool_calls",
            "Tool calls refused because the monthly quota is used up, by plan",
            quota_exceeded.clone(),
        );
        registry.register(
            "usage_flush_failures",
            "Failed attempts to write usage to the SQL ledger (retried)",
            usage_flush_failures.clone(),
        );
        registry.register(
            "webhook_events",
            "Webhook requests and their events, by platform and outcome (received, rejected, failed, \
             stored, duplicate, unroutable, refused, skipped)",
            webhooks.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts to customer endpoints, by outcome (succeeded, retried, dead_lettered)",
            deliveries.clone(),
        );
        registry.register(
            "delivery_lag_seconds",
            "Time from a webhook's arrival to its successful delivery to the customer's endpoint",
            delivery_lag.clone(),
        );

        Self {
            registry,
            http_requests,
            http_duration,
            tool_calls,
            tool_duration,
            rate_limited,
            quota_exceeded,
            usage_flush_failures,
            webhooks,
            deliveries,
            delivery_lag,
        }
    }

    /// Records one answered HTTP request.
    pub fn observe_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Records one tool call; `outcome` is e.g. `ok`, `error`, `denied`.
    pub fn observe_tool_call(&self, tool: &str, outcome: &str, seconds: f64) {
        self.tool_calls
            .get_or_create(&ToolLabels {
                tool: tool.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.tool_duration
            .get_or_create(&ToolNameLabels {
                tool: tool.to_owned(),
            })
            .observe(seconds);
    }

    /// Records a request refused by the rate limit.
    pub fn observe_rate_limited(&self, plan: &str) {
        self.rate_limited
            .get_or_create(&PlanLabels {
                plan: plan.to_owned(),
            })
            .inc();
    }

    /// Records a tool call refused by the monthly quota.
    pub fn observe_quota_exceeded(&self, plan: &str) {
        self.quota_exceeded
            .get_or_create(&PlanLabels {
                plan: plan.to_owned(),
            })
            .inc();
    }

    /// Records a failed flush of usage to the SQL ledger.
    pub fn observe_usage_flush_failure(&self) {
        self.usage_flush_failures.inc();
    }

    /// Records `count` webhook requests or events of `platform` with `outcome`:
    /// `received`, `rejected` (4xx) and `failed` (5xx) count requests;
    /// `stored`, `duplicate`, `unroutable`, `refused` and `skipped` count events.
    pub fn observe_webhook(&self, platform: &str, outcome: &str, count: u64) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                platform: platform.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc_by(count);
    }

    /// Records one delivery attempt's outcome: `succeeded`, `retried` or `dead_lettered`.
    pub fn observe_delivery(&self, outcome: &str) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records the time from a webhook's arrival to its delivery.
    pub fn observe_delivery_lag(&self, seconds: f64) {
        self.delivery_lag.observe(seconds);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a `String` cannot fail; an error here would be a bug in the encoder.
        if let Err(e) = encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        text
    }
}

/// Middleware counting every answered request by matched route and status.
pub async fn track_http(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();

    let response = next.run(request).await;

    app.metrics.observe_http(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /healthz`: the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// The answer of `/readyz`: each backend's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub store: &'static str,
    /// `ok` or `unavailable`.
    pub sql: &'static str,
}

/// `GET /readyz`: 200 when the state store and SQL both answer, 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Both backends answer", body = Readiness),
        (status = 503, description = "A backend does not answer", body = Readiness),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let (store, sql) = tokio::join!(
        tokio::time::timeout(READINESS_TIMEOUT, app.store.ping()),
        tokio::time::timeout(READINESS_TIMEOUT, app.sql.ping()),
    );
    let store_ok = matches!(store, Ok(Ok(())));
    let sql_ok = matches!(sql, Ok(Ok(())));
    if !store_ok {
        tracing::debug!("readiness: state store does not answer");
    }
    if !sql_ok {
        tracing::debug!("readiness: sql does not answer");
    }

    let label = |ok: bool| if ok { "ok" } else { "unavailable" };
    let status = if store_ok && sql_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        store: label(store_ok),
        sql: label(sql_ok),
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus scrape endpoint.
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_name_tools_and_routes() {
        let metrics = Metrics::new();
        metrics.observe_tool_call("whatsapp_send_message", "ok", 0.01);
        metrics.observe_http("/api/tools", "GET", 200, 0.002);
        metrics.observe_rate_limited("free");

        let text = metrics.render();

        assert!(text.contains(r#"hermes_tool_calls_total{tool="whatsapp_send_message",outcome="ok"} 1"#));
        assert!(
            text.contains(r#"hermes_http_requests_total{route="/api/tools",method="GET",status="200"} 1"#)
        );
        assert!(text.contains(r#"hermes_rate_limited_requests_total{plan="free"} 1"#));
    }
}
