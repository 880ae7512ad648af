//! Authentication: an API key becomes a [`Tenant`].
//!
//! A key arrives as `Authorization: Bearer <key>` or `x-api-key: <key>`. Only
//! its SHA-256 ([`ApiKeyHash`]) is ever looked up, in three places, fastest
//! first:
//!
//! 1. [`KeyCache`], in process: [`KEY_CACHE_CAPACITY`] entries for
//!    [`KEY_CACHE_TTL`] (unknown keys for [`UNKNOWN_KEY_TTL`]). A suspension
//!    or a revoked key therefore takes effect within that TTL on every
//!    replica.
//! 2. The store's API-key index (`customer:apikey:<hash>`), which the operator writes.
//! 3. SQL's `customers` table, the durable copy; a hit there is written back
//!    to the store's index, so a flushed Redis heals itself.
//!
//! [`guard`] is the middleware that runs this on `/api` and `/mcp`, then the
//! per-minute rate limit, and puts the [`Tenant`] into the request's
//! extensions. The key itself is never logged.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use hermes_crds::Plan;
use hermes_state::store::CustomerSummary;
use hermes_state::{ApiKeyHash, CustomerId};
use moka::Expiry;

use crate::app::AppState;
use crate::error::{ApiError, ErrorFlavor};
use crate::meter;

/// How many API keys the in-process cache holds.
pub const KEY_CACHE_CAPACITY: u64 = 10_000;

/// How long a resolved key is trusted without asking the store again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

/// How long an unknown key is remembered as unknown; short, so a key created
/// right after a failed attempt works soon.
pub const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(5);

/// The longest API key accepted; anything longer is malformed, not looked up.
const MAX_KEY_LEN: usize = 512;

/// The path of the OAuth protected resource metadata (RFC 9728).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The authenticated customer of a request, inserted into the request's
/// extensions by the authentication middleware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The customer id.
    pub id: CustomerId,
    /// The customer's plan.
    pub plan: Plan,
    /// Per-customer override of the plan's requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Per-customer override of the plan's monthly tool calls.
    pub tool_calls_per_month: Option<u64>,
}

impl From<CustomerSummary> for Tenant {
    fn from(summary: CustomerSummary) -> Self {
        Self {
            id: summary.id,
            plan: summary.plan,
            requests_per_minute: summary.requests_per_minute,
            tool_calls_per_month: summary.tool_calls_per_month,
        }
    }
}

/// Expires known keys after [`KEY_CACHE_TTL`] and unknown ones after [`UNKNOWN_KEY_TTL`].
#[derive(Debug)]
struct KeyExpiry;

impl Expiry<ApiKeyHash, Option<CustomerSummary>> for KeyExpiry {
    fn expire_after_create(
        &self,
        _key: &ApiKeyHash,
        value: &Option<CustomerSummary>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_some() {
            KEY_CACHE_TTL
        } else {
            UNKNOWN_KEY_TTL
        })
    }
}

/// The in-process cache of resolved API keys.
#[derive(Clone, Debug)]
pub struct KeyCache {
    entries: moka::sync::Cache<ApiKeyHash, Option<CustomerSummary>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyCache {
    /// An empty cache of [`KEY_CACHE_CAPACITY`] entries.
    pub fn new() -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(KEY_CACHE_CAPACITY)
                .expire_after(KeyExpiry)
                .build(),
        }
    }

    /// Forgets every cached key, so the next request of each asks the store.
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}

/// The API key a request presents, if any.
///
/// `Authorization` wins over `x-api-key` when both are present. A header that
/// is present but unusable is an error, never silently ignored.
pub fn presented_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::MalformedApiKey("Authorization is not visible ASCII"))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or(ApiError::MalformedApiKey("Authorization must be `Bearer <key>`"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::MalformedApiKey(
                "Authorization must use the Bearer scheme",
            ));
        }
        return checked_key(token.trim());
    }

    if let Some(value) = headers.get("x-api-key") {
        let value = value
            .to_str()
            .map_err(|_| ApiError::MalformedApiKey("x-api-key is not visible ASCII"))?;
        return checked_key(value.trim());
    }

    Err(ApiError::MissingApiKey)
}

fn checked_key(key: &str) -> Result<&str, ApiError> {
    if key.is_empty() {
        return Err(ApiError::MalformedApiKey("the API key is empty"));
    }
    if key.len() > MAX_KEY_LEN || key.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(ApiError::MalformedApiKey(
            "the API key must be at most 512 visible ASCII characters",
        ));
    }
    Ok(key)
}

/// Resolves the API key of a request to its tenant.
///
/// # Errors
///
/// [`ApiError::MissingApiKey`], [`ApiError::MalformedApiKey`] and
/// [`ApiError::UnknownApiKey`] answer 401; [`ApiError::Suspended`] answers
/// 403; [`ApiError::Unavailable`] when neither the store nor SQL can answer.
pub async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<Tenant, ApiError> {
    let key = presented_key(headers)?;
    let hash = ApiKeyHash::of(key);

    let summary = match app.keys.entries.get(&hash) {
        Some(cached) => cached,
        None => {
            let resolved = resolve(app, &hash).await?;
            app.keys.entries.insert(hash, resolved.clone());
            resolved
        }
    };

    let summary = summary.ok_or(ApiError::UnknownApiKey)?;
    if !summary.active {
        return Err(ApiError::Suspended);
    }
    Ok(Tenant::from(summary))
}

/// Looks a key hash up in the store's index, then in SQL.
async fn resolve(app: &AppState, hash: &ApiKeyHash) -> Result<Option<CustomerSummary>, ApiError> {
    let store_answered = match app.store.get_api_key(hash).await {
        Ok(Some(summary)) => return Ok(Some(summary)),
        Ok(None) => true,
        Err(e) => {
            tracing::warn!(error = %e, "api key index unavailable; asking sql");
            false
        }
    };

    let record = app.sql.customer_by_key_hash(hash).await.map_err(|e| {
        tracing::warn!(error = %e, "customers table unavailable");
        ApiError::Unavailable
    })?;
    let summary = record.map(|record| CustomerSummary {
        id: record.id,
        plan: record.plan,
        active: record.active,
        requests_per_minute: record.requests_per_minute,
        tool_calls_per_month: record.tool_calls_per_month,
    });

    if let (Some(summary), true) = (&summary, store_answered) {
        // Heal the index; failing to is harmless, the next miss tries again.
        if let Err(e) = app.store.put_api_key(hash, summary).await {
            tracing::debug!(error = %e, "could not repopulate the api key index");
        }
    }
    Ok(summary)
}

/// What the `/api` and `/mcp` guards need: the app and how to word errors.
#[derive(Clone, Debug)]
pub struct Guard {
    /// The shared state.
    pub app: AppState,
    /// The body format of refusals.
    pub flavor: ErrorFlavor,
}

/// Middleware: authenticates, records the customer on the request span,
/// takes the request from the rate limit, and hands the [`Tenant`] on.
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let tenant = match authenticate(&guard.app, request.headers()).await {
        Ok(tenant) => tenant,
        Err(e) => return refusal(&guard, request.headers(), e),
    };
    tracing::Span::current().record("customer_id", tenant.id.as_str());

    if let Err(e) = meter::admit_request(&guard.app, &tenant).await {
        return refusal(&guard, request.headers(), e);
    }

    request.extensions_mut().insert(tenant);
    next.run(request).await
}

/// The answer to a refused request; a 401 names where to learn how to authenticate.
fn refusal(guard: &Guard, headers: &HeaderMap, error: ApiError) -> Response {
    tracing::debug!(error = %error, "request refused");
    let unauthorized = error.classify().status == axum::http::StatusCode::UNAUTHORIZED;
    let mut response = error.into_response_as(guard.flavor);
    if unauthorized {
        let metadata = format!("{}{RESOURCE_METADATA_PATH}", public_base(&guard.app, headers));
        let challenge = format!("Bearer resource_metadata=\"{metadata}\"");
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// The public base URL of this deployment: `HERMES_PUBLIC_URL` when set,
/// else `http://<Host>` of the request (local and test deployments).
pub fn public_base(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &app.settings.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        .unwrap_or("localhost");
    format!("http://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
                HeaderValue::from_str(value).expect("valid header value"),
            );
        }
        map
    }

    #[test]
    fn a_bearer_token_is_the_key() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer k-1")])),
            Ok("k-1")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer k-1")])),
            Ok("k-1")
        );
    }

    #[test]
    fn an_x_api_key_header_is_the_key() {
        assert_eq!(presented_key(&headers(&[("x-api-key", "k-2")])), Ok("k-2"));
    }

    #[test]
    fn authorization_wins_over_x_api_key() {
        let both = headers(&[("authorization", "Bearer a"), ("x-api-key", "b")]);
        assert_eq!(presented_key(&both), Ok("a"));
    }

    #[test]
    fn no_header_is_a_missing_key() {
        assert_eq!(presented_key(&HeaderMap::new()), Err(ApiError::MissingApiKey));
    }

    #[test]
    fn other_schemes_and_empty_keys_are_malformed() {
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc"] {
            let map = headers(&[("authorization", value)]);
            let result = presented_key(&map);
            assert!(
                matches!(result, Err(ApiError::MalformedApiKey(_))),
                "{value}: {result:?}"
            );
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        let map = headers(&[("x-api-key", &long)]);
        let result = presented_key(&map);
        assert!(matches!(result, Err(ApiError::MalformedApiKey(_))));
    }
}
