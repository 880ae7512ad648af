//! `x_post`: a post (tweet) on the customer's X account.
//!
//! On a sandbox connection the post is recorded in the customer's outbox
//! instead ([`sandbox`](crate::platforms::sandbox)).

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::Platform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::{BoundedText, live_connection, record_in_outbox};
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::x::{
    ACCESS_TOKEN, ACCESS_TOKEN_SECRET, Auth, BEARER_TOKEN, CONSUMER_KEY, CONSUMER_SECRET, NewPost,
    OAuth1Keys, create_post,
};
use crate::platforms::{CALL_TIMEOUT, Connection};

/// The tool's name.
pub const NAME: &str = "x_post";

/// The longest post, in characters.
///
/// X weighs characters: a link counts as 23 whatever its length, and CJK
/// characters and emoji count double. Hermes counts every character once,
/// so a text within this limit can still be too long for X, which then
/// refuses it and the refusal reaches the caller. Counting X's way needs
/// its weighting tables; plain counting keeps the common case right.
pub const MAX_TEXT_CHARS: usize = 280;

/// What a sandbox post names as its recipient in the outbox.
const FEED: &str = "feed";

/// The arguments of `x_post`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostArgs {
    /// The text of the post, 1 to 280 characters.
    pub text: BoundedText<MAX_TEXT_CHARS>,
    /// The id of a post to reply to, e.g. `1445880548472328192`.
    #[serde(default)]
    pub reply_to: Option<PostId>,
    /// The id of a post to quote.
    #[serde(default)]
    pub quote_tweet_id: Option<PostId>,
}

/// What `x_post` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Posted {
    /// The new post's id, or `sandbox-…` for a sandbox connection.
    pub post_id: String,
    /// True when the post was recorded in the outbox of a sandbox connection instead of published.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// The id of an X post: a string of 1 to 19 digits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PostId(String);

impl PostId {
    /// The id, as digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PostId {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let digits = value.bytes().all(|b| b.is_ascii_digit());
        if digits && (1..=19).contains(&value.len()) {
            Ok(Self(value))
        } else {
            Err("expected a post id: a string of digits such as \"1445880548472328192\"")
        }
    }
}

impl JsonSchema for PostId {
    fn schema_name() -> Cow<'static, str> {
        "XPostId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[0-9]{1,19}$" })
    }
}

/// `x_post`.
#[derive(Debug)]
pub struct CreatePost {
    spec: ToolSpec,
    timeout: Duration,
}

impl CreatePost {
    /// The tool, with its schemas generated from [`PostArgs`] and [`Posted`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: NAME,
                title: "Post on X",
                description: "Publishes a post (a tweet) on the customer's X account, optionally as a reply \
                              to a post or quoting one. X refuses a text identical to a recent post of the \
                              account, and counts links as 23 characters and CJK characters and emoji as two. \
                              Returns the new post's id.",
                platform: Some(Platform::X),
                input_schema: schema_of::<PostArgs>(),
                output_schema: Some(schema_of::<Posted>()),
                annotations: Annotations::SEND,
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for the platform call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for CreatePost {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for CreatePost {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: PostArgs = parse_args(args)?;

        let connection = live_connection(cx, Platform::X).await?;
        let Some(connection) = connection else {
            return record_sent(cx, &args).await;
        };

        let endpoint = connection.endpoint_with_timeout(cx.app, self.timeout);
        let post = NewPost {
            text: args.text.as_str(),
            reply_to: args.reply_to.as_ref().map(PostId::as_str),
            quote_post_id: args.quote_tweet_id.as_ref().map(PostId::as_str),
        };
        let post_id = create_post(&endpoint, &auth(&connection)?, &post).await?;

        to_structured(&Posted {
            post_id,
            sandbox: false,
        })
    }
}

/// How the connection authenticates: its OAuth 2.0 user token when it has
/// one, else its four OAuth 1.0a values.
///
/// # Errors
///
/// [`ToolError::Internal`] when neither is complete, which the operator
/// rules out before it marks the connection Ready.
fn auth(connection: &Connection) -> Result<Auth<'_>, ToolError> {
    let bearer = connection.credentials.secret(BEARER_TOKEN);
    if let Some(token) = bearer.filter(|token| !token.is_empty()) {
        return Ok(Auth::Bearer(token));
    }
    Ok(Auth::OAuth1(OAuth1Keys {
        consumer_key: connection.secret(CONSUMER_KEY)?,
        consumer_secret: connection.secret(CONSUMER_SECRET)?,
        access_token: connection.secret(ACCESS_TOKEN)?,
        access_token_secret: connection.secret(ACCESS_TOKEN_SECRET)?,
    }))
}

/// Records the post in the customer's outbox and answers as a post would.
async fn record_sent(cx: &ToolContext<'_>, args: &PostArgs) -> Result<Value, ToolError> {
    let mut fields = Map::new();
    fields.insert("text".into(), json!(args.text.as_str()));
    if let Some(reply_to) = &args.reply_to {
        fields.insert("replyTo".into(), json!(reply_to.as_str()));
    }
    if let Some(quoted) = &args.quote_tweet_id {
        fields.insert("quoteTweetId".into(), json!(quoted.as_str()));
    }

    let post_id = record_in_outbox(cx, NAME, Platform::X, FEED, fields).await?;

    to_structured(&Posted {
        post_id,
        sandbox: true,
    })
}

#[cfg(test)]
mod tests;
