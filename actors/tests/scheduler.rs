//! The job scheduler against the real SQLite store, driven by a manual
//! clock: nothing here sleeps for the minutes it simulates.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, DurationRound, Timelike, Utc};
use extensor_actors::jobs::{EpochClaim, JobFailure, JobRequest, JobRunner, JobSuccess};
use extensor_actors::scheduler::{
    RunNowOutcome, Scheduler, SchedulerArgs, SchedulerConfig, SchedulerMsg,
};
use extensor_actors::supervision::call;
use extensor_core::aggregate::{self, SnapshotPolicy};
use extensor_core::clock::{Clock, ManualClock};
use extensor_core::event::{EventMeta, Principal, StreamId};
use extensor_core::ids::{InstallationId, RunId, TenantId};
use extensor_core::installation::{InstallationCommand, InstalledVersion, PluginInstallation};
use extensor_core::job_runs::{
    JobRuns, JobRunsCommand, RunRecord, RunStatus, RunTrigger, SchedulerRecord, SkipReason,
    WaveStarted, job_stream, read_runs, scheduler_stream, types,
};
use extensor_core::manifest::PluginManifest;
use extensor_core::store::EventStore;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use futures::future::BoxFuture;
use ractor::ActorRef;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

const WAIT_MS: u64 = 10_000;
/// A test's world starts no later than this before a real minute ends
/// (`World::new`): more than a loaded machine takes from there to
/// recording the installation's events.
const MINUTE_END_MARGIN_S: i64 = 5;

fn open_store(dir: &tempfile::TempDir) -> Arc<dyn EventStore> {
    let config = SqliteConfig {
        data_dir: dir.path().to_path_buf(),
        mode: OpenMode::CreateIfMissing,
        store_bytes_max: None,
    };
    Arc::new(SqliteStore::open(config).expect("open store"))
}

/// A runner whose jobs behave by name: `boom` throws, `slow` reports its
/// deadline hit, `hang` never answers, `panic` panics (a host bug), `huge` returns 1 MB, `block` waits
/// for a permit; anything else returns `{"n": <call number>}`.
#[derive(Clone)]
struct ScriptRunner {
    calls: Arc<Mutex<Vec<JobRequest>>>,
    gate: Arc<Semaphore>,
}

impl Default for ScriptRunner {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }
}

impl ScriptRunner {
    fn calls(&self) -> Vec<JobRequest> {
        self.calls.lock().unwrap().clone()
    }

    /// How many times each (job, scheduled time) ran.
    fn runs_per_occurrence(&self) -> BTreeMap<(String, DateTime<Utc>), usize> {
        let mut out = BTreeMap::new();
        for c in self.calls() {
            *out.entry((c.job.clone(), c.scheduled_for)).or_default() += 1;
        }
        out
    }
}

impl JobRunner for ScriptRunner {
    fn run(&self, request: JobRequest) -> BoxFuture<'static, Result<JobSuccess, JobFailure>> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(request.clone());
            calls.len()
        };
        let gate = self.gate.clone();
        Box::pin(async move {
            let log = |m: &str| extensor_core::job_runs::RunLog {
                level: "info".into(),
                time: Utc::now(),
                message: m.into(),
            };
            match request.job.as_str() {
                "boom" => Err(JobFailure::Failed {
                    error: "plugin threw: Error: boom".into(),
                    logs: vec![log("about to throw")],
                }),
                "slow" => Err(JobFailure::TimedOut {
                    error: format!("deadline of {} ms exceeded", request.deadline_ms),
                    logs: vec![],
                }),
                "hang" => std::future::pending().await,
                "panic" => panic!("the runner panicked (on purpose)"),
                "huge" => Ok(JobSuccess {
                    value: Value::String("x".repeat(1_000_000)),
                    logs: vec![],
                }),
                "block" => {
                    let _permit = gate.acquire().await.expect("gate");
                    Ok(JobSuccess {
                        value: json!({"n": n}),
                        logs: vec![],
                    })
                }
                _ => Ok(JobSuccess {
                    value: json!({"n": n}),
                    logs: vec![log("ran")],
                }),
            }
        })
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn EventStore>,
    clock: ManualClock,
    tenant: TenantId,
}

impl World {
    /// A store and a manual clock starting now: the store stamps events
    /// with the real time, and the simulated time runs on from there.
    ///
    /// An installation is active from its enable event's real stamp, and
    /// tests fire its jobs at `minute(1)`, the next minute of the clock. A
    /// test started in a real minute's last moments would record that
    /// event after `minute(1)`, whose occurrence then never comes (a flake
    /// seen in CI: no run at all). So a test starts in a minute's first
    /// `60 - MINUTE_END_MARGIN_S` seconds, waiting for the next if need be.
    fn new() -> World {
        let now = Utc::now();
        let into_minute_ms =
            i64::from(now.second()) * 1000 + i64::from(now.timestamp_subsec_millis());
        if into_minute_ms >= (60 - MINUTE_END_MARGIN_S) * 1000 {
            let to_next_ms = 60_000 - into_minute_ms + 20;
            std::thread::sleep(Duration::from_millis(to_next_ms as u64));
        }
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir);
        World {
            _dir: dir,
            store,
            clock: ManualClock::new(Utc::now()),
            tenant: TenantId::generate(),
        }
    }

    fn meta(&self) -> EventMeta {
        EventMeta::new(Some(self.tenant.clone()), Principal::system())
    }

    async fn command(&self, id: &InstallationId, cmd: InstallationCommand) {
        aggregate::execute::<PluginInstallation>(
            self.store.as_ref(),
            &StreamId::installation(id),
            &cmd,
            &self.meta(),
            SnapshotPolicy::NEVER,
        )
        .await
        .expect("installation command");
    }

    fn version(slug: &str, version: &str, jobs: Value) -> InstalledVersion {
        let manifest = json!({
            "slug": slug, "name": slug, "version": version, "entry": "main.js", "jobs": jobs
        });
        InstalledVersion {
            manifest: PluginManifest::parse(manifest.to_string().as_bytes()).expect("manifest"),
            bundle_digest: format!("sha256:{}", "0".repeat(64)),
        }
    }

    /// Installs and enables `slug` with `jobs`.
    async fn install(&self, slug: &str, jobs: Value) -> InstallationId {
        let id = InstallationId::for_slug(&self.tenant, &slug.parse().unwrap());
        let cmd = InstallationCommand::Install {
            installation_id: id.clone(),
            tenant: self.tenant.clone(),
            version: Self::version(slug, "1.0.0", jobs),
        };
        self.command(&id, cmd).await;
        self.command(&id, InstallationCommand::Enable).await;
        id
    }

    async fn scheduler(&self, runner: &ScriptRunner, owner: &str) -> ActorRef<SchedulerMsg> {
        self.scheduler_with(Arc::new(runner.clone()), owner).await
    }

    async fn scheduler_with(
        &self,
        runner: Arc<dyn JobRunner>,
        owner: &str,
    ) -> ActorRef<SchedulerMsg> {
        let config = SchedulerConfig {
            owner: owner.into(),
            job_deadline_ms: 20,
            ..SchedulerConfig::default()
        };
        let args = SchedulerArgs {
            tenant: self.tenant.clone(),
            store: self.store.clone(),
            runner,
            clock: Arc::new(self.clock.clone()),
            config,
            registry: None,
        };
        let (actor, _) = ractor::Actor::spawn(None, Scheduler, args)
            .await
            .expect("spawn scheduler");
        actor
    }

    async fn runs(&self, id: &InstallationId, job: &str) -> Vec<RunRecord> {
        let stream = job_stream(id, job).unwrap();
        let mut runs = read_runs(self.store.as_ref(), &stream, 10_000)
            .await
            .unwrap();
        runs.sort_by_key(|r| (r.scheduled_for, r.position));
        runs
    }

    /// Waits until the job's history satisfies `done` (the scheduler works
    /// on its own tasks; this polls the store, not the clock).
    async fn wait_runs(
        &self,
        id: &InstallationId,
        job: &str,
        done: impl Fn(&[RunRecord]) -> bool,
    ) -> Vec<RunRecord> {
        let deadline = std::time::Instant::now() + Duration::from_millis(WAIT_MS);
        loop {
            let runs = self.runs(id, job).await;
            if done(&runs) {
                return runs;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met; runs: {:#?}",
                runs.iter()
                    .map(|r| (r.scheduled_for, r.status, r.skip_reason))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn minute(&self, n: i64) -> DateTime<Utc> {
        self.clock
            .now()
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap()
            + chrono::Duration::minutes(n)
    }

    /// Moves the clock to `at` and lets the scheduler's timer fire.
    async fn advance_to(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        tokio::task::yield_now().await;
    }
}

fn finished(status: RunStatus) -> impl Fn(&RunRecord) -> bool {
    move |r| r.status == status
}

fn count(runs: &[RunRecord], status: RunStatus) -> usize {
    runs.iter().filter(|r| r.status == status).count()
}

#[tokio::test]
async fn a_job_fires_at_its_times_and_each_run_is_recorded() {
    let w = World::new();
    let id = w
        .install("kpi", json!([{"name": "report", "schedule": "* * * * *"}]))
        .await;
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_a").await;
    let m1 = w.minute(1);
    w.advance_to(m1).await;
    let runs = w
        .wait_runs(&id, "report", |r| {
            r.len() == 1 && r[0].status == RunStatus::Succeeded
        })
        .await;
    let run = &runs[0];
    assert_eq!(run.scheduled_for, m1);
    assert_eq!(run.trigger, Some(RunTrigger::Schedule));
    assert_eq!(run.result, Some(json!({"n": 1})));
    assert_eq!(run.logs[0].message, "ran");
    assert!(run.started_at.is_some() && run.finished_at.is_some());
    w.advance_to(w.minute(1)).await;
    let runs = w
        .wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    assert_eq!(runs[1].scheduled_for, m1 + chrono::Duration::minutes(1));
    // Each occurrence ran exactly once, with the job deadline.
    assert!(runner.runs_per_occurrence().values().all(|n| *n == 1));
    assert!(runner.calls().iter().all(|c| c.deadline_ms == 20));
}

/// One task fires every claim of an instant (`scheduler/instant.rs`): many
/// jobs of several installations due at the same minutes each run exactly
/// once per occurrence, with their own run records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_due_at_one_instant_runs_once_per_occurrence() {
    const INSTALLATIONS: usize = 3;
    const JOBS: usize = 20;
    let w = World::new();
    let jobs: Vec<Value> = (0..JOBS)
        .map(|j| json!({"name": format!("j{j}"), "schedule": "* * * * *"}))
        .collect();
    let mut ids = Vec::new();
    for i in 0..INSTALLATIONS {
        ids.push(w.install(&format!("many-{i}"), json!(jobs)).await);
    }
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_a").await;
    let m1 = w.minute(1);
    for at in [m1, m1 + chrono::Duration::minutes(1)] {
        w.advance_to(at).await;
        for id in &ids {
            for j in 0..JOBS {
                w.wait_runs(id, &format!("j{j}"), |r| {
                    r.iter()
                        .any(|r| r.scheduled_for == at && r.status == RunStatus::Succeeded)
                })
                .await;
            }
        }
    }
    let per = runner.runs_per_occurrence();
    // The runner cannot tell installations apart by job name: each
    // (job, minute) ran once per installation.
    assert_eq!(per.len(), JOBS * 2, "{per:?}");
    assert!(per.values().all(|n| *n == INSTALLATIONS), "{per:?}");
    for id in &ids {
        for j in 0..JOBS {
            let runs = w.runs(id, &format!("j{j}")).await;
            assert_eq!(count(&runs, RunStatus::Succeeded), 2, "{runs:#?}");
            assert!(runs.iter().all(|r| r.started_at.is_some()));
        }
    }
}

/// A runner that panics (a host bug, not plugin code) ends that run
/// only: the job's run slot is freed, so its next occurrence is invoked.
#[tokio::test]
async fn a_panicking_runner_does_not_stop_its_jobs_later_occurrences() {
    let w = World::new();
    w.install("oops", json!([{"name": "panic", "schedule": "* * * * *"}]))
        .await;
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_a").await;
    let m1 = w.minute(1);
    w.advance_to(m1).await;
    wait_calls(&runner, 1).await;
    w.advance_to(m1 + chrono::Duration::minutes(1)).await;
    wait_calls(&runner, 2).await;
    let m2 = m1 + chrono::Duration::minutes(1);
    let at: Vec<_> = runner.calls().iter().map(|c| c.scheduled_for).collect();
    assert_eq!(at, vec![m1, m2]);
    // The second occurrence was fired by its instant's task (its wave
    // made its start durable before the call), after the first panicked.
    let waves = waves(w.store.as_ref(), &w.tenant).await;
    assert!(waves.iter().any(|v| v.scheduled_for == m2), "{waves:?}");
}

/// Waits until the runner was called `n` times (a positive marker).
async fn wait_calls(runner: &ScriptRunner, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_millis(WAIT_MS);
    while runner.calls().len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} calls, want {n}",
            runner.calls().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn throwing_timing_out_hanging_and_huge_results_are_recorded() {
    let w = World::new();
    let jobs = json!([
        {"name": "boom", "schedule": "* * * * *"},
        {"name": "slow", "schedule": "* * * * *"},
        {"name": "hang", "schedule": "* * * * *"},
        {"name": "huge", "schedule": "* * * * *"}
    ]);
    let id = w.install("faulty", jobs).await;
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_a").await;
    w.advance_to(w.minute(1)).await;
    let boom = w
        .wait_runs(&id, "boom", |r| r.iter().any(finished(RunStatus::Failed)))
        .await;
    assert!(boom[0].error.as_deref().unwrap().contains("boom"));
    assert_eq!(boom[0].logs[0].message, "about to throw");
    let slow = w
        .wait_runs(&id, "slow", |r| r.iter().any(finished(RunStatus::TimedOut)))
        .await;
    assert!(slow[0].error.as_deref().unwrap().contains("20 ms"));
    // A runner that never answers is cut off by the scheduler's own guard.
    let hang = w
        .wait_runs(&id, "hang", |r| r.iter().any(finished(RunStatus::TimedOut)))
        .await;
    assert!(hang[0].error.as_deref().unwrap().contains("no answer"));
    let huge = w
        .wait_runs(&id, "huge", |r| {
            r.iter().any(finished(RunStatus::Succeeded))
        })
        .await;
    assert_eq!(huge[0].result, None);
    let cut = huge[0].result_truncated.as_ref().expect("truncated");
    assert_eq!(cut.bytes, 1_000_002);
    assert_eq!(
        cut.preview.chars().count(),
        extensor_core::job_runs::RESULT_PREVIEW_CHARS
    );
}

async fn downtime(policy: Value) -> (World, InstallationId, ScriptRunner) {
    let w = World::new();
    let jobs =
        json!([{"name": "tick", "schedule": "* * * * *", "catch_up": policy, "catch_up_max": 3}]);
    let id = w.install("catchy", jobs).await;
    // The server is down for 10 minutes and 10 seconds: no scheduler runs.
    w.clock.set(w.minute(10) + chrono::Duration::seconds(40));
    let runner = ScriptRunner::default();
    (w, id, runner)
}

#[tokio::test]
async fn missed_runs_are_skipped_and_recorded_by_default() {
    let (w, id, runner) = downtime(json!("skip")).await;
    let _s = w.scheduler(&runner, "sch_a").await;
    let runs = w.wait_runs(&id, "tick", |r| r.len() >= 10).await;
    assert_eq!(count(&runs, RunStatus::Skipped), 10);
    assert!(
        runs.iter()
            .all(|r| r.skip_reason == Some(SkipReason::Missed))
    );
    assert!(runner.calls().is_empty());
}

#[tokio::test]
async fn run_once_runs_the_newest_missed_occurrence() {
    let (w, id, runner) = downtime(json!("run_once")).await;
    let _s = w.scheduler(&runner, "sch_a").await;
    let runs = w
        .wait_runs(&id, "tick", |r| {
            r.iter().any(finished(RunStatus::Succeeded))
        })
        .await;
    assert_eq!(count(&runs, RunStatus::Skipped), 9);
    let ran: Vec<_> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .collect();
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].trigger, Some(RunTrigger::CatchUp));
    assert_eq!(ran[0].scheduled_for, w.minute(0));
}

#[tokio::test]
async fn run_each_runs_up_to_the_cap_one_after_another() {
    let (w, id, runner) = downtime(json!("run_each")).await;
    let _s = w.scheduler(&runner, "sch_a").await;
    let runs = w
        .wait_runs(&id, "tick", |r| count(r, RunStatus::Succeeded) == 3)
        .await;
    assert_eq!(count(&runs, RunStatus::Skipped), 7);
    let times: Vec<_> = runner.calls().iter().map(|c| c.scheduled_for).collect();
    assert_eq!(times, [w.minute(-2), w.minute(-1), w.minute(0)]);
}

#[tokio::test]
async fn overlap_skip_records_the_occurrence_that_found_a_run_going() {
    let w = World::new();
    let id = w
        .install("busy", json!([{"name": "block", "schedule": "* * * * *"}]))
        .await;
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_a").await;
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "block", |r| r.iter().any(finished(RunStatus::Running)))
        .await;
    w.advance_to(w.minute(1)).await;
    let runs = w
        .wait_runs(&id, "block", |r| {
            r.iter().any(|r| r.skip_reason == Some(SkipReason::Overlap))
        })
        .await;
    assert_eq!(runs.len(), 2);
    runner.gate.add_permits(10);
    w.wait_runs(&id, "block", |r| {
        r.iter().any(finished(RunStatus::Succeeded))
    })
    .await;
    assert_eq!(runner.calls().len(), 1);
}

#[tokio::test]
async fn overlap_queue_one_runs_one_queued_occurrence_after() {
    let w = World::new();
    let jobs = json!([{"name": "block", "schedule": "* * * * *", "overlap": "queue_one"}]);
    let id = w.install("queued", jobs).await;
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_a").await;
    let first = w.minute(1);
    w.advance_to(first).await;
    w.wait_runs(&id, "block", |r| r.iter().any(finished(RunStatus::Running)))
        .await;
    // Two more occurrences while it runs: the first is queued, the second skipped.
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "block", |r| r.len() == 2).await;
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "block", |r| r.iter().any(finished(RunStatus::Skipped)))
        .await;
    runner.gate.add_permits(10);
    let runs = w
        .wait_runs(&id, "block", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    let ran: Vec<_> = runner.calls().iter().map(|c| c.scheduled_for).collect();
    assert_eq!(ran, [first, first + chrono::Duration::minutes(1)]);
    assert_eq!(
        runs.iter()
            .find(|r| r.status == RunStatus::Skipped)
            .unwrap()
            .scheduled_for,
        first + chrono::Duration::minutes(2)
    );
}

#[tokio::test]
async fn a_restarted_scheduler_does_not_run_an_occurrence_again() {
    let w = World::new();
    let id = w
        .install(
            "steady",
            json!([{"name": "report", "schedule": "* * * * *"}]),
        )
        .await;
    let runner = ScriptRunner::default();
    let first = w.scheduler(&runner, "sch_a").await;
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    first.stop(None);
    // A new process (another owner) starts 10 s after that occurrence.
    w.advance_to(w.clock.now() + chrono::Duration::seconds(10))
        .await;
    let _second = w.scheduler(&runner, "sch_b").await;
    w.advance_to(w.minute(1)).await;
    let runs = w
        .wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    assert_eq!(runs.len(), 2);
    assert!(
        runner.runs_per_occurrence().values().all(|n| *n == 1),
        "{:?}",
        runner.runs_per_occurrence()
    );
}

#[tokio::test]
async fn two_schedulers_on_one_store_run_each_occurrence_exactly_once() {
    let w = World::new();
    let jobs: Vec<Value> = (0..5)
        .map(|i| json!({"name": format!("j{i}"), "schedule": "* * * * *"}))
        .collect();
    let id = w.install("raced", Value::Array(jobs)).await;
    let runner = ScriptRunner::default();
    let a = w.scheduler(&runner, "sch_a").await;
    let b = w.scheduler(&runner, "sch_b").await;
    // Both have claimed their epoch and loaded (a call is answered after
    // start-up); the older one is fenced at its first claim wave.
    loaded(&a).await;
    loaded(&b).await;
    for minute in 1..=4 {
        w.advance_to(w.minute(1)).await;
        for j in 0..5 {
            w.wait_runs(&id, &format!("j{j}"), |r| {
                count(r, RunStatus::Succeeded) == minute
            })
            .await;
        }
    }
    let per = runner.runs_per_occurrence();
    assert_eq!(per.len(), 20);
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    // And the log holds exactly one claim per occurrence.
    for j in 0..5 {
        let stream = job_stream(&id, &format!("j{j}")).unwrap();
        let events = w.store.read_stream(stream, 0, 1_000).await.unwrap();
        let claims = events
            .iter()
            .filter(|e| e.event_type == types::SCHEDULED)
            .count();
        assert_eq!(claims, 4);
    }
    // Exactly one of them is left: the other was fenced and stopped.
    let running = [&a, &b]
        .iter()
        .filter(|s| matches!(s.get_status(), ractor::ActorStatus::Running))
        .count();
    assert_eq!(running, 1);
    // One wave per minute, all of the newest epoch: the older one's wave
    // would have conflicted with the newer claim.
    let waves = waves(w.store.as_ref(), &w.tenant).await;
    assert_eq!(waves.len(), 4, "{waves:?}");
    let newest = waves.iter().map(|w| w.epoch).max().unwrap();
    assert!(waves.iter().all(|w| w.epoch == newest), "{waves:?}");
}

/// Waits until `s` has finished starting (or stopped).
async fn loaded(s: &ActorRef<SchedulerMsg>) {
    let _ = call(
        "/test",
        s,
        |reply| SchedulerMsg::Jobs {
            installation: InstallationId::for_slug(&TenantId::generate(), &"none".parse().unwrap()),
            reply,
        },
        WAIT_MS,
    )
    .await;
}

#[tokio::test]
async fn disable_stops_enable_resumes_upgrade_swaps_uninstall_removes() {
    let w = World::new();
    let id = w
        .install(
            "life",
            json!([{"name": "old", "schedule": "* * * * *", "catch_up": "run_each"}]),
        )
        .await;
    let runner = ScriptRunner::default();
    let s = w.scheduler(&runner, "sch_a").await;
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "old", |r| count(r, RunStatus::Succeeded) == 1)
        .await;

    w.command(&id, InstallationCommand::Disable).await;
    wait_scheduled(&s, &id, "old", false).await;
    w.advance_to(w.minute(3)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runner.calls().len(), 1, "a disabled plugin's job ran");

    // Enabling resumes; occurrences while disabled are not caught up.
    w.command(&id, InstallationCommand::Enable).await;
    wait_scheduled(&s, &id, "old", true).await;
    w.advance_to(w.minute(1)).await;
    let runs = w
        .wait_runs(&id, "old", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    assert_eq!(runs.len(), 2);

    let upgrade = InstallationCommand::Upgrade {
        version: World::version(
            "life",
            "2.0.0",
            json!([{"name": "new", "schedule": "* * * * *"}]),
        ),
    };
    w.command(&id, upgrade).await;
    wait_scheduled(&s, &id, "new", true).await;
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "new", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    assert_eq!(
        w.runs(&id, "old").await.len(),
        2,
        "the upgraded-away job ran"
    );

    w.command(&id, InstallationCommand::Uninstall).await;
    wait_scheduled(&s, &id, "new", false).await;
    w.advance_to(w.minute(1)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        w.runs(&id, "new").await.len(),
        1,
        "an uninstalled plugin's job ran"
    );
    assert_eq!(runner.calls().len(), 3);
}

async fn wait_scheduled(s: &ActorRef<SchedulerMsg>, id: &InstallationId, job: &str, want: bool) {
    let deadline = std::time::Instant::now() + Duration::from_millis(WAIT_MS);
    loop {
        let views = jobs(s, id).await;
        let scheduled = views
            .iter()
            .any(|v| v["name"] == job && v["scheduled"] == true);
        if scheduled == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{job} scheduled != {want}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn jobs(scheduler: &ActorRef<SchedulerMsg>, id: &InstallationId) -> Vec<Value> {
    let views = call(
        "/test",
        scheduler,
        |reply| SchedulerMsg::Jobs {
            installation: id.clone(),
            reply,
        },
        WAIT_MS,
    )
    .await
    .expect("call")
    .unwrap_or_default();
    views
        .iter()
        .map(|v| serde_json::to_value(v).unwrap())
        .collect()
}

#[tokio::test]
async fn run_now_returns_the_result_or_the_run_id_to_poll() {
    let w = World::new();
    let jobs = json!([
        {"name": "report", "schedule": "0 0 1 1 *"},
        {"name": "block", "schedule": "0 0 1 1 *"}
    ]);
    let id = w.install("manual", jobs).await;
    let runner = ScriptRunner::default();
    let s = w.scheduler(&runner, "sch_a").await;
    let run_now = |job: &str, wait_ms: u64| {
        let (s, id, job) = (s.clone(), id.clone(), job.to_owned());
        async move {
            call(
                "/test",
                &s,
                |reply| SchedulerMsg::RunNow {
                    installation: id,
                    job,
                    principal: Principal::platform_admin(),
                    wait_ms,
                    reply,
                },
                WAIT_MS,
            )
            .await
            .expect("call")
        }
    };
    let done: RunNowOutcome = run_now("report", 5_000).await.expect("run now");
    let finished = done.finished.expect("finished within the wait");
    assert_eq!(finished.end.status(), RunStatus::Succeeded);
    let runs = w.runs(&id, "report").await;
    assert_eq!(runs[0].run_id, done.run_id);
    assert_eq!(runs[0].trigger, Some(RunTrigger::RunNow));

    let pending = run_now("block", 20).await.expect("run now");
    assert!(pending.finished.is_none());
    runner.gate.add_permits(1);
    let runs = w
        .wait_runs(&id, "block", |r| r.iter().any(finished_ok))
        .await;
    assert_eq!(runs[0].run_id, pending.run_id);

    let missing = run_now("nope", 20).await.unwrap_err();
    assert!(
        missing.to_string().contains("no enabled job `nope`"),
        "{missing}"
    );
}

fn finished_ok(r: &RunRecord) -> bool {
    r.status == RunStatus::Succeeded
}

/// Appends what a dead scheduler (`sch_dead`, of `epoch`) left on `job`: a
/// claim of the occurrence at `at`, and its start if `started`.
async fn leave_claim(
    w: &World,
    id: &InstallationId,
    job: &str,
    at: DateTime<Utc>,
    started: Started,
    epoch: u64,
) {
    let stream = job_stream(id, job).unwrap();
    let claim = JobRunsCommand::Schedule {
        run_id: RunId::derive(id, job, at, "schedule"),
        installation: id.clone(),
        job: job.into(),
        scheduled_for: at,
        trigger: RunTrigger::Schedule,
        owner: "sch_dead".into(),
        epoch,
    };
    let mut cmds = vec![claim.clone()];
    if started == Started::Yes {
        cmds.push(JobRunsCommand::Start {
            run_id: RunId::derive(id, job, at, "schedule"),
            started_at: at,
        });
    }
    for cmd in cmds {
        aggregate::execute::<JobRuns>(
            w.store.as_ref(),
            &stream,
            &cmd,
            &w.meta(),
            SnapshotPolicy::NEVER,
        )
        .await
        .unwrap();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Started {
    Yes,
    No,
}

#[tokio::test]
async fn a_late_claim_left_by_a_dead_scheduler_is_settled_at_once_per_catch_up() {
    let w = World::new();
    let id = w
        .install(
            "orphan",
            json!([{"name": "report", "schedule": "* * * * *"}]),
        )
        .await;
    // Another process claimed minute 1 and died before starting it; the
    // new one starts two minutes later (past the missed grace).
    let at = w.minute(1);
    leave_claim(&w, &id, "report", at, Started::No, 0).await;
    w.clock
        .set(at + chrono::Duration::minutes(2) + chrono::Duration::seconds(10));
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_a").await;
    // Settled at start, with no clock movement: recorded missed (the
    // default catch-up policy skips), never run.
    let runs = w
        .wait_runs(&id, "report", |r| {
            r.iter()
                .any(|r| r.scheduled_for == at && r.status == RunStatus::Skipped)
        })
        .await;
    let orphan = runs.iter().find(|r| r.scheduled_for == at).unwrap();
    assert_eq!(orphan.skip_reason, Some(SkipReason::Missed));
    assert!(runner.calls().iter().all(|c| c.scheduled_for != at));
}

#[tokio::test]
async fn a_dead_schedulers_claims_are_settled_at_once_and_runs_resume() {
    let w = World::new();
    let id = w
        .install(
            "killed",
            json!([
                {"name": "report", "schedule": "* * * * *"},
                {"name": "long", "schedule": "* * * * *"}
            ]),
        )
        .await;
    // The dead process had started `long` at minute 0 (its outcome is
    // unknown) and claimed `report` for minute 1 (claim lead).
    let now = w.clock.now();
    let started_at = w.minute(0);
    let claimed = w.minute(1);
    leave_claim(&w, &id, "long", started_at, Started::Yes, 0).await;
    leave_claim(&w, &id, "report", claimed, Started::No, 0).await;
    w.clock.set(now + chrono::Duration::seconds(1));
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_new").await;
    // At once, before any clock movement: the interrupted run is failed.
    let runs = w
        .wait_runs(&id, "long", |r| {
            r.iter().any(|r| r.status == RunStatus::Failed)
        })
        .await;
    let error = runs[0].error.as_deref().unwrap();
    assert!(error.starts_with("owner_died"), "{error}");
    // The claim of minute 1 is adopted and runs at its time, once (the
    // second added above may already have crossed it: the clock starts at
    // the real time).
    w.advance_to(claimed.max(w.clock.now())).await;
    let runs = w
        .wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    assert_eq!(runs[0].scheduled_for, claimed);
    w.wait_runs(&id, "long", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    // Runs resume: the next occurrence of both jobs runs too, and nothing
    // is left scheduled or running from the dead process.
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    let long = w
        .wait_runs(&id, "long", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    assert!(
        long.iter()
            .all(|r| r.scheduled_for != started_at || r.status == RunStatus::Failed)
    );
    let per = runner.runs_per_occurrence();
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    assert!(
        !per.contains_key(&("long".to_owned(), started_at)),
        "{per:?}"
    );
}

/// Waits until a newer scheduler fenced `job`'s stream.
async fn wait_fenced(w: &World, id: &InstallationId, job: &str) {
    let deadline = std::time::Instant::now() + Duration::from_millis(WAIT_MS);
    loop {
        let stream = job_stream(id, job).unwrap();
        let events = w.store.read_stream(stream, 0, 10_000).await.unwrap();
        if events.iter().any(|e| e.event_type == types::FENCED) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never fenced");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `actor` has stopped (the positive marker that a fenced
/// scheduler noticed and gave up).
async fn wait_stopped(actor: &ActorRef<SchedulerMsg>) {
    let deadline = std::time::Instant::now() + Duration::from_millis(WAIT_MS);
    while !matches!(actor.get_status(), ractor::ActorStatus::Stopped) {
        assert!(
            std::time::Instant::now() < deadline,
            "the fenced scheduler kept running"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A per-minute `report` job whose next occurrence an old scheduler
/// (`sch_a`) has claimed and armed, two seconds before it is due.
struct Armed {
    w: World,
    id: InstallationId,
    old_runner: ScriptRunner,
    old: ActorRef<SchedulerMsg>,
    at: DateTime<Utc>,
}

async fn armed_by_an_old_scheduler(slug: &str) -> Armed {
    let w = World::new();
    let id = w
        .install(slug, json!([{"name": "report", "schedule": "* * * * *"}]))
        .await;
    let old_runner = ScriptRunner::default();
    let old = w.scheduler(&old_runner, "sch_a").await;
    let at = w.minute(1);
    w.advance_to(at - chrono::Duration::seconds(2)).await;
    w.wait_runs(&id, "report", |r| {
        r.len() == 1 && r[0].status == RunStatus::Scheduled
    })
    .await;
    Armed {
        w,
        id,
        old_runner,
        old,
        at,
    }
}

#[tokio::test]
async fn a_fenced_scheduler_neither_runs_its_armed_claim_nor_claims_more() {
    let Armed {
        w,
        id,
        old_runner,
        old,
        at,
    } = armed_by_an_old_scheduler("twins").await;
    // A twin starts (a restarted scheduler whose predecessor is still
    // alive): it claims the next epoch and adopts the armed claim.
    let new_runner = ScriptRunner::default();
    let _new = w.scheduler(&new_runner, "sch_a").await;
    wait_fenced(&w, &id, "report").await;
    w.advance_to(at).await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    wait_stopped(&old).await;
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    assert!(old_runner.calls().is_empty(), "{:?}", old_runner.calls());
    let per = new_runner.runs_per_occurrence();
    assert_eq!(per.len(), 2, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
}

#[tokio::test]
async fn a_run_going_under_a_fenced_scheduler_is_settled_and_its_late_end_refused() {
    let w = World::new();
    let id = w
        .install("held", json!([{"name": "block", "schedule": "* * * * *"}]))
        .await;
    let old_runner = ScriptRunner::default();
    let old = w.scheduler(&old_runner, "sch_a").await;
    let at = w.minute(1);
    w.advance_to(at).await;
    w.wait_runs(&id, "block", |r| {
        r.iter().any(|r| r.status == RunStatus::Running)
    })
    .await;
    // A newer scheduler starts while the old one's run is going.
    let new_runner = ScriptRunner::default();
    let _new = w.scheduler(&new_runner, "sch_b").await;
    let runs = w
        .wait_runs(&id, "block", |r| count(r, RunStatus::Failed) == 1)
        .await;
    assert!(runs[0].error.as_deref().unwrap().starts_with("owner_died"));
    // The old run now returns: its end must not be recorded.
    old_runner.gate.add_permits(1);
    wait_stopped(&old).await;
    let runs = w.runs(&id, "block").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(old_runner.calls().len(), 1);
    // The next occurrence runs under the new scheduler.
    new_runner.gate.add_permits(1);
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "block", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    assert_eq!(new_runner.calls().len(), 1);
}

/// What was durable when a job was invoked.
#[derive(Clone, Debug)]
struct Seen {
    job: String,
    trigger: RunTrigger,
    /// The run's own `job.run_started`, on its job's stream.
    own_start: bool,
    /// A `job.wave_started` of its instant, on `jobs-<tenant>`.
    wave: bool,
}

/// A runner that, at the moment it is invoked, reads the job's stream and
/// the tenant's scheduler stream and notes which start is already durable.
struct StartChecker {
    store: Arc<dyn EventStore>,
    tenant: TenantId,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl JobRunner for StartChecker {
    fn run(&self, request: JobRequest) -> BoxFuture<'static, Result<JobSuccess, JobFailure>> {
        let stream = job_stream(&request.installation, &request.job).unwrap();
        let (store, tenant) = (self.store.clone(), self.tenant.clone());
        let read = async move {
            let job = store.read_stream(stream, 0, 10_000).await.unwrap();
            (job, waves(store.as_ref(), &tenant).await)
        };
        let (events, waves) =
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(read));
        let run_id = request.run_id.to_string();
        let own_start = events
            .iter()
            .any(|e| e.event_type == types::STARTED && e.payload.get().contains(&run_id));
        let wave = waves
            .iter()
            .any(|w| w.scheduled_for == request.scheduled_for);
        self.seen.lock().unwrap().push(Seen {
            job: request.job.clone(),
            trigger: request.trigger,
            own_start,
            wave,
        });
        Box::pin(async {
            Ok(JobSuccess {
                value: json!({}),
                logs: vec![],
            })
        })
    }
}

/// The waves on the tenant's scheduler stream, oldest first (every record
/// decoded: claims are skipped, anything else fails the test).
async fn waves(store: &dyn EventStore, tenant: &TenantId) -> Vec<WaveStarted> {
    let events = store
        .read_stream(scheduler_stream(tenant), 0, 10_000)
        .await
        .unwrap();
    events
        .iter()
        .filter_map(|e| {
            match SchedulerRecord::decode(&e.event_type, e.schema_version, &e.payload).unwrap() {
                SchedulerRecord::WaveStarted(w) => Some(w),
                SchedulerRecord::Claimed(_) => None,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_start_is_durable_before_the_job_is_invoked() {
    let w = World::new();
    let jobs = json!([
        {"name": "report", "schedule": "* * * * *"},
        {"name": "audit", "schedule": "* * * * *"},
        {"name": "manual", "schedule": "0 0 1 1 *"}
    ]);
    let id = w.install("kpi", jobs).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let runner = StartChecker {
        store: w.store.clone(),
        tenant: w.tenant.clone(),
        seen: seen.clone(),
    };
    let s = w.scheduler_with(Arc::new(runner), "sch_a").await;
    // Loaded before the clock moves: an occurrence due while it loads
    // would be started as a catch-up (its own start record first).
    loaded(&s).await;
    // The wave case: two scheduled runs due at one instant.
    let at = w.minute(1);
    w.advance_to(at).await;
    for job in ["report", "audit"] {
        let runs = w
            .wait_runs(&id, job, |r| count(r, RunStatus::Succeeded) == 1)
            .await;
        // Its own start record followed the invocation.
        assert!(runs[0].started_at.is_some(), "{runs:?}");
    }
    // A run-now starts alone, with its own start record first.
    call(
        "/test",
        &s,
        |reply| SchedulerMsg::RunNow {
            installation: id.clone(),
            job: "manual".into(),
            principal: Principal::platform_admin(),
            wait_ms: 5_000,
            reply,
        },
        WAIT_MS,
    )
    .await
    .expect("call")
    .expect("run now");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for run in &seen {
        match run.trigger {
            RunTrigger::Schedule => assert!(run.wave, "invoked before its wave: {run:?}"),
            _ => assert!(run.own_start, "invoked before its start: {run:?}"),
        }
    }
    assert!(seen.iter().any(|r| r.job == "manual" && r.own_start));
    // One wave for the instant, however many runs it started.
    let waves = waves(w.store.as_ref(), &w.tenant).await;
    assert_eq!(
        waves.iter().filter(|w| w.scheduled_for == at).count(),
        1,
        "{waves:?}"
    );
}

#[tokio::test]
async fn a_wave_a_dead_scheduler_wrote_settles_its_runs_as_owner_died() {
    let w = World::new();
    let id = w
        .install(
            "waved",
            json!([
                {"name": "report", "schedule": "* * * * *"},
                {"name": "audit", "schedule": "* * * * *"}
            ]),
        )
        .await;
    // What a process killed after its wave of minute 1 was durable leaves
    // (before its runner was called or after, before the runs' own start
    // records: the log is the same): its epoch claim, the claims of minute
    // 1 and the wave. `audit` at minute 2 was claimed, not yet due.
    let dead = EpochClaim::claim(w.store.clone(), &w.tenant, "sch_dead", &w.meta())
        .await
        .unwrap();
    let at = w.minute(1);
    let next = at + chrono::Duration::minutes(1);
    leave_claim(&w, &id, "report", at, Started::No, dead.epoch).await;
    leave_claim(&w, &id, "audit", at, Started::No, dead.epoch).await;
    leave_claim(&w, &id, "audit", next, Started::No, dead.epoch).await;
    dead.start_wave(at, &w.meta()).await.unwrap();
    w.clock.set(at + chrono::Duration::seconds(1));
    let runner = ScriptRunner::default();
    let _s = w.scheduler(&runner, "sch_new").await;
    // Settled at once, with no clock movement: failed `owner_died`, with
    // the wave as its start, never run again.
    for job in ["report", "audit"] {
        let runs = w
            .wait_runs(&id, job, |r| {
                r.iter()
                    .any(|r| r.scheduled_for == at && r.status == RunStatus::Failed)
            })
            .await;
        let run = runs.iter().find(|r| r.scheduled_for == at).unwrap();
        let error = run.error.as_deref().unwrap();
        assert!(error.starts_with("owner_died"), "{error}");
        assert_eq!(run.started_at, Some(at), "{run:?}");
    }
    // The claim after the wave is adopted and runs at its time, once; the
    // next occurrences run too (the positive marker that the scheduler
    // went on after settling).
    w.advance_to(next).await;
    w.wait_runs(&id, "audit", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    let per = runner.runs_per_occurrence();
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    assert!(per.keys().all(|(_, t)| *t == next), "{per:?}");
    assert_eq!(per.len(), 2, "{per:?}");
}

#[tokio::test]
async fn a_scheduler_stopped_mid_run_after_its_wave_is_settled_and_never_reruns() {
    let w = World::new();
    let id = w
        .install("cut", json!([{"name": "block", "schedule": "* * * * *"}]))
        .await;
    let runner = ScriptRunner::default();
    let first = w.scheduler(&runner, "sch_a").await;
    let at = w.minute(1);
    w.advance_to(at).await;
    // Positive marker: the job was invoked (after its wave).
    let deadline = std::time::Instant::now() + Duration::from_millis(WAIT_MS);
    while runner.calls().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never invoked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The scheduler stops mid-run (its run task is aborted, as in a kill),
    // whether or not the run's own start record landed.
    first.stop_and_wait(None, None).await.unwrap();
    runner.gate.add_permits(10);
    let _second = w.scheduler(&runner, "sch_b").await;
    let runs = w
        .wait_runs(&id, "block", |r| count(r, RunStatus::Failed) == 1)
        .await;
    assert!(runs[0].error.as_deref().unwrap().starts_with("owner_died"));
    assert!(runs[0].started_at.is_some(), "{runs:?}");
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "block", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    let per = runner.runs_per_occurrence();
    assert_eq!(per.get(&("block".to_owned(), at)), Some(&1), "{per:?}");
    assert_eq!(runner.calls().len(), 2, "{:?}", runner.calls());
}

#[tokio::test]
async fn a_fenced_schedulers_wave_conflicts_and_it_starts_nothing() {
    let Armed {
        w,
        id,
        old_runner,
        old,
        at,
    } = armed_by_an_old_scheduler("fenced").await;
    // A newer scheduler claims the tenant and has not yet fenced any job
    // stream (it is still loading; here it never gets further).
    let newer = EpochClaim::claim(w.store.clone(), &w.tenant, "sch_b", &w.meta())
        .await
        .unwrap();
    w.advance_to(at).await;
    // The old one's wave conflicts: it stops without invoking anything.
    wait_stopped(&old).await;
    assert!(old_runner.calls().is_empty(), "{:?}", old_runner.calls());
    let waves = waves(w.store.as_ref(), &w.tenant).await;
    assert!(waves.iter().all(|w| w.scheduled_for != at), "{waves:?}");
    // Its claim is left to a newer scheduler, which runs it once.
    let new_runner = ScriptRunner::default();
    let _new = w.scheduler(&new_runner, "sch_c").await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    assert!(old_runner.calls().is_empty(), "{:?}", old_runner.calls());
    assert_eq!(
        new_runner
            .runs_per_occurrence()
            .get(&("report".to_owned(), at)),
        Some(&1)
    );
    assert!(newer.check().await.is_err(), "a newer claim came after it");
}

#[tokio::test]
async fn disabling_during_a_run_lets_it_finish_and_records_it() {
    let w = World::new();
    let id = w
        .install("long", json!([{"name": "block", "schedule": "* * * * *"}]))
        .await;
    let runner = ScriptRunner::default();
    let s = w.scheduler(&runner, "sch_a").await;
    w.advance_to(w.minute(1)).await;
    // Positive marker: the run is going (its start is durable).
    w.wait_runs(&id, "block", |r| {
        r.iter().any(|r| r.status == RunStatus::Running)
    })
    .await;
    w.command(&id, InstallationCommand::Disable).await;
    wait_scheduled(&s, &id, "block", false).await;
    runner.gate.add_permits(1);
    let runs = w
        .wait_runs(&id, "block", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    assert!(
        runs.iter().all(|r| r.status != RunStatus::Running),
        "{runs:?}"
    );
    assert_eq!(runner.calls().len(), 1);
}

#[tokio::test]
async fn no_armed_run_task_outlives_a_restarted_scheduler() {
    let w = World::new();
    let id = w
        .install(
            "armed",
            json!([{"name": "report", "schedule": "* * * * *"}]),
        )
        .await;
    let runner = ScriptRunner::default();
    let first = w.scheduler(&runner, "sch_a").await;
    let at = w.minute(1);
    // Inside the claim lead, before the fire time: claimed and armed.
    w.advance_to(at - chrono::Duration::seconds(2)).await;
    w.wait_runs(&id, "report", |r| {
        r.len() == 1 && r[0].status == RunStatus::Scheduled
    })
    .await;
    // An in-process restart of the scheduler (same owner): the new one
    // re-arms its own claim; the old one's armed task must be gone.
    first.stop_and_wait(None, None).await.unwrap();
    let _second = w.scheduler(&runner, "sch_a").await;
    w.advance_to(at).await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 1)
        .await;
    // The positive marker for "nothing else ran": the next occurrence ran
    // too, and the first one was invoked exactly once.
    w.advance_to(w.minute(1)).await;
    w.wait_runs(&id, "report", |r| count(r, RunStatus::Succeeded) == 2)
        .await;
    let per = runner.runs_per_occurrence();
    assert_eq!(per.get(&("report".to_owned(), at)), Some(&1), "{per:?}");
    assert_eq!(runner.calls().len(), 2, "{:?}", runner.calls());
}
