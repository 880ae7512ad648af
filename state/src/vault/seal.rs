//! Sealing and opening credentials, re-sealing what an older key sealed,
//! and keyed fingerprints.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hermes_crds::Platform;
use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

use super::keyring::is_valid_key_id;
use super::{ENVELOPE_VERSION, Envelope, Keyring, hmac_sha256};
use crate::CustomerId;

/// The length of the GCM authentication tag that ends every ciphertext.
const TAG_LEN: usize = 16;

/// How many bytes of the HMAC a fingerprint keeps: 128 bits, 32 hex digits.
const FINGERPRINT_LEN: usize = 16;

/// The error of sealing or opening a credential.
///
/// Messages never carry a plaintext, a key or ciphertext bytes; only key
/// ids and the shape of what was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The envelope was sealed by a key the keyring no longer holds.
    #[error("the envelope was sealed by key {kid:?}, which is not in the keyring")]
    UnknownKey {
        /// The id of the missing key.
        kid: String,
    },

    /// Authentication failed: another key, customer or platform, or a tampered envelope.
    #[error("cannot decrypt the envelope: it was sealed for another customer, platform or key, or altered")]
    DecryptFailed,

    /// The envelope is in a format version this build does not know.
    #[error("unsupported envelope version {0}; this build reads version {ENVELOPE_VERSION}")]
    UnsupportedVersion(u8),

    /// The envelope's fields are not what a sealed envelope holds; the reason names the field.
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(String),

    /// Sealing failed: the random source or the cipher refused.
    #[error("cannot encrypt the credential")]
    EncryptFailed,
}

impl Keyring {
    /// Seals `plaintext` for `customer` on `platform` under the primary key,
    /// with a fresh random nonce.
    ///
    /// The envelope opens only for the same customer and platform: both are
    /// bound in as associated data, with the key id.
    ///
    /// # Errors
    ///
    /// [`VaultError::EncryptFailed`] if the operating system's random source
    /// or the cipher fails.
    pub fn seal(
        &self,
        customer: &CustomerId,
        platform: Platform,
        plaintext: &[u8],
    ) -> Result<Envelope, VaultError> {
        let key = self.primary();

        let mut nonce = Nonce::<Aes256Gcm>::default();
        SysRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| VaultError::EncryptFailed)?;

        // Encrypted in place, so the copy of the plaintext is wiped if
        // encryption fails; with room for the tag, so it is never moved.
        let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        buffer.extend_from_slice(plaintext);
        let aad = associated_data(customer, platform, &key.id);
        key.cipher
            .encrypt_in_place(&nonce, &aad, &mut *buffer)
            .map_err(|_| VaultError::EncryptFailed)?;

        Ok(Envelope {
            v: ENVELOPE_VERSION,
            kid: key.id.clone(),
            nonce: BASE64.encode(nonce),
            ct: BASE64.encode(&*buffer),
        })
    }

    /// Opens an envelope sealed for `customer` on `platform` by any key of the ring.
    ///
    /// # Errors
    ///
    /// - [`VaultError::UnsupportedVersion`] for a format this build does not read;
    /// - [`VaultError::UnknownKey`] when the sealing key is not in the ring;
    /// - [`VaultError::MalformedEnvelope`] when a field does not decode;
    /// - [`VaultError::DecryptFailed`] when the envelope was sealed for
    ///   another customer or platform, or was altered.
    pub fn open(
        &self,
        customer: &CustomerId,
        platform: Platform,
        envelope: &Envelope,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if envelope.v != ENVELOPE_VERSION {
            return Err(VaultError::UnsupportedVersion(envelope.v));
        }
        // An id that could never be in a ring is not echoed back.
        if !is_valid_key_id(&envelope.kid) {
            return Err(malformed("the key id is not one a keyring can hold"));
        }
        let key = self.key(&envelope.kid).ok_or_else(|| VaultError::UnknownKey {
            kid: envelope.kid.clone(),
        })?;

        let nonce = BASE64
            .decode(&envelope.nonce)
            .map_err(|_| malformed("the nonce is not base64"))?;
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce.as_slice())
            .map_err(|_| malformed(format!("the nonce is {} bytes; expected 12", nonce.len())))?;
        let mut buffer = BASE64
            .decode(&envelope.ct)
            .map(Zeroizing::new)
            .map_err(|_| malformed("the ciphertext is not base64"))?;
        if buffer.len() < TAG_LEN {
            return Err(malformed("the ciphertext is shorter than its 16-byte tag"));
        }

        let aad = associated_data(customer, platform, &key.id);
        key.cipher
            .decrypt_in_place(&nonce, &aad, &mut *buffer)
            .map_err(|_| VaultError::DecryptFailed)?;
        Ok(buffer)
    }

    /// Re-seals an envelope under the primary key, as the operator does
    /// with what older keys sealed.
    ///
    /// Returns `Ok(None)` when the envelope is already sealed by the primary
    /// key in the current format. The envelope is opened either way, so a
    /// damaged one is reported rather than passed over.
    ///
    /// # Errors
    ///
    /// Any error of [`Keyring::open`] or [`Keyring::seal`].
    pub fn reseal(
        &self,
        customer: &CustomerId,
        platform: Platform,
        envelope: &Envelope,
    ) -> Result<Option<Envelope>, VaultError> {
        let plaintext = self.open(customer, platform, envelope)?;
        if self.is_primary(envelope) {
            return Ok(None);
        }
        self.seal(customer, platform, &plaintext).map(Some)
    }

    /// Whether the envelope is sealed by the primary key in the current
    /// format, so [`Keyring::reseal`] would leave it as it is.
    pub fn is_primary(&self, envelope: &Envelope) -> bool {
        envelope.v == ENVELOPE_VERSION && envelope.kid == self.primary_id()
    }

    /// A keyed digest of `data`: `"<primary id>:<32 hex digits>"`.
    ///
    /// The digest is HMAC-SHA256 under a subkey derived from the primary
    /// key, cut to 128 bits. It is stable for a given primary key and
    /// changes with it; without the key it reveals nothing about `data`, so
    /// it can stand in resource status as the fingerprint of what was
    /// written.
    pub fn fingerprint(&self, data: &[u8]) -> String {
        let digest = hmac_sha256(self.fingerprint_key.as_slice(), data);
        format!(
            "{}:{}",
            self.primary_id(),
            hex::encode(&digest[..FINGERPRINT_LEN])
        )
    }
}

/// The associated data that binds a ciphertext to its customer, platform
/// and key: `hermes/v1 NUL customer NUL platform NUL key-id`.
///
/// None of the three parts can hold a NUL (customer ids and key ids are
/// validated, platform names are fixed), so the layout is unambiguous.
/// Changing it makes every stored credential unreadable.
fn associated_data(customer: &CustomerId, platform: Platform, kid: &str) -> Vec<u8> {
    format!("hermes/v1\0{customer}\0{platform}\0{kid}").into_bytes()
}

fn malformed(reason: impl Into<String>) -> VaultError {
    VaultError::MalformedEnvelope(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_data_layout_is_fixed() {
        let customer = CustomerId::new("acme").expect("acme is a valid customer id");

        let aad = associated_data(&customer, Platform::Whatsapp, "k1");

        assert_eq!(aad, b"hermes/v1\0acme\0whatsapp\0k1");
    }

    #[test]
    fn fingerprint_keeps_32_hex_digits() {
        let ring = Keyring::generate("dev");

        let fingerprint = ring.fingerprint(b"token");

        let (kid, digest) = fingerprint
            .split_once(':')
            .expect("a fingerprint has an id prefix");
        assert_eq!(kid, "dev");
        assert_eq!(digest.len(), 2 * FINGERPRINT_LEN);
        assert!(
            digest
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
