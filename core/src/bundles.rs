//! The content-addressed store of uploaded plugin bundles (the ZIP bytes).
//!
//! Events never carry bundles, only their digest (`sha256:<hex>`); the bytes
//! live in `<data_dir>/bundles/sha256-<hex>.zip`. A bundle is written to a
//! temporary file, fsynced and renamed into place (and the directory fsynced)
//! *before* the install or upgrade event that names it is appended, so an
//! acknowledged event never points at a missing file. Reads verify the digest,
//! so a corrupted or substituted file is reported, never run.
//!
//! [`BundleBlobs`] is the boundary: [`BundleStore`] keeps bundles in the
//! data directory; a shared store (the PostgreSQL one) keeps them beside
//! the log, so that any node can load any installation's bundle.
//!
//! **Architecture Invariant:** a bundle file is immutable: its name is its
//! digest, and a file that exists is never rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::FutureExt;
use futures::future::BoxFuture;

use sha2::{Digest, Sha256};

use crate::error::Error;

/// The directory under the data directory.
pub const BUNDLES_DIR_NAME: &str = "bundles";
/// A stored bundle larger than this is refused (it was capped at upload).
pub const STORED_BUNDLE_BYTES_MAX: usize = 64 * 1024 * 1024;
const DIGEST_PREFIX: &str = "sha256:";
const HEX_CHARS: usize = 64;

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("{DIGEST_PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

/// Where bundles are kept. `put` is durable before it resolves (the event
/// naming the digest is appended after it); `get` verifies the bytes
/// against the digest, so altered bytes are reported, never run.
pub trait BundleBlobs: Send + Sync + 'static {
    /// Stores `bytes` (at most [`STORED_BUNDLE_BYTES_MAX`]) and returns
    /// their digest; storing bytes already there is a no-op.
    fn put(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, Error>>;
    /// The bytes of `digest`, verified against it.
    fn get<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Vec<u8>, Error>>;
}

/// The hex of a `sha256:<64 lowercase hex>` digest; anything else is
/// refused, so a digest from an event can never steer a path or a query.
pub fn digest_hex(digest: &str) -> Result<&str, Error> {
    digest
        .strip_prefix(DIGEST_PREFIX)
        .filter(|h| h.len() == HEX_CHARS && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter(|h| h.bytes().all(|b| !b.is_ascii_uppercase()))
        .ok_or_else(|| Error::BundleDigest {
            digest: crate::error::truncate_for_error(digest),
            detail: "not a `sha256:<64 lowercase hex>` digest".into(),
        })
}

/// Checks that `bytes` are what `digest` names; `holder` says where they
/// came from.
pub fn verify_digest(digest: &str, bytes: &[u8], holder: &str) -> Result<(), Error> {
    let actual = digest_of(bytes);
    if actual != digest {
        return Err(Error::BundleDigest {
            digest: digest.into(),
            detail: format!("{holder} holds {actual}: it was altered or corrupted"),
        });
    }
    Ok(())
}

/// The bundle blob store in the data directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BundleStore {
    dir: PathBuf,
}

impl BundleStore {
    /// The store under `<data_dir>/bundles`, created if missing.
    pub fn open(data_dir: &Path) -> Result<BundleStore, Error> {
        let dir = data_dir.join(BUNDLES_DIR_NAME);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(BundleStore { dir })
    }

    /// The file a digest lives in; refuses anything but `sha256:<64 hex>` so
    /// a digest from an event can never steer the path.
    pub fn path_of(&self, digest: &str) -> Result<PathBuf, Error> {
        let hex = digest
            .strip_prefix(DIGEST_PREFIX)
            .filter(|h| h.len() == HEX_CHARS && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|h| h.bytes().all(|b| !b.is_ascii_uppercase()))
            .ok_or_else(|| Error::BundleDigest {
                digest: crate::error::truncate_for_error(digest),
                detail: "not a `sha256:<64 lowercase hex>` digest".into(),
            })?;
        Ok(self.dir.join(format!("sha256-{hex}.zip")))
    }

    /// Stores `bytes` durably and returns their digest. Storing bytes that
    /// are already there is a no-op.
    pub async fn put(&self, bytes: Vec<u8>) -> Result<String, Error> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_blocking(&bytes))
            .await
            .map_err(|e| io(&self.dir, std::io::Error::other(e.to_string())))?
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<String, Error> {
        if bytes.len() > STORED_BUNDLE_BYTES_MAX {
            return Err(Error::BundleIo {
                path: self.dir.clone(),
                detail: format!(
                    "bundle is {} bytes; the limit is {STORED_BUNDLE_BYTES_MAX}",
                    bytes.len()
                ),
            });
        }
        let digest = digest_of(bytes);
        let path = self.path_of(&digest)?;
        if path.exists() {
            return Ok(digest);
        }
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{}", std::process::id(), ulid::Ulid::new()));
        let result = write_synced(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&path, e));
        }
        Ok(digest)
    }

    /// The bytes of `digest`, verified against it.
    pub async fn get(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = self.path_of(digest)?;
        let bytes = tokio::fs::read(&path).await.map_err(|e| io(&path, e))?;
        verify_digest(digest, &bytes, &format!("the file {}", path.display()))?;
        Ok(bytes)
    }

    /// Whether the bundle is stored.
    pub fn contains(&self, digest: &str) -> bool {
        self.path_of(digest).is_ok_and(|p| p.exists())
    }
}

impl BundleBlobs for BundleStore {
    fn put(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, Error>> {
        BundleStore::put(self, bytes).boxed()
    }

    fn get<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        BundleStore::get(self, digest).boxed()
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes the rename itself durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::BundleIo {
        path: path.into(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = BundleStore::open(dir.path()).unwrap();
        let d = store.put(b"zip bytes".to_vec()).await.unwrap();
        assert!(d.starts_with("sha256:") && d.len() == 7 + 64);
        assert_eq!(store.put(b"zip bytes".to_vec()).await.unwrap(), d);
        assert_eq!(store.get(&d).await.unwrap(), b"zip bytes");
        assert!(store.contains(&d));
        // No temp files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join(BUNDLES_DIR_NAME))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");

        // A file altered on disk is reported, not returned.
        std::fs::write(store.path_of(&d).unwrap(), b"evil").unwrap();
        let err = store.get(&d).await.unwrap_err().to_string();
        assert!(err.contains("altered or corrupted"), "{err}");
    }

    #[tokio::test]
    async fn hostile_digests_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BundleStore::open(dir.path()).unwrap();
        for bad in [
            "sha256:../../etc/passwd",
            "md5:abc",
            "sha256:ABCDEF",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}/", "a".repeat(63)),
        ] {
            assert!(store.path_of(bad).is_err(), "{bad} accepted");
            assert!(store.get(bad).await.is_err());
        }
        let missing = format!("sha256:{}", "a".repeat(64));
        assert!(store.get(&missing).await.is_err());
        assert!(!store.contains(&missing));
    }
}
