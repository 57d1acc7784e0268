//! The client's errors as the core's, naming the server (never its
//! password).

use std::path::PathBuf;

use extensor_core::Error;

/// The server's connection string as shown in messages: without the
/// user's password.
#[derive(Clone, Debug)]
pub struct Location {
    shown: String,
}

impl Location {
    pub fn new(url: &str) -> Self {
        let shown = match url.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
                let host = match authority.rsplit_once('@') {
                    Some((user, host)) => {
                        let user = user.split(':').next().unwrap_or_default();
                        format!("{user}@{host}")
                    }
                    None => authority.to_owned(),
                };
                format!("{scheme}://{host}{tail}")
            }
            None => "(not a URL)".to_owned(),
        };
        Self { shown }
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// How the core's store errors name it.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.shown)
    }
}

/// A failed call to the server.
pub fn io(location: &Location, what: &str, e: kurrentdb::Error) -> Error {
    Error::StoreIo {
        path: location.path(),
        detail: format!("{what}: {e}"),
    }
}

/// A stored event or snapshot that is not what this store writes.
pub fn corrupt(location: &Location, detail: String) -> Error {
    Error::StoreCorrupt {
        path: location.path(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        for (url, shown) in [
            (
                "kurrentdb://admin:changeit@db:2113?tls=false",
                "kurrentdb://admin@db:2113?tls=false",
            ),
            ("esdb://db:2113", "esdb://db:2113"),
            ("esdb+discover://u:p@a,b,c/x", "esdb+discover://u@a,b,c/x"),
            ("nonsense", "(not a URL)"),
        ] {
            assert_eq!(Location::new(url).shown(), shown, "{url}");
        }
    }
}
