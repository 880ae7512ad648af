//! `hermes-server dev` as a newcomer meets it: start the binary on the
//! repository's example manifests, paste the curl it prints, and find the
//! message in the outbox.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// How long the binary may take to print its banner (it builds nothing; this bounds a hang).
const BANNER_TIMEOUT: Duration = Duration::from_secs(60);

/// Splits a shell line into words, honouring single quotes (all the banner uses).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The parts of a `curl URL -H 'k: v' … -d 'body'` line.
struct Curl {
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn parse_curl(line: &str) -> Curl {
    let words = shell_words(line);
    assert_eq!(words.first().map(String::as_str), Some("curl"), "{line}");
    let mut curl = Curl {
        url: String::new(),
        headers: Vec::new(),
        body: None,
    };
    let mut rest = words.into_iter().skip(1);
    while let Some(word) = rest.next() {
        match word.as_str() {
            "-H" => {
                let header = rest.next().expect("-H takes a header");
                let (name, value) = header.split_once(':').expect("a header is `name: value`");
                curl.headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "-d" => curl.body = rest.next(),
            flag if flag.starts_with('-') => {}
            url => curl.url = url.to_owned(),
        }
    }
    curl
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

#[tokio::test]
async fn the_printed_curl_sends_a_sandbox_message_that_lands_in_the_outbox() {
    let manifests = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/examples");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hermes-server"))
        .args(["dev", "--listen", &listen, "--manifests", manifests])
        .env("RUST_LOG", "warn")
        .env_remove("HERMES_LISTEN")
        .env_remove("HERMES_ENCRYPTION_KEYS")
        .env_remove("HERMES_ENCRYPTION_KEYS_FILE")
        .env_remove("HERMES_PUBLIC_URL")
        .env_remove("HERMES_ALLOWED_HOSTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");

    // Arrange: read the banner up to the MCP curl line.
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let curl_line = tokio::time::timeout(BANNER_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("stdout reads") {
            banner.push(line.clone());
            if line.starts_with("curl ") && line.contains("/mcp") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the banner is printed in time")
    .unwrap_or_else(|| panic!("no curl line in the banner: {banner:#?}"));
    assert!(
        banner
            .iter()
            .any(|line| line.contains("customer acme") && line.contains("API key hk_")),
        "{banner:#?}"
    );

    // Act: perform exactly the printed request.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let curl = parse_curl(&curl_line);
    let mut request = client.post(&curl.url);
    for (name, value) in &curl.headers {
        request = request.header(name, value);
    }
    let response = request
        .body(curl.body.clone().expect("the curl sends a body"))
        .send()
        .await
        .expect("the dev server answers");

    // Verify: a sandbox message id, and the message in the outbox.
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("a JSON answer");
    let message_id = answer["result"]["structuredContent"]["messageId"]
        .as_str()
        .unwrap_or_else(|| panic!("no message id in {answer}"))
        .to_owned();
    let stream_id = message_id.strip_prefix("sandbox-").expect("a sandbox message id");

    let authorization = curl
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.clone())
        .expect("the curl authenticates");
    let outbox_url = curl.url.replace("/mcp", "/api/outbox");
    let outbox: Value = client
        .get(outbox_url)
        .header("authorization", authorization)
        .send()
        .await
        .expect("the outbox answers")
        .json()
        .await
        .expect("a JSON outbox");
    let events = outbox["events"].as_array().expect("an event list");
    let event = events
        .iter()
        .find(|event| event["id"] == stream_id)
        .unwrap_or_else(|| panic!("{message_id} not in the outbox: {outbox}"));
    assert_eq!(event["event"]["to"], "15551234567");

    child.kill().await.expect("the dev server stops");
}

#[test]
fn shell_words_keep_single_quoted_text_whole() {
    let words = shell_words("curl -H 'a: b c' -d '{\"x\": 1}'");
    assert_eq!(words, ["curl", "-H", "a: b c", "-d", "{\"x\": 1}"]);
}
