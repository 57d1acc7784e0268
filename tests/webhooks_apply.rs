//! `extensor webhooks apply DIR` end to end against the real server: a
//! real `extensor serve` process on loopback over a temporary store, a
//! tenant from `extensor tenant create`, tenant secrets set over HTTP, then
//! the repository's `examples/webhooks/` applied (dry run first), changed,
//! pruned, and broken on purpose.

#[path = "common/api.rs"]
mod api;
#[path = "common/served.rs"]
mod served;

use std::path::{Path, PathBuf};
use std::process::Output;

use api::Api;
use serde_json::json;
use served::{Server, extensor, serve, tenant, text};

const SIGNING_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA=";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl Api {
    async fn webhooks(&self) -> Vec<(String, u64)> {
        let list = self.call(reqwest::Method::GET, "/api/webhooks", None).await;
        list["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["name"].as_str().unwrap().to_owned(),
                    w["revision"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

/// The position of `needle` in `haystack`, which must hold it.
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{haystack}"))
}

/// The server, the tenant and a scratch directory the phases share.
struct Env {
    dir: tempfile::TempDir,
    data: PathBuf,
    server: Server,
    token: String,
    api: Api,
}

impl Env {
    async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = tenant(&data);
        let server = serve(&data, "admin-token-for-the-webhooks-test-0123456789");
        let api = Api {
            http: reqwest::Client::new(),
            base: server.url.clone(),
            token: token.clone(),
        };
        for (key, value) in [
            ("WEBHOOK_URL", "https://hooks.example.test/releases"),
            ("WEBHOOK_SIGNING_KEY", SIGNING_KEY),
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.example.test/T000/B000",
            ),
        ] {
            let path = format!("/api/secrets/{key}");
            api.call(reqwest::Method::PUT, &path, Some(json!({ "value": value })))
                .await;
        }
        Env {
            dir,
            data,
            server,
            token,
            api,
        }
    }

    fn apply_as(&self, dir: &Path, token: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "webhooks",
            "apply",
            dir.to_str().unwrap(),
            "--server",
            &self.server.url,
            "--token",
            token,
            "--tenant",
            "acme",
        ];
        args.extend_from_slice(extra);
        extensor(&self.data, &args)
    }

    fn apply(&self, dir: &Path, extra: &[&str]) -> Output {
        self.apply_as(dir, &self.token, extra)
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("hooks")
    }

    fn transform(&self) -> PathBuf {
        self.work()
            .join("build-completed/transforms/build_completed.js")
    }
}

#[tokio::test]
async fn apply_creates_updates_deletes_and_refuses_invalid_directories() {
    let env = Env::start().await;
    // The repository's examples, as they are: dry run, then for real.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/webhooks");
    let o = env.apply(&examples, &["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    at(&text(&o), "+ build-completed (create)");
    at(&text(&o), "dry run: nothing was applied");
    assert!(
        env.api.webhooks().await.is_empty(),
        "a dry run records nothing"
    );
    let o = env.apply(&examples, &[]);
    assert!(o.status.success(), "{}", text(&o));
    at(&text(&o), "created build-completed (revision 1)");
    assert_eq!(env.api.webhooks().await, [("build-completed".into(), 1)]);

    copy_dir(&examples, &env.work());
    let original = std::fs::read_to_string(env.transform()).unwrap();
    add_change_and_prune(&env, &original).await;
    broken_on_purpose(&env, &original).await;

    // The slack-notifier plugin's webhooks folder has the same layout.
    let slack =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/slack-notifier/webhooks");
    let o = env.apply(&slack, &["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    at(&text(&o), "+ build-notifications (create)");
    at(&text(&o), "- build-completed (delete)");
    assert_eq!(env.api.webhooks().await, [("build-completed".into(), 2)]);

    // Refused by the server: a wrong token is named as such.
    let o = env.apply_as(&env.work(), "not-a-real-token-0123456789", &[]);
    assert_eq!(o.status.code(), Some(1));
    at(&text(&o), "answered 401");
}

/// A working copy: one more webhook as a lone YAML file, then a change and
/// a removal, then nothing to do.
async fn add_change_and_prune(env: &Env, original: &str) {
    let work = env.work();
    let audit =
        "api_version: v1\non: [\"auth.user.*\"]\ndelivery:\n  url: \"${SECRET:WEBHOOK_URL}\"\n";
    std::fs::write(work.join("audit-log.yaml"), audit).unwrap();
    std::fs::write(work.join("README.md"), "not a webhook").unwrap();
    let o = env.apply(&work, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(at(&out, "+ audit-log (create)") < at(&out, "created audit-log (revision 1)"));
    at(&out, "= build-completed (unchanged)");

    std::fs::write(env.transform(), original.replace("Build ${", "Build #${")).unwrap();
    std::fs::remove_file(work.join("audit-log.yaml")).unwrap();
    let o = env.apply(&work, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let diff = at(&out, "~ build-completed (update: revision 1 → 2)");
    assert!(diff < at(&out, "transforms/build_completed.js:"));
    assert!(diff < at(&out, "-     text: `Build ${"));
    assert!(at(&out, "-     text: `Build ${") < at(&out, "+     text: `Build #${"));
    let delete = at(&out, "- audit-log (delete)");
    // The whole diff comes first, then the changes.
    assert!(delete < at(&out, "updated build-completed (revision 2)"));
    assert!(delete < at(&out, "deleted audit-log"));
    assert_eq!(env.api.webhooks().await, [("build-completed".into(), 2)]);

    let o = env.apply(&work, &[]);
    assert!(o.status.success(), "{}", text(&o));
    at(
        &text(&o),
        "plan: 0 to create, 0 to update, 0 to delete, 1 unchanged",
    );
}

/// Every problem with its file, line and column, and nothing applied, not
/// even the valid change beside them.
async fn broken_on_purpose(env: &Env, original: &str) {
    let work = env.work();
    std::fs::write(env.transform(), original).unwrap();
    std::fs::create_dir_all(work.join("broken")).unwrap();
    let broken = "api_version: v1\non: [\"x.y\"]\ndelivery:\n  url: \"${SECRET:NOPE}\"\ncolour: blue\ntransform: {language: \"python\", entry: \"t.py#transform\"}\n";
    std::fs::write(work.join("broken/webhook.yaml"), broken).unwrap();
    std::fs::create_dir_all(work.join("Bad_Name")).unwrap();
    std::fs::create_dir_all(work.join("empty")).unwrap();
    let o = env.apply(&work, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let located = format!("{}:5:", work.join("broken/webhook.yaml").display());
    at(&out, &located);
    at(&out, "JavaScript or TypeScript");
    at(&out, "  ! broken (invalid: 2 problem(s))");
    at(&out, "Bad_Name: not a webhook name");
    at(&out, "no webhook.yaml in this folder");
    at(&out, "nothing was applied");
    assert_eq!(env.api.webhooks().await, [("build-completed".into(), 2)]);
}
