//! `extensor ops suspend | resume` against a real `extensor serve`: the
//! tenant named by slug is suspended (its owner token is refused with
//! `tenant_suspended`) and resumed, and mistakes get clear errors.

#[path = "common/served.rs"]
mod served;

use served::{extensor, serve, tenant, text};

const ADMIN: &str = "cli-platform-admin-token-0123456789";

fn plugins_status(url: &str, owner: &str) -> u16 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/api/plugins"))
            .bearer_auth(owner)
            .header("X-Tenant-Slug", "acme")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn an_operator_suspends_and_resumes_a_tenant_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let owner = tenant(&data);
    let server = serve(&data, ADMIN);
    let ops = |args: &[&str]| {
        let mut all = vec!["ops"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--server", &server.url, "--token", ADMIN]);
        extensor(&data, &all)
    };
    assert_eq!(plugins_status(&server.url, &owner), 200);
    let o = ops(&["suspend", "--tenant", "acme", "--reason", "unpaid invoice"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("tenant acme (ten_"), "{}", text(&o));
    assert!(text(&o).contains("is suspended"), "{}", text(&o));
    assert_eq!(plugins_status(&server.url, &owner), 403);
    let again = ops(&["suspend", "--tenant", "acme", "--reason", "twice"]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already suspended"),
        "{}",
        text(&again)
    );
    let o = ops(&["resume", "--tenant", "acme"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("is active"), "{}", text(&o));
    assert_eq!(plugins_status(&server.url, &owner), 200);
    let missing = ops(&["resume", "--tenant", "nope"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no tenant `nope`"),
        "{}",
        text(&missing)
    );
    let o = extensor(
        &data,
        &[
            "ops",
            "suspend",
            "--tenant",
            "acme",
            "--reason",
            "x",
            "--server",
            &server.url,
            "--token",
            &owner,
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("403"), "{}", text(&o));
}
