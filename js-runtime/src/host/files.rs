//! `ctx.files`: the sandbox's side of `extensor_core::files`.
//!
//! The checks (ids, paths, per-call bytes) and the quota live in the core's
//! [`Files`] front, the same for every backend: the data directory
//! ([`FileStore::new`]) or a shared store ([`FileStore::on`], e.g. the
//! PostgreSQL one, so any node can serve any installation). This wrapper
//! only turns the core's errors into the sandbox's and bytes into the
//! string JS gets.

use std::path::PathBuf;
use std::sync::Arc;

pub use extensor_core::files::dir::TMP_DIR_NAME;
pub use extensor_core::files::{
    FILE_NAME_BYTES_MAX, FILE_PATH_BYTES_MAX, FILE_READ_BYTES_MAX, FILE_WRITE_BYTES_MAX,
    FILES_COUNT_MAX, FILES_QUOTA_BYTES_DEFAULT,
};
use extensor_core::files::{FileBackend, FileOwner, Files};

use crate::error::JsError;
use crate::host::InstallationScope;

/// Every installation's files, behind the checked front. Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    files: Files,
}

impl FileStore {
    /// The files in a directory: `root/<tenant>/<installation>/…`.
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore {
            files: Files::in_dir(root),
        }
    }

    /// The files in `backend` (a shared store).
    pub fn on(backend: Arc<dyn FileBackend>) -> FileStore {
        FileStore {
            files: Files::new(backend),
        }
    }

    pub fn with_quota_bytes(mut self, quota_bytes: u64) -> FileStore {
        self.files = self.files.with_quota_bytes(quota_bytes);
        self
    }

    /// The core front (the engine removes an uninstalled installation's
    /// files through it).
    pub fn files(&self) -> &Files {
        &self.files
    }

    pub async fn read(
        &self,
        scope: &InstallationScope,
        rel: &str,
    ) -> Result<Option<String>, JsError> {
        let bytes = self.files.read(owner(scope), rel).await.map_err(js)?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub async fn write(
        &self,
        scope: &InstallationScope,
        rel: &str,
        data: &[u8],
    ) -> Result<(), JsError> {
        self.files.write(owner(scope), rel, data).await.map_err(js)
    }

    pub async fn delete(&self, scope: &InstallationScope, rel: &str) -> Result<bool, JsError> {
        self.files.delete(owner(scope), rel).await.map_err(js)
    }

    /// Every file's relative path, sorted.
    pub async fn list(&self, scope: &InstallationScope) -> Result<Vec<String>, JsError> {
        self.files.list(owner(scope)).await.map_err(js)
    }

    /// (bytes, files) used by the installation.
    pub async fn usage(&self, scope: &InstallationScope) -> Result<(u64, usize), JsError> {
        let usage = self.files.usage(owner(scope)).await.map_err(js)?;
        Ok((usage.bytes, usage.files))
    }
}

fn owner(scope: &InstallationScope) -> FileOwner<'_> {
    FileOwner {
        tenant: &scope.tenant_id,
        installation: &scope.installation_id,
    }
}

/// The core's file errors as the sandbox reports them to JS.
fn js(e: extensor_core::Error) -> JsError {
    use extensor_core::Error;
    match e {
        Error::FilePath { path, reason } => JsError::InvalidArgument {
            op: "ctx.files",
            message: format!("path `{path}` {reason}"),
        },
        Error::FileQuota { detail } => JsError::QuotaExceeded { message: detail },
        Error::FileTooBig {
            op,
            limit,
            max,
            what,
        } => JsError::LimitExceeded {
            op,
            limit,
            max,
            what,
        },
        Error::FileStorage { op, detail } => JsError::Host {
            op,
            message: detail,
        },
        other => JsError::Internal(other.to_string()),
    }
}
