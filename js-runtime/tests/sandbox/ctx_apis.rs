//! Every ctx API with and without its permission.

use std::collections::HashMap;
use std::sync::Arc;

use extensor_js::host::db::SqliteReadModels;
use extensor_js::host::files::FileStore;
use extensor_js::host::llm::{LlmClient, LlmConfig};
use extensor_js::host::mail::{SmtpConfig, SmtpMailer, SmtpTls};
use extensor_js::host::net::GuardedHttp;
use extensor_js::{HostServices, JsError, NetworkPolicy, PrivateNetworks};
use serde_json::{Value, json};

use crate::support::*;

engine_tests! {

fn call(expr: &str) -> String {
    format!(
        "import {{ hook }} from 'extensor:sdk'; hook('test.ping', async (e, ctx) => {{ return await {expr}; }});"
    )
}

struct World {
    services: HostServices,
    events: Arc<MemEvents>,
    outbox: Arc<MemOutbox>,
    server: HttpServer,
    files_dir: tempfile::TempDir,
    _db_dir: tempfile::TempDir,
}

async fn world() -> World {
    let server = HttpServer::start(Arc::new(|s: &Seen| match s.path.as_str() {
        "/v1/chat/completions" => {
            let req: Value = serde_json::from_str(&s.body).unwrap_or(Value::Null);
            let last = req["messages"].as_array().and_then(|m| m.last()).map(|m| m["content"].clone()).unwrap_or(Value::Null);
            let body = json!({"model": req["model"], "choices": [{"message": {"role": "assistant", "content": format!("echo: {}", last.as_str().unwrap_or(""))}, "finish_reason": "stop"}], "usage": {"total_tokens": 3}});
            (200, vec![("content-type".into(), "application/json".into())], body.to_string())
        }
        "/huge" => (200, vec![], "x".repeat(extensor_js::host::net::HTTP_RESPONSE_BYTES_MAX + 1)),
        _ => (201, vec![("x-test".into(), "yes".into())], format!("{} {} {}", s.method, s.path, s.body)),
    }))
    .await;
    let mut secrets = HashMap::new();
    secrets.insert(
        ("ins1".to_string(), "api_key".to_string()),
        "s3cret".to_string(),
    );
    let files_dir = tempfile::tempdir().unwrap();
    let db_dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(db_dir.path().join("ten1.sqlite")).unwrap();
    conn.execute_batch("CREATE TABLE events(id TEXT, type TEXT); INSERT INTO events VALUES ('e1', 'test.ping'), ('e2', 'test.pong');").unwrap();
    let events = Arc::new(MemEvents::default());
    let outbox = Arc::new(MemOutbox::default());
    let policy = NetworkPolicy {
        private_networks: PrivateNetworks::Allow,
        platform_allowed_hosts: None,
    };
    let llm = LlmConfig {
        base_url: format!("http://127.0.0.1:{}/v1", server.addr.port()),
        api_key: Some("k".into()),
        models: vec!["small".into(), "big".into()],
    };
    let services = HostServices {
        secrets: Some(Arc::new(MemSecrets(secrets))),
        events: Some(events.clone()),
        outbox: Some(outbox.clone()),
        db: Some(Arc::new(SqliteReadModels::new(db_dir.path()))),
        files: Some(Arc::new(
            FileStore::new(files_dir.path()).with_quota_bytes(1_000),
        )),
        http: Some(Arc::new(GuardedHttp::new(policy).unwrap())),
        llm: Some(Arc::new(LlmClient::new(llm).unwrap())),
    };
    World {
        services,
        events,
        outbox,
        server,
        files_dir,
        _db_dir: db_dir,
    }
}

/// (permission, JS expression) for every ctx API.
fn apis(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("secrets.read", "ctx.secrets.get('api_key')".into()),
        (
            "outbound_http",
            format!("ctx.http.fetch('http://localhost:{port}/x')"),
        ),
        (
            "llm",
            "ctx.llm.complete({ messages: [{ role: 'user', content: 'hi' }] })".into(),
        ),
        ("files.read", "ctx.files.read('a.txt')".into()),
        ("files.read", "ctx.files.list()".into()),
        ("files.write", "ctx.files.write('a.txt', 'x')".into()),
        ("files.write", "ctx.files.delete('a.txt')".into()),
        ("db.read", "ctx.db.query('SELECT 1')".into()),
        ("events.emit", "ctx.emit('test.emitted', { a: 1 })".into()),
        (
            "send_email",
            "ctx.email.send({ to: 'a@example.com', subject: 's', text: 't' })".into(),
        ),
    ]
}

#[tokio::test]
async fn every_api_without_its_permission_is_denied_and_does_nothing() {
    let w = world().await;
    for (permission, expr) in apis(w.server.addr.port()) {
        // Every other permission is granted, so only the missing one explains the denial.
        let others: Vec<&str> = [
            "secrets.read",
            "outbound_http",
            "llm",
            "files.read",
            "files.write",
            "db.read",
            "events.emit",
            "send_email",
        ]
        .into_iter()
        .filter(|p| *p != permission)
        .collect();
        let ins = install(
            json!({"permissions": others, "allowed_hosts": ["localhost"]}),
            &call(&expr),
            w.services.clone(),
        )
        .await;
        let err = ins.invoke(ping()).await.unwrap_err();
        assert_eq!(
            err,
            JsError::PermissionDenied {
                permission: permission.into()
            },
            "{expr}"
        );
    }
    assert!(
        w.server.seen.lock().unwrap().is_empty(),
        "no HTTP or LLM request was made"
    );
    assert!(w.events.0.lock().unwrap().is_empty());
    assert!(w.outbox.0.lock().unwrap().is_empty());
    assert!(
        std::fs::read_dir(w.files_dir.path())
            .unwrap()
            .next()
            .is_none(),
        "no file was written"
    );
}

async fn granted(w: &World, permissions: Value, expr: &str) -> Result<Value, JsError> {
    let ins = install(
        json!({"permissions": permissions, "allowed_hosts": ["localhost", "*.example.com"]}),
        &call(expr),
        w.services.clone(),
    )
    .await;
    ins.invoke(ping()).await.map(|o| o.value)
}

#[tokio::test]
async fn secrets_with_permission() {
    let w = world().await;
    assert_eq!(
        granted(&w, json!(["secrets.read"]), "ctx.secrets.get('api_key')")
            .await
            .unwrap(),
        json!("s3cret")
    );
    assert_eq!(
        granted(&w, json!(["secrets.read"]), "ctx.secrets.get('other')")
            .await
            .unwrap(),
        json!(null)
    );
}

#[tokio::test]
async fn http_with_permission() {
    let w = world().await;
    let port = w.server.addr.port();
    let expr = format!(
        "ctx.http.fetch('http://localhost:{port}/post', {{ method: 'POST', headers: {{ 'x-plugin': 'p' }}, body: 'payload' }}).then(async (r) => ({{ status: r.status, ok: r.ok, h: r.headers['x-test'], body: await r.text() }}))"
    );
    let v = granted(&w, json!(["outbound_http"]), &expr).await.unwrap();
    assert_eq!(
        v,
        json!({"status": 201, "ok": true, "h": "yes", "body": "POST /post payload"})
    );
    assert!(
        w.server.seen.lock().unwrap()[0]
            .headers
            .to_ascii_lowercase()
            .contains("x-plugin: p")
    );
    let err = granted(
        &w,
        json!(["outbound_http"]),
        "ctx.http.fetch('http://not-allowed.test/')",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.starts_with("NetworkDenied") && message.contains("allowed_hosts")),
        "{err:?}"
    );
    let huge = format!("ctx.http.fetch('http://localhost:{port}/huge')");
    let err = granted(&w, json!(["outbound_http"]), &huge)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.starts_with("HostError") && message.contains("response body over")),
        "{err:?}"
    );
    let err = granted(
        &w,
        json!(["outbound_http"]),
        "ctx.http.fetch('file:///etc/passwd')",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.contains("scheme")),
        "{err:?}"
    );
}

#[tokio::test]
async fn llm_with_permission() {
    let w = world().await;
    let v = granted(&w, json!(["llm"]), "ctx.llm.complete({ model: 'big', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }] })").await.unwrap();
    assert_eq!(v["content"], "echo: hello");
    assert_eq!(v["model"], "big");
    let seen = w.server.seen.lock().unwrap().clone();
    assert!(
        seen[0]
            .headers
            .to_ascii_lowercase()
            .contains("authorization: bearer k")
    );
    let err = granted(
        &w,
        json!(["llm"]),
        "ctx.llm.complete({ model: 'gpt-huge', messages: [{ role: 'user', content: 'x' }] })",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.contains("allowlist")),
        "{err:?}"
    );
}

#[tokio::test]
async fn files_with_permission_and_quota() {
    let w = world().await;
    let rw = json!(["files.read", "files.write"]);
    let expr = "(async () => { await ctx.files.write('notes/a.txt', 'hello'); await ctx.files.write('b.txt', 'bye');
        const a = await ctx.files.read('notes/a.txt'); const l1 = await ctx.files.list();
        const d = await ctx.files.delete('b.txt'); const d2 = await ctx.files.delete('b.txt');
        return { a, l1, d, d2, l2: await ctx.files.list() }; })()";
    let v = granted(&w, rw.clone(), expr).await.unwrap();
    assert_eq!(
        v,
        json!({"a": "hello", "l1": ["b.txt", "notes/a.txt"], "d": true, "d2": false, "l2": ["notes/a.txt"]})
    );
    let on_disk =
        std::fs::read_to_string(w.files_dir.path().join("ten1/ins1/notes/a.txt")).unwrap();
    assert_eq!(on_disk, "hello");
    let err = granted(&w, rw, "ctx.files.write('big.txt', 'x'.repeat(2000))")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.starts_with("QuotaExceeded")),
        "{err:?}"
    );
}

#[tokio::test]
async fn db_with_permission() {
    let w = world().await;
    let v = granted(
        &w,
        json!(["db.read"]),
        "ctx.db.query('SELECT id FROM events WHERE type = ?', ['test.pong'])",
    )
    .await
    .unwrap();
    assert_eq!(v, json!([{"id": "e2"}]));
    let err = granted(&w, json!(["db.read"]), "ctx.db.query('DELETE FROM events')")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.starts_with("InvalidArgument")),
        "{err:?}"
    );
}

#[tokio::test]
async fn emit_with_permission_sets_causation_and_depth() {
    let w = world().await;
    let v = granted(
        &w,
        json!(["events.emit"]),
        "ctx.emit('test.emitted', { a: 1 })",
    )
    .await
    .unwrap();
    assert_eq!(v, json!("evt_emitted_1"));
    let (scope, req) = w.events.0.lock().unwrap()[0].clone();
    assert_eq!(scope, scope_of("ins1"));
    assert_eq!(
        (
            req.event_type.as_str(),
            req.data.clone(),
            req.causation_id.as_deref(),
            req.chain_depth
        ),
        ("test.emitted", json!({"a": 1}), Some("evt_1"), 1)
    );
    // At the maximum depth the next emit is refused.
    let ins = install(
        json!({"permissions": ["events.emit"]}),
        &call("ctx.emit('test.emitted', {})"),
        w.services.clone(),
    )
    .await;
    let mut inv = ping();
    inv.chain_depth = extensor_js::config::EMIT_CHAIN_DEPTH_MAX;
    let err = ins.invoke(inv).await.unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.starts_with("ChainTooDeep")),
        "{err:?}"
    );
    assert_eq!(w.events.0.lock().unwrap().len(), 1);
    let err = granted(&w, json!(["events.emit"]), "ctx.emit('bad type!', {})")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.starts_with("InvalidArgument")),
        "{err:?}"
    );
}

fn scope_of(ins: &str) -> extensor_js::InstallationScope {
    scope(ins)
}

#[tokio::test]
async fn email_is_recorded_then_delivered_over_smtp() {
    let w = world().await;
    let v = granted(&w, json!(["send_email"]), "ctx.email.send({ to: ['ada@example.com'], subject: 'Welcome', text: 'Hello Ada', html: '<p>Hello Ada</p>' })").await.unwrap();
    assert_eq!(v, json!("msg_1"));
    let err = granted(
        &w,
        json!(["send_email"]),
        "ctx.email.send({ to: 'not an address', subject: 's', text: 't' })",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, JsError::Thrown { message, .. } if message.starts_with("InvalidArgument")),
        "{err:?}"
    );
    let recorded = w.outbox.0.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    let server = crate::aiosmtpd::Smtp::start().await;
    let config = |tls| SmtpConfig {
        host: "127.0.0.1".into(),
        port: server.port,
        from: "extensor@example.com".into(),
        credentials: None,
        tls,
    };
    // STARTTLS is required by default; this relay offers none, so nothing is sent in the clear.
    let required = SmtpMailer::new(config(SmtpTls::StartTls)).unwrap();
    assert!(required.deliver(&recorded[0]).await.is_err());
    let mailer = SmtpMailer::new(config(SmtpTls::None)).unwrap();
    mailer.deliver(&recorded[0]).await.unwrap();
    let delivered = server.delivered(1).await.remove(0);
    assert!(delivered.contains("Subject: Welcome"), "{delivered}");
    assert!(delivered.contains("ada@example.com"));
    assert!(delivered.contains("Hello Ada"));
}

/// Real isolates writing at once (two invocations on two isolates of one
/// installation, each with 20 writes in flight) never pass the quota
/// together: with 100-byte files and a 1,000-byte quota exactly 10 land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_in_real_isolates_never_pass_the_quota() {
    let w = world().await;
    let code = "import { hook } from 'extensor:sdk';
      hook('test.ping', async (e, ctx) => {
        const writes = [];
        for (let i = 0; i < 20; i++) writes.push(ctx.files.write(`w${e.n}-${i}.txt`, 'x'.repeat(100)).then(() => 1, (err) => err.kind));
        return await Promise.all(writes);
      });";
    let ins = install(
        json!({"permissions": ["files.write"]}),
        code,
        w.services.clone(),
    )
    .await;
    let (a, b) = tokio::join!(
        ins.invoke(hook("test.ping", json!({"n": 1}))),
        ins.invoke(hook("test.ping", json!({"n": 2})))
    );
    let mut ok = 0;
    for v in [a.unwrap().value, b.unwrap().value] {
        for r in v.as_array().unwrap() {
            match r {
                Value::Number(_) => ok += 1,
                other => assert_eq!(other, &json!("QuotaExceeded")),
            }
        }
    }
    assert_eq!(ok, 10);
    let files = w.services.files.as_ref().unwrap();
    let (bytes, count) = files.usage(&crate::support::scope("ins1")).await.unwrap();
    assert_eq!((bytes, count), (1_000, 10));
}

}
