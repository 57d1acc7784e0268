//! App scripts over HTTP only: the daily-kpi example's job, run now, listed
//! with its schedule, and read back from the run history; plus the refusals
//! (unknown job, a viewer running it, another tenant's plugin).

mod common;

use common::{Server, expect_problem, json_of};
use reqwest::Method;

/// The daily-kpi example as a ZIP (its files sit at the root).
fn daily_kpi() -> Vec<u8> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins/daily-kpi");
    common::zip_dir(&dir)
}

async fn installed_and_enabled(s: &Server, token: &str, slug: &str) -> String {
    s.install_enabled(daily_kpi(), token, slug).await
}

#[tokio::test]
async fn run_now_is_recorded_like_a_scheduled_run_and_listed() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let id = installed_and_enabled(&s, &owner, "acme").await;

    let (status, jobs) = json_of(
        s.req(
            Method::GET,
            &format!("/api/plugins/{id}/jobs"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let job = &jobs["jobs"][0];
    assert_eq!(job["name"], "compute_daily_kpis", "{jobs}");
    assert_eq!(job["timezone"], "UTC");
    assert_eq!(job["catch_up"], "run_once");
    assert!(
        job["next_run"].is_string(),
        "an enabled job has a next run: {jobs}"
    );

    let run_now = format!("/api/plugins/{id}/jobs/compute_daily_kpis/run-now");
    let (status, run) = json_of(
        s.req(Method::POST, &run_now, Some(&owner), Some("acme"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "finished within the wait: {run}");
    assert_eq!(run["finished"], true, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    assert!(run_id.starts_with("run_"), "{run}");

    let (status, page) = json_of(
        s.req(
            Method::GET,
            &format!("/api/plugins/{id}/runs"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{page}");
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["status"], "succeeded");
    assert!(runs[0]["duration_ms"].is_u64(), "{page}");

    let (status, one) = json_of(
        s.req(
            Method::GET,
            &format!("/api/plugins/{id}/runs/{run_id}"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["job"], "compute_daily_kpis");
    assert_eq!(one["trigger"], "run_now", "{one}");
}

#[tokio::test]
async fn unknown_jobs_viewers_and_other_tenants_are_refused() {
    let s = Server::start().await;
    let (_, owner) = s.tenant("acme").await;
    let (_, viewer) = s.token("acme", &owner, "viewer").await;
    let (_, other) = s.tenant("globex").await;
    let id = installed_and_enabled(&s, &owner, "acme").await;

    let post = |path: String, tok: String, slug: &'static str| {
        s.req(Method::POST, &path, Some(&tok), Some(slug)).send()
    };
    let unknown = format!("/api/plugins/{id}/jobs/no_such_job/run-now");
    expect_problem(
        post(unknown, owner.clone(), "acme").await.unwrap(),
        404,
        "job_not_found",
    )
    .await;
    let real = format!("/api/plugins/{id}/jobs/compute_daily_kpis/run-now");
    expect_problem(
        post(real.clone(), viewer, "acme").await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    // Another tenant's plugin id answers exactly like an absent one.
    expect_problem(
        post(real, other.clone(), "globex").await.unwrap(),
        404,
        "plugin_not_found",
    )
    .await;
    let r = s
        .req(
            Method::GET,
            &format!("/api/plugins/{id}/runs/not-a-run-id"),
            Some(&owner),
            Some("acme"),
        )
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "run_not_found").await;
}
