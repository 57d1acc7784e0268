//! The kernel against the real embedded store: aggregates rebuilt from
//! events and snapshots, schema upcasting, and hostile or broken files.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::Utc;
use extensor_core::aggregate::{self, AsOf, SnapshotPolicy};
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::role::Role;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::verify::verify_chain;
use extensor_core::store::{EventStore, ExpectedRevision, ReadFilter};
use extensor_core::tenant::{IssueToken, Tenant, TenantCommand};
use extensor_core::{Error, ids::TokenId};

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir, OpenMode::CreateIfMissing)).expect("open store")
}

fn admin() -> EventMeta {
    EventMeta::new(None, Principal::platform_admin())
}

async fn create_tenant(store: &SqliteStore, policy: SnapshotPolicy) -> (TenantId, StreamId) {
    let id = TenantId::generate();
    let stream = StreamId::tenant(&id);
    let cmd = TenantCommand::Create {
        tenant_id: id.clone(),
        slug: "acme".parse().unwrap(),
        name: "Acme".into(),
    };
    aggregate::execute::<Tenant>(store, &stream, &cmd, &admin(), policy)
        .await
        .unwrap();
    (id, stream)
}

async fn rename(store: &SqliteStore, stream: &StreamId, n: u64, policy: SnapshotPolicy) {
    let cmd = TenantCommand::Rename {
        name: format!("Acme {n}"),
    };
    aggregate::execute::<Tenant>(store, stream, &cmd, &admin(), policy)
        .await
        .unwrap();
}

#[tokio::test]
async fn snapshots_change_speed_not_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let policy = SnapshotPolicy {
        every_events: Some(10),
    };
    let (_, stream) = create_tenant(&store, policy).await;
    for n in 0..35 {
        rename(&store, &stream, n, policy).await;
    }
    let with = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    assert!(
        with.events_applied < 10,
        "rebuilt from a snapshot plus a short tail ({})",
        with.events_applied
    );
    assert_eq!(with.state.name, "Acme 34");
    assert_eq!(with.revision, Some(35));
    assert!(store.delete_snapshots().await.unwrap() >= 1);
    let without = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    assert_eq!(without.events_applied, 36);
    assert_eq!(
        without.state, with.state,
        "deleting snapshots changes no state"
    );
    assert_eq!(
        (without.revision, without.position),
        (with.revision, with.position)
    );
}

#[tokio::test]
async fn snapshots_of_another_code_version_or_unreadable_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (_, stream) = create_tenant(&store, SnapshotPolicy::NEVER).await;
    rename(&store, &stream, 1, SnapshotPolicy::NEVER).await;
    let truth = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    // A snapshot an older build wrote, in a shape this build does not know.
    let old = extensor_core::store::SnapshotRecord {
        stream: stream.clone(),
        aggregate: "tenant".into(),
        snapshot_version: 0,
        revision: 1,
        position: 2,
        state: "{\"legacy\":true}".into(),
    };
    store.save_snapshot(old).await.unwrap();
    let loaded = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    assert_eq!(
        (loaded.state, loaded.events_applied),
        (truth.state.clone(), 2)
    );
    // Same version number but garbage content: also ignored, never misread.
    let garbage = extensor_core::store::SnapshotRecord {
        stream: stream.clone(),
        aggregate: "tenant".into(),
        snapshot_version: 1,
        revision: 1,
        position: 2,
        state: "{\"status\": 42}".into(),
    };
    store.save_snapshot(garbage).await.unwrap();
    let loaded = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    assert_eq!(loaded.state, truth.state);
}

#[tokio::test]
async fn state_as_of_a_past_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let policy = SnapshotPolicy {
        every_events: Some(2),
    };
    let (_, stream) = create_tenant(&store, policy).await;
    for n in 0..5 {
        rename(&store, &stream, n, policy).await;
    }
    let at2 = aggregate::load::<Tenant>(&store, &stream, AsOf::Position(2))
        .await
        .unwrap();
    assert_eq!((at2.state.name.as_str(), at2.position), ("Acme 0", 2));
    let at1 = aggregate::load::<Tenant>(&store, &stream, AsOf::Position(1))
        .await
        .unwrap();
    assert_eq!(at1.state.name, "Acme");
    let before = aggregate::load::<Tenant>(&store, &stream, AsOf::Position(0))
        .await
        .unwrap();
    assert_eq!(before.revision, None);
}

#[tokio::test]
async fn concurrent_commands_retry_on_conflict_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (_, stream) = create_tenant(&store, SnapshotPolicy::NEVER).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, stream) = (store.clone(), stream.clone());
        tasks.push(tokio::spawn(async move {
            let cmd = TenantCommand::IssueToken(IssueToken {
                token_id: TokenId::generate(),
                name: format!("t{i}"),
                role: Role::Viewer,
                token_hash: "sha256:00".into(),
                issued_at: Utc::now(),
                expires_at: None,
            });
            aggregate::execute::<Tenant>(&store, &stream, &cmd, &admin(), SnapshotPolicy::NEVER)
                .await
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("each command lands after bounded retries");
    }
    let loaded = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    assert_eq!(loaded.state.tokens.len(), 8);
    assert_eq!(loaded.revision, Some(8));
}

#[tokio::test]
async fn v1_fixture_is_upcast_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (tenant, stream) = create_tenant(&store, SnapshotPolicy::NEVER).await;
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/tenant_token_issued_v1.json")).unwrap();
    let old = NewEvent::new(
        fixture["event_type"].as_str().unwrap(),
        fixture["schema_version"].as_u64().unwrap() as u32,
        EventMeta::new(Some(tenant), Principal::platform_admin()),
        &fixture["payload"],
    )
    .unwrap();
    store
        .append(stream.clone(), ExpectedRevision::Exact(0), vec![old])
        .await
        .unwrap();
    let loaded = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    let token = &loaded.state.tokens[&"tok_01JCZ6X8K9QG7M2V3N4P5R6S7T".parse::<TokenId>().unwrap()];
    assert_eq!(
        token.token_hash,
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    assert_eq!((token.role, token.expires_at), (Role::Developer, None));
    let stored = store.read_stream(stream, 1, 1).await.unwrap();
    assert_eq!(
        stored[0].schema_version, 1,
        "the log keeps what was written; upcasting happens on read"
    );
}

#[tokio::test]
async fn a_payload_that_no_longer_deserializes_names_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (tenant, stream) = create_tenant(&store, SnapshotPolicy::NEVER).await;
    let bad = NewEvent::new(
        "tenant.renamed",
        1,
        EventMeta::new(Some(tenant), Principal::system()),
        &serde_json::json!({"title": 5}),
    )
    .unwrap();
    store
        .append(stream.clone(), ExpectedRevision::Exact(0), vec![bad])
        .await
        .unwrap();
    let err = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { position: 2, .. }), "{err:?}");
    assert!(
        err.to_string().contains("event 2 (tenant.renamed v1)"),
        "{err}"
    );
    let unknown = NewEvent::new(
        "tenant.renamed",
        9,
        EventMeta::new(None, Principal::system()),
        &serde_json::json!({}),
    )
    .unwrap();
    store
        .append(stream.clone(), ExpectedRevision::Any, vec![unknown])
        .await
        .unwrap();
    let err = aggregate::load::<Tenant>(&store, &stream, AsOf::Position(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn foreign_and_corrupted_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite3");
    std::fs::write(
        &path,
        b"this is not a database, just some bytes that are long enough to look like a header....",
    )
    .unwrap();
    let err = SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing))
        .err()
        .unwrap();
    assert!(matches!(err, Error::StoreCorrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("events.sqlite3"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap()[..8],
        *b"this is ",
        "the foreign file is left untouched"
    );

    let foreign = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(foreign.path().join("events.sqlite3")).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'x');").unwrap();
    drop(conn);
    for mode in [OpenMode::CreateIfMissing, OpenMode::ReadOnly] {
        let err = SqliteStore::open(SqliteConfig::new(foreign.path(), mode))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("no Extensor format marker"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn missing_and_unusable_directories() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = SqliteStore::open(SqliteConfig::new(&missing, OpenMode::ReadOnly))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no event store here"), "{err}");
    assert!(!missing.exists(), "read-only opening creates nothing");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteStore::open(SqliteConfig::new(&file, OpenMode::CreateIfMissing))
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a directory"), "{err}");

    // procfs refuses new files even to root, so this holds in CI too.
    let err = SqliteStore::open(SqliteConfig::new(
        "/proc/extensor-data",
        OpenMode::CreateIfMissing,
    ))
    .err()
    .unwrap();
    assert!(matches!(err, Error::StoreOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("/proc/extensor-data"), "{err}");

    let created = dir.path().join("new/nested");
    let store = open(&created);
    assert!(created.join("events.sqlite3").is_file());
    drop(store);
}

#[tokio::test]
async fn read_only_store_refuses_writes_but_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (_, stream) = create_tenant(&store, SnapshotPolicy::NEVER).await;
    store.close().await;
    let ro = SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::ReadOnly)).unwrap();
    assert_eq!(
        ro.read_stream(stream.clone(), 0, 10).await.unwrap().len(),
        1
    );
    let err = ro
        .append(stream, ExpectedRevision::Any, vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = store
        .append(
            StreamId::new("x", "y").unwrap(),
            ExpectedRevision::Any,
            vec![],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::StoreClosed),
        "closed store refuses appends: {err:?}"
    );
}

#[tokio::test]
async fn a_full_store_refuses_the_append_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing);
    config.store_bytes_max = Some(256 * 1024);
    let store = SqliteStore::open(config).unwrap();
    let t = TenantId::generate();
    let stream = StreamId::new("fill", "a").unwrap();
    let blob = "x".repeat(8 * 1024);
    let mut acknowledged = 0u64;
    let err = loop {
        let ev = NewEvent::new(
            "fill.blob",
            1,
            EventMeta::new(Some(t.clone()), Principal::system()),
            &blob,
        )
        .unwrap();
        match store
            .append(stream.clone(), ExpectedRevision::Any, vec![ev])
            .await
        {
            Ok(r) => acknowledged = r.last_position,
            Err(e) => break e,
        }
        assert!(acknowledged < 1_000, "the cap never triggered");
    };
    assert!(matches!(err, Error::StoreFull { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("nothing from this append was written"),
        "{err}"
    );
    assert!(acknowledged > 5);
    assert_eq!(store.head_position().await.unwrap(), acknowledged);
    let report = verify_chain(&store, None, &mut |_, _| {}).await.unwrap();
    assert_eq!(
        (report.first_break, report.events_checked),
        (None, acknowledged)
    );
    // Small appends still fit in the pages freed by nothing: the store keeps
    // answering reads and refuses cleanly rather than wedging.
    assert_eq!(
        store
            .read_all(0, ReadFilter::default(), 10)
            .await
            .unwrap()
            .len(),
        10
    );
}

const CRASH_DIR_ENV: &str = "EXTENSOR_CRASH_CHILD_DIR";
const CRASH_BATCH_EVENTS: usize = 10;

/// Run in a child process by `kill_9_loses_no_acknowledged_append`: appends
/// batches forever and prints each acknowledged batch's last position.
#[test]
#[ignore = "helper process for kill_9_loses_no_acknowledged_append"]
fn crash_child() {
    let dir =
        std::env::var(CRASH_DIR_ENV).expect("run by the crash test, which sets the directory");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = open(Path::new(&dir));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let stream = StreamId::new("crash", &format!("w{w}")).unwrap();
                for n in 0u64.. {
                    let events = (0..CRASH_BATCH_EVENTS)
                        .map(|i| {
                            NewEvent::new(
                                "crash.x",
                                1,
                                EventMeta::new(None, Principal::system()),
                                &(n, i),
                            )
                            .unwrap()
                        })
                        .collect();
                    let r = store
                        .append(stream.clone(), ExpectedRevision::Any, events)
                        .await
                        .unwrap();
                    println!("ack {w} {}", r.next_expected);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = std::collections::HashMap::<String, u64>::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let mut parts = line.split_whitespace();
        if parts.next() != Some("ack") {
            continue;
        }
        let (w, rev) = (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().parse::<u64>().unwrap(),
        );
        let e = acked.entry(w).or_default();
        *e = (*e).max(rev);
        if acked.values().map(|r| r + 1).sum::<u64>() >= 3_000 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
    child.wait().unwrap();
    let store = open(dir.path());
    for (w, rev) in &acked {
        let stream = StreamId::new("crash", &format!("w{w}")).unwrap();
        let actual = store
            .stream_revision(stream)
            .await
            .unwrap()
            .expect("stream exists");
        assert!(
            actual >= *rev,
            "stream {w}: acknowledged revision {rev} but only {actual} survived"
        );
        assert_eq!(
            (actual + 1) % CRASH_BATCH_EVENTS as u64,
            0,
            "stream {w} holds part of a batch"
        );
    }
    let report = verify_chain(&store, None, &mut |_, _| {}).await.unwrap();
    assert_eq!(
        report.first_break, None,
        "the chain is intact after a crash"
    );
}

/// Two store handles on one file behave like two processes: each has its own
/// writer and connection. Neither may trust its cached revisions after the
/// other appended, and the hash chain must stay one chain.
#[tokio::test]
async fn two_writers_on_one_file_share_one_chain_and_see_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(dir.path()), open(dir.path()));
    let s = StreamId::new("shared", "s").unwrap();
    let ev =
        |n: u64| NewEvent::new("t.x", 1, EventMeta::new(None, Principal::system()), &n).unwrap();
    a.append(s.clone(), ExpectedRevision::NoStream, vec![ev(0)])
        .await
        .unwrap();
    b.append(s.clone(), ExpectedRevision::Exact(0), vec![ev(1)])
        .await
        .unwrap();
    let err = a
        .append(s.clone(), ExpectedRevision::Exact(0), vec![ev(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                actual: Some(1),
                ..
            }
        ),
        "a stale revision is not trusted: {err:?}"
    );
    a.append(s.clone(), ExpectedRevision::Exact(1), vec![ev(2)])
        .await
        .unwrap();
    b.append(
        StreamId::new("shared", "t").unwrap(),
        ExpectedRevision::Any,
        vec![ev(3)],
    )
    .await
    .unwrap();
    let all = a.read_all(0, ReadFilter::default(), 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let report = verify_chain(&b, None, &mut |_, _| {}).await.unwrap();
    assert_eq!((report.first_break, report.events_checked), (None, 4));
}

/// A caller that keeps its state (an actor) decides on it without a reload,
/// but never on a stale one: after another writer moved the stream, the
/// state is rebuilt first. Snapshots keep their cadence across commands.
#[tokio::test]
async fn execute_from_a_held_state_refreshes_when_the_stream_moved() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let policy = SnapshotPolicy {
        every_events: Some(10),
    };
    let (_, stream) = create_tenant(&store, policy).await;
    let mut held = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    for n in 0..25 {
        let cmd = TenantCommand::Rename {
            name: format!("Held {n}"),
        };
        held = aggregate::execute_from::<Tenant>(&store, &stream, held, &cmd, &admin(), policy)
            .await
            .unwrap()
            .state;
        assert!(
            held.events_applied < 10,
            "a snapshot resets the count ({} at {n})",
            held.events_applied
        );
    }
    // Another writer renames the tenant behind the holder's back.
    let other = TenantCommand::Rename {
        name: "Renamed elsewhere".into(),
    };
    aggregate::execute::<Tenant>(&store, &stream, &other, &admin(), policy)
        .await
        .unwrap();
    assert_eq!(held.state.name, "Held 24", "the held state is stale");
    // On the stale state, renaming back to "Held 24" is a no-op that would
    // append nothing and leave the real name wrong. The refreshed state sees
    // the change and records the rename.
    let back = TenantCommand::Rename {
        name: "Held 24".into(),
    };
    let done = aggregate::execute_from::<Tenant>(&store, &stream, held, &back, &admin(), policy)
        .await
        .unwrap();
    assert_eq!(
        done.events, 1,
        "the command was decided on the current state"
    );
    let now = aggregate::load::<Tenant>(&store, &stream, AsOf::Latest)
        .await
        .unwrap();
    assert_eq!(
        (now.state.name.as_str(), now.revision),
        ("Held 24", done.state.revision)
    );
}
