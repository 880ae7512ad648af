//! The command line: `hermes-server serve` and `hermes-server dev`.
//!
//! Every option is also an environment variable (named in `--help`), so a
//! Deployment configures the server with `env:` alone. Defaults are the named
//! constants below. [`ServerArgs::settings`] turns the options into the
//! [`Settings`] handlers read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hermes_crds::Platform;

use crate::app::Settings;

/// Where `serve` listens by default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Where `dev` listens by default: loopback only, as MCP asks of local servers.
pub const DEFAULT_DEV_LISTEN: &str = "127.0.0.1:8080";

/// The folder `dev` reads manifests from by default.
pub const DEFAULT_MANIFESTS: &str = "manifests/examples";

/// The Graph API version WhatsApp and Instagram calls use by default.
pub const DEFAULT_GRAPH_API_VERSION: &str = "v27.0";

/// The largest request body accepted by default: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The default log filter. The MCP SDK logs three `info` lines for every
/// request when served stateless (a service set up and torn down per
/// request); that is per-request detail, so it is kept at `warn`.
pub const DEFAULT_LOG_FILTER: &str = "info,rmcp=warn";

/// The real API base URL of each platform reached over a fixed HTTP base.
/// Email (SMTP/IMAP hosts) and Obsidian (the plugin's URL) take theirs from
/// each connection's settings.
pub const DEFAULT_API_BASES: [(Platform, &str); 6] = [
    (Platform::Whatsapp, "https://graph.facebook.com"),
    (Platform::Linkedin, "https://api.linkedin.com"),
    (Platform::Telegram, "https://api.telegram.org"),
    (Platform::Discord, "https://discord.com/api/v10"),
    (Platform::Instagram, "https://graph.instagram.com"),
    (Platform::X, "https://api.x.com"),
];

/// Hermes server: MCP, REST and webhooks for every Hermes customer.
#[derive(Debug, Parser)]
#[command(name = "hermes-server", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,

    /// Log filter, in `tracing` EnvFilter syntax (e.g. `info,hermes_server=debug`).
    #[arg(long, global = true, env = "RUST_LOG", default_value = DEFAULT_LOG_FILTER)]
    pub log_filter: String,

    /// Log format: `json` (one object per line) or `text`. Default: json for
    /// `serve`, text for `dev`.
    #[arg(long, global = true, env = "HERMES_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log pipelines.
    Json,
    /// Human-readable lines.
    Text,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve from Redis and SQL, the state the operator writes (the cluster deployment).
    Serve(ServeArgs),
    /// Serve from a folder of manifests, with embedded state: no cluster, Redis or MySQL needed.
    Dev(DevArgs),
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HERMES_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// One Redis, e.g. `redis://redis:6379`. When `REDIS_CLUSTER_URLS` is
    /// also set, the cluster is used (as the operator does).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Seed nodes of a Redis Cluster, comma-separated.
    #[arg(long, env = "REDIS_CLUSTER_URLS", value_delimiter = ',')]
    pub redis_cluster_urls: Vec<String>,

    /// The SQL database: `mysql://…` or `sqlite://…`. Required with Redis;
    /// single-user mode defaults to an in-memory SQLite.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Single-user mode: the one API key of the implicit customer `local`.
    /// Used when no Redis is configured; platform credentials then come from
    /// environment variables such as `WHATSAPP_ACCESS_TOKEN`.
    #[arg(long, env = "HERMES_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Options shared with `dev`.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Options of `dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Folder of Customer, PlatformConnection and Secret manifests (`*.yaml`, `*.yml`, read recursively).
    #[arg(long, env = "HERMES_MANIFESTS", default_value = DEFAULT_MANIFESTS)]
    pub manifests: PathBuf,

    /// Address to listen on.
    #[arg(long, env = "HERMES_LISTEN", default_value = DEFAULT_DEV_LISTEN)]
    pub listen: SocketAddr,

    /// Options shared with `serve`.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Options both `serve` and `dev` take.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Keyring: comma-separated `id:hex64` AES-256 keys, the first is primary.
    /// `dev` generates one when neither this nor the file is set.
    #[arg(long, env = "HERMES_ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<String>,

    /// A file holding the keyring in the `HERMES_ENCRYPTION_KEYS` format (a mounted Secret).
    #[arg(long, env = "HERMES_ENCRYPTION_KEYS_FILE", conflicts_with = "encryption_keys")]
    pub encryption_keys_file: Option<PathBuf>,

    /// The public base URL of this deployment, e.g. `https://hermes.example.com`.
    /// Names the OAuth protected resource metadata in 401 answers.
    #[arg(long, env = "HERMES_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// `Host` values `/mcp` accepts, comma-separated. Default: the public URL's
    /// host, the listen address, localhost, 127.0.0.1 and ::1.
    #[arg(long, env = "HERMES_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// `Origin` values `/mcp` accepts, comma-separated, e.g. `https://app.example:443`.
    /// Empty accepts only requests without an `Origin` (non-browser clients).
    #[arg(long, env = "HERMES_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Meta app secret, to verify `X-Hub-Signature-256` on WhatsApp and Instagram webhooks.
    #[arg(long, env = "HERMES_META_APP_SECRET", hide_env_values = true)]
    pub meta_app_secret: Option<String>,

    /// The verify token Meta echoes in the webhook verification handshake.
    #[arg(long, env = "HERMES_META_VERIFY_TOKEN", hide_env_values = true)]
    pub meta_verify_token: Option<String>,

    /// The Graph API version in WhatsApp and Instagram request paths.
    #[arg(long, env = "HERMES_GRAPH_API_VERSION", default_value = DEFAULT_GRAPH_API_VERSION)]
    pub graph_api_version: String,

    /// The largest request body accepted, in bytes.
    #[arg(long, env = "HERMES_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Platform API base URLs.
    #[command(flatten)]
    pub api_bases: ApiBaseArgs,

    /// Webhooks, the inbox and delivery to the customers' endpoints.
    #[command(flatten)]
    pub inbound: crate::webhook::InboundArgs,
}

/// The API base URL of each platform; a connection's `apiBase` overrides it.
#[derive(Debug, Args)]
pub struct ApiBaseArgs {
    /// Email: an SMTP endpoint overriding every connection's `smtpHost`
    /// (e.g. `smtp://127.0.0.1:2525` for a local test server). Default: each connection's own.
    #[arg(long, env = "HERMES_EMAIL_API_BASE")]
    pub email_api_base: Option<String>,
    /// WhatsApp Cloud API (Graph API) base URL.
    #[arg(
        long,
        env = "HERMES_WHATSAPP_API_BASE",
        default_value = "https://graph.facebook.com"
    )]
    pub whatsapp_api_base: String,
    /// LinkedIn API base URL.
    #[arg(
        long,
        env = "HERMES_LINKEDIN_API_BASE",
        default_value = "https://api.linkedin.com"
    )]
    pub linkedin_api_base: String,
    /// Telegram Bot API base URL.
    #[arg(
        long,
        env = "HERMES_TELEGRAM_API_BASE",
        default_value = "https://api.telegram.org"
    )]
    pub telegram_api_base: String,
    /// Discord API base URL, with its version.
    #[arg(
        long,
        env = "HERMES_DISCORD_API_BASE",
        default_value = "https://discord.com/api/v10"
    )]
    pub discord_api_base: String,
    /// Instagram Graph API base URL (Instagram Login).
    #[arg(
        long,
        env = "HERMES_INSTAGRAM_API_BASE",
        default_value = "https://graph.instagram.com"
    )]
    pub instagram_api_base: String,
    /// X API v2 base URL.
    #[arg(long, env = "HERMES_X_API_BASE", default_value = "https://api.x.com")]
    pub x_api_base: String,
    /// Obsidian Local REST API base URL overriding every connection's `baseUrl`.
    /// Default: each connection's own (the plugin's usual one is `https://127.0.0.1:27124`).
    #[arg(long, env = "HERMES_OBSIDIAN_API_BASE")]
    pub obsidian_api_base: Option<String>,
}

impl ApiBaseArgs {
    /// The configured bases as a map, without trailing slashes.
    pub fn to_map(&self) -> BTreeMap<Platform, String> {
        [
            (Platform::Email, self.email_api_base.as_ref()),
            (Platform::Whatsapp, Some(&self.whatsapp_api_base)),
            (Platform::Linkedin, Some(&self.linkedin_api_base)),
            (Platform::Telegram, Some(&self.telegram_api_base)),
            (Platform::Discord, Some(&self.discord_api_base)),
            (Platform::Instagram, Some(&self.instagram_api_base)),
            (Platform::X, Some(&self.x_api_base)),
            (Platform::Obsidian, self.obsidian_api_base.as_ref()),
        ]
        .into_iter()
        .filter_map(|(platform, base)| Some((platform, base?.trim_end_matches('/').to_owned())))
        .collect()
    }
}

/// A configuration value that cannot be used; names the variable, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `HERMES_PUBLIC_URL` is not an http(s) URL.
    #[error("HERMES_PUBLIC_URL {0:?} must start with http:// or https://")]
    PublicUrl(String),
    /// `HERMES_MAX_BODY_BYTES` is zero.
    #[error("HERMES_MAX_BODY_BYTES must be greater than zero")]
    MaxBodyBytes,
    /// The keyring file could not be read.
    #[error("cannot read HERMES_ENCRYPTION_KEYS_FILE {path}: {source}")]
    KeyringFile {
        /// The path given.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// A webhook, inbox or delivery option is unusable; the message names it.
    #[error(transparent)]
    Inbound(#[from] crate::webhook::InboundConfigError),
}

impl ServerArgs {
    /// The settings handlers read, for a server listening on `listen`.
    pub fn settings(&self, listen: SocketAddr) -> Result<Settings, ConfigError> {
        let public_url = match &self.public_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => return Err(ConfigError::PublicUrl(url.clone())),
            None => None,
        };
        if self.max_body_bytes == 0 {
            return Err(ConfigError::MaxBodyBytes);
        }

        let allowed_hosts = if self.allowed_hosts.is_empty() {
            default_allowed_hosts(public_url.as_deref(), listen)
        } else {
            self.allowed_hosts.iter().map(|h| h.trim().to_owned()).collect()
        };

        Ok(Settings {
            api_bases: self.api_bases.to_map(),
            graph_api_version: self.graph_api_version.clone(),
            allowed_hosts,
            allowed_origins: self.allowed_origins.iter().map(|o| o.trim().to_owned()).collect(),
            max_body_bytes: self.max_body_bytes,
            public_url,
            meta_app_secret: self.meta_app_secret.clone(),
            meta_verify_token: self.meta_verify_token.clone(),
            inbound: self.inbound.settings()?,
        })
    }

    /// The keyring text from the variable or the file, if either is set.
    pub fn keyring_text(&self) -> Result<Option<String>, ConfigError> {
        if let Some(keys) = &self.encryption_keys {
            return Ok(Some(keys.clone()));
        }
        match &self.encryption_keys_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| Some(text.trim().to_owned()))
                .map_err(|source| ConfigError::KeyringFile {
                    path: path.clone(),
                    source,
                }),
            None => Ok(None),
        }
    }
}

/// Loopback names, the listen address and the public URL's host (each with
/// and without its port, as `Host` headers carry either).
fn default_allowed_hosts(public_url: Option<&str>, listen: SocketAddr) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        format!("localhost:{}", listen.port()),
        format!("127.0.0.1:{}", listen.port()),
        format!("[::1]:{}", listen.port()),
    ];
    if !listen.ip().is_unspecified() {
        hosts.push(listen.to_string());
        hosts.push(listen.ip().to_string());
    }
    if let Some(authority) = public_url
        .and_then(|url| url.split_once("://"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .filter(|authority| !authority.is_empty())
    {
        hosts.push(authority.to_owned());
        if let Some((host, port)) = authority.rsplit_once(':')
            && !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
        {
            hosts.push(host.to_owned());
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_listens_on_loopback_by_default() {
        let cli = Cli::try_parse_from(["hermes-server", "dev"]).expect("dev parses");
        let Command::Dev(dev) = cli.command else {
            panic!("expected dev");
        };
        assert!(dev.listen.ip().is_loopback());
        assert_eq!(dev.manifests, PathBuf::from(DEFAULT_MANIFESTS));
    }

    #[test]
    fn every_platform_has_a_default_api_base() {
        let cli = Cli::try_parse_from(["hermes-server", "serve"]).expect("serve parses");
        let Command::Serve(serve) = cli.command else {
            panic!("expected serve");
        };
        let bases = serve.server.api_bases.to_map();
        for (platform, default) in DEFAULT_API_BASES {
            assert_eq!(
                bases.get(&platform).map(String::as_str),
                Some(default),
                "{platform}"
            );
        }
    }

    #[test]
    fn the_public_host_is_allowed_by_default() {
        let listen: SocketAddr = "0.0.0.0:8080".parse().expect("valid address");
        let hosts = default_allowed_hosts(Some("https://hermes.example.com"), listen);
        assert!(hosts.contains(&"hermes.example.com".to_owned()));
        assert!(hosts.contains(&"localhost:8080".to_owned()));
    }

    #[test]
    fn a_public_url_without_scheme_is_refused_by_name() {
        let cli = Cli::try_parse_from(["hermes-server", "serve", "--public-url", "hermes.example.com"])
            .expect("parses");
        let Command::Serve(serve) = cli.command else {
            panic!("expected serve");
        };
        let error = serve
            .server
            .settings("0.0.0.0:8080".parse().expect("valid address"))
            .expect_err("no scheme");
        assert!(error.to_string().contains("HERMES_PUBLIC_URL"));
    }
}
