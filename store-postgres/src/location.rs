//! The store's URL: parsed once, and shown everywhere without its password.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use extensor_core::Error;
use tokio_postgres::config::Host;

/// How long opening a connection may take before the store reports the
/// server unreachable.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// A parsed `postgres://` URL.
#[derive(Clone)]
pub struct Location {
    pub(crate) config: tokio_postgres::Config,
    /// The URL without its password, for every message that names the store.
    shown: String,
}

impl Location {
    /// Parses `url`, which must be a `postgres://` or `postgresql://` URL.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::InvalidValue {
            what: "PostgreSQL store URL",
            value: redact_password(url),
            reason,
        };
        let scheme_ok = ["postgres://", "postgresql://"]
            .iter()
            .any(|s| url.len() >= s.len() && url[..s.len()].eq_ignore_ascii_case(s));
        if !scheme_ok {
            return Err(bad("expected postgres://user@host:port/database".into()));
        }
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| bad(e.to_string()))?;
        if config.get_dbname().is_none() {
            return Err(bad("the URL names no database".into()));
        }
        if config.get_hosts().is_empty() {
            return Err(bad("the URL names no host".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS));
        }
        let shown = show(&config);
        Ok(Self { config, shown })
    }

    /// The same server, another database (tests create one per check).
    pub fn with_database(&self, database: &str) -> Self {
        let mut config = self.config.clone();
        config.dbname(database);
        let shown = show(&config);
        Self { config, shown }
    }

    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// What the core error type takes as the store's "path".
    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from(&self.shown)
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn show(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "postgres://{user}{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for
/// messages about a URL that did not parse.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.chars().take(200).collect();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_shown() {
        let l = Location::parse("postgres://app:hunter2@db.example:6543/events").unwrap();
        assert_eq!(l.shown(), "postgres://app@db.example:6543/events");
        let err = Location::parse("postgres://app:hunter2@db.example:notaport/events")
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("app:***@"), "{err}");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, reason) in [
            ("mysql://x@h/db", "postgres://"),
            ("postgres://x@h", "no database"),
            ("postgres://x@h:99999/db", "invalid"),
            ("", "postgres://"),
        ] {
            let err = Location::parse(url).expect_err(url).to_string();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }
}
