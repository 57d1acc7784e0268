//! Cron claims of a killed process are settled at once, tested from
//! outside: a real `extensor serve` process runs a plugin job every second
//! (in a real isolate; each run emits `tick.ran` with its run id and spins
//! for a while, so a run is often going). While a run is going the server
//! is killed with SIGKILL and started again over the same data. The new
//! process claims the next scheduler epoch and settles what the dead one
//! left: the run it had started is failed (`owner_died`), the occurrences
//! it had claimed ahead run (or are recorded missed), and runs resume. The
//! second case kills it right after a wave (`job.wave_started`, the start
//! of every run due at one instant) is durable: the run it started is
//! settled once and never run again.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;

use api::Api;

#[path = "common/api.rs"]
mod api;
#[path = "common/served.rs"]
mod served;

const ADMIN: &str = "jobs-kill9-platform-admin-token-0123456789";

const MANIFEST: &str = r#"{
  "slug": "ticker",
  "name": "Ticker",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["events.emit"],
  "jobs": [{"name": "tick", "schedule": "* * * * * *", "catch_up": "run_each", "catch_up_max": 100}]
}"#;

const MAIN: &str = r#"import { job } from "extensor:sdk";
job("tick", "* * * * * *", async (run, ctx) => {
  await ctx.emit("tick.ran", { run_id: run.run_id, scheduled_for: run.scheduled_for });
  const t0 = Date.now();
  while (Date.now() - t0 < 400) {}
  return { run_id: run.run_id };
});
"#;

fn runs(page: &Value) -> Vec<Value> {
    page["runs"].as_array().cloned().unwrap_or_default()
}

fn with_status(page: &Value, status: &str) -> Vec<Value> {
    runs(page)
        .into_iter()
        .filter(|r| r["status"] == status)
        .collect()
}

/// Uploads and enables the ticker plugin; returns its runs' path.
async fn ticker(api: &Api) -> String {
    let zip = served::zip_of(&[("manifest.json", MANIFEST), ("main.js", MAIN)]);
    let id = api.install_enabled("ticker.zip", zip).await;
    format!("/api/plugins/{id}/runs?limit=200")
}

/// Asserts that no run emitted `tick.ran` twice and every succeeded run of
/// `page` emitted it exactly once.
async fn nothing_ran_twice(api: &Api, page: &Value) {
    let events = api
        .call(Method::GET, "/api/events?type=tick.ran&limit=1000", None)
        .await;
    let mut emitted: BTreeMap<String, usize> = BTreeMap::new();
    for e in events["events"].as_array().unwrap() {
        let run_id = e["data"]["run_id"].as_str().unwrap().to_owned();
        *emitted.entry(run_id).or_default() += 1;
    }
    assert!(emitted.values().all(|n| *n == 1), "{emitted:?}");
    for r in with_status(page, "succeeded") {
        let run_id = r["run_id"].as_str().unwrap();
        assert_eq!(emitted.get(run_id), Some(&1), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_cron_claims_are_settled_at_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = served::serve(&data, ADMIN);
    let mut api = Api::create_tenant(&server.url, ADMIN).await;
    let runs_path = ticker(&api).await;

    // Positive marker: jobs run, and one is going right now.
    api.until(&runs_path, |p| with_status(p, "succeeded").len() >= 2)
        .await;
    let going = api
        .until(&runs_path, |p| !with_status(p, "running").is_empty())
        .await;
    drop(server); // SIGKILL, mid-run: no graceful shutdown.
    let interrupted = with_status(&going, "running")[0]["run_id"].clone();

    let server = served::serve(&data, ADMIN);
    api.base = server.url.clone();
    // Settled at once: the interrupted run is final...
    let settled = api
        .until(&runs_path, |p| {
            runs(p)
                .iter()
                .any(|r| r["run_id"] == interrupted && r["status"] != "running")
        })
        .await;
    let run = runs(&settled)
        .into_iter()
        .find(|r| r["run_id"] == interrupted)
        .unwrap();
    assert!(
        run["status"] == "succeeded"
            || (run["status"] == "failed"
                && run["error"].as_str().unwrap().starts_with("owner_died")),
        "{run}"
    );
    let killed_at_newest = runs(&going)
        .iter()
        .filter_map(|r| r["scheduled_for"].as_str().map(str::to_owned))
        .max()
        .unwrap();
    // ...and runs resume: three occurrences newer than anything the dead
    // process had claimed succeeded under the new one.
    let later = api
        .until(&runs_path, |p| {
            with_status(p, "succeeded")
                .iter()
                .filter(|r| r["scheduled_for"].as_str().unwrap() > killed_at_newest.as_str())
                .count()
                >= 3
        })
        .await;
    // No occurrence older than the newest finished one is left scheduled
    // or running: every claim of the dead process was settled.
    let newest_final = runs(&later)
        .iter()
        .filter(|r| r["status"] != "scheduled" && r["status"] != "running")
        .filter_map(|r| r["scheduled_for"].as_str().map(str::to_owned))
        .max()
        .unwrap();
    let stuck: Vec<Value> = runs(&later)
        .into_iter()
        .filter(|r| r["status"] == "scheduled" || r["status"] == "running")
        .filter(|r| r["scheduled_for"].as_str().unwrap() < newest_final.as_str())
        .collect();
    assert!(stuck.is_empty(), "left unsettled: {stuck:#?}");

    // Nothing ran twice: each run id emitted `tick.ran` at most once, and
    // every succeeded run exactly once.
    nothing_ran_twice(&api, &later).await;
    drop(server);
}

const WAVES: &str = "/api/events?type=job.wave_started&limit=1000";

fn waves(page: &Value) -> Vec<Value> {
    page["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_after_a_wave_settles_its_run_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = served::serve(&data, ADMIN);
    let mut api = Api::create_tenant(&server.url, ADMIN).await;
    let runs_path = ticker(&api).await;
    api.until(&runs_path, |p| with_status(p, "succeeded").len() >= 2)
        .await;
    // Kill right after a new wave is durable: its run was started and its
    // job is being invoked (it spins 400 ms), its own start record maybe
    // not yet written.
    let seen = waves(&api.call(Method::GET, WAVES, None).await).len();
    let page = api.until(WAVES, |p| waves(p).len() > seen).await;
    drop(server); // SIGKILL
    let wave = waves(&page).last().cloned().unwrap();
    let at: chrono::DateTime<chrono::Utc> = wave["data"]["scheduled_for"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let of_wave = |r: &Value| {
        r["scheduled_for"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
            == Some(at)
    };

    let server = served::serve(&data, ADMIN);
    api.base = server.url.clone();
    // The wave's run is settled: it finished before the kill, or it is
    // failed `owner_died` with a start (the wave) recorded.
    let settled = api
        .until(&runs_path, |p| {
            runs(p)
                .iter()
                .any(|r| of_wave(r) && r["status"] != "scheduled" && r["status"] != "running")
        })
        .await;
    let run = runs(&settled).into_iter().find(|r| of_wave(r)).unwrap();
    let owner_died = run["status"] == "failed"
        && run["error"].as_str().unwrap().starts_with("owner_died")
        && run["started_at"].is_string();
    assert!(run["status"] == "succeeded" || owner_died, "{run}");
    // Runs resume after it, and nothing ran twice.
    let later = api
        .until(&runs_path, |p| {
            with_status(p, "succeeded")
                .iter()
                .filter(|r| {
                    r["scheduled_for"].as_str().unwrap() > run["scheduled_for"].as_str().unwrap()
                })
                .count()
                >= 3
        })
        .await;
    nothing_ran_twice(&api, &later).await;
    drop(server);
}
