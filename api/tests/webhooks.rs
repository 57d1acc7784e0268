//! Webhooks-as-code over real HTTP: the real server on loopback, a real
//! HTTP receiver on loopback (private networks allowed in the test
//! config), tenant secrets, YAML and ZIP declarations, deliveries checked
//! against a Standard Webhooks signature computed independently here, and
//! hostile input on every surface (never a 500).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Server, expect_problem, json_of, zip_of};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 32 random-looking bytes in the `whsec_` form.
const SIGNING_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA=";
const WAIT: Duration = Duration::from_secs(20);

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A loopback HTTP/1.1 receiver answering 200 to everything.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap(),
            log: Arc::default(),
        };
        let log = r.log.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, log.clone()));
            }
        });
        r
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let start = Instant::now();
        while self.received().len() < n {
            assert!(start.elapsed() < WAIT, "timed out waiting for {n} requests");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

async fn serve(mut sock: tokio::net::TcpStream, log: Arc<Mutex<Vec<Received>>>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        log.lock().unwrap().push(Received { headers, body });
        let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
        if sock.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// HMAC-SHA256 written out from RFC 2104 over plain SHA-256: independent
/// of the `hmac` crate the engine signs with.
fn rfc2104_hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Checks the Standard Webhooks headers of one request.
fn assert_signed(r: &Received) {
    let key = STANDARD
        .decode(SIGNING_KEY.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    assert!(id.starts_with("msg_"), "webhook-id {id}");
    let ts_n: i64 = ts.parse().expect("numeric webhook-timestamp");
    assert!((chrono::Utc::now().timestamp() - ts_n).abs() < 300);
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(&r.body);
    let want = format!("v1,{}", STANDARD.encode(rfc2104_hmac_sha256(&key, &msg)));
    let got: Vec<&str> = r.header("webhook-signature").split(' ').collect();
    assert!(
        got.contains(&want.as_str()),
        "signature {got:?}, want {want}"
    );
    assert_eq!(r.header("content-type"), "application/json");
}

fn declaration(extra: &str) -> String {
    format!(
        "api_version: v1\non: [\"build.*\"]\ndelivery:\n  url: \"${{SECRET:HOOK_URL}}\"\n  signing: {{alg: \"HMAC-SHA256\", secret: \"${{SECRET:SIGNING_KEY}}\"}}\n{extra}"
    )
}

const TRANSFORM: &str = "export function transform(event) {\n  if (event.data.skip) { return null; }\n  return { text: `build ${event.data.build}`, id: event.id };\n}\n";

struct Ctx {
    s: Server,
    owner: String,
}

impl Ctx {
    async fn start() -> Ctx {
        let s = Server::start_with(|c| {
            c.engine.sandbox.network.private_networks = extensor_js::PrivateNetworks::Allow;
        })
        .await;
        let (_, owner) = s.tenant("acme").await;
        Ctx { s, owner }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut r = self.s.req(method, path, Some(&self.owner), Some("acme"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, v) = json_of(self.send(method, path, body).await).await;
        assert_ne!(status, 500, "{path}: {v}");
        (status, v)
    }

    async fn put(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        let r = self
            .s
            .req(Method::PUT, path, Some(&self.owner), Some("acme"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 500);
        r
    }

    async fn put_yaml(&self, name: &str, yaml: &str) -> (u16, Value) {
        json_of(
            self.put(
                &format!("/api/webhooks/{name}"),
                "application/yaml",
                yaml.as_bytes().to_vec(),
            )
            .await,
        )
        .await
    }

    async fn secret(&self, key: &str, value: &str) {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/api/secrets/{key}"),
                Some(json!({ "value": value })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn publish(&self, event_type: &str, data: Value) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/events",
                Some(json!({"event_type": event_type, "event_data": data})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Waits until webhook `name` has `n` deliveries in a final state.
    async fn settled(&self, name: &str, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let (status, page) = self
                .call(
                    Method::GET,
                    &format!("/api/webhooks/{name}/deliveries?limit=200"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            let all = page["deliveries"].as_array().unwrap().clone();
            if all.iter().filter(|d| d["status"] != "pending").count() >= n {
                return all;
            }
            assert!(
                start.elapsed() < WAIT,
                "{n} final deliveries of {name}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_declared_webhook_delivers_signed_events_and_is_managed_over_http() {
    let c = Ctx::start().await;
    let rx = Receiver::start().await;
    c.secret("HOOK_URL", &rx.url()).await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;

    let (status, applied) = c.put_yaml("builds", &declaration("")).await;
    assert_eq!(status, 201, "{applied}");
    assert_eq!(applied["change"], "created");
    assert_eq!(applied["revision"], 1);
    assert_eq!(applied["dry_run"], false);

    c.publish("build.completed", json!({"build": 7})).await;
    c.publish("deploy.started", json!({"build": 7})).await;
    let got = rx.wait_for(1).await;
    assert_signed(&got[0]);
    let sent = got[0].json();
    assert_eq!(sent["type"], "build.completed");
    assert_eq!(sent["data"]["build"], 7);

    let deliveries = c.settled("builds", 1).await;
    assert_eq!(deliveries.len(), 1, "deploy.started does not match");
    let d = &deliveries[0];
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["delivery_id"], got[0].header("webhook-id"));
    assert_eq!(d["origin"], "event");
    let attempt = &d["attempts"][0];
    assert_eq!(attempt["status"], 200);
    assert_eq!(attempt["outcome"], "status");
    assert_eq!(attempt["response_excerpt"], "{\"ok\":true}");
    assert!(attempt["latency_ms"].is_u64());

    let id = d["delivery_id"].as_str().unwrap().to_owned();
    let (status, one) = c
        .call(
            Method::GET,
            &format!("/api/webhooks/builds/deliveries/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["attempts"].as_array().unwrap().len(), 1);

    let (status, view) = c.call(Method::GET, "/api/webhooks/builds", None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "active");
    assert_eq!(view["revision"], 1);
    assert_eq!(view["on"], json!(["build.*"]));
    assert!(
        view["yaml"]
            .as_str()
            .unwrap()
            .contains("${SECRET:HOOK_URL}")
    );
    assert_eq!(view["stats"]["pending"], 0);

    redeliver_replay_and_test(&c, &rx, &id).await;
    update_disable_enable_delete(&c, &rx).await;
    c.s.stop().await;
}

async fn redeliver_replay_and_test(c: &Ctx, rx: &Receiver, id: &str) {
    let (status, again) = c
        .call(
            Method::POST,
            &format!("/api/webhooks/builds/deliveries/{id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{again}");
    let new_id = again["delivery_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].header("webhook-id"), new_id);
    assert_signed(&got[1]);
    assert_eq!(got[1].json()["id"], got[0].json()["id"], "the same event");

    let (status, test) = c
        .call(Method::POST, "/api/webhooks/builds/test", None)
        .await;
    assert_eq!(status, 202, "{test}");
    let got = rx.wait_for(3).await;
    assert_eq!(got[2].header("webhook-id"), test["delivery_id"]);
    assert_eq!(got[2].json()["type"], "webhook.test");
    let test_id = test["delivery_id"].as_str().unwrap();
    let r = c
        .send(
            Method::POST,
            &format!("/api/webhooks/builds/deliveries/{test_id}/redeliver"),
            None,
        )
        .await;
    expect_problem(r, 409, "not_redeliverable").await;

    replay(c, rx, id).await;
}

async fn replay(c: &Ctx, rx: &Receiver, id: &str) {
    let before = chrono::Utc::now() - chrono::Duration::minutes(10);
    let to = chrono::Utc::now() + chrono::Duration::minutes(1);
    let (status, replay) = c
        .call(
            Method::POST,
            "/api/webhooks/builds/replay",
            Some(json!({"from": before, "to": to})),
        )
        .await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["deliveries"], 1, "one matching event in the range");
    rx.wait_for(4).await;
    let all = c.settled("builds", 4).await;
    let origins: Vec<&str> = all.iter().map(|d| d["origin"].as_str().unwrap()).collect();
    assert_eq!(
        origins,
        ["replay", "test", "redeliver", "event"],
        "newest first"
    );
    assert_eq!(all[2]["redelivery_of"], id);

    filters_and_paging(c, to).await;
}

async fn filters_and_paging(c: &Ctx, to: chrono::DateTime<chrono::Utc>) {
    // Filters and paging.
    let page = |q: &str| format!("/api/webhooks/builds/deliveries?{q}");
    let count = |v: &Value| v["deliveries"].as_array().unwrap().len();
    let (_, v) = c
        .call(Method::GET, &page("event_type=webhook.test"), None)
        .await;
    assert_eq!(count(&v), 1);
    let (_, v) = c
        .call(
            Method::GET,
            &page("status=delivered&event_type=build.completed"),
            None,
        )
        .await;
    assert_eq!(count(&v), 3);
    let (_, v) = c.call(Method::GET, &page("status=failed"), None).await;
    assert_eq!(count(&v), 0);
    let (_, v) = c
        .call(
            Method::GET,
            &page(&format!("since={}", enc(&to.to_rfc3339()))),
            None,
        )
        .await;
    assert_eq!(count(&v), 0);
    let (_, v) = c.call(Method::GET, &page("limit=2"), None).await;
    assert_eq!(count(&v), 2);
    let until = v["next_until"].as_str().expect("a next page").to_owned();
    let (_, v) = c
        .call(
            Method::GET,
            &page(&format!("limit=2&until={}", enc(&until))),
            None,
        )
        .await;
    let origins: Vec<&str> = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins, ["redeliver", "event"]);
}

fn enc(t: &str) -> String {
    t.replace('+', "%2B").replace(':', "%3A")
}

async fn update_disable_enable_delete(c: &Ctx, rx: &Receiver) {
    let changed = declaration("description: \"second revision\"\n");
    let (status, v) = c.put_yaml("builds", &changed).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["change"].as_str(), v["revision"].as_u64()),
        (Some("updated"), Some(2))
    );
    let (status, v) = c.put_yaml("builds", &changed).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["change"].as_str(), v["revision"].as_u64()),
        (Some("unchanged"), Some(2))
    );

    disable_then_enable(c, rx).await;
}

async fn disable_then_enable(c: &Ctx, rx: &Receiver) {
    // A second webhook on the same events shows when the follower has
    // passed an event: both are routed from the same batch.
    let witness = Receiver::start().await;
    c.secret("WITNESS_URL", &witness.url()).await;
    let witness_yaml =
        "api_version: v1\non: [\"build.*\"]\ndelivery:\n  url: \"${SECRET:WITNESS_URL}\"\n";
    let (status, v) = c.put_yaml("witness", witness_yaml).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = c
        .call(
            Method::POST,
            "/api/webhooks/builds/disable?reason=maintenance",
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["disabled_reason"].as_str()),
        (Some("disabled"), Some("maintenance"))
    );
    let before = rx.received().len();
    c.publish("build.completed", json!({"build": 8})).await;
    witness.wait_for(1).await;
    let (status, v) = c
        .call(Method::POST, "/api/webhooks/builds/enable", None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "active");
    assert!(v["disabled_reason"].is_null());
    c.publish("build.completed", json!({"build": 9})).await;
    // Events reach the webhook in order: once build 9 arrived, build 8
    // (published while disabled) was passed over.
    let got = rx.wait_for(before + 1).await;
    let builds: Vec<Value> = got[before..]
        .iter()
        .map(|r| r.json()["data"]["build"].clone())
        .collect();
    assert_eq!(builds, [json!(9)]);

    list_isolate_and_delete(c).await;
}

async fn list_isolate_and_delete(c: &Ctx) {
    let changed = declaration("description: \"second revision\"\n");
    let (status, list) = c.call(Method::GET, "/api/webhooks", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["builds", "witness"]);
    assert_eq!(list["webhooks"][0]["description"], "second revision");

    let (_, globex_owner) = c.s.tenant("globex").await;
    let other =
        c.s.req(
            Method::GET,
            "/api/webhooks/builds",
            Some(&globex_owner),
            Some("globex"),
        )
        .send()
        .await
        .unwrap();
    expect_problem(other, 404, "webhook_not_found").await;

    let r = c.send(Method::DELETE, "/api/webhooks/builds", None).await;
    assert_eq!(r.status(), 204);
    let r = c.send(Method::GET, "/api/webhooks/builds", None).await;
    expect_problem(r, 404, "webhook_not_found").await;
    let r = c.send(Method::DELETE, "/api/webhooks/builds", None).await;
    expect_problem(r, 404, "webhook_not_found").await;
    let (status, v) = c.put_yaml("builds", &changed).await;
    assert_eq!((status, v["revision"].as_u64()), (201, Some(3)), "{v}");
}

#[tokio::test]
async fn a_zip_with_a_transform_is_applied_and_dry_runs_record_nothing() {
    let c = Ctx::start().await;
    let rx = Receiver::start().await;
    c.secret("HOOK_URL", &rx.url()).await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    let yaml = declaration(
        "transform: {language: \"javascript\", entry: \"transforms/build.js#transform\"}\n",
    );
    let zip = zip_of(&[
        ("webhook.yaml", yaml.as_bytes()),
        ("transforms/build.js", TRANSFORM.as_bytes()),
    ]);

    let r = c
        .put(
            "/api/webhooks/zipped?dry_run=true",
            "application/zip",
            zip.clone(),
        )
        .await;
    let (status, v) = json_of(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["change"].as_str(),
            v["dry_run"].as_bool(),
            v["revision"].as_u64()
        ),
        (Some("created"), Some(true), Some(1))
    );
    let r = c.send(Method::GET, "/api/webhooks/zipped", None).await;
    expect_problem(r, 404, "webhook_not_found").await;

    let (status, v) = json_of(c.put("/api/webhooks/zipped", "application/zip", zip).await).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["webhook"]["files"], json!(["transforms/build.js"]));
    let (_, view) = c.call(Method::GET, "/api/webhooks/zipped", None).await;
    assert_eq!(view["sources"]["transforms/build.js"], TRANSFORM);

    // A dry run of a change reports the next revision and records nothing.
    let (status, v) = c.put_yaml("zipped?dry_run=true", &declaration("")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["change"].as_str(), v["revision"].as_u64()),
        (Some("updated"), Some(2))
    );
    let (_, view) = c.call(Method::GET, "/api/webhooks/zipped", None).await;
    assert_eq!(view["revision"], 1);

    c.publish("build.completed", json!({"build": 41, "skip": true}))
        .await;
    c.publish("build.completed", json!({"build": 42})).await;
    let got = rx.wait_for(1).await;
    assert_signed(&got[0]);
    assert_eq!(got[0].json()["text"], "build 42");
    let all = c.settled("zipped", 2).await;
    let statuses: Vec<&str> = all.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["delivered", "skipped"]);
    assert_eq!(rx.received().len(), 1, "the skipped event is not sent");
    c.s.stop().await;
}

/// The declaration as JSON: the YAML and its code files as strings.
async fn put_json(c: &Ctx, path: &str, yaml: &str, if_match: Option<&str>) -> Response {
    let body = json!({"yaml": yaml, "files": {"transforms/build.js": TRANSFORM}});
    let mut r = c.s.req(Method::PUT, path, Some(&c.owner), None).json(&body);
    if let Some(rev) = if_match {
        r = r.header("If-Match", rev);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn a_declaration_sent_as_json_applies_and_if_match_guards_changes() {
    let c = Ctx::start().await;
    c.secret("HOOK_URL", "https://hooks.example.test/a").await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    let yaml = |d: &str| {
        declaration(&format!(
            "description: \"{d}\"\ntransform: {{language: \"javascript\", entry: \"transforms/build.js#transform\"}}\n"
        ))
    };
    // No X-Tenant-Slug: the owner token names its tenant.
    let (status, v) = json_of(put_json(&c, "/api/webhooks/as-json", &yaml("v1"), None).await).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["webhook"]["files"], json!(["transforms/build.js"]));
    let (_, view) = c.call(Method::GET, "/api/webhooks/as-json", None).await;
    assert_eq!(view["sources"]["transforms/build.js"], TRANSFORM);
    assert_eq!(view["revision"], 1);
    // The revision read is the one that may be changed; quotes optional.
    let (status, v) =
        json_of(put_json(&c, "/api/webhooks/as-json", &yaml("v2"), Some("\"1\"")).await).await;
    assert_eq!((status, v["revision"].as_u64()), (200, Some(2)), "{v}");
    let stale = put_json(&c, "/api/webhooks/as-json", &yaml("v3"), Some("1")).await;
    let p = expect_problem(stale, 412, "precondition_failed").await;
    assert!(p["detail"].as_str().unwrap().contains("revision 2"), "{p}");
    let (_, view) = c.call(Method::GET, "/api/webhooks/as-json", None).await;
    assert_eq!(
        view["description"], "v2",
        "the refused change left no trace"
    );
    let absent = put_json(&c, "/api/webhooks/never-made", &yaml("x"), Some("1")).await;
    expect_problem(absent, 412, "precondition_failed").await;
    for bad in ["W/\"1\"", "one", "\"1", "1234567890"] {
        let r = put_json(&c, "/api/webhooks/as-json", &yaml("v4"), Some(bad)).await;
        expect_problem(r, 422, "validation_failed").await;
    }
    c.s.stop().await;
}

/// Eight writers read revision 1 and change the webhook at once, each with
/// `If-Match: 1`: exactly one wins, every other gets 412, and the webhook
/// ends at revision 2 holding the winner's change.
#[tokio::test]
async fn concurrent_edits_with_if_match_lose_nothing_silently() {
    let c = Ctx::start().await;
    c.secret("HOOK_URL", "https://hooks.example.test/a").await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    let (status, v) = c
        .put_yaml("raced", &declaration("description: \"v1\"\n"))
        .await;
    assert_eq!(status, 201, "{v}");
    let writers = (0..8).map(|i| {
        let yaml = declaration(&format!("description: \"writer {i}\"\n"));
        let req =
            c.s.req(Method::PUT, "/api/webhooks/raced", Some(&c.owner), None)
                .header("content-type", "application/yaml")
                .header("If-Match", "1")
                .body(yaml);
        async move { (i, req.send().await.unwrap()) }
    });
    let mut won = Vec::new();
    for (i, r) in futures::future::join_all(writers).await {
        match r.status().as_u16() {
            200 => won.push(i),
            _ => {
                expect_problem(r, 412, "precondition_failed").await;
            }
        }
    }
    assert_eq!(won.len(), 1, "one writer wins: {won:?}");
    let (_, view) = c.call(Method::GET, "/api/webhooks/raced", None).await;
    assert_eq!(view["revision"], 2);
    assert_eq!(view["description"], format!("writer {}", won[0]));
    c.s.stop().await;
}

#[tokio::test]
async fn hostile_archives_are_refused_with_their_entry() {
    let c = Ctx::start().await;
    c.secret("HOOK_URL", "http://127.0.0.1:9/hook").await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    let yaml = declaration("");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not a zip",
            b"PK\x03\x04 definitely not".to_vec(),
            "zip:(zip)",
        ),
        (
            "traversal",
            zip_of(&[("webhook.yaml", yaml.as_bytes()), ("../evil.js", b"x")]),
            "zip:../evil.js",
        ),
        (
            "absolute",
            zip_of(&[("webhook.yaml", yaml.as_bytes()), ("/etc/evil.js", b"x")]),
            "zip:/etc/evil.js",
        ),
        (
            "bomb",
            zip_of(&[
                ("webhook.yaml", yaml.as_bytes()),
                ("pad.js", &vec![b' '; 120_000]),
            ]),
            "zip:pad.js",
        ),
        (
            "too big inflated",
            zip_of(&[
                ("webhook.yaml", yaml.as_bytes()),
                ("a.js", &noise(70_000)),
                ("b.js", &noise(70_000)),
            ]),
            "zip:b.js",
        ),
        (
            "no declaration",
            zip_of(&[("other.yaml", yaml.as_bytes())]),
            "zip:webhook.yaml",
        ),
        (
            "binary file",
            zip_of(&[
                ("webhook.yaml", yaml.as_bytes()),
                ("x.js", &[0xff, 0xfe, 0x00]),
            ]),
            "zip:x.js",
        ),
    ];
    for (what, body, path) in cases {
        let r = c
            .put("/api/webhooks/hostile", "application/zip", body)
            .await;
        let p = expect_problem(r, 422, "invalid_archive").await;
        let paths: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&path), "{what}: {p}");
    }
    oversized_zip_records_nothing(&c).await;
    c.s.stop().await;
}

async fn oversized_zip_records_nothing(c: &Ctx) {
    let r = c
        .put(
            "/api/webhooks/hostile",
            "application/zip",
            vec![0; 1024 * 1024 + 1],
        )
        .await;
    expect_problem(r, 413, "payload_too_large").await;
    // Well-formed archives whose code does not load are refused at apply,
    // naming the file.
    let yaml = declaration(
        "transform: {language: \"javascript\", entry: \"transforms/build.js#transform\"}\n",
    );
    for (what, js) in [
        (
            "syntax error",
            "export function transform(event) { return {",
        ),
        (
            "missing export",
            "export function other(event) { return event; }",
        ),
    ] {
        let zip = zip_of(&[
            ("webhook.yaml", yaml.as_bytes()),
            ("transforms/build.js", js.as_bytes()),
        ]);
        let r = c.put("/api/webhooks/hostile", "application/zip", zip).await;
        let p = expect_problem(r, 422, "invalid_webhook").await;
        assert!(p.to_string().contains("transforms/build.js"), "{what}: {p}");
    }
    let r = c.send(Method::GET, "/api/webhooks/hostile", None).await;
    expect_problem(r, 404, "webhook_not_found").await;
}

/// Text that does not compress (so only the inflated-size cap applies).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 2_463_534_242;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b'a' + (x % 26) as u8
        })
        .collect()
}

#[tokio::test]
async fn invalid_declarations_list_every_problem_with_line_and_column() {
    let c = Ctx::start().await;
    c.secret("HOOK_URL", "http://127.0.0.1:9/hook").await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;

    let (status, p) = c.put_yaml("bad", "api_version: v1\non: [unclosed\n").await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("invalid_webhook")),
        "{p}"
    );
    assert!(
        p["errors"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("webhook.yaml:"),
        "{p}"
    );

    let yaml = declaration("colour: blue\nretry: {max_attempts: 99}\n");
    let (status, p) = c.put_yaml("bad", &yaml).await;
    assert_eq!(status, 422, "{p}");
    let errors: Vec<(String, String)> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().into(),
                e["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        errors
            .iter()
            .any(|(path, m)| path.starts_with("webhook.yaml:6:") && m.contains("colour")),
        "{p}"
    );
    assert!(
        errors
            .iter()
            .any(|(path, m)| path.starts_with("webhook.yaml:7:") && m.contains("max_attempts")),
        "{p}"
    );

    python_and_secret_problems(&c).await;
    bad_bodies(&c).await;
    bad_names(&c).await;
    c.s.stop().await;
}

async fn python_and_secret_problems(c: &Ctx) {
    let python = declaration("transform: {language: \"python\", entry: \"t.py#transform\"}\n");
    let (status, p) = c.put_yaml("bad", &python).await;
    assert_eq!(status, 422, "{p}");
    assert!(p.to_string().contains("JavaScript or TypeScript"), "{p}");

    let missing = "api_version: v1\non: [\"a.b\"]\ndelivery:\n  url: \"${SECRET:NOT_SET}\"\n";
    let (status, p) = c.put_yaml("bad", missing).await;
    assert_eq!(status, 422, "{p}");
    assert!(p.to_string().contains("SECRET:NOT_SET"), "{p}");
    assert!(p.to_string().contains("PUT /api/secrets/NOT_SET"), "{p}");

    // Secrets that exist but cannot make a target are refused at apply too.
    c.secret("NOT_A_URL", "just words").await;
    c.secret("NOT_A_KEY", "hunter2").await;
    let unusable = "api_version: v1\non: [\"a.b\"]\ndelivery:\n  url: \"${SECRET:NOT_A_URL}\"\n";
    let (status, p) = c.put_yaml("bad", unusable).await;
    assert_eq!(status, 422, "{p}");
    assert!(
        p.to_string().contains("delivery.url does not resolve"),
        "{p}"
    );
    let unusable = declaration("").replace("SECRET:SIGNING_KEY", "SECRET:NOT_A_KEY");
    let (status, p) = c.put_yaml("bad", &unusable).await;
    assert_eq!(status, 422, "{p}");
    assert!(p.to_string().contains("whsec_"), "{p}");
    assert!(
        !p.to_string().contains("hunter2"),
        "never a secret's value: {p}"
    );

    let transform =
        declaration("transform: {language: \"javascript\", entry: \"t.js#transform\"}\n");
    let (status, p) = c.put_yaml("bad", &transform).await;
    assert_eq!(status, 422, "a YAML alone has no code files: {p}");
    assert!(p.to_string().contains("t.js"), "{p}");

    bad_bodies(c).await;
}

async fn bad_bodies(c: &Ctx) {
    let r = c
        .put(
            "/api/webhooks/bad",
            "application/yaml",
            vec![0xff, 0xfe, b'a'],
        )
        .await;
    expect_problem(r, 422, "invalid_webhook").await;
    // JSON must name the YAML (as a string) and nothing else.
    for body in [
        json!({}),
        json!({"yaml": 1}),
        json!({"yaml": "api_version: v1", "extra": 1}),
        json!({"yaml": "api_version: v1", "files": {"a.js": false}}),
    ] {
        let r = c
            .put(
                "/api/webhooks/bad",
                "application/json",
                body.to_string().into_bytes(),
            )
            .await;
        expect_problem(r, 400, "invalid_request").await;
    }
    let r = c
        .put(
            "/api/webhooks/bad",
            "text/plain",
            b"api_version: v1".to_vec(),
        )
        .await;
    expect_problem(r, 415, "unsupported_media_type").await;
    let r = c
        .put(
            "/api/webhooks/bad",
            "text/yaml; charset=utf-8",
            b"api_version: v1\n".to_vec(),
        )
        .await;
    expect_problem(r, 422, "invalid_webhook").await;
    let huge = format!("{}\n# {}\n", declaration(""), "x".repeat(200_000));
    let r = c
        .put("/api/webhooks/bad", "application/yaml", huge.into_bytes())
        .await;
    expect_problem(r, 413, "payload_too_large").await;

    bad_names(c).await;
}

async fn bad_names(c: &Ctx) {
    for name in [
        "Bad_Name",
        "UPPER",
        "a.b",
        "-x",
        "x--y",
        "1abc",
        &"a".repeat(65),
    ] {
        let (status, p) = c.put_yaml(name, &declaration("")).await;
        assert_eq!(
            (status, p["code"].as_str()),
            (422, Some("validation_failed")),
            "{name}: {p}"
        );
        let r = c
            .send(Method::GET, &format!("/api/webhooks/{name}"), None)
            .await;
        expect_problem(r, 404, "webhook_not_found").await;
    }
    let r = c.send(Method::GET, "/api/webhooks", None).await;
    let (_, list) = json_of(r).await;
    assert_eq!(list["webhooks"], json!([]), "nothing was recorded");
}

#[tokio::test]
async fn unknown_webhooks_and_deliveries_and_bad_ranges_are_clear_errors() {
    let c = Ctx::start().await;
    c.secret("HOOK_URL", "http://127.0.0.1:9/hook").await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    let (status, v) = c.put_yaml("known", &declaration("")).await;
    assert_eq!(status, 201, "{v}");
    let none = "msg_01HZZZZZZZZZZZZZZZZZZZZZZZ";
    for (method, path, code) in [
        (
            Method::GET,
            "/api/webhooks/nope/deliveries".to_owned(),
            "webhook_not_found",
        ),
        (
            Method::POST,
            "/api/webhooks/nope/test".into(),
            "webhook_not_found",
        ),
        (
            Method::POST,
            "/api/webhooks/nope/enable".into(),
            "webhook_not_found",
        ),
        (
            Method::POST,
            "/api/webhooks/nope/disable".into(),
            "webhook_not_found",
        ),
        (
            Method::GET,
            format!("/api/webhooks/known/deliveries/{none}"),
            "delivery_not_found",
        ),
        (
            Method::GET,
            "/api/webhooks/known/deliveries/not-an-id".into(),
            "delivery_not_found",
        ),
        (
            Method::GET,
            "/api/webhooks/known/deliveries/msg_%E2%9C%93".into(),
            "delivery_not_found",
        ),
        (
            Method::POST,
            format!("/api/webhooks/known/deliveries/{none}/redeliver"),
            "delivery_not_found",
        ),
        (
            Method::POST,
            "/api/webhooks/known/deliveries/bogus/redeliver".into(),
            "delivery_not_found",
        ),
    ] {
        let r = c.send(method, &path, None).await;
        expect_problem(r, 404, code).await;
    }
    bad_ranges(&c).await;
    bad_filters(&c).await;
    c.s.stop().await;
}

async fn bad_ranges(c: &Ctx) {
    let now = chrono::Utc::now();
    let ranges = [
        (now, now - chrono::Duration::hours(1), "$.from"),
        (now, now, "$.from"),
        (now - chrono::Duration::days(40), now, "$.to"),
    ];
    for (from, to, path) in ranges {
        let r = c
            .send(
                Method::POST,
                "/api/webhooks/known/replay",
                Some(json!({"from": from, "to": to})),
            )
            .await;
        let p = expect_problem(r, 422, "validation_failed").await;
        assert_eq!(p["errors"][0]["path"], path, "{p}");
    }
    let r = c
        .send(
            Method::POST,
            "/api/webhooks/known/replay",
            Some(json!({"from": "yesterday"})),
        )
        .await;
    expect_problem(r, 400, "invalid_request").await;
    let r = c
        .send(
            Method::POST,
            "/api/webhooks/known/replay",
            Some(json!({"from": now, "to": now, "extra": 1})),
        )
        .await;
    expect_problem(r, 400, "invalid_request").await;
    bad_filters(c).await;
}

async fn bad_filters(c: &Ctx) {
    for q in [
        "limit=0",
        "limit=201",
        "status=lost",
        "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        "since=soon",
    ] {
        let r = c
            .send(
                Method::GET,
                &format!("/api/webhooks/known/deliveries?{q}"),
                None,
            )
            .await;
        let code = r.status().as_u16();
        assert!(matches!(code, 400 | 422), "{q}: {code}");
    }
    let r = c
        .send(Method::POST, "/api/webhooks/known/disable?reason=", None)
        .await;
    expect_problem(r, 422, "validation_failed").await;
}

#[tokio::test]
async fn tenant_secrets_are_write_only_and_checked_at_apply() {
    let c = Ctx::start().await;
    let value = "https://hooks.example.test/very-secret-path";
    c.secret("HOOK_URL", value).await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    let r = c.send(Method::GET, "/api/secrets", None).await;
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("very-secret-path") && !text.contains("whsec_"),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["HOOK_URL", "SIGNING_KEY"]);
    assert!(list["secrets"][0]["updated_at"].is_string());

    let (status, v) = c.put_yaml("uses-secrets", &declaration("")).await;
    assert_eq!(status, 201, "{v}");
    let r = c.send(Method::DELETE, "/api/secrets/HOOK_URL", None).await;
    assert_eq!(r.status(), 204);
    let r = c.send(Method::DELETE, "/api/secrets/HOOK_URL", None).await;
    expect_problem(r, 404, "secret_not_found").await;
    let r = c
        .send(Method::DELETE, "/api/secrets/lower.case-ok", None)
        .await;
    expect_problem(r, 404, "secret_not_found").await;
    // A key no secret can have breaks the path's declared pattern.
    let r = c.send(Method::DELETE, "/api/secrets/bad%20key", None).await;
    expect_problem(r, 422, "validation_failed").await;
    let (status, p) = c
        .put_yaml("uses-secrets", &declaration("description: \"v2\"\n"))
        .await;
    assert_eq!(status, 422, "a removed secret fails the next apply: {p}");
    assert!(p.to_string().contains("SECRET:HOOK_URL"), "{p}");

    for (key, body) in [
        ("has%20space", json!({"value": "v"})),
        ("semi;colon", json!({"value": "v"})),
        ("%C3%A9t%C3%A9", json!({"value": "v"})),
        ("EMPTY", json!({"value": ""})),
        ("BIG", json!({"value": "x".repeat(40 * 1024)})),
    ] {
        let r = c
            .send(Method::PUT, &format!("/api/secrets/{key}"), Some(body))
            .await;
        expect_problem(r, 422, "validation_failed").await;
    }
    let r = c.send(Method::PUT, "/api/secrets/NO_BODY", None).await;
    assert!(matches!(r.status().as_u16(), 400 | 415), "{}", r.status());
    let r = c
        .send(Method::PUT, "/api/secrets/WRONG", Some(json!({"val": 1})))
        .await;
    expect_problem(r, 400, "invalid_request").await;
    c.s.stop().await;
}

#[tokio::test]
async fn the_webhooks_switch_turns_the_endpoints_off() {
    let s = Server::start_with(|c| c.features.webhooks = false).await;
    let (_, owner) = s.tenant("acme").await;
    for (method, path) in [
        (Method::GET, "/api/webhooks"),
        (Method::GET, "/api/secrets"),
        (Method::POST, "/api/webhooks/x/test"),
    ] {
        let r = s
            .req(method, path, Some(&owner), Some("acme"))
            .send()
            .await
            .unwrap();
        expect_problem(r, 404, "feature_disabled").await;
    }
    s.stop().await;
}

/// Every webhook endpoint is in the ops tree at `/tenants/<t>/webhooks/<name>`
/// and an operator restarts it by that path; the restarted endpoint claims
/// its stream again and delivers what was published meanwhile.
#[tokio::test]
async fn an_endpoint_is_in_the_ops_tree_and_restarts_by_its_path() {
    let c = Ctx::start().await;
    let rx = Receiver::start().await;
    c.secret("HOOK_URL", &rx.url()).await;
    c.secret("SIGNING_KEY", SIGNING_KEY).await;
    let (status, applied) = c.put_yaml("builds", &declaration("")).await;
    assert_eq!(status, 201, "{applied}");
    c.publish("build.completed", json!({"build": 8})).await;
    rx.wait_for(1).await;
    let admin = common::ADMIN;
    let tree = c.s.req(Method::GET, "/api/ops/tree", Some(admin), None);
    let (_, tree) = json_of(tree.send().await.unwrap()).await;
    let endpoint = tree["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"].as_str().unwrap().ends_with("/webhooks/builds"))
        .unwrap_or_else(|| panic!("the endpoint in the tree: {tree}"))
        .clone();
    assert_eq!(endpoint["status"], "running", "{endpoint}");
    assert_eq!(endpoint["tenant_slug"], "acme", "{endpoint}");
    let encoded = endpoint["path"].as_str().unwrap().replace('/', "%2F");
    let r =
        c.s.req(
            Method::POST,
            &format!("/api/ops/actors/{encoded}/restart"),
            Some(admin),
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().await.unwrap());
    c.publish("build.completed", json!({"build": 9})).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["data"]["build"], 9);
    let missing = "%2Ftenants%2Ften_00000000000000000000000000%2Fwebhooks%2Fnope";
    let r =
        c.s.req(
            Method::POST,
            &format!("/api/ops/actors/{missing}/restart"),
            Some(admin),
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "{}", r.text().await.unwrap());
    c.s.stop().await;
}
