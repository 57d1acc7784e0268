//! `extensor plugin …`: the plugin author's toolkit.
//!
//! # Layout
//!
//! - [`new`]: `plugin new NAME [--ts]` scaffolds a plugin directory.
//! - [`validate`]: `plugin validate DIR`, the same validation as an upload,
//!   every problem printed as `file:line:column: message`.
//! - [`pack`]: `plugin pack DIR`, a deterministic ZIP of what `validate` read.
//! - [`test`]: `plugin test DIR --event|--route|--job`, one invocation in the
//!   real sandbox with local stand-ins ([`local`], [`llm`]) for the platform
//!   services.
//! - [`llm`]: the `ctx.llm` stand-in, a loopback chat-completions endpoint.
//! - [`push`]: `plugin push DIR --server …`, upload (and enable) over the API.
//! - [`source`]: reading a plugin directory the way an upload reads a ZIP.
//! - [`locate`]: manifest JSON paths → line and column.

pub mod llm;
pub mod local;
pub mod locate;
pub mod new;
pub mod pack;
pub mod push;
pub mod source;
pub mod test;
pub mod validate;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use extensor_js::{Bundle, Sandbox, SandboxConfig, ValidatedPlugin, ZipLimits};

use source::{PluginSource, read_plugin_dir, render_problems};

// Parsed once per process; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Scaffold a new plugin: manifest, entry, SDK types and a sample test.
    New(new::NewArgs),
    /// Validate a plugin directory exactly as an upload would.
    Validate(validate::ValidateArgs),
    /// Build the plugin's ZIP (deterministic; refuses an invalid plugin).
    Pack(pack::PackArgs),
    /// Run one hook, route or job locally in the real sandbox.
    Test(test::TestArgs),
    /// Upload the plugin to a server, optionally enabling it.
    Push(push::PushArgs),
}

pub async fn run(cmd: PluginCommand) -> Result<()> {
    match cmd {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Validate(args) => validate::run(args).await,
        PluginCommand::Pack(args) => pack::run(args).await,
        PluginCommand::Test(args) => test::run(args).await,
        PluginCommand::Push(args) => push::run(args).await,
    }
}

/// The platform's sandbox settings (`PLUGIN_*`, `EXTENSOR_*` variables).
pub fn sandbox() -> Result<Sandbox> {
    let config = SandboxConfig::from_env().map_err(|e| anyhow!("{e}"))?;
    Ok(Sandbox::new(config))
}

/// A plugin directory that passed the upload's checks: its files, their
/// ZIP (as `pack` writes it) and the validated plugin.
pub struct Loaded {
    pub source: PluginSource,
    pub zip: Vec<u8>,
    pub plugin: Arc<ValidatedPlugin>,
}

/// Reads `dir`, packs it, and validates it the way an upload does: the ZIP
/// through the server's own reader and limits (`Bundle::from_zip`), then
/// the bundle it yields through the sandbox. On failure prints every
/// located problem to stderr and returns an error that says how many.
pub async fn load(dir: &Path, sandbox: &Sandbox) -> Result<Loaded> {
    let source = match read_plugin_dir(dir) {
        Ok(s) => s,
        Err(problems) => return Err(report(dir, None, &problems)),
    };
    let zip = pack::zip_bytes(&source)?;
    let limits = ZipLimits::from_env().map_err(|e| anyhow!("{e}"))?;
    let bundle = match Bundle::from_zip(&zip, &limits) {
        Ok(b) => b,
        Err(problems) => return Err(report(dir, Some(&source), &problems)),
    };
    match sandbox.validate(&bundle).await {
        Ok(plugin) => Ok(Loaded {
            source,
            zip,
            plugin,
        }),
        Err(problems) => Err(report(dir, Some(&source), &problems)),
    }
}

fn report(
    dir: &Path,
    source: Option<&PluginSource>,
    problems: &[extensor_js::Problem],
) -> anyhow::Error {
    eprint!("{}", render_problems(dir, source, problems));
    let n = problems.len();
    anyhow!(
        "{} has {n} problem{}",
        dir.display(),
        if n == 1 { "" } else { "s" }
    )
}
