//! Webhook delivery benchmark: `cargo bench -p extensor-actors --bench webhooks`.
//!
//! One tenant, one webhook with a Standard Webhooks signing key and a small
//! JS transform, delivering to a keep-alive HTTP/1.1 receiver on loopback
//! (the tests' receiver), on the real SQLite store with durable appends.
//!
//! - Throughput: N events published in appends of 100; deliveries/s from
//!   the first publish to the last request received (each delivery: created
//!   record, transform in an isolate, signature, POST, attempt + outcome
//!   records). Endpoint concurrency 32.
//! - Latency: events published one at a time, 5 ms apart; event append
//!   acknowledged → request received, p50 and p99.
//! - Same-run baselines: the same receiver taking plain reqwest POSTs of the
//!   same body size, 32 concurrent (req/s), and one at a time (latency).
//!
//! `EXTENSOR_BENCH_EVENTS` (default 5000) sets N.

#[path = "../tests/webhooks/support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use extensor_js::PrivateNetworks;
use hdrhistogram::Histogram;
use serde_json::json;
use support::*;

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA=";
const TRANSFORM: &str = "export function transform(e) {\n  return { kind: e.type, id: e.id, t: e.data.t, build: e.data.build, ok: e.data.status === 'passed' };\n}\n";
const CONCURRENCY: usize = 32;
const LATENCY_SAMPLES: usize = 400;

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn throughput(h: &Harness, rx: &Receiver, n: usize, base: Instant) -> f64 {
    let start = Instant::now();
    let already = rx.count();
    for chunk in 0..n.div_ceil(100) {
        let events: Vec<_> = (0..100.min(n - chunk * 100))
            .map(|i| extensor_core::event::NewEvent::new("build.completed", 1, extensor_core::event::EventMeta::new(Some(h.tenant.clone()), extensor_core::event::Principal::system()), &json!({"t": base.elapsed().as_micros() as u64, "build": i, "status": "passed"})).unwrap())
            .collect();
        h.store
            .append(
                extensor_core::event::StreamId::business_events(&h.tenant),
                extensor_core::store::ExpectedRevision::Any,
                events,
            )
            .await
            .unwrap();
    }
    rx.wait_for(already + n).await;
    n as f64 / start.elapsed().as_secs_f64()
}

async fn latency(h: &Harness, rx: &Receiver, base: Instant) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let already = rx.count();
    for i in 0..LATENCY_SAMPLES {
        h.publish(
            "build.completed",
            json!({"t": base.elapsed().as_micros() as u64, "build": i, "status": "passed"}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = rx.wait_for(already + LATENCY_SAMPLES).await;
    for r in &got[already..] {
        let sent = r.json()["t"].as_u64().unwrap();
        let received = r.at.duration_since(base).as_micros() as u64;
        hist.record(received.saturating_sub(sent)).unwrap();
    }
    hist
}

async fn baseline(url: &str, n: usize) -> (f64, Histogram<u64>) {
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&json!({"kind": "build.completed", "id": "evt_01KAZZZZZZZZZZZZZZZZZZZZZZ", "t": 1, "build": 1, "ok": true})).unwrap();
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (c, b, u) = (client.clone(), body.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(u)
                .header("content-type", "application/json")
                .body(b)
                .send()
                .await
                .unwrap();
            let _ = r.bytes().await;
            drop(permit);
        }));
    }
    futures::future::join_all(tasks).await;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for _ in 0..LATENCY_SAMPLES {
        let t = Instant::now();
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await;
        hist.record(t.elapsed().as_micros() as u64).unwrap();
    }
    (rate, hist)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("EXTENSOR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let rx = Receiver::start(always(200)).await;
    let h = Harness::new(PrivateNetworks::Allow).await;
    h.secret("URL", &rx.url("/hook"));
    h.secret("KEY", KEY);
    let yaml = format!(
        "api_version: v1\non: [\"build.*\"]\ndelivery:\n  url: \"${{SECRET:URL}}\"\n  signing: {{alg: HMAC-SHA256, secret: \"${{SECRET:KEY}}\"}}\n  concurrency: {CONCURRENCY}\n  rate_per_second: 10000\ntransform: {{language: javascript, entry: \"t.js\"}}\n"
    );
    h.apply("bench", &yaml, &[("t.js", TRANSFORM)])
        .await
        .unwrap();
    let base = Instant::now();
    // Warm-up: isolates, connections, SQLite pages.
    throughput(&h, &rx, 500, base).await;
    let rate = throughput(&h, &rx, n, base).await;
    let lat = latency(&h, &rx, base).await;
    let base_rx = Receiver::start(always(200)).await;
    let (plain_rate, plain_lat) = baseline(&base_rx.url("/hook"), n).await;
    println!("| run | deliveries/s | latency p50 ms | latency p99 ms |");
    println!("|---|---|---|---|");
    println!(
        "| baseline: plain reqwest POST, {CONCURRENCY} concurrent / one at a time | {plain_rate:.0} | {:.2} | {:.2} |",
        pct(&plain_lat, 0.5),
        pct(&plain_lat, 0.99)
    );
    println!(
        "| webhooks: signed, JS transform, durable records ({n} events) | {rate:.0} | {:.2} | {:.2} |",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}
