//! The Graph API stand-in the full path sends to.
//!
//! It answers `POST /{version}/{phone-number-id}/messages` with the
//! documented success body, and only counts what it receives: unlike the
//! e2e tests' mock, which keeps every request, it holds no per-request
//! memory and takes no lock, so it costs the shared cores as little as a
//! mock can. It runs in the benchmark's process, on its runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The success answer of a send (`MessageResponsePayload`) to the
/// benchmark's one recipient, [`crate::target::RECIPIENT`].
const SENT: &str = concat!(
    r#"{"messaging_product":"whatsapp","contacts":[{"input":"15551234567","wa_id":"15551234567"}],"#,
    r#""messages":[{"id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI0RkE2QTlBRUFCMEI3QkUzQzEA","message_status":"accepted"}]}"#
);

/// The mock, serving on a loopback port until dropped.
#[derive(Debug)]
pub struct MockGraph {
    /// `http://127.0.0.1:<port>`: `HERMES_WHATSAPP_API_BASE` of the server.
    pub base_url: String,
    sends: Arc<AtomicU64>,
    server: JoinHandle<()>,
}

impl MockGraph {
    /// Starts the mock.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> Result<Self> {
        let sends = Arc::new(AtomicU64::new(0));
        let router = axum::Router::new()
            .route("/{version}/{phone_number_id}/messages", post(send_message))
            .with_state(Arc::clone(&sends));

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the mock Graph API")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            // Serving ends only with the process; an error here shows up as
            // failed sends in the full path's error count.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            base_url,
            sends,
            server,
        })
    }

    /// How many sends the mock has answered.
    pub fn sends(&self) -> u64 {
        self.sends.load(Ordering::Relaxed)
    }
}

impl Drop for MockGraph {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn send_message(State(sends): State<Arc<AtomicU64>>, _body: Bytes) -> impl IntoResponse {
    sends.fetch_add(1, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "application/json")], SENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_the_documented_success_body() {
        let sent: serde_json::Value = serde_json::from_str(SENT).expect("the answer is JSON");
        assert_eq!(sent["messaging_product"], "whatsapp");
        assert_eq!(sent["contacts"][0]["wa_id"], crate::target::RECIPIENT);
        assert!(
            sent["messages"][0]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("wamid."))
        );
    }
}
