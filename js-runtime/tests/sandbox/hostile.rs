//! Hostile plugins. Each is contained with the right typed error, and a
//! well-behaved plugin keeps answering during and after.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use extensor_js::host::files::FileStore;
use extensor_js::host::net::GuardedHttp;
use extensor_js::host::{InstallationScope, SecretStore};
use extensor_js::{
    HostServices, Installation, JsEngine, JsError, NetworkPolicy, PrivateNetworks, Sandbox,
    SandboxConfig,
};
use futures::future::BoxFuture;
use serde_json::json;

use crate::support::*;

engine_tests! {

/// Runs the hostile input when `event.evil` is set, otherwise answers "ok",
/// so the same installation can show it still works after an incident.
fn evil(body: &str) -> String {
    format!(
        "import {{ hook }} from 'extensor:sdk';\nhook('test.ping', async (event, ctx) => {{ if (!event.evil) return 'ok';\n{body}\n}});"
    )
}

async fn contained(body: &str) -> (JsError, Installation) {
    contained_in(&sandbox(), body).await
}

/// [`contained`] on a given sandbox (for limits other than the default test ones).
async fn contained_in(sandbox: &Sandbox, body: &str) -> (JsError, Installation) {
    let plugin = sandbox
        .validate(&bundle(json!({}), &evil(body)))
        .await
        .expect("the hostile bundle validates");
    let ins = sandbox.install(plugin, scope("ins1"), HostServices::default());
    let good = install(
        json!({}),
        "import { hook } from 'extensor:sdk'; hook('test.ping', (e) => e.n);",
        HostServices::default(),
    )
    .await;
    let good = Arc::new(good);
    let bystander = {
        let good = good.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                assert_eq!(good.invoke(ping()).await.unwrap().value, json!(1));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let err = ins
        .invoke(hook("test.ping", json!({"evil": true})))
        .await
        .unwrap_err();
    bystander.await.unwrap();
    assert_eq!(
        ins.invoke(ping()).await.unwrap().value,
        json!("ok"),
        "the installation recovers with a fresh isolate"
    );
    assert_eq!(good.invoke(ping()).await.unwrap().value, json!(1));
    (err, ins)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_times_out() {
    let (err, _) = contained("while (true) {}").await;
    assert_eq!(
        err,
        JsError::Timeout {
            deadline_ms: DEADLINE_MS_TEST
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_promise_chain_times_out() {
    let (err, _) = contained("function spin() { Promise.resolve().then(spin); } spin(); return await new Promise(() => {});").await;
    assert_eq!(
        err,
        JsError::Timeout {
            deadline_ms: DEADLINE_MS_TEST
        }
    );
    // A chain where each link waits on the next also grows the heap; it
    // ends on whichever limit comes first, never on anything else.
    let (err, _) =
        contained("function spin() { return Promise.resolve().then(spin); } return spin();").await;
    assert!(
        matches!(err, JsError::Timeout { .. } | JsError::HeapLimit { .. }),
        "{err:?}"
    );
    // quickjs-ng#810: the interrupt error, uncatchable elsewhere, can be
    // swallowed by a promise `.catch`; the host-side check between jobs
    // still ends the invocation.
    let (err, _) = contained(
        "const loop = async () => { await Promise.resolve(); while (true) {} };
         while (true) { await loop().catch(() => {}); }",
    )
    .await;
    assert_eq!(
        err,
        JsError::Timeout {
            deadline_ms: DEADLINE_MS_TEST
        }
    );
    let (err, _) = contained("while (true) { await null; }").await;
    assert!(matches!(err, JsError::Timeout { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catastrophic_regex_times_out() {
    let (err, _) = contained("return /^(a+)+$/.test('a'.repeat(40) + 'b');").await;
    assert!(matches!(err, JsError::Timeout { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_hits_the_heap_limit() {
    // A roomy deadline: near its heap limit V8 collects garbage several
    // times before giving up, which on a loaded machine can outlast the
    // test's 1 s deadline; the heap limit is what this test is about.
    let sandbox = Sandbox::new(SandboxConfig {
        deadline_ms: 20_000,
        ..config()
    });
    let contained = |body: &'static str| {
        let sandbox = sandbox.clone();
        async move { contained_in(&sandbox, body).await }
    };
    let (err, _) =
        contained("const a = []; while (true) a.push('x'.repeat(100000) + Math.random());").await;
    assert_eq!(
        err,
        JsError::HeapLimit {
            limit_bytes: HEAP_BYTES_TEST
        }
    );
    // Catching the out-of-memory error does not undo having hit the limit.
    let (err, _) = contained("try { const a = []; while (true) a.push(new Array(100000).fill(1)); } catch (e) { return 'survived ' + e; }").await;
    assert_eq!(
        err,
        JsError::HeapLimit {
            limit_bytes: HEAP_BYTES_TEST
        }
    );
    // Array buffers count too (V8 keeps them outside its heap).
    let (err, _) =
        contained("const a = []; while (true) a.push(new Uint8Array(4 * 1024 * 1024));").await;
    assert_eq!(
        err,
        JsError::HeapLimit {
            limit_bytes: HEAP_BYTES_TEST
        }
    );
    // At load time (module top level) the same limit applies.
    let problems = sandbox
        .validate(&bundle(
            json!({}),
            "const a = []; while (true) a.push(new Array(100000).fill(1));",
        ))
        .await
        .unwrap_err();
    assert!(problems[0].message.contains("heap limit"), "{problems:?}");
    // A limit below what the engine itself needs to start is a clear
    // problem (or enough), never a process abort.
    let tiny = sandbox
        .validate(&bundle(
            json!({"limits": {"memory_mb": 1}}),
            "import { hook } from 'extensor:sdk'; hook('test.ping', () => 1);",
        ))
        .await;
    if let Err(problems) = tiny {
        assert!(problems[0].message.contains("heap limit"), "{problems:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_overflows_the_stack() {
    // Each engine's stack limit is per isolate: here the config's 512 KiB.
    let limit_bytes = 512 * 1024;
    let (err, _) = contained("function f(n) { return f(n + 1) + 1; } return f(0);").await;
    assert_eq!(err, JsError::StackOverflow { limit_bytes });
    // Native recursion (JSON.stringify of a deep object) is bounded too:
    // QuickJS's stringify recurses on the stack; V8's does not, and the
    // host's JSON reader refuses the 100,000-deep result instead.
    let (err, _) =
        contained("let o = {}; for (let i = 0; i < 1e5; i++) o = { o }; return o;").await;
    match engine() {
        JsEngine::QuickJs => assert_eq!(err, JsError::StackOverflow { limit_bytes }),
        JsEngine::V8 => assert!(
            matches!(&err, JsError::InvalidResult { reason } if reason.contains("recursion limit")),
            "{err:?}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_gets_its_own_stack_limit() {
    // `depth()` reports how deep plain recursion gets before the engine
    // throws (caught in JS); `n < 0` recurses without catching.
    let probe = "import { hook } from 'extensor:sdk';
        function depth(n) { try { return depth(n + 1); } catch (e) { return n; } }
        function endless(n) { return endless(n + 1) + 1; }
        hook('test.ping', (e) => e.n < 0 ? endless(0) : depth(0));";
    let small = install(json!({"limits": {"stack_kb": 64}}), probe, HostServices::default()).await;
    let large = install(json!({"limits": {"stack_kb": 512}}), probe, HostServices::default()).await;
    let depth = |v: serde_json::Value| v.as_u64().expect("a depth");
    let shallow = depth(small.invoke(ping()).await.unwrap().value);
    let deep = depth(large.invoke(ping()).await.unwrap().value);
    // 8x the stack; frames above the JS entry point take a little of each.
    assert!(
        deep > 5 * shallow && shallow > 50,
        "64 KiB reached depth {shallow}, 512 KiB depth {deep}"
    );
    for (ins, limit_bytes) in [(&small, 64 * 1024), (&large, 512 * 1024)] {
        let err = ins.invoke(hook("test.ping", json!({"n": -1}))).await.unwrap_err();
        assert_eq!(err, JsError::StackOverflow { limit_bytes });
        // The isolate that overflowed is discarded, not put back warm.
        assert_eq!(ins.warm_isolates(), 0, "the overflowed isolate was discarded");
    }
    // A fresh isolate has the same limit (V8's frame sizes vary with
    // when its compiler tiers kick in, so the depth is close, not equal).
    let again = depth(small.invoke(ping()).await.unwrap().value);
    assert!(
        again * 2 > shallow && again < shallow * 2,
        "64 KiB reached {shallow}, then {again}"
    );
    // A platform stack larger than the V8 flag's default holds too.
    let roomy = Sandbox::new(SandboxConfig {
        stack_bytes_max: 4 * 1024 * 1024,
        ..config()
    });
    let plugin = roomy.validate(&bundle(json!({}), probe)).await.unwrap();
    let ins = roomy.install(plugin, scope("ins2"), HostServices::default());
    let deeper = depth(ins.invoke(ping()).await.unwrap().value);
    assert!(deeper > 4 * deep, "4 MiB reached depth {deeper}, 512 KiB {deep}");
    let err = ins.invoke(hook("test.ping", json!({"n": -1}))).await.unwrap_err();
    assert_eq!(err, JsError::StackOverflow { limit_bytes: 4 * 1024 * 1024 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_a_synchronous_answer_left_queued_runs_under_the_deadline() {
    // V8 answers a synchronous handler without a turn of the event loop;
    // what it queued must still run under the deadline, and a promise it
    // left rejected must still fail the call.
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk';
         function spin() { Promise.resolve().then(spin); }
         hook('test.ping', (e) => {
           if (e.n === 2) spin();
           if (e.n === 3) Promise.reject(new Error('left behind'));
           return e.n;
         });",
        HostServices::default(),
    )
    .await;
    let n = |n: u64| hook("test.ping", json!({ "n": n }));
    assert_eq!(ins.invoke(n(1)).await.unwrap().value, json!(1));
    let err = ins.invoke(n(2)).await.unwrap_err();
    assert!(matches!(err, JsError::Timeout { .. }), "{err:?}");
    assert_eq!(ins.warm_isolates(), 0, "the spinning isolate was discarded");
    // V8 (deno_core) reports a rejection nobody handled; QuickJS has no
    // such check, and its answer stands.
    let left = ins.invoke(n(3)).await;
    match engine() {
        JsEngine::V8 => assert!(
            matches!(&left, Err(JsError::Thrown { message, .. }) if message.contains("left behind")),
            "{left:?}"
        ),
        JsEngine::QuickJs => assert_eq!(left.unwrap().value, json!(3)),
    }
    assert_eq!(ins.invoke(n(1)).await.unwrap().value, json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_return_value_is_refused() {
    let (err, _) = contained("return 'x'.repeat(2 * 1024 * 1024);").await;
    assert!(
        matches!(&err, JsError::InvalidResult { reason } if reason.contains("limit")),
        "{err:?}"
    );
    let (err, _) = contained("return new Promise(() => {});").await;
    assert!(
        matches!(&err, JsError::InvalidResult { reason } if reason.contains("never settle")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_error_objects_are_contained() {
    let (err, _) = contained("throw { get name() { while (true) {} }, message: 'x' };").await;
    // QuickJS's host reads `name` and the getter runs into the deadline;
    // deno_core describes the object without running plugin getters.
    match engine() {
        JsEngine::QuickJs => assert!(matches!(err, JsError::Timeout { .. }), "{err:?}"),
        JsEngine::V8 => assert!(matches!(err, JsError::Thrown { .. }), "{err:?}"),
    }
    let (err, _) =
        contained("const e = new Error('fake'); e.name = 'PermissionDenied'; throw e;").await;
    assert!(
        matches!(err, JsError::Thrown { .. }),
        "a plugin cannot forge PermissionDenied: {err:?}"
    );
}

/// Counts calls so a test can prove the host was never reached.
#[derive(Default)]
struct CountingSecrets(std::sync::atomic::AtomicUsize);
impl SecretStore for CountingSecrets {
    fn get<'a>(
        &'a self,
        _s: &'a InstallationScope,
        _k: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(Some("secret".into())) })
    }
}

#[tokio::test]
async fn prototype_tricks_do_not_bypass_permissions() {
    let secrets = Arc::new(CountingSecrets::default());
    let services = HostServices {
        secrets: Some(secrets.clone()),
        ..HostServices::default()
    };
    let code = "import { hook } from 'extensor:sdk';
      hook('test.ping', async (e, ctx) => {
        const out = [];
        try { ctx.secrets.get = async () => 'forged'; } catch (err) { out.push('frozen'); }
        try { ctx.secrets = {}; } catch (err) { out.push('frozen ctx'); }
        JSON.parse = () => ({ ok: 'forged' });
        JSON.stringify = () => '{}';
        Object.prototype.ok = 'forged';
        Promise.prototype.then = function (f) { return f('forged'); };
        const g = ctx.log.constructor('return this')();
        out.push(typeof g.__extensorSdk.hook, Object.keys(g).includes('__extensorSdk'));
        try { out.push(await ctx.secrets.get('k')); } catch (err) { out.push(err.kind + ':' + err.permission); }
        return out;
      });";
    let ins = install(json!({}), code, services).await;
    let err = ins.invoke(ping()).await;
    // JSON.stringify was replaced, so the result is whatever the plugin made
    // of it; what matters is that the host was never called.
    assert_eq!(
        secrets.0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "secret store reached: {err:?}"
    );
    // Without the tampering, the outcome is visible: frozen ctx and PermissionDenied.
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk';
         hook('test.ping', async (e, ctx) => { const out = [];
           try { ctx.secrets.get = async () => 'forged'; } catch (err) { out.push('frozen'); }
           try { Object.setPrototypeOf(ctx.secrets, { get: async () => 'forged' }); out.push('proto set'); } catch (err) { out.push('proto refused'); }
           try { out.push(await ctx.secrets.get('k')); } catch (err) { out.push(err.kind + ':' + err.permission); }
           return out; });",
        HostServices { secrets: Some(secrets.clone()), ..HostServices::default() },
    )
    .await;
    let v = ins.invoke(ping()).await.unwrap().value;
    assert_eq!(
        v,
        json!(["frozen", "proto refused", "PermissionDenied:secrets.read"])
    );
    assert_eq!(secrets.0.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A secret store that never answers in time.
struct SlowSecrets;
impl SecretStore for SlowSecrets {
    fn get<'a>(
        &'a self,
        _s: &'a InstallationScope,
        _k: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(None)
        })
    }
}

#[tokio::test]
async fn deadline_holds_while_awaiting_the_host() {
    let services = HostServices {
        secrets: Some(Arc::new(SlowSecrets)),
        ..HostServices::default()
    };
    let ins = install(
        json!({"permissions": ["secrets.read"]}),
        &evil("return await ctx.secrets.get('k');"),
        services,
    )
    .await;
    let started = std::time::Instant::now();
    let err = ins
        .invoke(hook("test.ping", json!({"evil": true})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        JsError::Timeout {
            deadline_ms: DEADLINE_MS_TEST
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the host call did not hold the invocation"
    );
    assert_eq!(
        ins.warm_isolates(),
        0,
        "an isolate stopped mid-call is discarded, never reused"
    );
    assert_eq!(ins.invoke(ping()).await.unwrap().value, json!("ok"));
}

#[tokio::test]
async fn emit_chains_are_bounded() {
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk'; hook('test.ping', () => 1);",
        HostServices::default(),
    )
    .await;
    let mut inv = ping();
    inv.chain_depth = extensor_js::config::EMIT_CHAIN_DEPTH_MAX + 1;
    assert!(matches!(
        ins.invoke(inv).await.unwrap_err(),
        JsError::ChainTooDeep { .. }
    ));
}

#[test]
fn isolates_work_from_many_threads_and_runtimes() {
    // The stack-top trap: a runtime entered from a thread other than where
    // its stack top was recorded sees bogus depths. Isolates stay on their own
    // thread, so invocations from any runtime or worker see the same limits.
    let make = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ins = Arc::new(make.block_on(install(
        json!({}),
        "import { hook } from 'extensor:sdk'; function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); }
         hook('test.ping', (e) => { if (e.n < 0) { const f = (k) => f(k + 1); return f(0); } return depth(e.n); });",
        HostServices::default(),
    )));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .enable_all()
        .build()
        .unwrap();
    multi.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let ins = ins.clone();
            tasks.push(tokio::spawn(async move {
                ins.invoke(hook("test.ping", json!({"n": 300}))).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().value, json!(300));
        }
        let err = ins
            .invoke(hook("test.ping", json!({"n": -1})))
            .await
            .unwrap_err();
        assert!(matches!(err, JsError::StackOverflow { .. }), "{err:?}");
    });
    let again = make
        .block_on(ins.invoke(hook("test.ping", json!({"n": 300}))))
        .unwrap();
    assert_eq!(again.value, json!(300));
}

fn strict_sandbox() -> Sandbox {
    let mut c = config();
    c.network = NetworkPolicy {
        private_networks: PrivateNetworks::Refuse,
        platform_allowed_hosts: None,
    };
    Sandbox::new(c)
}

async fn fetch_error(sandbox: &Sandbox, policy: NetworkPolicy, url: &str) -> serde_json::Value {
    let m = json!({"permissions": ["outbound_http"], "allowed_hosts": ["localhost", "127.0.0.1", "169.254.169.254", "10.0.0.1", "100.64.0.1", "metadata.google.internal"]});
    let code = "import { hook } from 'extensor:sdk'; hook('test.ping', async (e, ctx) => { try { const r = await ctx.http.fetch(e.url); return { status: r.status, body: await r.text() }; } catch (err) { return { kind: err.kind, message: err.message }; } });";
    let plugin = sandbox.validate(&bundle(m, code)).await.unwrap();
    let services = HostServices {
        http: Some(Arc::new(GuardedHttp::new(policy).unwrap())),
        ..HostServices::default()
    };
    let ins = sandbox.install(plugin, scope("ins1"), services);
    ins.invoke(hook("test.ping", json!({"url": url})))
        .await
        .unwrap()
        .value
}

#[tokio::test]
async fn ssrf_targets_are_refused() {
    let server =
        HttpServer::start(Arc::new(|_s: &Seen| (200, vec![], "internal".to_string()))).await;
    let port = server.addr.port();
    let strict = NetworkPolicy::default();
    let sb = strict_sandbox();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://100.64.0.1/".to_string(),
        "http://[::1]/".to_string(),
    ] {
        let v = fetch_error(&sb, strict.clone(), &url).await;
        assert_eq!(v["kind"], "NetworkDenied", "{url}: {v}");
    }
    let v = fetch_error(&sb, strict.clone(), &format!("http://localhost:{port}/")).await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("resolves only to refused addresses"),
        "{v}"
    );
    assert!(
        server.seen.lock().unwrap().is_empty(),
        "nothing reached the internal server"
    );
}

#[tokio::test]
async fn redirects_to_internal_addresses_are_refused() {
    let server = HttpServer::start(Arc::new(|s: &Seen| match s.path.as_str() {
        "/to-metadata" => (
            302,
            vec![(
                "location".into(),
                "http://169.254.169.254/latest/meta-data/".into(),
            )],
            String::new(),
        ),
        "/to-elsewhere" => (
            302,
            vec![("location".into(), "http://example.org/".into())],
            String::new(),
        ),
        _ => (200, vec![], "fine".into()),
    }))
    .await;
    let onprem = NetworkPolicy {
        private_networks: PrivateNetworks::Allow,
        platform_allowed_hosts: None,
    };
    let v = fetch_error(&sandbox(), onprem.clone(), &server.url("/to-metadata")).await;
    assert_eq!(v["kind"], "NetworkDenied", "{v}");
    let v = fetch_error(&sandbox(), onprem.clone(), &server.url("/to-elsewhere")).await;
    assert_eq!(v["kind"], "NetworkDenied", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("allowed_hosts"),
        "{v}"
    );
    let v = fetch_error(&sandbox(), onprem, &server.url("/plain")).await;
    assert_eq!(v, json!({"status": 200, "body": "fine"}));
}

#[tokio::test]
async fn installations_cannot_reach_each_others_files_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(FileStore::new(dir.path()));
    let mut secrets = HashMap::new();
    secrets.insert(
        ("ins2".to_string(), "api".to_string()),
        "ins2-secret".to_string(),
    );
    let secrets = Arc::new(MemSecrets(secrets));
    let services = HostServices {
        files: Some(files.clone()),
        secrets: Some(secrets),
        ..HostServices::default()
    };
    let m = json!({"permissions": ["files.read", "files.write", "secrets.read"]});
    let code = "import { hook } from 'extensor:sdk'; hook('test.ping', async (e, ctx) => {
        if (e.write) { await ctx.files.write('secret.txt', 'mine'); return 'written'; }
        const out = { own: await ctx.files.read('secret.txt'), secret: await ctx.secrets.get('api') };
        for (const p of ['../ins2/secret.txt', '/etc/passwd', 'a/../../ins2/secret.txt', '..\\\\ins2\\\\secret.txt']) {
          try { out[p] = await ctx.files.read(p); } catch (err) { out[p] = err.kind; }
        }
        return out; });";
    let plugin = validated(m, code).await;
    let ins1 = sandbox().install(plugin.clone(), scope("ins1"), services.clone());
    let ins2 = sandbox().install(plugin, scope("ins2"), services);
    assert_eq!(
        ins2.invoke(hook("test.ping", json!({"write": true})))
            .await
            .unwrap()
            .value,
        json!("written")
    );
    let v = ins1.invoke(ping()).await.unwrap().value;
    assert_eq!(
        v,
        json!({"own": null, "secret": null, "../ins2/secret.txt": "InvalidArgument", "/etc/passwd": "InvalidArgument",
               "a/../../ins2/secret.txt": "InvalidArgument", "..\\ins2\\secret.txt": "InvalidArgument"})
    );
    // A symlink planted in the directory is not followed.
    let ins1_dir = dir.path().join("ten1").join("ins1");
    std::fs::create_dir_all(&ins1_dir).unwrap();
    std::os::unix::fs::symlink(dir.path().join("ten1/ins2"), ins1_dir.join("link")).unwrap();
    let err = files
        .read(&scope("ins1"), "link/secret.txt")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
}

#[tokio::test]
async fn host_call_fan_out_is_bounded() {
    let secrets = Arc::new(CountingSecrets::default());
    let services = HostServices {
        secrets: Some(secrets.clone()),
        ..HostServices::default()
    };
    let code = "import { hook } from 'extensor:sdk';
      hook('test.ping', async (e, ctx) => {
        const calls = [];
        for (let i = 0; i < 1000; i++) calls.push(ctx.secrets.get('k').then(() => 'ok', (err) => err.kind));
        const kinds = await Promise.all(calls);
        return { ok: kinds.filter((k) => k === 'ok').length, refused: kinds.filter((k) => k === 'LimitExceeded').length };
      });";
    let ins = install(json!({"permissions": ["secrets.read"]}), code, services).await;
    let v = ins.invoke(ping()).await.unwrap().value;
    assert_eq!(v, json!({"ok": 64, "refused": 936}));
    assert_eq!(secrets.0.load(std::sync::atomic::Ordering::SeqCst), 64);
}

/// Plugin code reaches nothing of the engine's embedding: no `Deno` or
/// `__bootstrap` global (deno_core's), no ops object, no internal module,
/// no way into the prelude's or bootstrap's closure through eval, the
/// Function constructor, or stack-trace call sites.
#[tokio::test]
async fn engine_internals_are_unreachable() {
    let code = r#"import { hook } from 'extensor:sdk';
      const probe = (f) => { try { return f(); } catch (e) { return 'threw'; } };
      hook('test.ping', async (e, ctx) => {
        const out = {};
        out.globals = [typeof Deno, typeof __bootstrap, typeof globalThis.__extensorEntry, typeof globalThis.Deno];
        out.ops = probe(() => typeof Deno.core.ops);
        out.names = Object.getOwnPropertyNames(globalThis)
          .filter((n) => /deno|bootstrap|^ops$|op_|__extensorEntry|primordials/i.test(n));
        out.indirectEval = (0, eval)('[typeof Deno, typeof __bootstrap, typeof op_extensor_call]');
        out.directEval = eval('[typeof host, typeof handlers, typeof register, typeof call, typeof ops]');
        out.functionCtor = new Function('return [typeof Deno, typeof host, typeof op_extensor_call]')();
        out.throughCtx = probe(() => ctx.secrets.get.constructor('return [typeof Deno, typeof host]')());
        out.throughConsole = probe(() => console.log.constructor('return typeof __bootstrap')());
        out.imports = [];
        for (const spec of ['ext:core/ops', 'ext:core/mod.js', 'ext:extensor_host/x.js', 'extensor:prelude', 'extensor:bootstrap']) {
          try { await import(spec); out.imports.push(spec + ' imported'); } catch (err) { out.imports.push('refused'); }
        }
        out.callSites = probe(() => {
          Error.prepareStackTrace = (err, frames) => frames.map((f) => typeof f.getFunction() + typeof f.getThis());
          const frames = new Error('x').stack;
          Error.prepareStackTrace = undefined;
          return JSON.stringify(frames).includes('function') || JSON.stringify(frames).includes('object');
        });
        return out;
      });"#;
    let ins = install(json!({}), code, HostServices::default()).await;
    let v = ins.invoke(ping()).await.unwrap().value;
    let undefined = json!("undefined");
    assert_eq!(v["globals"], json!([undefined, undefined, undefined, undefined]), "{v}");
    assert_eq!(v["ops"], json!("threw"), "{v}");
    assert_eq!(v["names"], json!([]), "{v}");
    assert_eq!(v["indirectEval"], json!([undefined, undefined, undefined]), "{v}");
    assert_eq!(v["directEval"], json!([undefined, undefined, undefined, undefined, undefined]), "{v}");
    assert_eq!(v["functionCtor"], json!([undefined, undefined, undefined]), "{v}");
    assert_eq!(v["throughCtx"], json!([undefined, undefined]), "{v}");
    assert_eq!(v["throughConsole"], undefined, "{v}");
    assert_eq!(v["imports"], json!(["refused", "refused", "refused", "refused", "refused"]), "{v}");
    assert_eq!(v["callSites"], json!(false), "no call site hands out a function or receiver: {v}");
}

/// Prototype pollution at load time and at run time: the SDK object, `ctx`
/// and its API objects stay as the prelude made them, denied calls stay
/// denied, and the host is never reached.
#[tokio::test]
async fn prototype_pollution_leaves_the_sdk_intact() {
    let secrets = Arc::new(CountingSecrets::default());
    let code = r#"import sdk, { hook } from 'extensor:sdk';
      const load = [];
      try { sdk.hook = () => {}; load.push('sdk writable'); } catch (e) { load.push('sdk frozen'); }
      try { Object.defineProperty(globalThis, '__extensorSdk', { value: {} }); load.push('sdk replaced'); } catch (e) { load.push('sdk pinned'); }
      Object.prototype.hook = () => 'polluted';
      Object.prototype.permission = 'secrets.read';
      Object.prototype.ok = 'forged';
      Object.prototype.get = async () => 'forged';
      Array.prototype.includes = () => true;
      Array.prototype.push = function () { return 0; };
      Function.prototype.call = function () { return 'forged'; };
      Function.prototype.apply = function () { return 'forged'; };
      Function.prototype.bind = function () { return () => 'forged'; };
      Reflect.apply = () => 'forged';
      Promise.prototype.then = function (f) { return Promise.resolve(f ? f('forged') : 'forged'); };
      JSON.parse = () => ({ ok: 'forged' });
      hook('test.ping', async (e, ctx) => {
        const out = load.slice();
        try { ctx.secrets = { get: async () => 'forged' }; out[out.length] = 'ctx writable'; } catch (err) { out[out.length] = 'ctx frozen'; }
        try { Object.setPrototypeOf(ctx.secrets, { get: async () => 'forged' }); out[out.length] = 'api proto set'; } catch (err) { out[out.length] = 'api proto pinned'; }
        try { delete ctx.secrets.get; } catch (err) {}
        out[out.length] = typeof ctx.secrets.get;
        try { out[out.length] = 'got ' + (await ctx.secrets.get('k')); } catch (err) { out[out.length] = 'denied ' + err.kind; }
        return out;
      });"#;
    let ins = install(
        json!({}),
        code,
        HostServices {
            secrets: Some(secrets.clone()),
            ..HostServices::default()
        },
    )
    .await;
    for _ in 0..2 {
        let v = ins.invoke(ping()).await.unwrap().value;
        assert_eq!(
            v,
            json!([
                "sdk frozen",
                "sdk pinned",
                "ctx frozen",
                "api proto pinned",
                "function",
                "denied PermissionDenied"
            ])
        );
    }
    assert_eq!(secrets.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Another installation's isolate never saw the pollution.
    let clean = install(
        json!({}),
        "import { hook } from 'extensor:sdk'; hook('test.ping', () => [typeof Object.prototype.ok, [1].includes(2)]);",
        HostServices::default(),
    )
    .await;
    assert_eq!(clean.invoke(ping()).await.unwrap().value, json!(["undefined", false]));
}

/// Host calls in flight are bounded in bytes, not only in count: 16 reads
/// of a 4 MiB file whose answers pile up while JS is busy would make the
/// host hold 64 MiB; past `HOST_CALL_BYTES_IN_FLIGHT_MAX` an answer becomes
/// a `LimitExceeded` error instead of a queued value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_call_bytes_in_flight_are_bounded() {
    use extensor_js::host::calls::HOST_CALL_BYTES_IN_FLIGHT_MAX;
    const FILE_BYTES: usize = 4 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let ins_dir = dir.path().join("ten1").join("ins1");
    std::fs::create_dir_all(&ins_dir).unwrap();
    std::fs::write(ins_dir.join("big.txt"), vec![b'b'; FILE_BYTES]).unwrap();
    let services = HostServices {
        files: Some(Arc::new(FileStore::new(dir.path()))),
        ..HostServices::default()
    };
    let code = "import { hook } from 'extensor:sdk';
      hook('test.ping', async (e, ctx) => {
        const reads = [];
        for (let i = 0; i < 16; i++) reads.push(ctx.files.read('big.txt').then((s) => s.length, (err) => err.message));
        // Busy: the answers arrive and wait, counted, until JS takes them
        // (2 s is ample for 16 reads from the page cache on a loaded machine).
        const t = Date.now(); while (Date.now() - t < 2000) {}
        return await Promise.all(reads);
      });";
    // Room in the JS heap for the answers JS does take (up to 7 × 4 MiB,
    // which V8 holds twice while parsing each envelope): the bound under
    // test is the host's, not the heap's.
    let sandbox = Sandbox::new(extensor_js::SandboxConfig {
        deadline_ms: 10_000,
        heap_bytes_max: 128 * 1024 * 1024,
        ..config()
    });
    let plugin = sandbox
        .validate(&bundle(json!({"permissions": ["files.read"]}), code))
        .await
        .unwrap();
    let ins = sandbox.install(plugin, scope("ins1"), services);
    let v = ins.invoke(ping()).await.unwrap().value;
    let answers = v.as_array().unwrap();
    let read = answers
        .iter()
        .filter(|a| a.as_u64() == Some(FILE_BYTES as u64))
        .count();
    let refused: Vec<&str> = answers.iter().filter_map(|a| a.as_str()).collect();
    assert_eq!(read + refused.len(), 16, "{v}");
    assert!(
        (1..=HOST_CALL_BYTES_IN_FLIGHT_MAX / FILE_BYTES).contains(&read),
        "{read} read"
    );
    assert!(
        refused
            .iter()
            .all(|m| m.contains("HOST_CALL_BYTES_IN_FLIGHT_MAX")),
        "{refused:?}"
    );
}

}
