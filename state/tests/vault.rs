//! The vault seen from outside: sealing and opening, key rotation, keyring
//! parsing, and that no secret reaches an error or a `Debug` output.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hermes_crds::Platform;
use hermes_state::CustomerId;
use hermes_state::vault::{ENVELOPE_VERSION, Envelope, Keyring, KeyringError, VaultError};

/// Key material that must never be shown.
const K1: &str = "5f2b9c0e7a41d38866e0c2f4a9b17d3e0c5a8f6b2d4e1937a0b8c6d5e4f3a2b1";
const K2: &str = "c3d9e1f7a5b0284637ed91c0b2a4f6e8d0c2b4a69788e6f5d4c3b2a1f0e9d8c7";
const K3: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// A credential that must never be shown.
const PLAINTEXT: &[u8] = b"EAAG-secret-whatsapp-token-8842";

fn customer(id: &str) -> CustomerId {
    CustomerId::new(id).expect("test customer ids are valid")
}

fn keyring(spec: &str) -> Keyring {
    Keyring::parse(spec).expect("test keyring specs are valid")
}

fn seal(ring: &Keyring, plaintext: &[u8]) -> Envelope {
    ring.seal(&customer("acme"), Platform::Whatsapp, plaintext)
        .expect("sealing succeeds")
}

fn open(ring: &Keyring, envelope: &Envelope) -> Result<Vec<u8>, VaultError> {
    ring.open(&customer("acme"), Platform::Whatsapp, envelope)
        .map(|plaintext| plaintext.to_vec())
}

/// The envelope with another nonce.
fn with_nonce(envelope: &Envelope, nonce: impl Into<String>) -> Envelope {
    Envelope {
        nonce: nonce.into(),
        ..envelope.clone()
    }
}

/// The envelope with another ciphertext.
fn with_ct(envelope: &Envelope, ct: impl Into<String>) -> Envelope {
    Envelope {
        ct: ct.into(),
        ..envelope.clone()
    }
}

/// The envelope with another key id.
fn with_kid(envelope: &Envelope, kid: impl Into<String>) -> Envelope {
    Envelope {
        kid: kid.into(),
        ..envelope.clone()
    }
}

/// Decodes a base64 field, flips one bit, and encodes it again.
fn flip_bit(field: &str, bit: usize) -> String {
    let mut bytes = BASE64.decode(field).expect("sealed fields are base64");
    bytes[bit / 8] ^= 1 << (bit % 8);
    BASE64.encode(bytes)
}

/// Whether `text` shows `secret` or any 12-character piece of it.
fn shows(text: &str, secret: &str) -> bool {
    let secret = secret.as_bytes();
    secret
        .windows(12.min(secret.len()))
        .any(|piece| text.contains(std::str::from_utf8(piece).expect("test secrets are ASCII")))
}

fn assert_hides(rendered: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !shows(rendered, secret),
            "{rendered:?} shows a piece of {secret:?}"
        );
    }
}

// Sealing and opening.

#[test]
fn credential_sealed_for_a_customer_opens_for_that_customer() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = ring
        .seal(&customer("acme"), Platform::Telegram, PLAINTEXT)
        .expect("sealing succeeds");

    let plaintext = ring
        .open(&customer("acme"), Platform::Telegram, &envelope)
        .expect("the same customer and platform open it");

    assert_eq!(plaintext.as_slice(), PLAINTEXT);
    assert_eq!(envelope.v, ENVELOPE_VERSION);
    assert_eq!(envelope.kid, "k1");
}

#[test]
fn empty_credential_seals_and_opens() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = seal(&ring, b"");

    let plaintext = open(&ring, &envelope);

    assert_eq!(plaintext, Ok(Vec::new()));
}

#[test]
fn envelope_copied_to_another_customer_fails_to_open() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = seal(&ring, PLAINTEXT);

    let result = ring.open(&customer("globex"), Platform::Whatsapp, &envelope);

    assert_eq!(result.map(|p| p.to_vec()), Err(VaultError::DecryptFailed));
}

#[test]
fn envelope_copied_to_another_platform_fails_to_open() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = seal(&ring, PLAINTEXT);

    let result = ring.open(&customer("acme"), Platform::Telegram, &envelope);

    assert_eq!(result.map(|p| p.to_vec()), Err(VaultError::DecryptFailed));
}

#[test]
fn envelope_relabelled_with_another_key_id_fails_to_open() {
    let ring = keyring(&format!("k2:{K2},k1:{K1}"));
    let envelope = seal(&ring, PLAINTEXT);

    let result = open(&ring, &with_kid(&envelope, "k1"));

    assert_eq!(result, Err(VaultError::DecryptFailed));
}

#[test]
fn any_flipped_bit_in_the_ciphertext_fails_to_open() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = seal(&ring, PLAINTEXT);
    let bits = 8 * BASE64.decode(&envelope.ct).expect("ct is base64").len();

    for bit in 0..bits {
        let tampered = with_ct(&envelope, flip_bit(&envelope.ct, bit));

        assert_eq!(
            open(&ring, &tampered),
            Err(VaultError::DecryptFailed),
            "bit {bit}"
        );
    }
}

#[test]
fn any_flipped_bit_in_the_nonce_fails_to_open() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = seal(&ring, PLAINTEXT);

    for bit in 0..96 {
        let tampered = with_nonce(&envelope, flip_bit(&envelope.nonce, bit));

        assert_eq!(
            open(&ring, &tampered),
            Err(VaultError::DecryptFailed),
            "bit {bit}"
        );
    }
}

#[test]
fn sealing_the_same_credential_twice_gives_different_nonces_and_ciphertexts() {
    let ring = keyring(&format!("k1:{K1}"));

    let first = seal(&ring, PLAINTEXT);
    let second = seal(&ring, PLAINTEXT);

    assert_ne!(first.nonce, second.nonce);
    assert_ne!(first.ct, second.ct);
}

#[test]
fn sealed_envelope_holds_a_96_bit_nonce_and_a_tagged_ciphertext() {
    let ring = keyring(&format!("k1:{K1}"));

    let envelope = seal(&ring, PLAINTEXT);

    let nonce = BASE64.decode(&envelope.nonce).expect("nonce is base64");
    let ct = BASE64.decode(&envelope.ct).expect("ct is base64");
    assert_eq!(nonce.len(), 12);
    assert_eq!(ct.len(), PLAINTEXT.len() + 16);
    assert!(!ct.windows(PLAINTEXT.len()).any(|w| w == PLAINTEXT));
}

#[test]
fn envelope_stored_by_an_earlier_build_still_opens() {
    // Sealed once with K1 for acme on whatsapp, and checked to open with
    // another AES-GCM implementation (Python `cryptography`) under the
    // associated data b"hermes/v1\0acme\0whatsapp\0k1". Pins the cipher,
    // the associated-data layout and the encoding against silent change.
    let ring = keyring(&format!("k1:{K1}"));
    let stored = Envelope {
        v: 1,
        kid: "k1".to_owned(),
        nonce: "/3cG0v7VivOIAN77".to_owned(),
        ct: "+QbwZDFvHmRfbW9kcUJB9ldCxew6rwfG9Dod+QsUXc7Va9Jb2zDCcp/lPEam/pM=".to_owned(),
    };

    let plaintext = open(&ring, &stored);

    assert_eq!(plaintext, Ok(PLAINTEXT.to_vec()));
}

#[test]
fn rings_generated_with_the_same_id_hold_different_keys() {
    let first = Keyring::generate("dev");
    let second = Keyring::generate("dev");
    let envelope = seal(&first, PLAINTEXT);

    let result = open(&second, &envelope);

    assert_eq!(first.primary_id(), "dev");
    assert_eq!(open(&first, &envelope), Ok(PLAINTEXT.to_vec()));
    assert_eq!(result, Err(VaultError::DecryptFailed));
}

// Malformed envelopes.

#[test]
fn envelope_of_an_unknown_version_is_refused() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = Envelope {
        v: 2,
        ..seal(&ring, PLAINTEXT)
    };

    let result = open(&ring, &envelope);

    assert_eq!(result, Err(VaultError::UnsupportedVersion(2)));
}

#[test]
fn envelope_with_undecodable_fields_is_refused_as_malformed() {
    let ring = keyring(&format!("k1:{K1}"));
    let good = seal(&ring, PLAINTEXT);
    let cases = [
        ("nonce not base64", with_nonce(&good, "***")),
        ("short nonce", with_nonce(&good, BASE64.encode([0_u8; 8]))),
        ("ct not base64", with_ct(&good, "not base64!")),
        ("ct shorter than tag", with_ct(&good, BASE64.encode([0_u8; 15]))),
        ("invalid key id", with_kid(&good, "k1/../k2")),
        ("empty key id", with_kid(&good, "")),
    ];

    for (case, envelope) in cases {
        let result = open(&ring, &envelope);

        assert!(
            matches!(result, Err(VaultError::MalformedEnvelope(_))),
            "{case}: {result:?}"
        );
    }
}

// Rotation.

#[test]
fn envelope_sealed_by_an_older_key_opens_after_rotation() {
    let envelope = seal(&keyring(&format!("k1:{K1}")), PLAINTEXT);
    let rotated = keyring(&format!("k2:{K2},k1:{K1}"));

    let plaintext = open(&rotated, &envelope);

    assert_eq!(plaintext, Ok(PLAINTEXT.to_vec()));
    assert!(!rotated.is_primary(&envelope));
}

#[test]
fn reseal_moves_an_older_envelope_onto_the_primary_key() {
    let envelope = seal(&keyring(&format!("k1:{K1}")), PLAINTEXT);
    let rotated = keyring(&format!("k2:{K2},k1:{K1}"));

    let resealed = rotated
        .reseal(&customer("acme"), Platform::Whatsapp, &envelope)
        .expect("an older envelope reseals")
        .expect("an older envelope is rewritten");

    assert_eq!(resealed.kid, "k2");
    assert!(rotated.is_primary(&resealed));
    assert_eq!(
        open(&keyring(&format!("k2:{K2}")), &resealed),
        Ok(PLAINTEXT.to_vec())
    );
}

#[test]
fn reseal_leaves_a_primary_envelope_as_it_is() {
    let rotated = keyring(&format!("k2:{K2},k1:{K1}"));
    let envelope = seal(&rotated, PLAINTEXT);

    let resealed = rotated.reseal(&customer("acme"), Platform::Whatsapp, &envelope);

    assert_eq!(resealed, Ok(None));
}

#[test]
fn reseal_reports_a_damaged_primary_envelope() {
    let ring = keyring(&format!("k2:{K2}"));
    let envelope = seal(&ring, PLAINTEXT);
    let tampered = with_ct(&envelope, flip_bit(&envelope.ct, 0));

    let resealed = ring.reseal(&customer("acme"), Platform::Whatsapp, &tampered);

    assert_eq!(resealed, Err(VaultError::DecryptFailed));
}

#[test]
fn opening_after_the_sealing_key_left_the_ring_names_that_key() {
    let envelope = seal(&keyring(&format!("k1:{K1}")), PLAINTEXT);
    let without_k1 = keyring(&format!("k2:{K2}"));

    let error = open(&without_k1, &envelope).expect_err("k1 is gone");

    assert_eq!(error, VaultError::UnknownKey { kid: "k1".to_owned() });
    assert!(error.to_string().contains("\"k1\""), "{error}");
}

// Keyring parsing.

#[test]
fn first_entry_is_the_primary_key() {
    let ring = keyring(&format!("k2:{K2},k1:{K1},k0:{K3}"));

    assert_eq!(ring.primary_id(), "k2");
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k2", "k1", "k0"]);
    assert_eq!(seal(&ring, PLAINTEXT).kid, "k2");
}

#[test]
fn whitespace_newlines_and_uppercase_hex_are_accepted() {
    let spec = format!("  k2:{}\n\tk1:{K1} ,\n", K2.to_uppercase());

    let ring = keyring(&spec);

    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
    let envelope = seal(&ring, PLAINTEXT);
    assert_eq!(
        open(&keyring(&format!("k2:{K2}")), &envelope),
        Ok(PLAINTEXT.to_vec())
    );
}

#[test]
fn key_ids_may_use_letters_digits_dots_dashes_and_underscores() {
    let id = format!("Prod_2026.01-{}", "x".repeat(51));

    let ring = keyring(&format!("{id}:{K1}"));

    assert_eq!(id.len(), 64);
    assert_eq!(ring.primary_id(), id);
}

#[test]
fn empty_ring_is_refused() {
    for spec in ["", "   ", ",\n,"] {
        let error = Keyring::parse(spec).expect_err("an empty ring is an error");

        assert!(matches!(error, KeyringError::Empty), "{spec:?}: {error:?}");
        assert!(error.to_string().contains("empty"), "{error}");
    }
}

#[test]
fn entry_without_a_colon_is_refused_by_its_position() {
    let error = Keyring::parse(&format!("k1:{K1},{K2}")).expect_err("no colon is an error");

    assert!(
        matches!(error, KeyringError::MissingColon { position: 2 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("entry 2"), "{error}");
}

#[test]
fn key_that_is_not_hex_is_refused_naming_its_id() {
    let bad = format!("{}zz", &K1[..62]);

    let error = Keyring::parse(&format!("k1:{bad}")).expect_err("bad hex is an error");

    assert!(
        matches!(&error, KeyringError::BadHex { kid } if kid == "k1"),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"k1\""), "{error}");
}

#[test]
fn key_of_the_wrong_length_is_refused_naming_id_and_length() {
    let error = Keyring::parse(&format!("k1:{}", &K1[..62])).expect_err("a short key is an error");

    assert!(
        matches!(&error, KeyringError::WrongLength { kid, len: 62 } if kid == "k1"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("\"k1\"") && message.contains("62"), "{message}");
}

#[test]
fn entry_with_an_empty_key_is_refused_as_the_wrong_length() {
    let error = Keyring::parse("k1:").expect_err("an empty key is an error");

    assert!(
        matches!(error, KeyringError::WrongLength { len: 0, .. }),
        "{error:?}"
    );
}

#[test]
fn duplicate_key_ids_are_refused() {
    let error = Keyring::parse(&format!("k1:{K1},k1:{K2}")).expect_err("a duplicate id is an error");

    assert!(
        matches!(&error, KeyringError::DuplicateId { kid } if kid == "k1"),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"k1\""), "{error}");
}

#[test]
fn invalid_key_ids_are_refused_by_position() {
    let too_long = "k".repeat(65);
    for id in ["", "k/1", "k+1", "clé", too_long.as_str()] {
        let spec = format!("k0:{K3},{id}:{K1}");

        let error = Keyring::parse(&spec).expect_err("an invalid id is an error");

        assert!(
            matches!(error, KeyringError::InvalidId { position: 2 }),
            "{id:?}: {error:?}"
        );
        assert!(error.to_string().contains("entry 2"), "{error}");
    }
}

#[test]
fn entry_written_key_first_is_refused_without_echoing_the_key() {
    let error = Keyring::parse(&format!("{K1}:k1")).expect_err("a key-first entry is an error");

    assert!(
        matches!(error, KeyringError::IdLooksLikeKey { position: 1 }),
        "{error:?}"
    );
    assert_hides(&error.to_string(), &[K1]);
}

// No secret leaks.

#[test]
fn keyring_errors_never_show_key_material() {
    let specs = [
        format!("k1:{}zz", &K1[..62]),
        format!("k1:{}", &K1[..62]),
        format!("k1:{K1}00"),
        format!("k1:{K1},k1:{K2}"),
        format!("k1:{K1},{K2}"),
        K1.to_owned(),
        format!("{K1}:k1"),
        format!("{K1}:{K2}"),
        format!("{}:{K2}", &K1[..40]),
        format!("{}:{K2}", &K1[..16]),
        format!("{}:zz", &K1[..16]),
        format!("k 1:{K1}"),
        format!("k1:{K1} {}", &K2[..20]),
        format!("k1:{K1},k\u{e9}:{K2}"),
    ];

    for spec in &specs {
        let error = Keyring::parse(spec).expect_err("every spec here is invalid");

        assert_hides(&error.to_string(), &[K1, K2]);
        assert_hides(&format!("{error:?}"), &[K1, K2]);
    }
}

#[test]
fn keyring_debug_shows_only_key_ids() {
    let ring = keyring(&format!("k2:{K2},k1:{K1}"));

    let debug = format!("{ring:?}");

    assert!(debug.contains("k2") && debug.contains("k1"), "{debug}");
    assert_hides(&debug, &[K1, K2]);
    assert_hides(&format!("{ring:#?}"), &[K1, K2]);
}

#[test]
fn open_errors_never_show_the_credential_or_the_keys() {
    let ring = keyring(&format!("k2:{K2},k1:{K1}"));
    let good = seal(&ring, PLAINTEXT);
    let secret = std::str::from_utf8(PLAINTEXT).expect("the test credential is ASCII");
    let altered = [
        with_ct(&good, flip_bit(&good.ct, 3)),
        with_nonce(&good, flip_bit(&good.nonce, 3)),
        with_kid(&good, "k1"),
        with_kid(&good, "k9"),
        with_kid(&good, K1),
        with_kid(&good, format!("{secret}!")),
        Envelope { v: 9, ..good.clone() },
        with_nonce(&good, secret),
        with_nonce(&good, BASE64.encode(PLAINTEXT)),
        with_ct(&good, secret),
        with_ct(&good, BASE64.encode(PLAINTEXT)),
        with_ct(&good, BASE64.encode(&PLAINTEXT[..8])),
    ];
    let mut errors: Vec<VaultError> = altered
        .iter()
        .map(|envelope| open(&ring, envelope).expect_err("every altered envelope fails to open"))
        .collect();
    for (id, platform) in [("globex", Platform::Whatsapp), ("acme", Platform::Email)] {
        let result = ring.open(&customer(id), platform, &good);
        errors.push(result.expect_err("another customer or platform fails to open"));
    }

    for error in errors {
        assert_hides(&error.to_string(), &[secret, K1, K2]);
        assert_hides(&format!("{error:?}"), &[secret, K1, K2]);
    }
}

// Fingerprints.

#[test]
fn fingerprint_is_the_primary_id_and_32_hex_digits() {
    let ring = keyring(&format!("k2:{K2},k1:{K1}"));

    let fingerprint = ring.fingerprint(PLAINTEXT);

    let (kid, digest) = fingerprint
        .split_once(':')
        .expect("a fingerprint has an id prefix");
    assert_eq!(kid, "k2");
    assert_eq!(digest.len(), 32);
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_hides(
        &fingerprint,
        &[std::str::from_utf8(PLAINTEXT).expect("ASCII"), K1, K2],
    );
}

#[test]
fn fingerprint_is_stable_for_the_same_primary_key_and_data() {
    let first = keyring(&format!("k2:{K2},k1:{K1}"));
    let second = keyring(&format!("k2:{K2}"));

    assert_eq!(first.fingerprint(PLAINTEXT), second.fingerprint(PLAINTEXT));
}

#[test]
fn fingerprint_changes_with_the_data() {
    let ring = keyring(&format!("k1:{K1}"));

    assert_ne!(ring.fingerprint(b"token-a"), ring.fingerprint(b"token-b"));
}

#[test]
fn fingerprint_changes_when_the_primary_key_changes() {
    let old = keyring(&format!("k1:{K1}"));
    let same_id_new_key = keyring(&format!("k1:{K2}"));
    let rotated = keyring(&format!("k2:{K2},k1:{K1}"));

    let digest = |fingerprint: String| fingerprint.split_once(':').map(|(_, d)| d.to_owned());

    assert_ne!(
        digest(old.fingerprint(PLAINTEXT)),
        digest(same_id_new_key.fingerprint(PLAINTEXT))
    );
    assert_ne!(old.fingerprint(PLAINTEXT), rotated.fingerprint(PLAINTEXT));
}

#[test]
fn fingerprint_is_not_a_plain_hash_of_the_data() {
    use sha2::{Digest, Sha256};
    let ring = keyring(&format!("k1:{K1}"));

    let fingerprint = ring.fingerprint(PLAINTEXT);

    let plain = hex::encode(Sha256::digest(PLAINTEXT));
    assert!(!fingerprint.contains(&plain[..32]), "{fingerprint}");
}

// Storage form.

#[test]
fn envelope_round_trips_through_json() {
    let ring = keyring(&format!("k1:{K1}"));
    let envelope = seal(&ring, PLAINTEXT);

    let json = serde_json::to_string(&envelope).expect("an envelope serializes");
    let back: Envelope = serde_json::from_str(&json).expect("an envelope deserializes");

    assert_eq!(back, envelope);
    assert_eq!(open(&ring, &back), Ok(PLAINTEXT.to_vec()));
    let fields: serde_json::Value = serde_json::from_str(&json).expect("the envelope is JSON");
    let mut names: Vec<_> = fields
        .as_object()
        .expect("an envelope is a JSON object")
        .keys()
        .cloned()
        .collect();
    names.sort();
    assert_eq!(names, ["ct", "kid", "nonce", "v"]);
}
