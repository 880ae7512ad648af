//! The MCP service over `oneshot`, behind a stand-in for the authentication
//! middleware that takes the tenant from an `x-test-tenant` header.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use hermes_state::store::{AuditQuery, StreamKind};
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::app::AppState;
use crate::tools::fixture::{self, WhatsappConnection};

const MODERN: &str = "2026-07-28";

/// Inserts the tenant named by `x-test-tenant`, with the quota of `x-test-quota` if any.
async fn test_auth(mut request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    if let Some(id) = headers.get("x-test-tenant").and_then(|v| v.to_str().ok()) {
        let mut tenant = fixture::tenant(id);
        tenant.tool_calls_per_month = headers
            .get("x-test-quota")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        request.extensions_mut().insert(tenant);
    }
    next.run(request).await
}

fn router(app: &AppState) -> Router {
    super::router(app.clone()).layer(middleware::from_fn(test_auth))
}

/// An app where `acme` has a sandbox WhatsApp connection and `beta` has none.
async fn two_tenants() -> AppState {
    let app = fixture::app().await;
    fixture::connect_whatsapp(
        &app,
        WhatsappConnection {
            customer: "acme",
            phone_number_id: "2001",
            access_token: None,
            sandbox: true,
            api_base: None,
        },
    )
    .await;
    app
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// A request to `/mcp` with the headers every client sends, plus `extra`.
fn request(method: &str, tenant: Option<&str>, extra: &[(&str, &str)], body: &Value) -> Request {
    let mut builder = Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(tenant) = tenant {
        builder = builder.header("x-test-tenant", tenant);
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(body.to_string()))
        .expect("test requests are valid")
}

async fn send(app: &AppState, request: Request) -> Answer {
    let response = router(app)
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body is readable")
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer {
        status,
        headers,
        body,
    }
}

async fn post(app: &AppState, tenant: &str, extra: &[(&str, &str)], body: Value) -> Answer {
    send(app, request("POST", Some(tenant), extra, &body)).await
}

fn initialize(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "test-client", "version": "1.0.0"},
        },
    })
}

fn legacy(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params})
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test-client", "version": "1.0.0"},
    })
}

fn legacy_headers(version: &'static str) -> [(&'static str, &'static str); 1] {
    [("mcp-protocol-version", version)]
}

async fn call_tool_legacy(app: &AppState, tenant: &str, name: &str, arguments: Value) -> Answer {
    post(
        app,
        tenant,
        &legacy_headers("2025-11-25"),
        legacy("tools/call", json!({"name": name, "arguments": arguments})),
    )
    .await
}

fn tool_names(answer: &Answer) -> Vec<String> {
    answer.body["result"]["tools"]
        .as_array()
        .expect("tools/list answers a list")
        .iter()
        .map(|tool| tool["name"].as_str().expect("tools have names").to_owned())
        .collect()
}

#[tokio::test]
async fn legacy_initialize_is_answered_in_json_without_a_session_id() {
    let app = two_tenants().await;

    for version in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        let answer = post(&app, "acme", &[], initialize(version)).await;

        assert_eq!(answer.status, StatusCode::OK, "{version}: {}", answer.body);
        assert!(answer.headers.get("mcp-session-id").is_none(), "{version}");
        assert_eq!(answer.headers["content-type"], "application/json");
        let result = &answer.body["result"];
        assert_eq!(result["protocolVersion"], version);
        assert_eq!(result["serverInfo"]["name"], "hermes");
        assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(result["capabilities"]["tools"].is_object());
        assert!(
            result["instructions"]
                .as_str()
                .is_some_and(|text| text.contains("connections_status"))
        );
    }
}

#[tokio::test]
async fn initialize_with_the_unserved_2024_revision_falls_back_to_the_newest_legacy_one() {
    let app = two_tenants().await;

    let answer = post(&app, "acme", &[], initialize("2024-11-05")).await;

    assert_eq!(answer.body["result"]["protocolVersion"], "2025-11-25");
}

#[tokio::test]
async fn tools_list_shows_the_tools_of_ready_connections_and_the_tenant_wide_ones() {
    let app = two_tenants().await;

    let acme = post(
        &app,
        "acme",
        &legacy_headers("2025-11-25"),
        legacy("tools/list", json!({})),
    )
    .await;
    let beta = post(
        &app,
        "beta",
        &legacy_headers("2025-11-25"),
        legacy("tools/list", json!({})),
    )
    .await;

    let acme_names = tool_names(&acme);
    assert!(acme_names.iter().any(|name| name == "whatsapp_send_message"));
    assert!(
        acme_names.iter().all(|name| name.starts_with("whatsapp_")
            || name == "connections_status"
            || name == "inbox_list")
    );
    assert_eq!(tool_names(&beta), ["connections_status", "inbox_list"]);
    let tools = acme.body["result"]["tools"].as_array().expect("a list");
    let by_name = |name: &str| {
        tools
            .iter()
            .find(|tool| tool["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"))
    };
    let send = by_name("whatsapp_send_message");
    assert_eq!(send["inputSchema"]["type"], "object");
    assert_eq!(send["outputSchema"]["type"], "object");
    assert_eq!(send["annotations"]["readOnlyHint"], false);
    assert_eq!(send["annotations"]["openWorldHint"], true);
    assert_eq!(by_name("connections_status")["annotations"]["readOnlyHint"], true);
}

#[tokio::test]
async fn a_modern_tools_list_is_private_and_never_fresh() {
    let app = two_tenants().await;
    let headers = [("mcp-protocol-version", MODERN), ("mcp-method", "tools/list")];

    let answer = post(
        &app,
        "acme",
        &headers,
        legacy("tools/list", json!({"_meta": modern_meta()})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["result"]["cacheScope"], "private");
    assert_eq!(answer.body["result"]["ttlMs"], 0);
    assert_eq!(answer.body["result"]["resultType"], "complete");
}

#[tokio::test]
async fn a_modern_tool_call_with_metadata_and_headers_completes() {
    let app = two_tenants().await;
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "connections_status"),
    ];
    let params = json!({"name": "connections_status", "arguments": {}, "_meta": modern_meta()});

    let answer = post(&app, "acme", &headers, legacy("tools/call", params)).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let result = &answer.body["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["isError"], false);
    assert_eq!(
        result["structuredContent"]["connections"][1]["platform"],
        "whatsapp"
    );
    assert_eq!(result["structuredContent"]["connections"][1]["ready"], true);
    let text = result["content"][0]["text"].as_str().expect("a text block");
    assert_eq!(
        serde_json::from_str::<Value>(text).expect("the text is the JSON"),
        result["structuredContent"]
    );
}

#[tokio::test]
async fn a_modern_call_whose_name_header_contradicts_its_body_is_a_header_mismatch() {
    let app = two_tenants().await;
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "whatsapp_send_message"),
    ];
    let params = json!({"name": "connections_status", "arguments": {}, "_meta": modern_meta()});

    let answer = post(&app, "acme", &headers, legacy("tools/call", params)).await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["error"]["code"], -32020, "{}", answer.body);
}

#[tokio::test]
async fn a_legacy_tool_call_sends_the_message_to_the_sandbox_outbox() {
    let app = two_tenants().await;

    let answer = call_tool_legacy(
        &app,
        "acme",
        "whatsapp_send_message",
        json!({"to": "15551234567", "message": "hi"}),
    )
    .await;

    let result = &answer.body["result"];
    assert_eq!(result["isError"], false, "{}", answer.body);
    assert!(
        result.get("resultType").is_none(),
        "legacy results carry no resultType"
    );
    assert_eq!(result["structuredContent"]["sandbox"], true);
    let outbox = app
        .store
        .read_events(StreamKind::Outbox, &fixture::tenant("acme").id, None, 10)
        .await
        .expect("the outbox reads");
    assert_eq!(outbox.len(), 1);
}

#[tokio::test]
async fn server_discover_lists_the_served_versions() {
    let app = two_tenants().await;
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "server/discover"),
    ];

    let answer = post(
        &app,
        "acme",
        &headers,
        legacy("server/discover", json!({"_meta": modern_meta()})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let result = &answer.body["result"];
    assert_eq!(
        result["supportedVersions"],
        json!(["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"])
    );
    assert_eq!(result["resultType"], "complete");
    assert!(result["capabilities"]["tools"].is_object());
}

#[tokio::test]
async fn a_request_in_an_unserved_version_is_refused_with_32022() {
    let app = two_tenants().await;
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2024-11-05");
    let headers = [
        ("mcp-protocol-version", "2024-11-05"),
        ("mcp-method", "tools/list"),
    ];

    let answer = post(
        &app,
        "acme",
        &headers,
        legacy("tools/list", json!({"_meta": meta})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], -32022);
    assert_eq!(answer.body["error"]["data"]["requested"], "2024-11-05");
    assert!(
        !answer.body["error"]["data"]["supported"]
            .as_array()
            .expect("the supported versions are listed")
            .contains(&json!("2024-11-05"))
    );
}

#[tokio::test]
async fn a_batch_is_rejected() {
    let app = two_tenants().await;
    let batch = json!([legacy("tools/list", json!({})), legacy("tools/list", json!({}))]);

    let answer = post(&app, "acme", &[], batch).await;

    assert!(answer.status.is_client_error(), "{}", answer.status);
}

#[tokio::test]
async fn get_and_delete_are_not_allowed() {
    let app = two_tenants().await;

    for method in ["GET", "DELETE"] {
        let answer = send(&app, request(method, Some("acme"), &[], &Value::Null)).await;

        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.headers["allow"], "POST");
    }
}

#[tokio::test]
async fn a_foreign_host_is_forbidden() {
    let app = two_tenants().await;
    let mut request = request("POST", Some("acme"), &[], &initialize("2025-11-25"));
    request
        .headers_mut()
        .insert("host", "attacker.example".parse().expect("a valid header value"));

    let answer = send(&app, request).await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_foreign_origin_is_forbidden_and_an_allowed_one_is_served() {
    let app = two_tenants().await;

    let foreign = post(
        &app,
        "acme",
        &[("origin", "https://attacker.example")],
        initialize("2025-11-25"),
    )
    .await;
    let allowed = post(
        &app,
        "acme",
        &[("origin", "https://app.example")],
        initialize("2025-11-25"),
    )
    .await;

    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(allowed.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_tool_is_invalid_params() {
    let app = two_tenants().await;

    let answer = call_tool_legacy(&app, "acme", "does_not_exist", json!({})).await;

    assert_eq!(answer.body["error"]["code"], -32602, "{}", answer.body);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does_not_exist"))
    );
}

#[tokio::test]
async fn bad_arguments_are_a_tool_error_naming_the_field() {
    let app = two_tenants().await;

    let answer = call_tool_legacy(
        &app,
        "acme",
        "whatsapp_send_message",
        json!({"to": "not a number", "message": "hi"}),
    )
    .await;

    let result = &answer.body["result"];
    assert_eq!(result["isError"], true, "{}", answer.body);
    assert_eq!(result["structuredContent"]["error"]["field"], "to");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("`to`"))
    );
}

#[tokio::test]
async fn a_tenant_can_neither_see_nor_use_another_tenants_connection() {
    let app = two_tenants().await;

    let list = post(
        &app,
        "beta",
        &legacy_headers("2025-11-25"),
        legacy("tools/list", json!({})),
    )
    .await;
    let call = call_tool_legacy(
        &app,
        "beta",
        "whatsapp_send_message",
        json!({"to": "15551234567", "message": "hi"}),
    )
    .await;

    assert!(!tool_names(&list).contains(&"whatsapp_send_message".to_owned()));
    assert_eq!(call.body["error"]["code"], -32602, "{}", call.body);
    for customer in ["acme", "beta"] {
        let outbox = app
            .store
            .read_events(StreamKind::Outbox, &fixture::tenant(customer).id, None, 10)
            .await
            .expect("the outbox reads");
        assert!(outbox.is_empty(), "{customer}'s outbox");
    }
}

#[tokio::test]
async fn an_exhausted_quota_is_an_error_saying_so_with_the_limit() {
    let app = two_tenants().await;
    let quota = [("mcp-protocol-version", "2025-11-25"), ("x-test-quota", "1")];
    let call = legacy(
        "tools/call",
        json!({"name": "connections_status", "arguments": {}}),
    );

    let first = post(&app, "acme", &quota, call.clone()).await;
    let second = post(&app, "acme", &quota, call).await;

    assert_eq!(first.body["result"]["isError"], false, "{}", first.body);
    let error = &second.body["error"];
    assert_eq!(error["code"], super::QUOTA_EXHAUSTED.0);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("monthly tool-call quota exhausted"))
    );
    assert_eq!(error["data"]["limit"], 1);
    assert!(error["data"]["period"].as_str().is_some_and(|p| p.len() == 7));
}

#[tokio::test]
async fn the_request_id_header_is_the_audited_request_id() {
    let app = two_tenants().await;
    let headers = [
        ("mcp-protocol-version", "2025-11-25"),
        ("x-request-id", "req-from-middleware"),
    ];

    post(
        &app,
        "acme",
        &headers,
        legacy(
            "tools/call",
            json!({"name": "connections_status", "arguments": {}}),
        ),
    )
    .await;

    let now = Timestamp::now();
    let query = AuditQuery {
        from: now - SignedDuration::from_hours(1),
        to: now + SignedDuration::from_hours(1),
        limit: 10,
        cursor: None,
    };
    let audit = app
        .store
        .read_audit(&fixture::tenant("acme").id, &query)
        .await
        .expect("the audit log reads");
    assert_eq!(audit.entries.len(), 1);
    assert_eq!(audit.entries[0].request_id, "req-from-middleware");
}

#[tokio::test]
async fn a_request_that_skipped_authentication_is_an_internal_error() {
    let app = two_tenants().await;

    let answer = send(
        &app,
        request(
            "POST",
            None,
            &legacy_headers("2025-11-25"),
            &legacy("tools/list", json!({})),
        ),
    )
    .await;

    assert_eq!(answer.body["error"]["code"], -32603, "{}", answer.body);
}
