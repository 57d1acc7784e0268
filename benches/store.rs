//! Event store benchmarks: `cargo bench --bench store`.
//!
//! Each figure is printed beside a baseline measured in the same run:
//! - durable appends at 1, 8 and 64 concurrent writers (~500-byte events),
//!   against plain rusqlite committing one fsynced transaction per event
//!   (what the store would do without group commit);
//! - reading the whole log, against a raw rusqlite scan of the same rows
//!   that decodes nothing;
//! - rebuilding one aggregate of 1,000,000 events with and without a snapshot.
//!
//! `EXTENSOR_BENCH_QUICK=1` shrinks every size tenfold for a smoke run.

use std::time::{Duration, Instant};

use extensor_core::aggregate::{self, AsOf, SnapshotPolicy};
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision, ReadFilter};
use extensor_core::tenant::{Tenant, TenantCommand, TenantEvent};
use hdrhistogram::Histogram;

/// How long each append configuration runs.
const APPEND_RUN: Duration = Duration::from_secs(5);
/// Size of the payload string; the envelope adds ids and metadata.
const PAYLOAD_CHARS: usize = 420;

fn quick() -> bool {
    std::env::var("EXTENSOR_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn scaled(n: u64) -> u64 {
    if quick() { n / 10 } else { n }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

fn event(tenant: &TenantId, n: u64) -> NewEvent {
    let payload = serde_json::json!({"n": n, "note": "x".repeat(PAYLOAD_CHARS)});
    NewEvent::new(
        "bench.appended",
        1,
        EventMeta::new(Some(tenant.clone()), Principal::system()),
        &payload,
    )
    .unwrap()
}

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir, OpenMode::CreateIfMissing)).unwrap()
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn append_run(writers: u64) -> (f64, Histogram<u64>, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let tenant = TenantId::generate();
            let stream = StreamId::new("bench", &format!("w{w}")).unwrap();
            let mut hist = Histogram::<u64>::new(3).unwrap();
            let mut n = 0;
            while start.elapsed() < APPEND_RUN {
                let t = Instant::now();
                store
                    .append(
                        stream.clone(),
                        ExpectedRevision::Any,
                        vec![event(&tenant, n)],
                    )
                    .await
                    .unwrap();
                hist.record(t.elapsed().as_nanos() as u64).unwrap();
                n += 1;
            }
            hist
        }));
    }
    let mut total = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        total.add(t.await.unwrap()).unwrap();
    }
    let rate = total.len() as f64 / start.elapsed().as_secs_f64();
    let stats = store.writer_stats();
    let groups = stats
        .groups
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1);
    let group_size =
        stats.appends.load(std::sync::atomic::Ordering::Relaxed) as f64 / groups as f64;
    store.close().await;
    (rate, total, group_size)
}

/// The baseline: one writer, one fsynced transaction per event, no batching.
fn baseline_append() -> (f64, Histogram<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("baseline.sqlite3")).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE e (id INTEGER PRIMARY KEY, s TEXT, payload TEXT)")
        .unwrap();
    let payload = serde_json::json!({"n": 0, "note": "x".repeat(PAYLOAD_CHARS)}).to_string();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let start = Instant::now();
    while start.elapsed() < APPEND_RUN {
        let t = Instant::now();
        conn.execute(
            "INSERT INTO e (s, payload) VALUES ('bench-w0', ?1)",
            [&payload],
        )
        .unwrap();
        hist.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    (hist.len() as f64 / start.elapsed().as_secs_f64(), hist)
}

/// The floor: plain rusqlite, our exact schema and indexes, `rows` events per
/// fsynced transaction, one thread, no hashing, no async, no channels.
fn baseline_batched(rows: u64) -> (f64, Histogram<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(dir.path().join("floor.sqlite3")).unwrap();
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch("PRAGMA synchronous=FULL").unwrap();
    conn.execute_batch(extensor_core::store::sqlite::schema::SCHEMA)
        .unwrap();
    let payload = serde_json::json!({"n": 0, "note": "x".repeat(PAYLOAD_CHARS)}).to_string();
    let tenant = TenantId::generate();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let (mut position, mut events) = (0i64, 0u64);
    let start = Instant::now();
    while start.elapsed() < APPEND_RUN {
        let t = Instant::now();
        let tx = conn.transaction().unwrap();
        for _ in 0..rows {
            position += 1;
            tx.prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3, ?4, 'bench.appended', 1, 0, ?5, 'system', ?6, NULL, ?7, ?8, ?8)")
                .unwrap()
                .execute(rusqlite::params![
                    position,
                    format!("bench-w{}", position % 64),
                    position / 64,
                    extensor_core::ids::EventId::generate().as_str(),
                    tenant.as_str(),
                    extensor_core::ids::CorrelationId::generate().as_str(),
                    payload,
                    &[0u8; 32][..],
                ])
                .unwrap();
        }
        tx.commit().unwrap();
        events += rows;
        hist.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    (events as f64 / start.elapsed().as_secs_f64(), hist)
}

async fn bench_appends() {
    println!(
        "\n## Durable append ({PAYLOAD_CHARS}-char payload, ~560-byte envelope, {}s per row)",
        APPEND_RUN.as_secs()
    );
    println!("| writers | events/s | ack p50 µs | ack p99 µs | appends per commit |");
    println!("|---|---|---|---|---|");
    let (rate, h) = baseline_batched(64);
    println!(
        "| floor: rusqlite, our schema, 64 events per fsynced txn, no hashing | {rate:.0} | {:.0} (per txn) | {:.0} (per txn) | 64 |",
        micros(&h, 0.5),
        micros(&h, 0.99)
    );
    let (rate, h) = baseline_append();
    println!(
        "| baseline: rusqlite, 1 fsynced txn per event | {rate:.0} | {:.0} | {:.0} | 1 |",
        micros(&h, 0.5),
        micros(&h, 0.99)
    );
    for writers in [1, 8, 64] {
        let (rate, h, group) = append_run(writers).await;
        println!(
            "| {writers} | {rate:.0} | {:.0} | {:.0} | {group:.1} |",
            micros(&h, 0.5),
            micros(&h, 0.99)
        );
    }
}

async fn bench_read_all() {
    let events = scaled(300_000);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let tenant = TenantId::generate();
    for chunk in 0..events / 1000 {
        let batch = (0..1000)
            .map(|i| event(&tenant, chunk * 1000 + i))
            .collect();
        store
            .append(
                StreamId::new("bench", &format!("s{}", chunk % 16)).unwrap(),
                ExpectedRevision::Any,
                batch,
            )
            .await
            .unwrap();
    }
    store.close().await;
    println!("\n## Read all ({events} events, pages of 10,000, 5 passes)");
    println!("| reader | events/s (median of 5) | slowest pass events/s |");
    println!("|---|---|---|");
    let path = dir.path().join("events.sqlite3");
    let raw = passes(5, || {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        // Same mapping as the store's readers, so the gap is decoding alone.
        conn.query_row("PRAGMA mmap_size=1073741824", [], |_| Ok(()))
            .unwrap();
        let mut stmt = conn
            .prepare("SELECT position, stream, payload, hash FROM events ORDER BY position")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut bytes = 0usize;
        while let Some(r) = rows.next().unwrap() {
            bytes += r.get_ref(2).unwrap().as_str().unwrap().len();
        }
        assert!(bytes > 0);
    });
    print_rate("baseline: raw rusqlite scan, no decoding", events, &raw);
    let ro = SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::ReadOnly)).unwrap();
    let mut ours = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut cursor = 0;
        loop {
            let page = ro
                .read_all(cursor, ReadFilter::default(), 10_000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            cursor = last.position;
        }
        assert_eq!(cursor, events);
        ours.push(t.elapsed());
    }
    print_rate(
        "EventStore::read_all (full decode and validation)",
        events,
        &ours,
    );
}

fn passes(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn print_rate(label: &str, events: u64, runs: &[Duration]) {
    let mut sorted = runs.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let slowest = sorted[sorted.len() - 1];
    println!(
        "| {label} | {:.0} | {:.0} |",
        events as f64 / median.as_secs_f64(),
        events as f64 / slowest.as_secs_f64()
    );
}

async fn bench_rebuild() {
    let events = scaled(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let tenant = TenantId::generate();
    let stream = StreamId::tenant(&tenant);
    let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
    let create = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: "bench".parse().unwrap(),
        name: "Bench".into(),
    };
    aggregate::execute::<Tenant>(&store, &stream, &create, &meta, SnapshotPolicy::NEVER)
        .await
        .unwrap();
    let mut revision = 0;
    while revision + 1 < events {
        let batch: Vec<NewEvent> = (0..1000u64.min(events - revision - 1))
            .map(|i| {
                let ev = TenantEvent::Renamed {
                    name: format!("Bench {}", revision + i),
                };
                let payload = extensor_core::aggregate::DomainEvent::to_payload(&ev).unwrap();
                NewEvent {
                    event_id: extensor_core::ids::EventId::generate(),
                    event_type: "tenant.renamed".into(),
                    schema_version: 1,
                    meta: meta.clone(),
                    payload,
                }
            })
            .collect();
        let r = store
            .append(stream.clone(), ExpectedRevision::Exact(revision), batch)
            .await
            .unwrap();
        revision = r.next_expected;
    }
    println!("\n## Rebuild one aggregate ({events} events in one stream)");
    println!("| rebuild | median ms | p99 (max of runs) ms | events applied |");
    println!("|---|---|---|---|");
    let full = time_load(&store, &stream, 3).await;
    println!(
        "| baseline: no snapshot, full replay (3 runs) | {:.1} | {:.1} | {} |",
        full.0, full.1, full.2
    );
    let loaded = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    aggregate::write_snapshot(&store, &stream, &loaded)
        .await
        .unwrap();
    // A realistic tail: 500 events after the snapshot.
    let batch = (0..500)
        .map(|i| {
            let ev = TenantEvent::Renamed {
                name: format!("Tail {i}"),
            };
            NewEvent {
                event_id: extensor_core::ids::EventId::generate(),
                event_type: "tenant.renamed".into(),
                schema_version: 1,
                meta: meta.clone(),
                payload: extensor_core::aggregate::DomainEvent::to_payload(&ev).unwrap(),
            }
        })
        .collect();
    store
        .append(stream.clone(), ExpectedRevision::Exact(revision), batch)
        .await
        .unwrap();
    let snap = time_load(&store, &stream, 101).await;
    println!(
        "| snapshot + 500-event tail (101 runs) | {:.2} | {:.2} | {} |",
        snap.0, snap.1, snap.2
    );
}

async fn time_load(store: &SqliteStore, stream: &StreamId, runs: usize) -> (f64, f64, u64) {
    let mut times = Vec::with_capacity(runs);
    let mut applied = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let loaded = aggregate::load::<Tenant>(store, stream, AsOf::Latest)
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        applied = loaded.events_applied;
    }
    times.sort_by(f64::total_cmp);
    let p99 = times[((times.len() as f64 * 0.99).ceil() as usize).min(times.len()) - 1];
    (times[times.len() / 2], p99, applied)
}

/// `cargo bench --bench store -- read` runs only the sections named
/// (`append`, `read`, `rebuild`); no name runs them all.
fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "# extensor store benchmarks\nmachine: {}\nquick mode: {}",
        machine(),
        quick()
    );
    rt.block_on(async {
        if run("append") {
            bench_appends().await;
        }
        if run("read") {
            bench_read_all().await;
        }
        if run("rebuild") {
            bench_rebuild().await;
        }
    });
}
