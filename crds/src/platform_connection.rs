use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Condition, Platform};

/// One customer's account on one platform.
///
/// Secret fields (tokens, passwords) live in the Secret named by
/// `secretRef`; the spec holds only what is safe to commit.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hermes.squaremcp.com",
    version = "v1alpha1",
    kind = "PlatformConnection",
    namespaced,
    status = "PlatformConnectionStatus",
    shortname = "pconn",
    printcolumn(name = "Customer", type_ = "string", json_path = ".spec.customerRef"),
    printcolumn(name = "Platform", type_ = "string", json_path = ".spec.platform"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PlatformConnectionSpec {
    /// The name of the Customer (same namespace) this connection belongs to.
    pub customer_ref: String,
    /// The platform this connection reaches.
    pub platform: Platform,
    /// The Secret holding this connection's secret fields. Optional only for sandbox connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// When true, send tools record to the customer's outbox instead of calling the platform.
    #[serde(default)]
    pub sandbox: bool,
    /// Overrides the platform's API base URL for this connection only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// WhatsApp settings; required when `platform` is `whatsapp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<WhatsappSettings>,
    /// Telegram settings; required when `platform` is `telegram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramSettings>,
    /// Discord settings; required when `platform` is `discord`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<DiscordSettings>,
    /// Email settings; required when `platform` is `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
    /// LinkedIn settings; required when `platform` is `linkedin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin: Option<LinkedinSettings>,
    /// Instagram settings; required when `platform` is `instagram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instagram: Option<InstagramSettings>,
    /// X settings; required when `platform` is `x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<XSettings>,
    /// Obsidian settings; required when `platform` is `obsidian`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obsidian: Option<ObsidianSettings>,
}

/// A reference to a Secret in the resource's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The Secret's name.
    pub name: String,
}

/// WhatsApp Cloud API settings. Secret fields: `accessToken`, optional `appSecret`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhatsappSettings {
    /// The phone number id messages are sent from; inbound webhooks are routed by it.
    pub phone_number_id: String,
    /// The WhatsApp Business Account id.
    pub business_account_id: String,
}

/// Telegram Bot API settings. Secret fields: `botToken`, `webhookSecretToken`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelegramSettings {
    /// The bot's username, without the `@`.
    pub bot_username: String,
}

/// Discord settings. Secret fields: `botToken`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscordSettings {
    /// The Discord application id of the bot.
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
    pub smtp_host: String,
    /// The SMTP port; 465 for implicit TLS, 587 for STARTTLS.
    pub smtp_port: u16,
    /// How the SMTP connection is secured.
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    /// The address messages are sent from.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObsidianSettings {
    /// The plugin's base URL, e.g. `https://127.0.0.1:27124`.
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
