//! Dispatch benchmark: `cargo bench -p extensor-actors --bench dispatch`
//! (`-- latency`, `-- latency-postgres`, `-- throughput` or `-- recover`
//! runs one section).
//!
//! Real SQLite store (PostgreSQL for `latency-postgres`), real engine, real
//! isolates of the default engine.
//!
//! - **latency**: an event published → its hook finished *and recorded*
//!   (the `hook.executed` record arrives on a store subscription), with 1 and
//!   with 10 subscribed installations (for 10: until the last of the ten).
//!   Same-run baseline: the raw store, one append → the same subscription
//!   seeing it.
//! - **latency-postgres**: the same on the PostgreSQL store (a fresh
//!   database on `EXTENSOR_TEST_POSTGRES_URL`, default the local server,
//!   dropped afterwards; bundles and files in the database as a node keeps them).
//! - **throughput**: sustained hook executions per second with 10
//!   installations, events published as fast as the store takes them.
//! - **recover**: 10,000 tenants × 5 installations with hooks (written
//!   straight into the log), then a fresh engine on the store: time for
//!   `Engine::start` (index rebuilt, every tenant's services resumed, every
//!   lane from its checkpoint) and for every tenant aggregate to be loaded
//!   (latency p50/p99 beside a same-run baseline replaying every tenant
//!   straight from the store); the store's reads during start and when
//!   idle; then resident memory per installation once every installation
//!   actor has been started and passivated (RSS deltas from
//!   `/proc/self/statm`).
//!
//! `EXTENSOR_BENCH_EVENTS` (default 500) sets latency samples;
//! `EXTENSOR_BENCH_TENANTS` (default 10000) the recovery size.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use extensor_actors::dispatcher::{HookRecord, hooks_stream};
use extensor_actors::engine::{Engine, EngineConfig, TreeSettings};
use extensor_actors::supervision::{ActorKind, ActorStatus, RestartPolicy};
use extensor_core::aggregate::{AsOf, SnapshotPolicy};
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::{InstallationCommand, InstalledVersion, PluginInstallation};
use extensor_core::secrets::SecretKey;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision, ReadFilter};
use extensor_core::tenant::{Tenant, TenantCommand};
use extensor_store_postgres::test_database::TestDatabase;
use extensor_store_postgres::{PgConfig, PgOpenMode, PgStore};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::json;

const HOOK_JS: &str = "import { hook } from 'extensor:sdk';
hook('order.created', (e) => ({ ok: true, n: e.data.n }));";
const INSTALLATIONS_PER_TENANT: usize = 5;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open_store(dir: &std::path::Path) -> Arc<dyn EventStore> {
    Arc::new(
        SqliteStore::open(SqliteConfig {
            data_dir: dir.to_path_buf(),
            mode: OpenMode::CreateIfMissing,
            store_bytes_max: None,
        })
        .expect("store"),
    )
}

fn config(
    dir: &std::path::Path,
    store: Arc<dyn EventStore>,
    passivate_ms: Option<u64>,
) -> EngineConfig {
    let key = SecretKey::load_with(dir, |_| None).expect("key");
    let mut c = EngineConfig::new(store, dir.to_path_buf(), key);
    c.tree = TreeSettings {
        policy: RestartPolicy::default(),
        snapshots: SnapshotPolicy::DEFAULT,
        mailbox_messages_max: 1_000,
        passivate_idle_ms: passivate_ms,
        ..TreeSettings::default()
    };
    c
}

fn plugin_zip(slug: &str) -> Vec<u8> {
    let manifest = json!({"slug": slug, "name": slug, "version": "1.0.0",
        "entry": "main.js", "events": ["order.created"]});
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("manifest.json", opts).unwrap();
    w.write_all(manifest.to_string().as_bytes()).unwrap();
    w.start_file("main.js", opts).unwrap();
    w.write_all(HOOK_JS.as_bytes()).unwrap();
    w.finish().unwrap().into_inner()
}

async fn create_tenant(engine: &Engine, slug: &str) -> TenantId {
    let tenant = TenantId::generate();
    let cmd = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: slug.parse().unwrap(),
        name: slug.into(),
    };
    engine
        .tenant_execute(&tenant, cmd, Principal::platform_admin())
        .await
        .unwrap();
    tenant
}

fn row(label: &str, h: &Histogram<u64>) {
    println!(
        "| {label} | {} | {} | {} | {} |",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
}

/// Raw store: append one event → a subscription sees it.
async fn baseline(store: &Arc<dyn EventStore>, samples: u64) -> Histogram<u64> {
    let stream = StreamId::new("bench", "baseline").unwrap();
    let filter = ReadFilter {
        stream: Some(stream.clone()),
        ..ReadFilter::default()
    };
    let head = store.head_position().await.unwrap();
    let mut sub = store.subscribe_all(head, filter);
    let mut h = Histogram::new(3).unwrap();
    for n in 0..samples {
        let meta = EventMeta::new(None, Principal::system());
        let ev = NewEvent::new("bench.ping", 1, meta, &json!({"n": n})).unwrap();
        let t = Instant::now();
        store
            .append(stream.clone(), ExpectedRevision::Any, vec![ev])
            .await
            .unwrap();
        sub.next().await.unwrap().unwrap();
        h.record(t.elapsed().as_micros() as u64).unwrap();
    }
    h
}

/// The hook lane's fence check on its own: one `stream_revision` read of a
/// stream, as a lane makes before each matching event (µs).
async fn fence_read(store: &Arc<dyn EventStore>, samples: u64) -> Histogram<u64> {
    let stream = StreamId::new("bench", "baseline").unwrap();
    let mut h = Histogram::new(3).unwrap();
    for _ in 0..samples {
        let t = Instant::now();
        store.stream_revision(stream.clone()).await.unwrap();
        h.record(t.elapsed().as_micros().max(1) as u64).unwrap();
    }
    h
}

/// Latencies of one publish → hooks round: until the last hook finished
/// (its record's `finished_at`) and until the last record was durable and
/// seen on a subscription.
struct Rounds {
    finished: Histogram<u64>,
    recorded: Histogram<u64>,
}

/// Publish → every installation's record for that event, one at a time.
async fn publish_to_hooks(
    engine: &Engine,
    tenant: &TenantId,
    ids: &[InstallationId],
    samples: u64,
) -> Rounds {
    let store = engine.store().clone();
    let head = store.head_position().await.unwrap();
    let mut sub = store.subscribe_all(
        head,
        ReadFilter {
            type_prefix: Some("hook.executed".into()),
            tenant: Some(tenant.clone()),
            ..ReadFilter::default()
        },
    );
    let mut rounds = Rounds {
        finished: Histogram::new(3).unwrap(),
        recorded: Histogram::new(3).unwrap(),
    };
    for n in 0..samples {
        let wall = chrono::Utc::now();
        let t = Instant::now();
        let ev = engine
            .publish(
                tenant,
                "order.created",
                json!({"n": n}),
                None,
                Principal::platform_admin(),
            )
            .await
            .unwrap();
        let mut seen = 0;
        let mut last_finish = wall;
        while seen < ids.len() {
            let rec = sub.next().await.unwrap().unwrap();
            if rec.causation_id.as_ref() == Some(&ev.event_id) {
                seen += 1;
                let r: HookRecord = serde_json::from_str(rec.payload.get()).unwrap();
                last_finish = last_finish.max(r.finished_at.unwrap());
            }
        }
        rounds
            .recorded
            .record(t.elapsed().as_micros() as u64)
            .unwrap();
        let finished_us = (last_finish - wall).num_microseconds().unwrap_or(0).max(1) as u64;
        rounds.finished.record(finished_us).unwrap();
    }
    rounds
}

async fn setup(
    engine: &Engine,
    slug: &str,
    installations: usize,
) -> (TenantId, Vec<InstallationId>) {
    let tenant = create_tenant(engine, slug).await;
    let mut ids = Vec::new();
    for i in 0..installations {
        let out = engine
            .upload_plugin(
                &tenant,
                plugin_zip(&format!("hook-{i}")),
                Principal::platform_admin(),
            )
            .await
            .unwrap();
        engine
            .enable(&tenant, &out.installation_id, Principal::platform_admin())
            .await
            .unwrap();
        ids.push(out.installation_id);
    }
    // Warm every isolate pool once, outside the measurement.
    publish_to_hooks(engine, &tenant, &ids, 3).await;
    (tenant, ids)
}

async fn latency() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let engine = Engine::start(config(dir.path(), store.clone(), None))
        .await
        .unwrap();
    println!("\n### Event published → hook finished, SQLite store (µs)\n");
    latency_rows(&engine, &store).await;
    engine.shutdown(Duration::from_secs(10)).await;
}

/// The latency rows on PostgreSQL: the store a node of several uses,
/// plugin bundles and `ctx.files` kept in the same database.
async fn latency_postgres() {
    let database = TestDatabase::create().await.expect("test database");
    let pg = PgStore::open(PgConfig::new(
        database.location().clone(),
        PgOpenMode::Migrate,
    ))
    .await
    .expect("PostgreSQL store");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(pg.clone());
    let mut c = config(dir.path(), store.clone(), None);
    c.bundles = Some(Arc::new(pg.bundles()));
    c.files = Some(Arc::new(pg.files()));
    let engine = Engine::start(c).await.unwrap();
    println!("\n### Event published → hook finished, PostgreSQL store (µs)\n");
    latency_rows(&engine, &store).await;
    engine.shutdown(Duration::from_secs(10)).await;
    // `database` drops the test database when it goes out of scope.
}

async fn latency_rows(engine: &Engine, store: &Arc<dyn EventStore>) {
    let samples = env_num("EXTENSOR_BENCH_EVENTS", 500);
    println!("| path | samples | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}\n", load.trim());
    row(
        "baseline: raw store append → subscription",
        &baseline(store, samples).await,
    );
    row(
        "the lane's fence check alone: one stream_revision read",
        &fence_read(store, samples).await,
    );
    let (t1, one) = setup(engine, "one", 1).await;
    let r = publish_to_hooks(engine, &t1, &one, samples).await;
    row("1 installation: published → hook finished", &r.finished);
    row(
        "1 installation: published → record durable and seen",
        &r.recorded,
    );
    let (t10, ten) = setup(engine, "ten", 10).await;
    let r = publish_to_hooks(engine, &t10, &ten, samples).await;
    row(
        "10 installations: published → 10th hook finished",
        &r.finished,
    );
    row(
        "10 installations: published → 10th record durable, seen",
        &r.recorded,
    );
}

async fn throughput() {
    let events = env_num("EXTENSOR_BENCH_EVENTS", 500) * 4;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let engine = Engine::start(config(dir.path(), store.clone(), None))
        .await
        .unwrap();
    let (tenant, ids) = setup(&engine, "load", 10).await;
    let base: Vec<u64> = futures::future::join_all(ids.iter().map(|id| async {
        store
            .stream_revision(hooks_stream(id))
            .await
            .unwrap()
            .map_or(0, |r| r + 1)
    }))
    .await;
    let t = Instant::now();
    for n in 0..events {
        engine
            .publish(
                &tenant,
                "order.created",
                json!({"n": n}),
                None,
                Principal::platform_admin(),
            )
            .await
            .unwrap();
    }
    let published = t.elapsed();
    // Wait for every lane to record every event.
    for (id, start) in ids.iter().zip(base) {
        loop {
            let rev = store
                .stream_revision(hooks_stream(id))
                .await
                .unwrap()
                .map_or(0, |r| r + 1);
            if rev >= start + events {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let all = t.elapsed();
    let hooks = events * ids.len() as u64;
    println!("\n### Sustained hook executions (10 installations, {events} events)\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| publish rate (events/s, one publisher) | {:.0} |",
        events as f64 / published.as_secs_f64()
    );
    println!(
        "| hook executions recorded per second | {:.0} |",
        hooks as f64 / all.as_secs_f64()
    );
    engine.shutdown(Duration::from_secs(10)).await;
}

/// Resident memory (bytes) from `/proc/self/status`: total, and the
/// anonymous part (heap, stacks). The rest is mostly the store file's pages
/// mapped by SQLite's readers (`mmap_size`): page cache, not engine state.
#[derive(Clone, Copy)]
struct Rss {
    total: u64,
    anon: u64,
}

fn rss() -> Rss {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Rss {
        total: kib("VmRSS:") * 1024,
        anon: kib("RssAnon:") * 1024,
    }
}

enum Seed {
    Tenant(TenantId, usize),
    Installation(TenantId, InstallationId, Box<InstalledVersion>),
}

/// Writes tenants and enabled installations straight into the log, as a
/// long-running deployment would have left them.
async fn seed(
    store: &Arc<dyn EventStore>,
    dir: &std::path::Path,
    tenants: usize,
) -> Vec<(TenantId, Vec<InstallationId>)> {
    let bundles = extensor_core::bundles::BundleStore::open(dir).unwrap();
    let zip = plugin_zip("hook-x");
    let digest = bundles.put(zip.clone()).await.unwrap();
    let bundle = extensor_js::Bundle::from_zip(&zip, &extensor_js::ZipLimits::default()).unwrap();
    let manifest = extensor_js::Sandbox::new(Default::default())
        .validate(&bundle)
        .await
        .unwrap()
        .manifest
        .clone();
    let mut out = Vec::new();
    let mut work = Vec::new();
    for t in 0..tenants {
        let tenant = TenantId::generate();
        work.push(Seed::Tenant(tenant.clone(), t));
        let mut ids = Vec::new();
        for i in 0..INSTALLATIONS_PER_TENANT {
            let mut m = manifest.clone();
            m.slug = format!("hook-{i}").parse().unwrap();
            let id = InstallationId::for_slug(&tenant, &m.slug);
            let version = InstalledVersion {
                manifest: m,
                bundle_digest: digest.clone(),
            };
            work.push(Seed::Installation(
                tenant.clone(),
                id.clone(),
                Box::new(version),
            ));
            ids.push(id);
        }
        out.push((tenant, ids));
    }
    // 256 writers in flight so the store's group commit batches them.
    futures::stream::iter(work)
        .for_each_concurrent(256, |item| {
            let store = store.clone();
            async move { seed_one(&*store, item).await }
        })
        .await;
    out
}

async fn seed_one(store: &dyn EventStore, item: Seed) {
    use extensor_core::aggregate::execute;
    let never = SnapshotPolicy::NEVER;
    match item {
        Seed::Tenant(tenant, n) => {
            let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
            let cmd = TenantCommand::Create {
                tenant_id: tenant.clone(),
                slug: format!("t{n}").parse().unwrap(),
                name: "bench".into(),
            };
            execute::<Tenant>(store, &StreamId::tenant(&tenant), &cmd, &meta, never)
                .await
                .unwrap();
        }
        Seed::Installation(tenant, id, version) => {
            let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
            let stream = StreamId::installation(&id);
            let install = InstallationCommand::Install {
                installation_id: id.clone(),
                tenant,
                version: *version,
            };
            execute::<PluginInstallation>(store, &stream, &install, &meta, never)
                .await
                .unwrap();
            execute::<PluginInstallation>(
                store,
                &stream,
                &InstallationCommand::Enable,
                &meta,
                never,
            )
            .await
            .unwrap();
        }
    }
}

/// Loads every tenant `concurrency` at a time; the latency of each (µs).
async fn load_all<F, Fut>(tenants: &[TenantId], concurrency: usize, load: F) -> Histogram<u64>
where
    F: Fn(TenantId) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let times: Vec<u64> = futures::stream::iter(tenants.iter().cloned())
        .map(|tenant| {
            let fut = load(tenant);
            async move {
                let t = Instant::now();
                fut.await;
                t.elapsed().as_micros() as u64
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut h = Histogram::<u64>::new(3).unwrap();
    for us in times {
        h.record(us.max(1)).unwrap();
    }
    h
}

fn ms_row(label: &str, total: Duration, h: &Histogram<u64>) {
    println!(
        "| {label} | {:.2} s | {:.1} | {:.1} | {:.1} |",
        total.as_secs_f64(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

async fn recover() {
    let tenants = env_num("EXTENSOR_BENCH_TENANTS", 10_000) as usize;
    let installations = tenants * INSTALLATIONS_PER_TENANT;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(SqliteConfig {
        data_dir: dir.path().to_path_buf(),
        mode: OpenMode::CreateIfMissing,
        store_bytes_max: None,
    })
    .expect("store");
    let store: Arc<dyn EventStore> = Arc::new(sqlite.clone());
    let t = Instant::now();
    let seeded = seed(&store, dir.path(), tenants).await;
    let seed_time = t.elapsed();
    let ids: Vec<TenantId> = seeded.iter().map(|(t, _)| t.clone()).collect();
    // Baseline, same run: every tenant aggregate replayed straight from the
    // store, no engine (the floor under "every tenant loaded").
    let t = Instant::now();
    let raw = load_all(&ids, 64, |tenant| {
        let store = store.clone();
        async move {
            let stream = StreamId::tenant(&tenant);
            extensor_core::aggregate::load::<Tenant>(&*store, &stream, AsOf::Latest)
                .await
                .unwrap();
        }
    })
    .await;
    let raw_time = t.elapsed();
    let rss_before = rss();
    let passivate_ms = 200;
    let reads_before = sqlite.reads();
    let t = Instant::now();
    let engine = Engine::start(config(dir.path(), store.clone(), Some(passivate_ms)))
        .await
        .unwrap();
    let start_time = t.elapsed();
    let start_reads = sqlite.reads() - reads_before;
    let rss_started = rss();
    let t = Instant::now();
    let loads = load_all(&ids, 64, |tenant| {
        let engine = engine.clone();
        async move {
            engine.tenant(&tenant).await.unwrap();
        }
    })
    .await;
    let tenants_time = t.elapsed();
    // Start every installation actor once, then let them passivate.
    let t = Instant::now();
    futures::stream::iter(
        seeded
            .iter()
            .flat_map(|(t, ids)| ids.iter().map(move |id| (t, id))),
    )
    .for_each_concurrent(64, |(tenant, id)| {
        let engine = engine.clone();
        async move {
            let h = engine.installation_handle(tenant, id).await.unwrap();
            h.query(5_000).await.unwrap();
        }
    })
    .await;
    let actors_time = t.elapsed();
    let board = engine.status_board().clone();
    let last = &seeded.last().unwrap();
    let path = format!(
        "/tenants/{}/installations/{}",
        last.0,
        last.1[INSTALLATIONS_PER_TENANT - 1]
    );
    board
        .wait_until(&path, |i| i.status == ActorStatus::Passivated, 60_000)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(passivate_ms * 5)).await;
    let snapshot = engine.tree().await.unwrap();
    let passivated = snapshot
        .actors
        .iter()
        .filter(|a| a.kind == ActorKind::Installation && a.status == ActorStatus::Passivated)
        .count();
    let rss_passivated = rss();
    // Idle: the store's reads over a few head-poll intervals.
    let idle_reads_before = sqlite.reads();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_reads = sqlite.reads() - idle_reads_before;
    println!("\n### Recovery of {tenants} tenants × {INSTALLATIONS_PER_TENANT} installations\n");
    println!("| phase (64 concurrent loads) | total | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    ms_row(
        "baseline: every tenant replayed from the store, no engine",
        raw_time,
        &raw,
    );
    ms_row(
        "every tenant loaded through the engine after start",
        tenants_time,
        &loads,
    );
    println!("\n| measure | value |");
    println!("|---|---|");
    println!(
        "| seeding the log (not part of recovery) | {:.1} s |",
        seed_time.as_secs_f64()
    );
    println!(
        "| `Engine::start`: index of {installations} installations, {tenants} tenants' dispatchers (no webhooks or jobs: no webhook dispatchers or schedulers), {installations} lanes from checkpoints | {:.2} s |",
        start_time.as_secs_f64()
    );
    println!("| store reads during `Engine::start` | {start_reads} |");
    println!(
        "| **recovery: `Engine::start` + every tenant loaded** | **{:.2} s** |",
        (start_time + tenants_time).as_secs_f64()
    );
    println!(
        "| every installation actor started once (64 concurrent) | {:.2} s |",
        actors_time.as_secs_f64()
    );
    println!("| installation actors passivated | {passivated} of {installations} |");
    println!("| store reads in 2 s idle | {idle_reads} |");
    let mib = |b: u64| b as f64 / 1048576.0;
    for (label, r) in [
        ("before the engine", rss_before),
        ("after start (index, dispatchers, lanes)", rss_started),
        ("with every actor passivated", rss_passivated),
    ] {
        println!(
            "| RSS {label}: total / anonymous | {:.1} / {:.1} MiB |",
            mib(r.total),
            mib(r.anon)
        );
    }
    let per = |after: u64, before: u64| {
        after.saturating_sub(before) as f64 / installations as f64 / 1024.0
    };
    println!(
        "| resident per passivated installation (all engine state ÷ installations), total RSS | {:.1} KiB |",
        per(rss_passivated.total, rss_before.total)
    );
    println!(
        "| the same, anonymous memory only (no mapped store pages) | {:.1} KiB |",
        per(rss_passivated.anon, rss_before.anon)
    );
    engine.shutdown(Duration::from_secs(10)).await;
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "machine: {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        if run("latency") {
            latency().await;
        }
        if run("latency-postgres") {
            latency_postgres().await;
        }
        if run("throughput") {
            throughput().await;
        }
        if run("recover") {
            recover().await;
        }
    });
}
