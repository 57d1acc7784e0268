//! The webhook delivery engine end to end: a real store, real isolates,
//! real HTTP receivers on loopback. Retry intervals are milliseconds via the
//! declarations, so nothing sleeps for seconds.

#[path = "../../js-runtime/tests/common/python.rs"]
mod python;
#[path = "webhooks/support.rs"]
mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use extensor_actors::webhooks::dispatcher::DispatcherMsg;
use extensor_core::webhook::delivery::{DeliveryStatus, Origin};
use extensor_core::webhook::registry::WebhookStatus;
use extensor_core::webhook::retry::AttemptOutcome;
use extensor_js::PrivateNetworks;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::*;

/// `whsec_` secrets for the rotation test: 32 bytes each.
const KEY_NEW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA=";
const KEY_OLD: &str = "whsec_ZGlmZmVyZW50LWtleS1ieXRlcy1mb3ItdGVzdHMhIQ==";

/// HMAC-SHA256 written out from RFC 2104 over plain SHA-256: a second,
/// independent path to the signature the engine computes with `hmac`.
fn rfc2104_hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn expected_signature(secret: &str, r: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut msg = format!(
        "{}.{}.",
        r.header("webhook-id"),
        r.header("webhook-timestamp")
    )
    .into_bytes();
    msg.extend_from_slice(&r.body);
    format!("v1,{}", STANDARD.encode(rfc2104_hmac_sha256(&key, &msg)))
}

/// Verifies with the published `standardwebhooks` Python library (from the
/// test Python, which `scripts/test` installs; missing, the test fails).
fn verify_with_reference_library(secret: &str, requests: &[Received]) {
    let python = python::python(&["standardwebhooks"]);
    let cases: Vec<_> = requests
        .iter()
        .map(|r| json!({"body": String::from_utf8(r.body.clone()).unwrap(), "headers": {
            "webhook-id": r.header("webhook-id"), "webhook-timestamp": r.header("webhook-timestamp"), "webhook-signature": r.header("webhook-signature")}}))
        .collect();
    let script = "import json,sys\nfrom standardwebhooks.webhooks import Webhook\nsecret, cases = sys.argv[1], json.load(sys.stdin)\nfor c in cases:\n    Webhook(secret).verify(c['body'], c['headers'])\nprint(len(cases))\n";
    let mut child = std::process::Command::new(python)
        .args(["-c", script, secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference verification failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        requests.len().to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_transformed_and_signed_during_rotation() {
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/hook"));
    h.secret("SIGNING_NEW", KEY_NEW);
    h.secret("SIGNING_OLD", KEY_OLD);
    let yaml = "api_version: v1\non: [\"build.completed\", \"auth.user.*\"]\ndelivery:\n  url: \"${SECRET:URL}\"\n  headers: {X-Source: \"SBH\"}\n  signing: {alg: HMAC-SHA256, secrets: [\"${SECRET:SIGNING_NEW}\", \"${SECRET:SIGNING_OLD}\"]}\ntransform: {language: typescript, entry: \"t/shape.ts#shape\"}\n";
    let ts = "export function shape(e: {id: string, type: string, tenant: string, time: string, data: {n: number}}) {\n  return { kind: e.type, n: e.data.n * 2, id: e.id, tenant: e.tenant, time: e.time };\n}\n";
    h.apply("builds", yaml, &[("t/shape.ts", ts)])
        .await
        .unwrap();
    h.publish("build.completed", json!({"n": 1})).await;
    h.publish("build.started", json!({"n": 99})).await;
    h.publish("auth.user.created", json!({"n": 2})).await;
    let got = rx.wait_for(2).await;
    let views = h.settled("builds", 2).await;
    assert_eq!(views.len(), 2, "build.started does not match the patterns");
    let mut kinds: Vec<_> = got
        .iter()
        .map(|r| (r.json()["kind"].clone(), r.json()["n"].clone()))
        .collect();
    kinds.sort_by_key(|k| k.0.to_string());
    assert_eq!(
        kinds,
        vec![
            (json!("auth.user.created"), json!(4)),
            (json!("build.completed"), json!(2))
        ]
    );
    for r in &got {
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("x-source"), "SBH");
        assert!(
            r.header("webhook-id").starts_with("msg_"),
            "{:?}",
            r.headers
        );
        let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        let sigs: Vec<&str> = r.header("webhook-signature").split(' ').collect();
        assert_eq!(
            sigs,
            vec![
                expected_signature(KEY_NEW, r),
                expected_signature(KEY_OLD, r)
            ]
        );
        assert_eq!(r.json()["tenant"], json!(h.tenant.to_string()));
        let view = views
            .iter()
            .find(|v| v.created.delivery_id.as_str() == r.header("webhook-id"))
            .expect("the webhook-id is the delivery id");
        assert_eq!(
            view.created.event_id.as_str(),
            r.json()["id"].as_str().unwrap()
        );
        assert_eq!(
            (view.status, view.attempts.len(), view.attempts[0].status),
            (DeliveryStatus::Delivered, 1, Some(200))
        );
    }
    verify_with_reference_library(KEY_NEW, &got);
    verify_with_reference_library(KEY_OLD, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_with_the_same_webhook_id() {
    let script: Script = std::sync::Arc::new(|n| {
        if n == 0 {
            Reply {
                body: "overloaded".into(),
                ..Reply::status(500)
            }
        } else {
            Reply::status(200)
        }
    });
    let rx = Receiver::start(script).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply("builds", &yaml("retry: {max_attempts: 3, backoff: exponential, initial_interval_ms: 20, max_interval_ms: 40}\n"), &[]).await.unwrap();
    h.publish("build.completed", json!({})).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let v = &h.settled("builds", 1).await[0];
    assert_eq!(v.status, DeliveryStatus::Delivered);
    let statuses: Vec<_> = v.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(200)]);
    assert_eq!(
        v.attempts[0].response_excerpt.as_deref(),
        Some("overloaded")
    );
    let gap = v.attempts[1].at - v.attempts[0].at;
    assert!(
        gap >= chrono::Duration::milliseconds(10),
        "the retry waited its backoff: {gap}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let script: Script = std::sync::Arc::new(|n| {
        if n == 0 {
            Reply {
                headers: vec![("retry-after".into(), "1".into())],
                ..Reply::status(429)
            }
        } else {
            Reply::status(200)
        }
    });
    let rx = Receiver::start(script).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply(
        "builds",
        &yaml("retry: {max_attempts: 3, backoff: fixed, interval_ms: 10}\n"),
        &[],
    )
    .await
    .unwrap();
    h.publish("build.completed", json!({})).await;
    let v = &h.settled("builds", 1).await[0];
    let a = &v.attempts[0];
    assert_eq!(a.status, Some(429));
    assert!(
        a.next_attempt_at.unwrap() - a.at >= chrono::Duration::seconds(1),
        "Retry-After: 1 beats the 10 ms interval"
    );
    assert!(v.attempts[1].at - a.at >= chrono::Duration::milliseconds(990));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_endpoint_until_enabled() {
    let rx = Receiver::start(always(410)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply(
        "builds",
        &yaml("retry: {max_attempts: 5, backoff: fixed, interval_ms: 10}\n"),
        &[],
    )
    .await
    .unwrap();
    h.publish("build.completed", json!({})).await;
    let v = &h.settled("builds", 1).await[0];
    assert_eq!(
        (v.status, v.attempts.len()),
        (DeliveryStatus::Failed, 1),
        "410 is not retried"
    );
    assert!(
        v.reason.as_deref().unwrap().contains("gone"),
        "{:?}",
        v.reason
    );
    wait_until("webhook disabled", || async {
        h.registry()
            .await
            .webhooks
            .values()
            .all(|w| w.status == WebhookStatus::Disabled)
    })
    .await;
    let reg = h.registry().await;
    let w = reg.webhooks.values().next().unwrap();
    assert!(
        w.disabled_reason.as_deref().unwrap().contains("410"),
        "{:?}",
        w.disabled_reason
    );
    let disabled = h
        .store
        .read_all(
            0,
            extensor_core::store::ReadFilter {
                type_prefix: Some("webhook.disabled".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(disabled.len(), 1, "one webhook.disabled event in the log");
    h.publish("build.completed", json!({"while": "disabled"}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rx.count(), 1, "a disabled endpoint receives nothing");
    let name = "builds".parse().unwrap();
    let meta = extensor_core::event::EventMeta::new(
        Some(h.tenant.clone()),
        extensor_core::event::Principal::system(),
    );
    h.call(|reply| DispatcherMsg::SetEnabled {
        name,
        disabled: None,
        meta,
        reply,
    })
    .await
    .unwrap();
    h.publish("build.completed", json!({"after": "enable"}))
        .await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["data"], json!({"after": "enable"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_retry_then_fail_and_a_burst_of_failures_never_disables() {
    let script: Script = std::sync::Arc::new(|_| Reply {
        delay: Some(Duration::from_millis(400)),
        ..Reply::status(200)
    });
    let rx = Receiver::start(script).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    let extra = "  timeout_ms: 50\nretry: {max_attempts: 2, backoff: fixed, interval_ms: 10}\n";
    h.apply("builds", &yaml(extra), &[]).await.unwrap();
    h.publish("build.completed", json!({})).await;
    let v = &h.settled("builds", 1).await[0];
    assert_eq!(v.status, DeliveryStatus::Failed);
    assert_eq!(
        v.attempts
            .iter()
            .map(|a| a.outcome.clone())
            .collect::<Vec<_>>(),
        vec![AttemptOutcome::Timeout, AttemptOutcome::Timeout]
    );
    assert!(
        v.attempts
            .iter()
            .all(|a| a.latency_ms >= 50 && a.latency_ms < 400),
        "cut at the timeout"
    );
    assert!(v.reason.as_deref().unwrap().contains("no attempts left"));
    for _ in 0..4 {
        h.publish("build.completed", json!({})).await;
    }
    let all = h.settled("builds", 5).await;
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Failed));
    assert_eq!(h.stats("builds").await.consecutive_failures, 10);
    assert_eq!(
        h.registry().await.webhooks.values().next().unwrap().status,
        WebhookStatus::Active,
        "ten failed attempts in a row (the old limit was 3 here) do not disable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_hold_up_a_fast_one() {
    let slow_script: Script = std::sync::Arc::new(|_| Reply {
        hold: true,
        ..Reply::status(200)
    });
    let slow = Receiver::start(slow_script).await;
    let fast = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("SLOW", &slow.url("/"));
    h.secret("FAST", &fast.url("/"));
    let decl = |secret: &str| {
        format!(
            "api_version: v1\non: [\"build.*\"]\ndelivery:\n  url: \"${{SECRET:{secret}}}\"\n  concurrency: 2\n"
        )
    };
    h.apply("slow", &decl("SLOW"), &[]).await.unwrap();
    h.apply("fast", &decl("FAST"), &[]).await.unwrap();
    for i in 0..30 {
        h.publish("build.completed", json!({"i": i})).await;
    }
    fast.wait_for(30).await;
    assert_eq!(
        slow.count(),
        0,
        "the slow receiver has answered nothing yet"
    );
    assert_eq!(
        slow.arrived(),
        2,
        "only `concurrency` requests are in flight to it"
    );
    let stats = h.stats("slow").await;
    assert_eq!((stats.in_flight, stats.pending), (2, 30));
    slow.open_gate();
    slow.wait_for(30).await;
    h.settled("slow", 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_retries_survive_a_restart_with_the_same_id() {
    let script: Script = std::sync::Arc::new(|n| {
        if n == 0 {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    });
    let rx = Receiver::start(script).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply(
        "builds",
        &yaml("retry: {max_attempts: 4, backoff: fixed, interval_ms: 300}\n"),
        &[],
    )
    .await
    .unwrap();
    h.publish("build.completed", json!({"n": 1})).await;
    rx.wait_for(1).await;
    wait_until("first attempt recorded", || async {
        h.deliveries("builds")
            .await
            .first()
            .is_some_and(|d| d.attempts.len() == 1)
    })
    .await;
    h.stop().await;
    // Published while the engine is down: the cursor picks it up.
    h.publish("build.completed", json!({"n": 2})).await;
    h.start().await;
    let got = rx.wait_for(3).await;
    let views = h.settled("builds", 2).await;
    assert_eq!(views.len(), 2, "nothing forgotten, nothing duplicated");
    let first_id = got[0].header("webhook-id");
    let retried: Vec<_> = got
        .iter()
        .filter(|r| r.header("webhook-id") == first_id)
        .collect();
    assert_eq!(
        retried.len(),
        2,
        "the retry after the restart carries the same webhook-id"
    );
    assert_eq!(retried[1].json()["data"], json!({"n": 1}));
    let first = views
        .iter()
        .find(|v| v.created.delivery_id.as_str() == first_id)
        .unwrap();
    assert_eq!(
        first.attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![Some(503), Some(200)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms_that_throw_time_out_or_return_null() {
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    let js = "export function transform(e) {\n  if (e.type === 'build.throw') throw new Error('boom');\n  if (e.type === 'build.loop') { while (true) {} }\n  if (e.type === 'build.skip') return null;\n  return { ok: e.data.n };\n}\n";
    let decl = yaml(
        "transform: {language: javascript, entry: \"transform.js\"}\nretry: {max_attempts: 3, backoff: fixed, interval_ms: 10}\n",
    );
    h.apply("builds", &decl, &[("transform.js", js)])
        .await
        .unwrap();
    for t in ["build.throw", "build.loop", "build.skip", "build.ok"] {
        h.publish(t, json!({"n": 7})).await;
    }
    let views = h.settled("builds", 4).await;
    let by_type = |t: &str| views.iter().find(|v| v.created.event_type == t).unwrap();
    let thrown = by_type("build.throw");
    assert_eq!(
        (thrown.status, thrown.attempts.len()),
        (DeliveryStatus::Failed, 1),
        "code errors are not retried"
    );
    assert!(
        thrown.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("boom"),
        "{:?}",
        thrown.attempts[0].error
    );
    let looped = by_type("build.loop");
    assert_eq!(looped.status, DeliveryStatus::Failed);
    assert!(
        looped.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("Timeout"),
        "{:?}",
        looped.attempts[0].error
    );
    let skipped = by_type("build.skip");
    assert_eq!(
        (skipped.status, skipped.attempts.len()),
        (DeliveryStatus::Skipped, 0)
    );
    assert!(skipped.reason.as_deref().unwrap().contains("null"));
    assert_eq!(by_type("build.ok").status, DeliveryStatus::Delivered);
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json(), json!({"ok": 7}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_replay_and_test_deliveries() {
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    let before = chrono::Utc::now();
    h.publish("build.completed", json!({"old": true})).await;
    h.secret("URL", &rx.url("/"));
    h.apply("builds", &yaml(""), &[]).await.unwrap();
    h.publish("build.completed", json!({"new": true})).await;
    rx.wait_for(1).await;
    let first = h.settled("builds", 1).await.remove(0);
    let name = || "builds".parse().unwrap();
    let of = first.created.delivery_id.clone();
    let again = h
        .call(|reply| DispatcherMsg::Redeliver {
            name: name(),
            delivery: of.clone(),
            reply,
        })
        .await
        .unwrap();
    assert_ne!(again, of);
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].header("webhook-id"), again.as_str());
    assert_eq!(
        got[1].json()["id"],
        got[0].json()["id"],
        "the same event again"
    );
    let replayed = h
        .call(|reply| DispatcherMsg::Replay {
            name: name(),
            from: before,
            to: chrono::Utc::now(),
            reply,
        })
        .await
        .unwrap();
    assert_eq!(
        replayed, 2,
        "the replay covers the event from before the declaration too"
    );
    let got = rx.wait_for(4).await;
    assert!(
        got[2..]
            .iter()
            .any(|r| r.json()["data"] == json!({"old": true}))
    );
    let test_id = h
        .call(|reply| DispatcherMsg::SendTest {
            name: name(),
            reply,
        })
        .await
        .unwrap();
    let got = rx.wait_for(5).await;
    assert_eq!(got[4].header("webhook-id"), test_id.as_str());
    assert_eq!(got[4].json()["type"], json!("webhook.test"));
    let views = h.settled("builds", 5).await;
    let origins: Vec<_> = views.iter().map(|v| v.created.origin.clone()).collect();
    assert!(
        origins.contains(&Origin::Test)
            && origins.contains(&Origin::Replay)
            && origins.contains(&Origin::Redeliver { of })
    );
    let missing = extensor_core::ids::DeliveryId::generate();
    let err = h
        .actor_call_err(|reply| DispatcherMsg::Redeliver {
            name: name(),
            delivery: missing,
            reply,
        })
        .await;
    assert!(
        err.contains("delivery_not_found") || err.contains("no delivery"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_without_the_switch() {
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Refuse).await;
    h.secret("URL", &rx.url("/"));
    h.apply("builds", &yaml(""), &[]).await.unwrap();
    h.publish("build.completed", json!({})).await;
    let v = &h.settled("builds", 1).await[0];
    assert_eq!(v.status, DeliveryStatus::Failed);
    assert_eq!(v.attempts[0].outcome, AttemptOutcome::Refused);
    assert!(
        v.attempts[0].error.as_deref().unwrap().contains("Loopback"),
        "{:?}",
        v.attempts[0].error
    );
    assert_eq!(rx.arrived(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_declarations_are_refused_with_every_problem() {
    let h = Harness::new(PrivateNetworks::Allow).await;
    let err = |e: extensor_actors::Error| match e {
        extensor_actors::Error::Core {
            source: extensor_core::Error::InvalidWebhook(p),
            ..
        } => p,
        other => panic!("expected invalid_webhook, got {other}"),
    };
    let ps = err(h
        .apply(
            "a",
            "api_version: v1\non: [x]\ndelivery: {url: \"${SECRET:NOPE}\"}\n",
            &[],
        )
        .await
        .unwrap_err());
    assert!(
        ps[0]
            .message
            .contains("`${SECRET:NOPE}` refers to a tenant secret that does not exist"),
        "{ps:?}"
    );
    let ps = err(h.apply("a", "api_version: v1\non: [x]\ndelivery: {url: \"https://x.test\"}\ntransform: {language: python, entry: t.py}\n", &[]).await.unwrap_err());
    assert_eq!(ps[0].path, "webhook.yaml:4:23");
    assert!(ps[0].message.contains("JavaScript or TypeScript"));
    let ps = err(h.apply("a", "api_version: v1\non: [x]\ndelivery: {url: \"https://x.test\"}\ntransform: {language: javascript, entry: t.js}\n", &[("t.js", "export function transform( {")]).await.unwrap_err());
    assert!(
        ps.iter().any(|p| p.path.contains("t.js")),
        "a syntax error names its file: {ps:?}"
    );
    let ps = err(h.apply("a", "api_version: v1\non: [x]\ndelivery: {url: \"https://x.test\"}\ntransform: {language: javascript, entry: t.js#nope}\n", &[("t.js", "export function transform() {}")]).await.unwrap_err());
    assert!(!ps.is_empty());
    let huge = format!(
        "api_version: v1\non: [x]\ndelivery: {{url: \"https://x.test\"}}\ndescription: \"{}\"\n",
        "x".repeat(70_000)
    );
    let ps = err(h.apply("a", &huge, &[]).await.unwrap_err());
    assert!(
        ps.iter()
            .any(|p| p.message.contains("at most") || p.message.contains("limit")),
        "{ps:?}"
    );
    let deep = format!(
        "api_version: v1\non: [x]\ndelivery: {{url: \"https://x.test\"}}\nfilter: {{equals: {{a: {}1{}}}}}\n",
        "[".repeat(50),
        "]".repeat(50)
    );
    let ps = err(h.apply("a", &deep, &[]).await.unwrap_err());
    assert!(
        ps[0].message.contains("nesting") && ps[0].path.starts_with("webhook.yaml:4:"),
        "{ps:?}"
    );
    // Code that fails while loading names the webhook's file, not the
    // generated entry module.
    let with_t = "api_version: v1\non: [x]\ndelivery: {url: \"https://x.test\"}\ntransform: {language: javascript, entry: transforms/t.js}\n";
    for (code, what) in [
        (
            "while (true) {}\nexport function transform(e) { return e; }",
            "deadline",
        ),
        (
            "throw new Error('boom at load');\nexport function transform(e) { return e; }",
            "boom at load",
        ),
    ] {
        let ps = err(h
            .apply("a", with_t, &[("transforms/t.js", code)])
            .await
            .unwrap_err());
        assert!(
            ps.iter()
                .all(|p| !p.path.contains("extensor-webhook-entry")),
            "{what}: {ps:?}"
        );
        assert!(
            ps.iter()
                .any(|p| p.path.starts_with("transforms/t.js") && p.message.contains(what)),
            "{what}: {ps:?}"
        );
    }
    assert!(h.registry().await.webhooks.is_empty(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_secrets_are_encrypted_at_rest_and_resolve_references() {
    use extensor_actors::webhooks::SecretSource;
    use extensor_actors::webhooks::secrets::TenantSecrets;
    use extensor_core::aggregate::{self, SnapshotPolicy};
    use extensor_core::event::{EventMeta, Principal, StreamId};
    use extensor_core::secrets::{SecretBox, SecretKey};
    use extensor_core::tenant::{Tenant, TenantCommand};

    let rx = Receiver::start(always(200)).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    h.stop().await;
    let meta = EventMeta::new(Some(h.tenant.clone()), Principal::system());
    let create = TenantCommand::Create {
        tenant_id: h.tenant.clone(),
        slug: "acme".parse().unwrap(),
        name: "Acme".into(),
    };
    aggregate::execute::<Tenant>(
        &*h.store,
        &StreamId::tenant(&h.tenant),
        &create,
        &meta,
        SnapshotPolicy::DEFAULT,
    )
    .await
    .unwrap();
    let secrets = TenantSecrets {
        store: h.store.clone(),
        secret_box: SecretBox::new(SecretKey::generate().unwrap()),
    };
    let marker = "plaintext-marker-8c1f";
    let url = format!("{}?k={marker}", rx.url("/hook"));
    secrets
        .set(&h.tenant, "WEBHOOK_URL", &url, &meta)
        .await
        .unwrap();
    secrets.set(&h.tenant, "UNUSED", "x", &meta).await.unwrap();
    secrets.remove(&h.tenant, "UNUSED", &meta).await.unwrap();
    let keys: Vec<String> = secrets
        .keys(&h.tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(keys, vec!["WEBHOOK_URL"]);
    assert_eq!(
        secrets.secrets(&h.tenant).await.unwrap()["WEBHOOK_URL"],
        url
    );
    h.config.secrets = std::sync::Arc::new(secrets);
    h.start().await;
    let decl = "api_version: v1\non: [\"build.*\"]\ndelivery: {url: \"${SECRET:WEBHOOK_URL}\"}\n";
    h.apply("builds", decl, &[]).await.unwrap();
    h.publish("build.completed", json!({})).await;
    rx.wait_for(1).await;
    h.settled("builds", 1).await;
    h.stop().await;
    let mut scanned = 0;
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(
            !has(marker.as_bytes()),
            "plaintext secret found in the store files"
        );
        scanned += usize::from(has(b"webhook.delivered"));
    }
    assert!(scanned > 0, "the scan read the files holding the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_a_dispatcher_per_tenant_on_first_use() {
    use extensor_actors::webhooks::dispatcher::{ApplyMode, Change};
    use extensor_actors::webhooks::query::DeliveryQuery;
    use extensor_actors::webhooks::service::WebhookService;
    use extensor_core::event::{EventMeta, Principal};
    use extensor_core::webhook::registry::WebhookSource;

    let rx = Receiver::start(always(200)).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    h.stop().await;
    h.secret("URL", &rx.url("/"));
    let service = WebhookService::new(h.config.clone());
    let meta = || EventMeta::new(Some(h.tenant.clone()), Principal::system());
    let source = WebhookSource {
        yaml: yaml(""),
        files: Default::default(),
    };
    let name = || "builds".parse().unwrap();
    let dry = service
        .apply(&h.tenant, name(), source.clone(), ApplyMode::DryRun, meta())
        .await
        .unwrap();
    assert_eq!(dry.change, Change::Created);
    assert!(
        service
            .registry(&h.tenant)
            .await
            .unwrap()
            .webhooks
            .is_empty(),
        "a dry run records nothing"
    );
    let applied = service
        .apply(&h.tenant, name(), source.clone(), ApplyMode::Apply, meta())
        .await
        .unwrap();
    assert_eq!(
        (applied.change, applied.record.unwrap().revision),
        (Change::Created, 1)
    );
    let again = service
        .apply(&h.tenant, name(), source, ApplyMode::Apply, meta())
        .await
        .unwrap();
    assert_eq!(again.change, Change::Unchanged);
    let id = service.send_test(&h.tenant, name()).await.unwrap();
    rx.wait_for(1).await;
    let q = DeliveryQuery {
        status: Some(DeliveryStatus::Delivered),
        limit: 10,
        ..DeliveryQuery::default()
    };
    wait_until("test delivered", || async {
        service
            .deliveries(&h.tenant, &name(), &q)
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert_eq!(
        service.deliveries(&h.tenant, &name(), &q).await.unwrap()[0]
            .created
            .delivery_id,
        id
    );
    service.delete(&h.tenant, name(), meta()).await.unwrap();
    assert!(
        service.send_test(&h.tenant, name()).await.is_err(),
        "a deleted webhook is gone"
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_example_delivers() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/webhooks/build-completed"
    );
    let yaml = std::fs::read_to_string(format!("{dir}/webhook.yaml")).unwrap();
    let js = std::fs::read_to_string(format!("{dir}/transforms/build_completed.js")).unwrap();
    let rx = Receiver::start(always(204)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("WEBHOOK_URL", &rx.url("/dashboard"));
    h.secret("WEBHOOK_SIGNING_KEY", KEY_NEW);
    h.apply(
        "build-completed",
        &yaml,
        &[("transforms/build_completed.js", &js)],
    )
    .await
    .unwrap();
    h.publish(
        "build.completed",
        json!({"build": 41, "branch": "main", "status": "cancelled"}),
    )
    .await;
    h.publish(
        "build.completed",
        json!({"build": 42, "branch": "dev", "status": "passed"}),
    )
    .await;
    h.publish(
        "build.completed",
        json!({"build": 43, "branch": "main", "status": "passed"}),
    )
    .await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].json()["text"], json!("Build 43 on main: passed"));
    assert_eq!(got[0].header("x-source"), "SBH");
    assert_eq!(
        got[0].header("webhook-signature"),
        expected_signature(KEY_NEW, &got[0])
    );
    let views = h.settled("build-completed", 2).await;
    let statuses: Vec<_> = views.iter().map(|v| v.status).collect();
    assert_eq!(
        statuses,
        vec![DeliveryStatus::Delivered, DeliveryStatus::Skipped],
        "dev is filtered out; cancelled is skipped"
    );
}

/// Inside the engine: the webhook dispatcher is a tenant-supervisor child,
/// secrets are the tenant's (sealed with the platform key), events come
/// from `Engine::publish`, and after an engine restart a pending retry
/// resumes by itself (the tenant is started at boot because it has webhooks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_the_engine_deliveries_resume_after_a_restart() {
    use extensor_actors::Engine;
    use extensor_actors::engine::EngineConfig;
    use extensor_actors::webhooks::dispatcher::ApplyMode;
    use extensor_actors::webhooks::secrets::TenantSecrets;
    use extensor_core::event::{EventMeta, Principal};
    use extensor_core::secrets::{SecretBox, SecretKey};
    use extensor_core::tenant::TenantCommand;
    use extensor_core::webhook::registry::WebhookSource;

    let script: Script = std::sync::Arc::new(|n| {
        if n == 0 {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    });
    let rx = Receiver::start(script).await;
    let dir = tempfile::tempdir().unwrap();
    let start = || async {
        let key = SecretKey::load_with(dir.path(), |_| None).unwrap();
        let mut c = EngineConfig::new(open_store(&dir), dir.path().to_path_buf(), key);
        c.sandbox = sandbox_config(PrivateNetworks::Allow);
        Engine::start(c).await.unwrap()
    };
    let engine = start().await;
    let tenant = extensor_core::ids::TenantId::generate();
    let create = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: "acme".parse().unwrap(),
        name: "Acme".into(),
    };
    engine
        .tenant_execute(&tenant, create, Principal::platform_admin())
        .await
        .unwrap();
    let meta = EventMeta::new(Some(tenant.clone()), Principal::platform_admin());
    let store = engine.store().clone();
    let secrets = TenantSecrets {
        store,
        secret_box: SecretBox::new(SecretKey::load_with(dir.path(), |_| None).unwrap()),
    };
    secrets
        .set(&tenant, "URL", &rx.url("/"), &meta)
        .await
        .unwrap();
    let d = engine.webhooks(&tenant).await.unwrap();
    let source = WebhookSource {
        yaml: yaml("retry: {max_attempts: 3, backoff: fixed, interval_ms: 400}\n"),
        files: Default::default(),
    };
    let name = "builds".parse().unwrap();
    let m = meta.clone();
    d.call(
        |reply| DispatcherMsg::Apply {
            name,
            source,
            mode: ApplyMode::Apply,
            if_revision: None,
            meta: m,
            reply,
        },
        Some(Duration::from_secs(10)),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    engine
        .publish(
            &tenant,
            "build.completed",
            json!({"n": 1}),
            None,
            Principal::platform_admin(),
        )
        .await
        .unwrap();
    rx.wait_for(1).await;
    engine.shutdown(Duration::from_secs(5)).await;
    drop(engine);
    let engine = start().await;
    let got = rx.wait_for(2).await;
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "the retry after the restart has the same id"
    );
    engine.shutdown(Duration::from_secs(5)).await;
}

/// A backlog is bounded in bytes, and a full one pauses the endpoint's
/// reading for as long as it takes: the events it had no room for are never
/// skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_full_in_bytes_pauses_and_drops_nothing() {
    const CAP_BYTES: usize = 64 * 1024;
    const EVENTS: usize = 40;
    let held: Script = std::sync::Arc::new(|_| Reply {
        hold: true,
        ..Reply::status(200)
    });
    let rx = Receiver::start(held).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    h.stop().await;
    h.config.backlog_bytes_max = CAP_BYTES;
    h.start().await;
    h.secret("URL", &rx.url("/"));
    let decl = "api_version: v1\non: [\"big.*\"]\ndelivery:\n  url: \"${SECRET:URL}\"\n  concurrency: 1\n  timeout_ms: 30000\n";
    h.apply("big", decl, &[]).await.unwrap();
    let blob = "x".repeat(8 * 1024);
    h.publish("big.made", json!({"i": 0, "blob": blob})).await;
    wait_until("the first delivery is pending", || async {
        h.stats("big").await.pending == 1
    })
    .await;
    for i in 1..EVENTS {
        h.publish("big.made", json!({"i": i, "blob": blob})).await;
    }
    wait_until("reading paused for a full backlog", || async {
        h.stats("big").await.backlog_refusals > 0
    })
    .await;
    let stats = h.stats("big").await;
    assert!(stats.pending_bytes <= CAP_BYTES, "{stats:?}");
    assert!(stats.pending < EVENTS, "the follower paused: {stats:?}");
    rx.open_gate();
    let all = h.settled("big", EVENTS).await;
    assert_eq!(all.len(), EVENTS);
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Delivered));
    let mut seen: Vec<u64> = rx
        .received()
        .iter()
        .map(|r| r.json()["data"]["i"].as_u64().unwrap_or(u64::MAX))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..EVENTS as u64).collect::<Vec<_>>());
}
