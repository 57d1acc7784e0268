//! The email outbox actor against the real SQLite store and a real SMTP
//! relay (aiosmtpd): transient and permanent failures, and fencing (a
//! stale outbox neither sends nor records once a newer one claimed the
//! stream).

#[path = "../../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "../../js-runtime/tests/common/python.rs"]
mod python;
#[path = "common/smtp_relay.rs"]
mod smtp_relay;

use std::sync::Arc;
use std::time::Duration;

use extensor_actors::outbox::{
    self, MessageStatus, MessageView, Outbox, OutboxArgs, OutboxConfig, OutboxMsg, OutboxService,
    OutboxTenants,
};
use extensor_actors::supervision::call;
use extensor_core::event::{EventMeta, NewEvent, Principal, RecordedEvent, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::secrets::{SecretBox, SecretKey};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{
    AppendResult, EventStore, ExpectedRevision, ReadFilter, SnapshotRecord,
};
use extensor_js::host::OutboundEmail;
use extensor_js::host::mail::{SmtpConfig, SmtpMailer, SmtpTls};
use ractor::{Actor, ActorRef};
use serde_json::json;

const WAIT_MS: u64 = 10_000;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn EventStore>,
    tenant: TenantId,
    secret_box: SecretBox,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig {
            data_dir: dir.path().to_path_buf(),
            mode: OpenMode::CreateIfMissing,
            store_bytes_max: None,
        })
        .expect("open store");
        World {
            _dir: dir,
            store: Arc::new(store),
            tenant: TenantId::generate(),
            secret_box: SecretBox::new(SecretKey::generate().unwrap()),
        }
    }

    /// Queues a message as `ctx.email.send` does; returns its id.
    async fn queue(&self, to: &str, subject: &str) -> String {
        let email = OutboundEmail {
            to: vec![to.into()],
            subject: subject.into(),
            text: Some(format!("body of {subject}")),
            html: None,
        };
        let meta = EventMeta::new(Some(self.tenant.clone()), Principal::system());
        let readable = json!({"to": email.to, "subject": email.subject, "text": email.text});
        let event =
            outbox::queued_event(&self.secret_box, meta, "ins_test", &email, readable).unwrap();
        let id = event.event_id.to_string();
        self.store
            .append(
                outbox::stream(&self.tenant),
                ExpectedRevision::Any,
                vec![event],
            )
            .await
            .unwrap();
        id
    }

    async fn spawn(
        &self,
        smtp_port: u16,
        config: OutboxConfig,
    ) -> (ActorRef<OutboxMsg>, tokio::task::JoinHandle<()>) {
        self.spawn_with(smtp_port, config, OutboxTenants::default())
            .await
    }

    async fn spawn_with(
        &self,
        smtp_port: u16,
        config: OutboxConfig,
        tenants: OutboxTenants,
    ) -> (ActorRef<OutboxMsg>, tokio::task::JoinHandle<()>) {
        let mailer = SmtpMailer::new(SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            from: "extensor@example.com".into(),
            credentials: None,
            tls: SmtpTls::None,
        })
        .unwrap();
        let service = OutboxService {
            store: self.store.clone(),
            mailer: Some(Arc::new(mailer)),
            secret_box: self.secret_box.clone(),
            config,
            tenants,
            redact: None,
        };
        let args = OutboxArgs {
            tenant: self.tenant.clone(),
            service,
        };
        Actor::spawn(None, Outbox, args)
            .await
            .expect("spawn outbox")
    }

    /// An outbox without SMTP (its mail stays pending) reading `store`.
    async fn spawn_unsent(
        &self,
        store: Arc<dyn EventStore>,
    ) -> (ActorRef<OutboxMsg>, tokio::task::JoinHandle<()>) {
        let service = OutboxService {
            store,
            mailer: None,
            secret_box: self.secret_box.clone(),
            config: OutboxConfig::default(),
            tenants: OutboxTenants::default(),
            redact: None,
        };
        let args = OutboxArgs {
            tenant: self.tenant.clone(),
            service,
        };
        Actor::spawn(None, Outbox, args)
            .await
            .expect("spawn outbox")
    }

    /// The outbox's messages once `done` holds (a positive marker).
    async fn until(&self, done: impl Fn(&[MessageView]) -> bool) -> Vec<MessageView> {
        let mut last = Vec::new();
        for _ in 0..WAIT_MS / 20 {
            last = outbox::list(self.store.as_ref(), &self.tenant, None, 100)
                .await
                .unwrap();
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the outbox never reached the expected state: {last:#?}");
    }

    async fn types(&self) -> Vec<String> {
        let events = self
            .store
            .read_stream(outbox::stream(&self.tenant), 0, 1_000)
            .await
            .unwrap();
        events.into_iter().map(|e| e.event_type).collect()
    }
}

fn by_subject<'a>(messages: &'a [MessageView], subject: &str) -> &'a MessageView {
    messages.iter().find(|m| m.subject == subject).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_fails_at_once_a_4xx_retries_with_backoff_until_its_last_attempt() {
    let smtp = aiosmtpd::Smtp::start().await;
    let w = World::new();
    w.queue("reject@example.com", "rejected").await;
    w.queue("busy@example.com", "deferred").await;
    w.queue("ada@example.com", "accepted").await;
    let config = OutboxConfig {
        retry_backoff_initial_ms: 20,
        retry_backoff_max_ms: 40,
        attempts_max: 3,
        ..OutboxConfig::default()
    };
    let (outbox, _) = w.spawn(smtp.port, config).await;
    let done = w
        .until(|m| m.len() == 3 && m.iter().all(|m| m.status != MessageStatus::Pending))
        .await;
    let rejected = by_subject(&done, "rejected");
    assert_eq!(rejected.status, MessageStatus::Failed);
    assert_eq!(rejected.attempts, 1, "a 5xx is not retried");
    assert!(rejected.last_error.as_deref().unwrap().contains("550"));
    let deferred = by_subject(&done, "deferred");
    assert_eq!(deferred.status, MessageStatus::Failed);
    assert_eq!(deferred.attempts, 3, "a 4xx is retried up to attempts_max");
    assert!(deferred.last_error.as_deref().unwrap().contains("451"));
    let accepted = by_subject(&done, "accepted");
    assert_eq!(accepted.status, MessageStatus::Sent);
    assert_eq!(accepted.attempts, 1);
    let mail = smtp.delivered(1).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("body of accepted"));
    // Listings read backwards and stop at `limit`, newest first.
    let newest = outbox::list(w.store.as_ref(), &w.tenant, None, 1)
        .await
        .unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].subject, "accepted");
    let failed = outbox::list(w.store.as_ref(), &w.tenant, Some(MessageStatus::Failed), 10)
        .await
        .unwrap();
    let subjects: Vec<&str> = failed.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, ["deferred", "rejected"]);
    let types = w.types().await;
    let retries = types
        .iter()
        .filter(|t| *t == "email.attempt_failed")
        .count();
    assert_eq!(retries, 2, "{types:?}");
    outbox.stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_outbox_neither_sends_nor_records() {
    let smtp = aiosmtpd::Smtp::start().await;
    let w = World::new();
    w.queue("ada@example.com", "first").await;
    let (stale, stale_done) = w.spawn(smtp.port, OutboxConfig::default()).await;
    w.until(|m| m.iter().any(|m| m.status == MessageStatus::Sent))
        .await;
    // A newer incarnation claims the stream (epoch 2). Nothing is pending,
    // so it sends nothing yet.
    let (fresh, _) = w.spawn(smtp.port, OutboxConfig::default()).await;
    let claims = |t: &[String]| t.iter().filter(|t| *t == "email.outbox_claimed").count();
    for _ in 0..WAIT_MS / 20 {
        if claims(&w.types().await) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(claims(&w.types().await), 2);
    // New mail, and only the stale outbox is told: it must see the newer
    // claim and stop (the positive marker) without sending or recording.
    w.queue("ada@example.com", "second").await;
    let before = w.types().await;
    stale.send_message(OutboxMsg::Wake).unwrap();
    tokio::time::timeout(Duration::from_millis(WAIT_MS), stale_done)
        .await
        .expect("the stale outbox stopped")
        .unwrap();
    assert_eq!(w.types().await, before, "the stale outbox recorded nothing");
    assert_eq!(smtp.messages().len(), 1, "the stale outbox sent nothing");
    // The current owner sends it.
    fresh.send_message(OutboxMsg::Wake).unwrap();
    let mail = smtp.delivered(2).await;
    assert!(mail.iter().any(|m| m.contains("body of second")));
    let done = w
        .until(|m| m.iter().all(|m| m.status == MessageStatus::Sent))
        .await;
    assert_eq!(by_subject(&done, "second").attempts, 1);
    fresh.stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_cap_holds_messages_back_instead_of_dropping_them() {
    let smtp = aiosmtpd::Smtp::start().await;
    let w = World::new();
    for n in 1..=3 {
        w.queue("ada@example.com", &format!("m{n}")).await;
    }
    let config = OutboxConfig {
        sends_per_minute_max: 2,
        ..OutboxConfig::default()
    };
    let (outbox, _) = w.spawn(smtp.port, config).await;
    w.until(|m| m.iter().filter(|m| m.status == MessageStatus::Sent).count() == 2)
        .await;
    // The status call queues behind the drain: once it answers, the drain
    // that sent two has ended and held the third back.
    let status = call(
        "/test/outbox",
        &outbox,
        |reply| OutboxMsg::Status { reply },
        WAIT_MS,
    )
    .await
    .unwrap();
    assert_eq!(status.pending, 1);
    assert_eq!(status.epoch, 1);
    assert_eq!(smtp.messages().len(), 2);
    let held = outbox::list(
        w.store.as_ref(),
        &w.tenant,
        Some(MessageStatus::Pending),
        10,
    )
    .await
    .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].attempts, 0, "held back, not tried");
    outbox.stop(None);
}

/// Counts the records a caller reads through it.
struct Counting {
    inner: Arc<dyn EventStore>,
    read: std::sync::atomic::AtomicU64,
}

impl Counting {
    fn read(&self) -> u64 {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count(&self, n: usize) {
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

type Fut<'a, T> = futures::future::BoxFuture<'a, Result<T, extensor_core::Error>>;

impl EventStore for Counting {
    fn append(
        &self,
        stream: StreamId,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Fut<'_, AppendResult> {
        self.inner.append(stream, expected, events)
    }

    fn read_stream(
        &self,
        stream: StreamId,
        from: u64,
        limit: usize,
    ) -> Fut<'_, Vec<RecordedEvent>> {
        Box::pin(async move {
            let page = self.inner.read_stream(stream, from, limit).await?;
            self.count(page.len());
            Ok(page)
        })
    }

    fn read_all(
        &self,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> Fut<'_, Vec<RecordedEvent>> {
        Box::pin(async move {
            let page = self.inner.read_all(after, filter, limit).await?;
            self.count(page.len());
            Ok(page)
        })
    }

    fn read_all_backward(
        &self,
        before: u64,
        after: u64,
        filter: ReadFilter,
        limit: usize,
    ) -> Fut<'_, Vec<RecordedEvent>> {
        Box::pin(async move {
            let page = self
                .inner
                .read_all_backward(before, after, filter, limit)
                .await?;
            self.count(page.len());
            Ok(page)
        })
    }

    fn subscribe_all(&self, after: u64, filter: ReadFilter) -> extensor_core::store::EventStream {
        self.inner.subscribe_all(after, filter)
    }

    fn stream_revision(&self, stream: StreamId) -> Fut<'_, Option<u64>> {
        self.inner.stream_revision(stream)
    }

    fn head_position(&self) -> Fut<'_, u64> {
        self.inner.head_position()
    }

    fn save_snapshot(&self, snapshot: SnapshotRecord) -> Fut<'_, ()> {
        self.inner.save_snapshot(snapshot)
    }

    fn load_snapshot(
        &self,
        stream: StreamId,
        aggregate: String,
        snapshot_version: u32,
    ) -> Fut<'_, Option<SnapshotRecord>> {
        self.inner
            .load_snapshot(stream, aggregate, snapshot_version)
    }

    fn delete_snapshots(&self) -> Fut<'_, u64> {
        self.inner.delete_snapshots()
    }
}

/// Appends `n` delivered messages (queued + sent) to `tenant`'s outbox.
async fn delivered_history(store: &Arc<dyn EventStore>, tenant: &TenantId, n: usize) {
    let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
    for chunk in 0..n.div_ceil(500) {
        let mut events = Vec::new();
        for _ in 0..500.min(n - chunk * 500) {
            let queued = NewEvent::new(
                outbox::types::QUEUED,
                1,
                meta.clone(),
                &json!({"to": ["a@b.c"]}),
            )
            .unwrap();
            let id = queued.event_id.to_string();
            events.push(queued);
            events.push(
                NewEvent::new(
                    outbox::types::SENT,
                    1,
                    meta.clone(),
                    &json!({"outbox_id": id}),
                )
                .unwrap(),
            );
        }
        store
            .append(outbox::stream(tenant), ExpectedRevision::Any, events)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boot_reads_the_outbox_index_not_the_mail_history() {
    let w = World::new();
    let others: Vec<TenantId> = (0..3).map(|_| TenantId::generate()).collect();
    for t in &others {
        delivered_history(&w.store, t, 5_000).await;
    }
    // The first boot of a store without an index builds it (one scan).
    assert!(
        outbox::tenants_with_pending(w.store.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
    // More history, then one message being queued through the index.
    for t in &others {
        delivered_history(&w.store, t, 5_000).await;
    }
    let tenants = OutboxTenants::default();
    let lease = tenants.lease(w.store.as_ref(), &w.tenant).await.unwrap();
    w.queue("ada@example.com", "pending").await;
    drop(lease);
    // A boot now reads the index, not the 60,000 mail records.
    let counting = Counting {
        inner: w.store.clone(),
        read: Default::default(),
    };
    let pending = outbox::tenants_with_pending(&counting).await.unwrap();
    assert_eq!(
        pending.into_iter().collect::<Vec<_>>(),
        vec![w.tenant.clone()]
    );
    assert!(
        counting.read() <= outbox::INDEX_SNAPSHOT_EVERY_EVENTS,
        "a boot read {} records",
        counting.read()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_outbox_unmarks_its_tenant_and_new_mail_marks_it_again() {
    let smtp = aiosmtpd::Smtp::start().await;
    let w = World::new();
    let tenants = OutboxTenants::default();
    let lease = tenants.lease(w.store.as_ref(), &w.tenant).await.unwrap();
    w.queue("ada@example.com", "first").await;
    drop(lease);
    assert!(tenants.contains(&w.tenant));
    let (actor, _) = w
        .spawn_with(smtp.port, OutboxConfig::default(), tenants.clone())
        .await;
    smtp.delivered(1).await;
    // Positive marker: the index no longer lists the tenant.
    let deadline = std::time::Instant::now() + Duration::from_millis(WAIT_MS);
    while !outbox::tenants_with_pending(w.store.as_ref())
        .await
        .unwrap()
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "never unmarked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!tenants.contains(&w.tenant));
    // The next message marks it again before it is queued.
    let lease = tenants.lease(w.store.as_ref(), &w.tenant).await.unwrap();
    let marked = outbox::tenants_with_pending(w.store.as_ref())
        .await
        .unwrap();
    assert!(marked.contains(&w.tenant));
    w.queue("ada@example.com", "second").await;
    drop(lease);
    actor.send_message(OutboxMsg::Wake).unwrap();
    smtp.delivered(2).await;
    actor.stop(None);
}

/// An outbox starting reads its snapshot and the records after it, not its
/// tenant's whole mail history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_start_reads_its_snapshot_not_the_mail_history() {
    let w = World::new();
    delivered_history(&w.store, &w.tenant, 5_000).await;
    w.queue("ada@example.com", "pending").await;
    let status = |outbox: ActorRef<OutboxMsg>| async move {
        call(
            "/test/outbox",
            &outbox,
            |reply| OutboxMsg::Status { reply },
            WAIT_MS,
        )
        .await
        .unwrap()
    };
    // The first start folds the history once and leaves a snapshot.
    let (first, task) = w.spawn_unsent(w.store.clone()).await;
    let s = status(first.clone()).await;
    assert_eq!((s.epoch, s.pending), (1, 1));
    first.stop(None);
    task.await.unwrap();
    // More history after the snapshot, less than one snapshot interval.
    delivered_history(&w.store, &w.tenant, 50).await;
    let counting = Arc::new(Counting {
        inner: w.store.clone(),
        read: Default::default(),
    });
    let (second, task) = w.spawn_unsent(counting.clone()).await;
    let s = status(second.clone()).await;
    assert_eq!((s.epoch, s.pending), (2, 1), "the pending message survives");
    assert!(
        counting.read() <= outbox::OUTBOX_SNAPSHOT_EVERY_EVENTS,
        "a start read {} of 10,103 records",
        counting.read()
    );
    second.stop(None);
    task.await.unwrap();
}

/// The mailer's socket has `TCP_NODELAY`: a message's body and its `.`
/// terminator, written separately, go out at once instead of the
/// terminator waiting for the relay's delayed ACK (~40 ms on Linux, which
/// made every email cost ~45 ms on loopback). 20 messages to a relay that
/// answers each command in one write take well under one such stall each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_does_not_wait_for_a_delayed_ack() {
    let (port, count) = smtp_relay::relay().await;
    let mailer = SmtpMailer::new(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "extensor@example.com".into(),
        credentials: None,
        tls: SmtpTls::None,
    })
    .expect("mailer");
    let n = 20u32;
    let email = |i: u32| extensor_js::host::OutboundEmail {
        to: vec![format!("user{i}@example.com")],
        subject: format!("Welcome {i}"),
        text: Some("Hello".into()),
        html: None,
    };
    mailer.send(&email(n)).await.expect("first send");
    let started = std::time::Instant::now();
    for i in 0..n {
        mailer.send(&email(i)).await.expect("send");
    }
    let elapsed = started.elapsed();
    let stall = std::time::Duration::from_millis(40);
    assert!(
        elapsed < stall * n / 2,
        "{n} messages took {elapsed:?}: about one delayed-ACK stall each"
    );
    let delivered = count.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(delivered, u64::from(n) + 1);
}
