//! Credential sealing: AES-256-GCM under a rotating keyring.
//!
//! A [`Keyring`] holds a primary key and older ones, each with an id. It
//! comes from `HERMES_ENCRYPTION_KEYS` (`id:hex64,id:hex64`, primary first)
//! or the file named by `HERMES_ENCRYPTION_KEYS_FILE`, a mounted Secret
//! both processes read ([`Keyring::parse`] has the rules).
//!
//! [`Keyring::seal`] encrypts a credential under the primary key with a
//! fresh random 96-bit nonce, into an [`Envelope`] that names the key. The
//! associated data binds the ciphertext to its customer, its platform and
//! its key id, so an envelope copied under another customer's or another
//! platform's Redis key fails to open. [`Keyring::open`] accepts an
//! envelope sealed by any key of the ring; [`Keyring::reseal`] is how the
//! operator moves what an older key sealed onto the primary, after which
//! the older key can leave the ring.
//!
//! No plaintext or key material reaches an error message or a `Debug`
//! output: errors name key ids, entry positions, variables, paths and the
//! shape of what was wrong. Opened plaintext is returned in [`Zeroizing`],
//! so it is wiped when dropped.

mod keyring;
mod seal;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

pub use keyring::{KEYS_FILE_VAR, KEYS_VAR, Keyring, KeyringError};
pub use seal::VaultError;

/// The envelope format version [`Keyring::seal`] writes and [`Keyring::open`] reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// A sealed credential as stored: which key sealed it, the nonce and the ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The envelope format version.
    pub v: u8,
    /// The id of the keyring key that sealed it.
    pub kid: String,
    /// The 96-bit nonce, base64.
    pub nonce: String,
    /// The ciphertext with its tag, base64.
    pub ct: String,
}

/// HMAC-SHA256 of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);

    let mut digest = Zeroizing::new([0_u8; 32]);
    digest.copy_from_slice(&mac.finalize().into_bytes());
    digest
}
