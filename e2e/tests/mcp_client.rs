//! An MCP client sends a WhatsApp message through Hermes, in both protocol
//! eras, and the Graph API receives exactly the documented request with the
//! calling customer's own token.

use anyhow::{Context, Result, ensure};
use hermes_e2e::{GRAPH_API_VERSION, GraphRequest, Hermes, MockGraph};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

const ACME_KEY: &str = "hk_acme-e2e-api-key";
const ACME_TOKEN: &str = "EAAG-acme-e2e-access-token";
const ACME_PHONE_NUMBER_ID: &str = "106540352242922";

const BETA_KEY: &str = "hk_beta-e2e-api-key";
const BETA_TOKEN: &str = "EAAG-beta-e2e-access-token";
const BETA_PHONE_NUMBER_ID: &str = "106540352240000";

const RECIPIENT: &str = "15551234567";

/// A server where acme and beta each have a live WhatsApp connection to the mock.
async fn two_customers(graph: &MockGraph) -> Result<Hermes> {
    let hermes = Hermes::start().await?;
    let acme = hermes.add_customer("acme", ACME_KEY).await?;
    hermes
        .connect_whatsapp(&acme, ACME_PHONE_NUMBER_ID, ACME_TOKEN, &graph.base_url)
        .await?;
    let beta = hermes.add_customer("beta", BETA_KEY).await?;
    hermes
        .connect_whatsapp(&beta, BETA_PHONE_NUMBER_ID, BETA_TOKEN, &graph.base_url)
        .await?;
    Ok(hermes)
}

/// Checks one received send against platforms.md 1.2, for acme's number and token.
fn assert_documented_send(request: &GraphRequest, text: &str) {
    assert_eq!(request.version, GRAPH_API_VERSION);
    assert_eq!(request.phone_number_id, ACME_PHONE_NUMBER_ID);
    assert_eq!(request.headers["authorization"], format!("Bearer {ACME_TOKEN}"));
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": RECIPIENT,
            "type": "text",
            "text": { "body": text, "preview_url": false },
        })
    );
}

fn arguments(text: &str) -> serde_json::Map<String, Value> {
    let Value::Object(arguments) = json!({ "to": RECIPIENT, "message": text }) else {
        unreachable!("a JSON object literal is an object");
    };
    arguments
}

#[tokio::test]
async fn an_rmcp_client_sends_a_whatsapp_message_in_the_legacy_era_and_again_in_the_modern_one() -> Result<()>
{
    let graph = MockGraph::start().await?;
    let hermes = two_customers(&graph).await?;

    // Legacy era: rmcp's own client, `initialize` handshake at 2025-11-25.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(hermes.mcp_url()).auth_header(ACME_KEY),
    );
    let mut client_config = ClientConfig::default();
    client_config.protocol_version = ProtocolVersion::V_2025_11_25;
    let client = client_config.serve(transport).await.context("initialize")?;

    let server = client.peer_info().context("the server answered initialize")?;
    assert_eq!(server.protocol_version, ProtocolVersion::V_2025_11_25);
    assert_eq!(
        server.server_info.as_ref().map(|info| info.name.as_str()),
        Some("hermes")
    );

    let tools = client.list_all_tools().await.context("tools/list")?;
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert!(names.contains(&"whatsapp_send_message"), "{names:?}");
    assert!(
        names.contains(&"connections_status") && names.contains(&"inbox_list"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("telegram_") || name.starts_with("email_")),
        "only the tools of acme's connections: {names:?}"
    );

    let result = client
        .call_tool(
            CallToolRequestParams::new("whatsapp_send_message").with_arguments(arguments("hello from rmcp")),
        )
        .await
        .context("tools/call")?;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(
        result.structured_content,
        Some(json!({ "messageId": MockGraph::wamid(0), "to": RECIPIENT }))
    );
    client.cancel().await.context("close the client")?;

    let received = graph.received();
    ensure!(
        received.len() == 1,
        "one send reached the Graph API, got {}",
        received.len()
    );
    assert_documented_send(&received[0], "hello from rmcp");

    // Modern era: no handshake, per-request `_meta` and the required headers.
    post_a_modern_call(&hermes, &graph).await
}

async fn post_a_modern_call(hermes: &Hermes, graph: &MockGraph) -> Result<()> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "whatsapp_send_message",
            "arguments": { "to": RECIPIENT, "message": "hello from 2026" },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": { "name": "e2e", "version": "1.0.0" },
            },
        },
    });

    let response = reqwest::Client::new()
        .post(hermes.mcp_url())
        .bearer_auth(ACME_KEY)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whatsapp_send_message")
        .json(&body)
        .send()
        .await
        .context("POST /mcp")?;

    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    let answer: Value = response.json().await.context("a JSON answer")?;
    let result = &answer["result"];
    assert_eq!(result["resultType"], "complete", "{answer}");
    assert_eq!(result["isError"], false, "{answer}");
    assert_eq!(
        result["structuredContent"],
        json!({ "messageId": MockGraph::wamid(1), "to": RECIPIENT })
    );

    let received = graph.received();
    ensure!(
        received.len() == 2,
        "two sends reached the Graph API, got {}",
        received.len()
    );
    assert_documented_send(&received[1], "hello from 2026");
    Ok(())
}

#[tokio::test]
async fn an_rmcp_client_in_the_modern_era_discovers_the_server_and_calls_without_a_handshake() -> Result<()> {
    let graph = MockGraph::start().await?;
    let hermes = two_customers(&graph).await?;

    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(hermes.mcp_url()).auth_header(ACME_KEY),
    );
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = ().serve_with_lifecycle(transport, lifecycle).await.context("server/discover")?;

    let server = client
        .peer_info()
        .context("the server answered server/discover")?;
    assert_eq!(server.protocol_version, ProtocolVersion::V_2026_07_28);
    let result = client
        .call_tool(
            CallToolRequestParams::new("whatsapp_send_message").with_arguments(arguments("modern rmcp")),
        )
        .await
        .context("tools/call")?;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    client.cancel().await.context("close the client")?;

    let received = graph.received();
    ensure!(
        received.len() == 1,
        "one send reached the Graph API, got {}",
        received.len()
    );
    assert_documented_send(&received[0], "modern rmcp");
    Ok(())
}

#[tokio::test]
async fn each_customer_sends_with_its_own_number_and_token() -> Result<()> {
    let graph = MockGraph::start().await?;
    let hermes = two_customers(&graph).await?;

    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(hermes.mcp_url()).auth_header(BETA_KEY),
    );
    let client = ().serve(transport).await.context("initialize")?;
    client
        .call_tool(CallToolRequestParams::new("whatsapp_send_message").with_arguments(arguments("from beta")))
        .await
        .context("tools/call")?;
    client.cancel().await.context("close the client")?;

    let received = graph.received();
    ensure!(
        received.len() == 1,
        "one send reached the Graph API, got {}",
        received.len()
    );
    assert_eq!(received[0].phone_number_id, BETA_PHONE_NUMBER_ID);
    assert_eq!(
        received[0].headers["authorization"],
        format!("Bearer {BETA_TOKEN}")
    );
    Ok(())
}

#[tokio::test]
async fn a_request_without_an_api_key_is_challenged() -> Result<()> {
    let graph = MockGraph::start().await?;
    let hermes = two_customers(&graph).await?;

    let response = reqwest::Client::new()
        .post(hermes.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .context("POST /mcp")?;

    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    assert!(graph.received().is_empty());
    Ok(())
}
