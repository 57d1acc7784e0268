//! `ctx.files`: each installation's files, wherever they are kept.
//!
//! [`Files`] is the one front every backend sits behind: it checks the
//! installation's ids, the path from JS and the per-call byte limits, so
//! those checks are the same code whichever backend stores the bytes.
//! [`FileBackend`] is the boundary a backend implements: the data
//! directory ([`dir::DirFiles`], the embedded default) or the shared
//! PostgreSQL store (`extensor_store_postgres::files`), so that any node
//! can serve any installation. [`conformance`] is the suite every backend
//! passes.
//!
//! Paths from JS are plain relative names (`reports/2024.csv`): no `..`, no
//! absolute paths, no backslashes, no NUL. A valid path is stored under its
//! canonical form ([`FilePath`]: its segments joined by `/`, so `a//b` and
//! `a/./b` name `a/b` on every backend). A name is either a file or a
//! directory: writing `a/b` beside a file `a`, or using `a` while `a/b`
//! exists, is refused on every backend.
//!
//! **Architecture Invariant:** a backend checks the installation's byte
//! quota and file count and stores the write as one atomic step per
//! installation, so concurrent writers (several isolates, tasks or nodes)
//! can never together pass either limit.

pub mod conformance;
pub mod dir;

use std::path::{Component, Path};

use futures::future::BoxFuture;

use crate::error::{Error, truncate_for_error};

/// Per-installation bytes across all files.
pub const FILES_QUOTA_BYTES_DEFAULT: u64 = 50 * 1024 * 1024;
/// Per-installation file count: usage sums stay cheap.
pub const FILES_COUNT_MAX: usize = 10_000;
/// One path from JS.
pub const FILE_PATH_BYTES_MAX: usize = 512;
/// One segment of a path: the name length common filesystems allow
/// (`NAME_MAX`), so the data directory and the database accept the same
/// names.
pub const FILE_NAME_BYTES_MAX: usize = 255;
/// Bytes one `ctx.files.read` may return: the content lands in the
/// isolate's heap and, before that, in the host's memory.
pub const FILE_READ_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Bytes one `ctx.files.write` may store (the argument was already in the
/// host's memory once; this keeps one call from taking the whole quota's
/// worth of storage and memory at once).
pub const FILE_WRITE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Whose files: the ids come from Rust (the invocation), never from JS.
#[derive(Clone, Copy, Debug)]
pub struct FileOwner<'a> {
    pub tenant: &'a str,
    pub installation: &'a str,
}

impl FileOwner<'_> {
    /// Both ids are single plain names (`[A-Za-z0-9_-]+`), so they cannot
    /// steer a path or a key either.
    pub fn check(&self) -> Result<(), Error> {
        for id in [self.tenant, self.installation] {
            let plain = !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !plain {
                return Err(Error::InvalidId {
                    value: truncate_for_error(id),
                    reason: "an installation scope id must be a plain name".into(),
                });
            }
        }
        Ok(())
    }
}

/// A checked path in canonical form: plain segments joined by `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePath(String);

impl FilePath {
    /// Checks a path from JS; see the module docs for what is refused.
    pub fn parse(rel: &str) -> Result<FilePath, Error> {
        let bad = |reason: &str| Error::FilePath {
            path: truncate_for_error(rel),
            reason: reason.into(),
        };
        if rel.is_empty()
            || rel.len() > FILE_PATH_BYTES_MAX
            || rel.contains('\\')
            || rel.contains('\0')
        {
            return Err(bad("is empty, too long or contains \\ or NUL"));
        }
        let mut segments = Vec::new();
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(s) if s.len() > FILE_NAME_BYTES_MAX => {
                    return Err(bad("has a segment over 255 bytes"));
                }
                Component::Normal(s) => {
                    segments.push(s.to_str().ok_or_else(|| bad("is not UTF-8"))?)
                }
                _ => return Err(bad("must be relative without `.` or `..` segments")),
            }
        }
        Ok(FilePath(segments.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every proper prefix that would be a directory: `a`, `a/b` for `a/b/c`.
    pub fn parents(&self) -> Vec<&str> {
        self.0
            .match_indices('/')
            .map(|(i, _)| &self.0[..i])
            .collect()
    }

    /// The refusal for a name that is (or goes through) the other kind.
    pub fn kind_clash(&self, reason: &str) -> Error {
        Error::FilePath {
            path: truncate_for_error(&self.0),
            reason: reason.into(),
        }
    }
}

/// What one installation uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilesUsage {
    pub bytes: u64,
    pub files: usize,
}

/// Checks a write against the installation's limits; `replaced` is the size
/// of the file the write replaces (`None`: a new file). Backends call this
/// under their per-installation lock, with usage read under the same lock.
pub fn check_quota(
    usage: FilesUsage,
    replaced: Option<u64>,
    new_bytes: usize,
    quota_bytes: u64,
) -> Result<(), Error> {
    let after = usage.bytes - replaced.unwrap_or(0).min(usage.bytes) + new_bytes as u64;
    if after > quota_bytes {
        return Err(Error::FileQuota {
            detail: format!("files would use {after} bytes; the quota is {quota_bytes}"),
        });
    }
    if replaced.is_none() && usage.files >= FILES_COUNT_MAX {
        return Err(Error::FileQuota {
            detail: format!("at most {FILES_COUNT_MAX} files"),
        });
    }
    Ok(())
}

/// Where files are stored. Every call gets ids and a path already checked
/// by [`Files`]; a backend adds only what its storage needs.
pub trait FileBackend: Send + Sync + 'static {
    /// The file's bytes, at most `FILE_READ_BYTES_MAX + 1` of them (one
    /// more tells the front the file is over the cap); `None` if there is
    /// no such file.
    fn read<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>>;
    /// Stores `data` as the file, atomically with [`check_quota`] against
    /// the installation's usage (see the module's invariant).
    fn write<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
        data: &'a [u8],
        quota_bytes: u64,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Removes the file; whether there was one.
    fn delete<'a>(
        &'a self,
        owner: FileOwner<'a>,
        path: &'a FilePath,
    ) -> BoxFuture<'a, Result<bool, Error>>;
    /// Every file's path, sorted by bytes.
    fn list<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<Vec<String>, Error>>;
    fn usage<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<FilesUsage, Error>>;
    /// Removes every file of the installation (it was uninstalled).
    fn remove_all<'a>(&'a self, owner: FileOwner<'a>) -> BoxFuture<'a, Result<(), Error>>;
}

/// The checked front over a backend, with the per-installation quota.
/// Cheap to clone.
#[derive(Clone)]
pub struct Files {
    backend: std::sync::Arc<dyn FileBackend>,
    quota_bytes: u64,
}

impl Files {
    pub fn new(backend: std::sync::Arc<dyn FileBackend>) -> Files {
        Files {
            backend,
            quota_bytes: FILES_QUOTA_BYTES_DEFAULT,
        }
    }

    /// The files in a directory: `root/<tenant>/<installation>/…`.
    pub fn in_dir(root: impl Into<std::path::PathBuf>) -> Files {
        Files::new(std::sync::Arc::new(dir::DirFiles::new(root)))
    }

    pub fn with_quota_bytes(mut self, quota_bytes: u64) -> Files {
        self.quota_bytes = quota_bytes;
        self
    }

    pub fn backend(&self) -> &std::sync::Arc<dyn FileBackend> {
        &self.backend
    }

    /// The file's bytes, or `None`; a file over [`FILE_READ_BYTES_MAX`] is
    /// refused rather than read whole.
    pub async fn read(&self, owner: FileOwner<'_>, rel: &str) -> Result<Option<Vec<u8>>, Error> {
        owner.check()?;
        let path = FilePath::parse(rel)?;
        let bytes = self.backend.read(owner, &path).await?;
        if bytes
            .as_ref()
            .is_some_and(|b| b.len() > FILE_READ_BYTES_MAX)
        {
            return Err(too_big(
                "ctx.files.read",
                "FILE_READ_BYTES_MAX",
                FILE_READ_BYTES_MAX,
                rel,
            ));
        }
        Ok(bytes)
    }

    pub async fn write(&self, owner: FileOwner<'_>, rel: &str, data: &[u8]) -> Result<(), Error> {
        if data.len() > FILE_WRITE_BYTES_MAX {
            return Err(too_big(
                "ctx.files.write",
                "FILE_WRITE_BYTES_MAX",
                FILE_WRITE_BYTES_MAX,
                rel,
            ));
        }
        owner.check()?;
        let path = FilePath::parse(rel)?;
        self.backend
            .write(owner, &path, data, self.quota_bytes)
            .await
    }

    pub async fn delete(&self, owner: FileOwner<'_>, rel: &str) -> Result<bool, Error> {
        owner.check()?;
        let path = FilePath::parse(rel)?;
        self.backend.delete(owner, &path).await
    }

    /// Every file's path, sorted.
    pub async fn list(&self, owner: FileOwner<'_>) -> Result<Vec<String>, Error> {
        owner.check()?;
        self.backend.list(owner).await
    }

    pub async fn usage(&self, owner: FileOwner<'_>) -> Result<FilesUsage, Error> {
        owner.check()?;
        self.backend.usage(owner).await
    }

    pub async fn remove_all(&self, owner: FileOwner<'_>) -> Result<(), Error> {
        owner.check()?;
        self.backend.remove_all(owner).await
    }
}

fn too_big(op: &'static str, limit: &'static str, max: usize, rel: &str) -> Error {
    Error::FileTooBig {
        op,
        limit,
        max: max as u64,
        what: format!("`{}` is over {max} bytes", truncate_for_error(rel)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_canonical_or_refused() {
        for (rel, canonical) in [
            ("a", "a"),
            ("a/b.txt", "a/b.txt"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/b/", "a/b"),
        ] {
            assert_eq!(FilePath::parse(rel).unwrap().as_str(), canonical, "{rel}");
        }
        let long = "x".repeat(FILE_PATH_BYTES_MAX + 1);
        let long_name = "x".repeat(FILE_NAME_BYTES_MAX + 1);
        for rel in [
            "",
            "..",
            "../x",
            "a/../b",
            "/etc/passwd",
            "./a",
            "a\\b",
            "a\0b",
            ".",
            &long,
            &long_name,
        ] {
            let err = FilePath::parse(rel).unwrap_err();
            assert!(matches!(err, Error::FilePath { .. }), "{rel:?}: {err}");
        }
        assert_eq!(FilePath::parse("a/b/c").unwrap().parents(), ["a", "a/b"]);
    }
}
