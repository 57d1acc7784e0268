//! The HTTP server: the route table, binding, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use extensor_core::store::EventStore;
use extensor_core::store::sqlite::{SqliteConfig, SqliteStore};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, Server};
use poem_openapi::{OpenApi, OpenApiService};

use crate::ServeError;
use crate::directory::Directory;
use crate::ratelimit::{RateLimiter, RateLimits};
use crate::state::{AppState, Features};

/// In-flight requests get this long to finish after a shutdown signal
/// (default of `EXTENSOR_SHUTDOWN_GRACE_MS`).
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;

/// Which event store the server runs on.
pub enum StoreConfig {
    /// The embedded SQLite store in its data directory, opened by `serve`
    /// and closed by it after the engine stops.
    Embedded(SqliteConfig),
    /// A store the caller opened (the shared PostgreSQL store). `data_dir`
    /// holds what the node keeps beside the log: the secret key file,
    /// plugin bundles, the webhook delivery index.
    Opened {
        store: Arc<dyn EventStore>,
        data_dir: std::path::PathBuf,
    },
}

impl From<SqliteConfig> for StoreConfig {
    fn from(c: SqliteConfig) -> Self {
        StoreConfig::Embedded(c)
    }
}

pub struct ServerConfig {
    /// `host:port`; port 0 picks a free port (tests).
    pub listen: String,
    pub store: StoreConfig,
    /// `EXTENSOR_ADMIN_TOKEN`: the platform-admin token to record (its hash)
    /// on an empty store, or to rotate to. `None` on an empty store
    /// generates one, handed once to `on_listening`.
    pub admin_token: Option<String>,
    pub rate_limits: RateLimits,
    pub features: Features,
    pub shutdown_grace: Duration,
    /// `EXTENSOR_FAULT_DRILLS`: allow the platform admin's fault drill
    /// (panicking an actor on purpose). Off by default.
    pub fault_drills: bool,
    /// How often an idle event stream sends a heartbeat comment
    /// (`streams::HEARTBEAT_MS`; tests shorten it).
    pub stream_heartbeat: Duration,
    /// Engine settings: sandbox limits, ZIP caps, SMTP, LLM, filter order.
    /// The store, data directory and secret key are filled in by `serve`.
    pub engine: EngineSettings,
    /// On a shared store: the node registry and tenant leases, so several
    /// servers divide tenants' single-owner work. `None`: the only node.
    pub cluster: Option<crate::cluster::ClusterSettings>,
}

/// The engine settings `serve` does not derive itself.
#[derive(Clone, Default)]
pub struct EngineSettings {
    pub sandbox: extensor_js::SandboxConfig,
    pub zip: extensor_js::ZipLimits,
    pub smtp: Option<extensor_js::host::mail::SmtpConfig>,
    pub llm: Option<extensor_js::host::llm::LlmConfig>,
    /// Heap all warm isolates may hold together; `None` keeps the engine's
    /// default (`WARM_ISOLATES_BYTES_MAX_DEFAULT`).
    pub warm_isolates_bytes_max: Option<usize>,
    /// Milliseconds between `route.accessed` flushes; `None` keeps the
    /// engine's default (`route_access::FLUSH_MS_DEFAULT`).
    pub route_access_flush_ms: Option<u64>,
    /// The platform key for secrets; `None` loads it per
    /// `SecretKey::load` (env, key file, or `<data_dir>/secret.key`).
    pub secret_key: Option<extensor_core::secrets::SecretKey>,
    /// Where plugin bundles are kept; `None`: `<data_dir>/bundles`.
    pub bundles: Option<Arc<dyn extensor_core::bundles::BundleBlobs>>,
    /// Where `ctx.files` are kept; `None`: `<data_dir>/files`.
    pub files: Option<Arc<dyn extensor_core::files::FileBackend>>,
}

impl ServerConfig {
    /// Defaults for everything but where to listen and the store.
    pub fn new(listen: String, store: impl Into<StoreConfig>) -> Self {
        Self {
            listen,
            store: store.into(),
            admin_token: None,
            rate_limits: RateLimits::default(),
            features: Features::default(),
            shutdown_grace: Duration::from_millis(SHUTDOWN_GRACE_MS),
            fault_drills: false,
            stream_heartbeat: Duration::from_millis(crate::streams::HEARTBEAT_MS),
            engine: EngineSettings::default(),
            cluster: None,
        }
    }
}

/// What `serve` tells its caller once it listens.
pub struct Listening {
    pub addr: SocketAddr,
    /// A platform-admin token generated for an empty store: print it once.
    pub generated_admin_token: Option<String>,
}

/// Every resource's operations. A new resource file adds its API struct here
/// (and its tag in `tags.rs`); nothing else changes.
pub fn apis() -> impl OpenApi {
    (
        crate::health::HealthApi,
        crate::metrics::MetricsApi,
        crate::tenants::TenantsApi,
        crate::tokens::TokensApi,
        crate::events::EventsApi,
        crate::audit::AuditApi,
        crate::plugins::PluginsApi,
        crate::jobs::JobsApi,
        crate::secrets::SecretsApi,
        crate::webhooks::WebhooksApi,
        crate::tenant_secrets::TenantSecretsApi,
        crate::filters::FiltersApi,
        // poem-openapi implements `OpenApi` for tuples of up to 16: nest.
        (crate::outbox::OutboxApi, crate::ops::OpsApi),
        crate::status::StatusApi,
        crate::session::SessionApi,
        crate::streams::StreamsApi,
    )
}

/// The OpenAPI service over [`apis`].
pub fn api_service() -> OpenApiService<impl OpenApi, ()> {
    OpenApiService::new(apis(), "Extensor API", env!("CARGO_PKG_VERSION")).description(
        "Manage tenants, tokens, plugins, webhooks and jobs of an Extensor server. \
         Authenticate with `Authorization: Bearer <token>`; tenant operations also \
         take `X-Tenant-Slug`. Errors are `application/problem+json` with a stable `code`.",
    )
}

/// The OpenAPI document as YAML (what `extensor openapi` prints and
/// `openapi.yaml` holds): poem-openapi's, corrected by [`crate::document`].
pub fn openapi_yaml() -> String {
    crate::document::yaml().to_owned()
}

/// The whole route table over `state`.
pub fn app(state: Arc<AppState>) -> impl poem::Endpoint + 'static {
    let service = api_service();
    let yaml = poem::endpoint::make_sync(|_| {
        poem::Response::builder()
            .content_type("application/x-yaml")
            .body(crate::document::yaml())
    });
    let json = poem::endpoint::make_sync(|_| {
        poem::Response::builder()
            .content_type("application/json")
            .body(crate::document::json())
    });
    crate::forward::register_metrics();
    Route::new()
        .nest("/", service)
        .at("/openapi.yaml", yaml)
        .at("/openapi.json", json)
        .nest("/docs", crate::docs_ui::endpoint())
        .at("/ext/*rest", crate::ext_routes::ext_route)
        .at("/t/:tenant/ext/*rest", crate::ext_routes::ext_route)
        .at("/console", crate::console::console)
        .at("/console/*rest", crate::console::console)
        .around(crate::forward::forward_gate)
        .around(crate::cluster::fenced_gate)
        .data(state)
        .around(crate::observe::around)
}

/// Opens the store, starts the engine, loads the directory, bootstraps the
/// platform-admin token, binds, calls `on_listening`, and serves until
/// `shutdown` resolves. Then it stops accepting, lets in-flight requests
/// finish (up to the grace period), shuts the engine down within the same
/// grace (in-flight invocations finish) and closes the store, so every
/// acknowledged append is durable before it returns.
pub async fn serve(
    config: ServerConfig,
    on_listening: impl FnOnce(Listening),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    crate::observe::prometheus();
    let OpenStore {
        data_dir,
        shared,
        embedded,
    } = open_store(config.store)?;
    // Appends timed for `/metrics` (any backend); `embedded` is kept to
    // close the SQLite store.
    let shared: Arc<dyn EventStore> = Arc::new(crate::metered_store::MeteredStore(shared));
    let sandbox = crate::status::SandboxInfo::from(&config.engine.sandbox);
    let http_allowlist = config.engine.sandbox.network.platform_allowed_hosts.clone();
    // The directory first: suspended tenants start stopped in the engine.
    let directory = Directory::load(shared.clone()).await?;
    let suspended = directory
        .tenants()
        .into_iter()
        .filter(|t| t.status == extensor_core::tenant::TenantStatus::Suspended)
        .map(|t| t.id)
        .collect();
    let webhook_index = extensor_actors::webhooks::index::DeliveryIndex::new(
        data_dir.join(extensor_actors::webhooks::index::INDEX_DIR),
    );
    let ownership = match config.cluster {
        Some(_) => extensor_actors::ownership::Ownership::leased(),
        None => extensor_actors::ownership::Ownership::everything(),
    };
    let engine = start_engine(
        shared.clone(),
        data_dir,
        config.engine,
        suspended,
        ownership,
    )
    .await?;
    let generated =
        crate::tenancy::bootstrap_admin(shared.as_ref(), &directory, config.admin_token.as_deref())
            .await
            .map_err(|e| ServeError::Startup(e.to_string()))?;
    let acceptor = TcpListener::bind(config.listen.clone())
        .into_acceptor()
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| ServeError::Startup("the listener has no socket address".into()))?;
    let node = join_cluster(config.cluster, &engine, &directory, addr).await?;
    on_listening(Listening {
        addr,
        generated_admin_token: generated,
    });
    let state = Arc::new(AppState {
        store: shared,
        engine: engine.clone(),
        directory,
        limiter: RateLimiter::new(config.rate_limits),
        features: config.features,
        sandbox,
        http_allowlist,
        streams: crate::streams::Streams::new(config.stream_heartbeat),
        fault_drills: config.fault_drills,
        verified: tokio::sync::Mutex::default(),
        webhook_index,
        node,
    });
    // Open event streams end when shutdown begins, so they do not hold
    // the graceful shutdown for its whole grace.
    let closing = state.clone();
    let leaving = state.clone();
    let shutdown = async move {
        shutdown.await;
        closing.streams.close();
    };
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state), shutdown, Some(config.shutdown_grace))
        .await;
    // Owned work stops and the leases go before the engine stops, so the
    // other nodes take over at their next heartbeat.
    if let Some(node) = &leaving.node.node {
        node.leave().await;
    }
    engine.shutdown(config.shutdown_grace).await;
    // A server-backed store acknowledged every append at its commit.
    if let Some(store) = embedded {
        store.close().await;
    }
    result.map_err(ServeError::Serve)
}

/// The store `serve` runs on.
struct OpenStore {
    data_dir: std::path::PathBuf,
    shared: Arc<dyn EventStore>,
    /// The embedded store, closed at the end (if it is the one in use).
    embedded: Option<SqliteStore>,
}

fn open_store(config: StoreConfig) -> Result<OpenStore, ServeError> {
    Ok(match config {
        StoreConfig::Embedded(c) => {
            let data_dir = c.data_dir.clone();
            let store = SqliteStore::open(c)?;
            OpenStore {
                data_dir,
                shared: Arc::new(store.clone()),
                embedded: Some(store),
            }
        }
        StoreConfig::Opened { store, data_dir } => OpenStore {
            data_dir,
            shared: store,
            embedded: None,
        },
    })
}

async fn start_engine(
    store: Arc<dyn EventStore>,
    data_dir: std::path::PathBuf,
    settings: EngineSettings,
    stopped_tenants: Vec<extensor_core::ids::TenantId>,
    ownership: extensor_actors::ownership::Ownership,
) -> Result<extensor_actors::Engine, ServeError> {
    let key = match settings.secret_key {
        Some(k) => k,
        None => extensor_core::secrets::SecretKey::load(&data_dir)?,
    };
    let mut config = extensor_actors::EngineConfig::new(store, data_dir, key);
    config.sandbox = settings.sandbox;
    config.zip = settings.zip;
    config.smtp = settings.smtp;
    config.llm = settings.llm;
    config.stopped_tenants = stopped_tenants;
    config.ownership = ownership;
    config.bundles = settings.bundles;
    config.files = settings.files;
    if let Some(max) = settings.warm_isolates_bytes_max {
        config.warm_isolates_bytes_max = max;
    }
    if let Some(ms) = settings.route_access_flush_ms {
        config.route_access_flush_ms = ms;
    }
    extensor_actors::Engine::start(config)
        .await
        .map_err(|e| ServeError::Startup(format!("engine: {e}")))
}

/// On a shared store, registers this server as a node and starts its
/// heartbeat and leases (it owns no tenant until it takes their leases);
/// otherwise the one node of the embedded store.
async fn join_cluster(
    settings: Option<crate::cluster::ClusterSettings>,
    engine: &extensor_actors::Engine,
    directory: &Directory,
    addr: SocketAddr,
) -> Result<crate::cluster::NodeState, ServeError> {
    let Some(settings) = settings else {
        let node = crate::cluster::NodeState::single(addr.to_string());
        tracing::info!(node = %node.me.id, "single node: it owns every tenant");
        return Ok(node);
    };
    let dir = directory.clone();
    // A suspended tenant is nobody's: its owner gives its lease up (and
    // stops its work), whichever node took the suspension.
    let tenants: extensor_actors::cluster::TenantList = Arc::new(move || {
        dir.tenants()
            .into_iter()
            .filter(|t| t.status != extensor_core::tenant::TenantStatus::Suspended)
            .map(|t| t.id)
            .collect()
    });
    let node = extensor_actors::cluster::ClusterNode::join(
        settings.cluster,
        engine.clone(),
        addr.to_string(),
        settings.lease,
        tenants,
    )
    .await
    .map_err(|e| ServeError::Startup(format!("joining the cluster: {e}")))?;
    Ok(crate::cluster::NodeState {
        me: node.me().clone(),
        node: Some(node),
        lease: Some(settings.lease),
        forward: Some(crate::forward::client()?),
    })
}
