//! JS sandbox benchmarks: `cargo bench -p extensor-js`.
//!
//! Prints median and p99 per measurement plus same-run baselines (an empty
//! tokio spawn, and a host → thread → host channel round trip, which is the
//! floor for any design that runs JS on its own threads).

use std::sync::Arc;
use std::time::{Duration, Instant};

use extensor_js::host::{InstallationScope, SecretStore};
use extensor_js::{
    Bundle, HostServices, Installation, Invocation, JsError, Sandbox, SandboxConfig, Trigger,
    ValidatedPlugin,
};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde_json::json;

const WARMUP: usize = 200;

const PLUGIN: &str = "import { hook } from 'extensor:sdk';
function score(e) { return (e.n * 31 + 7) % 1000; }
hook('bench.ping', (event, ctx) => ({ ok: true, score: score(event) }));
hook('bench.secret', async (event, ctx) => (await ctx.secrets.get('k')).length);";

fn manifest() -> String {
    json!({"slug": "bench", "name": "Bench", "version": "1.0.0", "entry": "main.js", "events": ["bench.ping", "bench.secret"], "permissions": ["secrets.read"]}).to_string()
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

async fn cold_start(sandbox: &Sandbox, plugin: &Arc<ValidatedPlugin>, iterations: usize) {
    let mut h = hist();
    for i in 0..iterations {
        let ins = sandbox.install(plugin.clone(), scope(i), HostServices::default());
        let t = Instant::now();
        ins.prewarm(1).await.expect("prewarm");
        h.record(t.elapsed().as_nanos() as u64).ok();
    }
    report(
        "isolate cold start (thread + runtime + evaluate bundle)",
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
    rt.block_on(async {
        let sandbox = Sandbox::new(SandboxConfig::default());
        let bundle = Bundle::new()
            .with_file("manifest.json", manifest())
            .with_file("main.js", PLUGIN);
        let plugin = sandbox.validate(&bundle).await.expect("validate");
        println!("| measurement | median | p99 | samples |\n|---|---|---|---|");
        baselines(20_000).await;
        cold_start_floor(500);
        cold_start(&sandbox, &plugin, 500).await;
        let services = HostServices {
            secrets: Some(Arc::new(OneSecret)),
            ..HostServices::default()
        };
        let ins = sandbox.install(plugin.clone(), scope(0), services);
        warm(
            &ins,
            "bench.ping",
            "warm hook round trip host → JS → host",
            20_000,
        )
        .await;
        warm(
            &ins,
            "bench.secret",
            "warm hook with one async host call (ctx.secrets.get)",
            10_000,
        )
        .await;
        throughput(&ins).await;
        let mem = ins.isolate_memory_bytes().await;
        for (i, bytes) in mem.iter().enumerate() {
            println!(
                "warm isolate {i} heap (QuickJS malloc_size): {:.0} KiB",
                *bytes as f64 / 1024.0
            );
        }
    });
}
