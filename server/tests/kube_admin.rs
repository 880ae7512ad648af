//! `KubeAdmin`'s wire contract with the Kubernetes API, against a mocked
//! API server: which requests a connect and a disconnect make, in order.

mod common;

use std::time::Duration;

use axum::http::{Method, Request, Response, StatusCode};
use common::customer_resource;
use hermes_crds::{Plan, Platform};
use hermes_server::app::{AdminError, AdminOutcome, ConnectRequest, KubeAdmin, TenantAdmin};
use hermes_server::auth::Tenant;
use hermes_state::CustomerId;
use hermes_state::tenancy::SecretData;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::Handle;

/// How long the mocked API server waits for the next request.
const PATIENCE: Duration = Duration::from_secs(5);

type ApiServer = Handle<Request<Body>, Response<Body>>;

fn acme() -> Tenant {
    Tenant {
        id: CustomerId::new("acme").expect("valid id"),
        plan: Plan::Pro,
        requests_per_minute: None,
        tool_calls_per_month: None,
    }
}

fn admin() -> (KubeAdmin, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (KubeAdmin::new(kube::Client::new(service, "default")), handle)
}

/// Expects the next request, checks its method and path, answers `answer`
/// (the request's own body when `answer` is null, as a create does); returns the request body.
async fn expect(api: &mut ApiServer, method: Method, path: &str, status: StatusCode, answer: Value) -> Value {
    let (request, respond) = tokio::time::timeout(PATIENCE, api.next_request())
        .await
        .unwrap_or_else(|_| panic!("no {method} {path} arrived"))
        .expect("the client is alive");
    assert_eq!(request.method(), method);
    assert_eq!(request.uri().path(), path);
    let body = request.into_body().collect_bytes().await.expect("the body reads");
    let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = if answer.is_null() { sent.clone() } else { answer };
    respond.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(answer.to_string().into_bytes()))
            .expect("valid response"),
    );
    sent
}

fn customer_list() -> Value {
    let mut customer = serde_json::to_value(customer_resource("acme", Plan::Pro, Default::default(), false))
        .expect("a Customer serializes");
    customer["metadata"]["namespace"] = json!("tenants");
    json!({ "apiVersion": "hermes.squaremcp.com/v1alpha1", "kind": "CustomerList", "metadata": {}, "items": [customer] })
}

fn connection_list(items: Vec<Value>) -> Value {
    json!({ "apiVersion": "hermes.squaremcp.com/v1alpha1", "kind": "PlatformConnectionList", "metadata": {}, "items": items })
}

#[tokio::test]
async fn connect_creates_a_secret_then_a_connection_in_the_customers_namespace() {
    let (admin, mut api) = admin();
    let mut secrets = SecretData::new();
    secrets.insert("accessToken", "token-value");
    let request = ConnectRequest {
        platform: Platform::Whatsapp,
        settings: json!({ "phoneNumberId": "106540352242922", "businessAccountId": "1" }),
        sandbox: false,
        api_base: None,
        secrets,
    };

    let server = tokio::spawn(async move {
        expect(
            &mut api,
            Method::GET,
            "/apis/hermes.squaremcp.com/v1alpha1/customers",
            StatusCode::OK,
            customer_list(),
        )
        .await;
        expect(
            &mut api,
            Method::GET,
            "/apis/hermes.squaremcp.com/v1alpha1/namespaces/tenants/platformconnections",
            StatusCode::OK,
            connection_list(vec![]),
        )
        .await;
        let secret = expect(
            &mut api,
            Method::POST,
            "/api/v1/namespaces/tenants/secrets",
            StatusCode::CREATED,
            json!({}),
        )
        .await;
        let connection = expect(
            &mut api,
            Method::POST,
            "/apis/hermes.squaremcp.com/v1alpha1/namespaces/tenants/platformconnections",
            StatusCode::CREATED,
            Value::Null,
        )
        .await;
        (secret, connection)
    });

    let outcome = admin.connect(&acme(), request).await;
    let (secret, connection) = server.await.expect("the api server task finishes");

    assert_eq!(outcome.expect("connect is accepted"), AdminOutcome::Accepted);
    assert_eq!(secret["metadata"]["name"], "hermes-api-acme-whatsapp");
    assert_eq!(secret["stringData"]["accessToken"], "token-value");
    assert_eq!(connection["metadata"]["name"], "acme-whatsapp");
    assert_eq!(connection["spec"]["customerRef"], "acme");
    assert_eq!(
        connection["spec"]["secretRef"]["name"],
        "hermes-api-acme-whatsapp"
    );
    assert_eq!(
        connection["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "hermes-server"
    );
}

#[tokio::test]
async fn an_invalid_connect_is_refused_before_anything_is_written() {
    let (admin, mut api) = admin();
    let request = ConnectRequest {
        platform: Platform::Whatsapp,
        settings: json!({ "phoneNumberId": "106540352242922", "businessAccountId": "1" }),
        sandbox: false,
        api_base: None,
        secrets: SecretData::new(),
    };

    let server = tokio::spawn(async move {
        expect(
            &mut api,
            Method::GET,
            "/apis/hermes.squaremcp.com/v1alpha1/customers",
            StatusCode::OK,
            customer_list(),
        )
        .await;
        api
    });

    let outcome = admin.connect(&acme(), request).await;
    let mut api = server.await.expect("the api server task finishes");

    let Err(AdminError::Invalid(message)) = outcome else {
        panic!("expected a validation error, got {outcome:?}");
    };
    assert!(message.contains("accessToken"), "{message}");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), api.next_request())
            .await
            .is_err(),
        "nothing is written"
    );
}

#[tokio::test]
async fn a_connection_declared_elsewhere_is_not_deleted_through_the_api() {
    let (admin, mut api) = admin();
    let declared = json!({
        "apiVersion": "hermes.squaremcp.com/v1alpha1",
        "kind": "PlatformConnection",
        "metadata": { "name": "acme-whatsapp", "namespace": "tenants" },
        "spec": { "customerRef": "acme", "platform": "whatsapp", "sandbox": true,
                  "whatsapp": { "phoneNumberId": "1", "businessAccountId": "2" } },
    });

    let server = tokio::spawn(async move {
        expect(
            &mut api,
            Method::GET,
            "/apis/hermes.squaremcp.com/v1alpha1/customers",
            StatusCode::OK,
            customer_list(),
        )
        .await;
        expect(
            &mut api,
            Method::GET,
            "/apis/hermes.squaremcp.com/v1alpha1/namespaces/tenants/platformconnections",
            StatusCode::OK,
            connection_list(vec![declared]),
        )
        .await;
    });

    let outcome = admin.disconnect(&acme(), Platform::Whatsapp).await;
    server.await.expect("the api server task finishes");

    assert!(
        matches!(outcome, Err(AdminError::ManagedElsewhere(Platform::Whatsapp))),
        "{outcome:?}"
    );
}
