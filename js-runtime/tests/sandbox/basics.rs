//! Well-behaved plugins: handlers, async, warm reuse, ctx info, logs, modules, TypeScript.

use extensor_js::{
    Bundle, HostServices, Invocation, JsEngine, JsError, LogLevel, Sandbox, SandboxConfig, Trigger,
};
use serde_json::json;

use crate::support::*;

engine_tests! {

#[tokio::test]
async fn hook_returns_json_and_async_await_works() {
    let ins = install(
        json!({}),
        r#"import { hook } from 'extensor:sdk';
           hook('test.ping', async (event, ctx) => {
             const x = await Promise.resolve(event.n + 1);
             const y = await new Promise((res) => Promise.resolve().then(() => res(x * 10)));
             return { y, tenant: ctx.tenant.id, slug: ctx.plugin.slug, version: ctx.plugin.version,
                      inv: ctx.invocation.id, eventId: ctx.invocation.eventId, trigger: ctx.invocation.trigger };
           });"#,
        HostServices::default(),
    )
    .await;
    let out = ins.invoke(ping()).await.unwrap();
    assert_eq!(
        out.value,
        json!({"y": 20, "tenant": "ten1", "slug": "test-plugin", "version": "1.2.3", "inv": "inv_1", "eventId": "evt_1",
               "trigger": {"kind": "hook", "eventType": "test.ping"}})
    );
}

#[tokio::test]
async fn warm_isolates_do_not_reevaluate_the_bundle() {
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk'; let loads = (globalThis.loads || 0) + 1; globalThis.loads = loads; let calls = 0;
         hook('test.ping', () => ({ loads, calls: ++calls }));",
        HostServices::default(),
    )
    .await;
    for expected in 1..=3 {
        let out = ins.invoke(ping()).await.unwrap();
        assert_eq!(out.value, json!({"loads": 1, "calls": expected}));
    }
    assert_eq!(ins.warm_isolates(), 1);
}

fn call(trigger: Trigger, input: serde_json::Value) -> Invocation {
    Invocation {
        id: "i".into(),
        trigger,
        input,
        event_id: None,
        chain_depth: 0,
    }
}

#[tokio::test]
async fn every_registration_kind_dispatches() {
    let m = json!({
        "routes": [{"method": "GET", "path": "/hello"}],
        "jobs": [{"name": "nightly", "schedule": "0 2 * * *"}],
        "llm_filters": ["summary"],
        "generator_hooks": ["draft"],
        "events": ["test.*"],
    });
    let ins = install(
        m,
        "import sdk, { hook, route, job } from 'extensor:sdk';
         hook('test.*', (e) => 'pattern');
         route('get', '/hello', (req) => ({ hello: req.name }));
         job('nightly', '0 2 * * *', () => 'job ran');
         sdk.llmFilter('summary', (x) => x.text.toUpperCase());
         sdk.generatorHook('draft', (x) => [x, x]);",
        HostServices::default(),
    )
    .await;
    let name = |n: &str| n.to_string();
    let cases = [
        (
            Trigger::Hook {
                event_type: name("test.other"),
            },
            json!({}),
            json!("pattern"),
        ),
        (
            Trigger::Route {
                method: name("GET"),
                path: name("/hello"),
            },
            json!({"name": "x"}),
            json!({"hello": "x"}),
        ),
        (
            Trigger::Job {
                name: name("nightly"),
            },
            json!(null),
            json!("job ran"),
        ),
        (
            Trigger::LlmFilter {
                name: name("summary"),
            },
            json!({"text": "hi"}),
            json!("HI"),
        ),
        (
            Trigger::GeneratorHook {
                name: name("draft"),
            },
            json!(1),
            json!([1, 1]),
        ),
    ];
    for (trigger, input, expected) in cases {
        let out = ins.invoke(call(trigger.clone(), input)).await;
        assert_eq!(out.unwrap().value, expected, "{trigger:?}");
    }
    let err = ins
        .invoke(call(
            Trigger::Job {
                name: name("missing"),
            },
            json!(null),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, JsError::NoHandler { .. }), "{err:?}");
    assert_eq!(
        ins.warm_isolates(),
        1,
        "a missing handler does not cost the warm isolate"
    );
}

#[tokio::test]
async fn console_and_ctx_log_are_captured_not_printed() {
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk';
         hook('test.ping', (e, ctx) => { console.log('hello', {a: 1}); console.warn('careful'); ctx.log('error', 'bad', 2);
           for (let i = 0; i < 1000; i++) console.debug('spam ' + i); return null; });",
        HostServices::default(),
    )
    .await;
    let out = ins.invoke(ping()).await.unwrap();
    assert_eq!(out.logs[0].message, r#"hello {"a":1}"#);
    assert_eq!(out.logs[0].level, LogLevel::Info);
    assert_eq!(out.logs[1].level, LogLevel::Warn);
    assert_eq!(
        (out.logs[2].level, out.logs[2].message.as_str()),
        (LogLevel::Error, "bad 2")
    );
    assert_eq!(
        out.logs.len(),
        extensor_js::logs::LOG_ENTRIES_PER_INVOCATION_MAX + 1
    );
    assert!(out.logs.last().unwrap().message.contains("dropped"));
    assert_eq!(ins.recent_logs().len(), out.logs.len());
}

#[tokio::test]
async fn relative_modules_and_typescript_load() {
    let b = Bundle::new()
        .with_file("manifest.json", manifest(json!({"entry": "main.ts"})))
        .with_file(
            "main.ts",
            "import { hook } from 'extensor:sdk';\nimport { double } from './lib/math.js';\ninterface Ev { n: number }\nhook('test.ping', (e: Ev): number => double(e.n));\n",
        )
        .with_file("lib/math.ts", "export function double(n: number): number { return n * 2 as number; }\n");
    let plugin = sandbox().validate(&b).await.unwrap();
    let ins = sandbox().install(plugin, scope("ins1"), HostServices::default());
    assert_eq!(
        ins.invoke(hook("test.ping", json!({"n": 21})))
            .await
            .unwrap()
            .value,
        json!(42)
    );
}

#[tokio::test]
async fn thrown_errors_carry_message_and_stack() {
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk';\nfunction inner() { throw new TypeError('nope'); }\nhook('test.ping', () => inner());",
        HostServices::default(),
    )
    .await;
    match ins.invoke(ping()).await.unwrap_err() {
        JsError::Thrown { message, stack } => {
            assert_eq!(message, "TypeError: nope");
            assert!(stack.contains("main.js:2"), "{stack}");
        }
        other => panic!("expected Thrown, got {other:?}"),
    }
    // A plain thrown value and a rejected promise are both `Thrown`.
    let ins = install(json!({}), "import { hook } from 'extensor:sdk'; hook('test.ping', async () => { throw 'just a string'; });", HostServices::default()).await;
    assert!(
        matches!(ins.invoke(ping()).await.unwrap_err(), JsError::Thrown { message, .. } if message == "just a string")
    );
}

#[tokio::test]
async fn isolates_idle_past_the_setting_are_dropped() {
    let idle = std::time::Duration::from_millis(300);
    let sandbox = Sandbox::new(SandboxConfig {
        isolate_idle_ms: idle.as_millis() as u64,
        ..config()
    });
    let code = "import { hook } from 'extensor:sdk'; hook('test.ping', (e) => e.n);";
    let plugin = sandbox.validate(&bundle(json!({}), code)).await.unwrap();
    let ins = sandbox.install(plugin, scope("ins1"), HostServices::default());
    ins.prewarm(2).await.unwrap();
    let warmed = std::time::Instant::now();
    assert_eq!(ins.warm_isolates(), 2);
    assert!(ins.warm_heap_bytes() > 0);
    assert_eq!(sandbox.warm_heap_bytes(), ins.warm_heap_bytes());
    // Positive marker: every isolate thread of this sandbox (the pool's two
    // and validation's) has ended, so their heaps are freed.
    let deadline = warmed + std::time::Duration::from_secs(20);
    while ins.warm_isolates() > 0 || sandbox.isolates_alive() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "still {} warm, {} alive",
            ins.warm_isolates(),
            sandbox.isolates_alive()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(warmed.elapsed() >= idle, "dropped before the idle time");
    assert_eq!(ins.warm_heap_bytes(), 0);
    assert_eq!(sandbox.warm_heap_bytes(), 0, "reaped isolates leave the total");
    // The next call starts a fresh isolate, which stays warm until idle again.
    assert_eq!(ins.invoke(ping()).await.unwrap().value, json!(1));
    assert_eq!((ins.warm_isolates(), sandbox.isolates_alive()), (1, 1));
    assert_eq!(sandbox.isolates_started(), 4);
}

#[tokio::test]
async fn the_sandbox_totals_the_warm_heap_of_all_its_installations() {
    // The engine checks its warm-isolate cap against this total after
    // every invocation, so every way an isolate's heap changes or an
    // isolate ends must move it.
    let sandbox = sandbox();
    let code = "import { hook } from 'extensor:sdk';
        function deep() { return deep() + 1; }
        hook('test.ping', (e) => { if (e.n === -1) return deep(); globalThis.keep = 'x'.repeat(e.n); return e.n; });";
    let plugin = sandbox.validate(&bundle(json!({}), code)).await.unwrap();
    assert_eq!(sandbox.warm_heap_bytes(), 0, "validation's isolate is in no pool");
    let a = sandbox.install(plugin.clone(), scope("a"), HostServices::default());
    let b = sandbox.install(plugin, scope("b"), HostServices::default());
    a.prewarm(2).await.unwrap();
    b.prewarm(1).await.unwrap();
    let both = |a: &extensor_js::Installation, b: &extensor_js::Installation| {
        a.warm_heap_bytes() + b.warm_heap_bytes()
    };
    assert!(b.warm_heap_bytes() > 0);
    assert_eq!(sandbox.warm_heap_bytes(), both(&a, &b));
    // An invocation's new heap size moves it with the pool's own (here
    // keeping 4 MB more, which QuickJS counts at once and V8 once it
    // commits pages for it).
    a.invoke(hook("test.ping", json!({"n": 4_000_000}))).await.unwrap();
    assert_eq!(sandbox.warm_heap_bytes(), both(&a, &b));
    // A discarded isolate (it overflowed its stack) leaves the total.
    let err = b.invoke(hook("test.ping", json!({"n": -1}))).await.unwrap_err();
    assert!(matches!(err, JsError::StackOverflow { .. }), "{err:?}");
    assert_eq!(b.warm_heap_bytes(), 0);
    assert_eq!(sandbox.warm_heap_bytes(), a.warm_heap_bytes());
    // So does a dropped installation, at once (its threads end after).
    drop(a);
    assert_eq!(sandbox.warm_heap_bytes(), 0);
    assert_eq!(b.invoke(ping()).await.unwrap().value, json!(1));
    assert_eq!(sandbox.warm_heap_bytes(), b.warm_heap_bytes());
}

#[tokio::test]
async fn dropping_an_installation_ends_its_isolates() {
    let sandbox = sandbox();
    let code = "import { hook } from 'extensor:sdk'; hook('test.ping', (e) => e.n);";
    let plugin = sandbox.validate(&bundle(json!({}), code)).await.unwrap();
    let ins = sandbox.install(plugin, scope("ins1"), HostServices::default());
    ins.prewarm(2).await.unwrap();
    assert!(sandbox.isolates_alive() >= 2);
    drop(ins);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sandbox.isolates_alive() > 0 {
        assert!(std::time::Instant::now() < deadline, "{} alive", sandbox.isolates_alive());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn concurrent_invocations_share_a_bounded_pool() {
    let ins = std::sync::Arc::new(
        install(
            json!({}),
            "import { hook } from 'extensor:sdk'; hook('test.ping', async (e) => e.n);",
            HostServices::default(),
        )
        .await,
    );
    let mut tasks = Vec::new();
    for n in 0..10 {
        let ins = ins.clone();
        tasks.push(tokio::spawn(async move {
            ins.invoke(hook("test.ping", json!({"n": n})))
                .await
                .unwrap()
                .value
        }));
    }
    for (n, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), json!(n));
    }
    assert!(
        ins.warm_isolates() <= 2,
        "pool is bounded by pool_isolates_max"
    );
}

#[tokio::test]
async fn typescript_stack_traces_point_into_the_original_source() {
    // Types and blank lines that stripping removes would shift every line.
    let ts = "import { hook } from 'extensor:sdk';\n\ninterface A {\n  n: number;\n}\n\ntype B = A & { m: string };\n\nfunction fail(a: A): never {\n  throw new Error('ts fail ' + a.n);\n}\nhook('test.ping', (e: A) => fail(e));\n";
    let b = Bundle::new()
        .with_file("manifest.json", manifest(json!({"entry": "main.ts"})))
        .with_file("main.ts", ts);
    let plugin = sandbox().validate(&b).await.unwrap();
    let ins = sandbox().install(plugin, scope("ins1"), HostServices::default());
    match ins.invoke(ping()).await.unwrap_err() {
        JsError::Thrown { stack, .. } => assert!(stack.contains("main.ts:10:"), "{stack}"),
        other => panic!("expected Thrown, got {other:?}"),
    }
}

/// What docs/PLUGINS.md ("JS engines") says differs, and what does not.
#[tokio::test]
async fn language_surface_is_as_documented() {
    let code = "import { hook } from 'extensor:sdk';
      hook('test.ping', () => ({
        temporal: typeof Temporal,
        timers: [typeof setTimeout, typeof setInterval],
        embedding: [typeof process, typeof require, typeof Deno],
        microtask: typeof queueMicrotask,
        modern: [typeof Array.fromAsync, typeof Set.prototype.union, typeof Iterator],
        wasm: typeof WebAssembly,
        intl: typeof Intl === 'object' && new Intl.NumberFormat('de-DE').format(1234.5),
      }));";
    let ins = install(json!({}), code, HostServices::default()).await;
    let v = ins.invoke(ping()).await.unwrap().value;
    assert_eq!(v["temporal"], json!("undefined"), "{v}");
    assert_eq!(v["timers"], json!(["undefined", "undefined"]), "{v}");
    assert_eq!(v["embedding"], json!(["undefined", "undefined", "undefined"]), "{v}");
    if engine() == JsEngine::V8 {
        assert_eq!(v["microtask"], json!("function"), "{v}");
        assert_eq!(v["modern"], json!(["function", "function", "function"]), "{v}");
        assert_eq!(v["wasm"], json!("object"), "{v}");
        assert_eq!(v["intl"], json!("1.234,5"), "{v}");
    }
}


/// Memory a handler allocates and frees inside one call shows in the pool's
/// peak, though the isolate holds little of it once the call is over.
#[tokio::test]
async fn the_heap_peak_counts_what_one_call_allocated_and_freed() {
    const MIB: usize = 1 << 20;
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk';
         hook('test.ping', (e) => {
           let held = [];
           for (let i = 0; i < e.mib; i++) held.push(new Uint8Array(1 << 20).fill(i + 1));
           const n = held.length;
           held = null;
           return n;
         });",
        HostServices::default(),
    )
    .await;
    let call = |mib: usize| hook("test.ping", json!({ "mib": mib }));
    assert_eq!(ins.invoke(call(0)).await.unwrap().value, json!(0));
    let quiet = ins.heap_peak_bytes();
    assert!(quiet >= ins.warm_heap_bytes() && quiet < 6 * MIB, "{quiet} bytes after a quiet call");
    assert_eq!(ins.invoke(call(8)).await.unwrap().value, json!(8));
    let peak = ins.heap_peak_bytes();
    assert!(peak >= 8 * MIB, "peak {peak} bytes after 8 MiB held in the call");
    assert!(peak >= ins.warm_heap_bytes());
    if engine() == JsEngine::QuickJs {
        // Reference counting freed the buffers before the call returned:
        // only the in-call peak saw them.
        let held = ins.warm_heap_bytes();
        assert!(held < 2 * MIB, "{held} bytes held after the call");
    }
}

}
