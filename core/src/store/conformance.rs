//! The conformance suite every [`EventStore`] backend must pass.
//!
//! A backend's test file implements [`Backend`] (how to get a fresh store and
//! how to reopen one) and invokes [`conformance_tests!`], which expands to one
//! `#[tokio::test]` per check. A backend that needs a server fails each check
//! loudly when the server is unreachable (PostgreSQL); one whose server cannot
//! run where the project is tested (KurrentDB) marks the checks
//! `#[ignore]`, so they compile everywhere and run only when asked for.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;

use super::verify::verify_chain;
use super::{EventStore, ExpectedRevision, ReadFilter, SnapshotRecord};
use crate::error::Error;
use crate::event::{EventMeta, NewEvent, Principal, StreamId};
use crate::ids::TenantId;

/// How a conformance check gets stores.
pub trait Backend: Send + Sync {
    type Store: EventStore + Clone;
    /// A fresh, empty store.
    fn fresh(&self) -> BoxFuture<'_, Self::Store>;
    /// Closes `store` and opens the same store again.
    fn reopen(&self, store: Self::Store) -> BoxFuture<'_, Self::Store>;
}

/// Expands to one test per conformance check, run against `$backend`.
/// Attributes after the backend go on every test: a backend whose server
/// cannot run where the project is tested passes
/// `#[ignore = "…"]`, so the suite is compiled everywhere and run with
/// `--ignored` where the server is.
#[macro_export]
macro_rules! conformance_tests {
    (@one [$(#[$attr:meta])*] $backend:expr; $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $check() {
            $crate::store::conformance::$check(&$backend).await;
        }
    };
    // The attributes travel as one token tree, so they can be repeated
    // for each check.
    (@each $attrs:tt $backend:expr; $($check:ident),*) => {
        $( $crate::conformance_tests!(@one $attrs $backend; $check); )*
    };
    ($backend:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::conformance_tests!(@each [$(#[$attr])*] $backend;
            append_and_read_stream, expected_revision_conflicts, global_order_and_read_all,
            read_filters, catch_up_then_live, subscribe_from_the_middle, concurrent_writers,
            conflicting_writers_lose_nothing, reopen_after_close, snapshots_are_a_versioned_cache,
            invalid_appends_write_nothing, hash_chain_verifies, lagging_subscriber_catches_up,
            read_event_by_id, read_newest_first);
    };
}

fn meta(tenant: &TenantId) -> EventMeta {
    EventMeta::new(Some(tenant.clone()), Principal::system())
}

fn event(tenant: &TenantId, event_type: &str, n: u64) -> NewEvent {
    NewEvent::new(event_type, 1, meta(tenant), &serde_json::json!({ "n": n }))
        .expect("serialisable")
}

/// The subscription's next event; a stall longer than
/// [`SUBSCRIPTION_STALL_SECS`], an end or an error fails the check.
async fn next_event(sub: &mut super::EventStream) -> crate::event::RecordedEvent {
    tokio::time::timeout(Duration::from_secs(SUBSCRIPTION_STALL_SECS), sub.next())
        .await
        .expect("subscription stalled")
        .expect("subscription ended")
        .expect("subscription error")
}

/// How long a check waits for one subscription event before calling it
/// stalled: generous, because CI shares 2 cores with other test binaries.
const SUBSCRIPTION_STALL_SECS: u64 = 30;

fn stream(name: &str) -> StreamId {
    StreamId::new("test", name).expect("valid stream name")
}

fn n_of(e: &crate::event::RecordedEvent) -> u64 {
    let v: serde_json::Value = serde_json::from_str(e.payload.get()).expect("json payload");
    v["n"].as_u64().expect("n")
}

pub async fn append_and_read_stream<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    let s = stream("a");
    assert_eq!(store.stream_revision(s.clone()).await.unwrap(), None);
    let r = store
        .append(
            s.clone(),
            ExpectedRevision::NoStream,
            (0..3).map(|n| event(&t, "t.x", n)).collect(),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.first_position, r.last_position, r.next_expected),
        (1, 3, 2)
    );
    let r = store
        .append(
            s.clone(),
            ExpectedRevision::Exact(2),
            vec![event(&t, "t.y", 3)],
        )
        .await
        .unwrap();
    assert_eq!((r.first_position, r.next_expected), (4, 3));
    assert_eq!(store.stream_revision(s.clone()).await.unwrap(), Some(3));
    let all = store.read_stream(s.clone(), 0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(all.iter().map(n_of).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(
        all.iter()
            .all(|e| e.stream == s && e.tenant.as_ref() == Some(&t))
    );
    let tail = store.read_stream(s.clone(), 2, 1).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].revision, 2);
    assert!(
        store
            .read_stream(stream("none"), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn expected_revision_conflicts<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    let s = stream("c");
    let err = store
        .append(
            s.clone(),
            ExpectedRevision::Exact(0),
            vec![event(&t, "t.x", 0)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: ExpectedRevision::Exact(0),
                actual: None,
                ..
            }
        ),
        "{err:?}"
    );
    store
        .append(
            s.clone(),
            ExpectedRevision::NoStream,
            vec![event(&t, "t.x", 0)],
        )
        .await
        .unwrap();
    let err = store
        .append(
            s.clone(),
            ExpectedRevision::NoStream,
            vec![event(&t, "t.x", 1)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                actual: Some(0),
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .append(
            s.clone(),
            ExpectedRevision::Exact(5),
            vec![event(&t, "t.x", 1)],
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("expected revision 5") && msg.contains("actual revision 0"),
        "{msg}"
    );
    store
        .append(s.clone(), ExpectedRevision::Any, vec![event(&t, "t.x", 1)])
        .await
        .unwrap();
    assert_eq!(
        store.read_stream(s, 0, 10).await.unwrap().len(),
        2,
        "conflicting appends wrote nothing"
    );
}

pub async fn global_order_and_read_all<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    for n in 0..20u64 {
        let s = stream(if n % 2 == 0 { "even" } else { "odd" });
        store
            .append(s, ExpectedRevision::Any, vec![event(&t, "t.x", n)])
            .await
            .unwrap();
    }
    let all = store
        .read_all(0, ReadFilter::default(), 1000)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert_eq!(
        all.iter().map(n_of).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    assert!(
        all.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at),
        "time follows position"
    );
    let page = store.read_all(5, ReadFilter::default(), 3).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        [6, 7, 8]
    );
    assert_eq!(store.head_position().await.unwrap(), 20);
}

pub async fn read_newest_first<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let (t1, t2) = (TenantId::generate(), TenantId::generate());
    for n in 1..=10u64 {
        let t = if n % 2 == 0 { &t1 } else { &t2 };
        store
            .append(stream("s"), ExpectedRevision::Any, vec![event(t, "t.x", n)])
            .await
            .unwrap();
    }
    let read = |before: u64, after: u64, f: ReadFilter, limit: usize| {
        let store = store.clone();
        async move {
            store
                .read_all_backward(before, after, f, limit)
                .await
                .unwrap()
                .iter()
                .map(|e| e.position)
                .collect::<Vec<_>>()
        }
    };
    let all = ReadFilter::default;
    assert_eq!(
        read(u64::MAX, 0, all(), 3).await,
        [10, 9, 8],
        "from the head"
    );
    assert_eq!(read(8, 0, all(), 3).await, [7, 6, 5], "before is exclusive");
    assert_eq!(read(4, 1, all(), 10).await, [3, 2], "after is exclusive");
    assert_eq!(read(1, 0, all(), 10).await, Vec::<u64>::new());
    assert_eq!(read(5, 5, all(), 10).await, Vec::<u64>::new());
    let of_t1 = || ReadFilter {
        tenant: Some(t1.clone()),
        ..Default::default()
    };
    assert_eq!(read(u64::MAX, 0, of_t1(), 2).await, [10, 8]);
    assert_eq!(read(8, 0, of_t1(), 10).await, [6, 4, 2], "the next page");
    let forward: Vec<(u64, String)> = store
        .read_all(0, of_t1(), 100)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.position, hex::encode(e.hash)))
        .collect();
    let mut backward: Vec<(u64, String)> = store
        .read_all_backward(u64::MAX, 0, of_t1(), 100)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.position, hex::encode(e.hash)))
        .collect();
    backward.reverse();
    assert_eq!(forward, backward, "the same events, reversed");
}

pub async fn read_filters<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let (t1, t2) = (TenantId::generate(), TenantId::generate());
    for n in 0..6u64 {
        let (t, ty) = if n % 2 == 0 {
            (&t1, "plugin.enabled")
        } else {
            (&t2, "tenant.renamed")
        };
        store
            .append(
                stream(&format!("s{}", n % 3)),
                ExpectedRevision::Any,
                vec![event(t, ty, n)],
            )
            .await
            .unwrap();
    }
    let read = |f: ReadFilter| {
        let store = store.clone();
        async move {
            store
                .read_all(0, f, 100)
                .await
                .unwrap()
                .iter()
                .map(n_of)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(ReadFilter {
            tenant: Some(t1.clone()),
            ..Default::default()
        })
        .await,
        [0, 2, 4]
    );
    assert_eq!(
        read(ReadFilter {
            stream: Some(stream("s1")),
            ..Default::default()
        })
        .await,
        [1, 4]
    );
    assert_eq!(
        read(ReadFilter {
            type_prefix: Some("tenant.".into()),
            ..Default::default()
        })
        .await,
        [1, 3, 5]
    );
    assert_eq!(
        read(ReadFilter {
            type_prefix: Some("plugin.enabled".into()),
            ..Default::default()
        })
        .await,
        [0, 2, 4]
    );
    assert_eq!(
        read(ReadFilter {
            position_max: Some(2),
            ..Default::default()
        })
        .await,
        [0, 1]
    );
    let all = store.read_all(0, ReadFilter::default(), 100).await.unwrap();
    let cut = all[3].recorded_at;
    let after_cut = read(ReadFilter {
        recorded_from: Some(cut),
        ..Default::default()
    })
    .await;
    assert!(after_cut.contains(&3) && !after_cut.is_empty());
    let before_cut = read(ReadFilter {
        recorded_before: Some(cut),
        ..Default::default()
    })
    .await;
    assert!(!before_cut.contains(&3));
    assert_eq!(
        after_cut.len() + before_cut.len(),
        6,
        "time ranges partition the log"
    );
    let combined = ReadFilter {
        tenant: Some(t2),
        type_prefix: Some("tenant".into()),
        stream: Some(stream("s0")),
        ..Default::default()
    };
    assert_eq!(read(combined).await, [3]);
}

pub async fn catch_up_then_live<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    const STORED: u64 = 2_500;
    const LIVE: u64 = 2_500;
    for chunk in (0..STORED).collect::<Vec<_>>().chunks(500) {
        let events = chunk.iter().map(|n| event(&t, "t.x", *n)).collect();
        store
            .append(stream("cu"), ExpectedRevision::Any, events)
            .await
            .unwrap();
    }
    let mut sub = store.subscribe_all(0, ReadFilter::default());
    let writer = {
        let store = store.clone();
        let t = t.clone();
        tokio::spawn(async move {
            for n in STORED..STORED + LIVE {
                store
                    .append(
                        stream("live"),
                        ExpectedRevision::Any,
                        vec![event(&t, "t.x", n)],
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while (seen.len() as u64) < STORED + LIVE {
        let ev = next_event(&mut sub).await;
        seen.push((ev.position, n_of(&ev)));
    }
    writer.await.unwrap();
    let positions: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        positions,
        (1..=STORED + LIVE).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        (0..STORED + LIVE).collect::<Vec<_>>()
    );
    let extra = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(
        extra.is_err(),
        "nothing beyond what was appended: {extra:?}"
    );
}

pub async fn subscribe_from_the_middle<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let (t1, t2) = (TenantId::generate(), TenantId::generate());
    for n in 0..10u64 {
        let t = if n % 2 == 0 { &t1 } else { &t2 };
        store
            .append(stream("m"), ExpectedRevision::Any, vec![event(t, "t.x", n)])
            .await
            .unwrap();
    }
    let filter = ReadFilter {
        tenant: Some(t1.clone()),
        ..Default::default()
    };
    let mut sub = store.subscribe_all(4, filter);
    store
        .append(
            stream("m"),
            ExpectedRevision::Any,
            vec![event(&t2, "t.x", 10), event(&t1, "t.x", 11)],
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = next_event(&mut sub).await;
        got.push(n_of(&ev));
    }
    assert_eq!(
        got,
        [4, 6, 8, 11],
        "only tenant 1's events after position 4"
    );
}

pub async fn concurrent_writers<B: Backend>(b: &B) {
    let store = b.fresh().await;
    const WRITERS: u64 = 32;
    const APPENDS: u64 = 40;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let t = TenantId::generate();
            let s = stream(&format!("w{w}"));
            for n in 0..APPENDS {
                let expected = if n == 0 {
                    ExpectedRevision::NoStream
                } else {
                    ExpectedRevision::Exact(n - 1)
                };
                store
                    .append(s.clone(), expected, vec![event(&t, "t.x", n)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store
        .read_all(0, ReadFilter::default(), 10_000)
        .await
        .unwrap();
    assert_eq!(all.len() as u64, WRITERS * APPENDS);
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=WRITERS * APPENDS).collect::<Vec<_>>()
    );
    let mut per_stream: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in &all {
        assert_eq!(e.revision, n_of(e), "revision follows the writer's order");
        per_stream
            .entry(e.stream.to_string())
            .or_default()
            .push(e.revision);
    }
    assert_eq!(per_stream.len() as u64, WRITERS);
    assert!(
        per_stream
            .values()
            .all(|r| *r == (0..APPENDS).collect::<Vec<_>>())
    );
}

/// Many writers race on one stream with exact expected revisions, retrying on
/// conflict: every intended event lands exactly once.
pub async fn conflicting_writers_lose_nothing<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let s = stream("shared");
    const WRITERS: u64 = 8;
    const EACH: u64 = 15;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let t = TenantId::generate();
            let mut conflicts = 0u32;
            for i in 0..EACH {
                loop {
                    let current = store.stream_revision(s.clone()).await.unwrap();
                    let expected = ExpectedRevision::from_current(current);
                    match store
                        .append(s.clone(), expected, vec![event(&t, "t.x", w * 1000 + i)])
                        .await
                    {
                        Ok(_) => break,
                        Err(Error::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = store.read_stream(s, 0, 10_000).await.unwrap();
    assert_eq!(events.len() as u64, WRITERS * EACH);
    let unique: HashSet<u64> = events.iter().map(n_of).collect();
    assert_eq!(
        unique.len() as u64,
        WRITERS * EACH,
        "no event lost or duplicated"
    );
    assert_eq!(
        events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        (0..WRITERS * EACH).collect::<Vec<_>>()
    );
}

pub async fn reopen_after_close<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    store
        .append(
            stream("r"),
            ExpectedRevision::NoStream,
            (0..5).map(|n| event(&t, "t.x", n)).collect(),
        )
        .await
        .unwrap();
    let before = store.read_all(0, ReadFilter::default(), 100).await.unwrap();
    let store = b.reopen(store).await;
    let after = store.read_all(0, ReadFilter::default(), 100).await.unwrap();
    assert_eq!(
        before
            .iter()
            .map(|e| (e.position, e.hash))
            .collect::<Vec<_>>(),
        after
            .iter()
            .map(|e| (e.position, e.hash))
            .collect::<Vec<_>>()
    );
    store
        .append(
            stream("r"),
            ExpectedRevision::Exact(4),
            vec![event(&t, "t.x", 5)],
        )
        .await
        .unwrap();
    let report = verify_chain(&store, None, &mut |_, _| {}).await.unwrap();
    assert_eq!(
        report.first_break, None,
        "the chain continues across a reopen"
    );
    assert_eq!(report.events_checked, 6);
}

pub async fn snapshots_are_a_versioned_cache<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let s = stream("snap");
    let snap = |version: u32, revision: u64| SnapshotRecord {
        stream: s.clone(),
        aggregate: "tenant".into(),
        snapshot_version: version,
        revision,
        position: revision + 1,
        state: format!("{{\"r\":{revision}}}"),
    };
    assert_eq!(
        store
            .load_snapshot(s.clone(), "tenant".into(), 1)
            .await
            .unwrap(),
        None
    );
    store.save_snapshot(snap(1, 10)).await.unwrap();
    store.save_snapshot(snap(1, 20)).await.unwrap();
    assert_eq!(
        store
            .load_snapshot(s.clone(), "tenant".into(), 1)
            .await
            .unwrap(),
        Some(snap(1, 20))
    );
    assert_eq!(
        store
            .load_snapshot(s.clone(), "tenant".into(), 2)
            .await
            .unwrap(),
        None,
        "other versions ignored"
    );
    assert_eq!(
        store
            .load_snapshot(s.clone(), "installation".into(), 1)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.delete_snapshots().await.unwrap(), 1);
    assert_eq!(
        store.load_snapshot(s, "tenant".into(), 1).await.unwrap(),
        None
    );
}

pub async fn invalid_appends_write_nothing<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    let s = stream("bad");
    let err = store
        .append(s.clone(), ExpectedRevision::Any, vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAppend { .. }), "{err:?}");
    let too_many = (0..=super::APPEND_EVENTS_MAX as u64)
        .map(|n| event(&t, "t.x", n))
        .collect();
    assert!(matches!(
        store
            .append(s.clone(), ExpectedRevision::Any, too_many)
            .await,
        Err(Error::InvalidAppend { .. })
    ));
    let mut bad_type = event(&t, "t.x", 0);
    bad_type.event_type = "no spaces allowed".into();
    let ok = event(&t, "t.x", 1);
    let err = store
        .append(s.clone(), ExpectedRevision::Any, vec![ok, bad_type])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no spaces allowed"), "{err}");
    let first = event(&t, "t.x", 2);
    let dup_id = first.event_id.clone();
    store
        .append(s.clone(), ExpectedRevision::Any, vec![first])
        .await
        .unwrap();
    let mut dup = event(&t, "t.x", 3);
    dup.event_id = dup_id;
    let err = store
        .append(
            s.clone(),
            ExpectedRevision::Any,
            vec![event(&t, "t.x", 4), dup],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already stored"), "{err}");
    let stored = store.read_all(0, ReadFilter::default(), 100).await.unwrap();
    assert_eq!(
        stored.iter().map(n_of).collect::<Vec<_>>(),
        [2],
        "only the valid append landed"
    );
    store
        .append(s, ExpectedRevision::Exact(0), vec![event(&t, "t.x", 5)])
        .await
        .unwrap();
    assert_eq!(
        store.head_position().await.unwrap(),
        2,
        "positions stay gap-free after refusals"
    );
}

pub async fn hash_chain_verifies<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    let empty = verify_chain(&store, None, &mut |_, _| {}).await.unwrap();
    assert_eq!((empty.events_checked, empty.first_break.clone()), (0, None));
    for n in 0..50 {
        store
            .append(
                stream(&format!("h{}", n % 4)),
                ExpectedRevision::Any,
                vec![event(&t, "t.x", n)],
            )
            .await
            .unwrap();
    }
    let mut calls = 0;
    let report = verify_chain(&store, None, &mut |_, _| calls += 1)
        .await
        .unwrap();
    assert_eq!(report.events_checked, 50);
    assert_eq!(report.first_break, None);
    assert!(calls >= 1);
    let all = store.read_all(0, ReadFilter::default(), 100).await.unwrap();
    assert!(all.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    assert_eq!(report.head_hash, hex::encode(all[49].hash));
}

/// A subscriber that stops reading while far more events are appended than
/// any live buffer holds still receives every event once, in order.
pub async fn lagging_subscriber_catches_up<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    store
        .append(
            stream("lag"),
            ExpectedRevision::Any,
            (0..10).map(|n| event(&t, "t.x", n)).collect(),
        )
        .await
        .unwrap();
    let mut sub = store.subscribe_all(0, ReadFilter::default());
    for _ in 0..10 {
        next_event(&mut sub).await;
    }
    // Let the subscriber reach the live phase and wait there.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), sub.next())
            .await
            .is_err()
    );
    const MORE: u64 = 20_000;
    for chunk in 0..MORE / 1_000 {
        let events = (0..1_000)
            .map(|i| event(&t, "t.x", 10 + chunk * 1_000 + i))
            .collect();
        store
            .append(stream("lag"), ExpectedRevision::Any, events)
            .await
            .unwrap();
    }
    for expected in 10..10 + MORE {
        let ev = next_event(&mut sub).await;
        assert_eq!(
            (ev.position, n_of(&ev)),
            (expected + 1, expected),
            "no gap, no duplicate after lagging"
        );
    }
}

/// `read_event` finds an event by id wherever it is; a duplicate id is
/// refused atomically (idempotent publishing relies on both).
pub async fn read_event_by_id<B: Backend>(b: &B) {
    let store = b.fresh().await;
    let t = TenantId::generate();
    let first = event(&t, "t.x", 1);
    let id = first.event_id.clone();
    store
        .append(
            stream("a"),
            ExpectedRevision::Any,
            vec![event(&t, "t.x", 0), first.clone()],
        )
        .await
        .unwrap();
    store
        .append(
            stream("b"),
            ExpectedRevision::Any,
            vec![event(&t, "t.x", 2)],
        )
        .await
        .unwrap();
    let found = store.read_event(id.clone()).await.unwrap().expect("found");
    assert_eq!(
        (found.stream.clone(), found.revision, n_of(&found)),
        (stream("a"), 1, 1)
    );
    let missing = crate::ids::EventId::generate();
    assert!(store.read_event(missing).await.unwrap().is_none());
    let err = store
        .append(stream("b"), ExpectedRevision::Any, vec![first])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEventId { .. }), "{err}");
    assert_eq!(
        store.read_stream(stream("b"), 0, 10).await.unwrap().len(),
        1
    );
}
