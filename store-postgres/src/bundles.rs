//! Plugin bundles in the shared database (`bundles` table), so that any
//! node can load any installation's bundle: the PostgreSQL
//! [`BundleBlobs`]. Content-addressed like the data directory's store: a
//! row is inserted once under its digest, never updated, and every read is
//! verified against the digest.

use std::sync::Arc;

use extensor_core::Error;
use extensor_core::bundles::{
    BundleBlobs, STORED_BUNDLE_BYTES_MAX, digest_hex, digest_of, verify_digest,
};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::pool::Pool;

/// The bundles of one PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgBundles {
    pub(crate) pool: Arc<Pool>,
}

impl PgBundles {
    fn error(&self, detail: String) -> Error {
        Error::BundleIo {
            path: self.pool.location().path(),
            detail,
        }
    }
}

impl BundleBlobs for PgBundles {
    fn put(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, Error>> {
        async move {
            if bytes.len() > STORED_BUNDLE_BYTES_MAX {
                return Err(self.error(format!(
                    "bundle is {} bytes; the limit is {STORED_BUNDLE_BYTES_MAX}",
                    bytes.len()
                )));
            }
            let digest = digest_of(&bytes);
            let mut lease = self.pool.get().await?;
            lease
                .execute(
                    "INSERT INTO bundles (digest, bytes) VALUES ($1, $2) \
                     ON CONFLICT (digest) DO NOTHING",
                    &[&digest, &bytes],
                )
                .await
                .map_err(|e| self.error(e.to_string()))?;
            Ok(digest)
        }
        .boxed()
    }

    fn get<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        async move {
            digest_hex(digest)?;
            let mut lease = self.pool.get().await?;
            let rows = lease
                .query("SELECT bytes FROM bundles WHERE digest = $1", &[&digest])
                .await
                .map_err(|e| self.error(e.to_string()))?;
            let Some(row) = rows.first() else {
                return Err(self.error(format!("no bundle {digest} is stored")));
            };
            let bytes: Vec<u8> = row
                .try_get(0)
                .map_err(|e| self.error(format!("bundle {digest}: {e}")))?;
            let holder = format!("the bundles row of {}", self.pool.location().shown());
            verify_digest(digest, &bytes, &holder)?;
            Ok(bytes)
        }
        .boxed()
    }
}
