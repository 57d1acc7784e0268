//! What only the PostgreSQL store has: several store instances (processes)
//! on one database, one listener session however many subscribe, the
//! versioned schema, and its URL.

mod support;

use std::time::Duration;

use extensor_core::Error;
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::store::verify::verify_chain;
use extensor_core::store::{EventStore, ExpectedRevision, ReadFilter};
use extensor_store_postgres::schema::SCHEMA_VERSION;
use extensor_store_postgres::{Location, PgConfig, PgOpenMode, PgStore};
use futures::StreamExt;
use support::TestStore;

fn one(n: u64) -> Vec<NewEvent> {
    let meta = EventMeta::new(None, Principal::system());
    vec![NewEvent::new("t.x", 1, meta, &serde_json::json!({ "n": n })).expect("event")]
}

fn stream(name: &str) -> StreamId {
    StreamId::new("pg", name).expect("stream")
}

/// Two instances (two pools, two listeners) append concurrently, some to
/// the same streams with exact expected revisions: the log has no gap, the
/// chain verifies, and every stream's revisions are dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_log() {
    const WRITERS: u64 = 8;
    const APPENDS: u64 = 25;
    let a = TestStore::fresh().await;
    let b = TestStore::open_on(a.db.clone()).await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        for (side, store) in [("a", a.clone()), ("b", b.clone())] {
            tasks.push(tokio::spawn(async move {
                let s = stream(&format!("shared{w}"));
                let mut landed = 0;
                while landed < APPENDS {
                    let current = store.stream_revision(s.clone()).await.unwrap();
                    let expected = ExpectedRevision::from_current(current);
                    match store.append(s.clone(), expected, one(landed)).await {
                        Ok(_) => landed += 1,
                        Err(Error::Conflict { .. }) => {}
                        Err(e) => panic!("{side}: {e}"),
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = WRITERS * APPENDS * 2;
    assert_eq!(a.head_position().await.unwrap(), total);
    let all = b.read_all(0, ReadFilter::default(), 10_000).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    for w in 0..WRITERS {
        let revisions: Vec<u64> = a
            .read_stream(stream(&format!("shared{w}")), 0, 1_000)
            .await
            .unwrap()
            .iter()
            .map(|e| e.revision)
            .collect();
        assert_eq!(revisions, (0..APPENDS * 2).collect::<Vec<_>>());
    }
    let report = verify_chain(&a, None, &mut |_, _| {}).await.unwrap();
    assert_eq!((report.events_checked, report.first_break), (total, None));
}

/// A subscriber on one instance receives what another instance appends,
/// through the notification, without polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_appends_arrive_live() {
    let ours = TestStore::fresh().await;
    let theirs = TestStore::open_on(ours.db.clone()).await;
    let mut sub = ours.subscribe_all(0, ReadFilter::default());
    for n in 1..=3 {
        // Idle in the live phase before each append.
        let idle = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
        assert!(idle.is_err(), "nothing new yet");
        let at = theirs
            .append(stream("t"), ExpectedRevision::Any, one(n))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the other instance's append arrives")
            .expect("open")
            .expect("event");
        assert_eq!(got.position, at.last_position);
    }
}

/// 10,000 subscribers cost one listener session: the sessions on the
/// database stay within the pool's bound plus one, and every subscriber
/// still gets the next append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subscribers_cost_one_listener() {
    const SUBSCRIBERS: usize = 10_000;
    let store = TestStore::fresh().await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::channel(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let mut sub = store.subscribe_all(0, ReadFilter::default());
        let seen_tx = seen_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = sub.next().await {
                if seen_tx.send(ev.position).await.is_err() {
                    return;
                }
            }
        });
    }
    let at = store
        .append(stream("s"), ExpectedRevision::Any, one(1))
        .await
        .unwrap();
    for _ in 0..SUBSCRIBERS {
        let got = tokio::time::timeout(Duration::from_secs(60), seen.recv()).await;
        assert_eq!(
            got.expect("every subscriber hears of it"),
            Some(at.last_position)
        );
    }
    let psql = store.psql().await;
    let sessions: i64 = psql
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let bound = extensor_store_postgres::CONNECTIONS_MAX_DEFAULT as i64 + 1;
    assert!(
        sessions <= bound,
        "{sessions} sessions for {SUBSCRIBERS} subscribers"
    );
}

/// A schema newer than this build is refused, naming both versions; a
/// read-only open of an empty database says there is no store; a database
/// with someone else's `events` table is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_versioned() {
    let store = TestStore::fresh().await;
    let location = store.db.location().clone();
    let psql = store.psql().await;
    let versions: Vec<i32> = psql
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    // Opening again migrates nothing and works.
    TestStore::open_on(store.db.clone()).await;
    psql.execute(
        "INSERT INTO schema_migrations (version, description) VALUES (999, 'from the future')",
        &[],
    )
    .await
    .unwrap();
    for mode in [PgOpenMode::Migrate, PgOpenMode::RequireCurrent] {
        let err = PgStore::open(PgConfig::new(location.clone(), mode))
            .await
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("schema version 999 is newer")
                && msg.contains(&format!("({SCHEMA_VERSION})")),
            "{msg}"
        );
        assert!(matches!(err, Error::StoreOpen { .. }), "{err:?}");
    }

    let empty = TestStore::fresh().await;
    let psql = empty.psql().await;
    psql.batch_execute("DROP TABLE events, snapshots, append_lock, schema_migrations")
        .await
        .unwrap();
    let err = PgStore::open(PgConfig::new(
        empty.db.location().clone(),
        PgOpenMode::RequireCurrent,
    ))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("no Extensor event store"), "{err}");
    psql.batch_execute("CREATE TABLE events (id int)")
        .await
        .unwrap();
    let err = PgStore::open(PgConfig::new(
        empty.db.location().clone(),
        PgOpenMode::Migrate,
    ))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("refusing to touch it"), "{err}");
}

/// Bad URLs and unreachable servers are typed errors naming the problem
/// (and never the password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_unreachable_servers_are_errors() {
    for url in [
        "mysql://root@db/x",
        "postgres://u@h",
        "postgres://u:pw@h:0x/d",
        "postgres:/nope",
    ] {
        let err = Location::parse(url)
            .err()
            .unwrap_or_else(|| panic!("{url} parsed"));
        assert!(matches!(err, Error::InvalidValue { .. }), "{url}: {err:?}");
        assert!(!err.to_string().contains(":pw@"), "{err}");
    }
    // Nothing listens on port 1.
    let nowhere = Location::parse("postgres://u:secret@127.0.0.1:1/x").unwrap();
    let err = PgStore::open(PgConfig::new(nowhere, PgOpenMode::Migrate))
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, Error::StoreOpen { .. }), "{err:?}");
    assert!(
        msg.contains("cannot connect") && msg.contains("127.0.0.1:1"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "{msg}");
    // A server that is there, a database that is not.
    let store = TestStore::fresh().await;
    let missing = store
        .db
        .location()
        .with_database("extensor_no_such_database");
    let err = PgStore::open(PgConfig::new(missing, PgOpenMode::Migrate))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

/// Bad appends are typed errors and write nothing: too many events, an
/// oversized payload, an event type with spaces, a repeated id within one
/// append, an expected revision from nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_appends_are_typed_errors() {
    let store = TestStore::fresh().await;
    let s = stream("bad");
    let meta = EventMeta::new(None, Principal::system());
    let big = "x".repeat(extensor_core::event::PAYLOAD_BYTES_MAX + 1);
    let oversized = NewEvent::new("t.x", 1, meta.clone(), &big).unwrap();
    let err = store
        .append(s.clone(), ExpectedRevision::Any, vec![oversized])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidAppend { .. }) && err.to_string().contains("limit"),
        "{err}"
    );
    let twice = one(1).pop().unwrap();
    let err = store
        .append(s.clone(), ExpectedRevision::Any, vec![twice.clone(), twice])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEventId { .. }), "{err}");
    let err = store
        .append(s.clone(), ExpectedRevision::Exact(u64::MAX), one(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { actual: None, .. }), "{err}");
    assert_eq!(
        store.head_position().await.unwrap(),
        0,
        "nothing was written"
    );
    // The store still works, and its sessions were not left in a transaction.
    for n in 0..20 {
        store
            .append(s.clone(), ExpectedRevision::Any, one(n))
            .await
            .unwrap();
    }
    assert_eq!(store.head_position().await.unwrap(), 20);
}

/// Callers that give up, and a store instance dropped while its writer
/// is inside a transaction, leave no session holding the append lock: the
/// other instance's next append goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_releases_the_lock() {
    let survivor = TestStore::fresh().await;
    for round in 0..10u64 {
        let doomed = TestStore::open_on(survivor.db.clone()).await;
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let doomed = doomed.clone();
                tokio::spawn(async move {
                    for n in 0.. {
                        let s = stream(&format!("d{w}"));
                        if doomed
                            .append(s, ExpectedRevision::Any, one(n))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                })
            })
            .collect();
        // Drop it wherever its writer is (often mid-transaction).
        tokio::time::sleep(Duration::from_millis(5 + round * 3)).await;
        for w in &writers {
            w.abort();
        }
        for w in writers {
            let _ = w.await;
        }
        drop(doomed);
        let done = tokio::time::timeout(
            Duration::from_secs(10),
            survivor.append(stream("s"), ExpectedRevision::Any, one(round)),
        )
        .await
        .expect("the append lock is free");
        done.unwrap();
    }
    let report = verify_chain(&survivor, None, &mut |_, _| {}).await.unwrap();
    assert_eq!(report.first_break, None);
    let positions: Vec<u64> = survivor
        .read_all(0, ReadFilter::default(), 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(
        positions,
        (1..=positions.len() as u64).collect::<Vec<_>>(),
        "no gap"
    );
}
