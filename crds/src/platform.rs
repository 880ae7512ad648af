use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A messaging platform Hermes can act on for a customer.
///
/// The serialized form (`whatsapp`, `x`, …) is what manifests, Redis keys,
/// tool names and REST paths use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Email over SMTP (sending) and IMAP (reading).
    Email,
    /// WhatsApp Cloud API (Meta Graph API).
    Whatsapp,
    /// LinkedIn Posts API.
    Linkedin,
    /// Telegram Bot API.
    Telegram,
    /// Discord API v10, as a bot.
    Discord,
    /// Instagram Graph API.
    Instagram,
    /// X (formerly Twitter) API v2.
    X,
    /// Obsidian through the Local REST API plugin.
    Obsidian,
}

impl Platform {
    /// Every platform, in the order listings show them.
    pub const ALL: [Platform; 8] = [
        Platform::Email,
        Platform::Whatsapp,
        Platform::Linkedin,
        Platform::Telegram,
        Platform::Discord,
        Platform::Instagram,
        Platform::X,
        Platform::Obsidian,
    ];

    /// The serialized name, e.g. `whatsapp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Email => "email",
            Platform::Whatsapp => "whatsapp",
            Platform::Linkedin => "linkedin",
            Platform::Telegram => "telegram",
            Platform::Discord => "discord",
            Platform::Instagram => "instagram",
            Platform::X => "x",
            Platform::Obsidian => "obsidian",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a name that is not one of [`Platform::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlatform(pub String);

impl fmt::Display for UnknownPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown platform {:?}; expected one of email, whatsapp, linkedin, telegram, discord, instagram, x, obsidian",
            self.0
        )
    }
}

impl std::error::Error for UnknownPlatform {}

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}
