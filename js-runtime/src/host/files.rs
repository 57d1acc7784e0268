//! `ctx.files`: one directory per tenant and installation, with a quota.
//!
//! Paths from JS are plain relative names (`reports/2024.csv`): no `..`, no
//! absolute paths, no backslashes, and no symlinks anywhere on the way, so a
//! plugin cannot reach another installation's directory or the host.

use std::path::{Component, Path, PathBuf};

use crate::error::JsError;
use crate::host::InstallationScope;

/// Per-installation bytes across all files.
pub const FILES_QUOTA_BYTES_DEFAULT: u64 = 50 * 1024 * 1024;
/// Per-installation file count: directory walks for the quota stay cheap.
pub const FILES_COUNT_MAX: usize = 10_000;
/// One path from JS.
pub const FILE_PATH_BYTES_MAX: usize = 512;

/// The files root. `root/<tenant>/<installation>/…`.
#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
    quota_bytes: u64,
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore {
            root: root.into(),
            quota_bytes: FILES_QUOTA_BYTES_DEFAULT,
        }
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
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", e)),
        }
    }

    pub async fn write(
        &self,
        scope: &InstallationScope,
        rel: &str,
        data: &[u8],
    ) -> Result<(), JsError> {
        let path = self.resolve(scope, rel).await?;
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
        let tmp = path.with_extension("extensor-tmp");
        tokio::fs::write(&tmp, data)
            .await
            .map_err(|e| io("write", e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io("write", e))
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
