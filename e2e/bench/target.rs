//! What is measured: each [`Target`] names the server process it needs, the
//! request the load generator repeats, and what counts as a success.
//!
//! A new target is a new variant with an arm in each method; the load
//! generator and the report take it as it is. A target whose requests must
//! differ (webhook ingest: each message id unique, each body signed) gives
//! its [`PreparedRequest`] a [`FreshBody`], which builds every body anew.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use clap::ValueEnum;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::process::ServerKind;

/// The MCP protocol revision of the legacy-era call: no handshake needed
/// on a stateless server, and the header is all a client sends.
pub const MCP_PROTOCOL_VERSION: &str = "2025-11-25";

/// The recipient every benchmark message goes to.
pub const RECIPIENT: &str = "15551234567";

/// The tool the full path calls.
const TOOL: &str = "whatsapp_send_message";

/// The header Meta signs webhooks with.
const META_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Where the message id goes in the webhook body template.
const MESSAGE_ID_SLOT: &str = "@@hermes-bench-message-id@@";

/// A benchmark target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// `POST /mcp` `tools/call` of `whatsapp_send_message` on `hermes-server`:
    /// authentication, rate limit, quota, credentials decrypted, the Graph
    /// API called, the call audited.
    Full,
    /// The same request to a no-op axum route answering a fixed tool result:
    /// what the machine, the HTTP stack and the load generator allow at most.
    Ceiling,
    /// The same tool call through REST (`POST /api/tools/whatsapp_send_message`)
    /// on `hermes-server`: the full path without the MCP layer, for profiling.
    Rest,
    /// `POST /webhook/whatsapp` on `hermes-server`: an inbound text message
    /// with a unique id, signed with the deployment's Meta app secret; the
    /// signature verified, the phone number id routed to the customer, the
    /// event deduplicated and appended to its inbox.
    Webhook,
}

/// The seeded WhatsApp connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConnectionMode {
    /// Sends go to the (mock) Graph API.
    Live,
    /// Sends are recorded in the customer's outbox instead.
    Sandbox,
}

/// What targets need to build their request.
#[derive(Debug)]
pub struct TargetContext {
    /// The seeded customer's API key.
    pub api_key: String,
    /// The phone number id of the seeded WhatsApp connection.
    pub phone_number_id: String,
    /// `HERMES_META_APP_SECRET` of the server child.
    pub meta_app_secret: String,
}

/// One request, built once and sent by every worker.
#[derive(Debug)]
pub struct PreparedRequest {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: reqwest::Url,
    /// Every header.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// When set, each request's body is built anew instead of `body`.
    pub fresh: Option<FreshBody>,
}

impl PreparedRequest {
    /// The headers and body of the next request.
    pub fn next(&self) -> (HeaderMap, Bytes) {
        let mut headers = self.headers.clone();
        let Some(fresh) = &self.fresh else {
            return (headers, self.body.clone());
        };
        let (body, signature) = fresh.next();
        headers.insert(META_SIGNATURE_HEADER, signature);
        (headers, body)
    }
}

/// A webhook body with a unique message id per request, and its signature.
#[derive(Debug)]
pub struct FreshBody {
    /// The body up to the message id.
    head: String,
    /// The body after it.
    tail: String,
    /// Random per run, so runs against one Redis never share an id.
    run: String,
    /// Bodies built so far.
    counter: AtomicU64,
    /// The Meta app secret the body is signed with.
    secret: Vec<u8>,
}

impl FreshBody {
    /// The next body, and its `X-Hub-Signature-256`.
    fn next(&self) -> (Bytes, HeaderValue) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let body = format!("{}wamid.HBgL{}{n:016x}{}", self.head, self.run, self.tail);
        let signature = meta_signature(&self.secret, body.as_bytes());
        (Bytes::from(body), signature)
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
fn meta_signature(secret: &[u8], body: &[u8]) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let mut text = String::from("sha256=");
    for byte in mac.finalize().into_bytes() {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    HeaderValue::from_str(&text).expect("hex is a valid header value")
}

impl Target {
    /// The name the table shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Full => "full",
            Target::Ceiling => "ceiling",
            Target::Rest => "rest",
            Target::Webhook => "webhook",
        }
    }

    /// The server process this target is measured on.
    pub fn server(self) -> ServerKind {
        match self {
            Target::Full | Target::Rest | Target::Webhook => ServerKind::Hermes,
            Target::Ceiling => ServerKind::Ceiling,
        }
    }

    /// The request to repeat against a server at `base_url`.
    ///
    /// The full path and the ceiling send byte for byte the same request,
    /// so the load generator's own cost is the same for both.
    pub fn request(self, base_url: &str, context: &TargetContext) -> Result<PreparedRequest> {
        match self {
            Target::Full | Target::Ceiling => mcp_tool_call(base_url, &context.api_key),
            Target::Rest => rest_tool_call(base_url, &context.api_key),
            Target::Webhook => whatsapp_webhook(base_url, context),
        }
    }

    /// Whether an answer is a success; the error says why not.
    pub fn check(self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        match self {
            Target::Full | Target::Ceiling => check_tool_result(status, body),
            Target::Rest => check_rest_result(status, body),
            Target::Webhook => check_webhook_answer(status, body),
        }
    }
}

/// The arguments every call sends.
fn arguments() -> Value {
    json!({ "to": RECIPIENT, "message": "Hello from hermes-bench" })
}

/// The headers every call sends; MCP adds its own.
fn common_headers(api_key: &str) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {api_key}")).context("the API key as a header")?;
    headers.insert(header::AUTHORIZATION, bearer);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(headers)
}

/// A legacy-era JSON-RPC `tools/call` of `whatsapp_send_message`.
fn mcp_tool_call(base_url: &str, api_key: &str) -> Result<PreparedRequest> {
    let url = reqwest::Url::parse(&format!("{base_url}/mcp")).context("the server's URL")?;
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": { "name": TOOL, "arguments": arguments() },
    });

    let mut headers = common_headers(api_key)?;
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static(MCP_PROTOCOL_VERSION),
    );

    Ok(PreparedRequest {
        method: Method::POST,
        url,
        headers,
        body: Bytes::from(body.to_string()),
        fresh: None,
    })
}

/// `POST /api/tools/whatsapp_send_message` with the arguments as the body.
fn rest_tool_call(base_url: &str, api_key: &str) -> Result<PreparedRequest> {
    let url = reqwest::Url::parse(&format!("{base_url}/api/tools/{TOOL}")).context("the server's URL")?;
    let mut headers = common_headers(api_key)?;
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    Ok(PreparedRequest {
        method: Method::POST,
        url,
        headers,
        body: Bytes::from(arguments().to_string()),
        fresh: None,
    })
}

/// `POST /webhook/whatsapp` with one inbound text message for the seeded
/// phone number id, as Meta sends it; the message id differs per request.
fn whatsapp_webhook(base_url: &str, context: &TargetContext) -> Result<PreparedRequest> {
    let url = reqwest::Url::parse(&format!("{base_url}/webhook/whatsapp")).context("the server's URL")?;
    let template = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": "15550783881",
                        "phone_number_id": context.phone_number_id,
                    },
                    "contacts": [{ "profile": { "name": "hermes-bench" }, "wa_id": RECIPIENT }],
                    "messages": [{
                        "from": RECIPIENT,
                        "id": MESSAGE_ID_SLOT,
                        "timestamp": "1749416383",
                        "type": "text",
                        "text": { "body": "Hello from hermes-bench" },
                    }],
                },
            }],
        }],
    })
    .to_string();
    let (head, tail) = template
        .split_once(MESSAGE_ID_SLOT)
        .context("the webhook template holds the message id slot")?;

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(PreparedRequest {
        method: Method::POST,
        url,
        headers,
        body: Bytes::new(),
        fresh: Some(FreshBody {
            head: head.to_owned(),
            tail: tail.to_owned(),
            run: format!("{:016x}", rand::random::<u64>()),
            counter: AtomicU64::new(0),
            secret: context.meta_app_secret.as_bytes().to_vec(),
        }),
    })
}

/// 200: the signature verified and the event taken. The server answers 200
/// for an event no customer owns too; the seeded route owns every one sent.
fn check_webhook_answer(status: StatusCode, body: &[u8]) -> Result<(), String> {
    if status == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("HTTP {status}: {}", excerpt(body)))
    }
}

/// A JSON-RPC answer, as far as the check reads it.
#[derive(Deserialize)]
struct JsonRpcAnswer {
    result: Option<ToolCallResult>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolCallResult {
    #[serde(default)]
    is_error: bool,
    #[serde(default)]
    content: Vec<Value>,
}

/// 200 with a tool result that is not `isError`.
fn check_tool_result(status: StatusCode, body: &[u8]) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", excerpt(body)));
    }
    let answer: JsonRpcAnswer =
        serde_json::from_slice(body).map_err(|_| format!("not a JSON-RPC answer: {}", excerpt(body)))?;
    match (answer.result, answer.error) {
        (Some(result), None) if !result.is_error => Ok(()),
        (Some(result), None) => {
            let text = result
                .content
                .first()
                .and_then(|block| block["text"].as_str())
                .unwrap_or_default()
                .to_owned();
            Err(format!("isError: {text}"))
        }
        (_, Some(error)) => Err(format!("JSON-RPC error: {error}")),
        (None, None) => Err(format!("neither result nor error: {}", excerpt(body))),
    }
}

/// A REST tool result, as far as the check reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestToolResult {
    is_error: bool,
    #[serde(default)]
    text: String,
}

/// 200 with a tool result that is not `isError`.
fn check_rest_result(status: StatusCode, body: &[u8]) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", excerpt(body)));
    }
    match serde_json::from_slice::<RestToolResult>(body) {
        Ok(result) if !result.is_error => Ok(()),
        Ok(result) => Err(format!("isError: {}", result.text)),
        Err(_) => Err(format!("not a tool result: {}", excerpt(body))),
    }
}

/// The start of a body, for an error message.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> TargetContext {
        TargetContext {
            api_key: "hk_test".to_owned(),
            phone_number_id: "900000000000042".to_owned(),
            meta_app_secret: "0123abcd".to_owned(),
        }
    }

    #[test]
    fn webhook_bodies_are_signed_as_the_server_verifies_and_each_has_its_own_message_id() {
        use hermes_server::webhook::{payload, signature};

        let context = context();
        let request = Target::Webhook
            .request("http://127.0.0.1:1", &context)
            .expect("builds");
        assert_eq!(request.url.path(), "/webhook/whatsapp");

        let mut dedup_keys = Vec::new();
        for _ in 0..3 {
            let (headers, body) = request.next();
            let header = headers.get(signature::META_SIGNATURE_HEADER);
            let signature = signature::MetaSignature::from_header(header).expect("well formed");
            assert!(signature.verifies(context.meta_app_secret.as_bytes(), &body));
            assert!(!signature.verifies(b"another secret", &body));

            let batch = payload::whatsapp::parse(&body).expect("the server parses it");
            assert_eq!(batch.events.len(), 1);
            assert_eq!(batch.events[0].account, context.phone_number_id);
            dedup_keys.push(batch.events[0].dedup_key.clone());
        }
        dedup_keys.dedup();
        assert_eq!(dedup_keys.len(), 3, "{dedup_keys:?}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        let signature = meta_signature(b"key", b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            signature,
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn the_webhook_succeeds_on_200_only() {
        assert_eq!(Target::Webhook.check(StatusCode::OK, b""), Ok(()));
        assert!(
            Target::Webhook
                .check(StatusCode::UNAUTHORIZED, b"signature_invalid")
                .is_err()
        );
    }

    #[test]
    fn a_tool_result_without_is_error_is_a_success() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}"#;
        assert_eq!(check_tool_result(StatusCode::OK, body), Ok(()));
    }

    #[test]
    fn an_is_error_result_is_an_error_quoting_its_text() {
        let body =
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"no"}],"isError":true}}"#;
        assert_eq!(
            check_tool_result(StatusCode::OK, body),
            Err("isError: no".to_owned())
        );
    }

    #[test]
    fn a_json_rpc_error_and_a_non_200_are_errors() {
        let body = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool"}}"#;
        assert!(check_tool_result(StatusCode::OK, body).is_err());
        assert!(check_tool_result(StatusCode::TOO_MANY_REQUESTS, b"{}").is_err());
    }

    #[test]
    fn the_ceiling_answer_passes_the_check_the_full_path_gets() {
        assert_eq!(
            Target::Ceiling.check(StatusCode::OK, crate::ceiling::ANSWER.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn a_rest_result_is_checked_for_is_error() {
        let ok = br#"{"isError":false,"structured":{},"text":"sent"}"#;
        let failed = br#"{"isError":true,"structured":{},"text":"no"}"#;
        assert_eq!(check_rest_result(StatusCode::OK, ok), Ok(()));
        assert_eq!(
            check_rest_result(StatusCode::OK, failed),
            Err("isError: no".to_owned())
        );
    }

    #[test]
    fn the_full_path_and_the_ceiling_send_the_same_request() {
        let context = context();
        let full = Target::Full
            .request("http://127.0.0.1:1", &context)
            .expect("builds");
        let ceiling = Target::Ceiling
            .request("http://127.0.0.1:1", &context)
            .expect("builds");
        assert_eq!(full.body, ceiling.body);
        assert_eq!(full.headers, ceiling.headers);
        assert_eq!(full.url.path(), "/mcp");
    }
}
