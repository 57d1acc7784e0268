//! `extensor events tail | export | verify`: the auditor's view of the log.
//! Every command opens the store read-only, so inspecting never changes it.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use extensor_core::event::RecordedEvent;
use extensor_core::store::verify::{Anchor, verify_chain};
use extensor_core::store::{EventStore, ReadFilter};
use futures::StreamExt;

use crate::filter_args::FilterArgs;
use crate::progress::events_bar;
use crate::store::{Access, StoreChoice};

/// Events fetched per read while exporting or scanning.
const PAGE_EVENTS: usize = 5_000;
/// `tail` prints at most this many events before following.
const TAIL_EVENTS_MAX: usize = 10_000;
/// Payloads longer than this are cut in the human-readable tail.
const TAIL_PAYLOAD_CHARS: usize = 160;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Print the newest events, optionally following new ones as they land.
    Tail(TailArgs),
    /// Write events as NDJSON (one JSON envelope per line).
    Export(ExportArgs),
    /// Walk the hash chain and report the first broken link.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct TailArgs {
    /// How many of the newest matching events to print.
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: usize,
    /// Keep running and print new events as they are appended.
    #[arg(short, long)]
    follow: bool,
    /// Print NDJSON envelopes instead of one readable line per event.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A head recorded earlier, `POSITION:HEX_HASH`; catches truncation.
    #[arg(long)]
    anchor: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub enum Outcome {
    Ok,
    ChainBroken,
}

pub async fn run(data_dir: &Path, choice: &StoreChoice, cmd: EventsCommand) -> Result<Outcome> {
    let opened = crate::store::open(choice, data_dir, Access::ReadOnly).await?;
    let store = opened.store.as_ref();
    match cmd {
        EventsCommand::Tail(args) => tail(store, args).await.map(|()| Outcome::Ok),
        EventsCommand::Export(args) => export(store, args).await.map(|()| Outcome::Ok),
        EventsCommand::Verify(args) => verify(store, args).await,
    }
}

async fn tail(store: &dyn EventStore, args: TailArgs) -> Result<()> {
    if args.lines > TAIL_EVENTS_MAX {
        bail!("--lines is at most {TAIL_EVENTS_MAX}");
    }
    let filter = args.filter.to_filter()?;
    let head = store.head_position().await?;
    let mut newest = VecDeque::with_capacity(args.lines);
    let unfiltered = filter
        == ReadFilter {
            position_max: filter.position_max,
            ..Default::default()
        };
    // Without a filter the newest N events are simply the last N positions.
    let mut cursor = if unfiltered {
        head.saturating_sub(args.lines as u64)
            .max(args.filter.after)
    } else {
        args.filter.after
    };
    let bar = events_bar(head.saturating_sub(cursor), "scanning");
    loop {
        let page = store.read_all(cursor, filter.clone(), PAGE_EVENTS).await?;
        let Some(last) = page.last() else { break };
        bar.set_position(last.position.saturating_sub(args.filter.after));
        cursor = last.position;
        for ev in page {
            if newest.len() == args.lines {
                newest.pop_front();
            }
            newest.push_back(ev);
        }
    }
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    for ev in &newest {
        print_event(&mut out, ev, args.json)?;
    }
    out.flush()?;
    drop(out);
    if args.follow {
        follow(store, cursor.max(head), filter, args.json).await?;
    }
    Ok(())
}

async fn follow(store: &dyn EventStore, after: u64, filter: ReadFilter, json: bool) -> Result<()> {
    let mut live = store.subscribe_all(after, filter);
    while let Some(ev) = live.next().await {
        let mut out = std::io::stdout().lock();
        print_event(&mut out, &ev?, json)?;
        out.flush()?;
    }
    Ok(())
}

fn print_event(out: &mut impl Write, ev: &RecordedEvent, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, ev)?;
        writeln!(out)?;
        return Ok(());
    }
    let payload = ev.payload.get();
    let cut: String = payload.chars().take(TAIL_PAYLOAD_CHARS).collect();
    let ellipsis = if cut.len() < payload.len() { "…" } else { "" };
    writeln!(
        out,
        "{:>8} {} {}@{} {} v{} by {} {cut}{ellipsis}",
        ev.position,
        ev.recorded_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        ev.stream,
        ev.revision,
        ev.event_type,
        ev.schema_version,
        ev.principal,
    )?;
    Ok(())
}

async fn export(store: &dyn EventStore, args: ExportArgs) -> Result<()> {
    let filter = args.filter.to_filter()?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let head = store.head_position().await?;
    let bar = events_bar(head.saturating_sub(args.filter.after), "exporting");
    let mut cursor = args.filter.after;
    let mut written = 0u64;
    loop {
        let page = store.read_all(cursor, filter.clone(), PAGE_EVENTS).await?;
        let Some(last) = page.last() else { break };
        cursor = last.position;
        for ev in &page {
            serde_json::to_writer(&mut out, ev)?;
            out.write_all(b"\n")?;
        }
        written += page.len() as u64;
        bar.set_position(cursor.saturating_sub(args.filter.after));
    }
    out.flush().context("writing the export")?;
    bar.finish_and_clear();
    if args.output.is_some() {
        eprintln!("exported {written} events");
    }
    Ok(())
}

fn parse_anchor(s: &str) -> Result<Anchor> {
    let (pos, hash) = s.split_once(':').context("--anchor is POSITION:HEX_HASH")?;
    let position = pos
        .parse()
        .with_context(|| format!("anchor position `{pos}` is not a number"))?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hash, &mut bytes).context("anchor hash must be 64 hex characters")?;
    Ok(Anchor {
        position,
        hash: bytes,
    })
}

async fn verify(store: &dyn EventStore, args: VerifyArgs) -> Result<Outcome> {
    let anchor = args.anchor.as_deref().map(parse_anchor).transpose()?;
    let head = store.head_position().await?;
    let bar = events_bar(head, "verifying");
    let progress_bar = bar.clone();
    let report = verify_chain(store, anchor.as_ref(), &mut move |done, _| {
        progress_bar.set_position(done)
    })
    .await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if let Some(b) = &report.first_break {
        println!(
            "BROKEN: the hash chain breaks at position {}: {}",
            b.position, b.reason
        );
        println!("{} events before it verified", report.events_checked);
    } else {
        println!(
            "OK: {} events verified; head {} hash {}",
            report.events_checked, report.head_position, report.head_hash
        );
        println!(
            "record `{}:{}` and pass it as --anchor later to detect truncation",
            report.head_position, report.head_hash
        );
    }
    Ok(if report.first_break.is_some() {
        Outcome::ChainBroken
    } else {
        Outcome::Ok
    })
}
