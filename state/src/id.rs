//! Identifiers shared by every store: customer ids and API-key hashes.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A customer id: the `metadata.name` of its Customer resource.
///
/// Valid ids are Kubernetes object names (RFC 1123 subdomain: lowercase
/// alphanumerics, `-` and `.`, at most 253 characters), so they never
/// contain the `{`, `}` or `:` that delimit Redis keys.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

/// The error of building a [`CustomerId`] from a string that is not a valid object name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid customer id {0:?}: expected a lowercase RFC 1123 name (a-z, 0-9, '-', '.'), 1 to 253 characters"
)]
pub struct InvalidCustomerId(pub String);

impl CustomerId {
    /// Validates and wraps a customer id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidCustomerId> {
        let id = id.into();
        let valid_chars = id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let valid_ends = id
            .bytes()
            .next()
            .zip(id.bytes().last())
            .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
        if valid_chars && valid_ends && id.len() <= 253 {
            Ok(Self(id))
        } else {
            Err(InvalidCustomerId(id))
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CustomerId {
    type Error = InvalidCustomerId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<CustomerId> for String {
    fn from(id: CustomerId) -> Self {
        id.0
    }
}

/// The SHA-256 of an API key, lowercase hex. Keys are stored and looked up only by this hash.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    /// Hashes a presented API key.
    pub fn of(api_key: &str) -> Self {
        Self(hex::encode(Sha256::digest(api_key.as_bytes())))
    }

    /// Wraps a hash already in lowercase hex form (as read back from SQL).
    pub fn from_hex(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    /// The hash as lowercase hex.
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeyHash {
    // A hash is not a secret, but a short form keeps logs readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyHash({}…)", &self.0[..self.0.len().min(12)])
    }
}
