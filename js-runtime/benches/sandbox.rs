//! JS sandbox benchmarks: `cargo bench -p extensor-js` (add `--features v8`
//! for V8 beside QuickJS; every engine the build has runs in the same run).
//!
//! Prints median and p99 per measurement plus same-run baselines (an empty
//! tokio spawn, and a host → thread → host channel round trip, which is the
//! floor for any design that runs JS on its own threads). `BENCH_SCALE`
//! (default 1.0) scales iteration counts, for short runs on shared machines.
//! `BENCH_ENGINES=v8` (or `quickjs`) runs one engine only, for profiling
//! (`perf record` of one engine's path).

use std::sync::Arc;
use std::time::{Duration, Instant};

use extensor_js::host::{InstallationScope, SecretStore};
use extensor_js::{
    Bundle, HostServices, Installation, Invocation, JsEngine, JsError, Sandbox, SandboxConfig,
    Trigger, ValidatedPlugin,
};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde_json::json;

const WARMUP: usize = 200;

const PLUGIN: &str = "import { hook } from 'extensor:sdk';
function score(e) { return (e.n * 31 + 7) % 1000; }
hook('bench.ping', (event, ctx) => ({ ok: true, score: score(event) }));
hook('bench.secret', async (event, ctx) => (await ctx.secrets.get('k')).length);
// The CPU-heavy transform: reshape a JSON payload (parse, filter, map,
// group, re-serialise), as a webhook transform would, `rounds` times.
hook('bench.transform', (event) => {
  let bytes = 0;
  for (let r = 0; r < event.rounds; r++) {
    const orders = JSON.parse(event.payload);
    const byCustomer = {};
    for (const o of orders.filter((o) => o.status !== 'cancelled')) {
      const c = byCustomer[o.customer] || (byCustomer[o.customer] = { customer: o.customer, total: 0, items: [] });
      c.total += o.lines.reduce((s, l) => s + l.qty * l.price, 0);
      c.items.push(...o.lines.map((l) => ({ sku: l.sku.toUpperCase(), qty: l.qty })));
    }
    bytes += JSON.stringify(Object.values(byCustomer).sort((a, b) => b.total - a.total)).length;
  }
  return bytes;
});";

fn manifest() -> String {
    json!({"slug": "bench", "name": "Bench", "version": "1.0.0", "entry": "main.js", "events": ["bench.ping", "bench.secret", "bench.transform"], "permissions": ["secrets.read"]}).to_string()
}

/// About 100 KiB of orders as JSON text.
fn payload() -> String {
    let mut orders = Vec::new();
    let mut n = 0u64;
    while serde_json::to_string(&orders).expect("json").len() < 100 * 1024 {
        let status = ["paid", "shipped", "cancelled", "paid"][(n % 4) as usize];
        orders.push(json!({
            "id": format!("ord_{n:06}"),
            "customer": format!("cus_{:03}", n % 97),
            "status": status,
            "lines": (0..3).map(|l| json!({"sku": format!("sku-{}-{l}", n % 13), "qty": 1 + (n + l) % 5, "price": 9.5 + (l as f64)})).collect::<Vec<_>>(),
        }));
        n += 1;
    }
    serde_json::to_string(&orders).expect("json")
}

/// Iterations scaled by `BENCH_SCALE`.
fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(10)
}

struct OneSecret;
impl SecretStore for OneSecret {
    fn get<'a>(
        &'a self,
        _s: &'a InstallationScope,
        _k: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>> {
        Box::pin(async { Ok(Some("value".into())) })
    }
}

fn hist() -> Histogram<u64> {
    Histogram::new(3).expect("histogram")
}

fn report(name: &str, h: &Histogram<u64>) {
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "| {name} | {:.1} µs | {:.1} µs | {} |",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        h.len()
    );
}

fn ping(n: u64, event: &str) -> Invocation {
    Invocation {
        id: format!("inv_{n}"),
        trigger: Trigger::Hook {
            event_type: event.into(),
        },
        input: json!({"n": n}),
        event_id: None,
        chain_depth: 0,
    }
}

fn scope(i: usize) -> InstallationScope {
    InstallationScope {
        tenant_id: "ten".into(),
        installation_id: format!("ins{i}"),
    }
}

async fn baselines(iterations: usize) {
    let mut h = hist();
    for _ in 0..iterations {
        let t = Instant::now();
        tokio::spawn(async {}).await.expect("spawn");
        h.record(t.elapsed().as_nanos() as u64).ok();
    }
    report("baseline: empty tokio spawn + await", &h);
    let (tx, rx) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<u64>>();
    let worker = std::thread::spawn(move || {
        while let Ok(reply) = rx.recv() {
            let _ = reply.send(1);
        }
    });
    let mut h = hist();
    for _ in 0..iterations {
        let t = Instant::now();
        let (otx, orx) = tokio::sync::oneshot::channel();
        tx.send(otx).expect("send");
        orx.await.expect("reply");
        h.record(t.elapsed().as_nanos() as u64).ok();
    }
    report("baseline: host → thread → host channel round trip", &h);
    drop(tx);
    worker.join().expect("join");
}

/// What a cold start cannot avoid: a thread, and a QuickJS runtime plus a
/// full context (all intrinsics), measured without any Extensor code.
fn cold_start_floor(iterations: usize) {
    let mut h = hist();
    for _ in 0..iterations {
        let t = Instant::now();
        std::thread::spawn(|| {}).join().expect("join");
        h.record(t.elapsed().as_nanos() as u64).ok();
    }
    report("floor: spawn + join an empty thread", &h);
    let mut h = hist();
    for _ in 0..iterations {
        let t = Instant::now();
        let rt = rquickjs::Runtime::new().expect("runtime");
        let ctx = rquickjs::Context::full(&rt).expect("context");
        h.record(t.elapsed().as_nanos() as u64).ok();
        drop(ctx);
        drop(rt);
    }
    report("floor: QuickJS Runtime::new + Context::full", &h);
}

/// deno_core's bare runtime (its own bootstrap, no snapshot of ours) plus
/// a first script, inside a tokio context as it requires. Run after the
/// engines, so V8 is initialised the way the sandbox does it.
#[cfg(feature = "v8")]
fn v8_floor(iterations: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _enter = rt.enter();
    let mut h = hist();
    for _ in 0..iterations {
        let t = Instant::now();
        let mut js = deno_core::JsRuntime::new(deno_core::RuntimeOptions::default());
        js.execute_script("floor", "1 + 1").expect("script");
        h.record(t.elapsed().as_nanos() as u64).ok();
        drop(js);
    }
    report(
        "floor: V8 deno_core JsRuntime::new (no snapshot) + first script",
        &h,
    );
}

/// How the cold starts of a run find V8's spare isolates.
#[derive(Clone, Copy, PartialEq)]
enum SpareUse {
    /// The sandbox keeps none: every isolate is made on demand.
    Off,
    /// Before each start (untimed) the spare is made: installations that
    /// arrive one at a time.
    Ready,
    /// Starts back to back: a burst, where each start finds the spare its
    /// predecessor's replacement, still being made.
    Burst,
}

async fn cold_start(
    sandbox: &Sandbox,
    plugin: &Arc<ValidatedPlugin>,
    iterations: usize,
    spares: SpareUse,
) {
    let mut h = hist();
    let used = sandbox.spare_isolates_used();
    for i in 0..iterations {
        let ins = sandbox.install(plugin.clone(), scope(i), HostServices::default());
        if spares == SpareUse::Ready {
            sandbox.make_spares().await;
        }
        let t = Instant::now();
        ins.prewarm(1).await.expect("prewarm");
        h.record(t.elapsed().as_nanos() as u64).ok();
    }
    let label = match spares {
        SpareUse::Off => "isolate cold start (thread + runtime + evaluate bundle)",
        SpareUse::Ready => "isolate cold start from a ready spare (evaluate bundle)",
        SpareUse::Burst => "isolate cold starts back to back (spares still being made)",
    };
    let from_spares = sandbox.spare_isolates_used() - used;
    report(&format!("{label}; {from_spares} from spares"), &h);
}

/// What keeping spares costs: the process's resident memory before and
/// after making `count` of them (V8 only), per spare.
#[cfg(target_os = "linux")]
async fn spare_memory(engine: JsEngine, count: usize) {
    let rss = || {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: usize = statm
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("rss");
        pages * 4096
    };
    let sandbox = Sandbox::new(SandboxConfig {
        engine,
        spare_isolates: count,
        ..SandboxConfig::default()
    });
    let before = rss();
    sandbox.make_spares().await;
    let after = rss();
    println!(
        "resident memory per spare isolate ({count} made, a thread and a heap each): {:.0} KiB",
        after.saturating_sub(before) as f64 / count as f64 / 1024.0
    );
}

async fn transform(ins: &Installation, rounds: u32, iterations: usize) {
    let input = json!({"rounds": rounds, "payload": payload()});
    let inv = |n: u64| Invocation {
        input: input.clone(),
        ..ping(n, "bench.transform")
    };
    for i in 0..10 {
        ins.invoke(inv(i)).await.expect("warmup");
    }
    let mut h = hist();
    for i in 0..iterations {
        let t = Instant::now();
        let out = ins.invoke(inv(i as u64)).await.expect("transform");
        h.record(t.elapsed().as_nanos() as u64).ok();
        std::hint::black_box(out);
    }
    report(
        &format!("transform: reshape a 100 KiB JSON payload {rounds}× per hook (round trip)"),
        &h,
    );
}

async fn warm(ins: &Installation, event: &str, label: &str, iterations: usize) {
    for i in 0..WARMUP {
        ins.invoke(ping(i as u64, event)).await.expect("warmup");
    }
    let mut h = hist();
    for i in 0..iterations {
        let t = Instant::now();
        let out = ins.invoke(ping(i as u64, event)).await.expect("invoke");
        h.record(t.elapsed().as_nanos() as u64).ok();
        std::hint::black_box(out);
    }
    report(label, &h);
}

async fn throughput(ins: &Installation) {
    let window = Duration::from_secs(2);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < window {
        ins.invoke(ping(n, "bench.ping")).await.expect("invoke");
        n += 1;
    }
    let per_sec = n as f64 / started.elapsed().as_secs_f64();
    println!("\nhooks per second, one installation, sequential (one JS thread busy): {per_sec:.0}");
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| measurement | median | p99 | samples |\n|---|---|---|---|");
    rt.block_on(baselines(scaled(20_000)));
    cold_start_floor(scaled(500));
    let only = std::env::var("BENCH_ENGINES").unwrap_or_default();
    for &engine in JsEngine::available().iter().rev() {
        if only.is_empty() || only.split(',').any(|e| e.trim() == engine.as_str()) {
            rt.block_on(engine_run(engine));
        }
    }
    #[cfg(feature = "v8")]
    v8_floor(scaled(200));
}

async fn engine_run(engine: JsEngine) {
    println!("| **{}** | | | |", engine.as_str());
    let sandbox = Sandbox::new(SandboxConfig {
        engine,
        ..SandboxConfig::default()
    });
    let bundle = Bundle::new()
        .with_file("manifest.json", manifest())
        .with_file("main.js", PLUGIN);
    let t = Instant::now();
    let plugin = sandbox.validate(&bundle).await.expect("validate");
    println!(
        "| first validate in the process (V8: includes making the start-up snapshot) | {:.1} ms | | 1 |",
        t.elapsed().as_secs_f64() * 1000.0
    );
    if engine == JsEngine::V8 {
        cold_start(&sandbox, &plugin, scaled(500), SpareUse::Ready).await;
        cold_start(&sandbox, &plugin, scaled(500), SpareUse::Burst).await;
        #[cfg(target_os = "linux")]
        spare_memory(engine, 8).await;
    }
    let unspared = Sandbox::new(SandboxConfig {
        engine,
        spare_isolates: 0,
        ..SandboxConfig::default()
    });
    cold_start(&unspared, &plugin, scaled(500), SpareUse::Off).await;
    let fresh = sandbox.install(plugin.clone(), scope(1), HostServices::default());
    fresh.prewarm(1).await.expect("prewarm");
    for bytes in fresh.isolate_memory_bytes().await {
        println!(
            "fresh {} isolate heap (bundle loaded, no hook run yet): {:.0} KiB",
            engine.as_str(),
            bytes as f64 / 1024.0
        );
    }
    let services = HostServices {
        secrets: Some(Arc::new(OneSecret)),
        ..HostServices::default()
    };
    let ins = sandbox.install(plugin.clone(), scope(0), services);
    warm(
        &ins,
        "bench.ping",
        "warm hook round trip host → JS → host",
        scaled(20_000),
    )
    .await;
    warm(
        &ins,
        "bench.secret",
        "warm hook with one async host call (ctx.secrets.get)",
        scaled(10_000),
    )
    .await;
    let mem = ins.isolate_memory_bytes().await;
    for (i, bytes) in mem.iter().enumerate() {
        println!(
            "warm {} isolate {i} heap after the hooks above: {:.0} KiB",
            engine.as_str(),
            *bytes as f64 / 1024.0
        );
    }
    transform(&ins, 1, scaled(200)).await;
    transform(&ins, 20, scaled(40)).await;
    throughput(&ins).await;
    println!();
}
