//! `/healthz`, `/readyz` and `/metrics`, on `HERMES_METRICS_LISTEN`.
//!
//! - `/healthz` answers 200 while the process serves HTTP at all.
//! - `/readyz` answers 200 when the state store answers a ping, 503 otherwise;
//!   standby replicas are ready too, so a rollout is not held up by the Lease.
//! - `/metrics` is the Prometheus text format of [`Metrics`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hermes_state::store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::metrics::Metrics;

/// How long `/readyz` waits for the store's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoints read.
#[derive(Clone, Debug)]
pub struct Probes {
    /// The metrics `/metrics` renders.
    pub metrics: Arc<Metrics>,
    /// The store `/readyz` pings.
    pub store: Arc<dyn Store>,
}

/// The router of the three endpoints.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
///
/// # Errors
///
/// The listener's I/O error.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(probes): State<Probes>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(PING_TIMEOUT, probes.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n"),
        Ok(Err(error)) => {
            debug!(%error, "readiness: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "state store unavailable\n")
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "state store did not answer in time\n",
        ),
    }
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    match probes.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "cannot render metrics\n".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use hermes_state::store::EmbeddedStore;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        router(Probes {
            metrics: Arc::new(Metrics::default()),
            store: Arc::new(EmbeddedStore::new()),
        })
    }

    async fn get_path(path: &str) -> (StatusCode, String) {
        let request = Request::get(path)
            .body(Body::empty())
            .expect("a GET request builds");
        let response = app().oneshot(request).await.expect("the router is infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body is in memory")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn healthz_and_readyz_answer_ok_with_a_reachable_store() {
        assert_eq!(get_path("/healthz").await.0, StatusCode::OK);
        assert_eq!(get_path("/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_prometheus_text_format() {
        let (status, body) = get_path("/metrics").await;

        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("hermes_operator_leader"), "{body}");
    }
}
