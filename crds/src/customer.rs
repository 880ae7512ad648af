use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Condition, Platform};

/// The desired state of a Customer: who the tenant is, their billing plan,
/// and where their inbound messages go. The Customer's metadata.name is the
/// customer id; it must be unique across namespaces, and the operator refuses
/// a duplicate.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(
    clippy::duplicated_attributes,
    reason = "every printcolumn(..) repeats keys like `type_ = \"string\"`, which clippy misreads as duplicates"
)]
#[kube(
    group = "hermes.squaremcp.com",
    version = "v1alpha1",
    kind = "Customer",
    doc = "One Hermes tenant. Its metadata.name is the customer id used by the API, API keys and logs, \
           and must be unique across namespaces. AI agents act for the customer through the \
           PlatformConnections that reference it.",
    namespaced,
    status = "CustomerStatus",
    shortname = "cust",
    cel,
    printcolumn(
        name = "Plan",
        type_ = "string",
        description = "The billing plan",
        json_path = ".spec.plan"
    ),
    printcolumn(
        name = "Suspended",
        type_ = "boolean",
        description = "Whether API calls are refused",
        json_path = ".spec.suspended"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the customer can call the API",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Platforms",
        type_ = "string",
        description = "Platforms with a ready connection",
        json_path = ".status.connectedPlatforms",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSpec {
    /// Human-readable name shown in listings and the dashboard. Must not be blank.
    #[schemars(length(max = 200))]
    #[x_kube(validation = Rule::new("self.trim().size() > 0").message("displayName must not be empty"))]
    pub display_name: String,

    /// Contact address for this customer, e.g. `ops@acme.example`.
    #[schemars(length(max = 254))]
    #[x_kube(
        validation = Rule::new("self.matches('^[^@[:space:]]+@[^@[:space:]]+[.][^@[:space:]]+$')")
            .message("email must be an address like name@example.com")
    )]
    pub email: String,

    /// Billing plan: `free`, `starter`, `pro` or `enterprise`. Sets the default
    /// rate limit and monthly quota. Defaults to `free`.
    #[serde(default)]
    pub plan: Plan,

    /// When true, every API call with this customer's key is refused with 403.
    /// Nothing stored is removed.
    #[serde(default)]
    pub suspended: bool,

    /// The Secret key holding this customer's API key. When absent the
    /// operator generates a key into a Secret it owns and names it in
    /// `status.apiKeySecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,

    /// Where inbound messages are delivered, signed, when set. Without it,
    /// inbound messages wait in the customer's inbox for the API to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,

    /// Per-customer overrides of the plan's limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitOverrides>,
}

/// A billing plan. Each has a requests-per-minute limit and a monthly tool-call quota.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The default plan.
    #[default]
    Free,
    /// Small teams.
    Starter,
    /// Production use.
    Pro,
    /// Negotiated limits.
    Enterprise,
}

impl Plan {
    /// The serialized name, e.g. `pro`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }
}

/// A reference to one key of a Secret in the resource's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name, in the same namespace as the resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key inside the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Delivery of inbound events to the customer's own HTTPS endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The URL every inbound event is POSTed to. Must be `https://`; plain
    /// `http://` is accepted only for `localhost`, `127.0.0.1` and `[::1]`.
    #[schemars(length(max = 2048))]
    #[x_kube(
        validation = Rule::new(
            "self.matches('^https://[^/?#[:space:]]+([/?#][^[:space:]]*)?$') || \
             self.matches('^http://(localhost|127[.]0[.]0[.]1|\\\\[::1\\\\])(:[0-9]+)?([/?#][^[:space:]]*)?$')"
        )
        .message("delivery.url must be an https:// URL (http:// is allowed only for localhost)")
    )]
    pub url: String,

    /// The Secret key holding the HMAC-SHA256 secret every delivery is signed with.
    pub signing_secret_ref: SecretKeyRef,
}

/// Overrides of the limits a plan sets. Absent fields keep the plan's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitOverrides {
    /// Authenticated requests allowed per minute. Zero refuses every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("limits.requestsPerMinute must not be negative"))]
    pub requests_per_minute: Option<u32>,

    /// Tool calls allowed per calendar month (UTC). Zero refuses every tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("limits.toolCallsPerMonth must not be negative"))]
    pub tool_calls_per_month: Option<u64>,
}

/// What the operator last observed and wrote for a Customer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` says whether the customer can call the API.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The Secret holding the API key (generated or referenced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<String>,
    /// Platforms with a Ready PlatformConnection.
    #[serde(default)]
    pub connected_platforms: Vec<Platform>,
    /// Usage in the current billing period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageStatus>,
}

/// Usage in one billing period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageStatus {
    /// The period, `yyyy-mm` (UTC).
    pub period: String,
    /// Tool calls counted so far in the period.
    pub tool_calls: u64,
}
