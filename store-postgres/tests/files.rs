//! `ctx.files` in the PostgreSQL store against the shared files
//! conformance suite (the data directory's backend runs the same one).
//! Each check gets its own database; "another handle" is another store
//! instance (its own pool of sessions), as a second node would have.

mod support;

use extensor_core::Error;
use extensor_core::files::conformance::Backend;
use extensor_core::files::{FileBackend, FileOwner, FilePath, FilesUsage};
use extensor_store_postgres::files::PgFiles;
use futures::FutureExt;
use futures::future::BoxFuture;
use support::TestStore;

/// The files of a test store, keeping its database alive.
#[derive(Clone)]
struct TestFiles {
    files: PgFiles,
    store: TestStore,
}

impl TestFiles {
    fn of(store: TestStore) -> Self {
        Self {
            files: store.store.files(),
            store,
        }
    }
}

impl FileBackend for TestFiles {
    fn read<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        self.files.read(owner, path)
    }
    fn write<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
        data: &'a [u8],
        quota_bytes: u64,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.files.write(owner, path, data, quota_bytes)
    }
    fn delete<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.files.delete(owner, path)
    }
    fn list<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        self.files.list(owner)
    }
    fn usage<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<FilesUsage, Error>> {
        self.files.usage(owner)
    }
    fn remove_all<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<(), Error>> {
        self.files.remove_all(owner)
    }
}

struct Postgres;

impl Backend for Postgres {
    type Handle = TestFiles;

    fn fresh(&self) -> BoxFuture<'_, TestFiles> {
        TestStore::fresh().map(TestFiles::of).boxed()
    }

    fn another<'a>(&'a self, handle: &'a TestFiles) -> BoxFuture<'a, TestFiles> {
        TestStore::open_on(handle.store.db.clone())
            .map(TestFiles::of)
            .boxed()
    }

    fn plant<'a>(
        &'a self,
        handle: &'a TestFiles,
        owner: FileOwner<'a>,
        path: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, ()> {
        async move {
            let size = bytes.len() as i64;
            handle
                .store
                .psql()
                .await
                .execute(
                    "INSERT INTO files (tenant, installation, path, size, bytes) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, installation, path) \
                     DO UPDATE SET size = EXCLUDED.size, bytes = EXCLUDED.bytes",
                    &[&owner.tenant, &owner.installation, &path, &size, &bytes],
                )
                .await
                .expect("plant a file with SQL");
        }
        .boxed()
    }

    fn plant_many<'a>(
        &'a self,
        handle: &'a TestFiles,
        owner: FileOwner<'a>,
        count: usize,
    ) -> BoxFuture<'a, ()> {
        async move {
            let last = count as i64 - 1;
            handle
                .store
                .psql()
                .await
                .execute(
                    "INSERT INTO files (tenant, installation, path, size, bytes) \
                     SELECT $1, $2, 'bulk/' || g, 1, '\\x62'::bytea \
                     FROM generate_series(0, $3::bigint) g",
                    &[&owner.tenant, &owner.installation, &last],
                )
                .await
                .expect("plant files with SQL");
        }
        .boxed()
    }
}

extensor_core::files_conformance_tests!(Postgres);
