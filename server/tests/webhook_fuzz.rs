//! Fuzzing the webhook parsers, on stable Rust.
//!
//! cargo-fuzz needs a nightly toolchain, which CI does not have; so this is
//! a bounded, seeded loop in ordinary `#[test]`s that `cargo test` runs:
//!
//! 1. random byte strings of random lengths;
//! 2. valid WhatsApp, Instagram and Telegram payloads, mutated: bytes
//!    flipped, inserted and deleted, ranges duplicated, JSON fragments
//!    (`{`, `]`, `"`, `null`, huge numbers, deep nesting) spliced in;
//! 3. such mutated payloads, correctly signed, through the whole router.
//!
//! Every parser must return `Ok` or `Err` and never panic, an `Ok` must be
//! sound (dedup keys and documents filled in), and the router must answer
//! 200, 400 or 413, never a 5xx. Each loop stops after a number of cases or
//! two seconds, whichever comes first. `HERMES_FUZZ_SECONDS=<n>` runs each
//! loop for `n` seconds instead, however many cases that is, for a longer
//! local run; `HERMES_FUZZ_SEED` replays a run. A failure names the seed,
//! the case and the input in hex.

mod webhook_support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use hermes_server::webhook::payload::{self, MetaBatch, ParsedEvent, PayloadError};
use hermes_server::webhook::signature::MetaSignature;
use serde_json::json;
use webhook_support::{
    APP_SECRET, Harness, customer_id, phone_number_id, random_hex, signed, status_update, telegram,
    text_message, wamid, whatsapp_body,
};

/// Cases per loop when the time budget does not end it first.
const MAX_CASES: usize = 20_000;

/// Cases through the router, which costs more per case.
const MAX_ROUTER_CASES: usize = 600;

/// A small, fast PRNG (xorshift64*): the runs must be reproducible from a
/// seed, and the workspace has no fuzzing crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn seed() -> u64 {
    std::env::var("HERMES_FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x4845_524D_4553)
}

/// The case limit of a loop: `default`, or none when a time budget is set.
fn case_limit(default: usize) -> usize {
    if std::env::var("HERMES_FUZZ_SECONDS").is_ok() {
        usize::MAX
    } else {
        default
    }
}

fn budget() -> Duration {
    let seconds = std::env::var("HERMES_FUZZ_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(2);
    Duration::from_secs(seconds)
}

/// JSON fragments that push parsers towards their edges.
const FRAGMENTS: [&str; 16] = [
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"entry\":{}}",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let at = at.min(out.len() - 1);
                out[at] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next() as u8),
            2 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + rng.below(32)).min(out.len());
                let copy = out[start..end].to_vec();
                out.splice(at..at, copy);
            }
            4 => {
                let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes();
                out.splice(at..at, fragment.iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}

/// Valid payloads of every kind, the mutations' starting points.
fn corpus(number: &str) -> Vec<(Kind, Vec<u8>)> {
    let whatsapp = whatsapp_body(&[
        (number, text_message(&wamid(), "hello")),
        (number, status_update(&wamid(), "read")),
    ]);
    let bsuid = whatsapp_body(&[(
        number,
        json!({
            "contacts": [{ "profile": { "name": "Ana" }, "user_id": "US.1" }],
            "messages": [{ "from_user_id": "US.1", "id": wamid(), "type": "image", "image": { "id": "m", "caption": "c" } }],
        }),
    )]);
    let instagram = json!({
        "object": "instagram",
        "entry": [{ "id": "1784", "time": 1, "messaging": [
            { "sender": { "id": "IGSID" }, "recipient": { "id": "1784" }, "timestamp": 1, "message": { "mid": "mid.1", "text": "hi" } },
            { "sender": { "id": "IGSID" }, "reaction": { "mid": "mid.1", "action": "react", "emoji": "x" } },
        ], "changes": [{ "field": "comments", "value": { "id": "c", "text": "t" } }] }],
    });
    let update = json!({
        "update_id": 9,
        "message": { "message_id": 1, "date": 1, "chat": { "id": -5 }, "from": { "id": 7, "first_name": "A" }, "text": "hi" },
    });
    vec![
        (Kind::Whatsapp, whatsapp),
        (Kind::Whatsapp, bsuid),
        (Kind::Instagram, instagram.to_string().into_bytes()),
        (Kind::Telegram, update.to_string().into_bytes()),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Whatsapp,
    Instagram,
    Telegram,
}

fn sound_event(event: &ParsedEvent) {
    assert!(event.dedup_key.contains(':'), "a dedup key names its platform");
    let document = event.event.to_json();
    assert!(document.contains_key("type") && document.contains_key("raw"));
}

fn sound_batch(batch: &MetaBatch) {
    batch.events.iter().for_each(sound_event);
}

fn is_named(error: &PayloadError) -> bool {
    !error.to_string().is_empty()
}

/// Runs every parser on `input`; a panic is reported with the case.
fn run_parsers(input: &[u8], case: usize, seed: u64) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        match payload::whatsapp::parse(input) {
            Ok(batch) => sound_batch(&batch),
            Err(error) => assert!(is_named(&error)),
        }
        match payload::instagram::parse(input) {
            Ok(batch) => sound_batch(&batch),
            Err(error) => assert!(is_named(&error)),
        }
        match payload::telegram::parse("ns.bot", input) {
            Ok(event) => sound_event(&event),
            Err(error) => assert!(is_named(&error)),
        }
        assert!(payload::whatsapp::accounts(input, 8).len() <= 8);
        assert!(payload::instagram::accounts(input, 8).len() <= 8);
        if let Ok(header) = HeaderValue::from_bytes(input) {
            let _ = MetaSignature::from_header(Some(&header)).map(|s| s.verifies(b"k", input));
        }
    }));
    if outcome.is_err() {
        panic!(
            "a parser panicked on case {case} of seed {seed}: input (hex) {}",
            hex::encode(input)
        );
    }
}

#[test]
fn parsers_never_panic_on_random_bytes() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let started = Instant::now();

    let mut cases = 0;
    while cases < case_limit(MAX_CASES) && started.elapsed() < budget() {
        let len = match rng.below(4) {
            0 => rng.below(8),
            1 => rng.below(64),
            _ => rng.below(1024),
        };
        let input = rng.bytes(len);
        run_parsers(&input, cases, seed);
        cases += 1;
    }

    assert!(cases > 100, "the loop ran ({cases} cases)");
}

#[test]
fn parsers_never_panic_on_mutated_valid_payloads() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0x5EED);
    let corpus = corpus("106540352242922");
    for (_, valid) in &corpus {
        run_parsers(valid, 0, seed);
    }
    let started = Instant::now();

    let mut cases = 0;
    while cases < case_limit(MAX_CASES) && started.elapsed() < budget() {
        let (_, valid) = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, valid);
        run_parsers(&input, cases, seed);
        cases += 1;
    }

    assert!(cases > 100, "the loop ran ({cases} cases)");
}

#[tokio::test]
async fn the_router_never_answers_5xx_to_mutated_signed_webhooks() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0xF00D);
    let app = Harness::embedded().await;
    let (acme, number) = (customer_id(), phone_number_id());
    app.customer(&acme, None).await;
    app.connect_whatsapp(&acme, &number, None).await;
    app.connect_instagram(&acme, "1784").await;
    let token = format!("tok_{}", random_hex());
    let bot = app
        .connect_telegram(&acme, &format!("bot-{}", random_hex()), &token)
        .await;
    let corpus = corpus(&number);
    let started = Instant::now();

    let mut cases = 0;
    while cases < case_limit(MAX_ROUTER_CASES) && started.elapsed() < budget() {
        let (kind, valid) = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, valid);
        let request = match kind {
            Kind::Whatsapp => signed("/webhook/whatsapp", input.clone(), APP_SECRET),
            Kind::Instagram => signed("/webhook/instagram", input.clone(), APP_SECRET),
            Kind::Telegram => telegram(&bot, input.clone(), Some(&token)),
        };

        let answer = app.send(request).await;

        assert!(
            [
                StatusCode::OK,
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE
            ]
            .contains(&answer.status),
            "case {cases} of seed {seed} answered {}: {} (input hex {})",
            answer.status,
            answer.text,
            hex::encode(&input)
        );
        cases += 1;
    }

    assert!(cases > 10, "the loop ran ({cases} cases)");
}
