//! Everything a run drives: the server process, the tenant with its plugin
//! (a hook, a per-second cron job, `ctx.email.send`) and its webhooks, the
//! loopback receivers and the SMTP relay. Steps of the plan are applied
//! here; `check.rs` reads the outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::node::{Api, Node, path_segment};
use super::plan::{Fault, RECEIVERS, Step, Target};
use super::receiver::{Mode, Receiver};
use crate::aiosmtpd::Smtp;

/// The business event type the harness publishes; hooks and webhooks
/// match it, nothing else does.
pub const ORDER: &str = "fault.order.created";
/// The marker each job invocation emits with its run id.
pub const TICK: &str = "fault.tick";
/// The cron job's name.
pub const JOB: &str = "tick";

/// A webhook's retries: 4 attempts 250 ms apart (plus a 1 s timeout each),
/// so every outage of the plan outlasts a delivery's whole retry window.
pub const RETRY_ATTEMPTS: u32 = 4;
const RETRY_INTERVAL_MS: u64 = 250;
const WEBHOOK_TIMEOUT_MS: u64 = 1_000;
/// A publish refused while a service restarts is retried (same
/// `Idempotency-Key`) this often, this far apart.
const PUBLISH_TRIES_MAX: u32 = 100;
const PUBLISH_PAUSE_MS: u64 = 100;
/// Cron occurrences this close to a kill, a restart or a tenant stop are
/// not expected to run (they may, once); everything else is.
const CRON_GUARD_MS: i64 = 1_500;
/// How long a setup call answering 503 is retried.
const SETUP_RETRY_MS: u64 = 30_000;

const MANIFEST: &str = r#"{
  "slug": "faults",
  "name": "Fault harness",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["send_email", "events.emit"],
  "events": ["fault.order.created"],
  "jobs": [{"name": "tick", "schedule": "* * * * * *", "catch_up": "run_each", "catch_up_max": 100, "overlap": "queue_one"}]
}"#;

/// The hook proves it ran with the event's id by mailing it; the job
/// proves each invocation by emitting its run id.
const MAIN: &str = r#"import { hook, job } from "extensor:sdk";
hook("fault.order.created", async (e, ctx) => {
  if (e.id !== ctx.invocation.eventId) {
    throw new Error(`event id ${e.id} is not the invocation's ${ctx.invocation.eventId}`);
  }
  const outbox = await ctx.email.send({ to: "orders@example.com", subject: `fault ${e.id}`, text: `order ${e.data.n}` });
  return { event_id: e.id, outbox };
});
job("tick", "* * * * * *", async (run, ctx) => {
  await ctx.emit("fault.tick", { run_id: run.run_id, scheduled_for: run.scheduled_for });
  return { run_id: run.run_id };
});
"#;

/// When cron occurrences are expected: from shortly after the plugin was
/// enabled, except around kills and tenant stops.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub enabled_at: Option<DateTime<Utc>>,
    pub gaps: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Timeline {
    pub fn gap(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        let guard = chrono::Duration::milliseconds(CRON_GUARD_MS);
        self.gaps.push((from - guard, to + guard));
    }

    /// Every whole second in `(enabled + guard, until]` outside the gaps.
    pub fn expected(&self, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let Some(enabled) = self.enabled_at else {
            return Vec::new();
        };
        let first = enabled + chrono::Duration::milliseconds(CRON_GUARD_MS);
        let mut s = first.timestamp() + 1;
        let mut out = Vec::new();
        while s <= until.timestamp() {
            let t = DateTime::from_timestamp(s, 0).expect("a valid second");
            if !self.gaps.iter().any(|(a, b)| *a <= t && t <= *b) {
                out.push(t);
            }
            s += 1;
        }
        out
    }
}

pub struct World {
    pub seed: u64,
    pub node: Node,
    pub api: Api,
    pub receivers: Vec<Receiver>,
    pub relay: Smtp,
    relay_down: bool,
    pub tenant_id: String,
    pub installation_id: String,
    /// Webhook `n` delivers to receiver `n`.
    pub webhooks: Vec<String>,
    /// Ids of the events published, in order.
    pub published: Vec<String>,
    pub timeline: Timeline,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Faults that could not be injected as planned, and why.
    pub notes: Vec<String>,
    pub dir: tempfile::TempDir,
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn webhook_yaml(url: &str) -> String {
    format!(
        "api_version: v1\non: [\"fault.order.*\"]\ndelivery:\n  url: \"{url}\"\n  \
         timeout_ms: {WEBHOOK_TIMEOUT_MS}\nretry: {{max_attempts: {RETRY_ATTEMPTS}, \
         backoff: \"fixed\", interval_ms: {RETRY_INTERVAL_MS}}}\n"
    )
}

/// A setup call that must succeed. A 503 is retried while the request can
/// be sent again: on a shared store a tenant's webhooks answer 503 until
/// the node has taken the new tenant's lease (within a heartbeat).
async fn must(what: &str, req: reqwest::RequestBuilder) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_millis(SETUP_RETRY_MS);
    let mut req = req;
    loop {
        let again = req.try_clone();
        match (Api::send(req).await, again) {
            (Err(e), Some(again)) if e.status == 503 && std::time::Instant::now() < deadline => {
                req = again;
                tokio::time::sleep(Duration::from_millis(PUBLISH_PAUSE_MS)).await;
            }
            (result, _) => return result.unwrap_or_else(|e| panic!("setup: {what}: {e}")),
        }
    }
}

impl World {
    /// Starts the relay, the receivers and the server; creates the tenant,
    /// installs and enables the plugin, declares one webhook per receiver.
    pub async fn start(seed: u64) -> World {
        World::start_with(seed, Vec::new()).await
    }

    /// As [`World::start`], the server with `extra` settings besides the
    /// harness's own (a shared store, a lease TTL): the first node of a
    /// cluster.
    pub async fn start_with(seed: u64, extra: Vec<(String, String)>) -> World {
        let relay = Smtp::start().await;
        let mut receivers = Vec::new();
        for _ in 0..RECEIVERS {
            receivers.push(Receiver::start().await);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let env = vec![
            ("EXTENSOR_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
            ("EXTENSOR_FAULT_DRILLS", "true".to_owned()),
            ("EXTENSOR_SMTP_HOST", "127.0.0.1".to_owned()),
            ("EXTENSOR_SMTP_PORT", relay.port.to_string()),
            ("EXTENSOR_SMTP_FROM", "extensor@example.com".to_owned()),
            ("EXTENSOR_SMTP_TLS", "none".to_owned()),
        ];
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(extra)
            .collect();
        let node = Node::start(&dir.path().join("data"), dir.path(), env).await;
        let mut api = Api::new(&node.url, "acme");
        let created = must(
            "create the tenant",
            api.admin(Method::POST, "/api/tenants")
                .json(&json!({"slug": "acme", "name": "Acme"})),
        )
        .await;
        api.token = created["owner_token"]["token"].as_str().unwrap().to_owned();
        let tenant_id = created["tenant"]["id"].as_str().unwrap().to_owned();
        let mut world = World {
            seed,
            node,
            api,
            receivers,
            relay,
            relay_down: false,
            tenant_id,
            installation_id: String::new(),
            webhooks: Vec::new(),
            published: Vec::new(),
            timeline: Timeline::default(),
            faults: BTreeMap::new(),
            notes: Vec::new(),
            dir,
        };
        world.declare_webhooks().await;
        world.install_plugin().await;
        world
    }

    async fn declare_webhooks(&mut self) {
        for (n, r) in self.receivers.iter().enumerate() {
            let name = format!("sink-{n}");
            must(
                "declare a webhook",
                self.api
                    .tenant(Method::PUT, &format!("/api/webhooks/{name}"))
                    .header("Content-Type", "application/yaml")
                    .body(webhook_yaml(&r.url())),
            )
            .await;
            self.webhooks.push(name);
        }
    }

    async fn install_plugin(&mut self) {
        let zip = zip_of(&[("manifest.json", MANIFEST), ("main.js", MAIN)]);
        let part = reqwest::multipart::Part::bytes(zip).file_name("faults.zip");
        let up = must(
            "upload the plugin",
            self.api
                .tenant(Method::POST, "/api/plugins/upload")
                .multipart(reqwest::multipart::Form::new().part("file", part)),
        )
        .await;
        self.installation_id = up["plugin"]["id"].as_str().expect("plugin id").to_owned();
        let path = format!("/api/plugins/{}/enable", self.installation_id);
        must("enable the plugin", self.api.tenant(Method::POST, &path)).await;
        self.timeline.enabled_at = Some(Utc::now());
    }

    pub async fn apply(&mut self, step: Step) {
        match step {
            Step::Publish { count } => {
                for _ in 0..count {
                    self.publish().await;
                }
            }
            Step::Fault(f) => {
                *self.faults.entry(f.kind()).or_default() += 1;
                self.inject(f).await;
            }
            Step::ReceiverBack { which } => self.receivers[which].set_mode(Mode::Accept).await,
            Step::RelayBack => self.relay_up().await,
        }
    }

    /// The settings every server of this world starts with (a cluster's
    /// other nodes start with the same).
    pub fn env(&self) -> Vec<(String, String)> {
        self.node.env.clone()
    }

    /// Publishes one order, retrying a refusal with the same key, and
    /// records its id.
    pub async fn publish(&mut self) {
        let n = self.published.len();
        let key = format!("fault-{}-{n}", self.seed);
        let body = json!({"event_type": ORDER, "event_data": {"n": n}});
        let mut last = None;
        for _ in 0..PUBLISH_TRIES_MAX {
            let req = self
                .api
                .tenant(Method::POST, "/api/events")
                .header("Idempotency-Key", &key)
                .json(&body);
            match Api::send(req).await {
                Ok(ev) => {
                    self.published
                        .push(ev["id"].as_str().expect("event id").to_owned());
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(PUBLISH_PAUSE_MS)).await;
        }
        panic!("publishing order {n} was refused {PUBLISH_TRIES_MAX} times: {last:?}");
    }

    async fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::Restart(target) => self.restart(target).await,
            Fault::Panic => {
                let path = self.installation_path();
                let url = format!("/api/ops/actors/{}/fault-drill", path_segment(&path));
                self.ops(fault, self.api.admin(Method::POST, &url)).await;
            }
            Fault::Kill9 { down_ms } => {
                let killed = Utc::now();
                self.node.kill9();
                tokio::time::sleep(Duration::from_millis(down_ms)).await;
                self.node.restart().await;
                self.api.base = self.node.url.clone();
                self.timeline.gap(killed, Utc::now());
            }
            Fault::Receiver { which, mode } => self.receivers[which].set_mode(mode).await,
            Fault::RelayDown => {
                if !self.relay_down {
                    self.relay.stop();
                    self.relay_down = true;
                }
            }
            Fault::TenantPause { for_ms } => self.pause_tenant(fault, for_ms).await,
        }
    }

    async fn pause_tenant(&mut self, fault: Fault, for_ms: u64) {
        let stopped = Utc::now();
        let base = format!("/api/ops/tenants/{}", self.tenant_id);
        let stop = self.api.admin(Method::POST, &format!("{base}/stop"));
        self.ops(fault, stop).await;
        tokio::time::sleep(Duration::from_millis(for_ms)).await;
        let resume = self.api.admin(Method::POST, &format!("{base}/resume"));
        if let Err(e) = Api::send(resume).await {
            panic!("resuming the tenant after a planned stop failed: {e}");
        }
        self.timeline.gap(stopped, Utc::now());
    }

    pub async fn relay_up(&mut self) {
        if self.relay_down {
            self.relay.resume().await;
            self.relay_down = false;
        }
    }

    pub fn installation_path(&self) -> String {
        format!(
            "/tenants/{}/installations/{}",
            self.tenant_id, self.installation_id
        )
    }

    async fn restart(&mut self, target: Target) {
        let path = match target {
            Target::Service(name) => format!("/tenants/{}/{name}", self.tenant_id),
            Target::Installation => self.installation_path(),
            Target::Other(n) => match self.other_children().await.as_slice() {
                [] => {
                    self.notes
                        .push("restart other child: the tenant has no other child".into());
                    return;
                }
                paths => paths[n as usize % paths.len()].clone(),
            },
        };
        let url = format!("/api/ops/actors/{}/restart", path_segment(&path));
        self.ops(Fault::Restart(target), self.api.admin(Method::POST, &url))
            .await;
    }

    /// Tree paths under the tenant that are neither its supervisor, its
    /// aggregate, an installation nor one of the four services.
    async fn other_children(&self) -> Vec<String> {
        let prefix = format!("/tenants/{}/", self.tenant_id);
        let known = ["tenant", "dispatcher", "webhooks", "scheduler", "outbox"];
        self.tree()
            .await
            .into_iter()
            .filter_map(|a| a["path"].as_str().map(str::to_owned))
            .filter(|p| {
                p.strip_prefix(&prefix).is_some_and(|rest| {
                    !known.contains(&rest) && !rest.starts_with("installations/")
                })
            })
            .collect()
    }

    pub async fn tree(&self) -> Vec<Value> {
        Api::send(self.api.admin(Method::GET, "/api/ops/tree"))
            .await
            .map(|t| t["actors"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// An ops call; a refusal is noted (the fault was not injected), not
    /// fatal: a service that is not running cannot be restarted.
    async fn ops(&mut self, fault: Fault, req: reqwest::RequestBuilder) {
        if let Err(e) = Api::send(req).await {
            self.notes.push(format!("{}: {e}", fault.kind()));
        }
    }

    /// The operator's part of settling: receivers accept, the relay is up,
    /// and any actor the supervisor gave up on (`failed`) is restarted.
    pub async fn heal(&mut self) -> u64 {
        for r in &mut self.receivers {
            r.set_mode(Mode::Accept).await;
        }
        self.relay_up().await;
        let mut restarted = 0;
        for actor in self.tree().await {
            let path = actor["path"].as_str().unwrap_or_default();
            if actor["status"] == "failed" && path.starts_with("/tenants/") {
                let url = format!("/api/ops/actors/{}/restart", path_segment(path));
                if Api::send(self.api.admin(Method::POST, &url)).await.is_ok() {
                    restarted += 1;
                }
            }
        }
        restarted
    }
}
