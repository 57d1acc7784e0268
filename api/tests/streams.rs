//! The server-sent event streams over real HTTP: catch-up then live,
//! resumption with Last-Event-ID, tenant scoping, the per-owner cap,
//! heartbeats, plugin logs, the tree, and their end at shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN, Server, expect_problem, json_of, zip_of};
use extensor_api::streams::STREAMS_PER_OWNER_MAX;
use reqwest::{Method, Response};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// One parsed SSE block: `event:`, `id:`, `data:` (joined), or a comment.
#[derive(Debug, Default)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
    comment: bool,
}

/// Reads a text/event-stream response block by block.
struct Reader {
    resp: Response,
    buf: String,
}

impl Reader {
    fn new(resp: Response) -> Self {
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Reader {
            resp,
            buf: String::new(),
        }
    }

    /// The next block, or None when the stream ended.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(cut) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..cut + 2).collect();
                let mut sse = Sse::default();
                for line in block.lines() {
                    if line.starts_with(':') {
                        sse.comment = true;
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => sse.event = value.into(),
                        "id" => sse.id = Some(value.into()),
                        "data" => sse.data.push_str(value),
                        _ => {}
                    }
                }
                return Some(sse);
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("the stream sends within 20 s")
                .unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next message that is not a heartbeat.
    async fn message(&mut self) -> Option<(Sse, Value)> {
        loop {
            let sse = self.next().await?;
            if !sse.data.is_empty() {
                let v = serde_json::from_str(&sse.data).unwrap();
                return Some((sse, v));
            }
        }
    }
}

async fn publish(s: &Server, token: &str, slug: &str, ty: &str, n: u64) -> Value {
    let resp = s
        .req(Method::POST, "/api/events", Some(token), Some(slug))
        .json(&json!({"event_type": ty, "event_data": {"n": n}}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn open(s: &Server, path: &str, token: &str, slug: Option<&str>) -> Response {
    s.req(Method::GET, path, Some(token), slug)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn events_stream_catches_up_then_follows_live_and_resumes() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (_, other) = s.tenant("globex").await;
    let first = publish(&s, &owner, "acme", "order.created", 1).await;
    let mut r = Reader::new(
        open(
            &s,
            "/api/events/stream?after=0&type=order.",
            &owner,
            Some("acme"),
        )
        .await,
    );
    let (sse, ev) = r.message().await.unwrap();
    assert_eq!(sse.event, "event");
    assert_eq!(ev["id"], first["id"]);
    assert_eq!(
        sse.id.as_deref(),
        Some(first["position"].to_string().as_str())
    );
    // Live: another tenant's event and a non-matching type never show.
    publish(&s, &other, "globex", "order.created", 2).await;
    publish(&s, &owner, "acme", "user.created", 3).await;
    let live = publish(&s, &owner, "acme", "order.paid", 4).await;
    let (sse, ev) = r.message().await.unwrap();
    assert_eq!(ev["id"], live["id"], "{ev}");
    assert_eq!(ev["type"], "order.paid");
    // Reconnecting with Last-Event-ID resumes after it.
    drop(r);
    let after = publish(&s, &owner, "acme", "order.shipped", 5).await;
    let resp = s
        .req(
            Method::GET,
            "/api/events/stream?type=order.",
            Some(&owner),
            Some("acme"),
        )
        .header("Last-Event-ID", sse.id.unwrap())
        .send()
        .await
        .unwrap();
    let (_, ev) = Reader::new(resp).message().await.unwrap();
    assert_eq!(ev["id"], after["id"]);
    // Without `after` it starts at the head: only new events.
    let mut head = Reader::new(open(&s, "/api/events/stream", &owner, Some("acme")).await);
    let newest = publish(&s, &owner, "acme", "order.refunded", 6).await;
    let (_, ev) = head.message().await.unwrap();
    assert_eq!(ev["id"], newest["id"]);
    s.stop().await;
}

#[tokio::test]
async fn streams_are_authenticated_like_every_operation() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    s.tenant("globex").await;
    let r = s
        .req(Method::GET, "/api/events/stream", None, Some("acme"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "unauthorized").await;
    let r = open(&s, "/api/events/stream", &owner, Some("globex")).await;
    expect_problem(r, 403, "wrong_tenant").await;
    let r = open(&s, "/api/ops/tree/stream", &owner, None).await;
    expect_problem(r, 403, "forbidden").await;
    let r = s
        .req(
            Method::GET,
            "/api/events/stream",
            Some(&owner),
            Some("acme"),
        )
        .header("Last-Event-ID", "not-a-position")
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "validation_failed").await;
    let r = open(&s, "/api/events/stream?type=", &owner, Some("acme")).await;
    expect_problem(r, 422, "validation_failed").await;
    let r = open(
        &s,
        "/api/plugins/ins_01HZZZZZZZZZZZZZZZZZZZZZZZ/logs/stream",
        &owner,
        Some("acme"),
    )
    .await;
    expect_problem(r, 404, "plugin_not_found").await;
    s.stop().await;
}

#[tokio::test]
async fn a_tenant_holds_at_most_the_cap_of_streams_and_a_closed_one_frees_its_slot() {
    let s = Server::start_with(|c| c.stream_heartbeat = Duration::from_millis(200)).await;
    let (_, owner) = s.tenant("acme").await;
    let (_, other) = s.tenant("globex").await;
    let mut held = Vec::new();
    for _ in 0..STREAMS_PER_OWNER_MAX {
        held.push(Reader::new(
            open(&s, "/api/events/stream", &owner, Some("acme")).await,
        ));
    }
    let r = open(&s, "/api/events/stream", &owner, Some("acme")).await;
    expect_problem(r, 429, "too_many_streams").await;
    // Another tenant is not affected.
    Reader::new(open(&s, "/api/events/stream", &other, Some("globex")).await);
    // A client that goes away frees its slot once the server writes to it
    // (at the latest the next heartbeat).
    held.pop();
    let deadline = Instant::now() + WAIT;
    loop {
        let r = open(&s, "/api/events/stream", &owner, Some("acme")).await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn an_idle_stream_sends_heartbeats_and_streams_end_at_shutdown() {
    let s = Server::start_with(|c| {
        c.stream_heartbeat = Duration::from_millis(100);
        c.shutdown_grace = Duration::from_secs(30);
    })
    .await;
    let (_, owner) = s.tenant("acme").await;
    let mut r = Reader::new(open(&s, "/api/events/stream", &owner, Some("acme")).await);
    let beat = r.next().await.unwrap();
    assert!(beat.comment && beat.data.is_empty(), "{beat:?}");
    let mut tree = Reader::new(open(&s, "/api/ops/tree/stream", ADMIN, None).await);
    tree.message().await.unwrap();
    // Shutdown ends both streams at once, not after the 30 s grace.
    let started = Instant::now();
    let stopping = tokio::spawn(s.stop());
    while r.next().await.is_some() {}
    while tree.next().await.is_some() {}
    stopping.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_tree_stream_sends_a_snapshot_then_changes() {
    let s = Server::start().await;
    let mut r = Reader::new(open(&s, "/api/ops/tree/stream", ADMIN, None).await);
    let (sse, first) = r.message().await.unwrap();
    assert_eq!(sse.event, "tree");
    assert!(first["actors"].is_array(), "{first}");
    let (id, owner) = s.tenant("acme").await;
    // Publishing starts the new tenant's supervisor and dispatcher: a
    // later snapshot shows them.
    publish(&s, &owner, "acme", "order.created", 1).await;
    let shows_tenant = async {
        loop {
            let (_, snap) = r.message().await.unwrap();
            let actors = snap["actors"].as_array().unwrap().clone();
            let paths: Vec<String> = actors
                .iter()
                .filter_map(|a| a["path"].as_str().map(str::to_owned))
                .collect();
            if paths.iter().any(|p| p.contains(&id)) {
                // Labelled like `GET /api/ops/tree`: the tenant's slug.
                let mine = actors.iter().find(|a| a["tenant"] == id.as_str()).unwrap();
                assert_eq!(mine["tenant_slug"], "acme", "{mine}");
                return paths;
            }
        }
    };
    let paths = tokio::time::timeout(WAIT, shows_tenant)
        .await
        .expect("a snapshot with the new tenant's actors");
    assert!(
        paths.iter().any(|p| p.ends_with("/dispatcher")),
        "{paths:?}"
    );
    s.stop().await;
}

const LOGGING_PLUGIN: &str = r#"{"slug": "talker", "name": "Talker", "version": "1.0.0",
 "description": "logs", "entry": "main.js", "routes": [{"method": "GET", "path": "/say"}]}"#;
const LOGGING_MAIN: &str = r#"import { route } from "extensor:sdk";
route("GET", "/say", (req, ctx) => { ctx.log("info", "said", req.query.word); return { ok: true }; });
"#;

#[tokio::test]
async fn the_plugin_log_stream_sends_held_lines_then_new_ones() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let zip = zip_of(&[
        ("manifest.json", LOGGING_PLUGIN.as_bytes()),
        ("main.js", LOGGING_MAIN.as_bytes()),
    ]);
    let part = reqwest::multipart::Part::bytes(zip).file_name("talker.zip");
    let resp = s
        .req(
            Method::POST,
            "/api/plugins/upload",
            Some(&owner),
            Some("acme"),
        )
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 201, "{body}");
    let id = body["plugin"]["id"].as_str().unwrap().to_owned();
    let resp = s
        .req(
            Method::POST,
            &format!("/api/plugins/{id}/enable"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let say = |word: &'static str| {
        s.req(
            Method::GET,
            &format!("/ext/talker/say?word={word}"),
            Some(&owner),
            Some("acme"),
        )
        .send()
    };
    assert_eq!(say("first").await.unwrap().status(), 200);
    let path = format!("/api/plugins/{id}/logs/stream");
    let mut r = Reader::new(open(&s, &path, &owner, Some("acme")).await);
    let (sse, line) = r.message().await.unwrap();
    assert_eq!(sse.event, "log");
    assert!(
        line["message"].as_str().unwrap().contains("said first"),
        "{line}"
    );
    assert_eq!(line["level"], "info");
    assert_eq!(say("second").await.unwrap().status(), 200);
    let (_, line) = r.message().await.unwrap();
    assert!(
        line["message"].as_str().unwrap().contains("said second"),
        "{line}"
    );
    s.stop().await;
}
