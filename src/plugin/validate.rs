//! `extensor plugin validate DIR`: the validation an upload runs (files,
//! manifest, imports, TypeScript, one evaluation, registrations against the
//! manifest), with every problem printed as `file:line:column: message`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use extensor_core::manifest::Routes;
use extensor_js::ValidatedPlugin;

#[derive(Args)]
pub struct ValidateArgs {
    /// The plugin directory (holding manifest.json).
    pub dir: PathBuf,
}

pub async fn run(args: ValidateArgs) -> Result<()> {
    let sandbox = super::sandbox()?;
    let loaded = super::load(&args.dir, &sandbox).await?;
    print!("{}", summary(&loaded.plugin, loaded.source.files.len()));
    Ok(())
}

/// What the plugin is and what it registered, for a valid plugin.
pub fn summary(plugin: &ValidatedPlugin, files: usize) -> String {
    let m = &plugin.manifest;
    let mut out = format!("ok: {} {} ({files} files)\n", m.slug, m.version);
    let permissions: Vec<&str> = m.permissions.iter().map(|p| p.as_str()).collect();
    out.push_str(&format!(
        "  permissions: {}\n",
        if permissions.is_empty() {
            "none".to_string()
        } else {
            permissions.join(", ")
        }
    ));
    for r in &plugin.registrations {
        let kind = serde_json::to_value(r.kind).ok();
        let kind = kind.as_ref().and_then(|v| v.as_str()).unwrap_or("handler");
        match &r.schedule {
            Some(s) if !s.is_empty() => out.push_str(&format!("  {kind} {} ({s})\n", r.key)),
            _ => out.push_str(&format!("  {kind} {}\n", r.key)),
        }
    }
    if let Routes::Declared(routes) = &m.routes {
        for r in routes.iter().filter(|r| r.public) {
            out.push_str(&format!("  public route {} {}\n", r.method, r.path));
        }
    }
    out
}
