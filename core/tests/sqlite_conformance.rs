//! The embedded SQLite store against the shared conformance suite.

use std::sync::{Arc, Mutex};

use extensor_core::store::conformance::Backend;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use futures::FutureExt;
use futures::future::BoxFuture;

/// Each fresh store lives in its own temporary directory, kept alive until
/// the test process ends.
struct Sqlite {
    dirs: Mutex<Vec<Arc<tempfile::TempDir>>>,
}

impl Backend for Sqlite {
    type Store = SqliteStore;

    fn fresh(&self) -> BoxFuture<'_, SqliteStore> {
        async move {
            let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
            let store = SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing))
                .expect("open");
            self.dirs.lock().unwrap().push(dir);
            store
        }
        .boxed()
    }

    fn reopen(&self, store: SqliteStore) -> BoxFuture<'_, SqliteStore> {
        async move {
            let dir = store
                .path()
                .parent()
                .expect("store file has a directory")
                .to_path_buf();
            store.close().await;
            drop(store);
            SqliteStore::open(SqliteConfig::new(dir, OpenMode::CreateIfMissing)).expect("reopen")
        }
        .boxed()
    }
}

static BACKEND: Sqlite = Sqlite {
    dirs: Mutex::new(Vec::new()),
};

extensor_core::conformance_tests!(BACKEND);

// ----- SQLite only: the one head poller -----

use std::time::Duration;

use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::store::sqlite::HEAD_POLL_MS;
use extensor_core::store::{EventStore, ExpectedRevision, ReadFilter};
use futures::StreamExt;

fn one(n: u64) -> Vec<NewEvent> {
    let meta = EventMeta::new(None, Principal::system());
    vec![NewEvent::new("t.x", 1, meta, &serde_json::json!({ "n": n })).expect("event")]
}

async fn append(store: &SqliteStore, stream: &str, n: u64) -> u64 {
    let stream = StreamId::new("poll", stream).expect("stream");
    store
        .append(stream, ExpectedRevision::Any, one(n))
        .await
        .expect("append")
        .last_position
}

/// A second store on the same file stands in for another process: its
/// appends reach an idle subscriber of the first through the head poller,
/// though no live event of the first process follows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscriber_sees_another_process_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing));
    let ours = open().expect("open");
    let theirs = open().expect("open second");
    let mut sub = ours.subscribe_all(0, ReadFilter::default());
    let first = append(&ours, "ours", 1).await;
    let got = sub.next().await.expect("open").expect("event");
    assert_eq!(got.position, first);
    let second = append(&theirs, "theirs", 2).await;
    let wait = Duration::from_millis(HEAD_POLL_MS * 10);
    let got = tokio::time::timeout(wait, sub.next())
        .await
        .expect("another process's append arrives within a few polls")
        .expect("open")
        .expect("event");
    assert_eq!(got.position, second);
    assert_eq!(got.stream.as_str(), "poll-theirs");
}

/// Idle subscribers cost no reads: the store polls its head once per
/// interval however many subscribe (each used to poll on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_subscribers_cost_no_reads() {
    const SUBSCRIBERS: usize = 200;
    const TICKS: u64 = 3;
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).expect("open");
    let first = append(&store, "a", 1).await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::channel(SUBSCRIBERS * 2);
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
    for _ in 0..SUBSCRIBERS {
        assert_eq!(seen.recv().await, Some(first), "caught up");
    }
    // Each subscriber checks the head once more after its catch-up page
    // before it goes live; let that settle, then count.
    tokio::time::sleep(Duration::from_millis(HEAD_POLL_MS)).await;
    let before = store.reads();
    tokio::time::sleep(Duration::from_millis(
        HEAD_POLL_MS * TICKS + HEAD_POLL_MS / 2,
    ))
    .await;
    let reads = store.reads() - before;
    // The poller's read per tick (one spare for timer jitter); with one
    // poll per subscriber this was SUBSCRIBERS × TICKS.
    assert!(
        reads <= TICKS + 1,
        "{reads} reads by {SUBSCRIBERS} idle subscribers"
    );
    // And they are still live: one append reaches every one of them.
    let second = append(&store, "a", 2).await;
    for _ in 0..SUBSCRIBERS {
        assert_eq!(seen.recv().await, Some(second), "live after idling");
    }
}

/// A read-only store (`extensor events tail --follow`) has no writer and
/// publishes nothing itself: every append it sees comes through the poller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_subscriber_sees_the_writer_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer =
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).expect("open");
    let first = append(&writer, "w", 1).await;
    let reader =
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::ReadOnly)).expect("read-only");
    let mut sub = reader.subscribe_all(0, ReadFilter::default());
    let got = sub.next().await.expect("open").expect("event");
    assert_eq!(got.position, first);
    let wait = Duration::from_millis(HEAD_POLL_MS * 10);
    for n in 2..=3 {
        // Caught up and idle in the live phase before the append.
        let idle = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
        assert!(idle.is_err(), "nothing new yet");
        let position = append(&writer, "w", n).await;
        let got = tokio::time::timeout(wait, sub.next())
            .await
            .expect("the writer's append arrives within a few polls")
            .expect("open")
            .expect("event");
        assert_eq!(got.position, position);
    }
}

// ----- SQLite only: snapshots ride in the appends' group commit -----

/// Snapshots saved at the same moment as appends (10,000 jobs that reach
/// their snapshot interval on the same tick) are committed in the
/// appends' transactions, not one durable transaction each: 500 saves and
/// 500 appends issued together take far fewer commits than saves, and every
/// snapshot is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_snapshot_saves_share_the_group_commit() {
    use extensor_core::store::SnapshotRecord;
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).expect("open");
    let n = 500u64;
    let groups0 = store.writer_stats().groups.load(Relaxed);
    let saves = (0..n).map(|i| {
        let store = store.clone();
        async move {
            let stream = StreamId::new("snap", &format!("s{i}")).expect("stream");
            let record = SnapshotRecord {
                stream,
                aggregate: "bench".into(),
                snapshot_version: 1,
                revision: i,
                position: i,
                state: format!("{{\"i\":{i}}}"),
            };
            store.save_snapshot(record).await.expect("save");
        }
    });
    let appends = (0..n).map(|i| {
        let store = store.clone();
        async move {
            append(&store, &format!("a{i}"), i).await;
        }
    });
    futures::future::join(
        futures::future::join_all(saves),
        futures::future::join_all(appends),
    )
    .await;
    let commits = store.writer_stats().groups.load(Relaxed) - groups0;
    assert!(
        commits < n / 4,
        "{commits} commits for {n} snapshots and {n} appends"
    );
    for i in [0, n / 2, n - 1] {
        let stream = StreamId::new("snap", &format!("s{i}")).expect("stream");
        let loaded = store
            .load_snapshot(stream, "bench".into(), 1)
            .await
            .expect("load")
            .expect("saved");
        assert_eq!(loaded.revision, i);
        assert_eq!(loaded.state, format!("{{\"i\":{i}}}"));
    }
}

/// A snapshot over the size limit is refused alone; appends and snapshots
/// queued beside it are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_snapshot_fails_alone() {
    use extensor_core::store::{SNAPSHOT_BYTES_MAX, SnapshotRecord};
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).expect("open");
    let record = |name: &str, bytes: usize| SnapshotRecord {
        stream: StreamId::new("snap", name).expect("stream"),
        aggregate: "bench".into(),
        snapshot_version: 1,
        revision: 0,
        position: 0,
        state: format!("\"{}\"", "x".repeat(bytes)),
    };
    let (big, small, appended) = futures::future::join3(
        store.save_snapshot(record("big", SNAPSHOT_BYTES_MAX + 1)),
        store.save_snapshot(record("small", 10)),
        append(&store, "beside", 1),
    )
    .await;
    let err = big.expect_err("over the limit");
    assert!(err.to_string().contains("snapshot is"), "{err}");
    small.expect("the small snapshot is saved");
    assert!(appended > 0);
    let stream = StreamId::new("snap", "small").expect("stream");
    assert!(
        store
            .load_snapshot(stream, "bench".into(), 1)
            .await
            .expect("load")
            .is_some()
    );
}
