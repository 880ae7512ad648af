//! Which fields of a connection's Secret each platform needs.
//!
//! A platform's requirement is a list of alternatives, each a set of fields
//! that together are enough to authenticate, plus optional fields. Every
//! platform but X has exactly one alternative; X accepts an OAuth 2.0 user
//! token or the four OAuth 1.0a fields. Only the fields named here are
//! sealed into the vault: anything else in the Secret is ignored, so one
//! Secret may serve several purposes without leaking into Hermes' state.

use hermes_crds::Platform;

/// The names of the Secret fields Hermes reads, as they appear in a Secret's
/// `data` or `stringData` and in [`Credentials::secret`](super::Credentials::secret).
pub mod fields {
    /// An OAuth access token (WhatsApp, LinkedIn, Instagram, X OAuth 1.0a).
    pub const ACCESS_TOKEN: &str = "accessToken";
    /// The X OAuth 1.0a access token secret.
    pub const ACCESS_TOKEN_SECRET: &str = "accessTokenSecret";
    /// The Obsidian Local REST API key.
    pub const API_KEY: &str = "apiKey";
    /// The Meta app secret, which verifies WhatsApp webhook signatures per connection.
    pub const APP_SECRET: &str = "appSecret";
    /// An X OAuth 2.0 user access token.
    pub const BEARER_TOKEN: &str = "bearerToken";
    /// A Telegram or Discord bot token.
    pub const BOT_TOKEN: &str = "botToken";
    /// The X OAuth 1.0a consumer (API) key.
    pub const CONSUMER_KEY: &str = "consumerKey";
    /// The X OAuth 1.0a consumer (API) secret.
    pub const CONSUMER_SECRET: &str = "consumerSecret";
    /// The IMAP password; defaults to the SMTP password.
    pub const IMAP_PASSWORD: &str = "imapPassword";
    /// The IMAP user name; defaults to the SMTP user name.
    pub const IMAP_USERNAME: &str = "imapUsername";
    /// The SMTP password.
    pub const SMTP_PASSWORD: &str = "smtpPassword";
    /// The SMTP user name.
    pub const SMTP_USERNAME: &str = "smtpUsername";
    /// The token Telegram sends in `X-Telegram-Bot-Api-Secret-Token` on every webhook.
    pub const WEBHOOK_SECRET_TOKEN: &str = "webhookSecretToken";
}

use fields::{
    ACCESS_TOKEN, ACCESS_TOKEN_SECRET, API_KEY, APP_SECRET, BEARER_TOKEN, BOT_TOKEN, CONSUMER_KEY,
    CONSUMER_SECRET, IMAP_PASSWORD, IMAP_USERNAME, SMTP_PASSWORD, SMTP_USERNAME, WEBHOOK_SECRET_TOKEN,
};

/// The Secret fields one platform needs.
#[derive(Debug, PartialEq, Eq)]
pub struct SecretRequirements {
    alternatives: &'static [&'static [&'static str]],
    optional: &'static [&'static str],
}

static EMAIL: SecretRequirements = SecretRequirements {
    alternatives: &[&[SMTP_USERNAME, SMTP_PASSWORD]],
    optional: &[IMAP_USERNAME, IMAP_PASSWORD],
};

static WHATSAPP: SecretRequirements = SecretRequirements {
    alternatives: &[&[ACCESS_TOKEN]],
    optional: &[APP_SECRET],
};

static LINKEDIN: SecretRequirements = SecretRequirements {
    alternatives: &[&[ACCESS_TOKEN]],
    optional: &[],
};

static TELEGRAM: SecretRequirements = SecretRequirements {
    alternatives: &[&[BOT_TOKEN, WEBHOOK_SECRET_TOKEN]],
    optional: &[],
};

static DISCORD: SecretRequirements = SecretRequirements {
    alternatives: &[&[BOT_TOKEN]],
    optional: &[],
};

static INSTAGRAM: SecretRequirements = SecretRequirements {
    alternatives: &[&[ACCESS_TOKEN]],
    optional: &[],
};

static X: SecretRequirements = SecretRequirements {
    alternatives: &[
        &[BEARER_TOKEN],
        &[CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET],
    ],
    optional: &[],
};

static OBSIDIAN: SecretRequirements = SecretRequirements {
    alternatives: &[&[API_KEY]],
    optional: &[],
};

/// The Secret fields `platform` needs.
pub fn secret_requirements(platform: Platform) -> &'static SecretRequirements {
    match platform {
        Platform::Email => &EMAIL,
        Platform::Whatsapp => &WHATSAPP,
        Platform::Linkedin => &LINKEDIN,
        Platform::Telegram => &TELEGRAM,
        Platform::Discord => &DISCORD,
        Platform::Instagram => &INSTAGRAM,
        Platform::X => &X,
        Platform::Obsidian => &OBSIDIAN,
    }
}

impl SecretRequirements {
    /// The sets of fields of which one must be complete, in order of preference.
    pub fn alternatives(&self) -> &'static [&'static [&'static str]] {
        self.alternatives
    }

    /// Fields read when present and never required.
    pub fn optional(&self) -> &'static [&'static str] {
        self.optional
    }

    /// Every field Hermes reads for this platform: the fields of every
    /// alternative, then the optional ones. Only these are sealed.
    pub fn known_fields(&self) -> impl Iterator<Item = &'static str> + use<> {
        let required = self.alternatives.iter().flat_map(|set| set.iter().copied());
        required.chain(self.optional.iter().copied())
    }

    /// Whether Hermes reads a field of this name for this platform.
    pub fn is_known(&self, field: &str) -> bool {
        self.known_fields().any(|known| known == field)
    }

    /// The fields still missing, given which fields are present; `None` when
    /// the requirement is met.
    ///
    /// When no alternative is complete, the one the Secret is closest to
    /// (the most fields present; the first listed on a tie) names the
    /// missing fields: a Secret with only `consumerKey` for X is told about
    /// the three other OAuth 1.0a fields, not about `bearerToken`.
    pub fn missing(&self, is_present: impl Fn(&str) -> bool) -> Option<Vec<&'static str>> {
        let mut closest: Option<(usize, Vec<&'static str>)> = None;
        for set in self.alternatives {
            let (present, missing): (Vec<&str>, Vec<&str>) = set.iter().partition(|field| is_present(field));
            if missing.is_empty() {
                return None;
            }
            if closest.as_ref().is_none_or(|(best, _)| present.len() > *best) {
                closest = Some((present.len(), missing));
            }
        }
        closest.map(|(_, missing)| missing)
    }

    /// A human-readable statement of what is required, e.g.
    /// `bearerToken, or all of consumerKey, consumerSecret, accessToken, accessTokenSecret`.
    pub fn describe(&self) -> String {
        let sets: Vec<String> = self
            .alternatives
            .iter()
            .map(|set| match set {
                [single] => (*single).to_owned(),
                many if self.alternatives.len() > 1 => format!("all of {}", many.join(", ")),
                many => many.join(", "),
            })
            .collect();
        sets.join(", or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present_in(fields: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |field| fields.contains(&field)
    }

    #[test]
    fn every_platform_has_at_least_one_non_empty_alternative() {
        for platform in Platform::ALL {
            let requirements = secret_requirements(platform);
            assert!(!requirements.alternatives().is_empty(), "{platform}");
            assert!(
                requirements.alternatives().iter().all(|set| !set.is_empty()),
                "{platform}"
            );
        }
    }

    #[test]
    fn a_complete_alternative_meets_the_requirement() {
        assert_eq!(
            secret_requirements(Platform::X).missing(present_in(&[BEARER_TOKEN])),
            None
        );
        let oauth1 = &[CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET];
        assert_eq!(secret_requirements(Platform::X).missing(present_in(oauth1)), None);
    }

    #[test]
    fn missing_fields_come_from_the_alternative_the_secret_is_closest_to() {
        let x = secret_requirements(Platform::X);

        assert_eq!(x.missing(present_in(&[])), Some(vec![BEARER_TOKEN]));
        assert_eq!(
            x.missing(present_in(&[CONSUMER_KEY])),
            Some(vec![CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET])
        );
    }

    #[test]
    fn optional_fields_are_known_but_never_missing() {
        let email = secret_requirements(Platform::Email);

        assert!(email.is_known(IMAP_PASSWORD));
        assert_eq!(email.missing(present_in(&[SMTP_USERNAME, SMTP_PASSWORD])), None);
    }

    #[test]
    fn description_spells_out_both_x_alternatives() {
        assert_eq!(
            secret_requirements(Platform::X).describe(),
            "bearerToken, or all of consumerKey, consumerSecret, accessToken, accessTokenSecret"
        );
        assert_eq!(
            secret_requirements(Platform::Telegram).describe(),
            "botToken, webhookSecretToken"
        );
    }
}
