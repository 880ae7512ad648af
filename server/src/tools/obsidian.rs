//! The Obsidian tools, working on the customer's vault through the Local
//! REST API plugin:
//!
//! - `obsidian_put_note`: create a note or replace its content;
//! - `obsidian_append_note`: add to the end of a note, creating it if missing;
//! - `obsidian_read_note`: a note's markdown;
//! - `obsidian_search`: Obsidian's simple text search over the vault.
//!
//! On a sandbox connection there is no vault: writes are recorded in the
//! customer's outbox ([`sandbox`](crate::platforms::sandbox)), and reads answer an empty note or no
//! hits, marked `sandbox: true`, so an agent can be tried end to end.

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use hermes_crds::{CertificateVerification, ObsidianSettings, Platform};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::send::{live_connection, record_in_outbox};
use super::{Annotations, Tool, ToolContext, ToolError, ToolSpec, parse_args, schema_of, to_structured};
use crate::platforms::http::MAX_RESPONSE_BYTES;
use crate::platforms::obsidian::{
    API_KEY, SearchHit, append_note, put_note, read_note, search, unverified_client,
};
use crate::platforms::{CALL_TIMEOUT, Connection, Endpoint};

/// The name of the tool creating or replacing notes.
pub const PUT_NOTE: &str = "obsidian_put_note";

/// The name of the tool appending to notes.
pub const APPEND_NOTE: &str = "obsidian_append_note";

/// The name of the tool reading notes.
pub const READ_NOTE: &str = "obsidian_read_note";

/// The name of the tool searching the vault.
pub const SEARCH: &str = "obsidian_search";

/// The longest note path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// The largest content written at once, in bytes: the largest note Hermes
/// reads back ([`MAX_RESPONSE_BYTES`]), so whatever is written can be read.
pub const MAX_CONTENT_BYTES: usize = MAX_RESPONSE_BYTES;

/// The most hits a search answers with; more are counted, not listed.
pub const MAX_HITS: usize = 50;

/// The context around each match when the call names none, in characters
/// (the plugin's own default).
pub const DEFAULT_CONTEXT_LENGTH: u32 = 100;

/// Path segments the plugin reads as a section of a note
/// (`note.md/heading/Tasks`), and refuses in the path of a note that does
/// not exist yet.
const SECTION_SEGMENTS: [&str; 3] = ["heading", "block", "frontmatter"];

/// A note's path in the vault: relative, `/` between folders, naming a
/// file; no `.` or `..` segments, no empty segments, no control
/// characters or backslashes, no folder the plugin reads as a section;
/// at most [`MAX_PATH_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct NotePath(String);

impl NotePath {
    /// The path, as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NotePath {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            return Err("must name a note, e.g. Projects/Plan.md".to_owned());
        }
        if value.len() > MAX_PATH_BYTES {
            return Err(format!("is longer than {MAX_PATH_BYTES} bytes"));
        }
        if value.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        if value.contains('\\') {
            return Err("must use `/` between folders, not `\\`".to_owned());
        }
        let drive = matches!(value.as_bytes(), [letter, b':', ..] if letter.is_ascii_alphabetic());
        if value.starts_with('/') || drive {
            return Err("must be relative to the vault root, not absolute".to_owned());
        }
        if value.ends_with('/') {
            return Err("must name a note, not a folder".to_owned());
        }

        let segments: Vec<&str> = value.split('/').collect();
        if segments.iter().any(|segment| *segment == "." || *segment == "..") {
            return Err("must stay inside the vault: `.` and `..` segments are not allowed".to_owned());
        }
        if segments.contains(&"") {
            return Err("must not contain empty segments (`//`)".to_owned());
        }
        if segments.iter().any(|segment| SECTION_SEGMENTS.contains(segment)) {
            return Err(
                "must not contain a folder named heading, block or frontmatter, which the plugin reads as a \
                 section of a note"
                    .to_owned(),
            );
        }
        Ok(Self(value))
    }
}

impl JsonSchema for NotePath {
    fn schema_name() -> Cow<'static, str> {
        "NotePath".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES, "pattern": "^[^/\\\\]" })
    }
}

/// A note's content: markdown of at most [`MAX_CONTENT_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct NoteContent(String);

impl TryFrom<String> for NoteContent {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() > MAX_CONTENT_BYTES {
            Err(format!(
                "is {} bytes; at most {MAX_CONTENT_BYTES} are written at once",
                value.len()
            ))
        } else {
            Ok(Self(value))
        }
    }
}

impl JsonSchema for NoteContent {
    fn schema_name() -> Cow<'static, str> {
        "NoteContent".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "maxLength": MAX_CONTENT_BYTES })
    }
}

/// The arguments of `obsidian_put_note` and `obsidian_append_note`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteNoteArgs {
    /// The note's path relative to the vault root, with its extension, e.g. `Projects/Plan.md`.
    pub path: NotePath,
    /// The markdown to write.
    pub content: NoteContent,
}

/// What the write tools answer.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrittenNote {
    /// The note written, as given.
    pub path: String,
    /// The outbox entry (`sandbox-…`) when the write was recorded instead of made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_id: Option<String>,
    /// True when the write was recorded in the outbox of a sandbox connection instead of made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// The arguments of `obsidian_read_note`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadNoteArgs {
    /// The note's path relative to the vault root, with its extension, e.g. `Projects/Plan.md`.
    pub path: NotePath,
}

/// What `obsidian_read_note` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// The note read, as given.
    pub path: String,
    /// The note's markdown; empty for a sandbox connection, which has no vault.
    pub content: String,
    /// True for a sandbox connection: nothing was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// The arguments of `obsidian_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchArgs {
    /// The text to look for, as typed into Obsidian's search.
    pub query: SearchQuery,
    /// How many characters of text around each match to return, 1 to 1000. Defaults to 100.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub context_length: Option<u32>,
}

/// A search query: 1 to 1000 characters, not only whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SearchQuery(String);

impl TryFrom<String> for SearchQuery {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() || value.chars().count() > 1000 || value.chars().any(char::is_control) {
            Err("expected 1 to 1000 characters of text without control characters")
        } else {
            Ok(Self(value))
        }
    }
}

impl JsonSchema for SearchQuery {
    fn schema_name() -> Cow<'static, str> {
        "SearchQuery".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": 1000 })
    }
}

/// What `obsidian_search` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    /// The best matching notes, best first, at most 50.
    pub hits: Vec<Hit>,
    /// How many notes matched, listed or not.
    pub total: usize,
    /// True for a sandbox connection: nothing was searched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// A note that matched a search.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    /// The note's path in the vault.
    pub path: String,
    /// Obsidian's relevance score; higher is better.
    pub score: f64,
    /// Each match with the text around it.
    pub matches: Vec<HitMatch>,
}

/// One match within a note.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HitMatch {
    /// The text around the match.
    pub context: String,
    /// Where the match starts, in UTF-16 code units from the start of the note (or of its file name).
    pub start: u64,
    /// Where it ends.
    pub end: u64,
    /// `filename` when the query matched the note's file name, `content` (or absent) when its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl SearchResults {
    /// The plugin's hits, best first, the first [`MAX_HITS`] of them listed.
    fn from_hits(mut hits: Vec<SearchHit>) -> Self {
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        let total = hits.len();
        let hits = hits
            .into_iter()
            .take(MAX_HITS)
            .map(|hit| Hit {
                path: hit.filename,
                score: hit.score,
                matches: hit
                    .matches
                    .into_iter()
                    .map(|found| HitMatch {
                        context: found.context,
                        start: found.span.start,
                        end: found.span.end,
                        source: found.span.source,
                    })
                    .collect(),
            })
            .collect();
        Self {
            hits,
            total,
            sandbox: false,
        }
    }
}

/// `obsidian_put_note`.
#[derive(Debug)]
pub struct PutNote {
    spec: ToolSpec,
    timeout: Duration,
}

impl PutNote {
    /// The tool, with its schemas generated from [`WriteNoteArgs`] and [`WrittenNote`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: PUT_NOTE,
                title: "Write an Obsidian note",
                description: "Creates the note at `path` in the customer's Obsidian vault with `content`, \
                              or replaces the whole content of the note already there. Folders in the path \
                              are created as needed. Writing the same content again changes nothing.",
                platform: Some(Platform::Obsidian),
                input_schema: schema_of::<WriteNoteArgs>(),
                output_schema: Some(schema_of::<WrittenNote>()),
                annotations: Annotations {
                    read_only: false,
                    destructive: true,
                    idempotent: true,
                    open_world: true,
                },
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for each call to the plugin.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for PutNote {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for PutNote {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        write(cx, PUT_NOTE, parse_args(args)?, self.timeout).await
    }
}

/// `obsidian_append_note`.
#[derive(Debug)]
pub struct AppendNote {
    spec: ToolSpec,
    timeout: Duration,
}

impl AppendNote {
    /// The tool, with its schemas generated from [`WriteNoteArgs`] and [`WrittenNote`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: APPEND_NOTE,
                title: "Append to an Obsidian note",
                description: "Adds `content` to the end of the note at `path` in the customer's Obsidian \
                              vault, creating the note when it does not exist. Appending twice adds the \
                              content twice.",
                platform: Some(Platform::Obsidian),
                input_schema: schema_of::<WriteNoteArgs>(),
                output_schema: Some(schema_of::<WrittenNote>()),
                annotations: Annotations::SEND,
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for each call to the plugin.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for AppendNote {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for AppendNote {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: WriteNoteArgs = parse_args(args)?;
        if args.content.0.is_empty() {
            return Err(ToolError::InvalidArgument {
                field: "content".to_owned(),
                message: "must not be empty: there is nothing to append".to_owned(),
            });
        }
        write(cx, APPEND_NOTE, args, self.timeout).await
    }
}

/// Writes (`PUT_NOTE`) or appends (`APPEND_NOTE`) a note, or records the
/// write in the outbox of a sandbox connection.
async fn write(
    cx: &ToolContext<'_>,
    tool: &'static str,
    args: WriteNoteArgs,
    timeout: Duration,
) -> Result<Value, ToolError> {
    let Some(connection) = live_connection(cx, Platform::Obsidian).await? else {
        let mut fields = Map::new();
        fields.insert("content".into(), json!(args.content.0));
        let outbox_id = record_in_outbox(cx, tool, Platform::Obsidian, args.path.as_str(), fields).await?;
        return to_structured(&WrittenNote {
            path: args.path.0,
            outbox_id: Some(outbox_id),
            sandbox: true,
        });
    };

    let vault = Vault::open(cx, &connection, timeout)?;
    if tool == PUT_NOTE {
        put_note(
            &vault.endpoint,
            vault.api_key,
            args.path.as_str(),
            &args.content.0,
        )
        .await?;
    } else {
        append_note(
            &vault.endpoint,
            vault.api_key,
            args.path.as_str(),
            &args.content.0,
        )
        .await?;
    }
    to_structured(&WrittenNote {
        path: args.path.0,
        outbox_id: None,
        sandbox: false,
    })
}

/// `obsidian_read_note`.
#[derive(Debug)]
pub struct ReadNote {
    spec: ToolSpec,
    timeout: Duration,
}

impl ReadNote {
    /// The tool, with its schemas generated from [`ReadNoteArgs`] and [`Note`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: READ_NOTE,
                title: "Read an Obsidian note",
                description: "Returns the markdown of the note at `path` in the customer's Obsidian vault, \
                              frontmatter included. Fails with \"note not found\" when there is none.",
                platform: Some(Platform::Obsidian),
                input_schema: schema_of::<ReadNoteArgs>(),
                output_schema: Some(schema_of::<Note>()),
                annotations: Annotations {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                    open_world: true,
                },
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for each call to the plugin (a read, retried once, may take twice as long).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for ReadNote {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for ReadNote {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: ReadNoteArgs = parse_args(args)?;

        let Some(connection) = live_connection(cx, Platform::Obsidian).await? else {
            return to_structured(&Note {
                path: args.path.0,
                content: String::new(),
                sandbox: true,
            });
        };

        let vault = Vault::open(cx, &connection, self.timeout)?;
        let content = read_note(&vault.endpoint, vault.api_key, args.path.as_str()).await?;
        to_structured(&Note {
            path: args.path.0,
            content,
            sandbox: false,
        })
    }
}

/// `obsidian_search`.
#[derive(Debug)]
pub struct SearchVault {
    spec: ToolSpec,
    timeout: Duration,
}

impl SearchVault {
    /// The tool, with its schemas generated from [`SearchArgs`] and [`SearchResults`].
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: SEARCH,
                title: "Search an Obsidian vault",
                description: "Searches the notes of the customer's Obsidian vault for `query` with \
                              Obsidian's simple search, and returns the best matching notes (at most 50) \
                              with the text around each match.",
                platform: Some(Platform::Obsidian),
                input_schema: schema_of::<SearchArgs>(),
                output_schema: Some(schema_of::<SearchResults>()),
                annotations: Annotations {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                    open_world: true,
                },
            },
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same tool with a different deadline for each call to the plugin (a read, retried once, may take twice as long).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl Default for SearchVault {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Tool for SearchVault {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, cx: &ToolContext<'_>, args: Value) -> Result<Value, ToolError> {
        let args: SearchArgs = parse_args(args)?;
        let context_length = args.context_length.unwrap_or(DEFAULT_CONTEXT_LENGTH);
        if !(1..=1000).contains(&context_length) {
            return Err(ToolError::InvalidArgument {
                field: "contextLength".to_owned(),
                message: format!("is {context_length}; expected 1 to 1000"),
            });
        }

        let Some(connection) = live_connection(cx, Platform::Obsidian).await? else {
            return to_structured(&SearchResults {
                hits: Vec::new(),
                total: 0,
                sandbox: true,
            });
        };

        let vault = Vault::open(cx, &connection, self.timeout)?;
        let hits = search(&vault.endpoint, vault.api_key, &args.query.0, context_length).await?;
        to_structured(&SearchResults::from_hits(hits))
    }
}

/// Where a live call goes, and with which key.
struct Vault<'a> {
    endpoint: Endpoint<'a>,
    api_key: &'a str,
}

impl<'a> Vault<'a> {
    /// The plugin at the connection's base URL, through the verifying
    /// client or, when the connection says `certificateVerification: skip`,
    /// the [unverified one](unverified_client).
    fn open(
        cx: &'a ToolContext<'_>,
        connection: &'a Connection,
        timeout: Duration,
    ) -> Result<Self, ToolError> {
        let settings: ObsidianSettings = connection.settings()?;
        let http = match settings.certificate_verification {
            CertificateVerification::Verify => &cx.app.http,
            CertificateVerification::Skip => unverified_client()?,
        };
        Ok(Self {
            endpoint: Endpoint {
                http,
                base_url: &connection.base_url,
                timeout,
            },
            api_key: connection.secret(API_KEY)?,
        })
    }
}

#[cfg(test)]
mod tests;
