//! Several `extensor serve` nodes on one PostgreSQL store (issue 15): real
//! processes on loopback, a real database per test, real isolates, a real
//! SMTP relay and loopback webhook receivers (the fault harness's, from
//! `tests/faults/`).
//!
//! - `three_nodes_survive_a_kill_a_restart_and_a_join`: three nodes under
//!   continuous publishing (to every node in turn), a hook that mails each
//!   event, a cron job every second and two webhooks; the tenant's owner is
//!   killed with `kill -9`, another node takes over within the lease bound,
//!   the killed node comes back (a new node), a fourth joins. Then every
//!   delivery guarantee of the fault harness is checked across the cluster:
//!   every hook ran and mailed, every webhook delivery arrived with a
//!   stable id, every cron occurrence outside the hand-overs ran, none ran
//!   twice.
//! - `a_node_cut_from_the_store_fences_itself_before_its_lease_passes`: the
//!   owner's store connection goes through a TCP proxy the test closes; the
//!   owner answers `503 node_fenced` while the store still shows its lease
//!   (it stopped before anyone could take over), the other node takes the
//!   tenant once the lease expired and runs the hooks of what was
//!   published meanwhile, and the cut node serves again when the proxy is
//!   back.
//! - `a_node_without_the_lease_forwards_to_the_owner_one_hop`: on the node
//!   that does not hold the tenant's lease, webhook apply and list, run-now
//!   and a job view answer with the owner's answers (forwarded); a forged
//!   forwarding mark gets `503 tenant_owned_elsewhere`, not a loop; a call
//!   without credentials is refused there as on the owner; with the owner
//!   killed the calls answer 503 with `Retry-After` until the other node
//!   takes the lease and answers itself.

#[path = "../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "faults/mod.rs"]
#[allow(dead_code)] // the fault suite and the soak use the rest
mod harness;
#[path = "../js-runtime/tests/common/python.rs"]
mod python;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use extensor_store_postgres::test_database::TestDatabase;
use harness::check;
use harness::cluster::{SETTLE_WAIT, cluster_env, cluster_view, live_and_owners, settle};
use harness::node::{Api, Node};
use harness::world::World;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The lease TTL the nodes run with: short, so the suite is quick. The
/// takeover bound is this plus one heartbeat plus the services' start.
const LEASE_TTL_MS: u64 = 3_000;
const HEARTBEAT_MS: u64 = extensor_actors::cluster::HEARTBEAT_INTERVAL_MS;
/// The job claims occurrences this far ahead; a node giving a tenant up
/// leaves them to the next owner, whose scheduler adopts them as it starts.
const CLAIM_LEAD_MS: i64 = extensor_actors::scheduler::CLAIM_LEAD_MS as i64;
/// Pause between two publishes of the traffic task.
const PUBLISH_EVERY_MS: u64 = 100;

async fn database() -> TestDatabase {
    TestDatabase::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Slack over the bound for a loaded 2-core CI runner (process scheduling,
/// the services' start); the lease itself moves by the database's clock.
const TAKEOVER_SLACK_MS: u64 = 4_000;

/// Continuous publishing to every live node in turn, each order with an
/// idempotency key so a refused or cut-off publish is retried on the next
/// node without a duplicate.
struct Traffic {
    bases: Arc<std::sync::Mutex<Vec<String>>>,
    published: Arc<std::sync::Mutex<Vec<String>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(token: String, bases: Vec<String>) -> Traffic {
        let bases = Arc::new(std::sync::Mutex::new(bases));
        let published = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(publish_loop(
            token,
            bases.clone(),
            published.clone(),
            stopped,
        ));
        Traffic {
            bases,
            published,
            stop,
            task,
        }
    }

    fn set_bases(&self, bases: Vec<String>) {
        *self.bases.lock().unwrap() = bases;
    }

    async fn finish(self) -> Vec<String> {
        let _ = self.stop.send(true);
        self.task.await.expect("the traffic task");
        self.published.lock().unwrap().clone()
    }
}

async fn publish_loop(
    token: String,
    bases: Arc<std::sync::Mutex<Vec<String>>>,
    published: Arc<std::sync::Mutex<Vec<String>>>,
    stopped: watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut n = 0usize;
    let mut turn = 0usize;
    while !*stopped.borrow() {
        let body = json!({"event_type": harness::world::ORDER, "event_data": {"n": n}});
        let key = format!("cluster-{n}");
        loop {
            let base = {
                let b = bases.lock().unwrap();
                b[turn % b.len()].clone()
            };
            turn += 1;
            let resp = http
                .post(format!("{base}/api/events"))
                .bearer_auth(&token)
                .header("X-Tenant-Slug", "acme")
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await;
            if let Ok(r) = resp
                && r.status().is_success()
                && let Ok(ev) = r.json::<Value>().await
            {
                published
                    .lock()
                    .unwrap()
                    .push(ev["id"].as_str().expect("event id").to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(PUBLISH_EVERY_MS)).await;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(PUBLISH_EVERY_MS)).await;
    }
}

/// One more node on the world's store, with its own data directory.
async fn another_node(world: &World, name: &str) -> Node {
    Node::start(&world.dir.path().join(name), world.dir.path(), world.env()).await
}

/// A topology change: no cron occurrence is expected from `from` until the
/// new owner's scheduler has adopted the claims (`CLAIM_LEAD_MS` after it
/// settled); the harness adds its guard on both sides.
fn hand_over(world: &mut World, from: chrono::DateTime<Utc>) {
    let to = Utc::now() + chrono::Duration::milliseconds(CLAIM_LEAD_MS);
    world.timeline.gap(from, to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_a_kill_a_restart_and_a_join() {
    let db = database().await;
    let mut world = World::start_with(15, cluster_env(db.url(), LEASE_TTL_MS)).await;
    let tenant = world.tenant_id.clone();
    let first = settle(&world.node.url, &tenant, 1).await;
    assert_eq!(first, world.node.url, "the only node owns the tenant");
    let mut peers = vec![
        another_node(&world, "node-1").await,
        another_node(&world, "node-2").await,
    ];
    let joined = Utc::now();
    let traffic = Traffic::start(
        world.api.token.clone(),
        vec![
            world.node.url.clone(),
            peers[0].url.clone(),
            peers[1].url.clone(),
        ],
    );
    let owner = settle(&world.node.url, &tenant, 3).await;
    hand_over(&mut world, joined);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // kill -9 the owner; the others take over within the bound.
    let killed_at = Utc::now();
    let killed = Instant::now();
    let survivors: Vec<String> = std::iter::once(&world.node)
        .chain(peers.iter())
        .map(|n| n.url.clone())
        .filter(|u| *u != owner)
        .collect();
    traffic.set_bases(survivors.clone());
    if owner == world.node.url {
        world.node.kill9();
        world.api.base = survivors[0].clone();
    } else {
        let p = peers.iter_mut().find(|p| p.url == owner).unwrap();
        p.kill9();
    }
    let successor = settle(&survivors[0], &tenant, 2).await;
    let failover = killed.elapsed();
    assert_ne!(successor, owner);
    hand_over(&mut world, killed_at);
    let bound = Duration::from_millis(LEASE_TTL_MS + 2 * HEARTBEAT_MS + TAKEOVER_SLACK_MS);
    assert!(
        failover <= bound,
        "takeover after kill -9 took {failover:?}, over the bound {bound:?}"
    );
    println!("takeover after kill -9: {failover:?} (lease TTL {LEASE_TTL_MS} ms)");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The killed node comes back (a new node id), then a fourth joins.
    let back_at = Utc::now();
    let restarted = if owner == world.node.url {
        world.node.restart().await;
        world.node.url.clone()
    } else {
        let p = peers.iter_mut().find(|p| p.url == owner).unwrap();
        p.restart().await;
        p.url.clone()
    };
    let mut bases = survivors.clone();
    bases.push(restarted);
    traffic.set_bases(bases.clone());
    settle(&survivors[0], &tenant, 3).await;
    hand_over(&mut world, back_at);
    let fourth_at = Utc::now();
    peers.push(another_node(&world, "node-3").await);
    bases.push(peers[2].url.clone());
    traffic.set_bases(bases);
    settle(&survivors[0], &tenant, 4).await;
    hand_over(&mut world, fourth_at);
    tokio::time::sleep(Duration::from_secs(3)).await;

    world.published = traffic.finish().await;
    let traffic_end = Utc::now();
    assert!(world.published.len() > 20, "too little traffic");
    let violations = settle_and_check(&mut world, traffic_end).await;
    assert!(
        violations.is_empty(),
        "cluster broke delivery guarantees (logs in {}):\n{}",
        keep_logs(&mut world),
        violations.join("\n")
    );
}

/// A stale owner that is alive: the owner is frozen (SIGSTOP) past its
/// lease, the other node takes the tenant over, then the frozen one runs
/// again (SIGCONT) still believing it owns the tenant until its next
/// renewal fails. It can neither run nor record: every record of a hook
/// lane carries the epoch of the newest claim on its stream at that point
/// (a stale lane's append would carry its older epoch), and the harness's
/// invariants (hooks, deliveries, cron at most once, emails) hold across
/// both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_thawed_after_takeover_neither_runs_nor_records() {
    let db = database().await;
    let mut world = World::start_with(17, cluster_env(db.url(), LEASE_TTL_MS)).await;
    let tenant = world.tenant_id.clone();
    settle(&world.node.url, &tenant, 1).await;
    let peer = another_node(&world, "node-1").await;
    let joined = Utc::now();
    let both = vec![world.node.url.clone(), peer.url.clone()];
    let traffic = Traffic::start(world.api.token.clone(), both.clone());
    let owner = settle(&world.node.url, &tenant, 2).await;
    hand_over(&mut world, joined);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let frozen_at = Utc::now();
    let other = both.iter().find(|u| **u != owner).unwrap().clone();
    traffic.set_bases(vec![other.clone()]);
    world.api.base = other.clone();
    let signal = |world: &World, name: &str| {
        if owner == world.node.url {
            world.node.signal(name);
        } else {
            peer.signal(name);
        }
    };
    signal(&world, "STOP");
    let successor = settle(&other, &tenant, 1).await;
    assert_eq!(successor, other, "the live node took the tenant");
    hand_over(&mut world, frozen_at);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let thawed_at = Utc::now();
    signal(&world, "CONT");
    settle(&other, &tenant, 2).await;
    traffic.set_bases(both);
    hand_over(&mut world, thawed_at);
    tokio::time::sleep(Duration::from_secs(3)).await;

    world.published = traffic.finish().await;
    let traffic_end = Utc::now();
    assert!(world.published.len() > 20, "too little traffic");
    let violations = settle_and_check(&mut world, traffic_end).await;
    assert!(
        violations.is_empty(),
        "a thawed stale owner broke delivery guarantees (logs in {}):\n{}",
        keep_logs(&mut world),
        violations.join("\n")
    );
    let lanes = lane_records(&world.api).await;
    assert!(
        lanes.checked > 20,
        "too few lane records: {}",
        lanes.checked
    );
    assert!(
        lanes.claims_max >= 2,
        "no lane was claimed again after the takeover"
    );
    let stale = lanes.stale;
    assert!(stale.is_empty(), "records of a stale lane: {stale:#?}");
    drop(peer);
}

/// The records of the `hooks-*` streams, checked against their claims.
#[derive(Default)]
struct LaneRecords {
    /// Records carrying an epoch, other than claims.
    checked: usize,
    /// The most claims any one stream had.
    claims_max: usize,
    /// Records whose epoch is not the newest claim's on their stream at
    /// that point of the log.
    stale: Vec<Value>,
}

async fn lane_records(api: &Api) -> LaneRecords {
    let mut newest: std::collections::HashMap<String, (u64, usize)> = Default::default();
    let mut lanes = LaneRecords::default();
    let mut after = 0u64;
    loop {
        let page = api
            .get(&format!("/api/events?after={after}&limit=1000"))
            .await
            .expect("reading the log");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return lanes;
        }
        after = page["next_after"].as_u64().expect("next_after");
        for e in events {
            let stream = e["stream"].as_str().unwrap_or_default().to_owned();
            let epoch = e["data"]["epoch"].as_u64();
            let (true, Some(epoch)) = (stream.starts_with("hooks-"), epoch) else {
                continue;
            };
            if e["type"] == "hook.lane_claimed" {
                let claims = newest.get(&stream).map_or(0, |(_, n)| *n) + 1;
                lanes.claims_max = lanes.claims_max.max(claims);
                newest.insert(stream, (epoch, claims));
                continue;
            }
            lanes.checked += 1;
            if newest.get(&stream).map(|(e, _)| *e) != Some(epoch) {
                lanes.stale.push(e);
            }
        }
    }
}

/// Heals (receivers and relay are up all along here) and re-checks every
/// invariant until nothing is pending or the settle time is over.
async fn settle_and_check(world: &mut World, until: chrono::DateTime<Utc>) -> Vec<String> {
    world.heal().await;
    let deadline = Instant::now() + SETTLE_WAIT;
    let mut log = check::Log::default();
    loop {
        let (_, violations) = check::check(world, &mut log, until).await;
        if violations.iter().all(|v| !v.settling) || Instant::now() >= deadline {
            return violations
                .iter()
                .map(|v| format!("{} {}: {}", v.invariant, v.id, v.detail))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn keep_logs(world: &mut World) -> String {
    let dir = std::mem::replace(&mut world.dir, tempfile::tempdir().expect("temp dir"));
    dir.keep().display().to_string()
}

/// A loopback TCP proxy to the database that the test can cut (every
/// connection closed, new ones closed at once) and restore.
struct Proxy {
    port: u16,
    open: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, opened) = watch::channel(true);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*opened.borrow() {
                    let _ = client.shutdown().await;
                    continue;
                }
                let target = target.clone();
                let mut cut = opened.clone();
                conns.spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Proxy { port, open, task }
    }

    fn cut(&self) {
        let _ = self.open.send(false);
    }

    fn restore(&self) {
        let _ = self.open.send(true);
    }
}

/// `url` with its host and port replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, tail) = match rest.split_once('@') {
        Some((a, t)) => (format!("{a}@"), t),
        None => (String::new(), rest),
    };
    let (host_port, path) = tail.split_once('/').unwrap_or((tail, ""));
    (
        format!("{scheme}://{auth}127.0.0.1:{port}/{path}"),
        host_port.to_owned(),
    )
}

/// The code of a refused call, or `None` for a success.
async fn refusal(api: &Api, path: &str) -> Option<String> {
    match Api::send(api.tenant(Method::GET, path)).await {
        Ok(_) => None,
        Err(e) => Some(
            serde_json::from_str::<Value>(&e.body)
                .ok()
                .and_then(|b| b["code"].as_str().map(str::to_owned))
                .unwrap_or(format!("{} {}", e.status, e.body)),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_from_the_store_fences_itself_before_its_lease_passes() {
    let db = database().await;
    // Both nodes reach the database through their own proxy.
    let (_, target) = through(db.url(), 0);
    let proxies = [
        Proxy::start(target.clone()).await,
        Proxy::start(target).await,
    ];
    let urls: Vec<String> = proxies
        .iter()
        .map(|p| through(db.url(), p.port).0)
        .collect();
    // The default TTL: the node fences at half of it, leaving the test
    // seconds to see the lease still its own.
    let ttl_ms = extensor_actors::cluster::LEASE_TTL_MS_DEFAULT;
    let world = World::start_with(16, cluster_env(&urls[0], ttl_ms)).await;
    let tenant = world.tenant_id.clone();
    settle(&world.node.url, &tenant, 1).await;
    let mut env = world.env();
    for (k, v) in &mut env {
        if k == "EXTENSOR_STORE_URL" {
            *v = urls[1].clone();
        }
    }
    let other = Node::start(&world.dir.path().join("node-1"), world.dir.path(), env).await;
    let owner = settle(&world.node.url, &tenant, 2).await;
    let (cut_proxy, owner_api, other_url) = if owner == world.node.url {
        (&proxies[0], world.node.url.clone(), other.url.clone())
    } else {
        (&proxies[1], other.url.clone(), world.node.url.clone())
    };
    let view = cluster_view(&other_url).await.unwrap();
    let (_, owners) = live_and_owners(&view, &tenant);
    let cut_id = owners.first().cloned().expect("an owner");
    let mut owner_client = Api::new(&owner_api, "acme");
    owner_client.token = world.api.token.clone();
    let mut other_client = Api::new(&other_url, "acme");
    other_client.token = world.api.token.clone();
    assert_eq!(refusal(&owner_client, "/api/events?limit=1").await, None);

    cut_proxy.cut();
    let cut = Instant::now();
    // The positive marker: the owner refuses with node_fenced…
    loop {
        let code = refusal(&owner_client, "/api/events?limit=1").await;
        if code.as_deref() == Some("node_fenced") {
            break;
        }
        assert!(cut.elapsed() < SETTLE_WAIT, "never fenced: {code:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fenced_after = cut.elapsed();
    // …while the store still shows its lease: it stopped before anyone
    // could take the tenant.
    let view = cluster_view(&other_url).await.unwrap();
    let (_, owners) = live_and_owners(&view, &tenant);
    assert_eq!(owners, vec![cut_id.clone()], "{view}");
    assert!(
        fenced_after < Duration::from_millis(ttl_ms),
        "fenced after {fenced_after:?}, not before the lease could expire"
    );
    // Published meanwhile through the other node, then handled by it.
    let mut ids = Vec::new();
    for n in 0..3 {
        let ev = Api::send(
            other_client
                .tenant(Method::POST, "/api/events")
                .json(&json!({"event_type": harness::world::ORDER, "event_data": {"n": n}})),
        )
        .await
        .unwrap();
        ids.push(ev["id"].as_str().unwrap().to_owned());
    }
    settle(&other_url, &tenant, 1).await;
    for id in &ids {
        wait_hook_executed(&other_client, id).await;
    }

    cut_proxy.restore();
    let back = Instant::now();
    while refusal(&owner_client, "/api/events?limit=1")
        .await
        .is_some()
    {
        assert!(
            back.elapsed() < SETTLE_WAIT,
            "the cut node never served again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settle(&other_url, &tenant, 2).await;
    drop(other);
}

/// Waits until the log holds a `hook.executed` for `event_id`.
async fn wait_hook_executed(api: &Api, event_id: &str) {
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        let found = Api::send(api.tenant(Method::GET, "/api/events?type=hook.executed&limit=500"))
            .await
            .map(|v| v.to_string().contains(event_id))
            .unwrap_or(false);
        if found {
            return;
        }
        assert!(Instant::now() < deadline, "no hook.executed for {event_id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `extensor cluster status` with `--store` from the environment.
fn cluster_status(data: &std::path::Path, store_url: Option<&str>) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_extensor"));
    cmd.args(["cluster", "status"])
        .env("EXTENSOR_DATA_DIR", data)
        .env_remove("EXTENSOR_STORE_URL");
    if let Some(url) = store_url {
        cmd.env("EXTENSOR_STORE_URL", url);
    }
    let out = cmd.output().expect("run extensor cluster status");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_is_one_node_owning_every_tenant_and_the_cli_lists_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = Node::start(&data, dir.path(), Vec::new()).await;
    let mut api = Api::new(&node.url, "acme");
    let created = Api::send(
        api.admin(Method::POST, "/api/tenants")
            .json(&json!({"slug": "acme", "name": "Acme"})),
    )
    .await
    .unwrap();
    api.token = created["owner_token"]["token"].as_str().unwrap().to_owned();
    let view = cluster_view(&node.url).await.unwrap();
    assert_eq!(view["mode"], "single", "{view}");
    let nodes = view["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{view}");
    assert_eq!(nodes[0]["this_node"], true);
    assert!(nodes[0]["id"].as_str().unwrap().starts_with("node_"));
    assert_eq!(nodes[0]["tenants"][0]["slug"], "acme", "{view}");
    // Only the platform admin sees it.
    let refused = Api::send(api.tenant(Method::GET, "/api/ops/cluster")).await;
    assert_eq!(refused.unwrap_err().status, 403);
    drop(node);
    let text = cluster_status(&data, None);
    assert!(text.contains("one node"), "{text}");

    // On a shared store: every node with its tenants, read from the store.
    let db = database().await;
    let mut world = World::start_with(17, cluster_env(db.url(), LEASE_TTL_MS)).await;
    let tenant = world.tenant_id.clone();
    let _peer = another_node(&world, "node-1").await;
    let owner = settle(&world.node.url, &tenant, 2).await;
    let text = cluster_status(&data, Some(db.url()));
    assert_eq!(text.matches("  live  ").count(), 2, "{text}");
    assert!(text.contains(&tenant), "{text}");
    assert!(text.contains(owner.trim_start_matches("http://")), "{text}");
    world.node.kill9();
}

/// The code and `Retry-After` of a refused call.
async fn refused_with(resp: reqwest::Response) -> (u16, Option<String>, Option<String>) {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["code"].as_str().map(str::to_owned),
        retry_after,
    )
}

/// `extensor_cluster_forwards_total` of `outcome` in a node's `/metrics`.
async fn forwards(base: &str, outcome: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("extensor_cluster_forwards_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_lease_forwards_to_the_owner_one_hop() {
    let db = database().await;
    let mut world = World::start_with(18, cluster_env(db.url(), LEASE_TTL_MS)).await;
    let tenant = world.tenant_id.clone();
    let mut peer = another_node(&world, "node-1").await;
    let owner = settle(&world.node.url, &tenant, 2).await;
    let other = if owner == world.node.url {
        peer.url.clone()
    } else {
        world.node.url.clone()
    };
    let mut api = Api::new(&other, "acme");
    api.token = world.api.token.clone();
    let jobs = format!("/api/plugins/{}/jobs", world.installation_id);

    // Webhook apply and list, run-now and a job view, all on the node
    // without the lease: the owner's answers.
    let yaml = harness::world::webhook_yaml(&world.receivers[0].url());
    let applied = Api::send(
        api.tenant(Method::PUT, "/api/webhooks/forwarded")
            .header("Content-Type", "application/yaml")
            .body(yaml),
    )
    .await
    .unwrap();
    assert_eq!(applied["name"], "forwarded", "{applied}");
    let listed = api.get("/api/webhooks").await.unwrap();
    assert!(listed.to_string().contains("\"forwarded\""), "{listed}");
    let ran = Api::send(api.tenant(
        Method::POST,
        &format!("{jobs}/{}/run-now?wait_ms=10000", harness::world::JOB),
    ))
    .await
    .unwrap();
    assert!(ran["run_id"].as_str().unwrap().starts_with("run_"), "{ran}");
    let view = api.get(&jobs).await.unwrap();
    assert_eq!(view["jobs"][0]["name"], harness::world::JOB, "{view}");
    assert!(forwards(&other, "forwarded").await >= 3);

    // A forged forwarding mark only loses forwarding: 503, never a loop.
    let forged = api
        .tenant(Method::GET, &jobs)
        .header("X-Extensor-Forwarded-By", "node_forged")
        .send()
        .await
        .unwrap();
    let (status, code, retry) = refused_with(forged).await;
    assert_eq!(
        (status, code.as_deref()),
        (503, Some("tenant_owned_elsewhere"))
    );
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(forwards(&other, "second_hop_refused").await, 1);

    // No credentials: refused as on the owner; the mark grants nothing.
    let anonymous = |base: &str| {
        reqwest::Client::new()
            .get(format!("{base}{jobs}"))
            .header("X-Tenant-Slug", "acme")
            .header("X-Extensor-Forwarded-By", "node_forged")
    };
    let on_owner = anonymous(&owner).send().await.unwrap().status().as_u16();
    let via_other = anonymous(&other).send().await.unwrap().status().as_u16();
    assert_eq!(on_owner, 401);
    assert_eq!(via_other, on_owner);
    let wrong = reqwest::Client::new()
        .get(format!("{other}{jobs}"))
        .header("X-Tenant-Slug", "acme")
        .bearer_auth("ext_not_a_token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    // The owner killed: 503 with Retry-After (unreachable, then moving)
    // until the other node holds the lease and answers itself; never 500.
    if owner == world.node.url {
        world.node.kill9();
    } else {
        peer.kill9();
    }
    let killed = Instant::now();
    let mut codes = Vec::new();
    loop {
        let resp = api.tenant(Method::GET, &jobs).send().await.unwrap();
        if resp.status().is_success() {
            break;
        }
        let (status, code, retry) = refused_with(resp).await;
        assert_eq!(status, 503, "{code:?}");
        assert_eq!(retry.as_deref(), Some("1"), "{code:?}");
        codes.push(code.unwrap_or_default());
        assert!(
            killed.elapsed() < SETTLE_WAIT,
            "never served again: {codes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        codes.first().map(String::as_str),
        Some("tenant_owner_unreachable"),
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| c == "tenant_owner_unreachable" || c == "tenant_lease_moving"),
        "{codes:?}"
    );
    assert!(forwards(&other, "owner_unreachable").await >= 1);
}
