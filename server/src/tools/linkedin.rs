//! `linkedin_create_post`: a text post on the main feed, as the member or
//! organization the connection names.
//!
//! On a sandbox connection the post is recorded in the customer's outbox
//! instead ([`sandbox`](crate::platforms::sandbox)).

use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::{LinkedinSettings, Platform};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::{BoundedText, live_connection, record_in_outbox};
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::CALL_TIMEOUT;
use crate::platforms::linkedin::{ACCESS_TOKEN, TextPost, Visibility, create_post};

/// The tool's name.
pub const NAME: &str = "linkedin_create_post";

/// The longest post text LinkedIn accepts, in characters.
pub const MAX_TEXT_CHARS: usize = 3000;

/// What a sandbox post names as its recipient in the outbox.
const FEED: &str = "feed";

/// The arguments of `linkedin_create_post`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePostArgs {
    /// The text of the post, 1 to 3000 characters, shown as written: links
    /// and #hashtags stay live, mentions cannot be written.
    pub text: BoundedText<MAX_TEXT_CHARS>,
    /// Who sees the post: `PUBLIC` (anyone; the default) or `CONNECTIONS`
    /// (the author's first-degree connections; only for a member author).
    #[serde(default)]
    pub visibility: VisibilityArg,
}

/// Who sees the post: anyone, or the author's connections. The variants
/// carry no doc comments so that the schema is a plain `enum` of the two
/// names, inlined; the field documents them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(inline)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VisibilityArg {
    #[default]
    Public,
    Connections,
}

impl VisibilityArg {
    fn to_platform(self) -> Visibility {
        match self {
            VisibilityArg::Public => Visibility::Public,
            VisibilityArg::Connections => Visibility::Connections,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            VisibilityArg::Public => "PUBLIC",
            VisibilityArg::Connections => "CONNECTIONS",
        }
    }
}

/// What `linkedin_create_post` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedPost {
    /// The post's URN, e.g. `urn:li:share:7140000000000000000`, or `sandbox-…`
    /// for a sandbox connection.
    pub post_id: String,
    /// True when the post was recorded in the outbox of a sandbox connection instead of published.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// `linkedin_create_post`.
#[derive(Debug)]
pub struct CreatePost {
    spec: ToolSpec,
    timeout: Duration,
}

impl CreatePost {
    /// The tool, with its schemas generated from [`CreatePostArgs`] and [`CreatedPost`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: NAME,
                title: "Create a LinkedIn post",
                description: "Publishes a text post on LinkedIn's main feed as the member or organization \
                              the customer's connection posts as. Returns the post's URN.",
                platform: Some(Platform::Linkedin),
                input_schema: schema_of::<CreatePostArgs>(),
                output_schema: Some(schema_of::<CreatedPost>()),
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
        let args: CreatePostArgs = parse_args(args)?;

        let connection = live_connection(cx, Platform::Linkedin).await?;
        let Some(connection) = connection else {
            return record_sent(cx, &args).await;
        };

        let settings: LinkedinSettings = connection.settings()?;
        let endpoint = connection.endpoint_with_timeout(cx.app, self.timeout);
        let post = TextPost {
            author: &settings.author_urn,
            text: args.text.as_str(),
            visibility: args.visibility.to_platform(),
        };
        let post_id = create_post(
            &endpoint,
            &settings.api_version,
            connection.secret(ACCESS_TOKEN)?,
            &post,
        )
        .await?;

        to_structured(&CreatedPost {
            post_id,
            sandbox: false,
        })
    }
}

/// Records the post in the customer's outbox and answers as a post would.
async fn record_sent(cx: &ToolContext<'_>, args: &CreatePostArgs) -> Result<Value, ToolError> {
    let mut fields = Map::new();
    fields.insert("text".into(), json!(args.text.as_str()));
    fields.insert("visibility".into(), json!(args.visibility.as_str()));

    let post_id = record_in_outbox(cx, NAME, Platform::Linkedin, FEED, fields).await?;

    to_structured(&CreatedPost {
        post_id,
        sandbox: true,
    })
}

#[cfg(test)]
mod tests;
