//! `extensor serve`: the server on the embedded store.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use extensor_api::{ServerConfig, serve};
use extensor_core::store::sqlite::{OpenMode, SqliteConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    #[arg(long, env = "EXTENSOR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Refuse appends once the store file would exceed this many bytes.
    #[arg(long, env = "EXTENSOR_STORE_BYTES_MAX")]
    store_bytes_max: Option<u64>,
}

pub async fn run(data_dir: &Path, args: ServeArgs) -> Result<()> {
    let mut store = SqliteConfig::new(data_dir, OpenMode::CreateIfMissing);
    store.store_bytes_max = args.store_bytes_max;
    let config = ServerConfig {
        listen: args.listen,
        store,
    };
    let data_dir = data_dir.display().to_string();
    serve(
        config,
        move |addr| {
            // Tests and scripts read this line to find the port.
            println!("extensor listening on http://{addr} (data dir {data_dir})");
        },
        shutdown_signal(),
    )
    .await?;
    eprintln!("extensor stopped cleanly");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: cannot listen for SIGTERM ({e}); use Ctrl-C to stop");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
