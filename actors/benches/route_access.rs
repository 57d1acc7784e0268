//! The route-access counter on the request path:
//! `cargo bench -p extensor-actors --bench route_access`.
//!
//! What one plugin route request pays to be counted for `route.accessed`:
//! `RouteAccess::record` on a route already known (the shard's read lock,
//! the route's atomics), timed in batches of `BATCH` calls, per call, on 1
//! and on 2 threads hammering the same tenant and route (the worst case
//! for contention: one shard, one cell).
//!
//! Same-run baselines: one `AtomicU64::fetch_add` (the floor of any
//! counter), and what every invocation already pays for the per-plugin
//! stats of `GET /api/plugins/metrics` (an HDR histogram behind a mutex).
//!
//! `EXTENSOR_BENCH_BATCHES` (default 2000) sets the batches per thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use extensor_actors::route_access::{Failed, RouteAccess};
use extensor_core::ids::{InstallationId, TenantId};

/// Calls timed together (one `Instant` pair per batch).
const BATCH: u64 = 1_000;

fn batches() -> u64 {
    std::env::var("EXTENSOR_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `op` on `threads` threads, `batches()` batches each; per-call ns
/// of every batch.
fn measure(threads: usize, op: Arc<dyn Fn() + Send + Sync>) -> hdrhistogram::Histogram<u64> {
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = op.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                start.wait();
                for _ in 0..batches() {
                    let t = Instant::now();
                    for _ in 0..BATCH {
                        op();
                    }
                    let per_call_ps = t.elapsed().as_nanos() as u64 * 1_000 / BATCH;
                    h.record(per_call_ps.max(1)).unwrap();
                }
                h
            })
        })
        .collect();
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for h in handles {
        all.add(h.join().unwrap()).unwrap();
    }
    all
}

fn report(name: &str, threads: usize, h: &hdrhistogram::Histogram<u64>) {
    let ns = |ps: u64| ps as f64 / 1_000.0;
    println!(
        "{name:<34} threads={threads}  median {:>7.1} ns/call  p99 {:>7.1} ns/call",
        ns(h.value_at_quantile(0.5)),
        ns(h.value_at_quantile(0.99)),
    );
}

fn main() {
    let tenant = TenantId::generate();
    let installation = InstallationId::for_slug(&tenant, &"bench".parse().unwrap());
    let access = Arc::new(RouteAccess::default());
    let elapsed = Duration::from_micros(850);
    // The route exists before timing: a request to a known route.
    access.record(
        &tenant,
        &installation,
        "bench",
        "GET /users/:id",
        Failed::No,
        elapsed,
    );
    let counter = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(Mutex::new(
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap(),
    ));
    for threads in [1, 2] {
        let (a, t, i) = (access.clone(), tenant.clone(), installation.clone());
        let record: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            a.record(&t, &i, "bench", "GET /users/:id", Failed::No, elapsed);
        });
        report("RouteAccess::record", threads, &measure(threads, record));
        let c = counter.clone();
        let floor: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        });
        report(
            "baseline: one atomic add",
            threads,
            &measure(threads, floor),
        );
        let s = stats.clone();
        let plugin_stats: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            s.lock().unwrap().saturating_record(850);
        });
        report(
            "baseline: per-plugin stats (mutex)",
            threads,
            &measure(threads, plugin_stats),
        );
    }
    let (_, flushed) = access.take(&tenant, chrono::Utc::now());
    let counted: u64 = flushed.iter().map(|f| f.taken.count).sum();
    println!("counted {counted} accesses (every call, none lost)");
}
