//! Reading a database URL: which dialect it names, the URL sqlx should
//! connect to, and a form of it that is safe to print.

use std::sync::atomic::{AtomicU64, Ordering};

use super::SqlError;

/// The SQL dialects Hermes ships migrations for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    /// MySQL 8 or MariaDB, in a cluster.
    MySql,
    /// SQLite, in `dev` mode and tests.
    Sqlite,
}

impl Dialect {
    /// The dialect's name, as in the `migrations/` folder.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// A database URL, checked and ready for sqlx.
#[derive(Clone, Debug)]
pub(super) struct DatabaseUrl {
    /// The dialect the URL names.
    pub(super) dialect: Dialect,
    /// The URL handed to sqlx. May differ from the caller's (see [`DatabaseUrl::parse`]).
    pub(super) connect: String,
    /// True for a SQLite database that lives only in this process's memory.
    pub(super) in_memory: bool,
    /// The caller's URL without password, query or fragment: safe for errors and logs.
    pub(super) redacted: String,
}

/// Numbers the in-memory SQLite databases of this process, so each
/// `sqlite::memory:` repository gets a database of its own.
static IN_MEMORY_SEQ: AtomicU64 = AtomicU64::new(0);

impl DatabaseUrl {
    /// Reads `url`, accepting `mysql://`, `mariadb://` and `sqlite:` URLs.
    ///
    /// Two SQLite forms are rewritten:
    ///
    /// - A file URL without a `mode` parameter gets `mode=rwc`, so a missing
    ///   database file is created.
    /// - `sqlite::memory:` (and `sqlite://:memory:`, `mode=memory`) becomes a
    ///   named shared-cache in-memory database unique to this call. sqlx's
    ///   runtime-generic driver re-reads the URL for every pooled connection,
    ///   and a plain `:memory:` would give each connection an empty database
    ///   of its own.
    pub(super) fn parse(url: &str) -> Result<Self, SqlError> {
        let redacted = redact(url);
        let unsupported = |reason| SqlError::UnsupportedUrl {
            url: redacted.clone(),
            reason,
        };

        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(unsupported("not a URL; expected mysql://, mariadb:// or sqlite:"));
        };
        match scheme {
            "mysql" | "mariadb" => Ok(Self {
                dialect: Dialect::MySql,
                connect: url.to_owned(),
                in_memory: false,
                redacted,
            }),
            "sqlite" => {
                let (connect, in_memory) = sqlite_connect_url(rest).map_err(unsupported)?;
                Ok(Self {
                    dialect: Dialect::Sqlite,
                    connect,
                    in_memory,
                    redacted,
                })
            }
            _ => Err(unsupported(
                "this build speaks MySQL/MariaDB (mysql://, mariadb://) and SQLite (sqlite:) only",
            )),
        }
    }
}

/// The sqlx URL for the part of a `sqlite:` URL after the scheme, and whether it is in memory.
fn sqlite_connect_url(rest: &str) -> Result<(String, bool), &'static str> {
    let (location, params) = match rest.split_once('?') {
        Some((location, params)) => (location, Some(params)),
        None => (rest, None),
    };
    let path = location.strip_prefix("//").unwrap_or(location);
    let mode = params.and_then(|params| params.split('&').find_map(|pair| pair.strip_prefix("mode=")));

    if path == ":memory:" || mode == Some("memory") {
        let seq = IN_MEMORY_SEQ.fetch_add(1, Ordering::Relaxed);
        let url = format!("sqlite:file:hermes-memory-{seq}?mode=memory&cache=shared");
        return Ok((url, true));
    }
    if path.is_empty() {
        return Err("names no database file; use sqlite://<path> or sqlite::memory:");
    }

    let url = match (params, mode) {
        (Some(params), Some(_)) => format!("sqlite:{location}?{params}"),
        (Some(params), None) => format!("sqlite:{location}?{params}&mode=rwc"),
        (None, _) => format!("sqlite:{location}?mode=rwc"),
    };
    Ok((url, false))
}

/// `url` without its password, query and fragment.
///
/// `scheme://user:secret@host/db?password=x` becomes `scheme://user:***@host/db`.
/// The query goes entirely because some drivers accept credentials there.
pub(super) fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };

    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };

    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => format!("{scheme}://{userinfo}@{host}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_masked_and_query_dropped() {
        assert_eq!(
            redact("mysql://root:hunter2@db:3306/hermes?ssl-mode=required"),
            "mysql://root:***@db:3306/hermes"
        );
        assert_eq!(
            redact("postgres://h/db?user=u&password=hunter2"),
            "postgres://h/db"
        );
        assert_eq!(redact("mysql://root@db/hermes"), "mysql://root@db/hermes");
        assert_eq!(redact("mysql://db/hermes"), "mysql://db/hermes");
        assert_eq!(redact("mysql://u:p@ss@db/x"), "mysql://u:***@db/x");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn unknown_scheme_is_refused_without_its_password() {
        let err = DatabaseUrl::parse("postgres://u:hunter2@h/db").expect_err("postgres is not supported");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("postgres://u:***@h/db"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn sqlite_file_urls_create_missing_files() {
        let url = DatabaseUrl::parse("sqlite:///var/lib/hermes.db").expect("valid url");
        assert_eq!((url.dialect, url.in_memory), (Dialect::Sqlite, false));
        assert_eq!(url.connect, "sqlite:///var/lib/hermes.db?mode=rwc");

        let url = DatabaseUrl::parse("sqlite:hermes.db").expect("valid url");
        assert_eq!(url.connect, "sqlite:hermes.db?mode=rwc");

        let url = DatabaseUrl::parse("sqlite://hermes.db?cache=private").expect("valid url");
        assert_eq!(url.connect, "sqlite://hermes.db?cache=private&mode=rwc");

        let url = DatabaseUrl::parse("sqlite://hermes.db?mode=ro").expect("valid url");
        assert_eq!(url.connect, "sqlite://hermes.db?mode=ro");
    }

    #[test]
    fn each_sqlite_memory_url_gets_its_own_named_database() {
        let first = DatabaseUrl::parse("sqlite::memory:").expect("valid url");
        let second = DatabaseUrl::parse("sqlite://:memory:").expect("valid url");
        let third = DatabaseUrl::parse("sqlite://?mode=memory").expect("valid url");

        for url in [&first, &second, &third] {
            assert!(url.in_memory);
            assert!(
                url.connect.starts_with("sqlite:file:hermes-memory-"),
                "{}",
                url.connect
            );
            assert!(
                url.connect.ends_with("?mode=memory&cache=shared"),
                "{}",
                url.connect
            );
        }
        assert_ne!(first.connect, second.connect);
        assert_ne!(second.connect, third.connect);
    }

    #[test]
    fn sqlite_url_without_a_file_is_refused() {
        let err = DatabaseUrl::parse("sqlite://").expect_err("no file named");
        assert!(matches!(err, SqlError::UnsupportedUrl { .. }), "{err:?}");
    }

    #[test]
    fn mysql_and_mariadb_urls_pass_through() {
        for raw in ["mysql://root@127.0.0.1:3306/test", "mariadb://u:p@db/hermes"] {
            let url = DatabaseUrl::parse(raw).expect("valid url");
            assert_eq!((url.dialect, url.connect.as_str()), (Dialect::MySql, raw));
        }
    }
}
