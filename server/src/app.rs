//! What every handler shares, and the router that serves it all.
//!
//! [`AppState`] is built once per process (by `serve`, `dev` or a test) and
//! cloned into every request. [`router`] is a plain function from that state
//! to the whole HTTP surface, so tests drive it with `oneshot` and no socket.
//!
//! [`TenantAdmin`] is how `POST /api/connect/{platform}` and
//! `DELETE /api/connections/{platform}` change a tenant's connections:
//! [`KubeAdmin`] writes the Secret and PlatformConnection for the operator to
//! reconcile (the server never writes tenant configuration to the store
//! itself in a cluster); [`LocalAdmin`] applies them directly with the
//! tenancy code, for `dev` and single-user mode.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hermes_crds::{Customer, Platform, PlatformConnection, PlatformConnectionSpec};
use hermes_state::CustomerId;
use hermes_state::sql::SqlRepo;
use hermes_state::store::{Route, Store};
use hermes_state::tenancy::{self, ApplyError, SecretData, TenancyError};
use hermes_state::vault::Keyring;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Level;

use crate::auth::{self, Guard, KeyCache, RESOURCE_METADATA_PATH, Tenant};
use crate::error::{ApiError, ErrorFlavor};
use crate::meter::Meter;
use crate::ops::{self, Metrics};
use crate::tools::Registry;

/// The header carrying the request id, set when absent and echoed on the answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// How long one platform HTTP call may wait to connect.
const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one platform HTTP call may take in all; tools set tighter deadlines of their own.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared server state: cheap to clone, one per process.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Runtime state (Redis, or the embedded store in `dev` mode).
    pub store: Arc<dyn Store>,
    /// The customers table and the usage ledger.
    pub sql: SqlRepo,
    /// Opens the credentials the operator sealed.
    pub keyring: Arc<Keyring>,
    /// Every tool.
    pub registry: Registry,
    /// The one HTTP client every platform call goes through (shared pool, timeouts).
    pub http: reqwest::Client,
    /// Settings read at start.
    pub settings: Arc<Settings>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Resolved API keys, briefly.
    pub keys: KeyCache,
    /// Usage not yet written to the SQL ledger.
    pub meter: Arc<Meter>,
    /// Connects and disconnects the tenants' platforms.
    pub admin: Arc<dyn TenantAdmin>,
}

/// Why the shared state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The platform HTTP client could not be built (a TLS setup failure).
    #[error("building the platform HTTP client failed")]
    HttpClient(#[source] reqwest::Error),
}

impl AppState {
    /// State over the given backends, with the standard tool registry, a
    /// fresh metrics registry and an empty key cache.
    ///
    /// # Errors
    ///
    /// [`StateError::HttpClient`] when the HTTP client cannot be built.
    pub fn new(
        store: Arc<dyn Store>,
        sql: SqlRepo,
        keyring: Arc<Keyring>,
        settings: Settings,
        admin: Arc<dyn TenantAdmin>,
    ) -> Result<Self, StateError> {
        Ok(Self {
            store,
            sql,
            keyring,
            registry: Registry::standard(),
            http: http_client()?,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::new()),
            keys: KeyCache::new(),
            meter: Arc::new(Meter::new()),
            admin,
        })
    }
}

/// The shared platform HTTP client: one pool, bounded waits, rustls over ring.
fn http_client() -> Result<reqwest::Client, StateError> {
    // reqwest is built without a crypto provider; install ring's, which kube
    // also uses. A second install (another state in the same process) is a
    // no-op that reports the provider already there.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(HTTP_CONNECT_TIMEOUT)
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("hermes/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(StateError::HttpClient)
}

/// Settings of a running server that handlers read.
#[derive(Clone, Default)]
pub struct Settings {
    /// The API base URL of each platform, e.g. `https://graph.facebook.com` for WhatsApp.
    /// A connection's own `apiBase` overrides it. Platforms without one use their defaults.
    pub api_bases: BTreeMap<Platform, String>,
    /// The Graph API version in request paths, e.g. `v27.0`.
    pub graph_api_version: String,
    /// `Host` header values `/mcp` accepts.
    pub allowed_hosts: Vec<String>,
    /// `Origin` header values `/mcp` accepts; empty accepts requests without an Origin only.
    pub allowed_origins: Vec<String>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The public base URL of this deployment, when known.
    pub public_url: Option<String>,
    /// The Meta app secret webhook signatures are verified with.
    pub meta_app_secret: Option<String>,
    /// The token Meta's webhook verification handshake must echo.
    pub meta_verify_token: Option<String>,
    /// Webhook body limit, inbox length and delivery to the customers' endpoints.
    pub inbound: crate::webhook::InboundSettings,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |value: &Option<String>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field("api_bases", &self.api_bases)
            .field("graph_api_version", &self.graph_api_version)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("public_url", &self.public_url)
            .field("meta_app_secret", &redacted(&self.meta_app_secret))
            .field("meta_verify_token", &redacted(&self.meta_verify_token))
            .field("inbound", &self.inbound)
            .finish()
    }
}

// --- the router ---

/// The whole HTTP surface: MCP, REST, webhooks, OpenAPI, OAuth metadata and ops routes.
///
/// Middleware, outermost first: panics become a JSON 500; a request id is
/// set (`x-request-id`, kept when the client sent one) and echoed; a span per
/// request carries the request id and, once authenticated, the customer id;
/// every answer is counted in metrics; bodies over the limit (the webhook
/// limit on `/webhook/…`) are refused with 413 before they are read. `/api`
/// and `/mcp` then authenticate and rate limit ([`auth::guard`]).
pub fn router(state: AppState) -> Router {
    let guard = |flavor| {
        middleware::from_fn_with_state(
            Guard {
                app: state.clone(),
                flavor,
            },
            auth::guard,
        )
    };

    let api = crate::rest::router().route_layer(guard(ErrorFlavor::Rest));
    let mcp = crate::mcp::router(state.clone()).route_layer(guard(ErrorFlavor::JsonRpc));

    let open = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(crate::rest::openapi_json))
        .route(RESOURCE_METADATA_PATH, get(protected_resource_metadata))
        .route(
            &format!("{RESOURCE_METADATA_PATH}/mcp"),
            get(protected_resource_metadata),
        );

    let webhooks = crate::webhook::router(&state);

    let max_body_bytes = state.settings.max_body_bytes;
    let limits = BodyLimits {
        general: max_body_bytes,
        webhooks: state.settings.inbound.max_body_bytes,
    };
    open.merge(api)
        .merge(webhooks)
        .with_state(state.clone())
        .merge(mcp)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(limits, refuse_oversized))
        .layer(middleware::from_fn_with_state(state, ops::track_http))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(tower_http::trace::DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(tower_http::trace::DefaultOnResponse::new().level(Level::DEBUG))
                // Failures are logged once, where they happen, not again here.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(drop_unusable_request_id))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// The span of one request: method, path, request id, and the customer id
/// once [`auth::guard`] knows it. Info level, so warnings inside carry it.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let request_id = request_id(request.headers());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        customer_id = tracing::field::Empty,
    )
}

/// The request id of a request, as set by the request-id middleware.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The longest client-sent request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a client-sent request id that is too long or has characters other
/// than `[A-Za-z0-9._:-]`, so a fresh one is generated: the id lands in logs
/// and audit entries, which a client must not fill with text of its choice.
async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
    let usable = request.headers().get(REQUEST_ID_HEADER).map(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    });
    if usable == Some(false) {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

/// The body limits: webhooks carry their own (Meta's payloads reach 3 MB).
#[derive(Clone, Copy, Debug)]
struct BodyLimits {
    general: usize,
    webhooks: usize,
}

/// Refuses a body whose declared length is over the limit, before reading it.
async fn refuse_oversized(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let limit = if request.uri().path().starts_with(crate::webhook::PATH_PREFIX) {
        limits.webhooks
    } else {
        limits.general
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    // A body that knows its length (hyper's, from `Content-Length`) says so here too.
    let known = axum::body::HttpBody::size_hint(request.body()).lower();
    if declared.is_some_and(|length| length > limit as u64) || known > limit as u64 {
        let flavor = ErrorFlavor::for_path(request.uri().path());
        return ApiError::PayloadTooLarge.into_response_as(flavor);
    }
    next.run(request).await
}

async fn not_found(request: Request) -> Response {
    ApiError::NotFound.into_response_as(ErrorFlavor::for_path(request.uri().path()))
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::MethodNotAllowed.into_response_as(ErrorFlavor::for_path(request.uri().path()))
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal.into_response()
}

/// `GET /.well-known/oauth-protected-resource`: RFC 9728 metadata for `/mcp`.
///
/// Hermes authenticates with API keys the operator issues, sent as Bearer
/// tokens; there is no OAuth authorization server to list, so
/// `authorization_servers` is empty and clients use a configured key.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-protected-resource",
    tag = "ops",
    responses((status = 200, description = "OAuth 2.0 protected resource metadata (RFC 9728)", body = Object))
)]
pub async fn protected_resource_metadata(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let base = auth::public_base(&app, &headers);
    axum::Json(json!({
        "resource": format!("{base}/mcp"),
        "resource_name": "Hermes",
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "resource_documentation": format!("{base}/openapi.json"),
    }))
    .into_response()
}

// --- tenant administration ---

/// A request to connect one platform for a tenant, as REST received it.
#[derive(Debug)]
pub struct ConnectRequest {
    /// The platform.
    pub platform: Platform,
    /// The platform's non-secret settings block, e.g. `{"phoneNumberId": …}`.
    pub settings: serde_json::Value,
    /// True for a sandbox connection.
    pub sandbox: bool,
    /// An override of the platform's API base URL.
    pub api_base: Option<String>,
    /// The secret fields.
    pub secrets: SecretData,
}

/// What a connect or disconnect did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// The change is in the store already.
    Applied,
    /// The change is declared; the operator will reconcile it. Poll `/api/connections`.
    Accepted,
}

/// Why a connect or disconnect failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request does not make a valid connection; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The platform account is connected by another customer.
    #[error("this {0} account is already connected by another customer")]
    AccountTaken(Platform),
    /// The tenant has no connection on the platform.
    #[error("{0} is not connected")]
    NotConnected(Platform),
    /// The connection is declared elsewhere (GitOps, kubectl) and not managed through the API.
    #[error("the {0} connection is managed outside the API")]
    ManagedElsewhere(Platform),
    /// The backend (store, Kubernetes API) could not complete the change.
    #[error("the change could not be made now")]
    Unavailable,
    /// This deployment has no way to change connections (no Kubernetes API).
    #[error("this deployment cannot change connections through the API")]
    Unsupported,
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(message) => ApiError::InvalidBody(message),
            AdminError::AccountTaken(platform) => ApiError::AccountTaken(platform),
            AdminError::NotConnected(platform) => ApiError::NotConnected(platform),
            AdminError::ManagedElsewhere(platform) => ApiError::ConnectionManagedElsewhere(platform),
            AdminError::Unavailable => ApiError::Unavailable,
            AdminError::Unsupported => ApiError::ManagementUnavailable,
        }
    }
}

/// Connects and disconnects a tenant's platforms.
#[async_trait]
pub trait TenantAdmin: Send + Sync + fmt::Debug + 'static {
    /// Creates or replaces the tenant's connection on `request.platform`.
    async fn connect(&self, tenant: &Tenant, request: ConnectRequest) -> Result<AdminOutcome, AdminError>;

    /// Removes the tenant's connection on `platform`.
    async fn disconnect(&self, tenant: &Tenant, platform: Platform) -> Result<AdminOutcome, AdminError>;
}

/// The name of the PlatformConnection (and its Secret) the API manages for a tenant's platform.
pub fn connection_name(customer: &CustomerId, platform: Platform) -> String {
    format!("{customer}-{platform}")
}

/// The name of the Secret holding the secret fields of an API-managed
/// connection; the prefix keeps it clear of Secrets declared by hand.
pub fn secret_name(customer: &CustomerId, platform: Platform) -> String {
    format!("hermes-api-{customer}-{platform}")
}

/// The label marking resources the API created, so it only ever deletes its own.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hermes-server");

/// Builds the PlatformConnection a connect request declares, in the Customer's namespace.
fn declared_connection(
    customer: &Customer,
    request: &ConnectRequest,
) -> Result<PlatformConnection, AdminError> {
    let customer_id = customer.metadata.name.clone().unwrap_or_default();
    let id = CustomerId::new(customer_id.clone()).map_err(|_| AdminError::Unavailable)?;
    let name = connection_name(&id, request.platform);

    let mut spec = json!({
        "customerRef": customer_id,
        "platform": request.platform,
        "sandbox": request.sandbox,
        "secretRef": { "name": secret_name(&id, request.platform) },
    });
    if let Some(object) = spec.as_object_mut() {
        object.insert(request.platform.as_str().to_owned(), request.settings.clone());
        if let Some(api_base) = &request.api_base {
            object.insert("apiBase".into(), json!(api_base));
        }
    }
    let spec: PlatformConnectionSpec = serde_json::from_value(spec)
        .map_err(|e| AdminError::Invalid(format!("settings: {}", settings_error(&e, request.platform))))?;

    let mut connection = PlatformConnection::new(&name, spec);
    connection.metadata.namespace = customer.metadata.namespace.clone();
    connection.metadata.labels = Some(BTreeMap::from([(
        MANAGED_BY.0.to_owned(),
        MANAGED_BY.1.to_owned(),
    )]));
    Ok(connection)
}

/// A settings deserialization error, reworded to name the settings block.
fn settings_error(error: &serde_json::Error, platform: Platform) -> String {
    format!("{error} (in the {platform} settings block)")
}

/// The message of a tenancy refusal, for the API caller. Tenancy messages
/// name fields, never values.
fn invalid(error: &TenancyError) -> AdminError {
    AdminError::Invalid(error.to_string())
}

fn apply_failed(error: &ApplyError, platform: Platform) -> AdminError {
    match error {
        ApplyError::RouteConflict { .. } | ApplyError::ApiKeyConflict { .. } => {
            AdminError::AccountTaken(platform)
        }
        ApplyError::Credentials(e) => invalid(e),
        other => {
            tracing::warn!(error = %other, %platform, "applying a connection failed");
            AdminError::Unavailable
        }
    }
}

/// Applies connections directly to the store, with the tenancy code the
/// operator uses: `dev` mode and single-user mode, where no operator runs.
#[derive(Debug)]
pub struct LocalAdmin {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    customers: Mutex<HashMap<CustomerId, Customer>>,
    routes: Mutex<HashMap<(CustomerId, Platform), Vec<Route>>>,
}

impl LocalAdmin {
    /// An admin over `store`, sealing with `keyring`, knowing no customer yet.
    pub fn new(store: Arc<dyn Store>, keyring: Arc<Keyring>) -> Self {
        Self {
            store,
            keyring,
            customers: Mutex::default(),
            routes: Mutex::default(),
        }
    }

    /// Makes a Customer known, so its connections can be applied.
    pub fn add_customer(&self, id: CustomerId, customer: Customer) {
        self.customers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, customer);
    }

    /// Writes (or removes) a Customer's inbound delivery target, as the
    /// operator does: `secret` is the Secret its
    /// `spec.delivery.signingSecretRef` names, if it exists.
    ///
    /// # Errors
    ///
    /// [`tenancy::DeliveryError`] naming what is wrong with the delivery, or a store failure.
    pub async fn apply_delivery(
        &self,
        customer: &Customer,
        secret: Option<&SecretData>,
    ) -> Result<(), tenancy::DeliveryError> {
        let plan = tenancy::plan_delivery(customer, secret)?;
        let id = CustomerId::new(customer.metadata.name.clone().unwrap_or_default())?;
        tenancy::apply_delivery(self.store.as_ref(), &self.keyring, &id, plan.as_ref()).await
    }

    fn customer(&self, id: &CustomerId) -> Option<Customer> {
        self.customers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Plans and applies one PlatformConnection of a known Customer, releasing
    /// the routes a previous version of it claimed.
    ///
    /// # Errors
    ///
    /// [`ApplyError::Credentials`] for an invalid connection, or a store failure.
    pub async fn apply(
        &self,
        customer: &Customer,
        connection: &PlatformConnection,
        secret: Option<&SecretData>,
    ) -> Result<(), ApplyError> {
        let plan = tenancy::plan_connection(customer, connection, secret)?;
        let key = (plan.customer.clone(), plan.platform);
        let previous = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned()
            .unwrap_or_default();

        let applied = tenancy::apply_connection(self.store.as_ref(), &self.keyring, &plan, &previous).await?;

        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, applied.routes);
        Ok(())
    }
}

#[async_trait]
impl TenantAdmin for LocalAdmin {
    async fn connect(&self, tenant: &Tenant, request: ConnectRequest) -> Result<AdminOutcome, AdminError> {
        let customer = self.customer(&tenant.id).ok_or_else(|| {
            tracing::warn!("an authenticated customer has no Customer resource here");
            AdminError::Unavailable
        })?;
        let connection = declared_connection(&customer, &request)?;

        self.apply(&customer, &connection, Some(&request.secrets))
            .await
            .map_err(|e| apply_failed(&e, request.platform))?;
        Ok(AdminOutcome::Applied)
    }

    async fn disconnect(&self, tenant: &Tenant, platform: Platform) -> Result<AdminOutcome, AdminError> {
        let states = self.store.connection_states(&tenant.id).await.map_err(|e| {
            tracing::warn!(error = %e, "reading connection states failed");
            AdminError::Unavailable
        })?;
        if !states.iter().any(|state| state.platform == platform) {
            return Err(AdminError::NotConnected(platform));
        }

        let key = (tenant.id.clone(), platform);
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned()
            .unwrap_or_default();
        tenancy::remove_connection(self.store.as_ref(), &tenant.id, platform, &routes)
            .await
            .map_err(|e| apply_failed(&e, platform))?;

        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        Ok(AdminOutcome::Applied)
    }
}

/// Declares connections through the Kubernetes API, in the tenant's
/// namespace: a Secret with the secret fields and a PlatformConnection
/// naming it, both labelled as managed by `hermes-server`. The operator
/// reconciles them like any other; the answer is 202 and the caller polls
/// `GET /api/connections`.
///
/// Needs RBAC to list Customers cluster-wide, to get, list, create, update
/// and delete PlatformConnections, and to create, update and delete Secrets
/// (`manifests/rbac-server.yaml`).
#[derive(Clone)]
pub struct KubeAdmin {
    client: kube::Client,
}

impl fmt::Debug for KubeAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeAdmin").finish_non_exhaustive()
    }
}

impl KubeAdmin {
    /// An admin over a Kubernetes client.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// The tenant's Customer resource, found by name across namespaces.
    async fn customer(&self, id: &CustomerId) -> Result<Customer, AdminError> {
        let customers: Api<Customer> = Api::all(self.client.clone());
        let found = customers
            .list(&ListParams::default().fields(&format!("metadata.name={id}")))
            .await
            .map_err(kube_failed)?;
        found.items.into_iter().next().ok_or_else(|| {
            tracing::warn!("an authenticated customer has no Customer resource");
            AdminError::Unavailable
        })
    }

    /// The tenant's existing PlatformConnection on `platform`, whatever its name.
    async fn existing(
        &self,
        namespace: &str,
        id: &CustomerId,
        platform: Platform,
    ) -> Result<Option<PlatformConnection>, AdminError> {
        let connections: Api<PlatformConnection> = Api::namespaced(self.client.clone(), namespace);
        let list = connections
            .list(&ListParams::default())
            .await
            .map_err(kube_failed)?;
        Ok(list
            .items
            .into_iter()
            .find(|c| c.spec.customer_ref == id.as_str() && c.spec.platform == platform))
    }
}

fn is_ours(metadata: &ObjectMeta) -> bool {
    metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY.0))
        .is_some_and(|value| value == MANAGED_BY.1)
}

fn kube_failed(error: kube::Error) -> AdminError {
    tracing::warn!(error = %error, "kubernetes api call failed");
    AdminError::Unavailable
}

#[async_trait]
impl TenantAdmin for KubeAdmin {
    async fn connect(&self, tenant: &Tenant, request: ConnectRequest) -> Result<AdminOutcome, AdminError> {
        let customer = self.customer(&tenant.id).await?;
        let namespace = customer
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let connection = declared_connection(&customer, &request)?;
        tenancy::plan_connection(&customer, &connection, Some(&request.secrets)).map_err(|e| invalid(&e))?;

        if let Some(existing) = self.existing(&namespace, &tenant.id, request.platform).await?
            && !is_ours(&existing.metadata)
        {
            return Err(AdminError::ManagedElsewhere(request.platform));
        }

        let name = connection_name(&tenant.id, request.platform);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(secret_name(&tenant.id, request.platform)),
                namespace: Some(namespace.clone()),
                labels: connection.metadata.labels.clone(),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            string_data: Some(
                request
                    .secrets
                    .keys()
                    .filter_map(|key| {
                        request
                            .secrets
                            .get(key)
                            .map(|value| (key.to_owned(), value.to_owned()))
                    })
                    .collect(),
            ),
            ..Secret::default()
        };

        // Create, or replace what the API created before. Secrets accept an
        // unconditional replace; a PlatformConnection is replaced at the
        // version read, and only when it is ours.
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let secret_name = secret_name(&tenant.id, request.platform);
                secrets
                    .replace(&secret_name, &PostParams::default(), &secret)
                    .await
                    .map_err(kube_failed)?;
            }
            Err(e) => return Err(kube_failed(e)),
        }

        let connections: Api<PlatformConnection> = Api::namespaced(self.client.clone(), &namespace);
        match connections.create(&PostParams::default(), &connection).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let current = connections.get(&name).await.map_err(kube_failed)?;
                if !is_ours(&current.metadata) {
                    return Err(AdminError::ManagedElsewhere(request.platform));
                }
                let mut replacement = connection;
                replacement.metadata.resource_version = current.metadata.resource_version;
                connections
                    .replace(&name, &PostParams::default(), &replacement)
                    .await
                    .map_err(kube_failed)?;
            }
            Err(e) => return Err(kube_failed(e)),
        }
        Ok(AdminOutcome::Accepted)
    }

    async fn disconnect(&self, tenant: &Tenant, platform: Platform) -> Result<AdminOutcome, AdminError> {
        let customer = self.customer(&tenant.id).await?;
        let namespace = customer
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let existing = self
            .existing(&namespace, &tenant.id, platform)
            .await?
            .ok_or(AdminError::NotConnected(platform))?;
        if !is_ours(&existing.metadata) {
            return Err(AdminError::ManagedElsewhere(platform));
        }
        let name = existing.metadata.name.clone().unwrap_or_default();

        let connections: Api<PlatformConnection> = Api::namespaced(self.client.clone(), &namespace);
        connections
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(kube_failed)?;

        // The operator's finalizer removes the stored state; the Secret is ours to delete.
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        match secrets
            .delete(&secret_name(&tenant.id, platform), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => return Err(kube_failed(e)),
        }
        Ok(AdminOutcome::Accepted)
    }
}

/// The admin of a deployment without the Kubernetes API: every change is refused.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAdmin;

#[async_trait]
impl TenantAdmin for NoAdmin {
    async fn connect(&self, _tenant: &Tenant, _request: ConnectRequest) -> Result<AdminOutcome, AdminError> {
        Err(AdminError::Unsupported)
    }

    async fn disconnect(&self, _tenant: &Tenant, _platform: Platform) -> Result<AdminOutcome, AdminError> {
        Err(AdminError::Unsupported)
    }
}

/// The status a connect or disconnect answers with.
pub fn outcome_status(outcome: &AdminOutcome) -> StatusCode {
    match outcome {
        AdminOutcome::Applied => StatusCode::OK,
        AdminOutcome::Accepted => StatusCode::ACCEPTED,
    }
}
