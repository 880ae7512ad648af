//! What WhatsApp and Instagram share of the Meta Graph API: its JSON posts
//! and its error object.
//!
//! Graph answers a failed call with `{"error": {message, type, code,
//! error_subcode, error_data: {details}, fbtrace_id}}` (platforms.md 1.3).
//! Meta says to act on `code`, not on the message text; the message, the
//! details and the trace id are kept for the person reading the result.

use hermes_crds::Platform;
use serde::{Deserialize, Serialize};

use super::Endpoint;
use super::http::{Answer, retry_after, send};
use crate::tools::ToolError;

/// Posts `body` as JSON to `url` with `access_token` as bearer token.
///
/// # Errors
///
/// The errors of [`send`]; for a non-success answer, the error `error_of`
/// reads from it and the token.
pub async fn post_json(
    platform: Platform,
    endpoint: &Endpoint<'_>,
    url: reqwest::Url,
    access_token: &str,
    body: &impl Serialize,
    error_of: fn(&Answer, &str) -> ToolError,
) -> Result<Answer, ToolError> {
    let request = endpoint.http.post(url).bearer_auth(access_token).json(body);
    let answer = send(platform, endpoint, request).await?;
    if answer.status.is_success() {
        Ok(answer)
    } else {
        Err(error_of(&answer, access_token))
    }
}

/// Graph error codes that mean "slow down": application request limit (4),
/// business use case rate limit (80007), WhatsApp throughput (130429) and
/// pair rate limit (131056).
pub const THROTTLING_CODES: [i64; 4] = [4, 80007, 130429, 131056];

/// The longest platform message passed on, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// The `error` member of a Graph error answer.
#[derive(Debug, Deserialize)]
pub struct GraphError {
    /// The message, with the code's title in it.
    #[serde(default)]
    pub message: Option<String>,
    /// The error type, e.g. `OAuthException`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The error code.
    #[serde(default)]
    pub code: Option<i64>,
    /// The error subcode.
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// More detail, for WhatsApp in `details`.
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    /// Meta's trace id, for support requests.
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

/// `error.error_data` of a Graph error.
#[derive(Debug, Deserialize)]
pub struct ErrorData {
    /// What went wrong, in more words than the message.
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error: GraphError,
}

/// The tool error of a Graph answer that is not a success.
///
/// A 429 status or a [throttling code](THROTTLING_CODES) is
/// [`ToolError::RateLimited`], waiting as long as `Retry-After` or Meta's
/// `x-business-use-case-usage` header says. An error object with a code is
/// [`ToolError::Platform`] with that code; anything else is `Platform` with
/// code `http_<status>`. `secret` (the token that was sent) is removed from
/// every message passed on.
pub fn error_from_answer(platform: Platform, answer: &Answer, secret: &str) -> ToolError {
    let error = serde_json::from_slice::<ErrorAnswer>(&answer.body)
        .ok()
        .map(|answer| answer.error);
    let code = error.as_ref().and_then(|error| error.code);

    let throttled = answer.status == http::StatusCode::TOO_MANY_REQUESTS
        || code.is_some_and(|code| THROTTLING_CODES.contains(&code));
    if throttled {
        return ToolError::RateLimited {
            platform,
            retry_after_secs: retry_after(&answer.headers).or_else(|| usage_wait_secs(&answer.headers)),
        };
    }

    if let Some(error) = error
        && let Some(code) = error.code
    {
        return ToolError::Platform {
            platform,
            code: code.to_string(),
            message: redact(&describe(&error), secret),
        };
    }

    // No error object, or one without a code: only the status is known.
    ToolError::Platform {
        platform,
        code: format!("http_{}", answer.status.as_u16()),
        message: format!("{platform} answered HTTP {}", answer.status),
    }
}

/// One line for a Graph error: message, details, then type, subcode and trace id.
fn describe(error: &GraphError) -> String {
    let mut text = error
        .message
        .clone()
        .unwrap_or_else(|| "the platform gave no message".to_owned());
    if let Some(details) = error.error_data.as_ref().and_then(|data| data.details.as_deref()) {
        text.push_str(": ");
        text.push_str(details);
    }

    let mut facts = Vec::new();
    if let Some(kind) = &error.kind {
        facts.push(format!("type {kind}"));
    }
    if let Some(subcode) = error.error_subcode {
        facts.push(format!("subcode {subcode}"));
    }
    if let Some(trace) = &error.fbtrace_id {
        facts.push(format!("fbtrace_id {trace}"));
    }
    if !facts.is_empty() {
        text.push_str(&format!(" ({})", facts.join(", ")));
    }
    text
}

/// `text` without `secret` and at most [`MAX_MESSAGE_CHARS`] long. Graph
/// does not quote tokens back, but a message is passed to the caller, so it
/// is never trusted to.
pub fn redact(text: &str, secret: &str) -> String {
    let text = if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[redacted]")
    };
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The wait Meta announces in `x-business-use-case-usage`: a JSON object
/// keyed by business id, each a list of usages with
/// `estimated_time_to_regain_access` in minutes. The longest wait wins;
/// zero means no wait is announced.
fn usage_wait_secs(headers: &http::HeaderMap) -> Option<u64> {
    let usage: serde_json::Value =
        serde_json::from_slice(headers.get("x-business-use-case-usage")?.as_bytes()).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access")?.as_u64())
        .max()?;
    (minutes > 0).then(|| minutes.saturating_mul(60))
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, StatusCode};
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).expect("test statuses are valid"),
            headers: HeaderMap::new(),
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn a_graph_error_keeps_its_code_message_and_trace_id() {
        let answer = answer(
            400,
            json!({"error": {"message": "(#100) Invalid parameter", "type": "OAuthException",
                "code": 100, "error_data": {"details": "to is not a phone number"}, "fbtrace_id": "AbC"}}),
        );

        let ToolError::Platform { code, message, .. } = error_from_answer(Platform::Whatsapp, &answer, "tok")
        else {
            panic!("a Graph error object is a platform error");
        };

        assert_eq!(code, "100");
        assert_eq!(
            message,
            "(#100) Invalid parameter: to is not a phone number (type OAuthException, fbtrace_id AbC)"
        );
    }

    #[test]
    fn a_message_quoting_the_token_is_redacted() {
        let answer = answer(
            401,
            json!({"error": {"message": "token EAAG-secret is bad", "code": 190}}),
        );

        let error = error_from_answer(Platform::Whatsapp, &answer, "EAAG-secret");

        assert!(!error.to_string().contains("EAAG-secret"), "{error}");
        assert!(error.to_string().contains("[redacted]"), "{error}");
    }

    #[test]
    fn a_business_use_case_limit_announces_its_wait_in_minutes() {
        let mut answer = answer(400, json!({"error": {"message": "limit", "code": 80007}}));
        answer.headers.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"123":[{"type":"whatsapp","call_count":100,"estimated_time_to_regain_access":3}]}"#,
            ),
        );

        let error = error_from_answer(Platform::Whatsapp, &answer, "tok");

        assert!(matches!(
            error,
            ToolError::RateLimited {
                retry_after_secs: Some(180),
                ..
            }
        ));
    }

    #[test]
    fn a_body_without_an_error_object_is_named_by_its_status() {
        let answer = answer(502, json!({"unexpected": true}));

        let ToolError::Platform { code, .. } = error_from_answer(Platform::Whatsapp, &answer, "tok") else {
            panic!("an unknown body is a platform error");
        };

        assert_eq!(code, "http_502");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(2 * MAX_MESSAGE_CHARS);

        assert_eq!(redact(&long, "").chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
