//! A tenant's API client for end-to-end tests against a live
//! `extensor serve` (`served.rs`): the tenant's bearer token and slug,
//! JSON in and out, and polling for a positive marker. Included with
//! `#[path]` by the suites that call the API over loopback; a suite adds
//! its own calls in its own `impl Api` block.

#![allow(dead_code)] // each suite uses a part of it

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

/// The tenant every suite creates (`served::tenant`).
pub const TENANT_SLUG: &str = "acme";
/// How long [`Api::until`] waits for its marker: generous, because CI
/// shares 2 cores with other test binaries. Only a failing test waits it
/// out.
pub const UNTIL_WAIT: Duration = Duration::from_secs(60);
/// Pause between two polls of [`Api::until`].
const UNTIL_POLL: Duration = Duration::from_millis(20);

pub struct Api {
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`; a suite that restarts its server sets the
    /// new one here.
    pub base: String,
    pub token: String,
}

impl Api {
    /// Creates the tenant [`TENANT_SLUG`] on the server at `base` as the
    /// platform admin, and returns a client holding its owner token.
    pub async fn create_tenant(base: &str, admin_token: &str) -> Api {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{base}/api/tenants"))
            .bearer_auth(admin_token)
            .json(&json!({"slug": TENANT_SLUG, "name": "Acme"}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let created: Value = resp.json().await.unwrap();
        assert!(
            status < 300,
            "creating tenant {TENANT_SLUG}: {status} {created}"
        );
        let token = created["owner_token"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no owner token in {created}"))
            .to_owned();
        Api {
            http,
            base: base.to_owned(),
            token,
        }
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("X-Tenant-Slug", TENANT_SLUG)
    }

    /// `method path` with `body`; fails the test unless the answer is a
    /// success. An empty or non-JSON body reads as `null`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.req(method.clone(), path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status < 300, "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Polls `path` until `done` holds on its body (a positive marker).
    pub async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + UNTIL_WAIT;
        loop {
            let last = self.call(Method::GET, path, None).await;
            if done(&last) {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never reached the expected state: {}",
                last.to_string().chars().take(4_000).collect::<String>()
            );
            tokio::time::sleep(UNTIL_POLL).await;
        }
    }

    /// Uploads the plugin ZIP `zip` as `file_name`; fails the test unless
    /// it is accepted, and returns the plugin's id.
    pub async fn upload_zip(&self, file_name: &str, zip: Vec<u8>) -> String {
        let part = reqwest::multipart::Part::bytes(zip).file_name(file_name.to_owned());
        let resp = self
            .req(Method::POST, "/api/plugins/upload")
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let up: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status < 300, "uploading {file_name}: {status} {up}");
        up["plugin"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no plugin id in {up}"))
            .to_owned()
    }

    /// [`Api::upload_zip`], then enables the plugin; returns its id.
    pub async fn install_enabled(&self, file_name: &str, zip: Vec<u8>) -> String {
        let id = self.upload_zip(file_name, zip).await;
        self.call(Method::POST, &format!("/api/plugins/{id}/enable"), None)
            .await;
        id
    }
}
