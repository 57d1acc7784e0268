//! Local stand-ins for the platform services behind `ctx`, used by
//! `extensor plugin test`: secrets from a dotenv file, email and emitted
//! events recorded (never sent), read models in a local SQLite file.
//! Files (`FileStore`) and HTTP (`GuardedHttp`) are the real components.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use extensor_js::JsError;
use extensor_js::host::db::{EVENTS_READ_MODEL_DDL, query_read_only};
use extensor_js::host::{
    DbReader, EmailOutbox, EmitRequest, EventSink, InstallationScope, OutboundEmail, SecretStore,
};
use futures::future::BoxFuture;
use serde_json::Value;

/// A secrets file bigger than this is not a secrets file.
pub const SECRETS_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Events seeded into the local read model from one file.
pub const SEED_EVENTS_MAX: usize = 100_000;

/// Secrets read from a dotenv-style file (`KEY=VALUE`, `#` comments,
/// optional `export ` prefix and surrounding quotes).
#[derive(Default)]
pub struct LocalSecrets(pub HashMap<String, String>);

impl LocalSecrets {
    pub fn from_file(path: &Path) -> Result<LocalSecrets> {
        let len = std::fs::metadata(path)
            .with_context(|| format!("secrets file {}", path.display()))?
            .len();
        if len > SECRETS_FILE_BYTES_MAX {
            bail!(
                "secrets file {} is {len} bytes; the limit is {SECRETS_FILE_BYTES_MAX}",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("secrets file {} (must be UTF-8 text)", path.display()))?;
        parse_dotenv(&text)
            .map_err(|(line, why)| anyhow::anyhow!("{}:{line}: {why}", path.display()))
    }
}

/// Parses dotenv text; an error carries the 1-based line.
pub fn parse_dotenv(text: &str) -> Result<LocalSecrets, (usize, String)> {
    let mut out = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err((i + 1, "expected KEY=VALUE".into()));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        {
            return Err((
                i + 1,
                format!("`{key}` is not a secret name (letters, digits, _ . -)"),
            ));
        }
        let value = value.trim();
        let unquoted = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(a, b)| {
                value
                    .strip_prefix(*a)
                    .and_then(|v| v.strip_suffix(*b))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        let unescaped = if value.starts_with('"') {
            unquoted.replace("\\n", "\n")
        } else {
            unquoted.to_owned()
        };
        out.insert(key.to_owned(), unescaped);
    }
    Ok(LocalSecrets(out))
}

impl SecretStore for LocalSecrets {
    fn get<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>> {
        Box::pin(async move { Ok(self.0.get(key).cloned()) })
    }
}

/// `ctx.emit` recorded in order; ids are `evt_local_<n>`.
#[derive(Default)]
pub struct RecordedEvents(pub Mutex<Vec<EmitRequest>>);

impl EventSink for RecordedEvents {
    fn emit<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        event: EmitRequest,
    ) -> BoxFuture<'a, Result<String, JsError>> {
        Box::pin(async move {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            v.push(event);
            Ok(format!("evt_local_{}", v.len()))
        })
    }
}

/// `ctx.email.send` recorded, never delivered; ids are `msg_local_<n>`.
#[derive(Default)]
pub struct RecordedEmails(pub Mutex<Vec<OutboundEmail>>);

impl EmailOutbox for RecordedEmails {
    fn record<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        email: OutboundEmail,
    ) -> BoxFuture<'a, Result<String, JsError>> {
        Box::pin(async move {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            v.push(email);
            Ok(format!("msg_local_{}", v.len()))
        })
    }
}

/// The tenant read model in one local SQLite file, queried through the
/// platform's own read-only query runner (authorizer, caps and all).
pub struct LocalReadModel {
    pub path: PathBuf,
}

impl DbReader for LocalReadModel {
    fn query<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, JsError>> {
        Box::pin(async move {
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || query_read_only(&path, &sql, &params))
                .await
                .map_err(|e| JsError::Internal(format!("db query task: {e}")))?
        })
    }
}

/// Creates the read-model schema at `path` and inserts the events of an
/// NDJSON file (`{"type", "data", "time"?, "id"?}` per line), if given.
pub fn seed_read_model(path: &Path, events_file: Option<&Path>) -> Result<usize> {
    let conn = rusqlite::Connection::open(path)
        .with_context(|| format!("read model {}", path.display()))?;
    conn.execute_batch(EVENTS_READ_MODEL_DDL)
        .with_context(|| format!("read model {}", path.display()))?;
    let Some(file) = events_file else {
        return Ok(0);
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("events file {}", file.display()))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", file.display(), i + 1);
        if n == SEED_EVENTS_MAX {
            bail!("{}: more than {SEED_EVENTS_MAX} events", at());
        }
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let Some(kind) = v.get("type").and_then(Value::as_str) else {
            bail!("{}: each line needs a string `type`", at());
        };
        // Written the way the server's projection writes it.
        let time = match v.get("time") {
            None => chrono::Utc::now().to_rfc3339(),
            Some(Value::String(t)) => chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("{}: `time` is not RFC 3339", at()))?
                .with_timezone(&chrono::Utc)
                .to_rfc3339(),
            Some(_) => bail!("{}: `time` must be an RFC 3339 string", at()),
        };
        let id = match v.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => format!("evt_seed_{}", i + 1),
        };
        let data = v.get("data").cloned().unwrap_or(Value::Null).to_string();
        conn.execute(
            "INSERT INTO events(position, revision, id, type, time, data)
             VALUES ((SELECT COALESCE(MAX(position), 0) + 1 FROM events),
                     (SELECT COALESCE(MAX(revision), -1) + 1 FROM events), ?1, ?2, ?3, ?4)",
            rusqlite::params![id, kind, time, data],
        )
        .with_context(|| format!("{}: insert", at()))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_forms_and_errors() {
        let s = parse_dotenv(
            "# comment\nA=1\nexport B = \"two words\"\nC='x=y'\nD=\"l1\\nl2\"\n\nE=\n",
        )
        .unwrap();
        assert_eq!(s.0["A"], "1");
        assert_eq!(s.0["B"], "two words");
        assert_eq!(s.0["C"], "x=y");
        assert_eq!(s.0["D"], "l1\nl2");
        assert_eq!(s.0["E"], "");
        assert_eq!(parse_dotenv("A=1\nnonsense\n").err().unwrap().0, 2);
        assert_eq!(parse_dotenv("bad key=1").err().unwrap().0, 1);
    }
}
