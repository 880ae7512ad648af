//! The WhatsApp client against a recording mock of the Graph API.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::platforms::mock_api::{MockApi, Reply, client};

const PHONE_NUMBER_ID: &str = "106540352242922";
const TOKEN: &str = "EAAG-test-token-0123456789";

fn hello() -> TextMessage<'static> {
    TextMessage {
        to: "15551234567",
        body: "hello",
        reply_to: None,
        preview_url: false,
    }
}

fn accepted() -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "15551234567", "wa_id": "15551234567"}],
            "messages": [{"id": "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI", "message_status": "accepted"}],
        }),
        vec![],
    )
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Reply {
    Reply::Json(
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}),
        vec![],
    )
}

async fn send_to(mock: &MockApi, message: &TextMessage<'_>, timeout: Duration) -> Result<String, ToolError> {
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout,
    };
    send_text(&endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, message).await
}

async fn send_hello(reply: Reply) -> Result<String, ToolError> {
    let mock = MockApi::start(reply).await;
    send_to(&mock, &hello(), Duration::from_secs(5)).await
}

#[tokio::test]
async fn a_text_message_is_posted_to_the_messages_edge_of_the_phone_number_with_the_bearer_token() {
    let mock = MockApi::start(accepted()).await;

    let wamid = send_to(&mock, &hello(), Duration::from_secs(5))
        .await
        .expect("an accepted message is sent");

    assert_eq!(wamid, "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI");
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551234567",
            "type": "text",
            "text": {"body": "hello", "preview_url": false},
        })
    );
}

#[tokio::test]
async fn a_reply_names_the_replied_message_in_its_context_and_may_preview_links() {
    let mock = MockApi::start(accepted()).await;
    let reply = TextMessage {
        reply_to: Some("wamid.ORIGINAL"),
        preview_url: true,
        body: "see https://example.com",
        ..hello()
    };

    send_to(&mock, &reply, Duration::from_secs(5))
        .await
        .expect("an accepted reply is sent");

    let body = &mock.received()[0].body;
    assert_eq!(body["context"], json!({"message_id": "wamid.ORIGINAL"}));
    assert_eq!(
        body["text"],
        json!({"body": "see https://example.com", "preview_url": true})
    );
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it_before_the_version() {
    let mock = MockApi::start(accepted()).await;
    let base_url = format!("{}/graph/", mock.base_url);
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &base_url,
        timeout: Duration::from_secs(5),
    };

    send_text(&endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, &hello())
        .await
        .expect("an accepted message is sent");

    assert_eq!(
        mock.received()[0].path,
        format!("/graph/v27.0/{PHONE_NUMBER_ID}/messages")
    );
}

#[tokio::test]
async fn an_invalid_token_is_a_platform_error_with_code_190() {
    let error = send_hello(graph_error(
        StatusCode::UNAUTHORIZED,
        190,
        "Invalid OAuth access token",
    ))
    .await
    .expect_err("a 401 fails");

    let ToolError::Platform {
        platform,
        code,
        message,
    } = &error
    else {
        panic!("expected a platform error, got {error:?}");
    };
    assert_eq!(*platform, Platform::Whatsapp);
    assert_eq!(code, "190");
    assert!(message.starts_with("Invalid OAuth access token"), "{message}");
    assert!(
        message.contains("fbtrace_id Az8or2yhqkZfEZ-_4Qn_Bam"),
        "{message}"
    );
    assert!(!error.to_string().contains(TOKEN));
}

#[tokio::test]
async fn an_invalid_parameter_is_a_platform_error_with_code_100() {
    let error = send_hello(graph_error(
        StatusCode::BAD_REQUEST,
        100,
        "(#100) Invalid parameter",
    ))
    .await
    .expect_err("a 400 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "100"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_429_is_rate_limited_for_as_long_as_retry_after_says() {
    let reply = Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": {"message": "(#130429) Rate limit hit", "code": 130429}}),
        vec![("retry-after", "30")],
    );

    let error = send_hello(reply).await.expect_err("a 429 fails");

    assert!(
        matches!(
            error,
            ToolError::RateLimited {
                platform: Platform::Whatsapp,
                retry_after_secs: Some(30)
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_throughput_error_is_rate_limited_whatever_its_status() {
    let error = send_hello(graph_error(
        StatusCode::BAD_REQUEST,
        130429,
        "(#130429) Rate limit hit",
    ))
    .await
    .expect_err("a throttled send fails");

    assert!(
        matches!(
            error,
            ToolError::RateLimited {
                retry_after_secs: None,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_pair_rate_limit_is_rate_limited() {
    let error = send_hello(graph_error(
        StatusCode::BAD_REQUEST,
        131056,
        "(#131056) Pair rate limit hit",
    ))
    .await
    .expect_err("a throttled send fails");

    assert!(matches!(error, ToolError::RateLimited { .. }), "{error:?}");
}

#[tokio::test]
async fn a_server_error_without_an_error_object_is_named_by_its_status() {
    let error = send_hello(Reply::Raw(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream connect error",
    ))
    .await
    .expect_err("a 503 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "http_503"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_platform_that_never_answers_times_out() {
    let mock = MockApi::start(Reply::Hang).await;

    let error = send_to(&mock, &hello(), Duration::from_millis(200))
        .await
        .expect_err("no answer fails");

    assert!(
        matches!(error, ToolError::Timeout(Platform::Whatsapp)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_success_answer_that_is_not_json_is_a_malformed_response() {
    let error = send_hello(Reply::Raw(StatusCode::OK, "<html>captive portal</html>"))
        .await
        .expect_err("an unreadable answer fails");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "malformed_response" && message == "malformed response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_success_answer_without_a_message_is_a_malformed_response() {
    let error = send_hello(Reply::Json(StatusCode::OK, json!({"messages": []}), vec![]))
        .await
        .expect_err("an answer without a message id fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_platform_nobody_listens_for_is_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port is free");
    let base_url = format!("http://{}", listener.local_addr().expect("bound"));
    drop(listener);
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &base_url,
        timeout: Duration::from_secs(5),
    };

    let error = send_text(&endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, &hello())
        .await
        .expect_err("a closed port fails");

    assert!(
        matches!(error, ToolError::Unreachable(Platform::Whatsapp)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_fails_before_anything_is_sent() {
    let mock = MockApi::start(accepted()).await;
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout: Duration::from_secs(5),
    };

    let error = send_text(&endpoint, "v27.0", PHONE_NUMBER_ID, "bad\ntoken", &hello())
        .await
        .expect_err("a token with a line break is refused");

    assert!(matches!(error, ToolError::Internal), "{error:?}");
    assert!(mock.received().is_empty());
}

async fn endpoint_call<T>(
    mock: &MockApi,
    call: impl AsyncFnOnce(&Endpoint<'_>) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout: Duration::from_secs(5),
    };
    call(&endpoint).await
}

#[tokio::test]
async fn a_template_is_posted_with_its_name_language_and_components() {
    let mock = MockApi::start(accepted()).await;
    let components = [json!({"type": "body", "parameters": [{"type": "text", "text": "Ada"}]})];
    let template = TemplateMessage {
        to: "15551234567",
        name: "order_update",
        language_code: "en_US",
        components: &components,
    };

    let wamid = endpoint_call(&mock, async |endpoint| {
        send_template(endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, &template).await
    })
    .await
    .expect("an accepted template is sent");

    assert_eq!(wamid, "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI");
    let request = &mock.received()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(
        request.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551234567",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}],
            },
        })
    );
}

#[tokio::test]
async fn a_template_without_variables_sends_no_components() {
    let mock = MockApi::start(accepted()).await;
    let template = TemplateMessage {
        to: "15551234567",
        name: "hello_world",
        language_code: "en_US",
        components: &[],
    };

    endpoint_call(&mock, async |endpoint| {
        send_template(endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, &template).await
    })
    .await
    .expect("an accepted template is sent");

    assert_eq!(
        mock.received()[0].body["template"],
        json!({"name": "hello_world", "language": {"code": "en_US"}})
    );
}

#[tokio::test]
async fn an_image_is_sent_by_link_under_its_kind_with_its_caption() {
    let mock = MockApi::start(accepted()).await;
    let image = MediaMessage {
        to: "15551234567",
        kind: MediaKind::Image,
        link: "https://cdn.example.com/cat.jpg",
        caption: Some("a cat"),
        filename: None,
        reply_to: None,
    };

    endpoint_call(&mock, async |endpoint| {
        send_media(endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, &image).await
    })
    .await
    .expect("an accepted image is sent");

    assert_eq!(
        mock.received()[0].body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551234567",
            "type": "image",
            "image": {"link": "https://cdn.example.com/cat.jpg", "caption": "a cat"},
        })
    );
}

#[tokio::test]
async fn a_document_carries_its_filename_and_may_reply_to_a_message() {
    let mock = MockApi::start(accepted()).await;
    let document = MediaMessage {
        to: "15551234567",
        kind: MediaKind::Document,
        link: "https://cdn.example.com/invoice.pdf",
        caption: None,
        filename: Some("invoice-42.pdf"),
        reply_to: Some("wamid.ORIGINAL"),
    };

    endpoint_call(&mock, async |endpoint| {
        send_media(endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, &document).await
    })
    .await
    .expect("an accepted document is sent");

    let body = &mock.received()[0].body;
    assert_eq!(body["type"], "document");
    assert_eq!(
        body["document"],
        json!({"link": "https://cdn.example.com/invoice.pdf", "filename": "invoice-42.pdf"})
    );
    assert_eq!(body["context"], json!({"message_id": "wamid.ORIGINAL"}));
}

#[tokio::test]
async fn a_read_receipt_names_the_message_and_is_confirmed_by_success() {
    let mock = MockApi::start(Reply::Json(StatusCode::OK, json!({"success": true}), vec![])).await;

    endpoint_call(&mock, async |endpoint| {
        mark_read(endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, "wamid.RECEIVED").await
    })
    .await
    .expect("a confirmed receipt succeeds");

    let request = &mock.received()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(
        request.body,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.RECEIVED"})
    );
}

#[tokio::test]
async fn a_read_receipt_answered_without_success_is_not_confirmed() {
    let mock = MockApi::start(Reply::Json(StatusCode::OK, json!({"success": false}), vec![])).await;

    let error = endpoint_call(&mock, async |endpoint| {
        mark_read(endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, "wamid.RECEIVED").await
    })
    .await
    .expect_err("an unconfirmed receipt fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "not_confirmed"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_read_receipt_answered_with_something_else_is_a_malformed_response() {
    let mock = MockApi::start(accepted()).await;

    let error = endpoint_call(&mock, async |endpoint| {
        mark_read(endpoint, "v27.0", PHONE_NUMBER_ID, TOKEN, "wamid.RECEIVED").await
    })
    .await
    .expect_err("an answer without `success` fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[test]
fn only_images_videos_and_documents_take_a_caption() {
    let takes: Vec<_> = [
        MediaKind::Image,
        MediaKind::Audio,
        MediaKind::Video,
        MediaKind::Document,
        MediaKind::Sticker,
    ]
    .into_iter()
    .filter(|kind| kind.takes_caption())
    .map(MediaKind::as_str)
    .collect();

    assert_eq!(takes, ["image", "video", "document"]);
}
