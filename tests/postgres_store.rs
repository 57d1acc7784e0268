//! The binary on the PostgreSQL store (`--store` / `EXTENSOR_STORE_URL`):
//! `serve` publishes and reads back through the API with the log in
//! PostgreSQL, and `events verify` walks the chain there, finding rows
//! edited, deleted, reordered and inserted with plain SQL.
//!
//! Each test uses its own database on `EXTENSOR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); an unreachable server
//! fails the test, saying so.

#[path = "common/api.rs"]
mod api;
#[path = "common/served.rs"]
mod served;

use std::path::Path;
use std::process::{Command, Output};

use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::store::{EventStore, ExpectedRevision, ReadFilter};
use extensor_store_postgres::test_database::TestDatabase;
use extensor_store_postgres::{PgConfig, PgOpenMode, PgStore};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-for-postgres-tests-0123456789";

async fn database() -> TestDatabase {
    TestDatabase::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the binary with `--store` from the environment, as an operator would.
fn extensor(data: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(args)
        .env("EXTENSOR_DATA_DIR", data)
        .env("EXTENSOR_STORE_URL", url)
        .output()
        .expect("run extensor")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publishes_and_reads_back_on_postgres() {
    let db = database().await;
    let data = tempfile::tempdir().unwrap();
    let server = served::serve_with(data.path(), ADMIN, &[("EXTENSOR_STORE_URL", db.url())]);
    let api::Api { http, token, .. } = api::Api::create_tenant(&server.url, ADMIN).await;
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", server.url))
            .bearer_auth(&token)
            .header("X-Tenant-Slug", "acme")
    };
    let published = call(reqwest::Method::POST, "/api/events")
        .json(&json!({"event_type": "user.created", "event_data": {"email": "ada@example.com"}}))
        .send()
        .await
        .unwrap();
    assert!(
        published.status().is_success(),
        "{}",
        published.text().await.unwrap()
    );
    let listed: Value = call(reqwest::Method::GET, "/api/events?type=user.created")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.to_string().contains("ada@example.com"), "{listed}");
    // The log is in PostgreSQL, not in the data directory.
    assert!(!data.path().join("events.sqlite3").exists());
    let store = PgStore::open(PgConfig::new(
        db.location().clone(),
        PgOpenMode::RequireCurrent,
    ))
    .await
    .unwrap();
    let all = store
        .read_all(0, ReadFilter::default(), 1_000)
        .await
        .unwrap();
    assert!(
        all.iter().any(|e| e.event_type == "user.created"),
        "{all:?}"
    );
    drop(server);
    let out = extensor(data.path(), db.url(), &["events", "verify"]);
    let text = served::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("OK: {} events verified", all.len())),
        "{text}"
    );
    let out = extensor(
        data.path(),
        db.url(),
        &["events", "export", "--type", "user."],
    );
    assert!(out.status.success() && served::text(&out).contains("ada@example.com"));
}

/// Five events on two streams, appended through the store.
async fn five_events(db: &TestDatabase) {
    let store = PgStore::open(PgConfig::new(db.location().clone(), PgOpenMode::Migrate))
        .await
        .unwrap();
    for n in 0..5u64 {
        let meta = EventMeta::new(None, Principal::system());
        let ev = NewEvent::new("t.x", 1, meta, &json!({ "n": n })).unwrap();
        let s = StreamId::new("audit", if n % 2 == 0 { "a" } else { "b" }).unwrap();
        store
            .append(s, ExpectedRevision::Any, vec![ev])
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_verify_on_postgres_catches_each_kind_of_tampering() {
    let cases = [
        (
            "edited",
            "UPDATE events SET payload = '{\"n\":99}' WHERE position = 2",
            "position 2",
            "edited",
        ),
        (
            "deleted",
            "DELETE FROM events WHERE position = 3",
            "position 3",
            "deleted",
        ),
        (
            "reordered",
            "UPDATE events SET position = -1 WHERE position = 2;
             UPDATE events SET position = 2 WHERE position = 3;
             UPDATE events SET position = 3 WHERE position = -1;",
            "position 2",
            "link",
        ),
        (
            "inserted",
            "UPDATE events SET position = -position - 1 WHERE position >= 4;
             UPDATE events SET position = -position WHERE position < 0;
             INSERT INTO events SELECT 4, stream, 100, 'evt_01JCZ6X8K9QG7M2V3N4P5R6S7T', event_type,
                    schema_version, recorded_at, tenant, principal, correlation_id, causation_id,
                    payload, prev_hash, hash
             FROM events WHERE position = 3;",
            "position 4",
            "link",
        ),
    ];
    let data = tempfile::tempdir().unwrap();
    for (what, sql, at, reason) in cases {
        let db = database().await;
        five_events(&db).await;
        let ok = extensor(data.path(), db.url(), &["events", "verify"]);
        assert!(ok.status.success(), "{what}: {}", served::text(&ok));
        assert!(served::text(&ok).contains("OK: 5 events verified"));
        let (psql, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        psql.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let out = extensor(data.path(), db.url(), &["events", "verify"]);
        let text = served::text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {text}");
        assert!(text.contains(at) && text.contains(reason), "{what}: {text}");
    }
}

/// A bad `--store` is an error naming it; read-only commands never create
/// a store; the password never appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_store_urls_are_named() {
    let data = tempfile::tempdir().unwrap();
    let out = extensor(data.path(), "mysql://root@db/x", &["events", "verify"]);
    let text = served::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("unsupported store URL scheme `mysql`"),
        "{text}"
    );
    let out = extensor(
        data.path(),
        "postgres://u:hunter2@127.0.0.1:1/x",
        &["events", "verify"],
    );
    let text = served::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot connect") && !text.contains("hunter2"),
        "{text}"
    );
    let db = database().await;
    let out = extensor(data.path(), db.url(), &["events", "verify"]);
    let text = served::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("no Extensor event store"), "{text}");
    let out = extensor(
        data.path(),
        db.url(),
        &["serve", "--store-bytes-max", "1000000"],
    );
    assert!(
        served::text(&out).contains("embedded store"),
        "{}",
        served::text(&out)
    );
    // Nothing was created by any of these.
    assert!(!data.path().join("events.sqlite3").exists());
}

const MANIFEST: &str = r#"{
  "slug": "greeter",
  "name": "Greeter",
  "version": "1.0.0",
  "entry": "main.js",
  "events": ["order.created"]
}"#;

const MAIN: &str = r#"import { hook } from "extensor:sdk";
hook("order.created", async (e) => ({ greeted: e.data.who }));
"#;

/// A plugin uploaded through one node is stored beside the log, not in
/// that node's data directory: a second node with an empty data directory
/// on the same database loads it and runs its hook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_uploaded_on_one_node_runs_on_another() {
    let db = database().await;
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("EXTENSOR_STORE_URL", db.url())];
    let server = served::serve_with(data_a.path(), ADMIN, &env);
    let mut api = api::Api::create_tenant(&server.url, ADMIN).await;
    let zip = served::zip_of(&[("manifest.json", MANIFEST), ("main.js", MAIN)]);
    api.install_enabled("greeter.zip", zip).await;
    assert!(
        !data_a.path().join("bundles").exists(),
        "the bundle is not in the first node's data directory"
    );
    drop(server);

    let server = served::serve_with(data_b.path(), ADMIN, &env);
    api.base = server.url.clone();
    let event = json!({"event_type": "order.created", "event_data": {"who": "ada"}});
    api.call(reqwest::Method::POST, "/api/events", Some(event))
        .await;
    let hooks = api
        .until("/api/events?type=hook.&limit=100", |page| {
            page.to_string().contains("hook.executed")
        })
        .await
        .to_string();
    assert!(hooks.contains("ada"), "{hooks}");
}

const NOTES_MANIFEST: &str = r#"{
  "slug": "notes",
  "name": "Notes",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["files.read", "files.write"],
  "routes": [
    {"method": "PUT", "path": "/notes/:name"},
    {"method": "GET", "path": "/notes/:name"}
  ]
}"#;

const NOTES_MAIN: &str = r#"import { route } from "extensor:sdk";
route("PUT", "/notes/:name", async (req, ctx) => {
  await ctx.files.write(`notes/${req.params.name}.txt`, req.body.text);
  return { status: 200, body: { stored: req.params.name } };
});
route("GET", "/notes/:name", async (req, ctx) => {
  const text = await ctx.files.read(`notes/${req.params.name}.txt`);
  if (text === null) return { status: 404, body: { error: "no such note" } };
  return { status: 200, body: { text } };
});
"#;

/// `ctx.files` live in the shared store: two nodes running at once on one
/// database, each with its own empty data directory, read each other's
/// writes through the plugin's routes, and neither keeps files locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_read_each_other_plugin_files() {
    let db = database().await;
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("EXTENSOR_STORE_URL", db.url())];
    let a = served::serve_with(data_a.path(), ADMIN, &env);
    let api = api::Api::create_tenant(&a.url, ADMIN).await;
    let zip = served::zip_of(&[("manifest.json", NOTES_MANIFEST), ("main.js", NOTES_MAIN)]);
    api.install_enabled("notes.zip", zip).await;
    let call = |base: &str, method: reqwest::Method, path: &str| {
        api.http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&api.token)
            .header("X-Tenant-Slug", api::TENANT_SLUG)
    };
    // Started after the enable: it loads the installation from the log.
    let b = served::serve_with(data_b.path(), ADMIN, &env);
    let put = |base: String, name: &'static str, text: &'static str| {
        let request = call(
            &base,
            reqwest::Method::PUT,
            &format!("/ext/notes/notes/{name}"),
        );
        async move {
            let r = request.json(&json!({ "text": text })).send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    let get = |base: String, name: &'static str| {
        let request = call(
            &base,
            reqwest::Method::GET,
            &format!("/ext/notes/notes/{name}"),
        );
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    put(a.url.clone(), "from-a", "written on a").await;
    assert_eq!(
        get(b.url.clone(), "from-a").await,
        (200, json!({ "text": "written on a" }))
    );
    put(b.url.clone(), "from-b", "written on b").await;
    put(b.url.clone(), "from-a", "changed on b").await;
    assert_eq!(
        get(a.url.clone(), "from-b").await,
        (200, json!({ "text": "written on b" }))
    );
    assert_eq!(
        get(a.url.clone(), "from-a").await,
        (200, json!({ "text": "changed on b" }))
    );
    assert_eq!(get(a.url.clone(), "none").await.0, 404);
    for data in [&data_a, &data_b] {
        assert!(
            !data.path().join("files").exists(),
            "no node keeps plugin files in its data directory"
        );
    }
}
