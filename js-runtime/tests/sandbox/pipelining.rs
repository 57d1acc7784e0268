//! Invocations queued on a busy isolate (issue 20's pipelining): each keeps
//! its own deadline, one queued behind an isolate that is discarded runs on
//! a fresh one, and one whose caller left never runs.

use std::sync::Arc;
use std::time::Duration;

use extensor_js::host::{InstallationScope, SecretStore};
use extensor_js::{HostServices, Installation, JsError, Sandbox, SandboxConfig};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use crate::support::*;

/// A secret store whose `get` says it was called, then answers only when
/// the test releases it (or never).
struct HeldSecrets {
    called: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

impl SecretStore for HeldSecrets {
    fn get<'a>(
        &'a self,
        _s: &'a InstallationScope,
        _k: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>> {
        Box::pin(async move {
            let _ = self.called.send(());
            self.release.notified().await;
            Ok(Some("released".into()))
        })
    }
}

/// A one-isolate pool, so every concurrent invocation queues on that isolate.
async fn one_isolate(code: &str, services: HostServices) -> Arc<Installation> {
    let sandbox = Sandbox::new(SandboxConfig {
        pool_isolates_max: 1,
        ..config()
    });
    let manifest = json!({"permissions": ["secrets.read"]});
    let plugin = sandbox.validate(&bundle(manifest, code)).await.unwrap();
    Arc::new(sandbox.install(plugin, scope("ins1"), services))
}

fn held() -> (HostServices, mpsc::UnboundedReceiver<()>, Arc<Notify>) {
    let (called, called_rx) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let services = HostServices {
        secrets: Some(Arc::new(HeldSecrets {
            called,
            release: release.clone(),
        })),
        ..HostServices::default()
    };
    (services, called_rx, release)
}

const CODE: &str = "import { hook } from 'extensor:sdk';
    hook('test.ping', async (e, ctx) => {
      console.log('ran ' + e.name);
      if (e.spinMs) { const end = Date.now() + e.spinMs; while (Date.now() < end) {} }
      if (e.wait) return await ctx.secrets.get('k');
      return e.name;
    });";

engine_tests! {

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_spent_queued_does_not_count_against_the_deadline() {
    let ins = one_isolate(CODE, HostServices::default()).await;
    // Three invocations of 60% of the deadline each, on one isolate: the
    // last finishes well past one deadline + grace after it was queued.
    let spin = DEADLINE_MS_TEST * 6 / 10;
    let calls: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let ins = ins.clone();
            tokio::spawn(async move {
                ins.invoke(hook("test.ping", json!({"name": name, "spinMs": spin})))
                    .await
            })
        })
        .collect();
    for (call, name) in calls.into_iter().zip(["a", "b", "c"]) {
        assert_eq!(call.await.unwrap().unwrap().value, json!(name));
    }
    assert_eq!(ins.warm_isolates(), 1, "one isolate ran all three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_queued_behind_a_discarded_isolate_runs_on_a_fresh_one() {
    let (services, mut called, _release) = held();
    let ins = one_isolate(CODE, services).await;
    let stuck = {
        let ins = ins.clone();
        tokio::spawn(async move {
            ins.invoke(hook("test.ping", json!({"name": "stuck", "wait": true})))
                .await
        })
    };
    // Positive marker: the first invocation is inside its host call, so
    // the isolate is busy and the next one queues on it.
    called.recv().await.unwrap();
    let queued = ins
        .invoke(hook("test.ping", json!({"name": "queued"})))
        .await;
    assert_eq!(queued.unwrap().value, json!("queued"));
    let err = stuck.await.unwrap().unwrap_err();
    assert!(matches!(err, JsError::Timeout { .. }), "{err:?}");
    let mut ran: Vec<String> = ins.recent_logs().into_iter().map(|l| l.message).collect();
    ran.sort();
    assert_eq!(ran, ["ran queued", "ran stuck"], "each ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_invocation_whose_caller_left_never_runs() {
    let (services, mut called, release) = held();
    let ins = one_isolate(CODE, services).await;
    let first = {
        let ins = ins.clone();
        tokio::spawn(async move {
            ins.invoke(hook("test.ping", json!({"name": "first", "wait": true})))
                .await
        })
    };
    called.recv().await.unwrap();
    let left = {
        let ins = ins.clone();
        tokio::spawn(async move { ins.invoke(hook("test.ping", json!({"name": "left"}))).await })
    };
    // Give it time to queue on the busy isolate (it may not have; the
    // assertion below holds either way), then its caller goes away.
    tokio::time::sleep(Duration::from_millis(100)).await;
    left.abort();
    assert!(left.await.unwrap_err().is_cancelled());
    release.notify_one();
    assert_eq!(first.await.unwrap().unwrap().value, json!("released"));
    // Positive marker: a later invocation ran, after where `left` queued.
    let last = ins.invoke(hook("test.ping", json!({"name": "last"}))).await;
    assert_eq!(last.unwrap().value, json!("last"));
    let ran: Vec<String> = ins.recent_logs().into_iter().map(|l| l.message).collect();
    assert_eq!(ran, ["ran first", "ran last"]);
    assert_eq!(ins.warm_isolates(), 1, "skipping it cost no isolate");
}

}
