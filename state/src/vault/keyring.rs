//! Loading the keyring: parsing `id:hex64` entries from a string, the
//! environment or a mounted file, and generating a throwaway ring for `dev`.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;

use aes_gcm::aead::KeyInit;
use aes_gcm::{Aes256Gcm, Key};
use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

use super::hmac_sha256;

/// The variable holding the keyring inline: comma-separated `id:hex64`, the first primary.
pub const KEYS_VAR: &str = "HERMES_ENCRYPTION_KEYS";

/// The variable naming a file that holds the keyring, as a mounted Secret does.
pub const KEYS_FILE_VAR: &str = "HERMES_ENCRYPTION_KEYS_FILE";

/// The longest key id accepted, in characters.
const MAX_KEY_ID_LEN: usize = 64;

/// A key id this long made only of hex digits is refused: it is what an
/// entry written key-first (`hex64:id`), or a key with a stray `:` and no
/// id, looks like, and ids are echoed in error messages while key material
/// must never be. A shorter all-hex id is accepted and may be echoed: a
/// mangled entry can then show at most 60 bits of a 256-bit key.
const KEY_LIKE_ID_LEN: usize = 16;

/// The label the fingerprint subkey is derived under, so the digest key is
/// never the encryption key itself.
const FINGERPRINT_LABEL: &[u8] = b"hermes/fingerprint/v1";

// The ciphers hold the expanded AES keys; they must wipe them when dropped.
// This stops compiling if aes-gcm's `zeroize` feature is ever turned off.
const _: fn() = || {
    fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wipes_on_drop::<Aes256Gcm>();
};

/// The AES-256-GCM keys credentials are sealed with: one primary key that
/// seals, and older keys that still open what they sealed.
///
/// Key material never leaves the ring: `Debug` shows key ids only, the raw
/// key bytes are wiped right after parsing, and the ciphers built from them
/// wipe themselves on drop.
#[derive(Clone)]
pub struct Keyring {
    /// The keys, primary first; never empty.
    pub(super) keys: Vec<RingKey>,
    /// The HMAC key of [`Keyring::fingerprint`], derived from the primary key.
    pub(super) fingerprint_key: Zeroizing<[u8; 32]>,
}

/// One key of the ring: its id and the cipher keyed with it.
#[derive(Clone)]
pub(super) struct RingKey {
    pub(super) id: String,
    pub(super) cipher: Aes256Gcm,
}

/// The error of loading a keyring.
///
/// Messages name the variable, file, entry position or key id at fault and
/// never any key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The spec holds no entry at all.
    #[error("the keyring is empty: expected comma-separated `id:hex64` entries, the first one primary")]
    Empty,

    /// An entry has no `:` between its key id and its key.
    #[error(
        "keyring entry {position} (counting from 1) has no ':' between key id and key; expected `id:hex64`"
    )]
    MissingColon {
        /// The position of the entry in the spec, counting from 1.
        position: usize,
    },

    /// An entry's key id is not 1 to 64 characters of `[A-Za-z0-9_.-]`.
    #[error(
        "keyring entry {position} (counting from 1) has an invalid key id: expected 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"
    )]
    InvalidId {
        /// The position of the entry in the spec, counting from 1.
        position: usize,
    },

    /// An entry's key id is a long run of hex digits: a key written where its id belongs.
    #[error(
        "keyring entry {position} (counting from 1) has a key id that looks like key material (16 or more hex digits); expected `id:hex64`, id first"
    )]
    IdLooksLikeKey {
        /// The position of the entry in the spec, counting from 1.
        position: usize,
    },

    /// A key is not made of hex digits.
    #[error("key {kid:?} is not hexadecimal; expected 64 hex digits")]
    BadHex {
        /// The id of the key.
        kid: String,
    },

    /// A key is hex of the wrong length.
    #[error("key {kid:?} is {len} hex digits long; expected 64 (a 256-bit key)")]
    WrongLength {
        /// The id of the key.
        kid: String,
        /// The number of hex digits found.
        len: usize,
    },

    /// Two entries share a key id.
    #[error("key id {kid:?} appears more than once in the keyring")]
    DuplicateId {
        /// The repeated key id.
        kid: String,
    },

    /// Neither keyring variable is set.
    #[error("no keyring configured: set {KEYS_VAR} or {KEYS_FILE_VAR}")]
    NotConfigured,

    /// Both keyring variables are set, so which one holds the current keys is ambiguous.
    #[error("both {KEYS_VAR} and {KEYS_FILE_VAR} are set; set only one")]
    BothConfigured,

    /// A keyring variable holds bytes that are not UTF-8.
    #[error("{var} is not valid UTF-8")]
    VarNotUnicode {
        /// The name of the variable.
        var: &'static str,
    },

    /// The keyring file could not be read.
    #[error("cannot read the keyring file {path:?} named by {KEYS_FILE_VAR}")]
    ReadFileFailed {
        /// The path of the file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },

    /// The keyring file holds bytes that are not UTF-8.
    #[error("the keyring file {path:?} named by {KEYS_FILE_VAR} is not valid UTF-8")]
    FileNotUnicode {
        /// The path of the file.
        path: PathBuf,
    },
}

impl Keyring {
    /// Parses a keyring spec: `id:hex64` entries, the first one primary.
    ///
    /// Entries are separated by commas, whitespace or newlines (so a
    /// mounted file may hold one per line); empty entries are skipped. A key
    /// id is 1 to 64 characters of `[A-Za-z0-9_.-]`, unique in the ring, and
    /// not 16 or more hex digits alone (that is a key in the id's place); a
    /// key is 64 hex digits of either case.
    ///
    /// # Errors
    ///
    /// A [`KeyringError`] naming the first entry at fault by its position or
    /// key id.
    pub fn parse(spec: &str) -> Result<Keyring, KeyringError> {
        let mut keys: Vec<RingKey> = Vec::new();
        let mut primary_raw = None;

        let entries = spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty());
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let (id, hex) = entry
                .split_once(':')
                .ok_or(KeyringError::MissingColon { position })?;

            if !has_key_id_form(id) {
                return Err(KeyringError::InvalidId { position });
            }
            if looks_like_key(id) {
                return Err(KeyringError::IdLooksLikeKey { position });
            }
            if keys.iter().any(|key| key.id == id) {
                return Err(KeyringError::DuplicateId { kid: id.to_owned() });
            }

            let raw = decode_key(id, hex)?;
            keys.push(RingKey::new(id, &raw));
            if primary_raw.is_none() {
                primary_raw = Some(raw);
            }
        }

        let primary_raw = primary_raw.ok_or(KeyringError::Empty)?;
        Ok(Keyring {
            keys,
            fingerprint_key: derive_fingerprint_key(&primary_raw),
        })
    }

    /// Loads the keyring from [`KEYS_VAR`], or from the file named by
    /// [`KEYS_FILE_VAR`], parsed as [`Keyring::parse`] does. A variable set
    /// to the empty string counts as unset, as templated manifests often
    /// leave one.
    ///
    /// # Errors
    ///
    /// [`KeyringError::NotConfigured`] when neither variable is set,
    /// [`KeyringError::BothConfigured`] when both are, an error naming the
    /// variable or the file when it cannot be read, and any parse error.
    pub fn from_env() -> Result<Keyring, KeyringError> {
        Self::from_sources(std::env::var_os(KEYS_VAR), std::env::var_os(KEYS_FILE_VAR))
    }

    /// Loads the keyring from the values of the two variables, unset as `None`.
    fn from_sources(inline: Option<OsString>, file: Option<OsString>) -> Result<Keyring, KeyringError> {
        let set = |value: Option<OsString>| value.filter(|value| !value.is_empty());
        match (set(inline), set(file)) {
            (None, None) => Err(KeyringError::NotConfigured),
            (Some(_), Some(_)) => Err(KeyringError::BothConfigured),
            (Some(inline), None) => {
                let spec = inline
                    .into_string()
                    .map(Zeroizing::new)
                    .map_err(|_| KeyringError::VarNotUnicode { var: KEYS_VAR })?;
                Self::parse(&spec)
            }
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let contents = match std::fs::read(&path) {
                    Ok(contents) => Zeroizing::new(contents),
                    Err(source) => return Err(KeyringError::ReadFileFailed { path, source }),
                };
                let spec =
                    std::str::from_utf8(&contents).map_err(|_| KeyringError::FileNotUnicode { path })?;
                Self::parse(spec)
            }
        }
    }

    /// A ring of one fresh random key named `id`, for `dev` mode and tests.
    /// What it seals cannot be opened once it is dropped.
    ///
    /// # Panics
    ///
    /// If `id` is not a valid key id (1 to 64 characters of
    /// `[A-Za-z0-9_.-]`, not 16 or more hex digits alone), or if the
    /// operating system's random source fails.
    pub fn generate(id: &str) -> Keyring {
        assert!(
            is_valid_key_id(id),
            "Keyring::generate takes a key id of 1 to 64 characters of [A-Za-z0-9_.-], not a key"
        );

        let mut raw = Zeroizing::new([0_u8; 32]);
        SysRng
            .try_fill_bytes(raw.as_mut_slice())
            .expect("the operating system's random source is available to draw a key from");

        Keyring {
            keys: vec![RingKey::new(id, &raw)],
            fingerprint_key: derive_fingerprint_key(&raw),
        }
    }

    /// The id of the primary key, the one that seals.
    pub fn primary_id(&self) -> &str {
        &self.primary().id
    }

    /// The ids of every key in the ring, primary first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }

    /// The primary key; it is first, and a ring is never empty (`parse`
    /// refuses an empty spec, `generate` makes one key).
    pub(super) fn primary(&self) -> &RingKey {
        &self.keys[0]
    }

    /// The key with this id, if the ring holds it.
    pub(super) fn key(&self, id: &str) -> Option<&RingKey> {
        self.keys.iter().find(|key| key.id == id)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary_id())
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RingKey {
    fn new(id: &str, raw: &[u8; 32]) -> RingKey {
        RingKey {
            id: id.to_owned(),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::cast_from_core(raw)),
        }
    }
}

/// Whether `id` can name a key of a ring: 1 to 64 characters of
/// `[A-Za-z0-9_.-]` that do not look like key material.
pub(super) fn is_valid_key_id(id: &str) -> bool {
    has_key_id_form(id) && !looks_like_key(id)
}

/// Whether `id` is 1 to 64 characters of `[A-Za-z0-9_.-]`.
fn has_key_id_form(id: &str) -> bool {
    let valid_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    valid_chars && (1..=MAX_KEY_ID_LEN).contains(&id.len())
}

/// Whether `id` is a long run of hex digits, as key material is.
fn looks_like_key(id: &str) -> bool {
    id.len() >= KEY_LIKE_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Decodes the 64 hex digits of key `id` into 32 bytes.
fn decode_key(id: &str, hex: &str) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    // The hex decoder's own error names the offending character and its
    // offset, a piece of the key: it is checked here first and never shown.
    let bad_hex = || KeyringError::BadHex { kid: id.to_owned() };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_hex());
    }
    if hex.len() != 64 {
        return Err(KeyringError::WrongLength {
            kid: id.to_owned(),
            len: hex.len(),
        });
    }

    let mut raw = Zeroizing::new([0_u8; 32]);
    hex::decode_to_slice(hex, raw.as_mut_slice()).map_err(|_| bad_hex())?;
    Ok(raw)
}

/// The fingerprint subkey: HMAC-SHA256 of a fixed label under the primary key.
fn derive_fingerprint_key(primary: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    hmac_sha256(primary, FINGERPRINT_LABEL)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn inline_variable_is_parsed_as_a_spec() {
        let inline = OsString::from(format!("k2:{K2},k1:{K1}"));

        let ring = Keyring::from_sources(Some(inline), None).expect("a valid inline spec loads");

        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
    }

    #[test]
    fn file_with_one_entry_per_line_is_parsed() {
        let mut file = tempfile::NamedTempFile::new().expect("a temp file can be created");
        write!(file, "k2:{K2}\n  k1:{K1}\n\n").expect("the temp file is writable");

        let ring = Keyring::from_sources(None, Some(file.path().as_os_str().to_owned()))
            .expect("a valid keyring file loads");

        assert_eq!(ring.primary_id(), "k2");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
    }

    #[test]
    fn neither_variable_set_names_both_variables() {
        let error = Keyring::from_sources(None, None).expect_err("no source is an error");

        assert!(matches!(error, KeyringError::NotConfigured));
        let message = error.to_string();
        assert!(
            message.contains(KEYS_VAR) && message.contains(KEYS_FILE_VAR),
            "{message}"
        );
    }

    #[test]
    fn variable_set_to_the_empty_string_counts_as_unset() {
        let inline = OsString::from(format!("k1:{K1}"));

        let ring = Keyring::from_sources(Some(inline), Some(OsString::new()))
            .expect("an empty file variable is ignored");
        let error = Keyring::from_sources(Some(OsString::new()), None).expect_err("nothing is set");

        assert_eq!(ring.primary_id(), "k1");
        assert!(matches!(error, KeyringError::NotConfigured), "{error:?}");
    }

    #[test]
    fn both_variables_set_are_refused_as_ambiguous() {
        let inline = OsString::from(format!("k1:{K1}"));

        let error = Keyring::from_sources(Some(inline), Some(OsString::from("/keys")))
            .expect_err("two sources are an error");

        assert!(matches!(error, KeyringError::BothConfigured));
    }

    #[test]
    fn missing_keyring_file_names_the_path() {
        let dir = tempfile::tempdir().expect("a temp dir can be created");
        let path = dir.path().join("no-such-keys");

        let error = Keyring::from_sources(None, Some(path.clone().into_os_string()))
            .expect_err("a missing file is an error");

        assert!(matches!(error, KeyringError::ReadFileFailed { .. }));
        let message = error.to_string();
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(message.contains(KEYS_FILE_VAR), "{message}");
    }

    #[test]
    fn keyring_file_that_is_not_utf8_is_refused_without_its_contents() {
        let mut file = tempfile::NamedTempFile::new().expect("a temp file can be created");
        file.write_all(format!("k1:{K1}\n").as_bytes())
            .and_then(|()| file.write_all(&[0xff, 0xfe]))
            .expect("the temp file is writable");

        let error = Keyring::from_sources(None, Some(file.path().as_os_str().to_owned()))
            .expect_err("a non-UTF-8 file is an error");

        assert!(matches!(error, KeyringError::FileNotUnicode { .. }));
        assert!(!error.to_string().contains(K1) && !format!("{error:?}").contains(K1));
    }

    #[cfg(unix)]
    #[test]
    fn inline_variable_that_is_not_utf8_names_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let inline = OsString::from_vec(vec![b'k', b'1', b':', 0xff]);

        let error = Keyring::from_sources(Some(inline), None).expect_err("non-UTF-8 is an error");

        assert!(matches!(error, KeyringError::VarNotUnicode { var: KEYS_VAR }));
        assert!(error.to_string().contains(KEYS_VAR));
    }

    #[test]
    fn fingerprint_key_is_derived_and_not_the_primary_key() {
        let ring = Keyring::parse(&format!("k1:{K1}")).expect("a valid spec parses");

        assert_ne!(hex::encode(*ring.fingerprint_key), K1);
        assert_eq!(*ring.fingerprint_key, *derive_fingerprint_key(&[0x11; 32]));
    }

    #[test]
    #[should_panic(expected = "Keyring::generate takes a key id")]
    fn generate_refuses_an_invalid_key_id() {
        let _ = Keyring::generate("not valid!");
    }
}
