//! How a delivery is signed, and how the customer checks it.
//!
//! Every delivery carries two headers:
//!
//! - `Hermes-Timestamp`: the Unix time in seconds when the attempt was made;
//! - `Hermes-Signature`: `v1=<hex>`, the HMAC-SHA256 of
//!   `"<timestamp>.<body>"` under the customer's signing secret.
//!
//! The customer recomputes the HMAC over the raw body it received, compares
//! in constant time, and refuses timestamps far from its clock (five
//! minutes is usual), so a captured delivery cannot be replayed later.
//! [`verify`] does exactly that; it is what the tests check deliveries with.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header with the attempt's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "hermes-timestamp";

/// The header with the signature, `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "hermes-signature";

/// The header with the event's inbox id, stable across retries: the key a
/// customer deduplicates deliveries on.
pub const DELIVERY_ID_HEADER: &str = "hermes-delivery-id";

/// The header with the attempt's number, from 1.
pub const ATTEMPT_HEADER: &str = "hermes-attempt";

/// The version prefix of the signature.
const VERSION: &str = "v1=";

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Hermes-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, &timestamp.to_string(), body).finalize().into_bytes();
    format!("{VERSION}{}", hex::encode(digest))
}

/// True when `signature` (a `Hermes-Signature` value) signs `body` with
/// `timestamp` (the `Hermes-Timestamp` value) under `secret`, and the
/// timestamp is within `tolerance_secs` of `now` (Unix seconds).
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let Ok(sent_at) = timestamp.parse::<i64>() else {
        return false;
    };
    if sent_at.abs_diff(now) > tolerance_secs.unsigned_abs() {
        return false;
    }
    let Some(expected) = signature
        .strip_prefix(VERSION)
        .and_then(|hex| hex::decode(hex).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_secret_and_timestamp_only() {
        let body = br#"{"id":"1-0","event":{}}"#;
        let signature = sign(b"whsec", 1_700_000_000, body);

        assert!(signature.starts_with("v1="));
        assert!(verify(
            b"whsec",
            "1700000000",
            &signature,
            body,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            b"other",
            "1700000000",
            &signature,
            body,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            b"whsec",
            "1700000001",
            &signature,
            body,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            b"whsec",
            "1700000000",
            &signature,
            b"{}",
            1_700_000_010,
            300
        ));
    }

    #[test]
    fn an_old_or_malformed_signature_is_refused() {
        let body = b"{}";
        let signature = sign(b"whsec", 1_700_000_000, body);

        assert!(!verify(
            b"whsec",
            "1700000000",
            &signature,
            body,
            1_700_000_301,
            300
        ));
        assert!(!verify(b"whsec", "soon", &signature, body, 1_700_000_000, 300));
        assert!(!verify(b"whsec", "1700000000", "v2=00", body, 1_700_000_000, 300));
        assert!(!verify(b"whsec", "1700000000", "v1=zz", body, 1_700_000_000, 300));
    }
}
