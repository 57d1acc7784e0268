//! `ctx.files` in the shared database (`files` table, keyed by tenant,
//! installation and path), so that any node can serve any installation:
//! the PostgreSQL [`FileBackend`].
//!
//! The core's `Files` front checks ids, paths and per-call bytes before a
//! call gets here. A write is one transaction that first takes a
//! transaction-scoped advisory lock for the installation, then reads the
//! installation's usage and stores the file: writers of one installation
//! on every node queue on that lock, so together they never pass the byte
//! quota or the file count. Reads, lists and deletes take no lock.

use std::sync::Arc;

use extensor_core::Error;
use extensor_core::files::{
    FILE_READ_BYTES_MAX, FileBackend, FileOwner, FilePath, FilesUsage, check_quota,
};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::pool::{Lease, Pool};

/// The first key of the installations' advisory locks ("file" in ASCII);
/// the second is a hash of the installation. Two-key advisory locks never
/// collide with the one-key migration lock.
const FILES_LOCK_CLASS: i32 = 0x6669_6c65;

/// The files of one PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgFiles {
    pub(crate) pool: Arc<Pool>,
}

impl PgFiles {
    async fn lease(&self, op: &'static str) -> Result<Lease<'_>, Error> {
        self.pool.get().await.map_err(|e| storage(op, e))
    }

    async fn read_file(
        &self,
        owner: FileOwner<'_>,
        path: &FilePath,
    ) -> Result<Option<Vec<u8>>, Error> {
        const OP: &str = "ctx.files.read";
        let mut lease = self.lease(OP).await?;
        // One byte past the cap tells the front the file is over it,
        // without reading the rest out of the table.
        let cap = FILE_READ_BYTES_MAX as i32 + 1;
        let rows = lease
            .query(
                "SELECT substring(bytes FROM 1 FOR $4) FROM files \
                 WHERE tenant = $1 AND installation = $2 AND path = $3",
                &[&owner.tenant, &owner.installation, &path.as_str(), &cap],
            )
            .await
            .map_err(|e| storage(OP, e))?;
        match rows.first() {
            Some(row) => Ok(Some(row.try_get(0).map_err(|e| storage(OP, e))?)),
            None => {
                refuse_kind_clash(&mut lease, owner, path, OP).await?;
                Ok(None)
            }
        }
    }

    async fn write_file(
        &self,
        owner: FileOwner<'_>,
        path: &FilePath,
        data: &[u8],
        quota_bytes: u64,
    ) -> Result<(), Error> {
        const OP: &str = "ctx.files.write";
        let mut lease = self.lease(OP).await?;
        lease.in_transaction = true;
        lease
            .client()
            .batch_execute("BEGIN")
            .await
            .map_err(|e| storage(OP, e))?;
        let outcome = write_locked(&mut lease, owner, path, data, quota_bytes).await;
        let finish = if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let finished = lease.client().batch_execute(finish).await;
        // A failed COMMIT or ROLLBACK leaves `in_transaction` set: the
        // session is then closed on drop, which rolls back what is left.
        match (outcome, finished) {
            (Ok(()), Ok(())) => {
                lease.in_transaction = false;
                Ok(())
            }
            (Ok(()), Err(e)) => Err(storage(OP, e)),
            (Err(e), finished) => {
                lease.in_transaction = finished.is_err();
                Err(e)
            }
        }
    }

    async fn delete_file(&self, owner: FileOwner<'_>, path: &FilePath) -> Result<bool, Error> {
        const OP: &str = "ctx.files.delete";
        let mut lease = self.lease(OP).await?;
        let deleted = lease
            .execute(
                "DELETE FROM files WHERE tenant = $1 AND installation = $2 AND path = $3",
                &[&owner.tenant, &owner.installation, &path.as_str()],
            )
            .await
            .map_err(|e| storage(OP, e))?;
        if deleted == 0 {
            refuse_kind_clash(&mut lease, owner, path, OP).await?;
        }
        Ok(deleted > 0)
    }

    async fn list_of(&self, owner: FileOwner<'_>) -> Result<Vec<String>, Error> {
        const OP: &str = "ctx.files.list";
        let mut lease = self.lease(OP).await?;
        // `path` is `COLLATE "C"`: byte order, as the data directory sorts.
        let rows = lease
            .query(
                "SELECT path FROM files WHERE tenant = $1 AND installation = $2 ORDER BY path",
                &[&owner.tenant, &owner.installation],
            )
            .await
            .map_err(|e| storage(OP, e))?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(|e| storage(OP, e)))
            .collect()
    }

    async fn usage_of(&self, owner: FileOwner<'_>) -> Result<FilesUsage, Error> {
        let mut lease = self.lease("ctx.files.list").await?;
        usage(&mut lease, owner).await
    }

    async fn remove(&self, owner: FileOwner<'_>) -> Result<(), Error> {
        const OP: &str = "ctx.files.delete";
        let mut lease = self.lease(OP).await?;
        lease
            .execute(
                "DELETE FROM files WHERE tenant = $1 AND installation = $2",
                &[&owner.tenant, &owner.installation],
            )
            .await
            .map_err(|e| storage(OP, e))?;
        Ok(())
    }
}

/// The write's transaction after `BEGIN`: the installation's lock, the
/// checks, the upsert.
async fn write_locked(
    lease: &mut Lease<'_>,
    owner: FileOwner<'_>,
    path: &FilePath,
    data: &[u8],
    quota_bytes: u64,
) -> Result<(), Error> {
    const OP: &str = "ctx.files.write";
    let key = format!("{}/{}", owner.tenant, owner.installation);
    lease
        .query(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&FILES_LOCK_CLASS, &key],
        )
        .await
        .map_err(|e| storage(OP, e))?;
    refuse_kind_clash(lease, owner, path, OP).await?;
    let used = usage(lease, owner).await?;
    let rows = lease
        .query(
            "SELECT size FROM files WHERE tenant = $1 AND installation = $2 AND path = $3",
            &[&owner.tenant, &owner.installation, &path.as_str()],
        )
        .await
        .map_err(|e| storage(OP, e))?;
    let replaced = match rows.first() {
        Some(r) => Some(r.try_get::<_, i64>(0).map_err(|e| storage(OP, e))?.max(0) as u64),
        None => None,
    };
    check_quota(used, replaced, data.len(), quota_bytes)?;
    let size = data.len() as i64;
    lease
        .execute(
            "INSERT INTO files (tenant, installation, path, size, bytes) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, installation, path) \
             DO UPDATE SET size = EXCLUDED.size, bytes = EXCLUDED.bytes, updated_at = now()",
            &[
                &owner.tenant,
                &owner.installation,
                &path.as_str(),
                &size,
                &data,
            ],
        )
        .await
        .map_err(|e| storage(OP, e))?;
    Ok(())
}

async fn usage(lease: &mut Lease<'_>, owner: FileOwner<'_>) -> Result<FilesUsage, Error> {
    const OP: &str = "ctx.files.list";
    let rows = lease
        .query(
            "SELECT coalesce(sum(size), 0)::bigint, count(*) FROM files \
             WHERE tenant = $1 AND installation = $2",
            &[&owner.tenant, &owner.installation],
        )
        .await
        .map_err(|e| storage(OP, e))?;
    let row = rows.first().ok_or_else(|| storage(OP, "no usage row"))?;
    let bytes: i64 = row.try_get(0).map_err(|e| storage(OP, e))?;
    let files: i64 = row.try_get(1).map_err(|e| storage(OP, e))?;
    Ok(FilesUsage {
        bytes: bytes.max(0) as u64,
        files: files.max(0) as usize,
    })
}

/// Refuses a path that goes through a stored file (`a` for `a/b`) or names
/// a directory (files under `a/`), as the data directory does.
async fn refuse_kind_clash(
    lease: &mut Lease<'_>,
    owner: FileOwner<'_>,
    path: &FilePath,
    op: &'static str,
) -> Result<(), Error> {
    let parents: Vec<&str> = path.parents();
    // Under `a/`: from `a/` up to, not including, `a0` (`0` follows `/`).
    let (from, to) = (format!("{}/", path.as_str()), format!("{}0", path.as_str()));
    let rows = lease
        .query(
            "SELECT \
               EXISTS (SELECT 1 FROM files WHERE tenant = $1 AND installation = $2 \
                       AND path = ANY($3)), \
               EXISTS (SELECT 1 FROM files WHERE tenant = $1 AND installation = $2 \
                       AND path >= $4 AND path < $5)",
            &[&owner.tenant, &owner.installation, &parents, &from, &to],
        )
        .await
        .map_err(|e| storage(op, e))?;
    let row = rows.first().ok_or_else(|| storage(op, "no row"))?;
    let through_file: bool = row.try_get(0).map_err(|e| storage(op, e))?;
    let is_directory: bool = row.try_get(1).map_err(|e| storage(op, e))?;
    if through_file {
        return Err(path.kind_clash("goes through a file"));
    }
    if is_directory {
        return Err(path.kind_clash("names a directory"));
    }
    Ok(())
}

fn storage(op: &'static str, e: impl std::fmt::Display) -> Error {
    Error::FileStorage {
        op,
        detail: e.to_string(),
    }
}

impl FileBackend for PgFiles {
    fn read<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        self.read_file(owner, path).boxed()
    }

    fn write<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
        data: &'a [u8],
        quota_bytes: u64,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.write_file(owner, path, data, quota_bytes).boxed()
    }

    fn delete<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.delete_file(owner, path).boxed()
    }

    fn list<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        self.list_of(owner).boxed()
    }

    fn usage<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<FilesUsage, Error>> {
        self.usage_of(owner).boxed()
    }

    fn remove_all<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<(), Error>> {
        self.remove(owner).boxed()
    }
}
