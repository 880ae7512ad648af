use kube::core::{Message, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Condition, Platform};

/// The CEL pattern every configurable base URL must match: `http://` or
/// `https://`, a non-empty host, then anything without whitespace.
const HTTP_URL_RULE: &str = "self.matches('^https?://[^/?#[:space:]]+([/?#][^[:space:]]*)?$')";

/// The desired state of a PlatformConnection. Set `platform` and the settings
/// block of the same name, and no other platform's block. Name a Secret
/// holding the platform's secret fields in `secretRef`, or set `sandbox: true`
/// to record outgoing messages in the customer's outbox instead. `platform`
/// and `customerRef` cannot change after creation.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(
    clippy::duplicated_attributes,
    reason = "every printcolumn(..) repeats keys like `type_ = \"string\"`, which clippy misreads as duplicates"
)]
#[kube(
    group = "hermes.squaremcp.com",
    version = "v1alpha1",
    kind = "PlatformConnection",
    doc = "One customer's account on one messaging platform. The spec holds only what is safe to commit; \
           tokens and passwords live in the Secret named by spec.secretRef. A sandbox connection records \
           outgoing messages in the customer's outbox instead of calling the platform.",
    namespaced,
    status = "PlatformConnectionStatus",
    shortname = "pconn",
    cel,
    printcolumn(
        name = "Customer",
        type_ = "string",
        description = "The Customer this connection belongs to",
        json_path = ".spec.customerRef"
    ),
    printcolumn(
        name = "Platform",
        type_ = "string",
        description = "The platform this connection reaches",
        json_path = ".spec.platform"
    ),
    printcolumn(
        name = "Sandbox",
        type_ = "boolean",
        description = "Whether messages go to the outbox instead of the platform",
        json_path = ".spec.sandbox"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the connection's tools are offered",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = platform_block_rule(Platform::Email),
    validation = platform_block_rule(Platform::Whatsapp),
    validation = platform_block_rule(Platform::Linkedin),
    validation = platform_block_rule(Platform::Telegram),
    validation = platform_block_rule(Platform::Discord),
    validation = platform_block_rule(Platform::Instagram),
    validation = platform_block_rule(Platform::X),
    validation = platform_block_rule(Platform::Obsidian),
    validation = Rule::new("self.sandbox || has(self.secretRef)")
        .message("spec.secretRef is required unless sandbox is true")
        .field_path(".secretRef")
)]
#[serde(rename_all = "camelCase")]
pub struct PlatformConnectionSpec {
    /// The name of the Customer, in the same namespace, this connection
    /// belongs to. Immutable: delete and recreate the connection to move it.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = Rule::new("self == oldSelf")
            .message("customerRef is immutable; delete the PlatformConnection and create a new one")
    )]
    pub customer_ref: String,

    /// The platform this connection reaches: `email`, `whatsapp`, `linkedin`,
    /// `telegram`, `discord`, `instagram`, `x` or `obsidian`. The settings
    /// block of the same name must be set. Immutable.
    #[x_kube(
        validation = Rule::new("self == oldSelf")
            .message("platform is immutable; delete the PlatformConnection and create a new one")
    )]
    pub platform: Platform,

    /// The Secret, in the same namespace, holding this connection's secret
    /// fields (each platform's block lists them). Optional only for sandbox
    /// connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,

    /// When true, send tools record to the customer's outbox instead of
    /// calling the platform, and no credentials are needed.
    #[serde(default)]
    pub sandbox: bool,

    /// Overrides the platform's API base URL for this connection only, e.g. to
    /// point it at a mock server. An `http://` or `https://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message("apiBase must start with http:// or https:// and name a host"))]
    pub api_base: Option<String>,

    /// WhatsApp settings; required when `platform` is `whatsapp`, forbidden
    /// otherwise. Secret fields: `accessToken`, and `appSecret` to verify
    /// inbound webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<WhatsappSettings>,

    /// Telegram settings; required when `platform` is `telegram`, forbidden
    /// otherwise. Secret fields: `botToken`, `webhookSecretToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramSettings>,

    /// Discord settings; required when `platform` is `discord`, forbidden
    /// otherwise. Secret fields: `botToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<DiscordSettings>,

    /// Email settings; required when `platform` is `email`, forbidden
    /// otherwise. Secret fields: `smtpUsername`, `smtpPassword`, and optionally
    /// `imapUsername`, `imapPassword` (default: the SMTP ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,

    /// LinkedIn settings; required when `platform` is `linkedin`, forbidden
    /// otherwise. Secret fields: `accessToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin: Option<LinkedinSettings>,

    /// Instagram settings; required when `platform` is `instagram`, forbidden
    /// otherwise. Secret fields: `accessToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instagram: Option<InstagramSettings>,

    /// X settings (`x: {}` at least); required when `platform` is `x`,
    /// forbidden otherwise. Secret fields: `bearerToken` (OAuth 2.0 user
    /// token), or all of `consumerKey`, `consumerSecret`, `accessToken`,
    /// `accessTokenSecret` (OAuth 1.0a).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<XSettings>,

    /// Obsidian settings; required when `platform` is `obsidian`, forbidden
    /// otherwise. Secret fields: `apiKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obsidian: Option<ObsidianSettings>,
}

/// The spec-level rule that ties `platform` to its settings block: when
/// `platform` is `platform`, the block named after it is present and every
/// other platform's block is absent.
///
/// The block fields of [`PlatformConnectionSpec`] are named exactly like the
/// serialized platforms, which is what lets one function write all eight rules.
fn platform_block_rule(platform: Platform) -> Rule {
    let name = platform.as_str();
    let others: Vec<String> = Platform::ALL
        .into_iter()
        .filter(|other| *other != platform)
        .map(|other| format!("!has(self.{other})"))
        .collect();

    Rule::new(format!(
        "self.platform != '{name}' || (has(self.{name}) && {})",
        others.join(" && ")
    ))
    .message(Message::Message(format!(
        "spec.{name} is required when platform is {name} and no other platform block may be set"
    )))
}

/// A reference to a Secret in the resource's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The Secret's name, in the same namespace as the resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// WhatsApp Cloud API settings. Secret fields: `accessToken`, optional `appSecret`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhatsappSettings {
    /// The phone number id messages are sent from; inbound webhooks are routed by it.
    #[schemars(length(min = 1))]
    pub phone_number_id: String,
    /// The WhatsApp Business Account id.
    #[schemars(length(min = 1))]
    pub business_account_id: String,
}

/// Telegram Bot API settings. Secret fields: `botToken`, `webhookSecretToken`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelegramSettings {
    /// The bot's username, without the `@`.
    #[schemars(length(min = 1))]
    pub bot_username: String,
}

/// Discord settings. Secret fields: `botToken`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscordSettings {
    /// The Discord application id of the bot.
    #[schemars(length(min = 1))]
    pub application_id: String,
    /// The channel messages go to when a call names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_channel_id: Option<String>,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// No TLS at all; only for local test servers.
    None,
}

/// Email settings. Secret fields: `smtpUsername`, `smtpPassword`, and
/// optionally `imapUsername`, `imapPassword` (default: the SMTP ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailSettings {
    /// The SMTP submission server.
    #[schemars(length(min = 1))]
    pub smtp_host: String,
    /// The SMTP port; 465 for implicit TLS, 587 for STARTTLS.
    #[schemars(range(min = 1))]
    pub smtp_port: u16,
    /// How the SMTP connection is secured.
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    /// The address messages are sent from.
    #[schemars(length(min = 1))]
    pub from_address: String,
    /// The IMAP server for reading the inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap_host: Option<String>,
    /// The IMAP port; 993 for implicit TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap_port: Option<u16>,
}

/// LinkedIn Posts API settings. Secret fields: `accessToken`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkedinSettings {
    /// The author of posts, e.g. `urn:li:person:abc123` or `urn:li:organization:42`.
    #[schemars(length(min = 1))]
    pub author_urn: String,
    /// The `LinkedIn-Version` header value, `YYYYMM`.
    pub api_version: String,
}

/// Which login flow issued an Instagram token; it decides the API host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstagramLogin {
    /// Instagram API with Instagram Login (`graph.instagram.com`).
    #[default]
    Instagram,
    /// Instagram API with Facebook Login (`graph.facebook.com`).
    Facebook,
}

/// Instagram Graph API settings. Secret fields: `accessToken`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstagramSettings {
    /// The Instagram professional account id; inbound webhooks are routed by it.
    #[schemars(length(min = 1))]
    pub user_id: String,
    /// Which login flow issued the token.
    #[serde(default)]
    pub login: InstagramLogin,
}

/// X API v2 settings. Secret fields: either `bearerToken` (OAuth 2.0 user
/// token) or all of `consumerKey`, `consumerSecret`, `accessToken`,
/// `accessTokenSecret` (OAuth 1.0a).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct XSettings {
    /// The account's handle, without the `@`; informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// Whether the Obsidian plugin's TLS certificate is verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CertificateVerification {
    /// Verify against the system's roots.
    #[default]
    Verify,
    /// Accept the plugin's self-signed certificate.
    Skip,
}

/// Obsidian Local REST API settings. Secret fields: `apiKey`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObsidianSettings {
    /// The plugin's base URL, e.g. `https://127.0.0.1:27124`. An `http://` or `https://` URL.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message("obsidian.baseUrl must start with http:// or https:// and name a host"))]
    pub base_url: String,
    /// Whether the plugin's certificate is verified.
    #[serde(default)]
    pub certificate_verification: CertificateVerification,
}

/// What the operator last observed and wrote for a PlatformConnection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformConnectionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` says whether the connection's tools are offered.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// A digest of the credentials version last written; unchanged input causes no write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The inbound route keys this connection owns.
    #[serde(default)]
    pub routes: Vec<String>,
    /// The id of the encryption key the stored credentials are sealed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The outcome of registering the platform's webhook, where Hermes does that (Telegram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}
