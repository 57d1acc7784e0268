//! slack-notifier: hooks post to a Slack incoming webhook whose URL is a
//! secret, through ctx.http; its webhooks-as-code transform runs in the
//! sandbox too. Slack is outside our control, so a loopback server speaks
//! its incoming-webhook protocol: POST JSON with a `text`, `200 ok`, or an
//! error status whose body names the reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use extensor_actors::webhooks::code::{self, Transformed};
use extensor_core::webhook::{WebhookName, WebhookSpec};
use extensor_js::host::net::GuardedHttp;
use extensor_js::{Bundle, HostServices, Installation, NetworkPolicy, PrivateNetworks};
use serde_json::{Value, json};

use crate::support::*;

const HOOK_PATH: &str = "/services/T0001/B0001/abcdefghijklmnop";
const ARCHIVED_PATH: &str = "/services/T0001/B0002/archivedchannel";

/// Slack's incoming-webhook answers, as documented by Slack.
/// Slack's answers are plain text.
fn slack_http(seen: &Seen) -> (u16, Vec<(String, String)>, String) {
    let (status, body) = slack(seen);
    (
        status,
        vec![("content-type".into(), "text/plain".into())],
        body,
    )
}

fn slack(seen: &Seen) -> (u16, String) {
    if seen.method != "POST" {
        return (405, "invalid_method".into());
    }
    match seen.path.as_str() {
        HOOK_PATH => {}
        ARCHIVED_PATH => return (410, "channel_is_archived".into()),
        _ => return (404, "no_service".into()),
    }
    if !seen
        .headers
        .to_ascii_lowercase()
        .contains("content-type: application/json")
    {
        return (400, "invalid_payload".into());
    }
    match serde_json::from_str::<Value>(&seen.body) {
        Ok(v) if v["text"].as_str().is_some_and(|t| !t.is_empty()) => (200, "ok".into()),
        Ok(_) => (400, "no_text".into()),
        Err(_) => (400, "invalid_payload".into()),
    }
}

/// The example's real files; the manifest additionally allows `localhost`,
/// where the mock Slack listens (the code is unchanged).
fn bundle_allowing_loopback() -> Bundle {
    let dir = example_dir("slack-notifier");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    manifest["allowed_hosts"]
        .as_array_mut()
        .unwrap()
        .push(json!("localhost"));
    example_bundle("slack-notifier").with_file("manifest.json", manifest.to_string())
}

async fn installed(webhook_url: Option<String>) -> Installation {
    let secrets: HashMap<String, String> = webhook_url
        .map(|u| ("SLACK_WEBHOOK_URL".to_string(), u))
        .into_iter()
        .collect();
    let http = GuardedHttp::new(NetworkPolicy {
        private_networks: PrivateNetworks::Allow,
        platform_allowed_hosts: None,
    })
    .unwrap();
    let services = HostServices {
        secrets: Some(Arc::new(MemSecrets(secrets))),
        http: Some(Arc::new(http)),
        ..HostServices::default()
    };
    let plugin = validate(&bundle_allowing_loopback()).await;
    sandbox().install(plugin, scope(), services)
}

#[tokio::test]
async fn the_example_validates_as_shipped_and_only_reaches_slack() {
    let plugin = validate(&example_bundle("slack-notifier")).await;
    assert_eq!(plugin.manifest.allowed_hosts, ["hooks.slack.com"]);
}

#[tokio::test]
async fn each_hook_posts_a_slack_message() {
    let server = HttpServer::start(Arc::new(slack_http)).await;
    let ins = installed(Some(server.url(HOOK_PATH))).await;
    let build = json!({"project": "api", "build_number": 42, "status": "failed", "branch": "main", "commit": "0123456789abcdef", "duration_seconds": 125, "url": "https://ci.example.com/42"});
    let out = ins.invoke(hook("build.completed", build)).await.unwrap();
    assert_eq!(out.value["posted"], json!(true));
    let deploy = json!({"service": "web", "environment": "production", "version": "v1.2.3"});
    ins.invoke(hook("deploy.finished", deploy)).await.unwrap();
    let user = json!({"user": {"email": "ada@example.com", "first_name": "Ada <script>"}});
    ins.invoke(hook("auth.user.created", user)).await.unwrap();

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let bodies: Vec<Value> = seen
        .iter()
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect();
    assert_eq!(
        bodies[0]["text"],
        json!(":x: Build #42 of *api* failed in 2m 5s")
    );
    let fields = bodies[0]["blocks"][1]["fields"].to_string();
    assert!(
        fields.contains("main") && fields.contains("0123456"),
        "{fields}"
    );
    assert!(
        !fields.contains("0123456789"),
        "commit is shortened: {fields}"
    );
    assert!(
        bodies[0]["blocks"][2]
            .to_string()
            .contains("<https://ci.example.com/42|Open details>")
    );
    assert_eq!(
        bodies[1]["text"],
        json!(":rocket: *web* v1.2.3 is live on production")
    );
    assert_eq!(
        bodies[2]["text"],
        json!(":wave: New sign-up: Ada &lt;script&gt; (ada@example.com)")
    );
}

#[tokio::test]
async fn slack_errors_and_a_missing_secret_fail_the_invocation() {
    let server = HttpServer::start(Arc::new(slack_http)).await;
    let build = json!({"project": "api", "build_number": 1, "status": "success"});
    for (path, reason) in [
        (ARCHIVED_PATH, "Slack answered 410: channel_is_archived"),
        (
            "/services/T0001/B0001/revoked",
            "Slack answered 404: no_service",
        ),
    ] {
        let ins = installed(Some(server.url(path))).await;
        let err = ins
            .invoke(hook("build.completed", build.clone()))
            .await
            .unwrap_err();
        assert!(thrown_message(&err).contains(reason), "{err:?}");
    }
    let ins = installed(None).await;
    let err = ins
        .invoke(hook("build.completed", build.clone()))
        .await
        .unwrap_err();
    assert!(
        thrown_message(&err).contains("secret SLACK_WEBHOOK_URL is not set"),
        "{err:?}"
    );
    // A webhook URL on a host the manifest does not allow is refused by the sandbox.
    let ins = installed(Some("https://example.com/services/x".into())).await;
    let err = ins
        .invoke(hook("build.completed", build))
        .await
        .unwrap_err();
    assert!(thrown_message(&err).contains("NetworkDenied"), "{err:?}");
}

/// The webhooks-as-code declaration, validated by the real spec parser, and
/// its transform run by the platform's own webhook code path
/// (`extensor_actors::webhooks::code`) in a sandbox isolate.
#[tokio::test]
async fn the_webhook_transform_builds_slack_messages_and_skips_branch_successes() {
    let dir = example_dir("slack-notifier/webhooks/build-notifications");
    let yaml = std::fs::read_to_string(dir.join("webhook.yaml")).unwrap();
    let spec = match WebhookSpec::parse(&yaml) {
        Ok(s) => s,
        Err(problems) => panic!("webhook.yaml should validate: {problems:#?}"),
    };
    let entry = spec.transform.as_ref().expect("a transform");
    assert_eq!(
        (entry.file.as_str(), entry.export.as_str()),
        ("transforms/build_completed.js", "transform")
    );
    assert_eq!(
        spec.secret_refs().into_iter().collect::<Vec<_>>(),
        ["SLACK_WEBHOOK_URL"]
    );
    assert!(spec.follows("build.completed") && !spec.follows("deploy.finished"));
    let files = BTreeMap::from([(
        entry.file.clone(),
        std::fs::read_to_string(dir.join(&entry.file)).unwrap(),
    )]);
    let name: WebhookName = "build-notifications".parse().unwrap();
    let code = match code::prepare(&sandbox(), "ten_examples", &name, 1, &spec, &files, None).await
    {
        Ok(Some(c)) => c,
        Ok(None) => panic!("the webhook has a transform"),
        Err(problems) => panic!("the transform should validate: {problems:#?}"),
    };
    let event = |status: &str, branch: &str| {
        json!({"id": "evt_1", "type": "build.completed", "tenant": "ten_examples", "time": "2026-11-24T10:00:00Z",
               "data": {"project": "api", "build_number": 7, "status": status, "branch": branch}})
    };
    match code
        .transform("att_1", "evt_1", &event("failed", "feature/x"))
        .await
        .unwrap()
    {
        Transformed::Body(body) => {
            assert_eq!(
                body["text"],
                json!(":x: Build #7 of *api* failed on feature/x")
            );
            assert!(
                body["blocks"][1]
                    .to_string()
                    .contains("event evt_1 at 2026-11-24T10:00:00Z")
            );
        }
        Transformed::Skip => panic!("a failed build is delivered"),
    }
    let skipped = code
        .transform("att_2", "evt_2", &event("success", "feature/x"))
        .await
        .unwrap();
    assert!(matches!(skipped, Transformed::Skip), "{skipped:?}");
    let main = code
        .transform("att_3", "evt_3", &event("success", "main"))
        .await
        .unwrap();
    assert!(matches!(main, Transformed::Body(_)), "{main:?}");
}
