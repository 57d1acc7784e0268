//! Several nodes on one PostgreSQL store (issue 15), two measurements for
//! docs/BENCHMARKS.md:
//!
//! - **Failover**: three nodes with the fault harness's world (a hook that
//!   mails each order, a cron job every second, two webhooks to loopback
//!   receivers); `--kills N` times the tenant's owner is killed with
//!   `kill -9` and one order is published to a survivor at once. Measured
//!   from the kill to the successor's first `hook.executed` of that order,
//!   its first `webhook.delivered` of it and its first `job.run_started`
//!   (times as the store recorded them), and to the lease moving (the
//!   cluster view). The killed node is restarted and the cluster settles
//!   before the next kill. The lease TTL is the default.
//! - **Idle cost**: `--tenants T` tenants, three idle nodes; PostgreSQL
//!   transactions per second (`pg_stat_database`) over `--idle-secs S`,
//!   beside the same database with no node running (the baseline).
//!
//! `cargo bench --bench cluster -- --kills 20 --tenants 10000`
//! (`--profile dev` reuses a debug build). Needs PostgreSQL at
//! `EXTENSOR_TEST_POSTGRES_URL` and the test Python (aiosmtpd).

#[path = "../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "../tests/faults/mod.rs"]
#[allow(dead_code)] // the suites use the parts the benchmark does not
mod harness;
#[path = "../js-runtime/tests/common/python.rs"]
mod python;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_store_postgres::test_database::TestDatabase;
use harness::cluster::{cluster_env, settle};
use harness::node::{ADMIN, Api, Node};
use harness::world::{ORDER, World};
use reqwest::Method;
use serde_json::{Value, json};

const KILLS_DEFAULT: usize = 20;
const TENANTS_DEFAULT: usize = 10_000;
const IDLE_SECS_DEFAULT: u64 = 30;
/// Tenants created at once while setting up the idle measurement.
const CREATE_CONCURRENT: usize = 16;
/// How long one failover may take before the run gives up on it.
const FAILOVER_WAIT: Duration = Duration::from_secs(60);

struct Args {
    kills: usize,
    tenants: usize,
    idle_secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        kills: KILLS_DEFAULT,
        tenants: TENANTS_DEFAULT,
        idle_secs: IDLE_SECS_DEFAULT,
    };
    let argv: Vec<String> = std::env::args().collect();
    for pair in argv.windows(2) {
        let parse = |v: &str| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{} takes a number, not {v:?}", pair[0]))
        };
        match pair[0].as_str() {
            "--kills" => a.kills = parse(&pair[1]) as usize,
            "--tenants" => a.tenants = parse(&pair[1]) as usize,
            "--idle-secs" => a.idle_secs = parse(&pair[1]),
            _ => {}
        }
    }
    a
}

async fn database() -> TestDatabase {
    TestDatabase::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ttl_ms() -> u64 {
    extensor_actors::cluster::LEASE_TTL_MS_DEFAULT
}

/// The first event of `event_type` whose payload mentions `needle` (if
/// any) and that was recorded after `after`: its recorded time.
async fn first_recorded(
    api: &Api,
    event_type: &str,
    needle: Option<&str>,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let path = format!("/api/events?type={event_type}&limit=1000&order=desc");
    let page = Api::send(api.tenant(Method::GET, &path)).await.ok()?;
    page["events"]
        .as_array()?
        .iter()
        .filter(|e| needle.is_none_or(|n| e.to_string().contains(n)))
        .filter_map(|e| e["recorded_at"].as_str()?.parse::<DateTime<Utc>>().ok())
        .filter(|t| *t > after)
        .min()
}

/// Milliseconds from the kill to each marker of one failover.
#[derive(Default)]
struct Failover {
    lease: Vec<f64>,
    hook: Vec<f64>,
    delivery: Vec<f64>,
    job: Vec<f64>,
}

fn ms_since(t: DateTime<Utc>, from: DateTime<Utc>) -> f64 {
    (t - from).num_microseconds().unwrap_or(0) as f64 / 1e3
}

async fn one_kill(world: &mut World, peers: &mut [Node], out: &mut Failover) {
    let tenant = world.tenant_id.clone();
    let all: Vec<String> = std::iter::once(world.node.url.clone())
        .chain(peers.iter().map(|p| p.url.clone()))
        .collect();
    let owner = settle(&all[0], &tenant, 3).await;
    let survivor = all.iter().find(|u| **u != owner).unwrap().clone();
    let killed_at = Utc::now();
    let killed = Instant::now();
    let victim: &mut Node = if world.node.url == owner {
        &mut world.node
    } else {
        peers.iter_mut().find(|p| p.url == owner).unwrap()
    };
    victim.kill9();
    world.api.base = survivor.clone();
    let ev = Api::send(
        world
            .api
            .tenant(Method::POST, "/api/events")
            .json(&json!({"event_type": ORDER, "event_data": {"n": "failover"}})),
    )
    .await
    .expect("publish to a survivor");
    let id = ev["id"].as_str().unwrap().to_owned();
    settle(&survivor, &tenant, 2).await;
    out.lease.push(killed.elapsed().as_secs_f64() * 1e3);
    let (mut hook, mut delivery, mut job) = (None, None, None);
    while (hook.is_none() || delivery.is_none() || job.is_none())
        && killed.elapsed() < FAILOVER_WAIT
    {
        hook = hook.or(first_recorded(&world.api, "hook.executed", Some(&id), killed_at).await);
        delivery =
            delivery
                .or(first_recorded(&world.api, "webhook.delivered", Some(&id), killed_at).await);
        job = job.or(first_recorded(&world.api, "job.run_started", None, killed_at).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (marker, into) in [
        (hook, &mut out.hook),
        (delivery, &mut out.delivery),
        (job, &mut out.job),
    ] {
        into.push(marker.map_or(f64::NAN, |t| ms_since(t, killed_at)));
    }
    let victim: &mut Node = if world.node.url == owner {
        &mut world.node
    } else {
        peers.iter_mut().find(|p| p.url == owner).unwrap()
    };
    victim.restart().await;
    settle(&survivor, &tenant, 3).await;
}

fn summary(name: &str, v: &[f64]) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let missing = v.len() - s.len();
    let p50 = s.get(s.len() / 2).copied().unwrap_or(f64::NAN);
    let max = s.last().copied().unwrap_or(f64::NAN);
    println!("| {name} | {} | {p50:.0} | {max:.0} | {missing} |", s.len());
}

async fn failover(kills: usize) {
    let db = database().await;
    let mut world = World::start_with(15, cluster_env(db.url(), ttl_ms())).await;
    let mut peers = vec![
        Node::start(
            &world.dir.path().join("node-1"),
            world.dir.path(),
            world.env(),
        )
        .await,
        Node::start(
            &world.dir.path().join("node-2"),
            world.dir.path(),
            world.env(),
        )
        .await,
    ];
    let mut out = Failover::default();
    for k in 0..kills {
        one_kill(&mut world, &mut peers, &mut out).await;
        eprintln!(
            "kill {}/{kills}: lease moved after {:.0} ms",
            k + 1,
            out.lease[k]
        );
    }
    println!(
        "\nFailover after kill -9 (ms from the kill; lease TTL {} ms):\n",
        ttl_ms()
    );
    println!("| Successor's first | kills | p50 | max | not seen |\n|---|---|---|---|---|");
    summary("lease (cluster view)", &out.lease);
    summary("hook.executed of an order published at the kill", &out.hook);
    summary("webhook.delivered of that order", &out.delivery);
    summary("job.run_started", &out.job);
}

/// Transactions committed or rolled back in the database so far.
async fn transactions(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database \
             WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn rate(client: &tokio_postgres::Client, secs: u64) -> f64 {
    // The statistics collector publishes with a delay: force a fresh read.
    let _ = client.execute("SELECT pg_stat_clear_snapshot()", &[]).await;
    let before = transactions(client).await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let _ = client.execute("SELECT pg_stat_clear_snapshot()", &[]).await;
    let after = transactions(client).await;
    // This session's own reads: 2 per measurement.
    (after - before - 2) as f64 / secs as f64
}

async fn create_tenants(base: &str, n: usize) {
    use futures::StreamExt;
    let http = reqwest::Client::new();
    futures::stream::iter(0..n)
        .for_each_concurrent(CREATE_CONCURRENT, |i| {
            let http = http.clone();
            async move {
                let r = http
                    .post(format!("{base}/api/tenants"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"slug": format!("idle-{i}"), "name": "Idle"}))
                    .send()
                    .await
                    .expect("create a tenant");
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            }
        })
        .await;
}

async fn idle(tenants: usize, secs: u64) {
    let db = database().await;
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let dir = tempfile::tempdir().unwrap();
    let env = cluster_env(db.url(), ttl_ms());
    let mut nodes = vec![Node::start(&dir.path().join("n0"), dir.path(), env.clone()).await];
    let started = Instant::now();
    create_tenants(&nodes[0].url, tenants).await;
    eprintln!("{tenants} tenants created in {:?}", started.elapsed());
    for i in 1..3 {
        nodes.push(Node::start(&dir.path().join(format!("n{i}")), dir.path(), env.clone()).await);
    }
    // Settled: every tenant leased, by three live nodes.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view: Value =
            Api::send(Api::new(&nodes[0].url, "").admin(Method::GET, "/api/ops/cluster"))
                .await
                .unwrap();
        let owned: u64 = view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["live"] == true)
            .map(|n| n["tenants_owned"].as_u64().unwrap_or(0))
            .sum();
        if owned as usize >= tenants || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let with_nodes = rate(&client, secs).await;
    for n in &mut nodes {
        n.kill9();
    }
    let baseline = rate(&client, secs).await;
    println!(
        "\nIdle cost, {tenants} tenants, 3 idle nodes, {secs} s each:\n\n\
         | Database | transactions/s |\n|---|---|\n\
         | no node running (baseline) | {baseline:.1} |\n\
         | three idle nodes | {with_nodes:.1} |"
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    if a.kills > 0 {
        failover(a.kills).await;
    }
    if a.tenants > 0 {
        idle(a.tenants, a.idle_secs).await;
    }
}
