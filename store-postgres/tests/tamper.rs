//! Tamper evidence on PostgreSQL: rows edited, deleted, reordered and
//! inserted with plain SQL (as `psql` would) are found by the verifier,
//! which names the first position where the chain breaks.

mod support;

use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::store::verify::{VerifyReport, verify_chain};
use extensor_core::store::{EventStore, ExpectedRevision};
use support::TestStore;

const EVENTS: u64 = 10;

/// A store holding events 1..=10 on four streams.
async fn ten_events() -> TestStore {
    let store = TestStore::fresh().await;
    for n in 0..EVENTS {
        let meta = EventMeta::new(None, Principal::system());
        let ev = NewEvent::new("t.x", 1, meta, &serde_json::json!({ "n": n })).unwrap();
        let s = StreamId::new("tamper", &format!("s{}", n % 4)).unwrap();
        store
            .append(s, ExpectedRevision::Any, vec![ev])
            .await
            .unwrap();
    }
    let clean = verify(&store).await;
    assert_eq!((clean.events_checked, clean.first_break), (EVENTS, None));
    store
}

async fn verify(store: &TestStore) -> VerifyReport {
    verify_chain(store, None, &mut |_, _| {}).await.unwrap()
}

/// Runs `sql` on the store's database and returns where verification breaks.
async fn tampered(sql: &str) -> (u64, String) {
    let store = ten_events().await;
    store
        .psql()
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let report = verify(&store).await;
    let b = report
        .first_break
        .unwrap_or_else(|| panic!("{sql}: not detected"));
    (b.position, b.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_payload_is_found() {
    let (at, why) = tampered("UPDATE events SET payload = '{\"n\":999}' WHERE position = 5").await;
    assert_eq!(at, 5);
    assert!(why.contains("edited"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_envelope_field_is_found() {
    let (at, why) = tampered("UPDATE events SET event_type = 't.forged' WHERE position = 7").await;
    assert_eq!(at, 7);
    assert!(why.contains("edited"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_event_is_found() {
    let (at, why) = tampered("DELETE FROM events WHERE position = 4").await;
    assert_eq!(at, 4);
    assert!(why.contains("deleted"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_renumbered_event_is_found() {
    // Delete 4 and close the gap: positions are dense again, links are not.
    let (at, why) = tampered(
        "DELETE FROM events WHERE position = 4;
         UPDATE events SET position = -position WHERE position > 4;
         UPDATE events SET position = -position - 1 WHERE position < 0;",
    )
    .await;
    assert_eq!(at, 4);
    assert!(
        why.contains("does not link") || why.contains("edited"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_events_are_found() {
    let (at, why) = tampered(
        "UPDATE events SET position = -1 WHERE position = 6;
         UPDATE events SET position = 6 WHERE position = 7;
         UPDATE events SET position = 7 WHERE position = -1;",
    )
    .await;
    assert_eq!(at, 6);
    assert!(
        why.contains("does not link") || why.contains("edited"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inserted_event_is_found() {
    // Make room at 5 and copy event 4 there under a new id.
    let (at, why) = tampered(
        "UPDATE events SET position = -position - 1 WHERE position >= 5;
         UPDATE events SET position = -position WHERE position < 0;
         INSERT INTO events
           SELECT 5, stream, 1000, 'evt_01JZZZZZZZZZZZZZZZZZZZZZZZ', event_type, schema_version,
                  recorded_at, tenant, principal, correlation_id, causation_id, payload,
                  prev_hash, hash
           FROM events WHERE position = 4;",
    )
    .await;
    assert_eq!(at, 5);
    assert!(why.contains("does not link"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_row_is_a_break_not_a_crash() {
    // The page holding it cannot be decoded: the walk stops before that
    // page and the reason names the row.
    let (at, why) = tampered("UPDATE events SET hash = '\\x00' WHERE position = 3").await;
    assert!(at <= 3, "{at}");
    assert!(
        why.contains("unreadable") && why.contains("event 3"),
        "{why}"
    );
}
