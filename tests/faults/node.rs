//! The system under test: one real `extensor serve` process over a data
//! directory that outlives it (so `kill -9` and a restart find the same
//! store), and the HTTP client the harness drives it with.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

/// The platform-admin token every harness server starts with.
pub const ADMIN: &str = "fault-harness-platform-admin-token-0123456789";
/// How long a start may take (first line printed, then `/healthz` 200); a
/// release build starts in well under a second, a loaded CI runner slower.
const START_WAIT_MS: u64 = 30_000;
const HEALTH_POLL_MS: u64 = 50;
/// Per-request deadline of the harness's client: a server that does not
/// answer in this long is a finding, not something to wait on forever.
const REQUEST_TIMEOUT_MS: u64 = 20_000;

/// A running (or killed) `extensor serve`.
pub struct Node {
    child: Option<Child>,
    pub url: String,
    data: PathBuf,
    logs: PathBuf,
    pub env: Vec<(String, String)>,
    /// Processes started so far (the first is 1); names the log files.
    pub starts: u32,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Node {
    /// Starts the server over `data` with `env`; its stderr goes to
    /// `logs/serve-<n>.log`.
    pub async fn start(data: &Path, logs: &Path, env: Vec<(String, String)>) -> Node {
        let mut node = Node {
            child: None,
            url: String::new(),
            data: data.to_owned(),
            logs: logs.to_owned(),
            env,
            starts: 0,
        };
        node.restart().await;
        node
    }

    /// Sends `signal` (a `kill -s` name such as `STOP` or `CONT`) to the
    /// running process: a frozen node is alive but runs nothing.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the node is running").id();
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -s {signal} {pid} failed");
    }

    /// SIGKILL: no graceful shutdown, nothing flushed but what is durable.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new process over the same data directory (after
    /// [`kill9`](Self::kill9)) and waits until it answers `/healthz`.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a live server");
        self.starts += 1;
        let name = self
            .data
            .file_name()
            .map_or("data".into(), |n| n.to_string_lossy());
        let log =
            std::fs::File::create(self.logs.join(format!("serve-{name}-{}.log", self.starts)))
                .expect("server log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_extensor"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("EXTENSOR_DATA_DIR", &self.data)
            .env("EXTENSOR_ADMIN_TOKEN", ADMIN)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start extensor serve");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let line = tokio::time::timeout(
            Duration::from_millis(START_WAIT_MS),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await;
        let line = match line {
            Ok(Ok(Ok(l))) => l,
            other => panic!("extensor serve printed no address: {other:?}"),
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        self.url = format!("http://{addr}");
        self.wait_healthy().await;
    }

    async fn wait_healthy(&self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_millis(START_WAIT_MS);
        while Instant::now() < deadline {
            let ok = http
                .get(format!("{}/healthz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(HEALTH_POLL_MS)).await;
        }
        panic!("{} never answered /healthz", self.url);
    }
}

/// The harness's HTTP client: a tenant token for tenant calls, the admin
/// token for ops calls. `base` follows the server across restarts.
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub slug: String,
}

/// A call that did not answer 2xx: the status (0 when no answer came) and
/// the body.
#[derive(Debug)]
pub struct CallError {
    pub status: u16,
    pub body: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl Api {
    pub fn new(base: &str, slug: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
                .build()
                .expect("http client"),
            base: base.to_owned(),
            token: String::new(),
            slug: slug.to_owned(),
        }
    }

    /// A request as the tenant (its token and slug).
    pub fn tenant(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("X-Tenant-Slug", &self.slug)
    }

    /// A request as the platform admin.
    pub fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
    }

    /// Sends `req`; the JSON body (`Null` when empty) of a 2xx answer.
    pub async fn send(req: reqwest::RequestBuilder) -> Result<Value, CallError> {
        let resp = req.send().await.map_err(|e| CallError {
            status: 0,
            body: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(CallError { status, body });
        }
        Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Result<Value, CallError> {
        Api::send(self.tenant(Method::GET, path)).await
    }
}

/// A tree path as one URL segment (`/` encoded), as the ops API takes it.
pub fn path_segment(path: &str) -> String {
    path.replace('%', "%25").replace('/', "%2F")
}
