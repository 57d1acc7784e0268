//! Trust boundaries the engine enforces before and after plugin code runs:
//! anonymous callers start nothing, route answers follow the header
//! policy, warm isolates are capped in bytes process-wide (and their
//! in-call heap peak is measured), and isolates start from the spare V8
//! isolates the engine makes at boot.

use extensor_actors::Error;
use extensor_actors::engine::{RouteRequest, WarmPool};
use extensor_core::ids::InstallationId;
use extensor_core::role::Role;
use extensor_js::JsError;
use serde_json::json;

use crate::support::*;

fn req(method: &str, path: &str, caller: Option<Role>) -> RouteRequest {
    RouteRequest {
        method: method.into(),
        path: path.into(),
        caller,
        ..RouteRequest::default()
    }
}

/// An anonymous request to anything but a declared public route is refused
/// from the manifest alone: the sandbox's isolate counter does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_to_private_routes_start_no_isolate() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let js = "import { route } from 'extensor:sdk';
        route('GET', '/private/:id', () => 'members');
        route('GET', '/open', () => 'hello');";
    let manifest = json!({
        "permissions": ["routes.public"],
        "routes": [
            {"method": "GET", "path": "/private/:id"},
            {"method": "GET", "path": "/open", "public": true},
        ]
    });
    install(&engine, &tenant, plugin("shop", "1.0.0", manifest, js)).await;
    let before = engine.sandbox().isolates_started();
    for (method, path) in [
        ("GET", "/private/1"),
        ("GET", "/nope"),
        ("POST", "/open"),
        ("GET", "/open/extra"),
    ] {
        let err = engine
            .route(&tenant, "shop", req(method, path, None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Unauthenticated { .. }),
            "{method} {path}: {err}"
        );
    }
    assert_eq!(engine.sandbox().isolates_started(), before);
    assert!(engine.warm_pools().is_empty(), "no pool was built");
    // The marker moves when an isolate does start: the public route runs.
    let r = engine
        .route(&tenant, "shop", req("GET", "/open", None))
        .await
        .unwrap();
    assert_eq!(r.body, json!("hello"));
    assert!(engine.sandbox().isolates_started() > before);
}

/// The engine makes its spare V8 isolate at boot, so an installation's
/// isolates (validation's and its pool's) start from spares, not from V8's
/// snapshot on the request's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolates_start_from_the_spares_made_at_boot() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), open_store(dir.path()));
    c.sandbox.engine = extensor_js::JsEngine::V8;
    let engine = extensor_actors::engine::Engine::start(c).await.unwrap();
    let sandbox = engine.sandbox();
    assert_eq!(sandbox.spare_isolates(), 1, "the spare is made during boot");
    assert_eq!(sandbox.spare_isolates_used(), 0);
    let tenant = new_tenant(&engine, "acme").await;
    let js = "import { route } from 'extensor:sdk'; route('GET', '/hi', () => 'hi');";
    let manifest = json!({"routes": [{"method": "GET", "path": "/hi"}]});
    install(&engine, &tenant, plugin("hi", "1.0.0", manifest, js)).await;
    let r = engine
        .route(&tenant, "hi", req("GET", "/hi", Some(Role::Viewer)))
        .await
        .unwrap();
    assert_eq!(r.body, json!("hi"));
    assert!(sandbox.isolates_started() >= 2, "validation and the pool");
    assert_eq!(
        sandbox.spare_isolates_used(),
        sandbox.isolates_started(),
        "every isolate started from a spare"
    );
}

/// A route answer that breaks the header policy is a plugin failure naming
/// the header; allowed headers pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_answers_follow_the_header_policy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let js = "import { route } from 'extensor:sdk';
        route('POST', '/answer', (req) => req.body);";
    let manifest = json!({"routes": [{"method": "POST", "path": "/answer"}]});
    install(&engine, &tenant, plugin("echo", "1.0.0", manifest, js)).await;
    let answer = |v: serde_json::Value| {
        let mut r = req("POST", "/answer", Some(Role::Viewer));
        r.body = v;
        engine.route(&tenant, "echo", r)
    };
    let ok =
        answer(json!({"status": 302, "headers": {"Location": "/x", "x-trace": "1"}, "body": null}))
            .await
            .unwrap();
    assert_eq!((ok.status, ok.headers["location"].as_str()), (302, "/x"));
    for (value, place) in [
        (
            json!({"status": 200, "headers": {"set-cookie": "sid=1"}, "body": "x"}),
            "headers.set-cookie",
        ),
        (
            json!({"status": 200, "headers": {"Content-Length": "1"}, "body": "x"}),
            "headers.Content-Length",
        ),
        (
            json!({"status": 101, "headers": {"upgrade": "websocket"}, "body": null}),
            "status",
        ),
    ] {
        let err = answer(value.clone()).await.unwrap_err();
        match &err {
            Error::Plugin {
                source: JsError::InvalidResult { reason },
                ..
            } => {
                assert!(reason.contains(place), "{value}: {reason}");
            }
            other => panic!("{value}: {other}"),
        }
    }
}

/// The pool's peak (the `extensor_isolate_heap_peak_bytes` gauge) counts
/// memory a route allocated and dropped inside one call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heap_peak_gauge_counts_memory_freed_within_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let js = "import { route } from 'extensor:sdk';
        route('GET', '/burst', () => {
          let held = [];
          for (let i = 0; i < 8; i++) held.push(new Uint8Array(1 << 20).fill(i + 1));
          held = null;
          return 'done';
        });";
    let manifest = json!({"routes": [{"method": "GET", "path": "/burst"}]});
    install(&engine, &tenant, plugin("burst", "1.0.0", manifest, js)).await;
    let r = engine
        .route(&tenant, "burst", req("GET", "/burst", Some(Role::Viewer)))
        .await
        .unwrap();
    assert_eq!(r.body, json!("done"));
    let pools = engine.warm_pools();
    let pool = &pools[0];
    assert!(pool.heap_peak_bytes >= 8 << 20, "{pool:?}");
    assert!(pool.heap_peak_bytes >= pool.heap_bytes, "{pool:?}");
}

const FILL: &str = "import { route } from 'extensor:sdk';
    const keep = [];
    route('GET', '/fill', () => {
      if (!keep.length) for (let i = 0; i < 6; i++) keep.push(new Uint8Array(1 << 20).fill(i + 1));
      return keep.length;
    });";

/// Warm pools are evicted least recently used first once the warm isolates
/// of all pools hold more than the process cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_isolates_are_capped_in_bytes_least_recently_used_first() {
    // What one filled pool holds depends on the JS engine (V8's isolate
    // adds its own heap to the 6 MiB of buffers; typed arrays, since V8
    // keeps `repeat` results as small ropes), so the cap is set from a
    // measured pool: two fit, three do not.
    let one_pool = {
        let dir = tempfile::tempdir().unwrap();
        let engine =
            extensor_actors::engine::Engine::start(config(dir.path(), open_store(dir.path())))
                .await
                .unwrap();
        let tenant = new_tenant(&engine, "acme").await;
        let manifest = json!({"routes": [{"method": "GET", "path": "/fill"}]});
        install(&engine, &tenant, plugin("p0", "1.0.0", manifest, FILL)).await;
        engine
            .route(&tenant, "p0", req("GET", "/fill", Some(Role::Viewer)))
            .await
            .unwrap();
        engine.warm_pools()[0].heap_bytes
    };
    let cap_bytes = one_pool * 5 / 2;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), open_store(dir.path()));
    c.warm_isolates_bytes_max = cap_bytes;
    let engine = extensor_actors::engine::Engine::start(c).await.unwrap();
    let tenant = new_tenant(&engine, "acme").await;
    let manifest = json!({"routes": [{"method": "GET", "path": "/fill"}]});
    let mut ids: Vec<InstallationId> = Vec::new();
    for slug in ["p1", "p2", "p3"] {
        ids.push(
            install(
                &engine,
                &tenant,
                plugin(slug, "1.0.0", manifest.clone(), FILL),
            )
            .await,
        );
    }
    let fill =
        |slug: &'static str| engine.route(&tenant, slug, req("GET", "/fill", Some(Role::Viewer)));
    let order = |pools: &[WarmPool]| -> Vec<InstallationId> {
        pools.iter().map(|p| p.installation_id.clone()).collect()
    };
    let within_cap = |pools: &[WarmPool]| {
        let total: usize = pools.iter().map(|p| p.heap_bytes).sum();
        assert!(total <= cap_bytes, "{total} bytes warm: {pools:?}");
    };
    fill("p1").await.unwrap();
    fill("p2").await.unwrap();
    let pools = engine.warm_pools();
    assert_eq!(order(&pools), [ids[0].clone(), ids[1].clone()]);
    assert!(pools.iter().all(|p| p.heap_bytes > 6 << 20), "{pools:?}");
    // A third pool would pass the cap: the least recently used (p1) goes.
    fill("p3").await.unwrap();
    let pools = engine.warm_pools();
    within_cap(&pools);
    assert_eq!(order(&pools), [ids[1].clone(), ids[2].clone()]);
    // Using p2 makes p3 the oldest; p1 comes back and p3 goes.
    fill("p2").await.unwrap();
    fill("p1").await.unwrap();
    let pools = engine.warm_pools();
    within_cap(&pools);
    assert_eq!(order(&pools), [ids[1].clone(), ids[0].clone()]);
}
