//! Sending one platform request: a deadline, a bounded answer, and what
//! transport failures become.

use std::time::Duration;

use hermes_crds::Platform;
use http::{HeaderMap, StatusCode};
use tracing::debug;

use super::Endpoint;
use crate::tools::ToolError;

/// The largest platform answer read, in bytes. Platform answers to a send
/// are a few hundred bytes; a larger one is not what was asked for.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A platform's answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
}

/// Sends `request` within the endpoint's deadline and reads the answer.
///
/// A non-success status is not an error here: the caller reads the
/// platform's error body.
///
/// # Errors
///
/// - [`ToolError::Timeout`] when the deadline passes before the whole
///   answer is read;
/// - [`ToolError::Unreachable`] when no connection could be made;
/// - [`ToolError::Platform`] with code `malformed_response` when the answer
///   cannot be read or exceeds [`MAX_RESPONSE_BYTES`].
pub async fn send(
    platform: Platform,
    endpoint: &Endpoint<'_>,
    request: reqwest::RequestBuilder,
) -> Result<Answer, ToolError> {
    // One deadline covers connecting, sending and reading the body.
    match tokio::time::timeout(endpoint.timeout, exchange(request)).await {
        Err(_elapsed) => Err(ToolError::Timeout(platform)),
        Ok(Ok(Some(answer))) => Ok(answer),
        Ok(Ok(None)) => Err(malformed(platform)),
        Ok(Err(error)) => Err(transport_error(platform, &error)),
    }
}

/// Sends the request and reads the answer; `None` when the body exceeds
/// [`MAX_RESPONSE_BYTES`].
async fn exchange(request: reqwest::RequestBuilder) -> Result<Option<Answer>, reqwest::Error> {
    let mut response = request.send().await?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());

    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Answer {
        status,
        headers,
        body,
    }))
}

/// What a reqwest failure means for the caller. The error's URL is left
/// out of the log: it names the tenant's account ids.
fn transport_error(platform: Platform, error: &reqwest::Error) -> ToolError {
    debug!(%platform, error = %DisplayWithoutUrl(error), "platform request failed");
    if error.is_timeout() {
        ToolError::Timeout(platform)
    } else if error.is_builder() {
        // A setting or credential that is not a valid URL or header value.
        tracing::warn!(%platform, "a platform request could not be built");
        ToolError::Internal
    } else if error.is_connect() {
        ToolError::Unreachable(platform)
    } else if error.is_body() || error.is_decode() {
        malformed(platform)
    } else {
        ToolError::Unreachable(platform)
    }
}

struct DisplayWithoutUrl<'a>(&'a reqwest::Error);

impl std::fmt::Display for DisplayWithoutUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(self.0);
        f.write_str(if self.0.is_timeout() {
            "timed out"
        } else if self.0.is_connect() {
            "connect failed"
        } else {
            "request failed"
        })?;
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The error of an answer Hermes cannot read.
pub fn malformed(platform: Platform) -> ToolError {
    ToolError::Platform {
        platform,
        code: "malformed_response".to_owned(),
        message: "malformed response".to_owned(),
    }
}

/// The seconds a `Retry-After` header asks to wait: either delay-seconds or
/// an HTTP date (a date in the past means now).
pub fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }

    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).map_or(0, |wait| wait.as_secs()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_str(retry_after).expect("test header values are ASCII"),
        );
        headers
    }

    #[test]
    fn retry_after_in_seconds_is_read_as_is() {
        assert_eq!(retry_after(&headers("120")), Some(120));
    }

    #[test]
    fn retry_after_as_a_past_http_date_means_now() {
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), Some(0));
    }

    #[test]
    fn retry_after_as_a_future_http_date_counts_the_seconds_until_it() {
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600);
        let date = jiff::fmt::rfc2822::to_string(&at.to_zoned(jiff::tz::TimeZone::UTC))
            .expect("a UTC date formats as RFC 2822");

        let seconds = retry_after(&headers(&date)).expect("an RFC 2822 date parses");

        assert!((590..=600).contains(&seconds), "{seconds} s");
    }

    #[test]
    fn retry_after_that_is_neither_seconds_nor_a_date_is_ignored() {
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
