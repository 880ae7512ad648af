//! A platform API stand-in for tests: an axum server on 127.0.0.1:0 that
//! records every request and answers with one canned reply, or with a
//! script of replies, one per request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// What the mock answers every request with.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with a status and extra headers.
    Json(StatusCode, Value, Vec<(&'static str, &'static str)>),
    /// A raw body (for malformed answers).
    Raw(StatusCode, &'static str),
    /// A body of bytes that need not be UTF-8 (a binary file).
    Bytes(StatusCode, &'static [u8]),
    /// No answer, ever (for timeouts).
    Hang,
}

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string, without the `?`, when there is one.
    pub query: Option<String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as text (lossy UTF-8), for bodies that are not JSON.
    pub text: String,
}

#[derive(Clone)]
struct MockState {
    /// The replies still to give; the last one answers every later request.
    replies: Arc<Mutex<VecDeque<Reply>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl MockState {
    fn next_reply(&self) -> Reply {
        let mut replies = self.replies.lock().unwrap_or_else(PoisonError::into_inner);
        if replies.len() > 1 {
            replies.pop_front().expect("more than one reply is left")
        } else {
            replies
                .front()
                .cloned()
                .expect("a mock starts with at least one reply")
        }
    }
}

/// A running mock; stops when dropped.
#[derive(Debug)]
pub struct MockApi {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl MockApi {
    /// Starts a mock answering every request with `reply`.
    pub async fn start(reply: Reply) -> Self {
        Self::start_script(vec![reply]).await
    }

    /// Starts a mock answering the n-th request with `replies[n]`, and every
    /// request after the last reply with the last reply again.
    pub async fn start_script(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty(), "a mock script needs at least one reply");
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = MockState {
            replies: Arc::new(Mutex::new(replies.into())),
            received: Arc::clone(&received),
        };
        let app = axum::Router::new().fallback(answer).with_state(state);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port is free");
        let address = listener.local_addr().expect("a bound listener has an address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the mock API serves");
        });

        Self {
            base_url: format!("http://{address}"),
            received,
            server,
        }
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(state): State<MockState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the test client sends a readable body");
    state
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&body).into_owned(),
        });

    match state.next_reply() {
        Reply::Json(status, body, headers) => {
            let mut response = (status, axum::Json(body)).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("test header values are valid"));
            }
            response
        }
        Reply::Raw(status, body) => (status, body).into_response(),
        Reply::Bytes(status, body) => (status, body).into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

/// A plain HTTP client, as the server builds it (rustls over ring).
pub fn client() -> reqwest::Client {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .expect("a default client builds")
}
