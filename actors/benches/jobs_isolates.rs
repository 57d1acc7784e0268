//! Scheduled jobs in real isolates: `cargo bench -p extensor-actors --bench jobs_isolates`.
//!
//! The scheduler benchmark (`benches/scheduler.rs`) measures the scheduler
//! alone with a no-op runner at 10,000 jobs. This one runs the whole path a
//! tenant's jobs take: the real engine, plugins uploaded and enabled through
//! it, each job a JS function in the plugin's QuickJS isolate, every claim,
//! start and end recorded in the real SQLite store, the system clock.
//!
//! `EXTENSOR_BENCH_INSTALLATIONS` (default 100) plugins × 10 jobs, all
//! `* * * * *`; `EXTENSOR_BENCH_MINUTES` (default 2) ticks. Per run, from
//! the run records: start drift (`started_at − scheduled_for`, what the
//! scheduler controls) and completion (`finished_at − scheduled_for`, which
//! adds the isolate queue: an installation's ten jobs share one isolate).
//!
//! Same-run baseline: one job run through `run_now` with nothing else due,
//! run request → finished record, 200 times (the cost of one run alone).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use extensor_actors::engine::{Engine, EngineConfig};
use extensor_core::event::Principal;
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::job_runs::{RunFinished, RunStarted, types};
use extensor_core::secrets::SecretKey;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ReadFilter};
use extensor_core::tenant::TenantCommand;
use hdrhistogram::Histogram;
use serde_json::json;

const JOBS_PER_INSTALLATION: usize = 10;
/// Runs read back per page when collecting the records.
const READ_PAGE_EVENTS: usize = 10_000;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A plugin of ten jobs; each sums a few thousand numbers and returns it.
fn plugin_zip(slug: &str) -> Vec<u8> {
    let jobs: Vec<_> = (0..JOBS_PER_INSTALLATION)
        .map(|j| json!({"name": format!("job{j}"), "schedule": "* * * * *"}))
        .collect();
    let manifest = json!({"slug": slug, "name": slug, "version": "1.0.0",
        "entry": "main.js", "jobs": jobs});
    let mut js = String::from("import { job } from 'extensor:sdk';\n");
    for j in 0..JOBS_PER_INSTALLATION {
        js.push_str(&format!(
            "job('job{j}', '* * * * *', () => {{ let s = 0; for (let i = 0; i < 5000; i++) s += i; return {{ s }}; }});\n"
        ));
    }
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("manifest.json", opts).unwrap();
    w.write_all(manifest.to_string().as_bytes()).unwrap();
    w.start_file("main.js", opts).unwrap();
    w.write_all(js.as_bytes()).unwrap();
    w.finish().unwrap().into_inner()
}

async fn start(dir: &std::path::Path) -> (Engine, Arc<dyn EventStore>) {
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteStore::open(SqliteConfig {
            data_dir: dir.to_path_buf(),
            mode: OpenMode::CreateIfMissing,
            store_bytes_max: None,
        })
        .expect("store"),
    );
    let key = SecretKey::load_with(dir, |_| None).expect("key");
    let config = EngineConfig::new(store.clone(), dir.to_path_buf(), key);
    (Engine::start(config).await.expect("engine"), store)
}

async fn setup(engine: &Engine, installations: usize) -> (TenantId, Vec<InstallationId>) {
    let tenant = TenantId::generate();
    let cmd = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: "acme".parse().unwrap(),
        name: "acme".into(),
    };
    engine
        .tenant_execute(&tenant, cmd, Principal::platform_admin())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..installations {
        let zip = plugin_zip(&format!("jobs-{i}"));
        let up = engine
            .upload_plugin(&tenant, zip, Principal::platform_admin())
            .await
            .expect("upload");
        engine
            .enable(&tenant, &up.installation_id, Principal::platform_admin())
            .await
            .expect("enable");
        ids.push(up.installation_id);
    }
    (tenant, ids)
}

fn next_minute() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap()
        + chrono::Duration::minutes(1)
}

async fn until(at: DateTime<Utc>) {
    if let Ok(d) = (at - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// Drift and completion (µs) of every scheduled run recorded in `ticks`.
async fn collect(
    store: &Arc<dyn EventStore>,
    ticks: &[DateTime<Utc>],
) -> (Histogram<u64>, Histogram<u64>, usize) {
    let mut started = std::collections::HashMap::new();
    let mut finished = Vec::new();
    let mut from = 0;
    loop {
        let page = store
            .read_all(from, ReadFilter::default(), READ_PAGE_EVENTS)
            .await
            .expect("read");
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for e in &page {
            match e.event_type.as_str() {
                types::STARTED => {
                    let s: RunStarted = serde_json::from_str(e.payload.get()).unwrap();
                    started.insert(s.run_id, s.started_at);
                }
                types::SUCCEEDED | types::FAILED | types::TIMED_OUT => {
                    let f: RunFinished = serde_json::from_str(e.payload.get()).unwrap();
                    finished.push(f);
                }
                _ => {}
            }
        }
    }
    let (mut drift, mut done) = (Histogram::new(3).unwrap(), Histogram::new(3).unwrap());
    let mut failed = 0;
    for f in finished.iter().filter(|f| ticks.contains(&f.scheduled_for)) {
        let us =
            |t: DateTime<Utc>| (t - f.scheduled_for).num_microseconds().unwrap_or(0).max(0) as u64;
        if let Some(s) = started.get(&f.run_id) {
            drift.record(us(*s)).unwrap();
        }
        done.record(us(f.finished_at)).unwrap();
        if f.end.status() != extensor_core::job_runs::RunStatus::Succeeded {
            failed += 1;
        }
    }
    (drift, done, failed)
}

/// One run alone, through run-now: request → finished, µs.
async fn alone(engine: &Engine, tenant: &TenantId, id: &InstallationId) -> Histogram<u64> {
    let mut h = Histogram::new(3).unwrap();
    for _ in 0..200 {
        let t0 = std::time::Instant::now();
        let out = engine
            .schedulers()
            .run_now(tenant, id, "job0", Principal::platform_admin(), 10_000)
            .await
            .expect("run now");
        assert!(out.finished.is_some(), "run-now did not finish within 10 s");
        h.record(t0.elapsed().as_micros() as u64).unwrap();
    }
    h
}

fn row(label: &str, h: &Histogram<u64>) {
    println!(
        "| {label} | {} | {:.1} | {:.1} | {:.1} |",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

#[tokio::main]
async fn main() {
    let installations = env_num("EXTENSOR_BENCH_INSTALLATIONS", 100) as usize;
    let minutes = env_num("EXTENSOR_BENCH_MINUTES", 2) as i32;
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = start(dir.path()).await;
    let t0 = std::time::Instant::now();
    let (tenant, ids) = setup(&engine, installations).await;
    let jobs = installations * JOBS_PER_INSTALLATION;
    println!(
        "jobs in isolates: {installations} installations × {JOBS_PER_INSTALLATION} jobs = {jobs}, set up in {} ms",
        t0.elapsed().as_millis()
    );
    // Measure whole ticks the scheduler has had time to claim ahead.
    let mut first = next_minute();
    if (first - Utc::now()).num_seconds() < 10 {
        first += chrono::Duration::minutes(1);
    }
    let ticks: Vec<_> = (0..minutes)
        .map(|m| first + chrono::Duration::minutes(m as i64))
        .collect();
    until(*ticks.last().unwrap() + chrono::Duration::seconds(20)).await;
    let (drift, done, failed) = collect(&store, &ticks).await;
    assert_eq!(
        done.len() as usize,
        jobs * ticks.len(),
        "every scheduled run of the measured ticks finished and was recorded"
    );
    // The baseline runs after the ticks, between two minute boundaries.
    until(next_minute() + chrono::Duration::seconds(15)).await;
    let solo = alone(&engine, &tenant, &ids[0]).await;
    println!("\n| measurement (ms) | runs | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    row(
        "baseline: one run alone via run-now, request → finished",
        &solo,
    );
    row("start drift: started_at − scheduled_for", &drift);
    row("completion: finished_at − scheduled_for", &done);
    println!("\nruns not succeeded: {failed}");
    engine.shutdown(Duration::from_secs(10)).await;
}
