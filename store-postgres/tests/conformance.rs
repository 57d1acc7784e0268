//! The PostgreSQL store against the shared conformance suite, unchanged.
//! Each check gets its own database on `EXTENSOR_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped after
//! it; an unreachable server fails the check, saying so.

mod support;

use extensor_core::store::conformance::Backend;
use futures::FutureExt;
use futures::future::BoxFuture;
use support::TestStore;

struct Postgres;

impl Backend for Postgres {
    type Store = TestStore;

    fn fresh(&self) -> BoxFuture<'_, TestStore> {
        TestStore::fresh().boxed()
    }

    fn reopen(&self, store: TestStore) -> BoxFuture<'_, TestStore> {
        async move {
            let db = store.db.clone();
            drop(store);
            TestStore::open_on(db).await
        }
        .boxed()
    }
}

extensor_core::conformance_tests!(Postgres);
