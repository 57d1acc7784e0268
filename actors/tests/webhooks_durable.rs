//! Webhook deliveries on the durable-work model, under faults: a real
//! store, real isolates, real HTTP receivers on loopback that go down and
//! come back. Each test injects the fault its guarantee names.

#[path = "webhooks/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use extensor_actors::Error;
use extensor_actors::webhooks::endpoint::{Endpoint, EndpointArgs, EndpointMsg};
use extensor_core::clock::ManualClock;
use extensor_core::store::ReadFilter;
use extensor_core::webhook::deliveries_stream;
use extensor_core::webhook::delivery::DeliveryStatus;
use extensor_core::webhook::registry::WebhookStatus;
use extensor_js::PrivateNetworks;
use ractor::Actor;
use serde_json::json;
use support::*;

/// The `i`s of the events a receiver got, each once.
fn distinct_is(rx: &Receiver) -> BTreeSet<u64> {
    rx.received()
        .iter()
        .filter_map(|r| r.json()["data"]["i"].as_u64())
        .collect()
}

async fn status(h: &Harness, name: &str) -> WebhookStatus {
    h.registry().await.webhooks[&name.parse().unwrap()].status
}

async fn disabled_events(h: &Harness) -> usize {
    let filter = ReadFilter {
        type_prefix: Some("webhook.disabled".into()),
        ..Default::default()
    };
    h.store.read_all(0, filter, 100).await.unwrap().len()
}

/// Events published while the endpoint cannot run (its start fails, it
/// is restarted with backoff until the policy gives up and marks it
/// failed) for longer than the old follower's give-up window (300 refusals,
/// 3 s at this tick) are all delivered once an operator restarts it. Before,
/// the follower skipped them and its cursor moved on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_while_an_endpoint_is_down_are_all_delivered() {
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply("builds", &yaml(""), &[]).await.unwrap();
    h.publish("build.completed", json!({"i": 0})).await;
    rx.wait_for(1).await;
    // The fault: the endpoint's start fails until the secrets come back.
    h.secrets.1.store(true, Ordering::SeqCst);
    h.restart_endpoint("builds").await;
    wait_until("the endpoint marked failed", || async {
        matches!(h.try_stats("builds").await, Err(Error::Failed { .. }))
    })
    .await;
    for i in 1..=30 {
        h.publish("build.completed", json!({"i": i})).await;
    }
    // Down longer than the old give-up window.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(rx.count(), 1, "nothing is sent while the endpoint is down");
    h.secrets.1.store(false, Ordering::SeqCst);
    h.restart_endpoint("builds").await;
    rx.wait_for(31).await;
    assert_eq!(distinct_is(&rx), (0..=30).collect());
    let all = h.settled("builds", 31).await;
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Delivered));
}

/// One crash-looping webhook does not hold up another of the same tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_webhook_does_not_stop_the_others() {
    let good = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &good.url("/"));
    h.apply("good", &yaml(""), &[]).await.unwrap();
    h.apply("bad", &yaml(""), &[]).await.unwrap();
    h.secrets.1.store(true, Ordering::SeqCst);
    h.restart_endpoint("bad").await;
    wait_until("the bad endpoint marked failed", || async {
        matches!(h.try_stats("bad").await, Err(Error::Failed { .. }))
    })
    .await;
    for i in 0..20 {
        h.publish("build.completed", json!({"i": i})).await;
    }
    good.wait_for(20).await;
    h.settled("good", 20).await;
    assert!(h.deliveries("bad").await.is_empty());
    h.secrets.1.store(false, Ordering::SeqCst);
    h.restart_endpoint("bad").await;
    h.settled("bad", 20).await;
    good.wait_for(40).await;
}

/// The scenario: 40 events while the receiver is down for 3 s,
/// retried every 200 ms (hundreds of failed attempts in a row): the webhook
/// is not disabled, and all 40 arrive, across a restart of the service in
/// the middle of the outage. Before, it was disabled after 50 failures in
/// a row and none arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_outage_never_disables_and_every_event_arrives_across_a_restart() {
    let rx = Receiver::start(always(200)).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    let retry = "retry: {max_attempts: 30, backoff: fixed, interval_ms: 200}\n";
    h.apply("builds", &yaml(&format!("  concurrency: 8\n{retry}")), &[])
        .await
        .unwrap();
    rx.set_down(true);
    for i in 0..40 {
        h.publish("build.completed", json!({"i": i})).await;
    }
    wait_until("more than 50 failed attempts in a row", || async {
        h.stats("builds").await.consecutive_failures > 60
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    h.stop().await;
    h.start().await;
    wait_until("failing on after the restart", || async {
        h.stats("builds").await.consecutive_failures > 120
    })
    .await;
    assert_eq!(status(&h, "builds").await, WebhookStatus::Active);
    rx.set_down(false);
    wait_until("all 40 arrived", || async { distinct_is(&rx).len() == 40 }).await;
    h.settled("builds", 40).await;
    assert_eq!(status(&h, "builds").await, WebhookStatus::Active);
    assert_eq!(disabled_events(&h).await, 0, "no webhook.disabled");
}

/// Time-based auto-disable on a manual clock: failing for 4 days does not
/// disable; failing without a single success for the whole period (5 days)
/// does, with a `webhook.disabled` naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_for_the_whole_period_is_disabled() {
    let rx = Receiver::start(always(503)).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    let clock = ManualClock::new(chrono::Utc::now());
    h.stop().await;
    h.config.clock = Arc::new(clock.clone());
    h.start().await;
    // The manual clock moves with real time (retries come due) and jumps
    // by days when the test says so.
    let running = Arc::new(AtomicBool::new(true));
    let driver = {
        let (clock, running) = (clock.clone(), running.clone());
        tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                clock.advance(chrono::Duration::milliseconds(5));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    h.secret("URL", &rx.url("/"));
    let retry = "retry: {max_attempts: 30, backoff: fixed, interval_ms: 200}\n";
    h.apply("builds", &yaml(retry), &[]).await.unwrap();
    h.publish("build.completed", json!({"i": 0})).await;
    rx.wait_for(2).await;
    clock.advance(chrono::Duration::days(4));
    let seen = rx.count();
    rx.wait_for(seen + 3).await;
    assert_eq!(
        status(&h, "builds").await,
        WebhookStatus::Active,
        "4 days of failures are not enough"
    );
    clock.advance(chrono::Duration::days(1));
    wait_until("disabled after 5 days", || async {
        status(&h, "builds").await == WebhookStatus::Disabled
    })
    .await;
    let reg = h.registry().await;
    let reason = reg.webhooks[&"builds".parse().unwrap()]
        .disabled_reason
        .clone()
        .unwrap();
    assert!(
        reason.contains("without a single success") && reason.contains("5 days"),
        "{reason}"
    );
    assert_eq!(disabled_events(&h).await, 1);
    running.store(false, Ordering::SeqCst);
    driver.await.unwrap();
}

/// Deliveries pending when a webhook is disabled stay pending and are
/// delivered when it is enabled again; events published while it is
/// disabled are not delivered (as with Svix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_resume_on_re_enable_and_disabled_time_events_are_not_sent() {
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    let retry = "retry: {max_attempts: 30, backoff: fixed, interval_ms: 50}\n";
    h.apply("builds", &yaml(retry), &[]).await.unwrap();
    rx.set_down(true);
    for i in 0..5 {
        h.publish("build.completed", json!({"i": i})).await;
    }
    wait_until("five pending, failing", || async {
        let s = h.stats("builds").await;
        s.pending == 5 && s.consecutive_failures >= 5
    })
    .await;
    h.set_enabled("builds", Some("maintenance")).await;
    // Attempts started before the endpoint saw the disable may end; wait
    // until it has and none is in flight.
    wait_until("the endpoint disabled and idle", || async {
        let s = h.stats("builds").await;
        !s.active && s.in_flight == 0
    })
    .await;
    rx.set_down(false);
    let during = h.publish("build.completed", json!({"i": 100})).await;
    // The positive marker: the disabled endpoint has read past the event.
    wait_until("the disabled endpoint passed over the event", || async {
        h.stats("builds").await.handled_through >= during
    })
    .await;
    assert_eq!(rx.count(), 0, "a disabled webhook sends nothing");
    assert_eq!(h.stats("builds").await.pending, 5, "still pending");
    h.set_enabled("builds", None).await;
    h.publish("build.completed", json!({"i": 200})).await;
    wait_until("the five and the one after", || async {
        distinct_is(&rx).len() == 6
    })
    .await;
    let got = distinct_is(&rx);
    assert_eq!(got, [0, 1, 2, 3, 4, 200].into_iter().collect());
    h.settled("builds", 6).await;
    assert!(!got.contains(&100), "published while disabled: not sent");
}

/// Fencing: a second endpoint on the same stream claims it with the next
/// epoch. The first, whose attempt was in flight, cannot record it and
/// stops; it attempts nothing more. (Both run outside a dispatcher, which
/// would restart a fenced endpoint of its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_endpoint_can_neither_record_nor_attempt() {
    let held: Script = Arc::new(|_| Reply {
        hold: true,
        ..Reply::status(200)
    });
    let rx = Receiver::start(held).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply("builds", &yaml(""), &[]).await.unwrap();
    let record = h.registry().await.webhooks[&"builds".parse().unwrap()].clone();
    let dispatcher = h.dispatcher.clone().unwrap();
    h.stop().await;
    let spawn = || async {
        let args = EndpointArgs {
            tenant: h.tenant.clone(),
            name: "builds".parse().unwrap(),
            record: record.clone(),
            config: h.config.clone(),
            dispatcher: dispatcher.clone(),
            wake: Arc::default(),
        };
        Actor::spawn(None, Endpoint, args).await.unwrap().0
    };
    let stats = |a: ractor::ActorRef<EndpointMsg>| async move {
        a.call(
            |reply| EndpointMsg::Stats { reply },
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap()
        .unwrap()
    };
    let first = spawn().await;
    let epoch = stats(first.clone()).await.epoch;
    assert!(epoch >= 1);
    h.publish("build.completed", json!({"i": 0})).await;
    first.send_message(EndpointMsg::Wake).unwrap();
    wait_until("the first endpoint's attempt in flight", || async {
        rx.arrived() == 1
    })
    .await;
    let twin = spawn().await;
    assert_eq!(stats(twin.clone()).await.epoch, epoch + 1);
    wait_until("the twin attempts the pending delivery", || async {
        rx.arrived() == 2
    })
    .await;
    rx.open_gate();
    wait_until("the stale endpoint stopped", || async {
        first.get_status() == ractor::ActorStatus::Stopped
    })
    .await;
    wait_until("the twin recorded its attempt", || async {
        h.deliveries("builds")
            .await
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    let stream = deliveries_stream(&h.tenant, &"builds".parse().unwrap());
    let records = h.store.read_stream(stream, 0, 1_000).await.unwrap();
    let attempts = records
        .iter()
        .filter(|r| r.event_type == "webhook.delivery_attempted")
        .count();
    assert_eq!(attempts, 1, "only the twin's attempt is recorded");
    // A new event reaches the twin only; the stale endpoint is gone.
    h.publish("build.completed", json!({"i": 1})).await;
    twin.send_message(EndpointMsg::Wake).unwrap();
    rx.wait_for(3).await;
    assert_eq!(distinct_is(&rx), [0, 1].into_iter().collect());
    twin.stop(None);
}

/// An operator restart right after a webhook is declared: the old
/// endpoint may finish its start (and claim) after the new one claimed;
/// the dispatcher restarts its current endpoint when it is fenced, so one
/// endpoint ends up delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restart_during_start_up_converges_on_one_endpoint() {
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply("builds", &yaml(""), &[]).await.unwrap();
    for _ in 0..3 {
        h.restart_endpoint("builds").await;
    }
    h.publish("build.completed", json!({"i": 7})).await;
    rx.wait_for(1).await;
    h.settled("builds", 1).await;
    assert_eq!(distinct_is(&rx), [7].into_iter().collect());
}

/// The retired count-based setting is refused at apply time with a message
/// that names the time-based rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retired_failure_count_setting_is_refused() {
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", "http://127.0.0.1:9/");
    let err = h
        .apply("builds", &yaml("retry: {disable_after_failures: 3}\n"), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("retry.disable_after_failures") && err.contains("no longer supported"),
        "{err}"
    );
}

/// Starting an endpoint costs O(pending deliveries), not O(history): after
/// the first start (which folds the whole stream and writes a snapshot of
/// its ledger) a restart reads the snapshot and the stream's tail, a
/// handful of reads, where the fold of 120,000 records takes at least 12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_with_a_long_history_starts_from_its_snapshot() {
    const DELIVERIES: usize = 60_000;
    let rx = Receiver::start(always(200)).await;
    let mut h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/"));
    h.apply("builds", &yaml(""), &[]).await.unwrap();
    assert_eq!(h.stats("builds").await.epoch, 1);
    h.stop().await;
    let stream = deliveries_stream(&h.tenant, &"builds".parse().unwrap());
    write_finished(&h, &stream, DELIVERIES, &|_| "build.old").await;
    let reads_at = |h: &Harness| h.sqlite.reads();
    let before = reads_at(&h);
    h.start().await;
    wait_until("the first start (full fold)", || async {
        h.try_stats("builds").await.is_ok_and(|s| s.epoch == 2)
    })
    .await;
    let full = reads_at(&h) - before;
    assert!(full >= 12, "the fold of 120,000 records took {full} reads");
    wait_until("a snapshot of the ledger", || async {
        let snap = h
            .store
            .load_snapshot(stream.clone(), "webhook_endpoint".into(), 1)
            .await
            .unwrap();
        snap.is_some_and(|s| s.revision >= (DELIVERIES * 2) as u64)
    })
    .await;
    h.stop().await;
    let before = reads_at(&h);
    h.start().await;
    wait_until("the restart", || async {
        h.try_stats("builds").await.is_ok_and(|s| s.epoch == 3)
    })
    .await;
    let restart = reads_at(&h) - before;
    assert!(
        restart <= 10,
        "a restart from the snapshot took {restart} reads (the full fold {full})"
    );
    assert_eq!(h.stats("builds").await.pending, 0);
    // And it still delivers.
    h.publish("build.completed", json!({"i": 1})).await;
    rx.wait_for(1).await;
}

/// Appends `n` finished deliveries (created + delivered, or failed for
/// every seventh) straight into a deliveries stream, 500 at a time.
async fn write_finished(
    h: &Harness,
    stream: &extensor_core::event::StreamId,
    n: usize,
    event_type: &(dyn Fn(usize) -> &'static str + Sync),
) {
    use extensor_core::event::{EventMeta, Principal};
    use extensor_core::ids::{DeliveryId, EventId};
    use extensor_core::store::ExpectedRevision;
    use extensor_core::webhook::delivery::{Created, DeliveryEvent, Finished, Origin};
    let meta = EventMeta::new(Some(h.tenant.clone()), Principal::system());
    let now = chrono::Utc::now();
    for chunk in 0..n.div_ceil(500) {
        let mut events = Vec::new();
        for i in chunk * 500..((chunk + 1) * 500).min(n) {
            let id = DeliveryId::generate();
            events.push(DeliveryEvent::Created(Box::new(Created {
                delivery_id: id.clone(),
                webhook_revision: 1,
                event_id: EventId::generate(),
                event_type: event_type(i).into(),
                event_position: 0,
                origin: Origin::Replay,
                at: now + chrono::Duration::microseconds(i as i64),
            })));
            let end = Finished {
                delivery_id: id,
                at: now,
                reason: None,
            };
            events.push(if i % 7 == 0 {
                DeliveryEvent::Failed(end)
            } else {
                DeliveryEvent::Delivered(end)
            });
        }
        let batch = extensor_actors::webhooks::attempt::to_new_events(&events, &meta).unwrap();
        h.store
            .append(stream.clone(), ExpectedRevision::Any, batch)
            .await
            .unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
    }
}

/// Listing deliveries with a filter reads the index, not the stream: a
/// filter that matches nothing answers with one read (the stream's head),
/// where the backward walk reads all 40,000 records; and what the index
/// answers is what the walk answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_listing_reads_the_index_not_the_stream() {
    use extensor_actors::webhooks::index::DeliveryIndex;
    use extensor_actors::webhooks::query::{self, DeliveryQuery};
    const DELIVERIES: usize = 20_000;
    let h = Harness::new(PrivateNetworks::Allow).await;
    let name: extensor_core::webhook::WebhookName = "builds".parse().unwrap();
    let stream = deliveries_stream(&h.tenant, &name);
    write_finished(&h, &stream, DELIVERIES, &|i| {
        if i % 2 == 0 {
            "order.paid"
        } else {
            "order.shipped"
        }
    })
    .await;
    let index = DeliveryIndex::new(h.dir.path().join("webhook_index"));
    let q = |status, event_type: Option<&str>, limit| DeliveryQuery {
        status,
        event_type: event_type.map(String::from),
        limit,
        ..DeliveryQuery::default()
    };
    // The first query indexes the stream.
    let newest = index
        .deliveries(&*h.store, &h.tenant, &name, &q(None, None, 5))
        .await
        .unwrap();
    assert_eq!(newest.len(), 5);
    let nothing = q(Some(DeliveryStatus::Pending), Some("order.paid"), 50);
    let before = h.sqlite.reads();
    let none = index
        .deliveries(&*h.store, &h.tenant, &name, &nothing)
        .await
        .unwrap();
    let index_reads = h.sqlite.reads() - before;
    assert!(none.is_empty());
    let before = h.sqlite.reads();
    let walked = query::deliveries(&*h.store, &h.tenant, &name, &nothing)
        .await
        .unwrap();
    let walk_reads = h.sqlite.reads() - before;
    assert!(walked.is_empty());
    assert!(
        // One read of the stream's head (plus at most one of the store's
        // head poller, which the dispatcher's follower keeps running).
        index_reads <= 2 && walk_reads >= 4,
        "index {index_reads} reads, walk {walk_reads}"
    );
    for filter in [
        q(Some(DeliveryStatus::Failed), None, 30),
        q(None, Some("order.shipped"), 30),
        q(Some(DeliveryStatus::Delivered), Some("order.paid"), 30),
    ] {
        let a = index
            .deliveries(&*h.store, &h.tenant, &name, &filter)
            .await
            .unwrap();
        let b = query::deliveries(&*h.store, &h.tenant, &name, &filter)
            .await
            .unwrap();
        let ids = |v: &[query::DeliveryView]| {
            v.iter()
                .map(|d| (d.created.delivery_id.clone(), d.status))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b), "{filter:?}");
        assert_eq!(a.len(), 30);
    }
    let one = &newest[0].created.delivery_id;
    let got = index
        .delivery(&*h.store, &h.tenant, &name, one)
        .await
        .unwrap();
    assert_eq!(got.map(|d| d.created.delivery_id), Some(one.clone()));
    // The index is a cache: deleted, it is rebuilt; damaged, the answer
    // comes from the stream.
    let first = |v: Vec<query::DeliveryView>| v[0].created.delivery_id.clone();
    let failed = q(Some(DeliveryStatus::Failed), None, 1);
    let want = first(
        query::deliveries(&*h.store, &h.tenant, &name, &failed)
            .await
            .unwrap(),
    );
    std::fs::remove_dir_all(h.dir.path().join("webhook_index")).unwrap();
    let rebuilt = index.deliveries(&*h.store, &h.tenant, &name, &failed).await;
    assert_eq!(first(rebuilt.unwrap()), want);
    let file = h
        .dir
        .path()
        .join("webhook_index")
        .join(format!("{}.sqlite", h.tenant));
    std::fs::write(&file, b"not a database").unwrap();
    let damaged = index.deliveries(&*h.store, &h.tenant, &name, &failed).await;
    assert_eq!(first(damaged.unwrap()), want);
}

/// A webhook transform's isolates count toward the engine's warm-isolate
/// cap: under the default cap its pool is among the engine's warm pools;
/// under a cap too small for any pool it is evicted after each use (and
/// rebuilt for the next delivery), so transforms cannot hold warm memory
/// beyond the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_isolates_count_toward_the_warm_isolate_cap() {
    use extensor_actors::engine::{Engine, EngineConfig};
    use extensor_core::event::{EventMeta, Principal};
    use extensor_core::secrets::SecretKey;
    use extensor_core::tenant::TenantCommand;
    use extensor_core::webhook::registry::WebhookSource;
    let rx = Receiver::start(always(200)).await;
    let yaml = format!(
        "api_version: v1\non: [\"build.*\"]\ndelivery:\n  url: \"{}\"\ntransform: {{language: javascript, entry: \"t.js\"}}\n",
        rx.url("/")
    );
    let transform = "export function transform(e) { return { n: e.data.i }; }\n";
    for (cap_bytes, kept) in [(None, true), (Some(1usize), false)] {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::load_with(dir.path(), |_| None).unwrap();
        let mut c = EngineConfig::new(open_store(&dir), dir.path().to_path_buf(), key);
        c.sandbox = sandbox_config(PrivateNetworks::Allow);
        if let Some(cap) = cap_bytes {
            c.warm_isolates_bytes_max = cap;
        }
        let store = c.store.clone();
        let engine = Engine::start(c).await.unwrap();
        let tenant = extensor_core::ids::TenantId::generate();
        let create = TenantCommand::Create {
            tenant_id: tenant.clone(),
            slug: "acme".parse().unwrap(),
            name: "acme".into(),
        };
        engine
            .tenant_execute(&tenant, create, Principal::platform_admin())
            .await
            .unwrap();
        let source = WebhookSource {
            yaml: yaml.clone(),
            files: [("t.js".to_owned(), transform.to_owned())].into(),
        };
        let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
        let build = |reply| extensor_actors::webhooks::DispatcherMsg::Apply {
            name: "builds".parse().unwrap(),
            source,
            mode: extensor_actors::webhooks::dispatcher::ApplyMode::Apply,
            if_revision: None,
            meta,
            reply,
        };
        let dispatcher = engine.webhooks(&tenant).await.unwrap();
        dispatcher
            .call(build, Some(Duration::from_secs(30)))
            .await
            .unwrap()
            .unwrap()
            .expect("webhook applied");
        assert!(engine.warm_pools().is_empty(), "applying installs no pool");
        let already = rx.count();
        for i in 0..2 {
            let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
            let ev = extensor_core::event::NewEvent::new("build.done", 1, meta, &json!({"i": i}))
                .unwrap();
            store
                .append(
                    extensor_core::event::StreamId::business_events(&tenant),
                    extensor_core::store::ExpectedRevision::Any,
                    vec![ev],
                )
                .await
                .unwrap();
            let got = rx.wait_for(already + i + 1).await;
            assert_eq!(got[already + i].json(), json!({"n": i}));
        }
        let pools = engine.warm_pools();
        if kept {
            assert_eq!(pools.len(), 1, "{pools:?}");
            assert!(pools[0].heap_bytes > 0, "{pools:?}");
        } else {
            assert!(pools.is_empty(), "evicted beyond the cap: {pools:?}");
        }
        engine.shutdown(Duration::from_secs(5)).await;
    }
}
