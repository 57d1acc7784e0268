//! Secrets never reach readable text, tested from outside: `extensor serve`
//! (a real process, its log captured) is driven through every path that
//! uses a secret — a webhook whose URL, header and signing key are tenant
//! secrets, delivering to a host that refuses connections; a plugin secret
//! rendered into an email (real SMTP: aiosmtpd) and logged and returned by
//! a hook; a job that logs and returns a secret it read and one that throws
//! it — then every read endpoint of openapi.yaml, every byte of the data
//! directory and every line the server logged are searched for each secret
//! value. None may appear. (The email itself does carry the secret to its
//! recipient: that is the positive marker the test waits for.)

#[path = "../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "common/api.rs"]
mod api;
#[path = "../js-runtime/tests/common/python.rs"]
mod python;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const ADMIN: &str = "sweep-platform-admin-token-0123456789";
const URL_SECRET: &str = "url-secret-7f3a9c11";
const HEADER_SECRET: &str = "header-secret-b41d2e77";
/// `whsec_` + base64("signing-secret-0123456789abcdef").
const SIGNING_SECRET: &str = "whsec_c2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==";
const SIGNING_BODY: &str = "c2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==";
const PLUGIN_SECRET: &str = "plugin-secret-5e8d01aa";

const SECRETS: [&str; 5] = [
    URL_SECRET,
    HEADER_SECRET,
    SIGNING_SECRET,
    SIGNING_BODY,
    PLUGIN_SECRET,
];

const MANIFEST: &str = r#"{
  "slug": "leaky",
  "name": "Leaky",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["secrets.read", "send_email"],
  "events": ["user.created"],
  "jobs": [
    {"name": "leak", "schedule": "0 5 * * *", "timezone": "UTC"},
    {"name": "boom", "schedule": "0 6 * * *", "timezone": "UTC"}
  ]
}"#;

/// Every way plugin code can put a secret it read into recorded text.
const MAIN: &str = r#"import { hook, job } from "extensor:sdk";
hook("user.created", async (e, ctx) => {
  const k = await ctx.secrets.get("API_KEY");
  ctx.log("info", "hook read", k);
  const id = await ctx.email.send({ to: e.data.email, subject: "Key " + k, text: "Your key: " + k });
  return { id, k };
});
job("leak", "0 5 * * *", async (input, ctx) => {
  const k = await ctx.secrets.get("API_KEY");
  ctx.log("info", "the key is", k);
  console.log(k);
  return { k };
});
job("boom", "0 6 * * *", async (input, ctx) => {
  const k = await ctx.secrets.get("API_KEY");
  throw new Error("failed with " + k);
});
"#;

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

struct Served {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    copier: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `extensor serve` at debug level, stdout and stderr copied to `log`.
fn serve(data: &Path, log: &Path, smtp_port: u16) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("EXTENSOR_DATA_DIR", data)
        .env("EXTENSOR_ADMIN_TOKEN", ADMIN)
        .env("EXTENSOR_LOG", "debug")
        .env("EXTENSOR_ALLOW_PRIVATE_NETWORKS", "true")
        .env("EXTENSOR_SMTP_HOST", "127.0.0.1")
        .env("EXTENSOR_SMTP_PORT", smtp_port.to_string())
        .env("EXTENSOR_SMTP_FROM", "extensor@example.com")
        .env("EXTENSOR_SMTP_TLS", "none")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log.with_extension("stderr")).unwrap())
        .spawn()
        .expect("start extensor serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let mut file = std::fs::File::create(log).unwrap();
    use std::io::Write;
    file.write_all(line.as_bytes()).unwrap();
    let copier = std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut file);
    });
    Served {
        child,
        url: format!("http://{addr}"),
        log: log.to_owned(),
        copier: Some(copier),
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    owner: String,
}

impl Api {
    fn req(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if token == ADMIN {
            r
        } else {
            r.header("X-Tenant-Slug", "acme")
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.req(method.clone(), path, &self.owner);
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
    async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..400 {
            let v = self.call(reqwest::Method::GET, path, None).await;
            if done(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} never reached the expected state");
    }
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn set_up(api: &Api) -> (String, Vec<String>) {
    use reqwest::Method;
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/deliver/{URL_SECRET}?token={URL_SECRET}");
    for (key, value) in [
        ("HOOK_URL", url.as_str()),
        ("AUTH", &format!("Bearer {HEADER_SECRET}")),
        ("SIGNING_KEY", SIGNING_SECRET),
    ] {
        api.call(
            Method::PUT,
            &format!("/api/secrets/{key}"),
            Some(json!({ "value": value })),
        )
        .await;
    }
    let yaml = "api_version: v1\non: [\"order.*\"]\ndelivery:\n  url: \"${SECRET:HOOK_URL}\"\n  headers: {Authorization: \"${SECRET:AUTH}\"}\n  signing: {alg: \"HMAC-SHA256\", secret: \"${SECRET:SIGNING_KEY}\"}\n";
    let r = api
        .req(Method::PUT, "/api/webhooks/orders", &api.owner)
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let zip = zip_of(&[("manifest.json", MANIFEST), ("main.js", MAIN)]);
    let part = reqwest::multipart::Part::bytes(zip).file_name("leaky.zip");
    let r = api
        .req(Method::POST, "/api/plugins/upload", &api.owner)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let up: Value = r.json().await.unwrap();
    let id = up["plugin"]["id"].as_str().unwrap().to_owned();
    api.call(
        Method::POST,
        &format!("/api/plugins/{id}/secrets"),
        Some(json!({"key": "API_KEY", "value": PLUGIN_SECRET})),
    )
    .await;
    api.call(Method::POST, &format!("/api/plugins/{id}/enable"), None)
        .await;
    let mut runs = Vec::new();
    for job in ["leak", "boom"] {
        let run = api
            .call(
                Method::POST,
                &format!("/api/plugins/{id}/jobs/{job}/run-now"),
                None,
            )
            .await;
        runs.push(run["run_id"].as_str().unwrap_or_default().to_owned());
    }
    for (t, data) in [
        ("order.created", json!({"n": 1})),
        ("user.created", json!({"email": "ada@example.com"})),
    ] {
        api.call(
            Method::POST,
            "/api/events",
            Some(json!({"event_type": t, "event_data": data})),
        )
        .await;
    }
    (id, runs)
}

/// Every GET operation of the served OpenAPI document, its path
/// parameters filled with the ids this test made; a parameter it cannot
/// fill fails the test, so a new read endpoint is swept too.
async fn sweep_endpoints(api: &Api, plugin: &str, runs: &[String], delivery: &str) -> String {
    let doc: Value = api
        .http
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut seen = String::new();
    let mut swept = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if ops.get("get").is_none() {
            continue;
        }
        let mut concrete = vec![path.clone()];
        let fills: [(&str, Vec<String>); 6] = [
            ("{id}", vec![plugin.to_owned()]),
            ("{kind}", vec!["installation".into()]),
            ("{run_id}", runs.to_vec()),
            ("{name}", vec!["orders".into()]),
            ("{delivery_id}", vec![delivery.to_owned()]),
            ("{path}", vec![]),
        ];
        for (param, values) in fills {
            if path.contains(param) {
                concrete = concrete
                    .iter()
                    .flat_map(|p| values.iter().map(move |v| p.replace(param, v)))
                    .collect();
            }
        }
        assert!(
            concrete.iter().all(|p| !p.contains('{')),
            "sweep cannot fill {path}"
        );
        for p in concrete {
            for token in [api.owner.as_str(), ADMIN] {
                let r = api
                    .req(reqwest::Method::GET, &p, token)
                    .send()
                    .await
                    .unwrap();
                let body = body_of(r).await;
                seen.push_str(&body);
                swept += 1;
            }
        }
    }
    assert!(swept >= 30, "swept {swept} reads");
    seen
}

/// The body, or for a server-sent event stream (which never ends) what it
/// sent within `STREAM_READ_MS`: its first frames replay recent state.
async fn body_of(mut r: reqwest::Response) -> String {
    const STREAM_READ_MS: u64 = 1_000;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(STREAM_READ_MS);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
        out.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn all_bytes(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_bytes(&p, out);
        } else {
            let mut b = Vec::new();
            std::fs::File::open(&p)
                .unwrap()
                .read_to_end(&mut b)
                .unwrap();
            out.push((p.display().to_string(), b));
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_is_readable_anywhere() {
    let smtp = aiosmtpd::Smtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(&data, &dir.path().join("server.log"), smtp.port);
    let tenant = api::Api::create_tenant(&server.url, ADMIN).await;
    let api = Api {
        http: tenant.http,
        base: tenant.base,
        owner: tenant.token,
    };
    let (plugin, runs) = set_up(&api).await;
    // Positive markers: the email reached its recipient with the secret;
    // the webhook recorded a failed attempt; both runs ended; the hook ran.
    let mail = smtp.delivered(1).await;
    assert!(mail[0].contains(PLUGIN_SECRET), "the recipient gets it");
    let deliveries = api
        .until("/api/webhooks/orders/deliveries", |v| {
            v["deliveries"][0]["attempts"][0]["error"].is_string()
        })
        .await;
    let delivery = deliveries["deliveries"][0]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempt = api
        .until(
            &format!("/api/webhooks/orders/deliveries/{delivery}"),
            |v| v["attempts"][0]["error"].is_string(),
        )
        .await;
    let error = attempt["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("127.0.0.1"), "names the host: {error}");
    api.until(&format!("/api/plugins/{plugin}/runs"), |v| {
        v["runs"]
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["status"] != "running"))
    })
    .await;
    api.until("/api/events?type=email.", |v| {
        v["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["type"] == "email.sent"))
    })
    .await;
    api.until("/api/events?type=hook.", |v| {
        v["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["type"] == "hook.executed"))
    })
    .await;
    let read = sweep_endpoints(&api, &plugin, &runs, &delivery).await;
    for s in SECRETS {
        assert!(!read.contains(s), "`{s}` is readable over the API");
    }
    // Stop the server the way an operator does, so the log is complete.
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    server.child.wait().unwrap();
    if let Some(c) = server.copier.take() {
        c.join().unwrap();
    }
    let mut log = std::fs::read(&server.log).unwrap();
    log.extend(std::fs::read(server.log.with_extension("stderr")).unwrap());
    assert!(contains(&log, "listening"), "the log was captured");
    let mut files = Vec::new();
    all_bytes(&data, &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("events.sqlite3")));
    for s in SECRETS {
        assert!(!contains(&log, s), "`{s}` is in the server's log");
        for (path, bytes) in &files {
            assert!(!contains(bytes, s), "`{s}` is in {path}");
        }
    }
}
