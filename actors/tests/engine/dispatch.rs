//! The per-tenant dispatcher: hooks per event, lanes, checkpoints, restarts.

use std::time::Duration;

use extensor_actors::ActorStatus;
use extensor_actors::dispatcher::DispatcherMsg;
use extensor_core::event::{EventMeta, NewEvent, StreamId};
use extensor_core::store::ExpectedRevision;
use serde_json::json;

use crate::support::*;

/// A hook that returns what it saw, including the event id it carries.
const RECORDER: &str = "import { hook } from 'extensor:sdk';
hook('order.*', (e, ctx) => ({ n: e.data.n, type: e.type, eventId: ctx.invocation.eventId }));";

fn recorder(slug: &str) -> Vec<u8> {
    plugin(slug, "1.0.0", json!({"events": ["order.*"]}), RECORDER)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_each_matching_hook_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    // Published before the plugin is enabled: never dispatched to it.
    engine
        .publish(&tenant, "order.created", json!({"n": -1}), None, admin())
        .await
        .unwrap();
    let a = install(&engine, &tenant, recorder("rec-a")).await;
    let b = install(&engine, &tenant, recorder("rec-b")).await;
    let mut published = Vec::new();
    for n in 0..5 {
        let ty = if n % 2 == 0 {
            "order.created"
        } else {
            "user.created"
        };
        let ev = engine
            .publish(&tenant, ty, json!({"n": n}), None, admin())
            .await
            .unwrap();
        if ty.starts_with("order.") {
            published.push(ev.event_id);
        }
    }
    for id in [&a, &b] {
        let records = hook_records(engine.store(), id, published.len()).await;
        let seen: Vec<_> = records
            .iter()
            .map(|(_, r)| r.event_id.clone().unwrap())
            .collect();
        assert_eq!(seen, published, "in order, matching types only");
        for (ev, r) in &records {
            assert_eq!(ev.event_type, "hook.executed");
            let outcome = r.outcome.as_ref().unwrap();
            assert_eq!(
                outcome["eventId"],
                json!(r.event_id.as_ref().unwrap().to_string())
            );
            assert_eq!(
                ev.causation_id, r.event_id,
                "causation links the record to its event"
            );
        }
    }
    // test_event runs matching hooks now without storing an event.
    let runs = engine
        .test_event(&tenant, "order.tested", json!({"n": 99}))
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.outcome.as_ref().unwrap()["n"] == 99));
    assert!(
        engine
            .test_event(&tenant, "other.type", json!({}))
            .await
            .unwrap()
            .is_empty()
    );
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_throwing_hook_does_not_hold_up_others() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let slow_js =
        "import { hook } from 'extensor:sdk'; hook('order.created', () => { while (true) {} });";
    let slow = install(
        &engine,
        &tenant,
        plugin(
            "slow",
            "1.0.0",
            json!({"events": ["order.created"], "limits": {"timeout_ms": 400}}),
            slow_js,
        ),
    )
    .await;
    let throw_js = "import { hook } from 'extensor:sdk'; hook('order.created', () => { throw new Error('boom'); });";
    let thrower = install(
        &engine,
        &tenant,
        plugin(
            "thrower",
            "1.0.0",
            json!({"events": ["order.created"]}),
            throw_js,
        ),
    )
    .await;
    let fast = install(&engine, &tenant, recorder("fast")).await;
    let events = 3;
    for n in 0..events {
        engine
            .publish(&tenant, "order.created", json!({"n": n}), None, admin())
            .await
            .unwrap();
    }
    let fast_records = hook_records(engine.store(), &fast, events).await;
    let slow_records = hook_records(engine.store(), &slow, events).await;
    // All of the fast lane's work was recorded before the slow lane's last
    // record: three slow events take over a second of deadlines.
    let fast_last = fast_records.last().unwrap().0.position;
    let slow_last = slow_records.last().unwrap().0.position;
    assert!(
        fast_last < slow_last,
        "fast {fast_last} vs slow {slow_last}"
    );
    for (ev, r) in &slow_records {
        assert_eq!(ev.event_type, "hook.failed");
        assert_eq!(r.limit.as_deref(), Some("deadline"));
        assert_eq!(r.error_code.as_deref(), Some("plugin_timeout"));
    }
    let thrown = hook_records(engine.store(), &thrower, events).await;
    for (ev, r) in &thrown {
        assert_eq!(ev.event_type, "hook.failed");
        assert!(r.error.as_deref().unwrap().contains("boom"));
        assert_eq!(r.limit, None);
    }
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_checkpoint_without_losing_events() {
    let dir = tempfile::tempdir().unwrap();
    let (tenant, id, first_batch) = {
        let engine = start(dir.path()).await;
        let tenant = new_tenant(&engine, "acme").await;
        let id = install(&engine, &tenant, recorder("rec")).await;
        engine
            .set_secret(&tenant, &id, "K", "v", admin())
            .await
            .unwrap();
        for n in 0..3 {
            engine
                .publish(&tenant, "order.created", json!({"n": n}), None, admin())
                .await
                .unwrap();
        }
        hook_records(engine.store(), &id, 3).await;
        engine.shutdown(Duration::from_secs(5)).await;
        (tenant, id, 3)
    };
    // While no engine runs, another process appends business events.
    {
        let store = open_store(dir.path());
        for n in 3..6 {
            let meta = EventMeta::new(Some(tenant.clone()), admin());
            let ev = NewEvent::new("order.created", 1, meta, &json!({"n": n})).unwrap();
            store
                .append(
                    StreamId::business_events(&tenant),
                    ExpectedRevision::Any,
                    vec![ev],
                )
                .await
                .unwrap();
        }
    }
    let engine = start(dir.path()).await;
    // The same state comes back from the log.
    let view = engine.installation(&tenant, &id).await.unwrap();
    assert_eq!(
        view.status,
        extensor_core::installation::InstallationStatus::Enabled
    );
    assert_eq!(view.secret_keys, ["K"]);
    engine
        .publish(&tenant, "order.created", json!({"n": 6}), None, admin())
        .await
        .unwrap();
    let all = hook_records(engine.store(), &id, 7).await;
    let ns: Vec<i64> = all
        .iter()
        .map(|(_, r)| r.outcome.as_ref().unwrap()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ns,
        (0..7).collect::<Vec<_>>(),
        "resumed after {first_batch}, nothing lost or repeated"
    );
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_dispatcher_restarts_and_its_lanes_resume() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let id = install(&engine, &tenant, recorder("rec")).await;
    engine
        .publish(&tenant, "order.created", json!({"n": 0}), None, admin())
        .await
        .unwrap();
    hook_records(engine.store(), &id, 1).await;
    let path = format!("/tenants/{tenant}/dispatcher");
    let board = engine.status_board().clone();
    let dispatcher = engine.dispatcher(&tenant).await.unwrap();
    dispatcher.send_message(DispatcherMsg::Panic).unwrap();
    board
        .wait_until(
            &path,
            |i| i.restarts >= 1 && i.status == ActorStatus::Running,
            WAIT_MS,
        )
        .await
        .unwrap();
    for n in 1..3 {
        engine
            .publish(&tenant, "order.created", json!({"n": n}), None, admin())
            .await
            .unwrap();
    }
    let all = hook_records(engine.store(), &id, 3).await;
    let ns: Vec<i64> = all
        .iter()
        .map(|(_, r)| r.outcome.as_ref().unwrap()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [0, 1, 2]);
    // Disabling stops the lane; events meanwhile are not dispatched to it.
    engine.disable(&tenant, &id, admin()).await.unwrap();
    engine
        .publish(&tenant, "order.created", json!({"n": 99}), None, admin())
        .await
        .unwrap();
    engine.enable(&tenant, &id, admin()).await.unwrap();
    engine
        .publish(&tenant, "order.created", json!({"n": 3}), None, admin())
        .await
        .unwrap();
    let all = hook_records(engine.store(), &id, 4).await;
    assert_eq!(all[3].1.outcome.as_ref().unwrap()["n"], 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        stored_records(engine.store(), &id).await.len(),
        4,
        "n=99 never ran"
    );
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_events_chain_to_other_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let emitter = "import { hook } from 'extensor:sdk';
        hook('order.created', async (e, ctx) => ctx.emit('order.enriched', { n: e.data.n * 10 }));";
    install(
        &engine,
        &tenant,
        plugin(
            "enricher",
            "1.0.0",
            json!({"events": ["order.created"], "permissions": ["events.emit"]}),
            emitter,
        ),
    )
    .await;
    let sink_js = "import { hook } from 'extensor:sdk';
        hook('order.enriched', (e, ctx) => ({ n: e.data.n, depth: ctx.invocation.chainDepth }));";
    let sink = install(
        &engine,
        &tenant,
        plugin(
            "sink",
            "1.0.0",
            json!({"events": ["order.enriched"]}),
            sink_js,
        ),
    )
    .await;
    let source = engine
        .publish(&tenant, "order.created", json!({"n": 4}), None, admin())
        .await
        .unwrap();
    let records = hook_records(engine.store(), &sink, 1).await;
    let outcome = records[0].1.outcome.clone().unwrap();
    assert_eq!(outcome, json!({"n": 40, "depth": 1}));
    let enriched = engine
        .store()
        .read_stream(StreamId::business_events(&tenant), 1, 1)
        .await
        .unwrap();
    assert_eq!(enriched[0].causation_id.as_ref(), Some(&source.event_id));
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_tenant_dispatches_nothing_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let id = install(&engine, &tenant, recorder("rec")).await;
    engine
        .publish(&tenant, "order.created", json!({"n": 0}), None, admin())
        .await
        .unwrap();
    hook_records(engine.store(), &id, 1).await;
    engine.stop_tenant(&tenant).await.unwrap();
    let tree = engine.tree().await.unwrap();
    let sup = tree
        .actors
        .iter()
        .find(|a| a.path == format!("/tenants/{tenant}"))
        .unwrap();
    assert_eq!(sup.status, ActorStatus::Stopped);
    // Publishing is accepted (the log is the queue) but nothing runs.
    engine
        .publish(&tenant, "order.created", json!({"n": 1}), None, admin())
        .await
        .unwrap();
    assert!(matches!(
        engine.tenant(&tenant).await,
        Err(extensor_actors::Error::Stopped { .. })
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stored_records(engine.store(), &id).await.len(), 1);
    engine.resume_tenant(&tenant).await.unwrap();
    let all = hook_records(engine.store(), &id, 2).await;
    assert_eq!(all[1].1.outcome.as_ref().unwrap()["n"], 1);
    engine.shutdown(Duration::from_secs(5)).await;
}

/// Waits for a `hook.lane_claimed` of `id` with at least `epoch`.
async fn lane_claimed(
    store: &std::sync::Arc<dyn extensor_core::store::EventStore>,
    id: &extensor_core::ids::InstallationId,
    epoch: u64,
) {
    use futures::StreamExt;
    let filter = extensor_core::store::ReadFilter {
        stream: Some(extensor_actors::dispatcher::hooks_stream(id)),
        ..Default::default()
    };
    let mut events = store.subscribe_all(0, filter);
    let find = async {
        loop {
            let ev = events.next().await.expect("open").expect("event");
            if ev.event_type == "hook.lane_claimed" {
                let claim: extensor_actors::dispatcher::LaneClaim =
                    serde_json::from_str(ev.payload.get()).expect("claim");
                if claim.epoch >= epoch {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(WAIT_MS), find)
        .await
        .unwrap_or_else(|_| panic!("no lane claim {epoch} for {id}"));
}

/// Two lanes on one `hooks-<installation>` stream (a second engine on the
/// same store): once the newer lane claims the stream, the stale one runs
/// and records nothing; every event is recorded exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_hook_lane_is_fenced_by_a_newer_claim() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path()).await;
    let tenant = new_tenant(&a, "acme").await;
    let id = install(&a, &tenant, recorder("rec")).await;
    a.publish(&tenant, "order.created", json!({"n": 0}), None, admin())
        .await
        .unwrap();
    let first = hook_records(a.store(), &id, 1).await;
    assert_eq!(first[0].1.epoch, 1, "the first lane claimed epoch 1");
    let b = extensor_actors::Engine::start(config(dir.path(), a.store().clone()))
        .await
        .expect("second engine starts");
    b.publish(&tenant, "order.created", json!({"n": 1}), None, admin())
        .await
        .unwrap();
    lane_claimed(a.store(), &id, 2).await;
    // The stale lane (engine a's) is woken at once by its own appends.
    for n in 2..5 {
        a.publish(&tenant, "order.created", json!({"n": n}), None, admin())
            .await
            .unwrap();
    }
    b.publish(&tenant, "order.created", json!({"n": 5}), None, admin())
        .await
        .unwrap();
    let records = hook_records(a.store(), &id, 6).await;
    assert_eq!(records.last().unwrap().1.outcome.as_ref().unwrap()["n"], 5);
    let stored = stored_records(a.store(), &id).await;
    let ns: Vec<i64> = stored
        .iter()
        .map(|r| r.outcome.as_ref().unwrap()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, (0..6).collect::<Vec<_>>(), "each event recorded once");
    assert!(
        stored[2..].iter().all(|r| r.epoch == 2),
        "after the new claim only its lane records: {:?}",
        stored.iter().map(|r| r.epoch).collect::<Vec<_>>()
    );
    b.shutdown(Duration::from_secs(5)).await;
    a.shutdown(Duration::from_secs(5)).await;
}
