//! The email outbox survives a relay outage and a `kill -9`, tested from
//! outside: a real `extensor serve` process and a real SMTP relay
//! (aiosmtpd). With the relay down a hook sends 3 emails; once the outbox
//! has tried each (the positive marker: 3 failed attempts recorded) the
//! server is killed with SIGKILL, the relay comes back, the server starts
//! again over the same data, and all 3 messages must arrive.
//! `GET /api/outbox` shows them sent with their attempts, and no bodies to
//! a viewer.

#[path = "../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "common/api.rs"]
mod api;
#[path = "../js-runtime/tests/common/python.rs"]
mod python;
#[path = "common/served.rs"]
mod served;

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use api::Api;

const ADMIN: &str = "outbox-platform-admin-token-0123456789";

const MANIFEST: &str = r#"{
  "slug": "mailer",
  "name": "Mailer",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["send_email"],
  "events": ["user.created"]
}"#;

const MAIN: &str = r#"import { hook } from "extensor:sdk";
hook("user.created", async (e, ctx) => {
  const ids = [];
  for (const n of [1, 2, 3]) {
    ids.push(await ctx.email.send({ to: e.data.email, subject: "Welcome " + n, text: "Body " + n }));
  }
  return { ids };
});
"#;

/// A server whose outbox delivers to the loopback relay on `smtp_port`.
fn serve(data: &Path, smtp_port: u16) -> served::Server {
    let port = smtp_port.to_string();
    served::serve_with(
        data,
        ADMIN,
        &[
            ("EXTENSOR_SMTP_HOST", "127.0.0.1"),
            ("EXTENSOR_SMTP_PORT", port.as_str()),
            ("EXTENSOR_SMTP_FROM", "extensor@example.com"),
            ("EXTENSOR_SMTP_TLS", "none"),
        ],
    )
}

/// Uploads and enables the plugin whose hook sends 3 emails.
async fn install(api: &Api) {
    let zip = served::zip_of(&[("manifest.json", MANIFEST), ("main.js", MAIN)]);
    api.install_enabled("mailer.zip", zip).await;
}

fn count_of(events: &Value, kinds: &[&str]) -> usize {
    events["events"].as_array().map_or(0, |e| {
        e.iter()
            .filter(|e| kinds.iter().any(|k| e["type"] == *k))
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_while_the_relay_is_down_arrives_after_kill_9_and_restart() {
    let mut smtp = aiosmtpd::Smtp::start().await;
    smtp.stop();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, smtp.port);
    let mut api = Api::create_tenant(&server.url, ADMIN).await;
    install(&api).await;
    api.call(
        Method::POST,
        "/api/events",
        Some(json!({"event_type": "user.created", "event_data": {"email": "ada@example.com"}})),
    )
    .await;
    // Positive marker: the 3 messages are queued and each was tried
    // against the dead relay (recorded as a failed attempt, or on the old
    // code as failed for good).
    let tried = ["email.attempt_failed", "email.failed"];
    api.until("/api/events?type=email.&limit=100", |v| {
        count_of(v, &["email.queued"]) == 3 && count_of(v, &tried) >= 3
    })
    .await;
    assert!(smtp.messages().is_empty(), "the relay was down");
    drop(server); // SIGKILL: no graceful shutdown.

    smtp.resume().await;
    let server = serve(&data, smtp.port);
    api.base = server.url.clone();
    let mail = smtp.delivered(3).await;
    for n in 1..=3 {
        assert!(
            mail.iter().any(|m| m.contains(&format!("Welcome {n}"))),
            "message {n} arrived: {mail:?}"
        );
    }
    let outbox = api
        .until("/api/outbox", |v| {
            v["messages"]
                .as_array()
                .is_some_and(|m| m.len() == 3 && m.iter().all(|m| m["status"] == "sent"))
        })
        .await;
    for m in outbox["messages"].as_array().unwrap() {
        assert!(m["attempts"].as_u64().unwrap() >= 2, "retried: {m}");
        assert_eq!(m["to"], json!(["ada@example.com"]));
        assert!(m["text"].as_str().unwrap().starts_with("Body "), "{m}");
        assert!(m["finished_at"].is_string() && m["next_attempt_at"].is_null());
    }
    // Viewers see the fate of each message, not its body.
    let viewer = api
        .call(
            Method::POST,
            "/api/tokens",
            Some(json!({"name": "watcher", "role": "viewer"})),
        )
        .await;
    let viewer = Api {
        http: api.http.clone(),
        base: api.base.clone(),
        token: viewer["token"].as_str().expect("viewer token").to_owned(),
    };
    let seen = viewer
        .call(Method::GET, "/api/outbox?status=sent&limit=10", None)
        .await;
    let seen = seen["messages"].as_array().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|m| m["text"].is_null() && m["html"].is_null())
    );
    assert!(seen.iter().all(|m| m["subject"].is_string()));
    drop(server);
}
