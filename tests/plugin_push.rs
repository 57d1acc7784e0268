//! `extensor plugin push` end to end against the real server: a real
//! `extensor serve` process on loopback over a temporary store, a tenant
//! created with `extensor tenant create`, the welcome-email example pushed
//! and enabled, then its route called over HTTP.

#[path = "common/served.rs"]
mod served;

use std::path::Path;
use std::process::Output;

use served::{extensor, serve, tenant};

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn push_uploads_enables_and_the_route_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = tenant(&data);
    let server = serve(&data, "admin-token-for-the-push-test-0123456789");
    let url = server.url.clone();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/welcome-email");
    let example = example.to_str().unwrap();
    let push = |extra: &[&str], token: &str| {
        let mut args = vec![
            "plugin", "push", example, "--server", &url, "--token", token, "--tenant", "acme",
        ];
        args.extend_from_slice(extra);
        extensor(&data, &args)
    };

    let o = push(&["--enable"], &token);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("installed welcome-email 1.0.0 as "),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("enabled "), "{}", out(&o));

    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{url}/ext/welcome-email/ping"))
        .bearer_auth(&token)
        .header("X-Tenant-Slug", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "plugin": "welcome-email"})
    );

    // The same files again: the deterministic ZIP is recognised as unchanged.
    let o = push(&[], &token);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("unchanged welcome-email 1.0.0"),
        "{}",
        out(&o)
    );

    // A wrong token is refused by the server, and the error says so.
    let o = push(&[], "not-a-real-token-0123456789abcdef");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("/api/plugins/upload answered 401"),
        "{}",
        err(&o)
    );
}

#[test]
fn push_refuses_locally_and_reports_unreachable_servers() {
    let dir = tempfile::tempdir().unwrap();
    // A broken plugin never leaves the machine: validation fails first.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("manifest.json"), "{}").unwrap();
    let o = extensor(
        dir.path(),
        &[
            "plugin",
            "push",
            broken.to_str().unwrap(),
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--tenant",
            "acme",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("$.slug: is required"), "{}", err(&o));
    assert!(
        !err(&o).contains("127.0.0.1:9"),
        "no request was made: {}",
        err(&o)
    );

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/welcome-email");
    let example = example.to_str().unwrap();
    // Nothing listens on the discard port: a connection error naming the URL.
    let o = extensor(
        dir.path(),
        &[
            "plugin",
            "push",
            example,
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--tenant",
            "acme",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("POST http://127.0.0.1:9/api/plugins/upload"),
        "{}",
        err(&o)
    );
    let o = extensor(
        dir.path(),
        &[
            "plugin", "push", example, "--server", "ftp://x", "--token", "t", "--tenant", "acme",
        ],
    );
    assert!(
        err(&o).contains("--server `ftp://x` is not an http:// or https:// base URL"),
        "{}",
        err(&o)
    );
}

/// `extensor jobs run` against the real server: the pushed daily-kpi
/// example's job runs now and the CLI prints its outcome; an unknown job is
/// the server's `job_not_found`, exit 1.
#[tokio::test]
async fn jobs_run_runs_a_pushed_plugins_job_now() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = tenant(&data);
    let server = serve(&data, "admin-token-for-the-push-test-0123456789");
    let url = server.url.clone();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/daily-kpi");
    let o = extensor(
        &data,
        &[
            "plugin",
            "push",
            example.to_str().unwrap(),
            "--server",
            &url,
            "--token",
            &token,
            "--tenant",
            "acme",
            "--enable",
        ],
    );
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let id = out(&o)
        .split_whitespace()
        .find(|w| w.starts_with("ins_"))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_owned()
        })
        .unwrap_or_else(|| panic!("no installation id in: {}", out(&o)));
    let run = |job: &str| {
        extensor(
            &data,
            &[
                "jobs", "run", "--server", &url, "--token", &token, "--tenant", "acme", &id, job,
            ],
        )
    };
    let o = run("compute_daily_kpis");
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains(": succeeded in "), "{}", out(&o));
    let o = run("no_such_job");
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(err(&o).contains("job_not_found"), "{}", err(&o));
}
