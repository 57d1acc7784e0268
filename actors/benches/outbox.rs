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
//! Same-run baseline: the same N messages sent by `SmtpMailer::send` in a
//! loop (no store, no outbox): the relay and SMTP client floor.
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
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A relay that accepts every message and counts them.
async fn relay() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(session(socket, counted.clone()));
        }
    });
    (port, count)
}

async fn session(socket: tokio::net::TcpStream, count: Arc<AtomicU64>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 bench relay\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-bench\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                if write.write_all(b"354 go\r\n").await.is_err() {
                    return;
                }
                while let Ok(Some(body)) = lines.next_line().await {
                    if body == "." {
                        break;
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 unknown\r\n",
        };
        if write.write_all(answer).await.is_err() {
            return;
        }
    }
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_num("EXTENSOR_BENCH_EMAILS", 2_000);
    let rounds = env_num("EXTENSOR_BENCH_ROUNDS", 3);
    let (mut outbox_rates, mut mailer_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let base = mailer_round(n).await;
        let out = outbox_round(n).await;
        println!(
            "round {round}: mailer alone {:.0}/s, outbox {:.0}/s",
            n as f64 / base,
            n as f64 / out
        );
        mailer_rates.push(n as f64 / base);
        outbox_rates.push(n as f64 / out);
    }
    println!("| path | emails | rounds | median emails/s | worst round emails/s |");
    println!("|---|---|---|---|---|");
    let worst = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
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
