//! Spare isolates (V8 isolates made before an installation needs them):
//! an isolate that starts from one is the installation's own, under the
//! installation's limits, and a spare never serves two installations.

#[cfg(feature = "v8")]
use extensor_js::JsError;
use extensor_js::{HostServices, JsEngine, Sandbox, SandboxConfig};
use serde_json::json;

use crate::support::*;

const PROBE: &str = "import { hook } from 'extensor:sdk';
    globalThis.seen = globalThis.seen ?? [];
    function endless(n) { return endless(n + 1) + 1; }
    hook('test.ping', (e) => {
        if (e.n === -1) return endless(0);
        if (e.n === -2) { while (true) {} }
        if (e.n === -3) { const a = []; while (true) a.push('x'.repeat(100000) + Math.random()); }
        globalThis.seen.push(e.n);
        return globalThis.seen;
    });";

fn v8_sandbox(spare_isolates: usize) -> Sandbox {
    use_engine(JsEngine::V8);
    Sandbox::new(SandboxConfig {
        spare_isolates,
        ..config()
    })
}

#[cfg(feature = "v8")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_installation_starts_on_a_spare_which_is_then_replaced() {
    let sandbox = v8_sandbox(1);
    assert_eq!(sandbox.spare_isolates(), 0, "spares are made lazily");
    sandbox.make_spares().await;
    assert_eq!(
        (sandbox.spare_isolates(), sandbox.spare_isolates_used()),
        (1, 0)
    );
    assert_eq!(
        sandbox.isolates_alive(),
        0,
        "a spare is not an installation's isolate"
    );
    // Validation's isolate takes the spare; a new one is made for the next.
    let plugin = sandbox.validate(&bundle(json!({}), PROBE)).await.unwrap();
    assert_eq!(sandbox.spare_isolates_used(), 1);
    sandbox.make_spares().await;
    assert_eq!(sandbox.spare_isolates(), 1);
    let a = sandbox.install(plugin.clone(), scope("a"), HostServices::default());
    assert_eq!(
        a.invoke(hook("test.ping", json!({"n": 1})))
            .await
            .unwrap()
            .value,
        json!([1])
    );
    assert_eq!(sandbox.spare_isolates_used(), 2);
    // The next installation's spare is fresh: nothing of `a` is in it.
    sandbox.make_spares().await;
    let b = sandbox.install(plugin, scope("b"), HostServices::default());
    assert_eq!(
        b.invoke(hook("test.ping", json!({"n": 2})))
            .await
            .unwrap()
            .value,
        json!([2])
    );
    assert_eq!(
        a.invoke(hook("test.ping", json!({"n": 3})))
            .await
            .unwrap()
            .value,
        json!([1, 3])
    );
    assert_eq!(sandbox.spare_isolates_used(), 3);
    assert_eq!(sandbox.isolates_started(), 3);
}

#[cfg(feature = "v8")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolate_from_a_spare_keeps_every_limit_of_its_installation() {
    let sandbox = v8_sandbox(1);
    let plugin = sandbox
        .validate(&bundle(json!({"limits": {"stack_kb": 128}}), PROBE))
        .await
        .unwrap();
    let ins = sandbox.install(plugin, scope("limited"), HostServices::default());
    let on_a_spare = |before: u64| {
        let used = sandbox.spare_isolates_used();
        assert_eq!(used, before + 1, "the isolate did not start from a spare");
        used
    };
    // The manifest's own stack limit, set on the spare's thread at assignment.
    sandbox.make_spares().await;
    let used = sandbox.spare_isolates_used();
    let err = ins
        .invoke(hook("test.ping", json!({"n": -1})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        JsError::StackOverflow {
            limit_bytes: 128 * 1024
        }
    );
    let used = on_a_spare(used);
    // The deadline: the watchdog terminates the spare-made isolate.
    sandbox.make_spares().await;
    let err = ins
        .invoke(hook("test.ping", json!({"n": -2})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        JsError::Timeout {
            deadline_ms: DEADLINE_MS_TEST
        }
    );
    let used = on_a_spare(used);
    // The heap: the platform's limit, which the spare was made with.
    sandbox.make_spares().await;
    let err = ins
        .invoke(hook("test.ping", json!({"n": -3})))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            JsError::HeapLimit {
                limit_bytes: HEAP_BYTES_TEST
            } | JsError::Timeout { .. }
        ),
        "{err:?}"
    );
    let used = on_a_spare(used);
    // Each of those isolates was discarded; the next one still works.
    sandbox.make_spares().await;
    assert_eq!(ins.invoke(ping()).await.unwrap().value, json!([1]));
    on_a_spare(used);
}

#[cfg(feature = "v8")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tighter_heap_limit_starts_an_isolate_of_its_own() {
    // V8 fixes a heap limit when it makes the isolate: a spare made with
    // the platform's 32 MiB cannot hold a plugin to 16.
    let sandbox = v8_sandbox(1);
    sandbox.make_spares().await;
    let plugin = sandbox
        .validate(&bundle(json!({"limits": {"memory_mb": 16}}), PROBE))
        .await
        .unwrap();
    let ins = sandbox.install(plugin, scope("small"), HostServices::default());
    let err = ins
        .invoke(hook("test.ping", json!({"n": -3})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JsError::HeapLimit { limit_bytes } if limit_bytes == 16 * 1024 * 1024)
            || matches!(err, JsError::Timeout { .. }),
        "{err:?}"
    );
    assert_eq!(sandbox.spare_isolates_used(), 0);
    assert_eq!(sandbox.spare_isolates(), 1, "the spare still waits");
    assert_eq!(sandbox.isolates_started(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spares_on_quickjs_or_when_turned_off() {
    let quickjs = {
        use_engine(JsEngine::QuickJs);
        Sandbox::new(SandboxConfig {
            spare_isolates: 4,
            ..config()
        })
    };
    quickjs.make_spares().await;
    let plugin = quickjs.validate(&bundle(json!({}), PROBE)).await.unwrap();
    let ins = quickjs.install(plugin, scope("q"), HostServices::default());
    assert_eq!(ins.invoke(ping()).await.unwrap().value, json!([1]));
    assert_eq!(
        (quickjs.spare_isolates(), quickjs.spare_isolates_used()),
        (0, 0)
    );
    if cfg!(feature = "v8") {
        let off = v8_sandbox(0);
        off.make_spares().await;
        let plugin = off.validate(&bundle(json!({}), PROBE)).await.unwrap();
        let ins = off.install(plugin, scope("v"), HostServices::default());
        assert_eq!(ins.invoke(ping()).await.unwrap().value, json!([1]));
        assert_eq!((off.spare_isolates(), off.spare_isolates_used()), (0, 0));
    }
}
