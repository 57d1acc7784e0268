//! The e2e harness: the real server (`extensor_api::serve`) on a random
//! loopback port over a temporary store, driven over HTTP with reqwest.
#![allow(dead_code)]

use std::time::Duration;

use extensor_api::ratelimit::RateLimits;
use extensor_api::{ServerConfig, serve};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ADMIN: &str = "test-platform-admin-token-0123456789";

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), extensor_api::ServeError>>>,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), tune).await
    }

    /// Starts the server over the store already in `dir` (a restart).
    pub async fn start_in(dir: tempfile::TempDir, tune: impl FnOnce(&mut ServerConfig)) -> Server {
        let mut config = ServerConfig::new(
            "127.0.0.1:0".into(),
            SqliteConfig::new(dir.path().join("data"), OpenMode::CreateIfMissing),
        );
        config.admin_token = Some(ADMIN.into());
        config.rate_limits = RateLimits::UNLIMITED;
        tune(&mut config);
        let (addr_tx, addr_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            move |l| {
                let _ = addr_tx.send(l.addr);
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let addr = tokio::time::timeout(Duration::from_secs(30), addr_rx)
            .await
            .expect("server listens within 30 s")
            .expect("server started");
        Server {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// A request with optional bearer token and tenant slug.
    pub fn req(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        slug: Option<&str>,
    ) -> RequestBuilder {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = slug {
            r = r.header("X-Tenant-Slug", s);
        }
        r
    }

    /// Creates a tenant as the platform admin; returns (tenant id, owner token).
    pub async fn tenant(&self, slug: &str) -> (String, String) {
        let resp = self
            .req(Method::POST, "/api/tenants", Some(ADMIN), None)
            .json(&json!({"slug": slug, "name": format!("Tenant {slug}")}))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, 201, "{body}");
        (
            body["tenant"]["id"].as_str().unwrap().to_owned(),
            body["owner_token"]["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Uploads the plugin bundle `zip` in `slug` with `token` and enables
    /// it; returns the plugin's id.
    pub async fn install_enabled(&self, zip: Vec<u8>, token: &str, slug: &str) -> String {
        let part = reqwest::multipart::Part::bytes(zip).file_name("plugin.zip");
        let r = self
            .req(Method::POST, "/api/plugins/upload", Some(token), Some(slug))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        let (status, up) = json_of(r).await;
        assert_eq!(status, 201, "{up}");
        let id = up["plugin"]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/plugins/{id}/enable");
        let r = self
            .req(Method::POST, &path, Some(token), Some(slug))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        id
    }

    /// Issues a token with `role` in `slug` using `owner`; returns (id, token).
    pub async fn token(&self, slug: &str, owner: &str, role: &str) -> (String, String) {
        let resp = self
            .req(Method::POST, "/api/tokens", Some(owner), Some(slug))
            .json(&json!({"name": format!("{role} token"), "role": role}))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Stops the server the way SIGTERM does and waits for a clean exit.
    /// Returns the temporary directory so the caller can inspect the store.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        self.dir
    }
}

/// Status and JSON body (Null when the body is not JSON).
pub async fn json_of(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts a problem+json answer with `status` and `code`; returns the body.
pub async fn expect_problem(resp: Response, status: u16, code: &str) -> Value {
    let got = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "wanted {status} {code}, got {got}: {text}");
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], code, "{text}");
    assert_eq!(body["status"], status, "{text}");
    body
}

/// A ZIP of `(name, bytes)` entries, deflated, in the given order.
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A directory's files as a ZIP, entries at the root in name order.
pub fn zip_dir(dir: &std::path::Path) -> Vec<u8> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let files: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read(p).unwrap())
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    zip_of(&refs)
}
