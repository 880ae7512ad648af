use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Condition, Platform};

/// One Hermes tenant: who they are, their billing plan and how to reach them.
///
/// The resource's `metadata.name` is the customer id. It must be unique
/// across namespaces; the operator refuses a duplicate.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hermes.squaremcp.com",
    version = "v1alpha1",
    kind = "Customer",
    namespaced,
    status = "CustomerStatus",
    shortname = "cust",
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspended"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSpec {
    /// Human-readable name shown in listings.
    pub display_name: String,
    /// Contact address for this customer.
    pub email: String,
    /// Billing plan; sets the default rate limit and monthly quota.
    #[serde(default)]
    pub plan: Plan,
    /// When true, every API call with this customer's key is refused with 403.
    #[serde(default)]
    pub suspended: bool,
    /// The Secret key holding this customer's API key. When absent the
    /// operator generates a key into a Secret it owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Where inbound messages are delivered, signed, when set.
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
    /// The Secret's name.
    pub name: String,
    /// The key inside the Secret's data.
    pub key: String,
}

/// Delivery of inbound events to the customer's own HTTPS endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The URL every inbound event is POSTed to.
    pub url: String,
    /// The Secret key holding the HMAC-SHA256 signing secret for deliveries.
    pub signing_secret_ref: SecretKeyRef,
}

/// Overrides of the limits a plan sets. Absent fields keep the plan's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitOverrides {
    /// Authenticated requests allowed per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Tool calls allowed per calendar month (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
