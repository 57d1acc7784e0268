//! Scheduler benchmark: `cargo bench -p extensor-actors --bench scheduler`.
//!
//! 10,000 jobs across 1,000 installations of one tenant, every job firing
//! every minute, on the real SQLite store and the system clock. The runner
//! is a no-op (it answers at once), so the figures are the scheduler's own:
//! claims, firing, recording each run's start and end. Measured per minute
//! ("tick"): process CPU from the claim wave to the last recorded run, and
//! start drift (runner called − scheduled time) of every run.
//!
//! Same-run baselines: CPU of an empty tick (the process idle over a
//! minute with no jobs); drift of 10,000 bare tokio tasks sleeping until the
//! same instant (the timer floor); and the store alone taking the same
//! 30,000 appends (claim, start, end) from 256 concurrent writers.
//!
//! `EXTENSOR_BENCH_MINUTES` (default 3) sets the measured ticks;
//! `EXTENSOR_BENCH_JOBS` (default 10000) the job count.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use extensor_actors::jobs::{JobFailure, JobRequest, JobRunner, JobSuccess};
use extensor_actors::scheduler::{Scheduler, SchedulerArgs, SchedulerConfig};
use extensor_core::aggregate::{self, SnapshotPolicy};
use extensor_core::clock::SystemClock;
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::{InstallationCommand, InstalledVersion, PluginInstallation};
use extensor_core::manifest::PluginManifest;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision};
use futures::StreamExt;
use futures::future::BoxFuture;
use hdrhistogram::Histogram;

const JOBS_PER_INSTALLATION: usize = 10;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Process CPU (user + system) so far, from `/proc/self/stat` (clock ticks
/// of 10 ms).
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // After the command: state, then ppid … ; utime and stime are fields 14
    // and 15 of the whole line, 11 and 12 of the numeric tail (state dropped).
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    ticks * 10
}

/// (scheduled for, called at) of one runner call.
type Call = (DateTime<Utc>, DateTime<Utc>);

#[derive(Clone, Default)]
struct NoopRunner {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl JobRunner for NoopRunner {
    fn run(&self, request: JobRequest) -> BoxFuture<'static, Result<JobSuccess, JobFailure>> {
        // Stamped when the job's future is first polled, which is when a
        // real runner (the engine's) starts the job: building the future
        // does nothing.
        let calls = self.calls.clone();
        Box::pin(async move {
            let now = Utc::now();
            calls.lock().unwrap().push((request.scheduled_for, now));
            Ok(JobSuccess {
                value: serde_json::Value::Null,
                logs: Vec::new(),
            })
        })
    }
}

fn open(dir: &std::path::Path) -> Arc<dyn EventStore> {
    let config = SqliteConfig {
        data_dir: dir.to_path_buf(),
        mode: OpenMode::CreateIfMissing,
        store_bytes_max: None,
    };
    Arc::new(SqliteStore::open(config).expect("open store"))
}

async fn install(store: &Arc<dyn EventStore>, tenant: &TenantId, installations: usize) {
    let jobs: Vec<_> = (0..JOBS_PER_INSTALLATION)
        .map(|j| serde_json::json!({"name": format!("job{j}"), "schedule": "* * * * *"}))
        .collect();
    let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
    let installs: Vec<_> = (0..installations).map(|i| {
        let slug = format!("plugin-{i}");
        let manifest = serde_json::json!({"slug": slug, "name": slug, "version": "1.0.0", "entry": "main.js", "jobs": jobs});
        let manifest = PluginManifest::parse(manifest.to_string().as_bytes()).expect("manifest");
        let id = InstallationId::for_slug(tenant, &manifest.slug);
        (id, manifest)
    }).collect();
    futures::stream::iter(installs)
        .for_each_concurrent(64, |(id, manifest)| {
            let (store, meta) = (store.clone(), meta.clone());
            let tenant = tenant.clone();
            async move {
                let stream = StreamId::installation(&id);
                let version = InstalledVersion {
                    manifest,
                    bundle_digest: format!("sha256:{}", "0".repeat(64)),
                };
                let install = InstallationCommand::Install {
                    installation_id: id,
                    tenant,
                    version,
                };
                for cmd in [install, InstallationCommand::Enable] {
                    aggregate::execute::<PluginInstallation>(
                        store.as_ref(),
                        &stream,
                        &cmd,
                        &meta,
                        SnapshotPolicy::NEVER,
                    )
                    .await
                    .expect("install");
                }
            }
        })
        .await;
}

async fn until(at: DateTime<Utc>) {
    if let Ok(d) = (at - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

fn next_minute() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap()
        + chrono::Duration::minutes(1)
}

fn row(name: &str, h: &Histogram<u64>, unit: &str) {
    println!(
        "| {name} | {} | {} | {} | {} {unit} |",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
}

/// The timer floor: 10,000 tasks sleeping until one instant; µs late.
async fn timer_floor(tasks: usize) -> Histogram<u64> {
    let at = Utc::now() + chrono::Duration::seconds(2);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                until(at).await;
                (Utc::now() - at).num_microseconds().unwrap_or(0).max(0) as u64
            })
        })
        .collect();
    let mut h = Histogram::<u64>::new(3).unwrap();
    for t in handles {
        h.record(t.await.unwrap()).unwrap();
    }
    h
}

/// The store alone: `jobs` streams × 3 appends, 256 writers; CPU ms and wall ms.
async fn store_floor(store: &Arc<dyn EventStore>, jobs: usize) -> (u64, u64) {
    let tenant = TenantId::generate();
    let meta = EventMeta::new(Some(tenant), Principal::system());
    let cpu0 = cpu_ms();
    let t0 = Instant::now();
    futures::stream::iter(0..jobs)
        .for_each_concurrent(256, |j| {
            let (store, meta) = (store.clone(), meta.clone());
            async move {
                let stream = StreamId::new("floor", &format!("j{j}")).unwrap();
                for r in 0..3u64 {
                    let payload = serde_json::json!({"run_id": "run_01JZZZZZZZZZZZZZZZZZZZZZZZ", "scheduled_for": Utc::now(), "owner": "sch_x", "r": r});
                    let ev = NewEvent::new("floor.appended", 1, meta.clone(), &payload).unwrap();
                    let expected = if r == 0 { ExpectedRevision::NoStream } else { ExpectedRevision::Exact(r - 1) };
                    store.append(stream.clone(), expected, vec![ev]).await.expect("append");
                }
            }
        })
        .await;
    (cpu_ms() - cpu0, t0.elapsed().as_millis() as u64)
}

#[tokio::main]
async fn main() {
    let minutes = env_num("EXTENSOR_BENCH_MINUTES", 3);
    let jobs = env_num("EXTENSOR_BENCH_JOBS", 10_000) as usize;
    let installations = jobs.div_ceil(JOBS_PER_INSTALLATION);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    println!("scheduler bench: {jobs} jobs, {installations} installations, {minutes} ticks");

    // Baseline: an empty tick (no jobs) over the coming minute boundary.
    let idle_from = next_minute() - chrono::Duration::seconds(10);
    until(idle_from).await;
    let cpu0 = cpu_ms();
    until(idle_from + chrono::Duration::seconds(20)).await;
    let idle_cpu = cpu_ms() - cpu0;
    let floor = timer_floor(jobs).await;
    let (floor_cpu, floor_wall) = store_floor(&store, jobs).await;

    let tenant = TenantId::generate();
    let t0 = Instant::now();
    install(&store, &tenant, installations).await;
    println!("installed in {} ms", t0.elapsed().as_millis());
    let runner = NoopRunner::default();
    let args = SchedulerArgs {
        tenant: tenant.clone(),
        store: store.clone(),
        runner: Arc::new(runner.clone()),
        clock: Arc::new(SystemClock),
        config: SchedulerConfig::default(),
        registry: None,
    };
    let (_actor, _) = ractor::Actor::spawn(None, Scheduler, args)
        .await
        .expect("spawn");

    let mut drift = Histogram::<u64>::new(3).unwrap();
    let mut cpu = Histogram::<u64>::new(3).unwrap();
    let mut span = Histogram::<u64>::new(3).unwrap();
    // Skip the first boundary if it is too close to have been claimed ahead.
    let mut tick = next_minute();
    if (tick - Utc::now()).num_seconds() < 8 {
        tick += chrono::Duration::minutes(1);
    }
    for _ in 0..minutes {
        until(tick - chrono::Duration::seconds(7)).await;
        let cpu0 = cpu_ms();
        let wall0 = Instant::now();
        let want = jobs;
        loop {
            let done = runner
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter(|(s, _)| *s == tick)
                .count();
            if done >= want {
                break;
            }
            assert!(
                Utc::now() < tick + chrono::Duration::seconds(50),
                "tick {tick}: only {done} of {want} runs started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The runs were started; wait for their end records too.
        let ended = wait_recorded(&store, tick).await;
        cpu.record(cpu_ms() - cpu0).unwrap();
        span.record((ended - wall0).as_millis() as u64).unwrap();
        for (s, at) in runner
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == tick)
        {
            drift
                .record((*at - *s).num_microseconds().unwrap_or(0).max(0) as u64)
                .unwrap();
        }
        tick += chrono::Duration::minutes(1);
    }

    println!("\n| measurement | samples | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    row(
        "baseline: 10,000 bare tokio sleeps to one instant, µs late",
        &floor,
        "µs",
    );
    row(
        "start drift (runner called − scheduled time), µs",
        &drift,
        "µs",
    );
    row(
        "process CPU per tick (claims + fire + records), ms",
        &cpu,
        "ms",
    );
    row(
        "tick span: claim wave start → last end record, ms",
        &span,
        "ms",
    );
    println!("\nbaseline: empty tick (no jobs, 20 s across a minute boundary): {idle_cpu} ms CPU");
    println!(
        "baseline: store alone, {} appends from 256 writers: {floor_cpu} ms CPU, {floor_wall} ms wall",
        jobs * 3
    );
}

/// Waits until the store stops growing (every run's end is recorded: the
/// runner answers at once) and returns when it last grew.
async fn wait_recorded(store: &Arc<dyn EventStore>, tick: DateTime<Utc>) -> Instant {
    let mut head = store.head_position().await.unwrap();
    let mut grew = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now_head = store.head_position().await.unwrap();
        if now_head != head {
            head = now_head;
            grew = Instant::now();
        } else if Utc::now() > tick + chrono::Duration::seconds(1) {
            return grew;
        }
    }
}
