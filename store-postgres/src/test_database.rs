//! A fresh database per test on the server named by
//! `EXTENSOR_TEST_POSTGRES_URL` (default [`TEST_SERVER_URL_DEFAULT`]),
//! dropped when the handle is. For this crate's tests and the binary's.
//!
//! An unreachable server is an error that says so and how to fix it: tests
//! that need PostgreSQL fail, they never skip.

use extensor_core::Error;

use crate::location::Location;

/// Where tests find PostgreSQL when the variable is unset.
pub const TEST_SERVER_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The variable naming the test server.
pub const TEST_SERVER_URL_VAR: &str = "EXTENSOR_TEST_POSTGRES_URL";

/// A database created for one test; dropped (with any session still on it)
/// when this is dropped.
pub struct TestDatabase {
    server: Location,
    location: Location,
    /// The server's URL with the database replaced (password kept).
    url: String,
}

impl TestDatabase {
    /// Creates `extensor_test_<ulid>` on the test server.
    pub async fn create() -> Result<Self, Error> {
        let url = std::env::var(TEST_SERVER_URL_VAR)
            .unwrap_or_else(|_| TEST_SERVER_URL_DEFAULT.to_owned());
        let server = Location::parse(&url)?;
        let name = format!(
            "extensor_test_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let client = crate::pool::connect(&server)
            .await
            .map_err(|e| unreachable(&server, e))?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| crate::errors::map_err(&server, e))?;
        let location = server.with_database(&name);
        let url = with_database(&url, &name);
        Ok(Self {
            server,
            location,
            url,
        })
    }

    /// The fresh database.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Its URL, to hand to a process under test.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `postgres://u@h:p/old?x=y` → `postgres://u@h:p/NAME?x=y`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{name}{query}")
}

fn unreachable(server: &Location, e: Error) -> Error {
    Error::StoreOpen {
        path: server.path(),
        detail: format!(
            "the test PostgreSQL server is unreachable ({e}); start one, set \
             {TEST_SERVER_URL_VAR}, or run scripts/test (which starts a throwaway cluster)"
        ),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.location.database().to_owned();
        // Drop may run inside a runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let client = crate::pool::connect(&server)
                    .await
                    .map_err(|e| e.to_string())?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| crate::errors::describe(&e))
            })
        })
        .join();
        if let Ok(Err(e)) | Err(e) = dropped.map_err(|_| "panicked".to_string()) {
            eprintln!(
                "warning: could not drop test database {}: {e}",
                self.location.shown()
            );
        }
    }
}
