//! The embedded backend: one directory per tenant and installation,
//! `root/<tenant>/<installation>/…` (the server's root is
//! `<data_dir>/files`).
//!
//! No symlinks anywhere on the way: a component that is one is refused, so
//! a plugin cannot reach another installation's directory or the host. The
//! quota is checked and the write done under one lock per installation
//! (striped, shared by every handle in the process), so concurrent writers
//! never together pass it. A write goes to a fresh temporary file under
//! `root/.tmp/` (a name unique per process and write, created with
//! `create_new`, so two writers never share one), then is renamed into
//! place; leftovers of a crash are outside every installation's directory,
//! so they are neither listed nor counted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{FILE_READ_BYTES_MAX, FileBackend, FileOwner, FilePath, FilesUsage, check_quota};
use crate::error::Error;

/// Quota locks, striped by installation directory: writers of one
/// installation share a lock; the number stays fixed however many
/// installations exist. Process-wide, so two handles on one root agree.
const QUOTA_LOCK_STRIPES: usize = 64;
static QUOTA_LOCKS: [Mutex<()>; QUOTA_LOCK_STRIPES] =
    [const { Mutex::const_new(()) }; QUOTA_LOCK_STRIPES];
/// Temporary files live here under the root, outside every installation.
pub const TMP_DIR_NAME: &str = ".tmp";

/// Makes temp names unique within the process (the pid makes them unique
/// between processes sharing a root).
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The files root. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DirFiles {
    root: PathBuf,
}

impl DirFiles {
    pub fn new(root: impl Into<PathBuf>) -> DirFiles {
        DirFiles { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The installation's directory (the ids were checked to be plain).
    pub fn dir(&self, owner: FileOwner<'_>) -> PathBuf {
        self.root.join(owner.tenant).join(owner.installation)
    }

    fn lock_for(dir: &Path) -> &'static Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(dir);
        &QUOTA_LOCKS[(h % QUOTA_LOCK_STRIPES as u64) as usize]
    }

    /// The file's place on disk, refusing symlinks on every existing
    /// component, a file on the way and a directory at the end.
    async fn resolve(&self, owner: FileOwner<'_>, path: &FilePath) -> Result<PathBuf, Error> {
        let mut cur = self.dir(owner);
        let segments: Vec<&str> = path.as_str().split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            cur.push(segment);
            let Ok(meta) = tokio::fs::symlink_metadata(&cur).await else {
                continue;
            };
            let last = i + 1 == segments.len();
            if meta.file_type().is_symlink() {
                return Err(path.kind_clash("goes through a symlink"));
            }
            if !last && !meta.is_dir() {
                return Err(path.kind_clash("goes through a file"));
            }
            if last && meta.is_dir() {
                return Err(path.kind_clash("names a directory"));
            }
        }
        Ok(cur)
    }

    async fn read_file(
        &self,
        owner: FileOwner<'_>,
        path: &FilePath,
    ) -> Result<Option<Vec<u8>>, Error> {
        let place = self.resolve(owner, path).await?;
        let file = match tokio::fs::File::open(&place).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("ctx.files.read", e)),
        };
        // One byte past the cap: the size on disk may change meanwhile.
        let mut bytes = Vec::new();
        file.take(FILE_READ_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| io("ctx.files.read", e))?;
        Ok(Some(bytes))
    }

    async fn write_file(
        &self,
        owner: FileOwner<'_>,
        path: &FilePath,
        data: &[u8],
        quota_bytes: u64,
    ) -> Result<(), Error> {
        let dir = self.dir(owner);
        // Check and write under one lock: two writers that both saw room
        // would otherwise both write and pass the quota together.
        let _quota = Self::lock_for(&dir).lock().await;
        let place = self.resolve(owner, path).await?;
        let usage = self.usage_of(owner).await?;
        let replaced = tokio::fs::metadata(&place).await.ok().map(|m| m.len());
        check_quota(usage, replaced, data.len(), quota_bytes)?;
        if let Some(parent) = place.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io("ctx.files.write", e))?;
        }
        // Write to a temp name and rename, so readers never see half a file.
        let tmp = self.temp_file(data).await?;
        let renamed = tokio::fs::rename(&tmp, &place).await;
        if renamed.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        renamed.map_err(|e| io("ctx.files.write", e))
    }

    /// Writes `data` to a new file under `root/.tmp/` and returns its path.
    /// The name is unique per process and call; `create_new` makes a
    /// collision (another process, a leftover) an error, never a shared file.
    async fn temp_file(&self, data: &[u8]) -> Result<PathBuf, Error> {
        let dir = self.root.join(TMP_DIR_NAME);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io("ctx.files.write", e))?;
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{}-{seq}", std::process::id()));
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| io("ctx.files.write", e))?;
        let written = async {
            f.write_all(data).await?;
            f.flush().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io("ctx.files.write", e));
        }
        Ok(tmp)
    }

    async fn delete_file(&self, owner: FileOwner<'_>, path: &FilePath) -> Result<bool, Error> {
        let place = self.resolve(owner, path).await?;
        match tokio::fs::remove_file(&place).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("ctx.files.delete", e)),
        }
    }

    async fn list_of(&self, owner: FileOwner<'_>) -> Result<Vec<String>, Error> {
        let base = self.dir(owner);
        let mut out = Vec::new();
        walk(&base, &mut |rel, _| out.push(rel)).await?;
        out.sort();
        Ok(out)
    }

    async fn usage_of(&self, owner: FileOwner<'_>) -> Result<FilesUsage, Error> {
        let base = self.dir(owner);
        let mut usage = FilesUsage::default();
        walk(&base, &mut |_, len| {
            usage.bytes += len;
            usage.files += 1;
        })
        .await?;
        Ok(usage)
    }

    async fn remove_dir(&self, owner: FileOwner<'_>) -> Result<(), Error> {
        match tokio::fs::remove_dir_all(self.dir(owner)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("ctx.files.delete", e)),
        }
    }
}

impl FileBackend for DirFiles {
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
        self.remove_dir(owner).boxed()
    }
}

/// Visits regular files under `base` with their paths relative to it
/// (symlinks are neither followed nor listed).
async fn walk(base: &Path, visit: &mut (dyn FnMut(String, u64) + Send)) -> Result<(), Error> {
    let mut stack = vec![base.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut rd = match tokio::fs::read_dir(&d).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("ctx.files.list", e)),
        };
        while let Some(entry) = rd.next_entry().await.map_err(|e| io("ctx.files.list", e))? {
            let meta = tokio::fs::symlink_metadata(entry.path())
                .await
                .map_err(|e| io("ctx.files.list", e))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(base)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                visit(rel, meta.len());
            }
        }
    }
    Ok(())
}

fn io(op: &'static str, e: std::io::Error) -> Error {
    Error::FileStorage {
        op,
        detail: e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::files::Files;

    const OWNER: FileOwner<'static> = FileOwner {
        tenant: "ten_a",
        installation: "ins_a",
    };

    /// Writers of files whose names differ only in the extension used to
    /// share one temp name (`a.extensor-tmp`) and could swap contents.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn temp_names_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Files::in_dir(dir.path()));
        for round in 0..20 {
            let names: [&'static str; 4] = ["a.txt", "a.json", "a.csv", "a"];
            let tasks: Vec<_> = names
                .into_iter()
                .map(|n| {
                    let store = store.clone();
                    let body = format!("{n}-{round}-").repeat(2_000);
                    tokio::spawn(async move {
                        store
                            .write(OWNER, n, body.as_bytes())
                            .await
                            .map(|()| (n, body))
                    })
                })
                .collect();
            for t in tasks {
                let (n, body) = t.await.unwrap().unwrap();
                let read = store.read(OWNER, n).await.unwrap();
                assert_eq!(read.as_deref(), Some(body.as_bytes()));
            }
        }
        let listed = store.list(OWNER).await.unwrap();
        assert_eq!(listed, ["a", "a.csv", "a.json", "a.txt"]);
        let tmp = std::fs::read_dir(dir.path().join(TMP_DIR_NAME))
            .unwrap()
            .count();
        assert_eq!(tmp, 0, "no temp file is left behind");
    }

    /// A symlink planted in an installation's directory (by an operator, or
    /// a restored backup) is never followed, at the end or on the way.
    #[cfg(unix)]
    #[tokio::test]
    async fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host").unwrap();
        let store = Files::in_dir(dir.path());
        store.write(OWNER, "keep.txt", b"x").await.unwrap();
        let base = dir.path().join("ten_a/ins_a");
        std::os::unix::fs::symlink(outside.path(), base.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), base.join("s")).unwrap();
        for rel in ["out/secret", "s"] {
            let err = store.read(OWNER, rel).await.unwrap_err();
            assert!(err.to_string().contains("symlink"), "{rel}: {err}");
            let err = store.write(OWNER, rel, b"y").await.unwrap_err();
            assert!(err.to_string().contains("symlink"), "{rel}: {err}");
        }
        assert_eq!(store.list(OWNER).await.unwrap(), ["keep.txt"]);
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"host"
        );
    }
}
