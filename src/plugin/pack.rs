//! `extensor plugin pack DIR [-o FILE]`: validates the plugin exactly as an
//! upload would (the ZIP itself goes through the server's reader and
//! limits), then writes that ZIP.
//!
//! The ZIP is deterministic: entries in byte order of their paths, every
//! timestamp 1980-01-01 00:00, mode 0644, Deflate at a fixed level. Packing
//! the same files twice gives the same bytes, hence the same digest on the
//! server, so re-uploading an unchanged plugin is recognisable.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::source::PluginSource;

/// Deflate level: the default trade-off; fixed so output bytes are stable.
const DEFLATE_LEVEL: i64 = 6;
/// Entries are written as plain files readable by everyone, owned by no one.
const ENTRY_MODE: u32 = 0o644;

#[derive(Args)]
pub struct PackArgs {
    /// The plugin directory.
    pub dir: PathBuf,
    /// Where to write the ZIP. Default: `<slug>-<version>.zip` in the
    /// current directory.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn run(args: PackArgs) -> Result<()> {
    let sandbox = super::sandbox()?;
    let loaded = super::load(&args.dir, &sandbox).await?;
    let (source, bytes) = (&loaded.source, &loaded.zip);
    let m = &loaded.plugin.manifest;
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}-{}.zip", m.slug, m.version)));
    write_atomically(&output, bytes)?;
    println!(
        "packed {} {} ({} files, {} bytes) into {}",
        m.slug,
        m.version,
        source.files.len(),
        bytes.len(),
        output.display()
    );
    Ok(())
}

/// The deterministic ZIP of the plugin's files.
pub fn zip_bytes(source: &PluginSource) -> Result<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .last_modified_time(DateTime::default())
        .unix_permissions(ENTRY_MODE);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (path, bytes) in &source.files {
        zip.start_file(path.as_str(), options)
            .with_context(|| format!("zip entry {path}"))?;
        zip.write_all(bytes)
            .with_context(|| format!("zip entry {path}"))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| anyhow!("finishing the zip: {e}"))?;
    Ok(cursor.into_inner())
}

/// Writes next to the target and renames, so a failed pack never leaves a
/// truncated ZIP where a good one was.
fn write_atomically(output: &Path, bytes: &[u8]) -> Result<()> {
    let name = output
        .file_name()
        .ok_or_else(|| anyhow!("output `{}` is not a file name", output.display()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = output.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, output).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}
