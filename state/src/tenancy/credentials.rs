//! The credential document the operator seals and the server opens.

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use hermes_crds::Platform;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::TenancyError;
use crate::CustomerId;
use crate::vault::{Envelope, Keyring};

/// Everything the server needs to act on one connection: the plaintext
/// sealed into `creds:{<customer>}:<platform>`.
///
/// Serialized as camelCase JSON:
///
/// ```json
/// {"platform":"whatsapp","sandbox":false,"apiBase":"http://127.0.0.1:9000",
///  "settings":{"phoneNumberId":"1065…","businessAccountId":"2041…"},
///  "secrets":{"accessToken":"EAAG…"}}
/// ```
///
/// `settings` is the connection spec's platform block (`spec.whatsapp` and
/// so on) as the CRD spells it; read it with [`settings_as`](Self::settings_as)
/// and the matching `hermes_crds` settings type. `secrets` holds only the
/// fields [`secret_requirements`](super::secret_requirements) knows, none blank.
/// Readers ignore fields they do not know, so a newer operator can add
/// fields without breaking an older server.
///
/// Secret values are wiped from memory when the document is dropped, and
/// `Debug` prints only their names.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The platform these credentials reach.
    pub platform: Platform,
    /// True when send tools record to the outbox instead of calling the platform.
    #[serde(default)]
    pub sandbox: bool,
    /// A per-connection override of the platform's API base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// The platform block of the connection spec, camelCase.
    #[serde(default)]
    pub settings: serde_json::Value,
    /// The secret fields by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

impl Credentials {
    /// A secret field's value.
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).map(String::as_str)
    }

    /// The settings as the platform's settings type, e.g. `WhatsappSettings`.
    ///
    /// # Errors
    ///
    /// [`TenancyError::SettingsMalformed`] when the settings do not have that
    /// type's shape. Settings hold no secrets, so the reason is detailed.
    pub fn settings_as<T: DeserializeOwned>(&self) -> Result<T, TenancyError> {
        T::deserialize(&self.settings).map_err(|error| TenancyError::SettingsMalformed {
            platform: self.platform,
            reason: error.to_string(),
        })
    }

    /// The document as JSON, in a buffer wiped on drop.
    ///
    /// Map keys are sorted, so equal documents give equal bytes.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        to_json(self)
    }

    /// Parses a document written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    ///
    /// [`TenancyError::CredentialsMalformed`] with the position of the fault.
    /// The parser's own message is dropped: it may quote the input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TenancyError> {
        serde_json::from_slice(bytes).map_err(|error| TenancyError::CredentialsMalformed {
            category: match error.classify() {
                serde_json::error::Category::Io => "unreadable",
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Data => "not a credentials document",
                serde_json::error::Category::Eof => "truncated",
            },
            line: error.line(),
            column: error.column(),
        })
    }

    /// Seals the document for `customer` under the keyring's primary key.
    ///
    /// # Errors
    ///
    /// [`TenancyError::SealFailed`] when the vault refuses.
    pub fn seal(&self, keyring: &Keyring, customer: &CustomerId) -> Result<Envelope, TenancyError> {
        keyring
            .seal(customer, self.platform, &self.to_bytes())
            .map_err(TenancyError::SealFailed)
    }

    /// Opens the envelope stored for `customer` on `platform` and parses it.
    ///
    /// # Errors
    ///
    /// [`TenancyError::OpenFailed`] when no key of the keyring opens it (or
    /// it was sealed for another customer or platform), and
    /// [`TenancyError::CredentialsMalformed`] when the plaintext is not a
    /// credentials document.
    pub fn open(
        keyring: &Keyring,
        customer: &CustomerId,
        platform: Platform,
        envelope: &Envelope,
    ) -> Result<Self, TenancyError> {
        let plaintext = keyring
            .open(customer, platform, envelope)
            .map_err(TenancyError::OpenFailed)?;
        Self::from_bytes(&plaintext)
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        for value in self.secrets.values_mut() {
            value.zeroize();
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("platform", &self.platform)
            .field("sandbox", &self.sandbox)
            .field("api_base", &self.api_base)
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Serializes `value` as JSON into a buffer wiped on drop.
///
/// The exact length is measured first so the buffer is allocated once: a
/// growing `Vec` would leave copies of its earlier contents in freed memory.
pub(super) fn to_json<T: Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value)
        .expect("the JSON of plain strings, numbers and maps always serializes");

    let mut buffer = Zeroizing::new(Vec::with_capacity(counter.0));
    serde_json::to_writer(&mut *buffer, value)
        .expect("the JSON of plain strings, numbers and maps always serializes");
    buffer
}

/// A writer that only counts the bytes written to it.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hermes_crds::WhatsappSettings;
    use serde_json::json;

    use super::*;

    fn whatsapp() -> Credentials {
        Credentials {
            platform: Platform::Whatsapp,
            sandbox: false,
            api_base: Some("http://127.0.0.1:9000".into()),
            settings: json!({"phoneNumberId": "1065", "businessAccountId": "2041"}),
            secrets: BTreeMap::from([("accessToken".to_owned(), "EAAG-secret-value".to_owned())]),
        }
    }

    #[test]
    fn bytes_round_trip_to_an_equal_document() {
        let credentials = whatsapp();

        let parsed = Credentials::from_bytes(&credentials.to_bytes()).expect("to_bytes writes valid JSON");

        assert_eq!(parsed, credentials);
    }

    #[test]
    fn serialized_form_is_camel_case_with_the_documented_fields() {
        let value: serde_json::Value =
            serde_json::from_slice(&whatsapp().to_bytes()).expect("to_bytes writes valid JSON");

        assert_eq!(
            value,
            json!({
                "platform": "whatsapp",
                "sandbox": false,
                "apiBase": "http://127.0.0.1:9000",
                "settings": {"phoneNumberId": "1065", "businessAccountId": "2041"},
                "secrets": {"accessToken": "EAAG-secret-value"},
            })
        );
    }

    #[test]
    fn unknown_fields_are_ignored_when_reading() {
        let bytes = br#"{"platform":"discord","secrets":{"botToken":"t"},"addedLater":1}"#;

        let parsed = Credentials::from_bytes(bytes).expect("unknown fields are tolerated");

        assert_eq!(parsed.secret("botToken"), Some("t"));
        assert!(!parsed.sandbox);
    }

    #[test]
    fn settings_read_back_as_the_platform_settings_type() {
        let settings: WhatsappSettings = whatsapp().settings_as().expect("the block has the right shape");

        assert_eq!(settings.phone_number_id, "1065");
    }

    #[test]
    fn settings_of_the_wrong_shape_are_a_settings_error() {
        let error = whatsapp()
            .settings_as::<hermes_crds::EmailSettings>()
            .expect_err("a WhatsApp block is not email settings");

        assert!(matches!(
            error,
            TenancyError::SettingsMalformed {
                platform: Platform::Whatsapp,
                ..
            }
        ));
    }

    #[test]
    fn malformed_bytes_give_an_error_that_does_not_quote_them() {
        let bytes = br#"{"platform":"whatsapp","secrets":"EAAG-secret-value"}"#;

        let error = Credentials::from_bytes(bytes).expect_err("secrets must be a map");

        assert!(matches!(error, TenancyError::CredentialsMalformed { .. }));
        assert!(!error.to_string().contains("EAAG-secret-value"), "{error}");
        assert!(!format!("{error:?}").contains("EAAG-secret-value"), "{error:?}");
    }

    #[test]
    fn debug_names_secret_fields_but_not_their_values() {
        let debug = format!("{:?}", whatsapp());

        assert!(debug.contains("accessToken"), "{debug}");
        assert!(!debug.contains("EAAG-secret-value"), "{debug}");
    }

    #[test]
    fn json_buffer_is_allocated_exactly_once() {
        let bytes = whatsapp().to_bytes();

        assert_eq!(bytes.capacity(), bytes.len());
    }
}
