//! Registering a Telegram bot's webhook with the Bot API.
//!
//! Telegram delivers a bot's updates to the one URL registered with
//! `setWebhook`. When a non-sandbox Telegram connection becomes Ready and
//! the server's public URL is known, the operator registers
//! `<public url>/webhook/telegram/<route id>` with the connection's
//! `webhookSecretToken`, and records the outcome (never a token) in the
//! connection's `status.webhook`.

use std::time::Duration;

use hermes_state::tenancy::requirements::fields::{BOT_TOKEN, WEBHOOK_SECRET_TOKEN};
use hermes_state::tenancy::{ConnectionPlan, Credentials};
use serde::Deserialize;

/// How long one `setWebhook` call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The prefix of `status.webhook` after a successful registration.
pub const REGISTERED: &str = "registered ";

/// The prefix of `status.webhook` after a failed one.
pub const FAILED: &str = "failed: ";

/// Registers Telegram webhooks for one operator.
#[derive(Clone, Debug)]
pub struct Webhooks {
    http: reqwest::Client,
    public_url: String,
    api_base: String,
}

/// The answer of the Bot API: `{"ok": bool, "description": "…"}`.
#[derive(Debug, Deserialize)]
struct BotApiAnswer {
    ok: bool,
    #[serde(default)]
    description: Option<String>,
}

/// The HTTP client Bot API calls use.
///
/// reqwest is built without a TLS crypto provider; this installs rustls'
/// ring provider (the one kube links too) for the process first. That
/// fails only when a provider is installed already, which is just as good.
///
/// # Errors
///
/// reqwest's error when the client cannot be built.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()
}

impl Webhooks {
    /// Registers webhooks under `public_url` (no trailing slash) through the
    /// Bot API at `api_base`, unless a connection overrides the base.
    pub fn new(http: reqwest::Client, public_url: String, api_base: String) -> Self {
        Self {
            http,
            public_url,
            api_base: api_base.trim_end_matches('/').to_owned(),
        }
    }

    /// The webhook URL of a connection's route id.
    pub fn url_for(&self, route_id: &str) -> String {
        format!("{}/webhook/telegram/{route_id}", self.public_url)
    }

    /// Registers the webhook of a planned Telegram connection and returns
    /// what `status.webhook` should say: `registered <url>` or
    /// `failed: <reason>`. The reason never holds a token.
    pub async fn register(&self, plan: &ConnectionPlan) -> String {
        let Some(route) = plan.routes.first() else {
            return format!("{FAILED}the connection has no Telegram route");
        };
        let credentials = &plan.credentials;
        let (Some(bot_token), Some(secret_token)) = (
            credentials.secret(BOT_TOKEN),
            credentials.secret(WEBHOOK_SECRET_TOKEN),
        ) else {
            return format!("{FAILED}the Secret lacks {BOT_TOKEN} or {WEBHOOK_SECRET_TOKEN}");
        };

        let url = self.url_for(&route.id);
        let outcome = self.set_webhook(credentials, bot_token, secret_token, &url).await;
        match outcome {
            Ok(()) => format!("{REGISTERED}{url}"),
            Err(reason) => format!("{FAILED}{}", redact(&reason, &[bot_token, secret_token])),
        }
    }

    async fn set_webhook(
        &self,
        credentials: &Credentials,
        bot_token: &str,
        secret_token: &str,
        url: &str,
    ) -> Result<(), String> {
        let base = credentials
            .api_base
            .as_deref()
            .map(|base| base.trim_end_matches('/'))
            .unwrap_or(&self.api_base);
        let body = serde_json::json!({ "url": url, "secret_token": secret_token });

        // The request URL holds the bot token: every error is stripped of it.
        let response = self
            .http
            .post(format!("{base}/bot{bot_token}/setWebhook"))
            .timeout(REQUEST_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|error| format!("the Bot API is unreachable: {}", error.without_url()))?;

        let status = response.status();
        let answer: Option<BotApiAnswer> = response.json().await.ok();
        match answer {
            Some(BotApiAnswer { ok: true, .. }) => Ok(()),
            Some(BotApiAnswer { description, .. }) => Err(format!(
                "the Bot API answered {status}: {}",
                description.unwrap_or_else(|| "no description".to_owned())
            )),
            None => Err(format!("the Bot API answered {status} without a JSON body")),
        }
    }
}

/// `text` with every occurrence of a secret replaced by `***`.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_every_secret_occurrence() {
        let text = redact(
            "bot 123:abc failed for 123:abc with s3cret",
            &["123:abc", "s3cret", ""],
        );

        assert_eq!(text, "bot *** failed for *** with ***");
    }

    #[test]
    fn the_webhook_url_is_the_public_url_and_the_route_id() {
        let webhooks = Webhooks::new(
            http_client().expect("a default client builds"),
            "https://hermes.example.com".into(),
            "https://api.telegram.org/".into(),
        );

        assert_eq!(
            webhooks.url_for("team-a.support-bot"),
            "https://hermes.example.com/webhook/telegram/team-a.support-bot"
        );
    }
}
