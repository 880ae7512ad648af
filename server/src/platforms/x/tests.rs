//! The X client against a recording mock of the API, and OAuth 1.0a
//! signing against X's documented example.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::platforms::mock_api::{MockApi, Reply, client};

const BEARER: &str = "dGVzdC1vYXV0aDItdXNlci10b2tlbg-bearer";

const KEYS: OAuth1Keys<'static> = OAuth1Keys {
    consumer_key: "test-consumer-key-0123",
    consumer_secret: "test-consumer-secret-4567",
    access_token: "1234-test-access-token-89ab",
    access_token_secret: "test-access-token-secret-cdef",
};

fn hello() -> NewPost<'static> {
    NewPost {
        text: "hello",
        reply_to: None,
        quote_post_id: None,
    }
}

fn created() -> Reply {
    Reply::Json(
        StatusCode::CREATED,
        json!({"data": {"id": "1445880548472328192", "text": "hello", "edit_history_tweet_ids": ["1445880548472328192"]}}),
        vec![],
    )
}

fn problem(status: StatusCode, title: &str, detail: &str, kind: &str) -> Reply {
    Reply::Json(
        status,
        json!({"title": title, "detail": detail, "type": kind, "status": status.as_u16()}),
        vec![],
    )
}

async fn post_to(
    mock: &MockApi,
    auth: &Auth<'_>,
    post: &NewPost<'_>,
    timeout: Duration,
) -> Result<String, ToolError> {
    let http = client();
    let endpoint = Endpoint {
        http: &http,
        base_url: &mock.base_url,
        timeout,
    };
    create_post(&endpoint, auth, post).await
}

async fn post_hello(reply: Reply) -> Result<String, ToolError> {
    let mock = MockApi::start(reply).await;
    post_to(&mock, &Auth::Bearer(BEARER), &hello(), Duration::from_secs(5)).await
}

/// The error, after checking that nothing of it names a credential.
fn without_secrets(error: ToolError) -> ToolError {
    let text = format!("{error} {error:?}");
    for secret in [
        BEARER,
        KEYS.consumer_key,
        KEYS.consumer_secret,
        KEYS.access_token,
        KEYS.access_token_secret,
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    error
}

/// The `name="value"` fields of an `Authorization: OAuth …` header, decoded.
fn oauth_fields(header: &str) -> BTreeMap<String, String> {
    let fields = header.strip_prefix("OAuth ").expect("an OAuth header");
    fields
        .split(", ")
        .map(|field| {
            let (name, value) = field.split_once('=').expect("name=value");
            let value = value.trim_matches('"');
            (name.to_owned(), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII hex");
            decoded.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).expect("UTF-8")
}

#[test]
fn the_signature_of_xs_documented_example_is_reproduced() {
    // X's "Creating a signature" example (developer.x.com, OAuth 1.0a):
    // POST statuses/update.json with two request parameters and the
    // documented consumer and token values.
    let url = reqwest::Url::parse("https://api.twitter.com/1.1/statuses/update.json").expect("a URL");
    let parameters = [
        ("status", "Hello Ladies + Gentlemen, a signed OAuth request!"),
        ("include_entities", "true"),
        ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
        ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1318622958"),
        (
            "oauth_token",
            "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        ),
        ("oauth_version", "1.0"),
    ];

    let base = signature_base_string("POST", &url, &parameters);
    let signature = hmac_sha1_signature(
        &base,
        "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
    );

    assert_eq!(
        base,
        "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&\
         include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26\
         oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26\
         oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26\
         oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26\
         oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520\
         a%2520signed%2520OAuth%2520request%2521"
    );
    assert_eq!(signature, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
}

#[test]
fn percent_encoding_leaves_only_unreserved_characters() {
    assert_eq!(percent_encode("Ladies + Gentlemen"), "Ladies%20%2B%20Gentlemen");
    assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
    assert_eq!(percent_encode("☃/="), "%E2%98%83%2F%3D");
}

#[test]
fn the_base_string_uri_keeps_a_non_default_port_and_drops_the_query() {
    let url = reqwest::Url::parse("HTTP://Example.COM:8080/2/tweets?x=1").expect("a URL");
    let default_port = reqwest::Url::parse("https://api.x.com:443/2/tweets").expect("a URL");

    assert_eq!(base_string_uri(&url), "http://example.com:8080/2/tweets");
    assert_eq!(base_string_uri(&default_port), "https://api.x.com/2/tweets");
}

#[tokio::test]
async fn a_post_is_created_with_the_bearer_token() {
    let mock = MockApi::start(created()).await;

    let id = post_to(&mock, &Auth::Bearer(BEARER), &hello(), Duration::from_secs(5))
        .await
        .expect("a created post is answered with its id");

    assert_eq!(id, "1445880548472328192");
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/2/tweets");
    assert_eq!(request.headers["authorization"], format!("Bearer {BEARER}"));
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.body, json!({"text": "hello"}));
}

#[tokio::test]
async fn a_reply_quoting_another_post_names_both() {
    let mock = MockApi::start(created()).await;
    let post = NewPost {
        reply_to: Some("1445880548472328100"),
        quote_post_id: Some("1445880548472328111"),
        ..hello()
    };

    post_to(&mock, &Auth::Bearer(BEARER), &post, Duration::from_secs(5))
        .await
        .expect("a created post is answered");

    assert_eq!(
        mock.received()[0].body,
        json!({
            "text": "hello",
            "reply": {"in_reply_to_tweet_id": "1445880548472328100"},
            "quote_tweet_id": "1445880548472328111",
        })
    );
}

#[tokio::test]
async fn an_oauth1_post_carries_a_valid_hmac_sha1_signature_of_the_request() {
    let mock = MockApi::start(created()).await;

    post_to(&mock, &Auth::OAuth1(KEYS), &hello(), Duration::from_secs(5))
        .await
        .expect("a created post is answered");

    let request = &mock.received()[0];
    let header = request.headers["authorization"].to_str().expect("ASCII");
    let fields = oauth_fields(header);
    assert_eq!(
        fields.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_token",
            "oauth_version"
        ]
    );
    assert_eq!(fields["oauth_consumer_key"], KEYS.consumer_key);
    assert_eq!(fields["oauth_token"], KEYS.access_token);
    assert_eq!(fields["oauth_signature_method"], "HMAC-SHA1");
    assert_eq!(fields["oauth_version"], "1.0");
    let timestamp: i64 = fields["oauth_timestamp"].parse().expect("seconds");
    assert!((jiff::Timestamp::now().as_second() - timestamp).abs() < 60);
    assert!(!header.contains(KEYS.consumer_secret) && !header.contains(KEYS.access_token_secret));

    // Re-sign what the mock received: the signed parameters are the
    // protocol parameters alone, the JSON body is not among them.
    let url = reqwest::Url::parse(&format!("{}/2/tweets", mock.base_url)).expect("a URL");
    let signed: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(name, _)| name.as_str() != "oauth_signature")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let base = signature_base_string("POST", &url, &signed);
    assert_eq!(
        fields["oauth_signature"],
        hmac_sha1_signature(&base, KEYS.consumer_secret, KEYS.access_token_secret)
    );
}

#[tokio::test]
async fn every_oauth1_request_gets_its_own_nonce() {
    let mock = MockApi::start(created()).await;

    for _ in 0..2 {
        post_to(&mock, &Auth::OAuth1(KEYS), &hello(), Duration::from_secs(5))
            .await
            .expect("a created post is answered");
    }

    let nonces: Vec<String> = mock
        .received()
        .iter()
        .map(|request| {
            oauth_fields(request.headers["authorization"].to_str().expect("ASCII"))["oauth_nonce"].clone()
        })
        .collect();
    assert_ne!(nonces[0], nonces[1]);
}

#[tokio::test]
async fn an_unauthorized_token_is_a_platform_error_named_by_its_status() {
    let error = post_hello(problem(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Unauthorized",
        "about:blank",
    ))
    .await
    .expect_err("a 401 fails");

    assert!(
        matches!(&without_secrets(error), ToolError::Platform { platform: Platform::X, code, message }
            if code == "http_401" && message == "Unauthorized"),
        "a 401 problem is named by its status"
    );
}

#[tokio::test]
async fn a_duplicate_post_is_a_platform_error_with_the_problems_detail() {
    let error = post_hello(problem(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "You are not allowed to create a Tweet with duplicate content.",
        "about:blank",
    ))
    .await
    .expect_err("a 403 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "http_403"
                && message == "Forbidden: You are not allowed to create a Tweet with duplicate content."),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_typed_problem_is_coded_by_the_last_segment_of_its_type() {
    let error = post_hello(problem(
        StatusCode::PAYMENT_REQUIRED,
        "Credits depleted",
        "Your account has no credits left.",
        "https://api.x.com/2/problems/credits-depleted",
    ))
    .await
    .expect_err("a 402 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "credits-depleted"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_legacy_errors_array_gives_its_code_and_message() {
    let reply = Reply::Json(
        StatusCode::FORBIDDEN,
        json!({"errors": [{"code": 187, "message": "Status is a duplicate."}]}),
        vec![],
    );

    let error = post_hello(reply).await.expect_err("a 403 fails");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "187" && message == "Status is a duplicate."),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_success_status_with_only_errors_is_a_platform_error() {
    let reply = Reply::Json(
        StatusCode::OK,
        json!({"errors": [{"title": "Invalid Request", "detail": "reply target not found",
                           "type": "https://api.x.com/2/problems/invalid-request"}]}),
        vec![],
    );

    let error = post_hello(reply).await.expect_err("errors without data fail");

    assert!(
        matches!(&error, ToolError::Platform { code, message, .. }
            if code == "invalid-request" && message == "Invalid Request: reply target not found"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_429_is_rate_limited_until_the_window_resets() {
    // 2100-01-01T00:00:00Z: the wait is the time from now until then.
    let reply = Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
        vec![
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "4102444800"),
        ],
    );

    let error = post_hello(reply).await.expect_err("a 429 fails");

    let ToolError::RateLimited {
        platform: Platform::X,
        retry_after_secs: Some(wait),
    } = without_secrets(error)
    else {
        panic!("a 429 with a reset is rate limited with a wait");
    };
    let expected = 4_102_444_800 - jiff::Timestamp::now().as_second();
    assert!(
        (expected - 5..=expected).contains(&i64::try_from(wait).expect("fits")),
        "{wait} s"
    );
}

#[test]
fn the_wait_is_the_latest_reset_of_the_exhausted_windows() {
    let now = jiff::Timestamp::from_second(1_000_000).expect("a valid time");
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    };

    let fifteen_minutes = headers(&[("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "1000900")]);
    let daily_cap = headers(&[
        ("x-rate-limit-remaining", "42"),
        ("x-rate-limit-reset", "1000300"),
        ("x-user-limit-24hour-remaining", "0"),
        ("x-user-limit-24hour-reset", "1050000"),
    ]);
    let unspecific = headers(&[("x-rate-limit-reset", "1000060")]);
    let past = headers(&[("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "999000")]);

    assert_eq!(wait_until_reset(&fifteen_minutes, now), Some(900));
    assert_eq!(wait_until_reset(&daily_cap, now), Some(50_000));
    assert_eq!(wait_until_reset(&unspecific, now), Some(60));
    assert_eq!(wait_until_reset(&past, now), Some(0));
    assert_eq!(wait_until_reset(&http::HeaderMap::new(), now), None);
}

#[tokio::test]
async fn a_server_error_without_a_problem_is_named_by_its_status() {
    let error = post_hello(Reply::Raw(StatusCode::SERVICE_UNAVAILABLE, "Over capacity"))
        .await
        .expect_err("a 503 fails");

    assert!(
        matches!(&without_secrets(error), ToolError::Platform { code, message, .. }
            if code == "http_503" && message == "x answered HTTP 503 Service Unavailable"),
        "a 503 is named by its status"
    );
}

#[tokio::test]
async fn a_platform_that_never_answers_times_out() {
    let mock = MockApi::start(Reply::Hang).await;

    let error = post_to(&mock, &Auth::OAuth1(KEYS), &hello(), Duration::from_millis(200))
        .await
        .expect_err("no answer fails");

    assert!(
        matches!(without_secrets(error), ToolError::Timeout(Platform::X)),
        "a hanging platform times out"
    );
}

#[tokio::test]
async fn a_success_answer_that_is_not_json_is_a_malformed_response() {
    let error = post_hello(Reply::Raw(StatusCode::CREATED, "<html>captive portal</html>"))
        .await
        .expect_err("an unreadable answer fails");

    assert!(
        matches!(&error, ToolError::Platform { code, .. } if code == "malformed_response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_detail_quoting_a_credential_is_redacted() {
    let detail = format!("token {} was revoked", KEYS.access_token);
    let mock = MockApi::start(problem(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        &detail,
        "about:blank",
    ))
    .await;

    let error = post_to(&mock, &Auth::OAuth1(KEYS), &hello(), Duration::from_secs(5))
        .await
        .expect_err("a 401 fails");

    assert!(without_secrets(error).to_string().contains("[redacted]"));
}
