//! Plugin jobs through the engine: the scheduler service of a real tenant
//! supervisor runs jobs in real isolates (the fixture plugin documented in
//! docs/SCRIPTS.md).

use std::time::{Duration, Instant};

use extensor_actors::Error;
use extensor_actors::engine::Engine;
use extensor_actors::scheduler::RunNowOutcome;
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::job_runs::{RunEnd, RunStatus, job_stream, read_runs};
use serde_json::json;

use crate::support::{WAIT_MS, admin, install, new_tenant, start, zip_of};

const MANIFEST: &str = include_str!("../fixtures/nightly-report/manifest.json");
const MAIN_JS: &str = include_str!("../fixtures/nightly-report/main.js");

/// Runs `job` now, retrying while the scheduler has not yet seen the
/// plugin's enable event (it follows the log).
async fn run_now(
    engine: &Engine,
    tenant: &TenantId,
    id: &InstallationId,
    job: &str,
) -> RunNowOutcome {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS);
    loop {
        match engine
            .schedulers()
            .run_now(tenant, id, job, admin(), 10_000)
            .await
        {
            Ok(outcome) => return outcome,
            Err(e @ (Error::Core { .. } | Error::Stopped { .. })) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("run now {job}: {e}"),
        }
    }
}

#[tokio::test]
async fn jobs_run_in_real_isolates_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let zip = zip_of(&[("manifest.json", MANIFEST), ("main.js", MAIN_JS)]);
    let id = install(&engine, &tenant, zip).await;

    let report = run_now(&engine, &tenant, &id, "report").await;
    let finished = report.finished.expect("report finished within the wait");
    let RunEnd::Succeeded { result, .. } = &finished.end else {
        panic!("report: {:?}", finished.end);
    };
    let expected = json!({"run_id": report.run_id, "trigger": "run_now"});
    assert_eq!(result.as_ref(), Some(&expected));
    assert!(
        finished
            .logs
            .iter()
            .any(|l| l.message.starts_with("report for"))
    );

    let boom = run_now(&engine, &tenant, &id, "boom")
        .await
        .finished
        .expect("boom finished");
    assert_eq!(boom.end.status(), RunStatus::Failed);
    let RunEnd::Failed { error } = &boom.end else {
        unreachable!()
    };
    assert!(error.contains("the report service is down"), "{error}");
    // A failed run keeps what the code logged before it threw, in the
    // answer and in the recorded history.
    let logged = |logs: &[extensor_core::job_runs::RunLog], level: &str, line: &str| {
        logs.iter().any(|l| l.level == level && l.message == line)
    };
    assert!(
        logged(&boom.logs, "warn", "calling the report service"),
        "{:?}",
        boom.logs
    );
    let history = read_runs(
        engine.store().as_ref(),
        &job_stream(&id, "boom").unwrap(),
        10,
    )
    .await
    .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, RunStatus::Failed);
    assert!(
        logged(&history[0].logs, "warn", "calling the report service"),
        "{:?}",
        history[0].logs
    );

    // `limits.job_timeout_ms` is 200: the isolate stops the endless loop.
    let spin = run_now(&engine, &tenant, &id, "spin")
        .await
        .finished
        .expect("spin finished");
    assert_eq!(spin.end.status(), RunStatus::TimedOut);
    assert!(logged(&spin.logs, "info", "spinning"), "{:?}", spin.logs);

    // The history holds all three, and the job view knows the next run.
    let runs = read_runs(
        engine.store().as_ref(),
        &job_stream(&id, "report").unwrap(),
        10,
    )
    .await
    .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    let views = engine.schedulers().jobs(&tenant, &id).await.expect("jobs");
    assert_eq!(views.len(), 3);
    let view = views.iter().find(|v| v.name == "report").unwrap();
    assert!(view.scheduled && view.next_run.is_some());
    assert_eq!(view.timezone, "Europe/London");
    assert_eq!(
        view.last_run.as_ref().map(|l| l.status),
        Some(RunStatus::Succeeded)
    );

    // Disabling stops the schedule.
    engine
        .disable(&tenant, &id, admin())
        .await
        .expect("disable");
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS);
    loop {
        let views = engine.schedulers().jobs(&tenant, &id).await.expect("jobs");
        if views.iter().all(|v| !v.scheduled) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still scheduled after disable"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A job every second whose run emits `tick.ran` with its run id.
const TICKER_JS: &str = r#"import { job } from "extensor:sdk";
job("tick", "* * * * * *", async (run, ctx) => {
  await ctx.emit("tick.ran", { run_id: run.run_id, trigger: run.trigger });
  return { run_id: run.run_id, trigger: run.trigger };
});
"#;

#[tokio::test]
async fn a_scheduled_occurrence_fires_through_the_engine_in_a_real_isolate() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let overrides = json!({
        "permissions": ["events.emit"],
        "jobs": [{"name": "tick", "schedule": "* * * * * *"}]
    });
    let zip = crate::support::plugin("ticker", "1.0.0", overrides, TICKER_JS);
    let id = install(&engine, &tenant, zip).await;
    // Nobody asks for a run: the tenant's scheduler fires the occurrence at
    // its time. Positive marker: a scheduled run succeeded with the
    // plugin's result.
    let stream = job_stream(&id, "tick").unwrap();
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS);
    let run = loop {
        let runs = read_runs(engine.store().as_ref(), &stream, 100)
            .await
            .unwrap();
        if let Some(r) = runs.into_iter().find(|r| r.status == RunStatus::Succeeded) {
            break r;
        }
        assert!(Instant::now() < deadline, "no scheduled run succeeded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        run.trigger,
        Some(extensor_core::job_runs::RunTrigger::Schedule)
    );
    let expected = json!({"run_id": run.run_id, "trigger": "schedule"});
    assert_eq!(run.result.as_ref(), Some(&expected));
    // Its side effect is in the tenant's log: the event it emitted.
    let filter = extensor_core::store::ReadFilter {
        tenant: Some(tenant.clone()),
        type_prefix: Some("tick.ran".into()),
        ..Default::default()
    };
    let events = engine.store().read_all(0, filter, 1_000).await.unwrap();
    let emitted: Vec<&str> = events
        .iter()
        .filter(|e| e.payload.get().contains(run.run_id.as_str()))
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(emitted, ["tick.ran"]);
}
