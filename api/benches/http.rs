//! HTTP benchmarks: `cargo bench -p extensor-api --bench http`.
//!
//! A closed-loop load generator on loopback: C keep-alive connections, each
//! sending the next request as soon as the previous answer is read, for a
//! fixed time. The client is a minimal HTTP/1.1 writer/reader over tokio
//! sockets so that it costs as little CPU as possible: client and server
//! share the machine's cores. Scenarios, each beside a plain poem handler
//! returning a small JSON object measured in the same run:
//! - an authenticated management GET (`GET /api/tokens`, bearer + tenant);
//! - a plugin route (`GET /ext/welcome-email/ping` of the example plugin,
//!   a JS handler returning a small JSON object, run in its isolate).
//!
//! `EXTENSOR_BENCH_QUICK=1` runs each scenario for one second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use poem::web::Json;
use poem::{Route, Server, get, handler};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Concurrent connections of the load generator.
const CONNECTIONS: usize = 32;

fn run_time() -> Duration {
    if std::env::var("EXTENSOR_BENCH_QUICK").is_ok_and(|v| v == "1") {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    }
}

#[handler]
fn hello() -> Json<serde_json::Value> {
    Json(serde_json::json!({"ok": true, "message": "pong"}))
}

/// One keep-alive connection's loop; returns its latency histogram.
async fn connection(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    until: Instant,
) -> (Histogram<u64>, u64) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let mut body = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        write.write_all(&request).await.unwrap();
        let mut length = 0usize;
        let mut status_ok = false;
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap() == 0 {
                panic!("server closed the connection");
            }
            if first {
                status_ok = line.starts_with("HTTP/1.1 2");
                first = false;
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body).await.unwrap();
        if !status_ok {
            errors += 1;
        }
        hist.record(started.elapsed().as_micros().max(1) as u64)
            .unwrap();
    }
    (hist, errors)
}

struct Result {
    name: String,
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
}

async fn load(name: &str, addr: SocketAddr, request: Vec<u8>) -> Result {
    let request = Arc::new(request);
    // Warm up: connections, caches, isolates.
    let warm = Instant::now() + Duration::from_millis(500);
    let mut w = Vec::new();
    for _ in 0..CONNECTIONS {
        w.push(tokio::spawn(connection(addr, request.clone(), warm)));
    }
    for t in w {
        t.await.unwrap();
    }
    let started = Instant::now();
    let until = started + run_time();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        tasks.push(tokio::spawn(connection(addr, request.clone(), until)));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await.unwrap();
        all.add(h).unwrap();
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Result {
        name: name.into(),
        rps: all.len() as f64 / elapsed,
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
        errors,
    }
}

fn get_request(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

async fn baseline_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let app = Route::new().at("/hello", get(hello));
    tokio::spawn(Server::new(poem::listener::TcpListener::bind(addr)).run(app));
    tokio::time::sleep(Duration::from_millis(200)).await;
    addr
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let results = scenarios().await;
        println!(
            "machine: {} ({} CPUs visible)",
            machine(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!("connections: {CONNECTIONS}, {:?} per scenario", run_time());
        println!(
            "{:<44} {:>10} {:>9} {:>9} {:>7}",
            "scenario", "req/s", "p50 µs", "p99 µs", "non-2xx"
        );
        for r in results {
            println!(
                "{:<44} {:>10.0} {:>9} {:>9} {:>7}",
                r.name, r.rps, r.p50_us, r.p99_us, r.errors
            );
        }
    });
}

async fn scenarios() -> Vec<Result> {
    let dir = tempfile::tempdir().unwrap();
    let server = bench_support::start(dir.path()).await;
    let baseline = baseline_server().await;
    let mut out = Vec::new();
    out.push(
        load(
            "plain poem handler (baseline)",
            baseline,
            get_request("/hello", &[]),
        )
        .await,
    );
    let auth = format!("Bearer {}", server.owner);
    out.push(
        load(
            "GET /api/tokens (bearer + X-Tenant-Slug)",
            server.addr,
            get_request(
                "/api/tokens",
                &[("Authorization", &auth), ("X-Tenant-Slug", "bench")],
            ),
        )
        .await,
    );
    out.push(
        load(
            "GET /ext/welcome-email/ping (plugin route, JS)",
            server.addr,
            get_request(
                "/ext/welcome-email/ping",
                &[("Authorization", &auth), ("X-Tenant-Slug", "bench")],
            ),
        )
        .await,
    );
    out.push(
        load(
            "plain poem handler (baseline, again)",
            baseline,
            get_request("/hello", &[]),
        )
        .await,
    );
    out
}

fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Starting the Extensor server and preparing a tenant.
mod bench_support {
    use std::net::SocketAddr;
    use std::path::Path;

    use extensor_api::ratelimit::RateLimits;
    use extensor_api::{ServerConfig, serve};
    use extensor_core::store::sqlite::{OpenMode, SqliteConfig};

    pub const ADMIN: &str = "bench-platform-admin-token-0123456789";

    pub struct Running {
        pub addr: SocketAddr,
        pub owner: String,
    }

    pub async fn start(dir: &Path) -> Running {
        let mut config = ServerConfig::new(
            "127.0.0.1:0".into(),
            SqliteConfig::new(dir.join("data"), OpenMode::CreateIfMissing),
        );
        config.admin_token = Some(ADMIN.into());
        config.rate_limits = RateLimits::UNLIMITED;
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(serve(
            config,
            move |l| {
                let _ = tx.send(l.addr);
            },
            std::future::pending(),
        ));
        let addr = rx.await.unwrap();
        let client = reqwest::Client::new();
        let created: serde_json::Value = client
            .post(format!("http://{addr}/api/tenants"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"slug": "bench", "name": "Bench"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let owner = created["owner_token"]["token"].as_str().unwrap().to_owned();
        let part = reqwest::multipart::Part::bytes(example_zip()).file_name("p.zip");
        let up: serde_json::Value = client
            .post(format!("http://{addr}/api/plugins/upload"))
            .bearer_auth(&owner)
            .header("X-Tenant-Slug", "bench")
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = up["plugin"]["id"].as_str().expect("uploaded").to_owned();
        let enabled = client
            .post(format!("http://{addr}/api/plugins/{id}/enable"))
            .bearer_auth(&owner)
            .header("X-Tenant-Slug", "bench")
            .send()
            .await
            .unwrap();
        assert!(enabled.status().is_success());
        Running { addr, owner }
    }

    /// examples/plugins/welcome-email as a ZIP.
    fn example_zip() -> Vec<u8> {
        use std::io::Write;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/plugins/welcome-email");
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(&std::fs::read(&path).unwrap()).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }
}
