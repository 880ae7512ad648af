//! The fields of a Kubernetes Secret, held so they are wiped when dropped.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Secret;
use zeroize::Zeroizing;

use super::TenancyError;

/// The fields of a Secret as text, each value wiped from memory on drop.
///
/// Values are stored as given except for trailing line breaks, which are
/// removed: a token saved with `echo` or an editor and loaded with
/// `kubectl create secret --from-file` ends with one, and no platform
/// credential does. Other whitespace is kept.
///
/// `Debug` prints the field names only, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData {
    fields: BTreeMap<String, Zeroizing<String>>,
}

impl SecretData {
    /// An empty set of fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a Secret's `data` (bytes, which must be UTF-8) and `stringData`.
    ///
    /// A key in both takes its `stringData` value, as the API server does
    /// when it merges `stringData` into `data` on write.
    ///
    /// # Errors
    ///
    /// [`TenancyError::SecretNotUtf8`] naming the Secret and the key (never
    /// the value) when a `data` value is not UTF-8 text.
    pub fn from_secret(secret: &Secret) -> Result<Self, TenancyError> {
        let mut fields = Self::new();

        for (key, bytes) in secret.data.iter().flatten() {
            let text = String::from_utf8(bytes.0.clone()).map_err(|error| {
                // The rejected bytes are a secret too: wipe them before they are freed.
                drop(Zeroizing::new(error.into_bytes()));
                TenancyError::SecretNotUtf8 {
                    secret: secret.metadata.name.clone().unwrap_or_default(),
                    key: key.clone(),
                }
            })?;
            fields.insert(key.clone(), text);
        }

        for (key, text) in secret.string_data.iter().flatten() {
            fields.insert(key.clone(), text.clone());
        }

        Ok(fields)
    }

    /// Sets a field, replacing any earlier value; trailing line breaks are removed.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let mut value = Zeroizing::new(value.into());
        let kept = value.trim_end_matches(['\r', '\n']).len();
        value.truncate(kept);
        self.fields.insert(key.into(), value);
    }

    /// A field's value, if the field is present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(|value| value.as_str())
    }

    /// A field's value, if the field is present and not blank. A blank
    /// value counts as missing everywhere Hermes checks requirements.
    pub fn non_blank(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|value| !value.trim().is_empty())
    }

    /// The field names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for SecretData {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut fields = Self::new();
        for (key, value) in iter {
            fields.insert(key, value);
        }
        fields
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("keys", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn secret(data: &[(&str, &[u8])], string_data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("acme-whatsapp".into()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(key, value)| ((*key).to_owned(), ByteString(value.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            string_data: Some(
                string_data
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn data_and_string_data_are_merged_with_string_data_winning() {
        let secret = secret(
            &[("accessToken", b"from-data"), ("appSecret", b"app")],
            &[("accessToken", "from-string-data")],
        );

        let fields = SecretData::from_secret(&secret).expect("both maps are UTF-8");

        assert_eq!(fields.get("accessToken"), Some("from-string-data"));
        assert_eq!(fields.get("appSecret"), Some("app"));
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn a_secret_without_data_is_empty() {
        let fields = SecretData::from_secret(&Secret::default()).expect("nothing to decode");

        assert!(fields.is_empty());
    }

    #[test]
    fn non_utf8_data_is_refused_naming_the_secret_and_key() {
        let secret = secret(&[("accessToken", &[0xff, 0xfe, 0x41])], &[]);

        let error = SecretData::from_secret(&secret).expect_err("0xff is not UTF-8");

        assert!(matches!(
            &error,
            TenancyError::SecretNotUtf8 { secret, key } if secret == "acme-whatsapp" && key == "accessToken"
        ));
    }

    #[test]
    fn trailing_line_breaks_are_removed_and_other_whitespace_kept() {
        let fields: SecretData = [("a", "token\n"), ("b", "token\r\n"), ("c", " pass word ")]
            .into_iter()
            .collect();

        assert_eq!(fields.get("a"), Some("token"));
        assert_eq!(fields.get("b"), Some("token"));
        assert_eq!(fields.get("c"), Some(" pass word "));
    }

    #[test]
    fn blank_values_are_not_non_blank() {
        let fields: SecretData = [("empty", ""), ("spaces", "  "), ("set", "x")]
            .into_iter()
            .collect();

        assert_eq!(fields.non_blank("empty"), None);
        assert_eq!(fields.non_blank("spaces"), None);
        assert_eq!(fields.non_blank("absent"), None);
        assert_eq!(fields.non_blank("set"), Some("x"));
    }

    #[test]
    fn debug_shows_keys_and_never_values() {
        let fields: SecretData = [("accessToken", "EAAG-very-secret")].into_iter().collect();

        let debug = format!("{fields:?}");

        assert!(debug.contains("accessToken"), "{debug}");
        assert!(!debug.contains("EAAG-very-secret"), "{debug}");
    }
}
