//! What the reconciler tests run against: a mocked API server (the
//! tower-test pattern of kube-rs/controller-rs), a store that records its
//! writes and can be made to fail, SQLite in a temporary directory, and a
//! log buffer.
//!
//! A test drives the mock by hand: it asks for the next request the
//! reconcile makes, asserts its method, path and body, and answers it.
//! Anything the reconcile sends that the test did not expect fails the
//! test, and so does a request that does not come within a second.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::{Customer, CustomerSpec, Platform, PlatformConnection, PlatformConnectionSpec};
use hermes_state::sql::SqlRepo;
use hermes_state::store::{
    Appended, AuditEntry, AuditPage, AuditQuery, ConnectionState, CustomerSummary, DeadLetter, DeliveryJob,
    DeliveryTarget, EmbeddedStore, InboundEvent, RateDecision, RateLimit, Route, RouteClaim, Store,
    StoreError, StreamEvent, StreamKind, UsageCounters,
};
use hermes_state::vault::{Envelope, Keyring};
use hermes_state::{ApiKeyHash, CustomerId};
use http::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::client::Body;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde_json::{Value, json};
use tempfile::TempDir;
use tower_test::mock::{Handle, SendResponse};

use crate::backoff::Backoff;
use crate::context::Context;
use crate::metrics::Metrics;
use crate::telegram::Webhooks;

/// The namespace every test object lives in.
pub const NAMESPACE: &str = "team-a";

/// The keyring of the tests: `k1`, primary.
pub const KEY_K1: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A second key, for rotation: `k2`.
pub const KEY_K2: &str = "k2:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

/// How long the mock waits for a request the test expects.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the mock waits to be sure no further request comes.
const QUIET_PERIOD: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// The store

/// A [`Store`] that forwards every method to another, records the name of
/// every write, and fails every call while [`fail`](Self::fail) is set.
///
/// Every method of [`Store`] is forwarded, including those with a default
/// body: a default would fail where the inner store succeeds.
pub struct RecordingStore {
    inner: Arc<dyn Store>,
    writes: Mutex<Vec<&'static str>>,
    failing: AtomicBool,
    before: Mutex<Option<(&'static str, Hook)>>,
}

/// Something to do right before a given write reaches the store.
pub type Hook = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

impl std::fmt::Debug for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingStore")
            .field("inner", &self.inner)
            .field("writes", &self.writes())
            .finish_non_exhaustive()
    }
}

impl RecordingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            writes: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
            before: Mutex::new(None),
        }
    }

    /// Runs `hook` once, right before the next write called `name`.
    pub fn before_write(&self, name: &'static str, hook: Hook) {
        *self.before.lock().expect("the hook slot is never poisoned") = Some((name, hook));
    }

    /// The writes so far, oldest first.
    pub fn writes(&self) -> Vec<&'static str> {
        self.writes
            .lock()
            .expect("the write log is never poisoned")
            .clone()
    }

    /// Forgets the writes so far.
    pub fn clear_writes(&self) {
        self.writes
            .lock()
            .expect("the write log is never poisoned")
            .clear();
    }

    /// Makes every following call fail (or succeed again).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("injected failure".into()));
        }
        Ok(())
    }

    async fn write(&self, name: &'static str) -> Result<(), StoreError> {
        let hook = {
            let mut slot = self.before.lock().expect("the hook slot is never poisoned");
            match slot.take() {
                Some((wanted, hook)) if wanted == name => Some(hook),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(hook) = hook {
            hook().await;
        }
        self.check()?;
        self.writes
            .lock()
            .expect("the write log is never poisoned")
            .push(name);
        Ok(())
    }
}

#[async_trait]
impl Store for RecordingStore {
    async fn put_credentials(&self, c: &CustomerId, p: Platform, e: &Envelope) -> Result<(), StoreError> {
        self.write("put_credentials").await?;
        self.inner.put_credentials(c, p, e).await
    }
    async fn get_credentials(&self, c: &CustomerId, p: Platform) -> Result<Option<Envelope>, StoreError> {
        self.check()?;
        self.inner.get_credentials(c, p).await
    }
    async fn delete_credentials(&self, c: &CustomerId, p: Platform) -> Result<bool, StoreError> {
        self.write("delete_credentials").await?;
        self.inner.delete_credentials(c, p).await
    }
    async fn put_connection_state(&self, c: &CustomerId, s: &ConnectionState) -> Result<(), StoreError> {
        self.write("put_connection_state").await?;
        self.inner.put_connection_state(c, s).await
    }
    async fn connection_states(&self, c: &CustomerId) -> Result<Vec<ConnectionState>, StoreError> {
        self.check()?;
        self.inner.connection_states(c).await
    }
    async fn delete_connection_state(&self, c: &CustomerId, p: Platform) -> Result<(), StoreError> {
        self.write("delete_connection_state").await?;
        self.inner.delete_connection_state(c, p).await
    }
    async fn claim_route(&self, r: &Route, c: &CustomerId) -> Result<RouteClaim, StoreError> {
        self.write("claim_route").await?;
        self.inner.claim_route(r, c).await
    }
    async fn route_owner(&self, r: &Route) -> Result<Option<CustomerId>, StoreError> {
        self.check()?;
        self.inner.route_owner(r).await
    }
    async fn release_route(&self, r: &Route, c: &CustomerId) -> Result<bool, StoreError> {
        self.write("release_route").await?;
        self.inner.release_route(r, c).await
    }
    async fn put_api_key(&self, h: &ApiKeyHash, s: &CustomerSummary) -> Result<(), StoreError> {
        self.write("put_api_key").await?;
        self.inner.put_api_key(h, s).await
    }
    async fn get_api_key(&self, h: &ApiKeyHash) -> Result<Option<CustomerSummary>, StoreError> {
        self.check()?;
        self.inner.get_api_key(h).await
    }
    async fn delete_api_key(&self, h: &ApiKeyHash) -> Result<(), StoreError> {
        self.write("delete_api_key").await?;
        self.inner.delete_api_key(h).await
    }
    async fn append_audit(&self, c: &CustomerId, e: &AuditEntry) -> Result<(), StoreError> {
        self.write("append_audit").await?;
        self.inner.append_audit(c, e).await
    }
    async fn read_audit(&self, c: &CustomerId, q: &AuditQuery) -> Result<AuditPage, StoreError> {
        self.check()?;
        self.inner.read_audit(c, q).await
    }
    async fn incr_usage(&self, c: &CustomerId, p: &str, n: &str, by: u64) -> Result<u64, StoreError> {
        self.write("incr_usage").await?;
        self.inner.incr_usage(c, p, n, by).await
    }
    async fn usage(&self, c: &CustomerId, p: &str) -> Result<UsageCounters, StoreError> {
        self.check()?;
        self.inner.usage(c, p).await
    }
    async fn check_rate(&self, c: &CustomerId, l: RateLimit) -> Result<RateDecision, StoreError> {
        self.write("check_rate").await?;
        self.inner.check_rate(c, l).await
    }
    async fn append_event(
        &self,
        k: StreamKind,
        c: &CustomerId,
        e: &Value,
        max_len: usize,
    ) -> Result<String, StoreError> {
        self.write("append_event").await?;
        self.inner.append_event(k, c, e, max_len).await
    }
    async fn read_events(
        &self,
        k: StreamKind,
        c: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamEvent>, StoreError> {
        self.check()?;
        self.inner.read_events(k, c, after, limit).await
    }
    async fn append_inbound(
        &self,
        c: &CustomerId,
        i: &InboundEvent,
        max_len: usize,
    ) -> Result<Appended, StoreError> {
        self.write("append_inbound").await?;
        self.inner.append_inbound(c, i, max_len).await
    }
    async fn message_status(&self, c: &CustomerId, m: &str) -> Result<Option<Value>, StoreError> {
        self.check()?;
        self.inner.message_status(c, m).await
    }
    async fn put_delivery_target(&self, c: &CustomerId, t: &DeliveryTarget) -> Result<(), StoreError> {
        self.write("put_delivery_target").await?;
        self.inner.put_delivery_target(c, t).await
    }
    async fn get_delivery_target(&self, c: &CustomerId) -> Result<Option<DeliveryTarget>, StoreError> {
        self.check()?;
        self.inner.get_delivery_target(c).await
    }
    async fn delete_delivery_target(&self, c: &CustomerId) -> Result<bool, StoreError> {
        self.write("delete_delivery_target").await?;
        self.inner.delete_delivery_target(c).await
    }
    async fn delivery_customers(&self) -> Result<Vec<CustomerId>, StoreError> {
        self.check()?;
        self.inner.delivery_customers().await
    }
    async fn claim_deliveries(
        &self,
        c: &CustomerId,
        consumer: &str,
        claim_timeout: Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        self.write("claim_deliveries").await?;
        self.inner
            .claim_deliveries(c, consumer, claim_timeout, limit)
            .await
    }
    async fn complete_delivery(&self, c: &CustomerId, job_id: &str) -> Result<bool, StoreError> {
        self.write("complete_delivery").await?;
        self.inner.complete_delivery(c, job_id).await
    }
    async fn retry_delivery(
        &self,
        c: &CustomerId,
        j: &DeliveryJob,
        delay: Duration,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.write("retry_delivery").await?;
        self.inner.retry_delivery(c, j, delay, error).await
    }
    async fn dead_letter_delivery(
        &self,
        c: &CustomerId,
        j: &DeliveryJob,
        error: &str,
    ) -> Result<Option<String>, StoreError> {
        self.write("dead_letter_delivery").await?;
        self.inner.dead_letter_delivery(c, j, error).await
    }
    async fn dead_letters(
        &self,
        c: &CustomerId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.check()?;
        self.inner.dead_letters(c, after, limit).await
    }
    async fn replay_dead_letter(&self, c: &CustomerId, id: &str) -> Result<bool, StoreError> {
        self.write("replay_dead_letter").await?;
        self.inner.replay_dead_letter(c, id).await
    }
    async fn purge_customer(&self, c: &CustomerId) -> Result<u64, StoreError> {
        self.write("purge_customer").await?;
        self.inner.purge_customer(c).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
}

// ---------------------------------------------------------------------------
// The API server

/// The test's end of the mocked API server.
pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    /// How long to wait for an expected request; a second unless a test
    /// waits on something slower than the reconcile itself (a Redis outage).
    pub patience: Duration,
    /// Every request the reconciles sent, as path and body, for the
    /// no-secret-leaks checks.
    pub sent: Arc<Mutex<Vec<(String, String)>>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").finish_non_exhaustive()
    }
}

/// One request the reconcile made, waiting for its answer.
pub struct Call {
    /// The HTTP method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string, empty when there is none.
    pub query: String,
    /// The body as JSON (`null` when empty).
    pub body: Value,
    respond: SendResponse<Response<Body>>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}?{}", self.method, self.path, self.query)
    }
}

impl Call {
    /// Answers with `status` and a JSON body.
    pub fn respond(self, status: StatusCode, body: &Value) {
        let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .expect("a response with a JSON body builds");
        self.respond.send_response(response);
    }

    /// Answers 200 with `body`.
    pub fn ok(self, body: &Value) {
        self.respond(StatusCode::OK, body);
    }

    /// Answers 201 with the request's own body, as a create does.
    pub fn created_echo(self) {
        let body = self.body.clone();
        self.respond(StatusCode::CREATED, &body);
    }

    /// Answers 404 with a Kubernetes `Status`.
    pub fn not_found(self) {
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "NotFound", "code": 404,
            "message": format!("{} not found", self.path),
        });
        self.respond(StatusCode::NOT_FOUND, &body);
    }

    /// The status a status patch carries.
    pub fn status(&self) -> &Value {
        &self.body["status"]
    }
}

impl ApiServer {
    /// The bodies of every status patch and Event sent so far, an Event
    /// created or (repeated, as a series) patched.
    pub fn statuses_and_events(&self) -> Vec<String> {
        self.sent
            .lock()
            .expect("the request log is never poisoned")
            .iter()
            .filter(|(path, _)| path.ends_with("/status") || path.contains("/events"))
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// The next request, failing the test when none comes within a second.
    pub async fn next(&mut self) -> Call {
        let next = tokio::time::timeout(self.patience, self.handle.next_request()).await;
        let (request, respond) = next
            .expect("the reconcile made the expected request in time")
            .expect("the client is still connected");
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("the request body is in memory");
        self.sent
            .lock()
            .expect("the request log is never poisoned")
            .push((
                parts.uri.path().to_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("every request body is JSON")
        };
        Call {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            body,
            respond,
        }
    }

    /// The next request, asserting its method and path.
    pub async fn expect(&mut self, method: Method, path: &str) -> Call {
        let call = self.next().await;
        assert_eq!(
            (&call.method, call.path.as_str()),
            (&method, path),
            "unexpected request {call:?}"
        );
        call
    }

    /// Asserts that no further request comes.
    pub async fn expect_no_more(&mut self) {
        let next = tokio::time::timeout(QUIET_PERIOD, self.handle.next_request()).await;
        if let Ok(Some((request, _))) = next {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

/// The API path of a Customer.
pub fn customer_path(name: &str) -> String {
    format!("/apis/hermes.squaremcp.com/v1alpha1/namespaces/{NAMESPACE}/customers/{name}")
}

/// The API path of a PlatformConnection.
pub fn connection_path(name: &str) -> String {
    format!("/apis/hermes.squaremcp.com/v1alpha1/namespaces/{NAMESPACE}/platformconnections/{name}")
}

/// The API path of a Secret.
pub fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/secrets/{name}")
}

/// The API path Secrets are created at.
pub fn secrets_path() -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/secrets")
}

/// The API path Events are created at.
pub fn events_path() -> String {
    format!("/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events")
}

// ---------------------------------------------------------------------------
// The harness

/// A Context over the mocked API server, with the caches filled by hand.
pub struct Harness {
    /// The context the reconciles get.
    pub ctx: Arc<Context>,
    /// The test's end of the API server.
    pub api: ApiServer,
    /// The store, recording writes.
    pub store: Arc<RecordingStore>,
    customers: Writer<Customer>,
    connections: Writer<PlatformConnection>,
    _sqlite_dir: TempDir,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness over an empty embedded store, keyring `k1`.
    pub async fn new() -> Self {
        Self::with(Arc::new(EmbeddedStore::new()), KEY_K1, None).await
    }

    /// A harness over `store`, keyring `keys`, and Telegram webhooks when given.
    pub async fn with(store: Arc<dyn Store>, keys: &str, webhooks: Option<Webhooks>) -> Self {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, NAMESPACE);

        let dir = tempfile::tempdir().expect("a temporary directory can be made");
        let url = format!("sqlite://{}", dir.path().join("hermes.db").display());
        let sql = SqlRepo::connect(&url)
            .await
            .expect("SQLite opens in a temporary directory");

        let mut customers = reflector::store::Writer::<Customer>::default();
        let mut connections = reflector::store::Writer::<PlatformConnection>::default();
        customers.apply_watcher_event(&watcher::Event::Init);
        customers.apply_watcher_event(&watcher::Event::InitDone);
        connections.apply_watcher_event(&watcher::Event::Init);
        connections.apply_watcher_event(&watcher::Event::InitDone);

        let store = Arc::new(RecordingStore::new(store));
        let ctx = Arc::new(Context {
            recorder: Context::recorder(client.clone(), "test-replica"),
            client,
            store: store.clone(),
            sql,
            keyring: Arc::new(Keyring::parse(keys).expect("the test keyring is valid")),
            metrics: Arc::new(Metrics::default()),
            customers: customers.as_reader(),
            connections: connections.as_reader(),
            backoff: Arc::new(Backoff::default()),
            webhooks,
        });

        Self {
            ctx,
            api: ApiServer {
                handle,
                patience: REQUEST_TIMEOUT,
                sent: Arc::default(),
            },
            store,
            customers,
            connections,
            _sqlite_dir: dir,
        }
    }

    /// The same harness with another keyring, as after a restart with rotated keys.
    pub fn rotate_keyring(&mut self, keys: &str) {
        let mut ctx = (*self.ctx).clone();
        ctx.keyring = Arc::new(Keyring::parse(keys).expect("the test keyring is valid"));
        self.ctx = Arc::new(ctx);
    }

    /// Puts a Customer into the cache, as the watch would.
    pub fn cache_customer(&mut self, customer: &Customer) {
        self.customers
            .apply_watcher_event(&watcher::Event::Apply(customer.clone()));
    }

    /// Puts a PlatformConnection into the cache, as the watch would.
    pub fn cache_connection(&mut self, connection: &PlatformConnection) {
        self.connections
            .apply_watcher_event(&watcher::Event::Apply(connection.clone()));
    }
}

// ---------------------------------------------------------------------------
// Objects

/// A Customer `name` in [`NAMESPACE`], created at `created_second`, with the
/// finalizer when `finalized`.
pub fn customer(name: &str, finalized: bool) -> Customer {
    let mut customer = Customer::new(
        name,
        CustomerSpec {
            display_name: "Acme Corp".into(),
            email: "ops@acme.example".into(),
            plan: hermes_crds::Plan::Pro,
            suspended: false,
            api_key_secret_ref: None,
            delivery: None,
            limits: None,
        },
    );
    let meta = customer.meta_mut();
    meta.namespace = Some(NAMESPACE.into());
    meta.uid = Some(format!("uid-{name}"));
    meta.generation = Some(3);
    meta.resource_version = Some("100".into());
    meta.creation_timestamp = Some(Time(
        Timestamp::from_second(1_700_000_000).expect("a fixed second is a valid timestamp"),
    ));
    if finalized {
        meta.finalizers = Some(vec![hermes_crds::FINALIZER.into()]);
    }
    customer
}

/// A Customer that the Customer controller reported Ready.
pub fn ready_customer(name: &str) -> Customer {
    let mut customer = customer(name, true);
    customer.status = Some(hermes_crds::CustomerStatus {
        observed_generation: Some(3),
        conditions: vec![crate::conditions::ready(
            hermes_crds::ConditionStatus::True,
            crate::conditions::reason::READY,
            "",
            Some(3),
            Timestamp::UNIX_EPOCH,
        )],
        api_key_secret: Some(format!("{name}-api-key")),
        ..Default::default()
    });
    customer
}

/// A PlatformConnection `name` of customer `acme` in [`NAMESPACE`], from a
/// spec in JSON (camelCase, as in a manifest).
pub fn connection(name: &str, spec: Value, finalized: bool) -> PlatformConnection {
    let spec: PlatformConnectionSpec = serde_json::from_value(spec).expect("the test spec deserializes");
    let mut connection = PlatformConnection::new(name, spec);
    let meta = connection.meta_mut();
    meta.namespace = Some(NAMESPACE.into());
    meta.uid = Some(format!("uid-{name}"));
    meta.generation = Some(2);
    meta.resource_version = Some("200".into());
    meta.creation_timestamp = Some(Time(
        Timestamp::from_second(1_700_000_100).expect("a fixed second is a valid timestamp"),
    ));
    if finalized {
        meta.finalizers = Some(vec![hermes_crds::FINALIZER.into()]);
    }
    connection
}

/// A WhatsApp connection `wa` of `acme` reading Secret `wa-creds`.
pub fn whatsapp_connection(finalized: bool) -> PlatformConnection {
    connection(
        "wa",
        json!({
            "customerRef": "acme",
            "platform": "whatsapp",
            "secretRef": {"name": "wa-creds"},
            "whatsapp": {"phoneNumberId": "106540352242922", "businessAccountId": "204154009300000"},
        }),
        finalized,
    )
}

/// A Secret `name` in [`NAMESPACE`] with `fields` as its data.
pub fn secret(name: &str, fields: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            resource_version: Some("300".into()),
            ..ObjectMeta::default()
        },
        data: Some(
            fields
                .iter()
                .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// `object` as the API server would answer with it.
pub fn to_json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("resources serialize to JSON")
}

/// `object` with `finalizers` set, as JSON.
pub fn with_finalizer<T: serde::Serialize>(object: &T) -> Value {
    let mut value = to_json(object);
    value["metadata"]["finalizers"] = json!([hermes_crds::FINALIZER]);
    value
}

/// `object` with the patched status applied, as JSON.
pub fn with_status<T: serde::Serialize>(object: &T, status: &Value) -> Value {
    let mut value = to_json(object);
    value["status"] = status.clone();
    value
}

// ---------------------------------------------------------------------------
// Logs

/// A log sink that keeps everything written to it.
#[derive(Clone, Debug, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything logged so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer is never poisoned")).into_owned()
    }

    /// A subscriber logging everything, at every level, into this buffer.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(self.clone())
            .with_ansi(false)
            .finish()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("the log buffer is never poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// ---------------------------------------------------------------------------
// A real Redis

/// A `redis-server` the test started on a free port, with no automatic
/// persistence (`--save '' --appendonly no`). [`stop`](Self::stop) shuts it
/// down with an explicit `SAVE`, so a [`start`](Self::start) on the same
/// port comes back with the same data, as a restarted Redis with a volume does.
#[derive(Debug)]
pub struct RedisProcess {
    port: u16,
    dir: TempDir,
    child: Option<tokio::process::Child>,
}

impl RedisProcess {
    /// Starts a Redis, or returns `None` when `redis-server` is not
    /// installed and `HERMES_REQUIRE_SERVICES` does not insist on it.
    pub async fn start_on_free_port() -> Option<Self> {
        let installed = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        if !installed {
            assert!(
                std::env::var_os("HERMES_REQUIRE_SERVICES").is_none(),
                "redis-server is not installed and HERMES_REQUIRE_SERVICES is set"
            );
            return None;
        }

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port can be found")
            .port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().expect("a temporary directory can be made"),
            child: None,
        };
        redis.start().await;
        Some(redis)
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&mut self) {
        use tokio::io::AsyncBufReadExt;

        let port = self.port.to_string();
        let dir = self
            .dir
            .path()
            .to_str()
            .expect("temporary paths are UTF-8")
            .to_owned();
        let mut child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", &dir])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");

        // Redis logs this line once it listens; reading for it needs no polling.
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(matches!(ready, Ok(true)), "redis-server did not become ready");
        // Keep draining its output so a full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// Saves the data and shuts the server down; returns once it exited.
    pub async fn stop(&mut self) {
        let status = tokio::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "save"])
            .output()
            .await
            .expect("redis-cli runs");
        drop(status);
        if let Some(mut child) = self.child.take() {
            let _exit = child.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use hermes_state::store::StatusOf;

    use super::*;

    /// Walks one event through the inbound pipeline on a [`RecordingStore`]
    /// over an embedded store: a method left to its default body fails.
    #[tokio::test]
    async fn the_recording_store_forwards_every_inbound_method() {
        let store = RecordingStore::new(Arc::new(EmbeddedStore::new()));
        let acme = CustomerId::new("acme").expect("acme is a valid customer id");
        let keyring = Keyring::parse(KEY_K1).expect("the test keyring is valid");
        let target = DeliveryTarget {
            url: "https://hooks.acme.example/hermes".into(),
            signing_secret: keyring
                .seal(&acme, Platform::Email, b"sealed")
                .expect("the keyring seals"),
        };
        let inbound = InboundEvent {
            dedup_key: "whatsapp:status:wamid-1:read".into(),
            event: json!({"type": "status", "messageId": "wamid-1"}),
            status_of: Some(StatusOf {
                message_id: "wamid-1".into(),
                rank: 3,
            }),
        };
        let claim = Duration::from_secs(30);

        store
            .put_delivery_target(&acme, &target)
            .await
            .expect("forwarded");
        let stored = store.get_delivery_target(&acme).await.expect("forwarded");
        let customers = store.delivery_customers().await.expect("forwarded");
        let appended = store
            .append_inbound(&acme, &inbound, 100)
            .await
            .expect("forwarded");
        let status = store.message_status(&acme, "wamid-1").await.expect("forwarded");
        let first = store
            .claim_deliveries(&acme, "worker-1", claim, 10)
            .await
            .expect("forwarded");
        let dead = store
            .dead_letter_delivery(&acme, &first[0], "endpoint answered 500")
            .await
            .expect("forwarded")
            .expect("the delivery was claimed");
        let letters = store.dead_letters(&acme, None, 10).await.expect("forwarded");
        let replayed = store.replay_dead_letter(&acme, &dead).await.expect("forwarded");
        let second = store
            .claim_deliveries(&acme, "worker-1", claim, 10)
            .await
            .expect("forwarded");
        let retried = store
            .retry_delivery(&acme, &second[0], Duration::ZERO, "timed out")
            .await
            .expect("forwarded");
        let third = store
            .claim_deliveries(&acme, "worker-1", claim, 10)
            .await
            .expect("forwarded");
        let completed = store
            .complete_delivery(&acme, &third[0].id)
            .await
            .expect("forwarded");
        let deleted = store.delete_delivery_target(&acme).await.expect("forwarded");

        assert_eq!(stored, Some(target));
        assert_eq!(customers, vec![acme.clone()]);
        assert!(!appended.is_duplicate());
        assert!(status.is_some());
        assert_eq!(letters.len(), 1);
        assert!(replayed && retried && completed && deleted);
        assert_eq!(third[0].attempt, 1);
        assert_eq!(
            store.writes(),
            [
                "put_delivery_target",
                "append_inbound",
                "claim_deliveries",
                "dead_letter_delivery",
                "replay_dead_letter",
                "claim_deliveries",
                "retry_delivery",
                "claim_deliveries",
                "complete_delivery",
                "delete_delivery_target",
            ]
        );
    }
}
