//! Credential sealing: AES-256-GCM under a rotating keyring.

use serde::{Deserialize, Serialize};

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
