//! The KurrentDB store against the shared conformance suite, unchanged.
//!
//! No KurrentDB server can run where this project is tested, so these
//! checks are `#[ignore]`d: CI compiles them, and they run only when asked
//! for, against the server `EXTENSOR_TEST_KURRENTDB_URL` names:
//!
//! ```text
//! EXTENSOR_TEST_KURRENTDB_URL='kurrentdb://127.0.0.1:2113?tls=false' \
//!     cargo test -p extensor-store-kurrentdb -- --ignored
//! ```
//!
//! Asked for without the variable, every check fails saying so. Each check
//! gets a fresh namespace (`extensor-test-<ulid>`) on the server, so runs
//! never see each other's streams; they are left on the server.

use extensor_core::store::conformance::Backend;
use extensor_store_kurrentdb::{KurrentConfig, KurrentStore, TEST_SERVER_URL_VAR};
use futures::FutureExt;
use futures::future::BoxFuture;

struct Kurrent;

async fn open(namespace: String) -> KurrentStore {
    let url = std::env::var(TEST_SERVER_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{TEST_SERVER_URL_VAR} is not set: the KurrentDB conformance checks need a \
             server, e.g. {TEST_SERVER_URL_VAR}='kurrentdb://127.0.0.1:2113?tls=false'"
        )
    });
    let mut config = KurrentConfig::new(url);
    config.namespace = namespace;
    KurrentStore::open(config)
        .await
        .unwrap_or_else(|e| panic!("open the KurrentDB store: {e}"))
}

impl Backend for Kurrent {
    type Store = KurrentStore;

    fn fresh(&self) -> BoxFuture<'_, KurrentStore> {
        let namespace = format!(
            "extensor-test-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        open(namespace).boxed()
    }

    fn reopen(&self, store: KurrentStore) -> BoxFuture<'_, KurrentStore> {
        let namespace = store.namespace().to_owned();
        drop(store);
        open(namespace).boxed()
    }
}

extensor_core::conformance_tests!(
    Kurrent,
    #[ignore = "needs a KurrentDB server: set EXTENSOR_TEST_KURRENTDB_URL and run with --ignored"]
);
