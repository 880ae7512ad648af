//! Who sent a webhook: Meta's `X-Hub-Signature-256` HMAC and Telegram's
//! secret token, both compared in constant time.

use axum::http::HeaderValue;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header Meta signs WhatsApp and Instagram webhooks in: `sha256=<hex>`.
pub const META_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The header Telegram repeats the webhook's `secret_token` in.
pub const TELEGRAM_SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The prefix of Meta's signature header value.
const META_PREFIX: &str = "sha256=";

/// Why a signature header cannot be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is absent.
    #[error("the signature header is missing")]
    Missing,
    /// The header is not `sha256=` and 64 hex digits.
    #[error("the signature header must be `sha256=` followed by 64 hex digits")]
    Malformed,
}

/// The HMAC-SHA256 a Meta webhook claims for its body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MetaSignature([u8; 32]);

impl std::fmt::Debug for MetaSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaSignature(..)")
    }
}

impl MetaSignature {
    /// Reads an `X-Hub-Signature-256` header.
    ///
    /// # Errors
    ///
    /// [`SignatureError::Missing`] without a header, [`SignatureError::Malformed`]
    /// when it is not `sha256=<64 hex digits>`.
    pub fn from_header(header: Option<&HeaderValue>) -> Result<Self, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_digits = header
            .to_str()
            .ok()
            .and_then(|value| value.trim().strip_prefix(META_PREFIX))
            .ok_or(SignatureError::Malformed)?;
        let mut mac = [0_u8; 32];
        hex::decode_to_slice(hex_digits, &mut mac).map_err(|_| SignatureError::Malformed)?;
        Ok(Self(mac))
    }

    /// True when `body` signed with `secret` gives this signature; the
    /// comparison takes the same time wherever the MACs differ.
    pub fn verifies(&self, secret: &[u8], body: &[u8]) -> bool {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&self.0).is_ok()
    }
}

/// The `X-Hub-Signature-256` value Meta sends for `body` signed with
/// `secret`; what a mock sender (a test, a local tool) puts in the header.
pub fn meta_signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("{META_PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// True when a presented token equals the expected one. Only the lengths
/// may leak through timing, never where the bytes differ.
pub fn tokens_match(expected: &[u8], presented: &[u8]) -> bool {
    expected.ct_eq(presented).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).expect("a valid header value")
    }

    #[test]
    fn a_signature_made_with_the_secret_verifies_and_any_change_does_not() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let signed = header(&meta_signature(b"app-secret", body));

        let signature = MetaSignature::from_header(Some(&signed)).expect("a well-formed header");

        assert!(signature.verifies(b"app-secret", body));
        assert!(!signature.verifies(b"other-secret", body));
        let mut changed = body.to_vec();
        changed[3] ^= 1;
        assert!(!signature.verifies(b"app-secret", &changed));
    }

    #[test]
    fn malformed_headers_are_refused_before_any_hmac() {
        assert_eq!(MetaSignature::from_header(None), Err(SignatureError::Missing));
        for value in [
            "",
            "sha256=",
            "sha1=00",
            "sha256=zz",
            &format!("sha256={}", "0".repeat(63)),
        ] {
            assert_eq!(
                MetaSignature::from_header(Some(&header(value))),
                Err(SignatureError::Malformed),
                "{value:?}"
            );
        }
        let upper = format!("sha256={}", "AB".repeat(32));
        assert!(MetaSignature::from_header(Some(&header(&upper))).is_ok());
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match(b"s3cret_token-1", b"s3cret_token-1"));
        assert!(!tokens_match(b"s3cret_token-1", b"s3cret_token-2"));
        assert!(!tokens_match(b"s3cret_token-1", b"s3cret_token"));
        assert!(!tokens_match(b"s3cret_token-1", b""));
    }
}
