//! The operator's command line: every setting is a flag with an environment
//! fallback, and `--help` documents both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hermes_state::vault::{KEYS_FILE_VAR, KEYS_VAR, Keyring, KeyringError};
use zeroize::Zeroizing;

/// Where `/healthz`, `/readyz` and `/metrics` listen unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:8081";

/// The Lease that elects the one active replica.
pub const DEFAULT_LEASE_NAME: &str = "hermes-operator";

/// How long a Lease stays valid after its holder last renewed it, in seconds.
pub const DEFAULT_LEASE_DURATION_SECONDS: u64 = 15;

/// How long before expiry the holder renews, in seconds.
pub const DEFAULT_LEASE_GRACE_SECONDS: u64 = 5;

/// How many objects each controller reconciles at once.
pub const DEFAULT_CONCURRENCY: u16 = 32;

/// The Telegram Bot API, where webhooks are registered.
pub const DEFAULT_TELEGRAM_API_BASE: &str = "https://api.telegram.org";

/// How long a graceful shutdown waits for running reconciles before giving up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// The `hermes-operator` command line.
#[derive(Debug, Parser)]
#[command(
    name = "hermes-operator",
    version,
    about = "Reconciles Hermes Customers and PlatformConnections into encrypted runtime state"
)]
pub struct Cli {
    /// What to do; runs the controllers when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings of `run`, accepted without the subcommand too.
    #[command(flatten)]
    pub run: RunConfig,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers (the default).
    Run,
    /// Print the CustomResourceDefinitions as YAML on stdout.
    Crds,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything the controllers need to run.
#[derive(Clone, Debug, Args)]
pub struct RunConfig {
    /// Address of the `/healthz`, `/readyz` and `/metrics` endpoints.
    #[arg(long, env = "HERMES_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,

    /// The Redis the state is written to, e.g. `redis://redis:6379`.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Comma-separated seed nodes of a Redis Cluster; wins over `REDIS_URL`
    /// when both are set, as in the server.
    #[arg(
        long,
        env = "REDIS_CLUSTER_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub redis_cluster_urls: Vec<String>,

    /// The SQL database of the customers table: `mysql://…` or `sqlite://…`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The keyring: comma-separated `id:hex64`, the first key primary.
    #[arg(long, env = KEYS_VAR, hide_env_values = true, conflicts_with = "encryption_keys_file")]
    pub encryption_keys: Option<String>,

    /// A file holding the keyring, as a mounted Secret provides it.
    #[arg(long, env = KEYS_FILE_VAR)]
    pub encryption_keys_file: Option<PathBuf>,

    /// The server's public URL; when set, Telegram webhooks of non-sandbox
    /// connections are registered at `<url>/webhook/telegram/<route id>`.
    #[arg(long, env = "HERMES_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The Telegram Bot API base URL (tests point it at a local mock).
    #[arg(long, env = "HERMES_TELEGRAM_API_BASE", default_value = DEFAULT_TELEGRAM_API_BASE)]
    pub telegram_api_base: String,

    /// The name of the leader-election Lease.
    #[arg(long, env = "HERMES_LEASE_NAME", default_value = DEFAULT_LEASE_NAME)]
    pub lease_name: String,

    /// The namespace of the Lease; defaults to the client's namespace
    /// (the pod's own in a cluster, the kubeconfig context's outside).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Seconds a Lease stays valid after its last renewal.
    #[arg(long, env = "HERMES_LEASE_DURATION_SECONDS", default_value_t = DEFAULT_LEASE_DURATION_SECONDS)]
    pub lease_duration_seconds: u64,

    /// Seconds before expiry the holder renews its Lease.
    #[arg(long, env = "HERMES_LEASE_GRACE_SECONDS", default_value_t = DEFAULT_LEASE_GRACE_SECONDS)]
    pub lease_grace_seconds: u64,

    /// This replica's identity in the Lease and in Events; defaults to the hostname and pid.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// How many objects each controller reconciles at once.
    #[arg(long, env = "HERMES_RECONCILE_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: u16,

    /// The format of log lines; `RUST_LOG` sets the levels.
    #[arg(long, env = "HERMES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A configuration the operator cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `REDIS_URL` nor `REDIS_CLUSTER_URLS` was given.
    #[error("no state store configured: set REDIS_URL or REDIS_CLUSTER_URLS")]
    NoRedis,
    /// `DATABASE_URL` was not given.
    #[error("no database configured: set DATABASE_URL (mysql://… or sqlite://…)")]
    NoDatabase,
    /// Neither keyring variable was given.
    #[error("no keyring configured: set {KEYS_VAR} or {KEYS_FILE_VAR}")]
    NoKeyring,
    /// The keyring file could not be read.
    #[error("cannot read the keyring file {path:?} named by {KEYS_FILE_VAR}")]
    ReadKeyringFileFailed {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The keyring did not parse; the error names the entry, never key material.
    #[error("invalid keyring")]
    InvalidKeyring(#[source] KeyringError),
    /// The lease timings cannot work: the grace period must be shorter than the lease.
    #[error(
        "HERMES_LEASE_GRACE_SECONDS ({grace}) must be shorter than HERMES_LEASE_DURATION_SECONDS ({duration})"
    )]
    LeaseTimings {
        /// The lease duration.
        duration: u64,
        /// The grace period.
        grace: u64,
    },
    /// The public URL is not an http(s) URL.
    #[error("HERMES_PUBLIC_URL {0:?} is not an http:// or https:// URL")]
    InvalidPublicUrl(String),
}

/// Where the state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis.
    Single(String),
    /// A Redis Cluster, by its seed nodes.
    Cluster(Vec<String>),
}

impl RunConfig {
    /// The Redis to connect to.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoRedis`] when neither variable is set.
    pub fn redis_target(&self) -> Result<RedisTarget, ConfigError> {
        let seeds: Vec<String> = self
            .redis_cluster_urls
            .iter()
            .map(|seed| seed.trim().to_owned())
            .filter(|seed| !seed.is_empty())
            .collect();

        if !seeds.is_empty() {
            return Ok(RedisTarget::Cluster(seeds));
        }
        match self.redis_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Ok(RedisTarget::Single(url.to_owned())),
            _ => Err(ConfigError::NoRedis),
        }
    }

    /// The SQL database URL.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoDatabase`] when it is not set.
    pub fn database_url(&self) -> Result<&str, ConfigError> {
        self.database_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .ok_or(ConfigError::NoDatabase)
    }

    /// Loads the keyring from the inline value or the file.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming what is missing or wrong; never key material.
    pub fn keyring(&self) -> Result<Keyring, ConfigError> {
        let spec = match (&self.encryption_keys, &self.encryption_keys_file) {
            (Some(inline), _) => Zeroizing::new(inline.clone()),
            (None, Some(path)) => {
                let bytes = std::fs::read(path).map_err(|source| ConfigError::ReadKeyringFileFailed {
                    path: path.clone(),
                    source,
                })?;
                let bytes = Zeroizing::new(bytes);
                Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
            }
            (None, None) => return Err(ConfigError::NoKeyring),
        };
        Keyring::parse(&spec).map_err(ConfigError::InvalidKeyring)
    }

    /// The public URL without a trailing slash, if one is set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPublicUrl`] when it is not an http(s) URL.
    pub fn public_url(&self) -> Result<Option<String>, ConfigError> {
        let Some(url) = self
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
        else {
            return Ok(None);
        };
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match host {
            Some(host) if !host.is_empty() && !url.contains(char::is_whitespace) => {
                Ok(Some(url.trim_end_matches('/').to_owned()))
            }
            _ => Err(ConfigError::InvalidPublicUrl(url.to_owned())),
        }
    }

    /// The lease timings, checked.
    ///
    /// # Errors
    ///
    /// [`ConfigError::LeaseTimings`] when the grace period is not shorter than the lease.
    pub fn lease_timings(&self) -> Result<(u64, u64), ConfigError> {
        if self.lease_grace_seconds >= self.lease_duration_seconds || self.lease_grace_seconds == 0 {
            return Err(ConfigError::LeaseTimings {
                duration: self.lease_duration_seconds,
                grace: self.lease_grace_seconds,
            });
        }
        Ok((self.lease_duration_seconds, self.lease_grace_seconds))
    }

    /// This replica's identity: `POD_NAME`, or the hostname and pid.
    pub fn identity(&self) -> String {
        if let Some(identity) = self.identity.as_deref().filter(|identity| !identity.is_empty()) {
            return identity.to_owned();
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "hermes-operator".to_owned());
        format!("{host}-{}", std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["hermes-operator"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("the arguments are valid")
    }

    #[test]
    fn no_subcommand_means_run_with_defaults() {
        let cli = parse(&[]);

        assert!(cli.command.is_none());
        assert_eq!(cli.run.metrics_listen.to_string(), DEFAULT_METRICS_LISTEN);
        assert_eq!(cli.run.lease_name, DEFAULT_LEASE_NAME);
    }

    #[test]
    fn crds_is_a_subcommand() {
        let cli = parse(&["crds"]);

        assert!(matches!(cli.command, Some(Command::Crds)));
    }

    // CI exports REDIS_URL and REDIS_CLUSTER_URLS to the test process, and
    // clap reads them; tests of the Redis settings set both fields themselves.
    fn with_redis(url: Option<&str>, seeds: &[&str]) -> RunConfig {
        let mut config = parse(&[]).run;
        config.redis_url = url.map(str::to_owned);
        config.redis_cluster_urls = seeds.iter().map(|seed| (*seed).to_owned()).collect();
        config
    }

    #[test]
    fn cluster_seeds_are_split_on_commas() {
        let cli = parse(&["--redis-cluster-urls", "redis://a:7000, redis://b:7001"]);
        let config = with_redis(None, &[]);
        let config = RunConfig {
            redis_cluster_urls: cli.run.redis_cluster_urls,
            ..config
        };

        assert_eq!(
            config.redis_target().expect("seeds are set"),
            RedisTarget::Cluster(vec!["redis://a:7000".into(), "redis://b:7001".into()])
        );
    }

    #[test]
    fn cluster_seeds_win_over_redis_url_as_in_the_server() {
        let both = with_redis(Some("redis://a:6379"), &["redis://b:7000"]);
        let single = with_redis(Some("redis://a:6379"), &[]);

        assert_eq!(
            both.redis_target().expect("both are set"),
            RedisTarget::Cluster(vec!["redis://b:7000".into()])
        );
        assert_eq!(
            single.redis_target().expect("one is set"),
            RedisTarget::Single("redis://a:6379".into())
        );
    }

    #[test]
    fn missing_redis_is_an_error_naming_both_variables() {
        let error = with_redis(None, &[]).redis_target().expect_err("nothing is set");

        let message = error.to_string();
        assert!(
            message.contains("REDIS_URL") && message.contains("REDIS_CLUSTER_URLS"),
            "{message}"
        );
    }

    fn with_keys(inline: Option<&str>, file: Option<PathBuf>) -> RunConfig {
        let mut config = parse(&[]).run;
        config.encryption_keys = inline.map(str::to_owned);
        config.encryption_keys_file = file;
        config
    }

    #[test]
    fn inline_keyring_parses_with_the_first_key_primary() {
        let config = with_keys(Some(KEY), None);

        let keyring = config.keyring().expect("the key is valid");

        assert_eq!(keyring.primary_id(), "k1");
    }

    #[test]
    fn keyring_file_is_read() {
        let dir = tempfile::tempdir().expect("a temp dir can be made");
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("{KEY}\n")).expect("the temp file is writable");
        let config = with_keys(None, Some(path));

        let keyring = config.keyring().expect("the file holds a valid key");

        assert_eq!(keyring.primary_id(), "k1");
    }

    #[test]
    fn a_bad_keyring_error_never_shows_key_material() {
        let hex = "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let config = with_keys(Some(&format!("k1:{hex}")), None);

        let error = config.keyring().expect_err("zz is not hex");

        let chain = crate::error::chain(&error);
        assert!(!chain.contains(hex), "{chain}");
    }

    #[test]
    fn public_url_loses_its_trailing_slash_and_must_be_http() {
        let ok = parse(&["--public-url", "https://hermes.example.com/"]);
        let bad = parse(&["--public-url", "hermes.example.com"]);

        assert_eq!(
            ok.run.public_url().expect("https is accepted").as_deref(),
            Some("https://hermes.example.com")
        );
        assert!(bad.run.public_url().is_err());
    }

    #[test]
    fn lease_grace_must_be_shorter_than_the_lease() {
        let cli = parse(&["--lease-duration-seconds", "5", "--lease-grace-seconds", "5"]);

        assert!(cli.run.lease_timings().is_err());
    }
}
