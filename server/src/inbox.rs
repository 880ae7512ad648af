//! The inbox read back: what webhooks stored for a customer, filtered by
//! platform and paged by cursor, and the latest delivery status of the
//! messages the customer sent.
//!
//! Served twice, alike: as REST (`GET /api/inbox`,
//! `GET /api/messages/{id}/status`) and as the read-only tool
//! `inbox_list` in the shared registry.
//!
//! Statuses join on the message id: a WhatsApp status event's `messageId`
//! is the wamid `whatsapp_send_message` returned, and the store keeps, per
//! message id, the furthest status seen (`sent` < `delivered` < `read` <
//! `failed`), whatever order Meta delivered them in.

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, State};
use hermes_crds::Platform;
use hermes_state::CustomerId;
use hermes_state::store::{Store, StoreError, StreamEvent, StreamKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::error::ApiError;
use crate::rest::{ApiQuery, Caller, ErrorBody, page_size, read_failed};
use crate::tools::{
    Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured,
};

/// How many inbox events one read examines at most when filtering by
/// platform. A read that reaches it without filling its page returns what
/// it found and a `next` cursor past what it examined, so a sparse filter
/// costs several reads rather than one unbounded one.
pub const SCAN_BUDGET: usize = 5_000;

/// How many events a read fetches from the store at a time while filtering.
const SCAN_CHUNK: usize = 500;

/// One read of an inbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboxQuery {
    /// Events after this id (a previous page's `next`); from the oldest when `None`.
    pub after: Option<String>,
    /// At most this many events (1 to the store's page limit).
    pub limit: usize,
    /// Only events of this platform.
    pub platform: Option<Platform>,
}

/// One page of an inbox, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct InboxPage {
    /// The events.
    pub events: Vec<StreamEvent>,
    /// Where the next read starts (pass as `after`): the last event
    /// examined, which may be past the last one returned when filtering.
    /// `None` when nothing after `after` was examined.
    pub next: Option<String>,
}

/// Reads a page of `customer`'s inbox.
///
/// # Errors
///
/// [`StoreError::InvalidArgument`] for an `after` that is not a stream id,
/// or a failure of the store.
pub async fn read(
    store: &dyn Store,
    customer: &CustomerId,
    query: &InboxQuery,
) -> Result<InboxPage, StoreError> {
    let limit = query.limit.max(1);
    let Some(platform) = query.platform else {
        let events = store
            .read_events(StreamKind::Inbox, customer, query.after.as_deref(), limit)
            .await?;
        let next = events.last().map(|event| event.id.clone());
        return Ok(InboxPage { events, next });
    };

    let mut events = Vec::new();
    let mut examined = 0;
    let mut last = query.after.clone();
    let mut last_examined = None;
    while examined < SCAN_BUDGET {
        let chunk = store
            .read_events(StreamKind::Inbox, customer, last.as_deref(), SCAN_CHUNK)
            .await?;
        let complete = chunk.len() < SCAN_CHUNK;
        for event in chunk {
            examined += 1;
            last_examined = Some(event.id.clone());
            if is_of(&event, platform) {
                events.push(event);
                if events.len() == limit {
                    return Ok(InboxPage {
                        events,
                        next: last_examined,
                    });
                }
            }
        }
        if complete {
            break;
        }
        last.clone_from(&last_examined);
    }
    Ok(InboxPage {
        events,
        next: last_examined,
    })
}

fn is_of(event: &StreamEvent, platform: Platform) -> bool {
    event.event.get("platform").and_then(Value::as_str) == Some(platform.as_str())
}

// --- REST ---

/// The query of `GET /api/inbox`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxParams {
    /// Events after this id (the `next` of the previous page). Default: from the oldest.
    pub after: Option<String>,
    /// At most this many events, 1 to 500. Default: 100.
    pub limit: Option<usize>,
    /// Only events of this platform, e.g. `whatsapp`.
    pub platform: Option<String>,
}

/// One inbound event.
#[derive(Debug, Serialize, ToSchema, JsonSchema)]
pub struct InboxEventView {
    /// The event's inbox id; ids increase. Deliveries carry it as `Hermes-Delivery-Id`.
    pub id: String,
    /// The event: `type` (`message`, `status`, …), `platform`, `account`,
    /// `messageId`, `from`, `text`, `status`, `receivedAt`, and the
    /// platform's own object as `raw`.
    #[schema(value_type = Object)]
    pub event: Value,
}

/// One page of the inbox, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPageView {
    /// The events.
    pub events: Vec<InboxEventView>,
    /// Pass as `after` to read on; with a platform filter it may lie past
    /// the last event shown. Absent when nothing new was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The latest status of a sent message.
#[derive(Debug, Serialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageStatusView {
    /// The message id, as the send tool returned it.
    pub message_id: String,
    /// The furthest status event received for it (`status` is `sent`,
    /// `delivered`, `read` or `failed`); absent when none arrived yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub latest: Option<Value>,
}

/// Reads the caller's inbound messages and delivery statuses.
#[utoipa::path(
    get,
    path = "/api/inbox",
    tag = "account",
    params(InboxParams),
    responses(
        (status = 200, description = "One page of inbound events", body = InboxPageView),
        (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn rest_list(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    ApiQuery(params): ApiQuery<InboxParams>,
) -> Result<Json<InboxPageView>, ApiError> {
    let limit = page_size(params.limit)?;
    let platform = match params.platform.as_deref() {
        None => None,
        Some(name) => Some(name.parse::<Platform>().map_err(|_| {
            ApiError::InvalidParameter(format!("`platform` must be one of {}", platform_names()))
        })?),
    };
    let query = InboxQuery {
        after: params.after,
        limit,
        platform,
    };

    let page = read(app.store.as_ref(), &tenant.id, &query)
        .await
        .map_err(store_failed)?;
    Ok(Json(InboxPageView {
        events: page.events.into_iter().map(view).collect(),
        next: page.next,
    }))
}

/// The latest delivery status of a message the caller sent.
#[utoipa::path(
    get,
    path = "/api/messages/{id}/status",
    tag = "account",
    params(("id" = String, Path, description = "The message id the send tool returned")),
    responses(
        (status = 200, description = "The latest status, if any arrived", body = MessageStatusView),
        (status = 401, description = "Missing, malformed or unknown API key", body = ErrorBody),
        (status = 403, description = "The customer is suspended", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "State temporarily unavailable", body = ErrorBody),
    )
)]
pub async fn rest_message_status(
    State(app): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Json<MessageStatusView>, ApiError> {
    let latest = app
        .store
        .message_status(&tenant.id, &id)
        .await
        .map_err(store_failed)?;
    Ok(Json(MessageStatusView {
        message_id: id,
        latest,
    }))
}

fn view(event: StreamEvent) -> InboxEventView {
    InboxEventView {
        id: event.id,
        event: event.event,
    }
}

fn platform_names() -> String {
    Platform::ALL.map(Platform::as_str).join(", ")
}

fn store_failed(error: StoreError) -> ApiError {
    read_failed(error, || "`after` is not an inbox id (<ms>-<seq>)".into())
}

// --- the tool ---

/// The tool's name.
pub const TOOL_NAME: &str = "inbox_list";

/// How many events `inbox_list` returns by default.
const TOOL_DEFAULT_LIMIT: usize = 20;

/// The most events `inbox_list` returns at once.
const TOOL_MAX_LIMIT: usize = 100;

/// The most message ids one `inbox_list` call asks statuses for.
const TOOL_MAX_MESSAGE_IDS: usize = 50;

/// The arguments of `inbox_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboxListArgs {
    /// Only events after this id: the `next` of a previous call. Default: from the oldest kept.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many events, 1 to 100. Default: 20.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<usize>,
    /// Only events of this platform.
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Also report the latest delivery status of these sent messages (the
    /// `messageId`s send tools returned), at most 50.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub message_ids: Vec<String>,
}

/// What `inbox_list` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxListing {
    /// Inbound messages and delivery statuses, oldest first.
    pub events: Vec<InboxEventView>,
    /// Pass as `after` to read on; absent when nothing new was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The latest status of each message asked for in `messageIds`, in that order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<MessageStatusView>,
}

/// `inbox_list`.
#[derive(Debug)]
pub struct InboxList {
    spec: ToolSpec,
}

impl InboxList {
    /// The tool, with its schemas generated from [`InboxListArgs`] and [`InboxListing`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: TOOL_NAME,
                title: "Inbox",
                description: "Lists inbound messages and delivery statuses the customer's connected platforms \
                              sent to Hermes (WhatsApp, Instagram, Telegram), oldest first. Pass `next` back as \
                              `after` to read only what is new; filter by `platform`; pass `messageIds` (ids \
                              returned by send tools) to learn whether those messages were delivered or read.",
                platform: None,
                input_schema: schema_of::<InboxListArgs>(),
                output_schema: Some(schema_of::<InboxListing>()),
                annotations: Annotations {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                    open_world: false,
                },
            },
        }
    }
}

impl Default for InboxList {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for InboxList {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: InboxListArgs = parse_args(args)?;
        let limit = args.limit.unwrap_or(TOOL_DEFAULT_LIMIT);
        if !(1..=TOOL_MAX_LIMIT).contains(&limit) {
            return Err(invalid(
                "limit",
                format!("must be between 1 and {TOOL_MAX_LIMIT}"),
            ));
        }
        if args.message_ids.len() > TOOL_MAX_MESSAGE_IDS {
            return Err(invalid(
                "messageIds",
                format!("at most {TOOL_MAX_MESSAGE_IDS} ids"),
            ));
        }

        let store = cx.app.store.as_ref();
        let customer = &cx.tenant.id;
        let query = InboxQuery {
            after: args.after,
            limit,
            platform: args.platform,
        };
        let page = read(store, customer, &query).await.map_err(|error| match error {
            StoreError::InvalidArgument(_) => {
                invalid("after", "is not an id a previous call returned".into())
            }
            StoreError::Backend(_) | StoreError::Corrupt { .. } => {
                tracing::warn!(%error, "reading the inbox failed");
                ToolError::Internal
            }
        })?;

        let mut statuses = Vec::with_capacity(args.message_ids.len());
        for message_id in args.message_ids {
            let latest = store
                .message_status(customer, &message_id)
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "reading a message status failed");
                    ToolError::Internal
                })?;
            statuses.push(MessageStatusView { message_id, latest });
        }

        to_structured(&InboxListing {
            events: page.events.into_iter().map(view).collect(),
            next: page.next,
            statuses,
        })
    }
}

fn invalid(field: &str, message: String) -> ToolError {
    ToolError::InvalidArgument {
        field: field.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use hermes_state::store::{EmbeddedStore, InboundEvent};
    use serde_json::json;

    use super::*;

    async fn inbox_of(platforms: &[&str]) -> (EmbeddedStore, CustomerId) {
        let store = EmbeddedStore::new();
        let customer = CustomerId::new("acme").expect("a valid id");
        for (n, platform) in platforms.iter().enumerate() {
            let inbound = InboundEvent {
                dedup_key: format!("k{n}"),
                event: json!({ "type": "message", "platform": platform, "n": n }),
                status_of: None,
            };
            store
                .append_inbound(&customer, &inbound, 100_000)
                .await
                .expect("append works");
        }
        (store, customer)
    }

    fn numbers(page: &InboxPage) -> Vec<i64> {
        page.events.iter().filter_map(|e| e.event["n"].as_i64()).collect()
    }

    #[tokio::test]
    async fn a_platform_filter_pages_through_the_matching_events_only() {
        let (store, acme) = inbox_of(&["whatsapp", "telegram", "whatsapp", "instagram", "whatsapp"]).await;
        let mut query = InboxQuery {
            after: None,
            limit: 2,
            platform: Some(Platform::Whatsapp),
        };

        let first = read(&store, &acme, &query).await.expect("read works");
        query.after.clone_from(&first.next);
        let second = read(&store, &acme, &query).await.expect("read works");
        query.after.clone_from(&second.next);
        let third = read(&store, &acme, &query).await.expect("read works");

        assert_eq!(numbers(&first), [0, 2]);
        assert_eq!(numbers(&second), [4]);
        assert!(third.events.is_empty());
        assert_eq!(third.next, None, "nothing after the last event");
    }

    #[tokio::test]
    async fn a_sparse_filter_stops_at_the_scan_budget_with_a_cursor_past_it() {
        let mut platforms = vec!["telegram"; SCAN_BUDGET + 10];
        platforms.push("whatsapp");
        let (store, acme) = inbox_of(&platforms).await;
        let query = InboxQuery {
            after: None,
            limit: 10,
            platform: Some(Platform::Whatsapp),
        };

        let first = read(&store, &acme, &query).await.expect("read works");
        let second = read(
            &store,
            &acme,
            &InboxQuery {
                after: first.next.clone(),
                ..query
            },
        )
        .await
        .expect("read works");

        assert!(first.events.is_empty());
        assert!(first.next.is_some(), "the cursor moves past what was examined");
        assert_eq!(numbers(&second), [SCAN_BUDGET as i64 + 10]);
    }
}
