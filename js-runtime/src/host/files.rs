//! `ctx.files`: one directory per tenant and installation, with a quota.
//!
//! Paths from JS are plain relative names (`reports/2024.csv`): no `..`, no
//! absolute paths, no backslashes, and no symlinks anywhere on the way, so a
//! plugin cannot reach another installation's directory or the host.
//!
//! Bytes are bounded per call ([`FILE_READ_BYTES_MAX`],
//! [`FILE_WRITE_BYTES_MAX`]) and per installation (the quota). The quota is
//! checked and the write done under one lock per installation, so
//! concurrent writers (several isolates of one installation, or tasks) can
//! never together pass it. A write goes to a fresh temporary file under
//! `root/.tmp/` (a name made unique per process and write, and created with
//! `create_new`, so two writers never share one), then is renamed into
//! place; leftovers of a crash are outside every installation's directory,
//! so they are neither listed nor counted.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::error::JsError;
use crate::host::InstallationScope;

/// Per-installation bytes across all files.
pub const FILES_QUOTA_BYTES_DEFAULT: u64 = 50 * 1024 * 1024;
/// Per-installation file count: directory walks for the quota stay cheap.
pub const FILES_COUNT_MAX: usize = 10_000;
/// One path from JS.
pub const FILE_PATH_BYTES_MAX: usize = 512;
/// Bytes one `ctx.files.read` may return: the content lands in the
/// isolate's heap and, before that, in the host's memory.
pub const FILE_READ_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Bytes one `ctx.files.write` may store (the argument was already in the
/// host's memory once; this keeps one call from taking the whole quota's
/// worth of disk and memory at once).
pub const FILE_WRITE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Quota locks, striped by installation: writers of one installation share
/// a lock; the number of locks stays fixed however many installations exist.
const QUOTA_LOCK_STRIPES: usize = 64;
/// Temporary files live here under the root, outside every installation.
pub const TMP_DIR_NAME: &str = ".tmp";

/// Makes temp names unique within the process (the pid makes them unique
/// between processes sharing a root).
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The files root. `root/<tenant>/<installation>/…`.
#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
    quota_bytes: u64,
    locks: Arc<[Mutex<()>]>,
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore {
            root: root.into(),
            quota_bytes: FILES_QUOTA_BYTES_DEFAULT,
            locks: (0..QUOTA_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The quota lock of one installation's directory.
    fn lock_for(&self, dir: &Path) -> &Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(dir);
        &self.locks[(h % self.locks.len() as u64) as usize]
    }

    pub fn with_quota_bytes(mut self, quota_bytes: u64) -> FileStore {
        self.quota_bytes = quota_bytes;
        self
    }

    /// The installation's directory; ids are checked to be single plain
    /// path components so they cannot steer the path either.
    fn dir(&self, scope: &InstallationScope) -> Result<PathBuf, JsError> {
        for id in [&scope.tenant_id, &scope.installation_id] {
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(JsError::Internal(format!(
                    "installation scope id `{id}` is not a plain name"
                )));
            }
        }
        Ok(self
            .root
            .join(&scope.tenant_id)
            .join(&scope.installation_id))
    }

    /// Joins a plugin path onto the installation directory, refusing escapes
    /// and symlinks on every existing component.
    async fn resolve(&self, scope: &InstallationScope, rel: &str) -> Result<PathBuf, JsError> {
        let bad = |why: &str| JsError::InvalidArgument {
            op: "ctx.files",
            message: format!("path `{}` {why}", crate::logs::cut(rel, 100)),
        };
        if rel.is_empty()
            || rel.len() > FILE_PATH_BYTES_MAX
            || rel.contains('\\')
            || rel.contains('\0')
        {
            return Err(bad("is empty, too long or contains \\ or NUL"));
        }
        let p = Path::new(rel);
        if !p.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad("must be relative without `.` or `..` segments"));
        }
        let base = self.dir(scope)?;
        let mut cur = base.clone();
        for c in p.components() {
            cur.push(c);
            match tokio::fs::symlink_metadata(&cur).await {
                Ok(m) if m.file_type().is_symlink() => return Err(bad("goes through a symlink")),
                _ => {}
            }
        }
        Ok(cur)
    }

    pub async fn read(
        &self,
        scope: &InstallationScope,
        rel: &str,
    ) -> Result<Option<String>, JsError> {
        let path = self.resolve(scope, rel).await?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", e)),
        };
        // Read one byte past the cap: the size on disk may change meanwhile.
        let mut bytes = Vec::new();
        file.take(FILE_READ_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| io("read", e))?;
        if bytes.len() > FILE_READ_BYTES_MAX {
            return Err(too_big(
                "ctx.files.read",
                "FILE_READ_BYTES_MAX",
                FILE_READ_BYTES_MAX,
                rel,
            ));
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub async fn write(
        &self,
        scope: &InstallationScope,
        rel: &str,
        data: &[u8],
    ) -> Result<(), JsError> {
        if data.len() > FILE_WRITE_BYTES_MAX {
            return Err(too_big(
                "ctx.files.write",
                "FILE_WRITE_BYTES_MAX",
                FILE_WRITE_BYTES_MAX,
                rel,
            ));
        }
        let path = self.resolve(scope, rel).await?;
        let dir = self.dir(scope)?;
        // Check and write under one lock: two writers that both saw room
        // would otherwise both write and pass the quota together.
        let _quota = self.lock_for(&dir).lock().await;
        let (used, count) = self.usage(scope).await?;
        let existing = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let after = used - existing.min(used) + data.len() as u64;
        if after > self.quota_bytes {
            return Err(JsError::QuotaExceeded {
                message: format!(
                    "files would use {after} bytes; the quota is {}",
                    self.quota_bytes
                ),
            });
        }
        if existing == 0 && count >= FILES_COUNT_MAX {
            return Err(JsError::QuotaExceeded {
                message: format!("at most {FILES_COUNT_MAX} files"),
            });
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io("write", e))?;
        }
        // Write to a temp name and rename, so readers never see half a file.
        let tmp = self.temp_file(data).await?;
        let renamed = tokio::fs::rename(&tmp, &path).await;
        if renamed.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        renamed.map_err(|e| io("write", e))
    }

    /// Writes `data` to a new file under `root/.tmp/` and returns its path.
    /// The name is unique per process and call; `create_new` makes a
    /// collision (another process, a leftover) an error, never a shared file.
    async fn temp_file(&self, data: &[u8]) -> Result<PathBuf, JsError> {
        let dir = self.root.join(TMP_DIR_NAME);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io("write", e))?;
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{}-{seq}", std::process::id()));
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| io("write", e))?;
        let written = async {
            f.write_all(data).await?;
            f.flush().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io("write", e));
        }
        Ok(tmp)
    }

    pub async fn delete(&self, scope: &InstallationScope, rel: &str) -> Result<bool, JsError> {
        let path = self.resolve(scope, rel).await?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("delete", e)),
        }
    }

    /// Every file's relative path, sorted.
    pub async fn list(&self, scope: &InstallationScope) -> Result<Vec<String>, JsError> {
        let base = self.dir(scope)?;
        let mut out = Vec::new();
        walk(&base, &base, &mut |rel, _| out.push(rel)).await?;
        out.sort();
        Ok(out)
    }

    /// (bytes, files) used by the installation.
    pub async fn usage(&self, scope: &InstallationScope) -> Result<(u64, usize), JsError> {
        let base = self.dir(scope)?;
        let (mut bytes, mut count) = (0u64, 0usize);
        walk(&base, &base, &mut |_, len| {
            bytes += len;
            count += 1;
        })
        .await?;
        Ok((bytes, count))
    }
}

/// Visits regular files under `dir` (symlinks are neither followed nor listed).
async fn walk(
    base: &Path,
    dir: &Path,
    visit: &mut (dyn FnMut(String, u64) + Send),
) -> Result<(), JsError> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut rd = match tokio::fs::read_dir(&d).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("list", e)),
        };
        while let Some(entry) = rd.next_entry().await.map_err(|e| io("list", e))? {
            let meta = tokio::fs::symlink_metadata(entry.path())
                .await
                .map_err(|e| io("list", e))?;
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

fn too_big(op: &'static str, limit: &'static str, max: usize, rel: &str) -> JsError {
    JsError::LimitExceeded {
        op,
        limit,
        max: max as u64,
        what: format!("`{}` is over {max} bytes", crate::logs::cut(rel, 100)),
    }
}

fn io(op: &'static str, e: std::io::Error) -> JsError {
    JsError::Host {
        op: match op {
            "read" => "ctx.files.read",
            "write" => "ctx.files.write",
            "delete" => "ctx.files.delete",
            _ => "ctx.files.list",
        },
        message: e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> InstallationScope {
        InstallationScope {
            tenant_id: "ten_a".into(),
            installation_id: "ins_a".into(),
        }
    }

    /// 64 tasks each write a distinct 1 KiB file against a 10 KiB quota at
    /// once: exactly 10 fit, the rest are refused, and the quota holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_never_pass_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path()).with_quota_bytes(10 * 1024));
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .write(&scope(), &format!("f{i}.txt"), &[b'x'; 1024])
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(JsError::QuotaExceeded { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        let (bytes, files) = store.usage(&scope()).await.unwrap();
        assert_eq!((ok, files, bytes), (10, 10, 10 * 1024));
    }

    /// Writers of files whose names differ only in the extension used to
    /// share one temp name (`a.extensor-tmp`) and could swap contents.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn temp_names_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path()));
        for round in 0..20 {
            let names: [&'static str; 4] = ["a.txt", "a.json", "a.csv", "a"];
            let tasks: Vec<_> = names
                .into_iter()
                .map(|n| {
                    let store = store.clone();
                    let body = format!("{n}-{round}-").repeat(2_000);
                    tokio::spawn(async move {
                        store
                            .write(&scope(), n, body.as_bytes())
                            .await
                            .map(|()| (n, body))
                    })
                })
                .collect();
            for t in tasks {
                let (n, body) = t.await.unwrap().unwrap();
                assert_eq!(
                    store.read(&scope(), n).await.unwrap().as_deref(),
                    Some(body.as_str())
                );
            }
        }
        let listed = store.list(&scope()).await.unwrap();
        assert_eq!(listed, ["a", "a.csv", "a.json", "a.txt"]);
        let tmp = std::fs::read_dir(dir.path().join(TMP_DIR_NAME))
            .unwrap()
            .count();
        assert_eq!(tmp, 0, "no temp file is left behind");
    }

    #[tokio::test]
    async fn one_call_is_bounded_in_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path()).with_quota_bytes(64 * 1024 * 1024);
        let big = vec![b'y'; FILE_WRITE_BYTES_MAX + 1];
        let err = store.write(&scope(), "big.txt", &big).await.unwrap_err();
        assert!(
            matches!(
                &err,
                JsError::LimitExceeded {
                    limit: "FILE_WRITE_BYTES_MAX",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(store.usage(&scope()).await.unwrap(), (0, 0));
        // A file grown on disk past the read cap (by the operator, or an
        // older version) is refused rather than read whole.
        store.write(&scope(), "r.txt", b"small").await.unwrap();
        let path = dir.path().join("ten_a/ins_a/r.txt");
        std::fs::write(&path, vec![b'z'; FILE_READ_BYTES_MAX + 1]).unwrap();
        let err = store.read(&scope(), "r.txt").await.unwrap_err();
        assert!(
            matches!(
                &err,
                JsError::LimitExceeded {
                    limit: "FILE_READ_BYTES_MAX",
                    ..
                }
            ),
            "{err}"
        );
        std::fs::write(&path, vec![b'z'; FILE_READ_BYTES_MAX]).unwrap();
        assert_eq!(
            store.read(&scope(), "r.txt").await.unwrap().unwrap().len(),
            FILE_READ_BYTES_MAX
        );
    }
}
