//! Durable appends per second on the PostgreSQL store: `cargo bench -p
//! extensor-store-postgres --bench appends`.
//!
//! For 1, 8 and 64 concurrent writers, in one run: the PostgreSQL store
//! (one event per append, each writer on its own stream; for 8 and 64 also
//! spread over 3 store instances, standing for 3 nodes), the raw baseline
//! (the same rows with plain `INSERT` + `COMMIT` from the same number of
//! clients, one session each, no lock, no chain) and the embedded SQLite
//! store. The server is `EXTENSOR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a fresh database is
//! created and dropped. `EXTENSOR_BENCH_SECONDS` sets each run's length
//! (default 5). Prints docs/BENCHMARKS.md rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::store::chain::{ChainHead, chain_next};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision};
use extensor_store_postgres::test_database::TestDatabase;
use extensor_store_postgres::{PgConfig, PgOpenMode, PgStore};
use hdrhistogram::Histogram;

/// Size of the payload string; the envelope adds ids and metadata.
const PAYLOAD_CHARS: usize = 420;
const WRITERS: [u64; 3] = [1, 8, 64];
/// Store instances standing for nodes in the multi-node rows.
const NODES: u64 = 3;

fn run_length() -> Duration {
    let secs = std::env::var("EXTENSOR_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

fn event(tenant: &TenantId, n: u64) -> NewEvent {
    let payload = serde_json::json!({"n": n, "note": "x".repeat(PAYLOAD_CHARS)});
    let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
    NewEvent::new("bench.appended", 1, meta, &payload).unwrap()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
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

struct Run {
    rate: f64,
    latency: Histogram<u64>,
}

impl Run {
    fn row(&self, what: &str, writers: u64) -> String {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1e6;
        format!(
            "| {what} | {writers} | {:.0} | {:.2} | {:.2} |",
            self.rate,
            ms(0.5),
            ms(0.99)
        )
    }
}

/// `writers` tasks appending one event at a time to their own streams,
/// spread round-robin over `stores` (several store instances on one
/// database stand for several nodes: each has its own sessions and writer).
async fn store_run(stores: &[Arc<dyn EventStore>], writers: u64, length: Duration) -> Run {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = stores[w as usize % stores.len()].clone();
            tokio::spawn(async move {
                let tenant = TenantId::generate();
                let stream = StreamId::new("bench", &format!("w{w}")).unwrap();
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let mut n = 0;
                while start.elapsed() < length {
                    let t = Instant::now();
                    let ev = vec![event(&tenant, n)];
                    store
                        .append(stream.clone(), ExpectedRevision::Any, ev)
                        .await
                        .unwrap();
                    hist.record(t.elapsed().as_nanos() as u64).unwrap();
                    n += 1;
                }
                hist
            })
        })
        .collect();
    collect(tasks, start).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Histogram<u64>>>, start: Instant) -> Run {
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        latency.add(t.await.unwrap()).unwrap();
    }
    Run {
        rate: latency.len() as f64 / start.elapsed().as_secs_f64(),
        latency,
    }
}

/// The baseline: the same rows (hashed once up front), `writers` sessions
/// each running `BEGIN; INSERT …; COMMIT` into a copy of the events table
/// with positions from a sequence: no lock, no chain, no revision check.
async fn raw_run(db: &TestDatabase, writers: u64, length: Duration) -> Run {
    let setup = connect(db).await;
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS raw_events; DROP SEQUENCE IF EXISTS raw_positions;
             CREATE SEQUENCE raw_positions;
             CREATE TABLE raw_events (LIKE events INCLUDING ALL);
             ALTER TABLE raw_events ALTER position SET DEFAULT nextval('raw_positions');",
        )
        .await
        .unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let client = connect(db).await;
        tasks.push(tokio::spawn(async move {
            let tenant = TenantId::generate();
            let stream = StreamId::new("bench", &format!("w{w}")).unwrap();
            let insert = client
                .prepare(
                    "INSERT INTO raw_events (stream, revision, event_id, event_type, schema_version, \
                     recorded_at, tenant, principal, correlation_id, causation_id, payload, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .await
                .unwrap();
            let mut hist = Histogram::<u64>::new(3).unwrap();
            let mut n = 0u64;
            while start.elapsed() < length {
                let mut head = ChainHead::GENESIS;
                let r = chain_next(&mut head, &stream, n, &event(&tenant, n));
                let t = Instant::now();
                client.batch_execute("BEGIN").await.unwrap();
                client
                    .execute(
                        &insert,
                        &[
                            &r.stream.as_str(),
                            &(n as i64),
                            &r.event_id.as_str(),
                            &r.event_type,
                            &1i64,
                            &r.recorded_at.timestamp_micros(),
                            &r.tenant.as_ref().map(|t| t.as_str()),
                            &r.principal.as_str(),
                            &r.correlation_id.as_str(),
                            &None::<&str>,
                            &r.payload.get(),
                            &&r.prev_hash[..],
                            &&r.hash[..],
                        ],
                    )
                    .await
                    .unwrap();
                client.batch_execute("COMMIT").await.unwrap();
                hist.record(t.elapsed().as_nanos() as u64).unwrap();
                n += 1;
            }
            hist
        }));
    }
    collect(tasks, start).await
}

async fn pg_instances(db: &TestDatabase, n: u64) -> Vec<Arc<dyn EventStore>> {
    let mut stores: Vec<Arc<dyn EventStore>> = Vec::new();
    for _ in 0..n {
        let config = PgConfig::new(db.location().clone(), PgOpenMode::Migrate);
        stores.push(Arc::new(PgStore::open(config).await.unwrap()));
    }
    stores
}

async fn connect(db: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .unwrap();
    client
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let length = run_length();
        let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
        println!("machine: {}; load average before: {}", machine(), load_average());
        println!(
            "{}s per row, one {PAYLOAD_CHARS}-char-payload event per append, each writer on its own stream\n",
            length.as_secs()
        );
        println!("| store | writers | appends/s | ack p50 ms | ack p99 ms |");
        println!("|---|---|---|---|---|");
        for writers in WRITERS {
            let run = store_run(&pg_instances(&db, 1).await, writers, length).await;
            println!("{}", run.row("PostgreSQL store", writers));
            if writers >= NODES {
                let run = store_run(&pg_instances(&db, NODES).await, writers, length).await;
                let what = format!("PostgreSQL store, {NODES} instances (nodes)");
                println!("{}", run.row(&what, writers));
            }
            let run = raw_run(&db, writers, length).await;
            println!("{}", run.row("raw INSERT + COMMIT (baseline)", writers));
            let dir = tempfile::tempdir().unwrap();
            let sqlite =
                SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).unwrap();
            let run = store_run(&[Arc::new(sqlite.clone())], writers, length).await;
            sqlite.close().await;
            println!("{}", run.row("SQLite store (embedded)", writers));
        }
        println!("\nload average after: {}", load_average());
    });
}
