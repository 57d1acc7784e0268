//! Append burst benchmark: `cargo bench -p extensor-core --bench burst`.
//!
//! The shape of a cron minute on the store: `EXTENSOR_BENCH_STREAMS`
//! (default 10,000) streams that already exist each get one small append
//! (a `job.run_started`-sized event at the stream's next revision), all
//! issued at the same instant by their own task. Measured per round: time
//! from the instant to each acknowledgement (p50, p99, max: the last one is
//! when the whole burst is durable), and the groups the writer committed.
//! `EXTENSOR_BENCH_ROUNDS` (default 5) rounds follow each other.
//!
//! Same-run baseline: the same number of tasks spawned at one instant that
//! each only build their event and answer at once (the cost of the tasks
//! and the event construction, without the store).

use std::sync::Arc;
use std::time::Instant;

use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::{RunId, TenantId};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision};
use hdrhistogram::Histogram;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(meta: &EventMeta) -> NewEvent {
    let payload = serde_json::json!({
        "run_id": RunId::generate(),
        "started_at": chrono::Utc::now(),
    });
    NewEvent::new("job.run_started", 1, meta.clone(), &payload).expect("event")
}

fn row(name: &str, h: &Histogram<u64>, extra: &str) {
    println!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {extra} |",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
}

/// One burst: every stream appended to once, all at once; µs from the
/// start to each acknowledgement.
async fn burst(
    store: &Arc<SqliteStore>,
    streams: &Arc<Vec<StreamId>>,
    meta: &EventMeta,
    revision: u64,
) -> Histogram<u64> {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..streams.len())
        .map(|i| {
            let (store, streams, meta) = (store.clone(), streams.clone(), meta.clone());
            tokio::spawn(async move {
                let expected = ExpectedRevision::Exact(revision);
                store
                    .append(streams[i].clone(), expected, vec![event(&meta)])
                    .await
                    .expect("append");
                t0.elapsed().as_micros() as u64
            })
        })
        .collect();
    let mut h = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        h.record(t.await.unwrap()).unwrap();
    }
    h
}

/// The baseline: the same tasks building the same events, no store.
async fn tasks_only(n: usize, meta: &EventMeta) -> Histogram<u64> {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let meta = meta.clone();
            tokio::spawn(async move {
                std::hint::black_box(event(&meta));
                t0.elapsed().as_micros() as u64
            })
        })
        .collect();
    let mut h = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        h.record(t.await.unwrap()).unwrap();
    }
    h
}

#[tokio::main]
async fn main() {
    let n = env_num("EXTENSOR_BENCH_STREAMS", 10_000) as usize;
    let rounds = env_num("EXTENSOR_BENCH_ROUNDS", 5);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).expect("open"),
    );
    let meta = EventMeta::new(Some(TenantId::generate()), Principal::system());
    let streams: Arc<Vec<StreamId>> = Arc::new(
        (0..n)
            .map(|i| StreamId::new("job", &format!("ins_{i:05}-job{}", i % 10)).unwrap())
            .collect(),
    );
    // Every stream exists (its claim), as a job stream does before it fires.
    for chunk in streams.chunks(512) {
        let appends = chunk
            .iter()
            .map(|s| store.append(s.clone(), ExpectedRevision::NoStream, vec![event(&meta)]));
        for r in futures::future::join_all(appends).await {
            r.expect("create");
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "append burst: {n} streams, {rounds} rounds; load average {}",
        load.trim()
    );
    println!("\n| burst | acks | p50 ms | p99 ms | max ms | groups |");
    println!("|---|---|---|---|---|---|");
    row(
        "baseline: tasks building the event, no store",
        &tasks_only(n, &meta).await,
        "-",
    );
    let mut all = Histogram::<u64>::new(3).unwrap();
    for r in 0..rounds {
        let groups0 = store
            .writer_stats()
            .groups
            .load(std::sync::atomic::Ordering::Relaxed);
        let h = burst(&store, &streams, &meta, r).await;
        let groups = store
            .writer_stats()
            .groups
            .load(std::sync::atomic::Ordering::Relaxed)
            - groups0;
        row(
            &format!("round {r}: one append per stream"),
            &h,
            &groups.to_string(),
        );
        all.add(&h).unwrap();
    }
    row("all rounds", &all, "-");
}
