//! Inbound webhooks end to end through the router, over the embedded
//! store: verified, stored once in the right inbox, answered with the
//! right status. `webhook_redis.rs` runs the storage-sensitive ones on
//! Redis, and stops a Redis under a webhook.

mod webhook_support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use webhook_support::{
    APP_SECRET, Harness, VERIFY_TOKEN, WEBHOOK_MAX_BODY_BYTES, api, customer_id, phone_number_id, random_hex,
    signed, status_update, telegram, text_message, wamid, webhook, whatsapp_body,
};

fn texts(events: &[hermes_state::store::StreamEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.event["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_correctly_signed_payload_delivered_three_times_is_stored_once() {
    let app = Harness::embedded().await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let body = whatsapp_body(&[(&number, text_message(&wamid(), "hello"))]);

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            app.send(signed("/webhook/whatsapp", body.clone(), APP_SECRET))
                .await
                .status,
        );
    }

    assert_eq!(statuses, [StatusCode::OK; 3]);
    let inbox = app.inbox(&acme).await;
    assert_eq!(texts(&inbox), ["hello"]);
    let event = &inbox[0].event;
    assert_eq!(event["type"], "message");
    assert_eq!(event["platform"], "whatsapp");
    assert_eq!(event["account"], number.as_str());
    assert_eq!(event["from"], "16505551234");
    assert!(event["receivedAt"].is_string());
    let metrics = app.metrics();
    assert!(
        metrics.contains(r#"hermes_webhook_events_total{platform="whatsapp",outcome="stored"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"hermes_webhook_events_total{platform="whatsapp",outcome="duplicate"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_payload_with_one_byte_changed_is_rejected_and_nothing_is_stored() {
    let app = Harness::embedded().await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let body = whatsapp_body(&[(&number, text_message(&wamid(), "hello"))]);
    let signature = hermes_server::webhook::signature::meta_signature(APP_SECRET.as_bytes(), &body);
    let mut changed = body.clone();
    let at = changed
        .iter()
        .position(|b| *b == b'h')
        .expect("the text has an h");
    changed[at] = b'j';

    let answer = app
        .send(webhook("/webhook/whatsapp", changed, Some(signature)))
        .await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["error"]["code"], "signature_invalid");
    assert!(app.inbox(&acme).await.is_empty());
    assert!(
        app.metrics()
            .contains(r#"hermes_webhook_events_total{platform="whatsapp",outcome="rejected"} 1"#)
    );
}

#[tokio::test]
async fn one_post_for_two_customers_numbers_lands_in_each_customers_own_inbox_and_nowhere_else() {
    let app = Harness::embedded().await;
    let (acme, beta, bystander) = (customer_id(), customer_id(), customer_id());
    let (acme_number, beta_number) = (phone_number_id(), phone_number_id());
    for (customer, number) in [(&acme, &acme_number), (&beta, &beta_number)] {
        app.customer(customer, None).await;
        app.connect_whatsapp(customer, number, None).await;
    }
    app.customer(&bystander, None).await;
    app.connect_whatsapp(&bystander, &phone_number_id(), None).await;
    let body = whatsapp_body(&[
        (&acme_number, text_message(&wamid(), "for acme")),
        (&beta_number, text_message(&wamid(), "for beta")),
    ]);

    let answer = app.send(signed("/webhook/whatsapp", body, APP_SECRET)).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(texts(&app.inbox(&acme).await), ["for acme"]);
    assert_eq!(texts(&app.inbox(&beta).await), ["for beta"]);
    assert!(app.inbox(&bystander).await.is_empty());
}

#[tokio::test]
async fn an_event_for_a_number_no_customer_owns_is_counted_and_answered_200() {
    let app = Harness::embedded().await;
    let body = whatsapp_body(&[(&phone_number_id(), text_message(&wamid(), "lost"))]);

    let answer = app.send(signed("/webhook/whatsapp", body, APP_SECRET)).await;

    assert_eq!(answer.status, StatusCode::OK, "Meta would retry it in vain");
    assert!(
        app.metrics()
            .contains(r#"hermes_webhook_events_total{platform="whatsapp",outcome="unroutable"} 1"#)
    );
}

#[tokio::test]
async fn the_subscription_handshake_echoes_the_challenge_only_for_the_verify_token() {
    let app = Harness::embedded().await;
    let handshake = |query: &str| {
        Request::builder()
            .uri(format!("/webhook/whatsapp?{query}"))
            .header("host", "localhost")
            .body(Body::empty())
            .expect("valid request")
    };

    let accepted = app
        .send(handshake(&format!(
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
        )))
        .await;
    let wrong_token = app
        .send(handshake(
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess",
        ))
        .await;
    let wrong_mode = app
        .send(handshake(&format!(
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}"
        )))
        .await;
    let nothing = app.send(handshake("")).await;
    let instagram = app
        .send(
            Request::builder()
                .uri(format!(
                    "/webhook/instagram?hub.mode=subscribe&hub.challenge=abc&hub.verify_token={VERIFY_TOKEN}"
                ))
                .header("host", "localhost")
                .body(Body::empty())
                .expect("valid request"),
        )
        .await;

    assert_eq!(
        (accepted.status, accepted.text.as_str()),
        (StatusCode::OK, "1158201444")
    );
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong_mode.status, StatusCode::FORBIDDEN);
    assert_eq!(nothing.status, StatusCode::FORBIDDEN);
    assert_eq!(
        (instagram.status, instagram.text.as_str()),
        (StatusCode::OK, "abc")
    );
}

#[tokio::test]
async fn a_tenants_own_app_secret_verifies_its_own_numbers_and_no_one_elses() {
    let app = Harness::embedded().await;
    let (own_app, other) = (customer_id(), customer_id());
    let (own_number, other_number) = (phone_number_id(), phone_number_id());
    let tenant_secret = format!("tenant-secret-{}", random_hex());
    app.customer(&own_app, None).await;
    app.connect_whatsapp(&own_app, &own_number, Some(&tenant_secret))
        .await;
    app.customer(&other, None).await;
    app.connect_whatsapp(&other, &other_number, None).await;

    let own = whatsapp_body(&[(&own_number, text_message(&wamid(), "via my app"))]);
    let own_answer = app.send(signed("/webhook/whatsapp", own, &tenant_secret)).await;

    let mixed = whatsapp_body(&[
        (&own_number, text_message(&wamid(), "mine again")),
        (&other_number, text_message(&wamid(), "forged for the other")),
    ]);
    let mixed_answer = app.send(signed("/webhook/whatsapp", mixed, &tenant_secret)).await;

    let only_other = whatsapp_body(&[(&other_number, text_message(&wamid(), "forged"))]);
    let only_other_answer = app
        .send(signed("/webhook/whatsapp", only_other, &tenant_secret))
        .await;

    assert_eq!(own_answer.status, StatusCode::OK);
    assert_eq!(mixed_answer.status, StatusCode::OK);
    assert_eq!(only_other_answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(texts(&app.inbox(&own_app).await), ["via my app", "mine again"]);
    assert!(
        app.inbox(&other).await.is_empty(),
        "a tenant's app cannot write into another inbox"
    );
    assert!(
        app.metrics()
            .contains(r#"hermes_webhook_events_total{platform="whatsapp",outcome="refused"} 1"#)
    );
}

#[tokio::test]
async fn statuses_are_stored_once_per_status_and_joined_to_the_sent_message_id() {
    let app = Harness::embedded().await;
    let (acme, number) = (customer_id(), phone_number_id());
    let key = app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let sent = wamid();

    for status in ["sent", "delivered", "delivered", "read", "delivered"] {
        let body = whatsapp_body(&[(&number, status_update(&sent, status))]);
        let answer = app.send(signed("/webhook/whatsapp", body, APP_SECRET)).await;
        assert_eq!(answer.status, StatusCode::OK);
    }

    let statuses: Vec<Value> = app
        .inbox(&acme)
        .await
        .into_iter()
        .map(|e| e.event["status"].clone())
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);
    let latest = app
        .send(api(
            Method::GET,
            &format!("/api/messages/{sent}/status"),
            &key,
            None,
        ))
        .await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(latest.body["messageId"], sent.as_str());
    assert_eq!(latest.body["latest"]["status"], "read");
    let tool = app
        .send(api(
            Method::POST,
            "/api/tools/inbox_list",
            &key,
            Some(json!({ "messageIds": [sent, "wamid.unknown"], "limit": 1 })),
        ))
        .await;
    assert_eq!(tool.status, StatusCode::OK, "{}", tool.text);
    let structured = &tool.body["structured"];
    assert_eq!(structured["statuses"][0]["latest"]["status"], "read");
    assert!(structured["statuses"][1].get("latest").is_none());
    assert_eq!(structured["events"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_message_from_a_username_user_keeps_its_bsuid() {
    let app = Harness::embedded().await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let value = json!({
        "contacts": [{ "profile": { "name": "Ana" }, "user_id": "US.13491208655302741918" }],
        "messages": [{ "from_user_id": "US.13491208655302741918", "id": wamid(), "type": "text", "text": { "body": "hola" } }],
    });

    let answer = app
        .send(signed(
            "/webhook/whatsapp",
            whatsapp_body(&[(&number, value)]),
            APP_SECRET,
        ))
        .await;

    assert_eq!(answer.status, StatusCode::OK);
    let inbox = app.inbox(&acme).await;
    assert_eq!(inbox[0].event["fromUserId"], "US.13491208655302741918");
    assert!(inbox[0].event.get("from").is_none());
}

#[tokio::test]
async fn instagram_messages_are_stored_and_echoes_of_our_own_sends_are_not() {
    let app = Harness::embedded().await;
    let (acme, account) = (customer_id(), format!("1784{}", rand::random::<u32>()));
    app.customer(&acme, None).await;
    app.connect_instagram(&acme, &account).await;
    let body = json!({
        "object": "instagram",
        "entry": [{ "id": account, "time": 1, "messaging": [
            { "sender": { "id": "IGSID-1" }, "recipient": { "id": account }, "timestamp": 1,
              "message": { "mid": format!("mid.{}", random_hex()), "text": "hi from ig" } },
            { "sender": { "id": account }, "recipient": { "id": "IGSID-1" }, "timestamp": 2,
              "message": { "mid": format!("mid.{}", random_hex()), "text": "our reply", "is_echo": true } },
        ] }],
    })
    .to_string()
    .into_bytes();

    let answer = app.send(signed("/webhook/instagram", body, APP_SECRET)).await;

    assert_eq!(answer.status, StatusCode::OK);
    let inbox = app.inbox(&acme).await;
    assert_eq!(texts(&inbox), ["hi from ig"]);
    assert_eq!(inbox[0].event["platform"], "instagram");
    assert!(
        app.metrics()
            .contains(r#"hermes_webhook_events_total{platform="instagram",outcome="skipped"} 1"#)
    );
}

#[tokio::test]
async fn a_telegram_update_with_the_connections_token_is_stored_once_per_update_id() {
    let app = Harness::embedded().await;
    let acme = customer_id();
    app.customer(&acme, None).await;
    let token = format!("tok_{}", random_hex());
    let connection = app
        .connect_telegram(&acme, &format!("bot-{}", random_hex()), &token)
        .await;
    let update = json!({
        "update_id": 700001,
        "message": { "message_id": 5, "date": 1700000000, "chat": { "id": 42, "type": "private" },
                     "from": { "id": 42, "is_bot": false, "first_name": "A" }, "text": "hi bot" },
    })
    .to_string()
    .into_bytes();

    let first = app
        .send(telegram(&connection, update.clone(), Some(&token)))
        .await;
    let again = app.send(telegram(&connection, update, Some(&token))).await;

    assert_eq!((first.status, again.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        first.text, "",
        "an empty answer: Telegram reads a JSON body as a method call"
    );
    let inbox = app.inbox(&acme).await;
    assert_eq!(texts(&inbox), ["hi bot"]);
    assert_eq!(inbox[0].event["account"], connection.as_str());
    assert_eq!(inbox[0].event["chatId"], "42");
}

#[tokio::test]
async fn a_telegram_update_with_a_wrong_or_missing_token_is_refused_and_not_stored() {
    let app = Harness::embedded().await;
    let acme = customer_id();
    app.customer(&acme, None).await;
    let token = format!("tok_{}", random_hex());
    let connection = app
        .connect_telegram(&acme, &format!("bot-{}", random_hex()), &token)
        .await;
    let update = json!({ "update_id": 1, "message": { "message_id": 1, "chat": { "id": 1 }, "text": "x" } })
        .to_string()
        .into_bytes();

    let wrong = app
        .send(telegram(&connection, update.clone(), Some("tok_guess")))
        .await;
    let missing = app.send(telegram(&connection, update.clone(), None)).await;
    let unknown = app.send(telegram("tests.nobody", update, Some(&token))).await;

    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"]["code"], "secret_token_invalid");
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(app.inbox(&acme).await.is_empty());
}

#[tokio::test]
async fn bad_webhook_input_gets_a_named_4xx_and_never_a_5xx() {
    let app = Harness::embedded().await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let token = format!("tok_{}", random_hex());
    let bot = app
        .connect_telegram(&acme, &format!("bot-{}", random_hex()), &token)
        .await;

    let body = |value: Value| value.to_string().into_bytes();
    let whatsapp = "/webhook/whatsapp";
    let oversized = vec![b' '; WEBHOOK_MAX_BODY_BYTES + 1];
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "not JSON",
            signed(whatsapp, b"{\"object\":".to_vec(), APP_SECRET),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "not an object",
            signed(whatsapp, b"[1,2]".to_vec(), APP_SECRET),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            "unknown object",
            signed(
                whatsapp,
                body(json!({ "object": "page", "entry": [] })),
                APP_SECRET,
            ),
            StatusCode::BAD_REQUEST,
            "unexpected_object",
        ),
        (
            "entry of the wrong type",
            signed(
                whatsapp,
                body(json!({ "object": "whatsapp_business_account", "entry": "x" })),
                APP_SECRET,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            "a message without an id",
            signed(
                whatsapp,
                whatsapp_body(&[(&number, json!({ "messages": [{ "from": "1" }] }))]),
                APP_SECRET,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            "a change without metadata",
            signed(
                whatsapp,
                body(
                    json!({ "object": "whatsapp_business_account", "entry": [{ "changes": [{ "field": "messages", "value": {} }] }] }),
                ),
                APP_SECRET,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            "instagram object on the whatsapp route",
            signed(
                whatsapp,
                body(json!({ "object": "instagram", "entry": [] })),
                APP_SECRET,
            ),
            StatusCode::BAD_REQUEST,
            "unexpected_object",
        ),
        (
            "over the limit",
            signed(whatsapp, oversized, APP_SECRET),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "no signature",
            webhook(
                whatsapp,
                whatsapp_body(&[(&number, text_message(&wamid(), "x"))]),
                None,
            ),
            StatusCode::UNAUTHORIZED,
            "signature_missing",
        ),
        (
            "a signature that is not sha256 hex",
            webhook(
                whatsapp,
                whatsapp_body(&[(&number, text_message(&wamid(), "x"))]),
                Some("sha256=nothex".into()),
            ),
            StatusCode::UNAUTHORIZED,
            "signature_malformed",
        ),
        (
            "signed with another secret",
            signed(
                whatsapp,
                whatsapp_body(&[(&number, text_message(&wamid(), "x"))]),
                "guess",
            ),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
        (
            "an empty body",
            signed(whatsapp, Vec::new(), APP_SECRET),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "telegram: not JSON",
            telegram(&bot, b"update".to_vec(), Some(&token)),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "telegram: no update_id",
            telegram(&bot, body(json!({ "message": {} })), Some(&token)),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            "telegram: a connection id with a slash",
            telegram("a%2Fb", body(json!({ "update_id": 1 })), Some(&token)),
            StatusCode::NOT_FOUND,
            "unknown_connection",
        ),
        (
            "telegram: over the limit",
            telegram(&bot, vec![b' '; WEBHOOK_MAX_BODY_BYTES + 1], Some(&token)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];

    for (case, request, status, code) in cases {
        let answer = app.send(request).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        assert_eq!(answer.body["error"]["code"], code, "{case}");
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{case}: the error is named");
    }
    assert!(
        app.inbox(&acme).await.is_empty(),
        "nothing of a refused webhook is stored"
    );
}

#[tokio::test]
async fn a_body_between_the_api_limit_and_the_webhook_limit_is_accepted_on_webhooks_only() {
    let app = Harness::embedded().await;
    let (acme, number) = (customer_id(), phone_number_id());
    let key = app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let long_text = "x".repeat(100 * 1024);
    let body = whatsapp_body(&[(&number, text_message(&wamid(), &long_text))]);
    assert!(body.len() > app.state.settings.max_body_bytes);

    let webhook_answer = app
        .send(signed("/webhook/whatsapp", body.clone(), APP_SECRET))
        .await;
    let api_answer = app
        .send(api(
            Method::POST,
            "/api/tools/connections_status",
            &key,
            Some(json!({ "pad": long_text })),
        ))
        .await;

    assert_eq!(webhook_answer.status, StatusCode::OK);
    assert_eq!(api_answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.inbox(&acme).await.len(), 1);
}

#[tokio::test]
async fn the_inbox_is_listed_by_platform_and_cursor_for_its_customer_only() {
    let app = Harness::embedded().await;
    let (acme, beta, number) = (customer_id(), customer_id(), phone_number_id());
    let key = app.customer(&acme, None).await;
    let beta_key = app.customer(&beta, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    let token = format!("tok_{}", random_hex());
    let bot = app
        .connect_telegram(&acme, &format!("bot-{}", random_hex()), &token)
        .await;
    for n in 0..3 {
        let body = whatsapp_body(&[(&number, text_message(&wamid(), &format!("wa {n}")))]);
        app.send(signed("/webhook/whatsapp", body, APP_SECRET)).await;
        let update = json!({ "update_id": n, "message": { "message_id": n, "chat": { "id": 1 }, "text": format!("tg {n}") } });
        app.send(telegram(&bot, update.to_string().into_bytes(), Some(&token)))
            .await;
    }

    let first = app
        .send(api(
            Method::GET,
            "/api/inbox?platform=whatsapp&limit=2",
            &key,
            None,
        ))
        .await;
    let next = first.body["next"].as_str().expect("a cursor").to_owned();
    let second = app
        .send(api(
            Method::GET,
            &format!("/api/inbox?platform=whatsapp&after={next}"),
            &key,
            None,
        ))
        .await;
    let all = app.send(api(Method::GET, "/api/inbox", &key, None)).await;
    let others = app.send(api(Method::GET, "/api/inbox", &beta_key, None)).await;
    let bad_platform = app
        .send(api(Method::GET, "/api/inbox?platform=fax", &key, None))
        .await;
    let bad_cursor = app
        .send(api(Method::GET, "/api/inbox?after=yesterday", &key, None))
        .await;

    let texts_of = |answer: &webhook_support::Answer| -> Vec<String> {
        answer.body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["event"]["text"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(texts_of(&first), ["wa 0", "wa 1"]);
    assert_eq!(texts_of(&second), ["wa 2"]);
    assert_eq!(texts_of(&all).len(), 6);
    assert!(texts_of(&others).is_empty());
    assert_eq!(bad_platform.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_cursor.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_inbox_list_tool_is_read_only_and_offered_to_every_customer() {
    let app = Harness::embedded().await;
    let acme = customer_id();
    let key = app.customer(&acme, None).await;

    let tools = app.send(api(Method::GET, "/api/tools", &key, None)).await;
    let listed = app
        .send(api(Method::POST, "/api/tools/inbox_list", &key, Some(json!({}))))
        .await;
    let refused = app
        .send(api(
            Method::POST,
            "/api/tools/inbox_list",
            &key,
            Some(json!({ "limit": 0 })),
        ))
        .await;

    let inbox_list = tools.body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|tool| tool["name"] == "inbox_list")
        .expect("inbox_list is offered without any connection");
    assert_eq!(inbox_list["annotations"]["readOnlyHint"], true);
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["isError"], false);
    assert_eq!(listed.body["structured"]["events"], json!([]));
    assert_eq!(refused.body["isError"], true);
    assert_eq!(refused.body["structured"]["error"]["field"], "limit");
}
