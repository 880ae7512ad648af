//! The ceiling: `hermes-bench ceiling --listen ADDR`.
//!
//! A separate process on the same tokio multi-thread runtime and the same
//! axum as `hermes-server`, whose `POST /mcp` reads the request body and
//! answers a fixed tool result of the size and shape Hermes answers. What
//! it reaches is what this machine, the HTTP stack and the load generator
//! allow at most; the full path is reported as a share of it.

use std::net::SocketAddr;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;

/// The answer to every `POST /mcp`: a `whatsapp_send_message` result as
/// Hermes words it, so both targets move as many bytes.
pub const ANSWER: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"#,
    r#""{\"messageId\":\"wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI0RkE2QTlBRUFCMEI3QkUzQzEA\",\"to\":\"15551234567\"}"}],"#,
    r#""structuredContent":{"messageId":"wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI0RkE2QTlBRUFCMEI3QkUzQzEA","#,
    r#""to":"15551234567"},"isError":false}}"#
);

/// Serves the ceiling on `listen` until SIGTERM or ctrl-c.
///
/// # Errors
///
/// When the address cannot be bound or serving fails.
pub async fn serve(listen: SocketAddr) -> Result<()> {
    let router = Router::new()
        .route("/mcp", post(tool_result))
        .route("/healthz", get(|| async { "ok" }));
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding --listen {listen}"))?;
    axum::serve(listener, router)
        .with_graceful_shutdown(stopped())
        .await
        .context("serving the ceiling")
}

/// Reads the body, as any handler of a JSON request must, and answers [`ANSWER`].
async fn tool_result(_body: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], ANSWER)
}

/// Resolves on SIGTERM or ctrl-c.
async fn stopped() {
    let ctrl_c = async {
        // Without a ctrl-c handler, SIGTERM still stops the ceiling.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_json() {
        let answer: serde_json::Value = serde_json::from_str(ANSWER).expect("the answer is JSON");
        assert_eq!(answer["result"]["isError"], false);
    }
}
