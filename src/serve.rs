//! `extensor serve`: the server, on the embedded store or the one
//! `--store` names.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use extensor_api::ratelimit::RateLimits;
use extensor_api::state::Features;
use extensor_api::{ServerConfig, StoreConfig, serve};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig};

use crate::store::{Access, Shared, StoreChoice};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    #[arg(long, env = "EXTENSOR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Refuse appends once the store file would exceed this many bytes
    /// (the embedded store only).
    #[arg(long, env = "EXTENSOR_STORE_BYTES_MAX")]
    store_bytes_max: Option<u64>,
    /// The platform-admin token (at least 24 characters). Without it, an
    /// empty store gets a generated one, printed once.
    #[arg(long, env = "EXTENSOR_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    #[arg(long, env = "EXTENSOR_SHUTDOWN_GRACE_MS", default_value_t = extensor_api::server::SHUTDOWN_GRACE_MS)]
    shutdown_grace_ms: u64,
    /// Heap, in MiB, that the warm plugin isolates of the process may hold
    /// together; least recently used pools are evicted beyond it.
    #[arg(long, env = "EXTENSOR_WARM_ISOLATES_MB_MAX")]
    warm_isolates_mb_max: Option<usize>,
    /// Seconds between `route.accessed` records of a route (each holds
    /// that interval's count, errors and duration percentiles).
    #[arg(long, env = "EXTENSOR_ROUTE_ACCESS_FLUSH_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    route_access_flush_secs: u64,
    /// On a shared store: how long, in ms, a node's tenant leases outlive
    /// its last renewal. A node killed without a clean stop has its tenants
    /// taken over after at most this plus one heartbeat (1 s); a node that
    /// cannot renew for half of it stops its tenants' work and answers 503.
    #[arg(long, env = "EXTENSOR_CLUSTER_LEASE_TTL_MS",
          default_value_t = extensor_actors::cluster::LEASE_TTL_MS_DEFAULT)]
    lease_ttl_ms: u64,
    /// Log lines as readable text or as JSON objects.
    #[arg(long, env = "EXTENSOR_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Which log lines to keep (tracing `EnvFilter` syntax).
    #[arg(long, env = "EXTENSOR_LOG", default_value = "info")]
    log: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub async fn run(data_dir: &Path, choice: &StoreChoice, args: ServeArgs) -> Result<()> {
    // Held until the server has stopped: dropping it writes the last lines.
    let log_flush = init_logging(args.log_format, &args.log)?;
    let (store, shared) = store_config(data_dir, choice, args.store_bytes_max).await?;
    let mut config = ServerConfig::new(args.listen, store);
    if let Some(shared) = shared {
        config.engine.bundles = Some(shared.bundles);
        config.engine.files = Some(shared.files);
        let lease = extensor_actors::cluster::LeaseSettings::new(args.lease_ttl_ms)
            .map_err(|e| anyhow!("--lease-ttl-ms / EXTENSOR_CLUSTER_LEASE_TTL_MS: {e}"))?;
        config.cluster = Some(extensor_api::cluster::ClusterSettings {
            cluster: shared.cluster,
            lease,
        });
    }
    config.admin_token = args.admin_token;
    config.rate_limits = RateLimits::from_env().map_err(|e| anyhow!(e))?;
    config.features = Features::from_env().map_err(|e| anyhow!(e))?;
    config.shutdown_grace = Duration::from_millis(args.shutdown_grace_ms);
    config.fault_drills = match std::env::var("EXTENSOR_FAULT_DRILLS").as_deref() {
        Err(_) | Ok("false" | "0" | "") => false,
        Ok("true" | "1") => true,
        Ok(v) => {
            return Err(anyhow!(
                "EXTENSOR_FAULT_DRILLS=`{v}`: expected true or false"
            ));
        }
    };
    config.engine.sandbox =
        extensor_js::SandboxConfig::from_env().map_err(|e| anyhow!("sandbox settings: {e}"))?;
    config.engine.zip = extensor_js::ZipLimits::from_env().map_err(|e| anyhow!(e))?;
    config.engine.smtp = extensor_js::host::mail::SmtpConfig::from_env();
    config.engine.llm = extensor_js::host::llm::LlmConfig::from_env();
    config.engine.warm_isolates_bytes_max = args
        .warm_isolates_mb_max
        .map(|mb| mb.saturating_mul(1024 * 1024));
    config.engine.route_access_flush_ms = Some(args.route_access_flush_secs * 1_000);
    let location = choice.describe(data_dir);
    serve(
        config,
        move |listening| {
            // Tests and scripts read the first line to find the port. One
            // write, errors ignored: a reader that closed the pipe after
            // that line must not take the server down.
            let mut out = format!(
                "extensor listening on http://{} ({location})\n",
                listening.addr
            );
            if let Some(token) = listening.generated_admin_token {
                out.push_str(&format!(
                    "platform-admin token (shown once, store it now): {token}\n"
                ));
            }
            let mut stdout = std::io::stdout().lock();
            let _ = stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush());
        },
        shutdown_signal(),
    )
    .await?;
    drop(log_flush);
    eprintln!("extensor stopped cleanly");
    Ok(())
}

/// The store, and where bundles and files go when not in the data
/// directory.
async fn store_config(
    data_dir: &Path,
    choice: &StoreChoice,
    store_bytes_max: Option<u64>,
) -> Result<(StoreConfig, Option<Shared>)> {
    if let StoreChoice::Embedded = choice {
        let mut store = SqliteConfig::new(data_dir, OpenMode::CreateIfMissing);
        store.store_bytes_max = store_bytes_max;
        return Ok((store.into(), None));
    }
    if store_bytes_max.is_some() {
        return Err(anyhow!(
            "EXTENSOR_STORE_BYTES_MAX / --store-bytes-max bounds the embedded store's file; \
             a PostgreSQL store is bounded by its server"
        ));
    }
    // The node keeps its secret key, bundles and indexes here.
    std::fs::create_dir_all(data_dir)
        .map_err(|e| anyhow!("data directory {}: {e}", data_dir.display()))?;
    let opened = crate::store::open(choice, data_dir, Access::Write).await?;
    let store = StoreConfig::Opened {
        store: opened.store.clone(),
        data_dir: data_dir.to_path_buf(),
    };
    Ok((store, opened.shared))
}

/// Logs to stderr through the buffered sink (`log_sink`): readable on a
/// terminal, or one JSON object per line. Terminal colours only when
/// stderr is a terminal: a log file or collector gets plain text (and the
/// colour codes cost formatting time on every request line).
fn init_logging(format: LogFormat, filter: &str) -> Result<crate::log_sink::Flush> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow!("EXTENSOR_LOG=`{filter}`: {e}"))?;
    let (sink, flush) =
        crate::log_sink::start().map_err(|e| anyhow!("cannot start the log writer: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(sink);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    result.map_err(|e| anyhow!("cannot install the logger: {e}"))?;
    Ok(flush)
}

/// Registers for SIGTERM and SIGINT (Ctrl-C) now, before the server says it
/// listens, so a signal sent right after that line is never missed; the
/// returned future resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("warning: cannot listen for signals ({e}); use Ctrl-C to stop");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
