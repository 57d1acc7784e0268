//! The embedded SQLite store against the shared conformance suite.

use std::sync::{Arc, Mutex};

use extensor_core::store::conformance::Backend;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use futures::FutureExt;
use futures::future::BoxFuture;

/// Each fresh store lives in its own temporary directory, kept alive until
/// the test process ends.
struct Sqlite {
    dirs: Mutex<Vec<Arc<tempfile::TempDir>>>,
}

impl Backend for Sqlite {
    type Store = SqliteStore;

    fn fresh(&self) -> BoxFuture<'_, SqliteStore> {
        async move {
            let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
            let store = SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing))
                .expect("open");
            self.dirs.lock().unwrap().push(dir);
            store
        }
        .boxed()
    }

    fn reopen(&self, store: SqliteStore) -> BoxFuture<'_, SqliteStore> {
        async move {
            let dir = store
                .path()
                .parent()
                .expect("store file has a directory")
                .to_path_buf();
            store.close().await;
            drop(store);
            SqliteStore::open(SqliteConfig::new(dir, OpenMode::CreateIfMissing)).expect("reopen")
        }
        .boxed()
    }
}

static BACKEND: Sqlite = Sqlite {
    dirs: Mutex::new(Vec::new()),
};

extensor_core::conformance_tests!(BACKEND);
