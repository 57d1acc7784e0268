//! Email outbox benchmark: `cargo bench -p extensor-actors --bench outbox`.
//!
//! Emails per second from the outbox to a loopback SMTP relay: a minimal
//! SMTP server in this file (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; it
//! accepts everything and counts messages) on 127.0.0.1, the real SQLite
//! store, the real `Outbox` actor with its rate cap lifted. N messages are
//! queued as `ctx.email.send` queues them (`email.queued`, sealed), then
//! the outbox is started and the clock runs until the relay has received
//! all N and every one is recorded `email.sent`.
//!
//! Same-run baselines: the same N messages sent by `SmtpMailer::send` in a
//! loop (no store, no outbox): the relay and SMTP client floor; and, as the
//! "before" row, `EXTENSOR_BENCH_LETTRE_EMAILS` (default 200) messages
//! through lettre's own `AsyncSmtpTransport` (what `SmtpMailer` used until
//! it connected its own `TCP_NODELAY` socket).
//!
//! `EXTENSOR_BENCH_EMAILS` (default 2000) sets N; `EXTENSOR_BENCH_ROUNDS`
//! (default 3) the rounds of each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use extensor_actors::outbox::{
    self, MessageStatus, Outbox, OutboxArgs, OutboxConfig, OutboxService, OutboxTenants,
};
use extensor_core::event::{EventMeta, Principal};
use extensor_core::ids::TenantId;
use extensor_core::secrets::{SecretBox, SecretKey};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision};
use extensor_js::host::OutboundEmail;
use extensor_js::host::mail::{SmtpConfig, SmtpMailer, SmtpTls};
use ractor::Actor;
use serde_json::json;

#[path = "../tests/common/smtp_relay.rs"]
mod smtp_relay;
use smtp_relay::relay;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mailer(port: u16) -> SmtpMailer {
    SmtpMailer::new(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "bench@example.com".into(),
        credentials: None,
        tls: SmtpTls::None,
    })
    .expect("mailer")
}

fn email(n: u64) -> OutboundEmail {
    OutboundEmail {
        to: vec![format!("user{n}@example.com")],
        subject: format!("Welcome {n}"),
        text: Some(format!("Hello number {n}, welcome aboard.")),
        html: None,
    }
}

async fn wait_count(count: &AtomicU64, n: u64) {
    while count.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The outbox sending `n` queued messages: seconds until all are recorded.
async fn outbox_round(n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteStore::open(SqliteConfig {
            data_dir: dir.path().to_path_buf(),
            mode: OpenMode::CreateIfMissing,
            store_bytes_max: None,
        })
        .expect("store"),
    );
    let secret_box = SecretBox::new(SecretKey::generate().unwrap());
    let tenant = TenantId::generate();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let events = chunk
            .iter()
            .map(|i| {
                let e = email(*i);
                let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
                let readable = json!({"to": e.to, "subject": e.subject, "text": e.text});
                outbox::queued_event(&secret_box, meta, "ins_bench", &e, readable).unwrap()
            })
            .collect();
        store
            .append(outbox::stream(&tenant), ExpectedRevision::Any, events)
            .await
            .unwrap();
    }
    let (port, count) = relay().await;
    let service = OutboxService {
        store: store.clone(),
        mailer: Some(Arc::new(mailer(port))),
        secret_box,
        config: OutboxConfig {
            sends_per_minute_max: u32::MAX,
            ..OutboxConfig::default()
        },
        tenants: OutboxTenants::default(),
        redact: None,
    };
    let started = Instant::now();
    let (actor, handle) = Actor::spawn(
        None,
        Outbox,
        OutboxArgs {
            tenant: tenant.clone(),
            service,
        },
    )
    .await
    .expect("outbox");
    wait_count(&count, n).await;
    loop {
        let sent = outbox::list(
            store.as_ref(),
            &tenant,
            Some(MessageStatus::Sent),
            n as usize,
        )
        .await
        .unwrap();
        if sent.len() as u64 >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    actor.stop(None);
    let _ = handle.await;
    secs
}

/// The same messages through `SmtpMailer::send` alone.
async fn mailer_round(n: u64) -> f64 {
    let (port, count) = relay().await;
    let m = mailer(port);
    let started = Instant::now();
    for i in 0..n {
        m.send(&email(i)).await.expect("send");
    }
    wait_count(&count, n).await;
    started.elapsed().as_secs_f64()
}

/// The "before": lettre's own transport, whose socket keeps Nagle's
/// algorithm on; seconds for `n` messages.
async fn lettre_round(n: u64) -> f64 {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let (port, count) = relay().await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let started = Instant::now();
    for i in 0..n {
        let e = email(i);
        let message = Message::builder()
            .from("bench@example.com".parse().unwrap())
            .to(e.to[0].parse().unwrap())
            .subject(e.subject)
            .body(e.text.unwrap_or_default())
            .unwrap();
        transport.send(message).await.expect("send");
    }
    wait_count(&count, n).await;
    started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_num("EXTENSOR_BENCH_EMAILS", 2_000);
    let rounds = env_num("EXTENSOR_BENCH_ROUNDS", 3);
    let before_n = env_num("EXTENSOR_BENCH_LETTRE_EMAILS", 200);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "outbox bench: {n} emails, {rounds} rounds; load average {}",
        load.trim()
    );
    let (mut outbox_rates, mut mailer_rates, mut before_rates) =
        (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let before = lettre_round(before_n).await;
        let base = mailer_round(n).await;
        let out = outbox_round(n).await;
        println!(
            "round {round}: lettre transport {:.0}/s, mailer alone {:.0}/s, outbox {:.0}/s",
            before_n as f64 / before,
            n as f64 / base,
            n as f64 / out
        );
        before_rates.push(before_n as f64 / before);
        mailer_rates.push(n as f64 / base);
        outbox_rates.push(n as f64 / out);
    }
    println!("| path | emails | rounds | median emails/s | worst round emails/s |");
    println!("|---|---|---|---|---|");
    let worst = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "| before: lettre's `AsyncSmtpTransport` (Nagle on) | {before_n} | {rounds} | {:.0} | {:.0} |",
        median(before_rates.clone()),
        worst(&before_rates)
    );
    println!(
        "| `SmtpMailer::send` loop (baseline) | {n} | {rounds} | {:.0} | {:.0} |",
        median(mailer_rates.clone()),
        worst(&mailer_rates)
    );
    println!(
        "| outbox: queued → sent and recorded | {n} | {rounds} | {:.0} | {:.0} |",
        median(outbox_rates.clone()),
        worst(&outbox_rates)
    );
}
