//! Shared helpers of the webhook tests and benchmark: a real HTTP/1.1
//! receiver on loopback (keep-alive, scripted answers, held responses), a
//! real store in a temporary directory, a real sandbox, and a harness that
//! runs one tenant's webhook dispatcher.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use extensor_actors::Error;
use extensor_actors::webhooks::dispatcher::{Applied, ApplyMode};
use extensor_actors::webhooks::query::{DeliveryQuery, DeliveryView, deliveries};
use extensor_actors::webhooks::{
    DispatcherArgs, DispatcherMsg, EndpointStats, SecretSource, WebhookConfig, WebhookDispatcher,
};
use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ExpectedRevision};
use extensor_core::webhook::registry::{TenantWebhooks, WebhookName, WebhookSource};
use extensor_js::host::net::GuardedHttp;
use extensor_js::{NetworkPolicy, PrivateNetworks, Sandbox, SandboxConfig};
use futures::future::BoxFuture;
use ractor::{Actor, ActorRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub const CALL_MS: u64 = 10_000;
pub const WAIT_MS: u64 = 15_000;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// How to answer the n-th request (from 0).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Option<Duration>,
    /// Hold the answer until the receiver's gate opens.
    pub hold: bool,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: format!("{{\"status\":{status}}}"),
            headers: Vec::new(),
            delay: None,
            hold: false,
        }
    }
}

pub type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

pub fn always(status: u16) -> Script {
    Arc::new(move |_| Reply::status(status))
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
    gate: watch::Sender<bool>,
    /// While set, every connection is closed before a request is read: the
    /// sender sees a connection error, as when a receiver is down.
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    pub async fn start(script: Script) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (gate, _) = watch::channel(false);
        let r = Receiver {
            addr,
            log: Arc::default(),
            count: Arc::default(),
            gate,
            down: Arc::default(),
        };
        let server = r.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (server, script) = (server.clone(), script.clone());
                tokio::spawn(async move { server.serve(sock, script).await });
            }
        });
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Takes the receiver down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Requests that arrived, whether or not they were answered yet.
    pub fn arrived(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        wait_until(&format!("{n} requests at {}", self.addr), || async {
            self.count() >= n
        })
        .await;
        self.received()
    }

    async fn serve(&self, mut sock: tokio::net::TcpStream, script: Script) {
        let mut buf = Vec::new();
        loop {
            if self.down.load(Ordering::SeqCst) {
                return;
            }
            let Some((head_len, headers)) = read_head(&mut sock, &mut buf).await else {
                return;
            };
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_len + len {
                let mut chunk = [0u8; 8192];
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buf[head_len..head_len + len].to_vec();
            buf.drain(..head_len + len);
            let n = self.count.fetch_add(1, Ordering::SeqCst);
            let reply = script(n);
            if reply.hold {
                let mut rx = self.gate.subscribe();
                let _ = rx.wait_for(|open| *open).await;
            }
            if let Some(d) = reply.delay {
                tokio::time::sleep(d).await;
            }
            self.log.lock().unwrap().push(Received {
                headers,
                body,
                at: Instant::now(),
            });
            let mut out = format!(
                "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                reply.status,
                reply.body.len()
            );
            for (k, v) in &reply.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&reply.body);
            if sock.write_all(out.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

async fn read_head(
    sock: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(usize, HashMap<String, String>)> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            return Some((i + 4, headers));
        }
        let mut chunk = [0u8; 8192];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Polls `cond` every 5 ms until it holds; panics after [`WAIT_MS`].
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_millis(WAIT_MS),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Tenant secrets held in memory (the store-backed source is tested in api/).
/// While `failing` is set, reading them fails (a fault that makes an
/// endpoint's start fail).
#[derive(Default)]
pub struct MapSecrets(
    pub Mutex<BTreeMap<String, String>>,
    pub std::sync::atomic::AtomicBool,
);

impl SecretSource for MapSecrets {
    fn secrets<'a>(
        &'a self,
        _tenant: &'a TenantId,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, String>> {
        let map = self.0.lock().unwrap().clone();
        let failing = self.1.load(Ordering::SeqCst);
        Box::pin(async move {
            if failing {
                return Err("secrets store unavailable (injected)".into());
            }
            Ok(map)
        })
    }
}

pub fn sandbox_config(private: PrivateNetworks) -> SandboxConfig {
    SandboxConfig {
        heap_bytes_max: 32 * 1024 * 1024,
        deadline_ms: 300,
        job_deadline_ms: 1_000,
        stack_bytes_max: 512 * 1024,
        pool_isolates_max: 2,
        isolate_idle_ms: extensor_js::config::ISOLATE_IDLE_MS_DEFAULT,
        isolate_queue_max: extensor_js::config::ISOLATE_QUEUE_MAX_DEFAULT,
        spare_isolates: extensor_js::config::SPARE_ISOLATES_DEFAULT,
        network: NetworkPolicy {
            private_networks: private,
            platform_allowed_hosts: None,
        },
        engine: extensor_js::JsEngine::default(),
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn EventStore>,
    pub sqlite: Arc<SqliteStore>,
    pub tenant: TenantId,
    pub secrets: Arc<MapSecrets>,
    pub config: WebhookConfig,
    pub dispatcher: Option<ActorRef<DispatcherMsg>>,
}

impl Harness {
    pub async fn new(private: PrivateNetworks) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = open_sqlite(&dir);
        let store: Arc<dyn EventStore> = sqlite.clone();
        let sandbox_config = sandbox_config(private);
        let http = Arc::new(GuardedHttp::new(sandbox_config.network.clone()).unwrap());
        let secrets = Arc::new(MapSecrets::default());
        let mut config = WebhookConfig::new(
            store.clone(),
            Sandbox::new(sandbox_config),
            http,
            secrets.clone(),
        );
        config.tick_ms = 5;
        config.restart.backoff_initial_ms = 5;
        let mut h = Harness {
            dir,
            store,
            sqlite,
            tenant: TenantId::generate(),
            secrets,
            config,
            dispatcher: None,
        };
        h.start().await;
        h
    }

    pub fn secret(&self, key: &str, value: &str) {
        self.secrets
            .0
            .lock()
            .unwrap()
            .insert(key.into(), value.into());
    }

    pub async fn start(&mut self) {
        let args = DispatcherArgs {
            tenant: self.tenant.clone(),
            config: self.config.clone(),
        };
        let (actor, _) = Actor::spawn(None, WebhookDispatcher, args)
            .await
            .expect("dispatcher starts");
        self.dispatcher = Some(actor);
    }

    /// Stops the dispatcher and its endpoints, as a process exit would.
    pub async fn stop(&mut self) {
        if let Some(d) = self.dispatcher.take() {
            d.stop_and_wait(None, Some(Duration::from_secs(5)))
                .await
                .unwrap();
        }
    }

    fn actor(&self) -> &ActorRef<DispatcherMsg> {
        self.dispatcher.as_ref().expect("dispatcher running")
    }

    pub async fn apply(
        &self,
        name: &str,
        yaml: &str,
        files: &[(&str, &str)],
    ) -> Result<Applied, Error> {
        let source = WebhookSource {
            yaml: yaml.into(),
            files: files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        };
        let name: WebhookName = name.parse().unwrap();
        let meta = EventMeta::new(Some(self.tenant.clone()), Principal::system());
        let build = |reply| DispatcherMsg::Apply {
            name,
            source,
            mode: ApplyMode::Apply,
            if_revision: None,
            meta,
            reply,
        };
        self.actor()
            .call(build, Some(Duration::from_millis(CALL_MS)))
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn publish(&self, event_type: &str, data: serde_json::Value) -> u64 {
        let meta = EventMeta::new(Some(self.tenant.clone()), Principal::system());
        let ev = NewEvent::new(event_type, 1, meta, &data).unwrap();
        let r = self
            .store
            .append(
                StreamId::business_events(&self.tenant),
                ExpectedRevision::Any,
                vec![ev],
            )
            .await
            .unwrap();
        r.last_position
    }

    pub async fn deliveries(&self, name: &str) -> Vec<DeliveryView> {
        let q = DeliveryQuery {
            limit: 1_000,
            ..DeliveryQuery::default()
        };
        deliveries(&*self.store, &self.tenant, &name.parse().unwrap(), &q)
            .await
            .unwrap()
    }

    /// Waits until `n` deliveries of `name` are final, and returns them all.
    pub async fn settled(&self, name: &str, n: usize) -> Vec<DeliveryView> {
        wait_until(&format!("{n} final deliveries of {name}"), || async {
            self.deliveries(name)
                .await
                .iter()
                .filter(|d| d.status.is_final())
                .count()
                >= n
        })
        .await;
        self.deliveries(name).await
    }

    pub async fn registry(&self) -> TenantWebhooks {
        self.actor()
            .call(
                |reply| DispatcherMsg::Registry { reply },
                Some(Duration::from_millis(CALL_MS)),
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// The endpoint's stats, or the error the dispatcher answers (a failed
    /// or stopped endpoint).
    pub async fn try_stats(&self, name: &str) -> Result<EndpointStats, Error> {
        let name: WebhookName = name.parse().unwrap();
        self.actor()
            .call(
                |reply| DispatcherMsg::Stats { name, reply },
                Some(Duration::from_millis(CALL_MS)),
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// An operator restart of the webhook's endpoint.
    pub async fn restart_endpoint(&self, name: &str) {
        let name: WebhookName = name.parse().unwrap();
        self.call(|reply| DispatcherMsg::RestartEndpoint { name, reply })
            .await
            .unwrap();
    }

    /// Enables (`None`) or disables the webhook as an operator would.
    pub async fn set_enabled(&self, name: &str, disabled: Option<&str>) {
        let name: WebhookName = name.parse().unwrap();
        let meta = EventMeta::new(Some(self.tenant.clone()), Principal::system());
        let disabled = disabled.map(String::from);
        self.call(|reply| DispatcherMsg::SetEnabled {
            name,
            disabled,
            meta,
            reply,
        })
        .await
        .unwrap();
    }

    pub async fn stats(&self, name: &str) -> EndpointStats {
        let name: WebhookName = name.parse().unwrap();
        self.actor()
            .call(
                |reply| DispatcherMsg::Stats { name, reply },
                Some(Duration::from_millis(CALL_MS)),
            )
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    }

    pub async fn call<R: Send + 'static>(
        &self,
        build: impl FnOnce(ractor::RpcReplyPort<R>) -> DispatcherMsg,
    ) -> R {
        self.actor()
            .call(build, Some(Duration::from_millis(CALL_MS)))
            .await
            .unwrap()
            .unwrap()
    }
}

pub fn open_store(dir: &tempfile::TempDir) -> Arc<dyn EventStore> {
    open_sqlite(dir)
}

/// The concrete store (its read counter is what start-cost tests count).
pub fn open_sqlite(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let config = SqliteConfig {
        data_dir: dir.path().to_path_buf(),
        mode: OpenMode::CreateIfMissing,
        store_bytes_max: None,
    };
    Arc::new(SqliteStore::open(config).expect("open store"))
}

/// A declaration for a receiver URL held in the `URL` secret.
pub fn yaml(extra: &str) -> String {
    format!("api_version: v1\non: [\"build.*\"]\ndelivery:\n  url: \"${{SECRET:URL}}\"\n{extra}")
}

impl Harness {
    /// Calls the dispatcher expecting an error; returns its text.
    pub async fn actor_call_err<R: Send + std::fmt::Debug + 'static>(
        &self,
        build: impl FnOnce(ractor::RpcReplyPort<Result<R, Error>>) -> DispatcherMsg,
    ) -> String {
        let r = self
            .actor()
            .call(build, Some(Duration::from_millis(CALL_MS)))
            .await
            .unwrap()
            .unwrap();
        format!("{:?}", r.expect_err("expected an error"))
    }
}
