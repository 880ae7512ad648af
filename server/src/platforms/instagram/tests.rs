//! The Instagram client against a recording mock of the Graph API.

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::platforms::mock_api::{MockApi, Reply, client};

const USER_ID: &str = "17841400000000000";
const CONTAINER_ID: &str = "17889455560051444";
const MEDIA_ID: &str = "17920238422030506";
const TOKEN: &str = "IGQVJ-test-token-0123456789";

/// Checks without waiting between them.
const QUICK: ContainerPolling = ContainerPolling {
    interval: Duration::ZERO,
    max_checks: 3,
};

fn photo() -> Photo<'static> {
    Photo {
        image_url: "https://cdn.example.com/bronz-fonz.jpg",
        caption: Some("#BronzFonz"),
    }
}

fn id(id: &str) -> Reply {
    Reply::Json(StatusCode::OK, json!({ "id": id }), vec![])
}

fn status(code: &str) -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({ "status_code": code, "id": CONTAINER_ID }),
        vec![],
    )
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Reply {
    Reply::Json(
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AmFGcW_3hwDB"}}),
        vec![],
    )
}

async fn publish(mock: &MockApi, polling: ContainerPolling) -> Result<Published, ToolError> {
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout: Duration::from_secs(5),
    };
    publish_photo(&endpoint, "v27.0", USER_ID, TOKEN, &photo(), polling).await
}

async fn message(mock: &MockApi, login: InstagramLogin, timeout: Duration) -> Result<String, ToolError> {
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout,
    };
    let message = DirectMessage {
        recipient_id: "1254459154682919",
        text: "hello",
    };
    send_message(&endpoint, "v27.0", login, USER_ID, TOKEN, &message).await
}

#[test]
fn each_login_flow_has_its_own_api_host() {
    assert_eq!(
        default_api_base(InstagramLogin::Instagram),
        "https://graph.instagram.com"
    );
    assert_eq!(
        default_api_base(InstagramLogin::Facebook),
        "https://graph.facebook.com"
    );
}

#[tokio::test]
async fn a_photo_is_published_by_creating_a_container_waiting_until_it_is_finished_and_publishing_it() {
    let mock = MockApi::start_script(vec![
        id(CONTAINER_ID),
        status("IN_PROGRESS"),
        status("FINISHED"),
        id(MEDIA_ID),
    ])
    .await;

    let published = publish(&mock, QUICK)
        .await
        .expect("a finished container publishes");

    assert_eq!(
        published,
        Published {
            media_id: MEDIA_ID.to_owned(),
            container_id: CONTAINER_ID.to_owned(),
        }
    );
    let received = mock.received();
    assert_eq!(received.len(), 4);
    for request in &received {
        assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
        assert!(!request.query.as_deref().unwrap_or_default().contains(TOKEN));
    }
    let create = &received[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, format!("/v27.0/{USER_ID}/media"));
    assert_eq!(create.headers["content-type"], "application/json");
    assert_eq!(
        create.body,
        json!({"image_url": "https://cdn.example.com/bronz-fonz.jpg", "caption": "#BronzFonz"})
    );
    for check in &received[1..3] {
        assert_eq!(check.method, "GET");
        assert_eq!(check.path, format!("/v27.0/{CONTAINER_ID}"));
        assert_eq!(check.query.as_deref(), Some("fields=status_code"));
    }
    let publish = &received[3];
    assert_eq!(publish.method, "POST");
    assert_eq!(publish.path, format!("/v27.0/{USER_ID}/media_publish"));
    assert_eq!(publish.body, json!({"creation_id": CONTAINER_ID}));
}

#[tokio::test]
async fn a_photo_without_a_caption_sends_none() {
    let mock = MockApi::start_script(vec![id(CONTAINER_ID), status("FINISHED"), id(MEDIA_ID)]).await;
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout: Duration::from_secs(5),
    };
    let photo = Photo {
        caption: None,
        ..photo()
    };

    publish_photo(&endpoint, "v27.0", USER_ID, TOKEN, &photo, QUICK)
        .await
        .expect("a finished container publishes");

    assert_eq!(
        mock.received()[0].body,
        json!({"image_url": "https://cdn.example.com/bronz-fonz.jpg"})
    );
}

#[tokio::test]
async fn a_container_never_finished_is_given_up_after_the_last_check_and_not_published() {
    let mock = MockApi::start_script(vec![id(CONTAINER_ID), status("IN_PROGRESS")]).await;

    let error = publish(&mock, QUICK)
        .await
        .expect_err("an unfinished container fails");

    let ToolError::Platform { code, message, .. } = &error else {
        panic!("expected a platform error, got {error:?}");
    };
    assert_eq!(code, "container_not_ready");
    assert!(message.contains("after 3 checks"), "{message}");
    assert!(message.contains("nothing was published"), "{message}");
    let received = mock.received();
    assert_eq!(received.len(), 1 + 3, "one create and three checks");
    assert!(
        received
            .iter()
            .all(|request| !request.path.ends_with("media_publish"))
    );
}

#[tokio::test]
async fn a_container_in_error_is_not_published() {
    let mock = MockApi::start_script(vec![id(CONTAINER_ID), status("ERROR")]).await;

    let error = publish(&mock, QUICK).await.expect_err("a failed container fails");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "container_error" && message.contains(CONTAINER_ID)),
        "{error:?}"
    );
    assert_eq!(mock.received().len(), 2);
}

#[tokio::test]
async fn an_expired_container_is_not_published() {
    let mock = MockApi::start_script(vec![id(CONTAINER_ID), status("EXPIRED")]).await;

    let error = publish(&mock, QUICK)
        .await
        .expect_err("an expired container fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "container_expired"),
        "{error:?}"
    );
    assert_eq!(mock.received().len(), 2);
}

#[tokio::test]
async fn a_status_answer_without_a_status_is_a_malformed_response() {
    let mock = MockApi::start_script(vec![
        id(CONTAINER_ID),
        Reply::Json(StatusCode::OK, json!({"id": CONTAINER_ID}), vec![]),
    ])
    .await;

    let error = publish(&mock, QUICK)
        .await
        .expect_err("an unreadable status fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_container_is_the_graph_error_with_the_token_scrubbed() {
    let mock = MockApi::start(graph_error(
        StatusCode::BAD_REQUEST,
        9004,
        &format!("Only photo or video can be accepted as media type ({TOKEN})"),
    ))
    .await;

    let error = publish(&mock, QUICK)
        .await
        .expect_err("a refused container fails");

    assert!(
        matches!(&error, ToolError::Platform { platform: Platform::Instagram, code, .. } if code == "9004"),
        "{error:?}"
    );
    assert!(!error.to_string().contains(TOKEN), "{error}");
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn a_direct_message_with_instagram_login_goes_to_the_accounts_messages_edge() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::OK,
        json!({"recipient_id": "1254459154682919", "message_id": "aWdfZAG1faXRlbToxOklH"}),
        vec![],
    ))
    .await;

    let message_id = message(&mock, InstagramLogin::Instagram, Duration::from_secs(5))
        .await
        .expect("an accepted message is sent");

    assert_eq!(message_id, "aWdfZAG1faXRlbToxOklH");
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v27.0/{USER_ID}/messages"));
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({"recipient": {"id": "1254459154682919"}, "message": {"text": "hello"}})
    );
}

#[tokio::test]
async fn a_direct_message_with_facebook_login_goes_to_the_pages_own_messages_edge() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::OK,
        json!({"recipient_id": "1254459154682919", "message_id": "m_1"}),
        vec![],
    ))
    .await;

    message(&mock, InstagramLogin::Facebook, Duration::from_secs(5))
        .await
        .expect("an accepted message is sent");

    assert_eq!(mock.received()[0].path, "/v27.0/me/messages");
}

#[tokio::test]
async fn an_invalid_token_is_a_platform_error_with_code_190() {
    let mock = MockApi::start(graph_error(
        StatusCode::UNAUTHORIZED,
        190,
        "Invalid OAuth access token - Cannot parse access token",
    ))
    .await;

    let error = message(&mock, InstagramLogin::Instagram, Duration::from_secs(5))
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
    assert_eq!(*platform, Platform::Instagram);
    assert_eq!(code, "190");
    assert!(message.starts_with("Invalid OAuth access token"), "{message}");
    assert!(!error.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_message_outside_the_24_hour_window_is_a_platform_error_with_code_10() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::BAD_REQUEST,
        json!({"error": {"message": "(#10) This message is sent outside of allowed window.",
            "type": "OAuthException", "code": 10, "error_subcode": 2534022}}),
        vec![],
    ))
    .await;

    let error = message(&mock, InstagramLogin::Instagram, Duration::from_secs(5))
        .await
        .expect_err("a late message fails");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "10" && message.contains("subcode 2534022")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_429_is_rate_limited_for_as_long_as_retry_after_says() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": {"message": "(#4) Application request limit reached", "code": 4}}),
        vec![("retry-after", "60")],
    ))
    .await;

    let error = message(&mock, InstagramLogin::Instagram, Duration::from_secs(5))
        .await
        .expect_err("a 429 fails");

    assert!(
        matches!(
            error,
            ToolError::RateLimited {
                platform: Platform::Instagram,
                retry_after_secs: Some(60)
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_user_request_limit_is_rate_limited_whatever_its_status() {
    let mock = MockApi::start(graph_error(
        StatusCode::BAD_REQUEST,
        17,
        "(#17) User request limit reached",
    ))
    .await;

    let error = message(&mock, InstagramLogin::Instagram, Duration::from_secs(5))
        .await
        .expect_err("a throttled message fails");

    assert!(
        matches!(
            error,
            ToolError::RateLimited {
                platform: Platform::Instagram,
                retry_after_secs: None
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_server_error_without_an_error_object_is_named_by_its_status() {
    let mock = MockApi::start(Reply::Raw(StatusCode::BAD_GATEWAY, "upstream error")).await;

    let error = message(&mock, InstagramLogin::Instagram, Duration::from_secs(5))
        .await
        .expect_err("a 502 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "http_502"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_platform_that_never_answers_times_out() {
    let mock = MockApi::start(Reply::Hang).await;

    let error = message(&mock, InstagramLogin::Instagram, Duration::from_millis(200))
        .await
        .expect_err("no answer fails");

    assert!(
        matches!(error, ToolError::Timeout(Platform::Instagram)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_success_answer_without_a_message_id_is_a_malformed_response() {
    let mock = MockApi::start(Reply::Json(
        StatusCode::OK,
        json!({"recipient_id": "1254459154682919"}),
        vec![],
    ))
    .await;

    let error = message(&mock, InstagramLogin::Instagram, Duration::from_secs(5))
        .await
        .expect_err("an answer without an id fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}
