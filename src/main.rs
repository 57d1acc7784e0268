//! `extensor`: the one binary. Subcommands open the same store the server
//! uses: the embedded one in `--data-dir` / `EXTENSOR_DATA_DIR` (default
//! `./data`), or the PostgreSQL one that `--store` / `EXTENSOR_STORE_URL`
//! names.
//!
//! # Layout
//!
//! - `main.rs`: argument parsing and exit codes.
//! - [`events`]: `events tail | export | verify`, the auditor's tools.
//! - [`state`]: `state tenant|installation ID [--at POSITION|TIME]`.
//! - [`filter_args`]: the filter flags shared by `tail` and `export`.
//! - [`progress`]: progress bars that appear only on a terminal.
//! - [`serve`]: `serve`, the HTTP server.
//! - [`log_sink`]: the server's buffered, non-blocking log writer.
//! - [`store`]: `--store URL`: which event store a command opens.
//! - [`tenant`]: `tenant create`, a tenant and its owner token.
//! - [`ops`]: `ops tree`, the supervision tree of a running server.
//! - [`cluster`]: `cluster status`, the nodes on the store and their tenants.
//! - `openapi`: prints the OpenAPI document (`openapi.yaml`).
//! - [`plugin`]: `plugin new | validate | pack | test | push`, the plugin
//!   author's toolkit.
//! - [`webhooks`]: `webhooks apply DIR [--dry-run]`, webhooks-as-code
//!   applied declaratively to a running server.

mod cluster;
mod events;
mod filter_args;
mod jobs;
mod log_sink;
mod ops;
mod plugin;
mod progress;
mod serve;
mod state;
mod store;
mod tenant;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a request allocates and frees many
/// small objects across threads (HTTP, the engine, the isolate hop), and
/// glibc's arenas spent a tenth of a plugin route's CPU on it
/// (docs/BENCHMARKS.md, plugin routes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "extensor",
    version,
    about = "Self-hosted extensibility engine: plugins, webhooks-as-code, app scripts"
)]
struct Cli {
    /// Directory of the embedded event store (shared with the server).
    #[arg(
        long,
        global = true,
        env = "EXTENSOR_DATA_DIR",
        default_value = "./data"
    )]
    data_dir: PathBuf,

    /// The event store: unset for the embedded store in --data-dir, or
    /// `postgres://user@host:port/database` for a shared PostgreSQL store.
    #[arg(
        long = "store",
        global = true,
        env = "EXTENSOR_STORE_URL",
        hide_env_values = true
    )]
    store_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server on the embedded store.
    Serve(serve::ServeArgs),
    /// Read, export and verify the event log.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Rebuild an aggregate from the log and print it, as it is now or was then.
    State(state::StateArgs),
    /// Manage tenants directly in the store.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Operate a running server.
    #[command(subcommand)]
    Ops(ops::OpsCommand),
    /// The nodes sharing the store and the tenants each owns.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Print the HTTP API's OpenAPI document (YAML), as committed in openapi.yaml.
    Openapi,
    /// Plugin jobs on a running server.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// The plugin author's toolkit: scaffold, validate, pack, test, push.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Webhooks-as-code on a running server: apply a directory declaratively.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
}

/// Exit code when `events verify` finds a broken hash chain (errors exit 1).
const EXIT_CHAIN_BROKEN: u8 = 2;

async fn run(cli: Cli) -> anyhow::Result<events::Outcome> {
    // Only the commands that open the store read `--store`.
    let store = || store::StoreChoice::parse(cli.store_url.as_deref());
    let data_dir = cli.data_dir.as_path();
    let ok = |()| events::Outcome::Ok;
    match cli.command {
        Command::Serve(args) => serve::run(data_dir, &store()?, args).await.map(ok),
        Command::Events(cmd) => events::run(data_dir, &store()?, cmd).await,
        Command::State(args) => state::run(data_dir, &store()?, args).await.map(ok),
        Command::Tenant(cmd) => tenant::run(data_dir, &store()?, cmd).await.map(ok),
        Command::Jobs(cmd) => jobs::run(cmd).await.map(ok),
        Command::Ops(cmd) => ops::run(cmd).await.map(ok),
        Command::Cluster(cmd) => cluster::run(data_dir, &store()?, cmd).await.map(ok),
        Command::Openapi => {
            print!("{}", extensor_api::openapi_yaml());
            Ok(events::Outcome::Ok)
        }
        Command::Plugin(cmd) => plugin::run(cmd).await.map(ok),
        Command::Webhooks(cmd) => webhooks::run(cmd).await.map(ok),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    match outcome {
        Ok(events::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(events::Outcome::ChainBroken) => ExitCode::from(EXIT_CHAIN_BROKEN),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
