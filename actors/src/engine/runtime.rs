//! Isolate pools per installation, created lazily from the stored bundle,
//! cached by bundle digest (an upgrade or rollback builds a new one), and the
//! host services behind `ctx` wired to real components: secrets decrypted
//! from the installation's events, `ctx.emit` appending to the tenant's
//! business stream, email through the outbox and real SMTP, files under the
//! data directory, read models, SSRF-guarded HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use extensor_core::event::{EventMeta, NewEvent, Principal, StreamId};
use extensor_core::ids::{EventId, InstallationId, TenantId};
use extensor_core::redact::Redactor;
use extensor_core::store::ExpectedRevision;
use extensor_js::host::db::SqliteReadModels;
use extensor_js::host::files::FileStore;
use extensor_js::host::llm::LlmClient;
use extensor_js::host::mail::SmtpMailer;
use extensor_js::host::net::GuardedHttp;
use extensor_js::host::{
    EmailOutbox, EmitRequest, EventSink, HostServices, InstallationScope, OutboundEmail,
    SecretStore,
};
use extensor_js::{Bundle, Installation, JsError, Sandbox};
use futures::future::BoxFuture;
use serde_json::json;

use super::directory::Known;
use super::invocation_metrics::InvocationMetrics;
use super::{EngineConfig, Inner};
use crate::error::Error;

/// Installations with a live isolate pool at once; the least recently used
/// pool beyond this is dropped (its isolates end) and rebuilt on next use.
/// Each pool holds up to `pool_isolates_max` isolate threads and heaps.
pub const RUNTIMES_MAX: usize = 256;
/// Heap bytes the warm (idle) isolates of every plugin pool in the process may hold
/// together. `RUNTIMES_MAX` alone allows 256 pools × `pool_isolates_max`
/// isolates × the heap limit (51 GiB with the defaults); this keeps what
/// warm isolates actually hold to a figure an operator can plan for.
/// Eviction order: least recently used pool first (the one just used
/// last), whole pools, until the total is within the cap.
pub const WARM_ISOLATES_BYTES_MAX_DEFAULT: usize = 2 * 1024 * 1024 * 1024;
/// Without a shared store, files of all installations live under
/// `<data_dir>/files`.
pub const FILES_DIR_NAME: &str = "files";
/// Tenants' read-model SQLite files: `<data_dir>/read_models/<tenant>.sqlite`.
pub const READ_MODELS_DIR_NAME: &str = "read_models";

/// The platform components every installation's host services share.
pub(crate) struct Platform {
    pub files: Arc<FileStore>,
    pub read_models_dir: std::path::PathBuf,
    pub projector_locks: super::read_models::ProjectorLocks,
    pub http: Arc<GuardedHttp>,
    pub mailer: Option<Arc<SmtpMailer>>,
    pub llm: Option<Arc<LlmClient>>,
}

fn platform_error(what: &'static str, e: JsError) -> Error {
    Error::Platform {
        what,
        source: extensor_core::Error::InvalidValue {
            what,
            value: String::new(),
            reason: e.to_string(),
        },
    }
}

impl Platform {
    pub fn new(config: &EngineConfig) -> Result<Platform, Error> {
        let http = GuardedHttp::new(config.sandbox.network.clone())
            .map_err(|e| platform_error("http client", e))?;
        let mailer = match &config.smtp {
            Some(smtp) => Some(Arc::new(
                SmtpMailer::new(smtp.clone()).map_err(|e| platform_error("smtp", e))?,
            )),
            None => None,
        };
        let llm = match &config.llm {
            Some(c) => Some(Arc::new(
                LlmClient::new(c.clone()).map_err(|e| platform_error("llm", e))?,
            )),
            None => None,
        };
        Ok(Platform {
            files: Arc::new(match &config.files {
                Some(shared) => FileStore::on(shared.clone()),
                None => FileStore::new(config.data_dir.join(FILES_DIR_NAME)),
            }),
            read_models_dir: config.data_dir.join(READ_MODELS_DIR_NAME),
            projector_locks: Default::default(),
            http: Arc::new(http),
            mailer,
            llm,
        })
    }
}

/// One installation's isolate pool for one bundle version.
pub(crate) struct Runtime {
    pub digest: String,
    pub installation: Installation,
    /// Its invocations' metric handles (`invoke::run`).
    pub metrics: InvocationMetrics,
    last_used: AtomicU64,
}

/// The warm pools, least recently used evicted first under a cap on
/// their count and on their heap bytes.
///
/// **Architecture Invariant:** every pool in the map is installed by
/// `sandbox`, the engine's one sandbox (plugins and webhook transforms
/// alike), so its O(1) warm-heap total bounds the map's from above and
/// `trim`'s check after every invocation reads that instead of summing
/// every pool.
pub(crate) struct Runtimes {
    map: Mutex<HashMap<InstallationId, Arc<Runtime>>>,
    clock: AtomicU64,
    warm_bytes_max: usize,
    sandbox: Sandbox,
}

/// One warm pool as the ops view and tests see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WarmPool {
    pub installation_id: InstallationId,
    pub warm_isolates: usize,
    pub heap_bytes: usize,
    /// The most heap the pool's isolates held together since it was built,
    /// each invocation's isolate counted at its in-call peak
    /// (`Installation::heap_peak_bytes`; at least `heap_bytes`).
    pub heap_peak_bytes: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Runtimes {
    pub fn new(warm_bytes_max: usize, sandbox: Sandbox) -> Runtimes {
        // Both series exist from the start (at 0), so a dashboard and the
        // seed-list test see the family before the first eviction.
        for reason in ["count", "bytes"] {
            metrics::counter!("extensor_isolate_pools_evicted_total", "reason" => reason)
                .increment(0);
        }
        Runtimes {
            map: Mutex::default(),
            clock: AtomicU64::new(0),
            warm_bytes_max,
            sandbox,
        }
    }

    fn cached(&self, id: &InstallationId, digest: &str) -> Option<Arc<Runtime>> {
        let rt = lock(&self.map)
            .get(id)
            .filter(|r| r.digest == digest)
            .cloned()?;
        rt.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(rt)
    }

    fn insert(&self, id: InstallationId, rt: Arc<Runtime>) {
        let mut map = lock(&self.map);
        map.insert(id, rt);
        while map.len() > RUNTIMES_MAX {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, r)| r.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
            metrics::counter!("extensor_isolate_pools_evicted_total", "reason" => "count")
                .increment(1);
        }
        drop(map);
        self.trim();
    }

    /// A pool outside the installation index (a webhook transform's), kept
    /// under `id` in the same least-recently-used set as the plugins'.
    pub fn shared_pool(
        &self,
        id: &InstallationId,
        install: &dyn Fn() -> Installation,
    ) -> Arc<Runtime> {
        if let Some(rt) = self.cached(id, "") {
            return rt;
        }
        let rt = Arc::new(Runtime {
            digest: String::new(),
            installation: install(),
            // A shared pool's invocations are not plugin invocations: it
            // records none of these series.
            metrics: InvocationMetrics::new(String::new()),
            last_used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
        });
        self.insert(id.clone(), rt.clone());
        rt
    }

    /// Evicts whole pools, least recently used first, until the warm
    /// isolates of all pools hold at most `warm_bytes_max` heap bytes. An
    /// evicted pool's isolates end when the invocations using it finish.
    pub fn trim(&self) {
        // Called after every invocation. Under the cap (the usual case) it
        // reads one counter: the sandbox's total covers every pool in the
        // map (and pools already evicted whose last invocations still run),
        // so under it the map is under too.
        if self.sandbox.warm_heap_bytes() <= self.warm_bytes_max {
            return;
        }
        let mut map = lock(&self.map);
        let held: usize = map.values().map(|r| r.installation.warm_heap_bytes()).sum();
        if held <= self.warm_bytes_max {
            return;
        }
        let mut pools: Vec<(u64, usize, InstallationId)> = map
            .iter()
            .map(|(id, r)| {
                let used = r.last_used.load(Ordering::Relaxed);
                (used, r.installation.warm_heap_bytes(), id.clone())
            })
            .collect();
        // Summed again from the values the evictions below use (a pool's
        // bytes may have moved since `held`): the loop stops once under.
        let mut total: usize = pools.iter().map(|p| p.1).sum();
        pools.sort_unstable_by_key(|p| p.0);
        for (_, bytes, id) in pools {
            if total <= self.warm_bytes_max {
                break;
            }
            map.remove(&id);
            total -= bytes;
            metrics::counter!("extensor_isolate_pools_evicted_total", "reason" => "bytes")
                .increment(1);
        }
    }

    /// Every warm pool in eviction order (the next to go first).
    pub fn warm_pools(&self) -> Vec<WarmPool> {
        let map = lock(&self.map);
        let mut pools: Vec<(u64, WarmPool)> = map
            .iter()
            .map(|(id, r)| {
                let heap_bytes = r.installation.warm_heap_bytes();
                let pool = WarmPool {
                    installation_id: id.clone(),
                    warm_isolates: r.installation.warm_isolates(),
                    heap_bytes,
                    heap_peak_bytes: r.installation.heap_peak_bytes().max(heap_bytes),
                };
                (r.last_used.load(Ordering::Relaxed), pool)
            })
            .collect();
        pools.sort_unstable_by_key(|p| p.0);
        pools.into_iter().map(|p| p.1).collect()
    }

    /// Drops the pool (uninstall, disable): its isolates end when the last
    /// invocation using it finishes.
    pub fn remove(&self, id: &InstallationId) {
        lock(&self.map).remove(id);
    }

    /// A running pool, if any, whatever its version (for recent logs).
    pub fn any(&self, id: &InstallationId) -> Option<Arc<Runtime>> {
        lock(&self.map).get(id).cloned()
    }
}

impl crate::webhooks::WarmPool for Runtime {
    fn installation(&self) -> &Installation {
        &self.installation
    }
}

/// A pool of a webhook whose engine is gone (shutting down): used once.
struct Unpooled(Installation);

impl crate::webhooks::WarmPool for Unpooled {
    fn installation(&self) -> &Installation {
        &self.0
    }
}

/// The engine's warm set as webhooks see it (a narrow interface: they get
/// nothing else of the engine).
pub(crate) struct WebhookWarm(pub super::EngineSlot);

impl crate::webhooks::WarmIsolates for WebhookWarm {
    fn pool(
        &self,
        key: &InstallationId,
        install: &dyn Fn() -> Installation,
    ) -> Arc<dyn crate::webhooks::WarmPool> {
        match self.0.get() {
            Some(inner) => inner.runtimes.shared_pool(key, install),
            None => Arc::new(Unpooled(install())),
        }
    }

    fn used(&self) {
        if let Some(inner) = self.0.get() {
            inner.runtimes.trim();
        }
    }

    fn release(&self, key: &InstallationId) {
        if let Some(inner) = self.0.get() {
            inner.runtimes.remove(key);
        }
    }
}

pub(crate) fn scope(tenant: &TenantId, id: &InstallationId) -> InstallationScope {
    InstallationScope {
        tenant_id: tenant.to_string(),
        installation_id: id.to_string(),
    }
}

/// The installation's pool for its current version, built if needed.
pub(crate) async fn runtime(inner: &Arc<Inner>, known: &Known) -> Result<Arc<Runtime>, Error> {
    let (Some(id), Some(tenant), Some(version)) = (
        known.state.id.as_ref(),
        known.state.tenant.as_ref(),
        known.state.current.as_ref(),
    ) else {
        return Err(Error::not_found("installation", "(not installed)"));
    };
    if let Some(rt) = inner.runtimes.cached(id, &version.bundle_digest) {
        return Ok(rt);
    }
    let bytes = inner
        .bundles
        .get(&version.bundle_digest)
        .await
        .map_err(|source| Error::Platform {
            what: "bundle store",
            source,
        })?;
    let bundle = Bundle::from_zip(&bytes, &inner.zip).map_err(Error::Validation)?;
    let plugin = inner
        .sandbox
        .validate(&bundle)
        .await
        .map_err(Error::Validation)?;
    let services = host_services(inner);
    let installation = inner.sandbox.install(plugin, scope(tenant, id), services);
    let slug = known.state.slug.as_ref().map_or("", |s| s.as_str());
    let rt = Arc::new(Runtime {
        digest: version.bundle_digest.clone(),
        installation,
        metrics: InvocationMetrics::new(crate::metric_labels::plugin(slug)),
        last_used: AtomicU64::new(inner.runtimes.clock.fetch_add(1, Ordering::Relaxed)),
    });
    inner.runtimes.insert(id.clone(), rt.clone());
    Ok(rt)
}

fn host_services(inner: &Arc<Inner>) -> HostServices {
    let host = Arc::new(EngineHost {
        engine: Arc::downgrade(inner),
    });
    let p = &inner.services;
    HostServices {
        secrets: Some(host.clone()),
        events: Some(host.clone()),
        outbox: p
            .mailer
            .as_ref()
            .map(|_| host.clone() as Arc<dyn EmailOutbox>),
        db: Some(Arc::new(super::read_models::EngineDb {
            engine: Arc::downgrade(inner),
            root: p.read_models_dir.clone(),
            reader: SqliteReadModels::new(p.read_models_dir.clone()),
            locks: p.projector_locks.clone(),
        })),
        files: Some(p.files.clone()),
        http: Some(p.http.clone()),
        llm: p.llm.clone(),
    }
}

/// `ctx` services that reach back into the engine. Holds the engine weakly:
/// an isolate outliving the engine gets "not configured", not a leak.
struct EngineHost {
    engine: Weak<Inner>,
}

fn host_err(op: &'static str, message: impl ToString) -> JsError {
    JsError::Host {
        op,
        message: message.to_string(),
    }
}

impl EngineHost {
    fn inner(&self, op: &'static str) -> Result<Arc<Inner>, JsError> {
        self.engine
            .upgrade()
            .ok_or_else(|| host_err(op, "the engine has stopped"))
    }
}

/// The associated data a secret is sealed with: its slot.
pub(crate) fn secret_context(tenant: &TenantId, id: &InstallationId, key: &str) -> String {
    format!("{tenant}/{id}/{key}")
}

/// The installation's redactor: every plugin secret's value, decrypted
/// (docs/SECURITY.md, "Secrets"). Logs, errors, hook and job results and
/// recorded emails of the installation go through it.
pub(crate) fn redactor(inner: &Inner, known: &Known) -> Redactor {
    let (Some(tenant), Some(id)) = (&known.state.tenant, &known.state.id) else {
        return Redactor::default();
    };
    Redactor::new(known.state.secrets.iter().filter_map(|(key, record)| {
        inner
            .secret_box
            .decrypt(&secret_context(tenant, id, key), &record.ciphertext)
            .ok()
    }))
}

/// The outbox's redaction point (`crate::outbox::Redact`): an SMTP error is
/// scrubbed of the sending installation's secret values, as every other
/// recorded text of a plugin is.
pub(crate) fn email_redactor(slot: super::EngineSlot) -> crate::outbox::Redact {
    Arc::new(move |tenant, installation, text| {
        let known = slot.get().and_then(|inner| {
            let id = installation?.parse::<InstallationId>().ok()?;
            let known = inner.directory.get_for(tenant, &id)?;
            Some(redactor(&inner, &known))
        });
        known.unwrap_or_default().outbound(text)
    })
}

fn parse_scope(
    scope: &InstallationScope,
    op: &'static str,
) -> Result<(TenantId, InstallationId), JsError> {
    let tenant = scope.tenant_id.parse().map_err(|e| host_err(op, e))?;
    let id = scope.installation_id.parse().map_err(|e| host_err(op, e))?;
    Ok((tenant, id))
}

impl SecretStore for EngineHost {
    fn get<'a>(
        &'a self,
        scope: &'a InstallationScope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>> {
        Box::pin(async move {
            let inner = self.inner("secrets")?;
            let (tenant, id) = parse_scope(scope, "secrets")?;
            let Some(known) = inner.directory.get_for(&tenant, &id) else {
                return Ok(None);
            };
            let Some(record) = known.state.secrets.get(key) else {
                return Ok(None);
            };
            let context = secret_context(&tenant, &id, key);
            inner
                .secret_box
                .decrypt(&context, &record.ciphertext)
                .map(Some)
                .map_err(|e| host_err("secrets", e))
        })
    }
}

impl EventSink for EngineHost {
    fn emit<'a>(
        &'a self,
        scope: &'a InstallationScope,
        event: EmitRequest,
    ) -> BoxFuture<'a, Result<String, JsError>> {
        Box::pin(async move {
            // The sandbox checks this too; the sink is the engine's own
            // gate, so no other caller of it can write a kernel type.
            if let Some(reason) =
                extensor_core::kernel_events::business_event_type_problem(&event.event_type)
            {
                return Err(JsError::InvalidArgument {
                    op: "ctx.emit",
                    message: format!("`{}` {reason}", event.event_type),
                });
            }
            let inner = self.inner("events")?;
            let (tenant, id) = parse_scope(scope, "events")?;
            let causation = event.causation_id.and_then(|c| c.parse::<EventId>().ok());
            let mut meta = EventMeta::new(Some(tenant.clone()), Principal::plugin(&id));
            meta.causation_id = causation;
            let new = NewEvent::new(&event.event_type, 1, meta, &event.data)
                .map_err(|e| host_err("events", e))?;
            let event_id = new.event_id.to_string();
            let result = inner
                .store
                .append(
                    StreamId::business_events(&tenant),
                    ExpectedRevision::Any,
                    vec![new],
                )
                .await
                .map_err(|e| host_err("events", e))?;
            inner
                .directory
                .business_appended(&tenant, result.next_expected);
            Ok(event_id)
        })
    }
}

/// Outbound email: `email.queued` in the tenant's `outbox-<tenant>` stream,
/// then the tenant's outbox actor (`crate::outbox`) is woken; it sends,
/// retries and records the outcome (`email.sent` / `email.failed`).
impl EmailOutbox for EngineHost {
    fn record<'a>(
        &'a self,
        scope: &'a InstallationScope,
        email: OutboundEmail,
    ) -> BoxFuture<'a, Result<String, JsError>> {
        Box::pin(async move {
            let inner = self.inner("email")?;
            let (tenant, id) = parse_scope(scope, "email")?;
            if inner.services.mailer.is_none() {
                return Err(host_err("email", "SMTP is not configured"));
            }
            let meta = EventMeta::new(Some(tenant.clone()), Principal::plugin(&id));
            // The log keeps a redacted copy: a plugin secret rendered into
            // the message goes to the recipient (sealed in the record under
            // the platform key), never into readable text.
            let redact = inner
                .directory
                .get_for(&tenant, &id)
                .map(|k| redactor(&inner, &k))
                .unwrap_or_default();
            let readable = redact.redact_json(&json!({"to": email.to,
                "subject": email.subject, "text": email.text, "html": email.html}));
            let queued =
                crate::outbox::queued_event(&inner.secret_box, meta, id.as_str(), &email, readable)
                    .map_err(|e| host_err("email", e))?;
            let outbox_id = queued.event_id.to_string();
            // Marks the tenant in the outbox index (if needed) before the
            // message is durable, and keeps its outbox from unmarking it
            // until the append is done.
            let lease = inner
                .outbox_tenants
                .lease(&*inner.store, &tenant)
                .await
                .map_err(|e| host_err("email", e))?;
            inner
                .store
                .append(
                    crate::outbox::stream(&tenant),
                    ExpectedRevision::Any,
                    vec![queued],
                )
                .await
                .map_err(|e| host_err("email", e))?;
            drop(lease);
            if let Err(e) = inner.outbox_wake(&tenant).await {
                // Durable already: the outbox reads it when it next starts.
                tracing::warn!(tenant = %tenant, error = %e, "outbox not woken");
            }
            Ok(outbox_id)
        })
    }
}
