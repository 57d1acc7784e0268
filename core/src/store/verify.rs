//! Tamper evidence: walking the hash chain.
//!
//! Each event stores `hash = SHA-256(prev_hash ‖ canonical bytes)` and the
//! `prev_hash` of its predecessor, in global order. Editing, deleting,
//! inserting or reordering rows breaks a link; [`verify_chain`] reports the
//! first position where that happens. Truncating the newest events leaves a
//! valid (shorter) chain, which is why the report carries the head's position
//! and hash: an auditor who recorded them earlier passes them back as an
//! anchor and truncation is caught too.

use serde::Serialize;

use super::{EventStore, ReadFilter};
use crate::error::Error;
use crate::event::{GENESIS_HASH, Hash};

/// Events read per page while walking.
const VERIFY_PAGE_EVENTS: usize = 5_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub position: u64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub events_checked: u64,
    pub head_position: u64,
    pub head_hash: String,
    pub first_break: Option<ChainBreak>,
}

/// A head an auditor recorded earlier: the chain must still contain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub position: u64,
    pub hash: Hash,
}

/// Walks the whole log. `progress(checked_up_to, head)` is called after each
/// page so a terminal can show a bar.
pub async fn verify_chain(
    store: &dyn EventStore,
    anchor: Option<&Anchor>,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<VerifyReport, Error> {
    let head = store.head_position().await?;
    let mut prev_hash = GENESIS_HASH;
    let mut cursor = 0u64;
    let mut checked = 0u64;
    let mut first_break = None;
    'walk: while cursor < head {
        let page = match store
            .read_all(cursor, ReadFilter::default(), VERIFY_PAGE_EVENTS)
            .await
        {
            Ok(page) => page,
            Err(e @ (Error::StoreCorrupt { .. } | Error::Decode { .. })) => {
                first_break = Some(ChainBreak {
                    position: cursor + 1,
                    reason: format!("unreadable event: {e}"),
                });
                break;
            }
            Err(e) => return Err(e),
        };
        if page.is_empty() {
            break;
        }
        for ev in &page {
            if let Some(reason) = link_problem(cursor, &prev_hash, ev) {
                first_break = Some(ChainBreak {
                    position: ev.position.min(cursor + 1),
                    reason,
                });
                break 'walk;
            }
            if let Some(a) = anchor.filter(|a| a.position == ev.position && a.hash != ev.hash) {
                first_break = Some(ChainBreak {
                    position: a.position,
                    reason: "hash differs from the recorded anchor (history rewritten)".into(),
                });
                break 'walk;
            }
            prev_hash = ev.hash;
            cursor = ev.position;
            checked += 1;
        }
        progress(cursor, head);
    }
    if first_break.is_none() {
        first_break = anchor.filter(|a| a.position > cursor).map(|a| ChainBreak {
            position: cursor + 1,
            reason: format!(
                "the log ends at {cursor} but the anchor is at {} (events truncated)",
                a.position
            ),
        });
    }
    Ok(VerifyReport {
        events_checked: checked,
        head_position: cursor,
        head_hash: hex::encode(prev_hash),
        first_break,
    })
}

/// Where an incremental walk stands: the last verified position and its
/// hash (position 0 and the genesis hash before the first event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainCursor {
    pub position: u64,
    pub hash: Hash,
}

impl Default for ChainCursor {
    fn default() -> Self {
        ChainCursor {
            position: 0,
            hash: GENESIS_HASH,
        }
    }
}

/// What one bounded step of the walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStep {
    /// Verified up to here (unchanged past a break).
    pub through: ChainCursor,
    pub first_break: Option<ChainBreak>,
    /// Whether the step reached the head the store had when it began.
    pub reached_head: bool,
}

/// Verifies at most `events_max` events after `from` (a prefix verified
/// earlier is not walked again), calling `on_event` for each one whose link
/// holds. For callers that must bound the work one request causes.
pub async fn verify_step(
    store: &dyn EventStore,
    from: ChainCursor,
    events_max: usize,
    on_event: &mut (dyn FnMut(&crate::event::RecordedEvent) + Send),
) -> Result<ChainStep, Error> {
    let head = store.head_position().await?;
    let mut through = from;
    let mut left = events_max;
    while through.position < head && left > 0 {
        let page = store
            .read_all(
                through.position,
                ReadFilter::default(),
                left.min(VERIFY_PAGE_EVENTS),
            )
            .await?;
        if page.is_empty() {
            break;
        }
        for ev in &page {
            if let Some(reason) = link_problem(through.position, &through.hash, ev) {
                let position = ev.position.min(through.position + 1);
                return Ok(ChainStep {
                    through,
                    first_break: Some(ChainBreak { position, reason }),
                    reached_head: false,
                });
            }
            on_event(ev);
            through = ChainCursor {
                position: ev.position,
                hash: ev.hash,
            };
        }
        left = left.saturating_sub(page.len());
    }
    Ok(ChainStep {
        through,
        first_break: None,
        reached_head: through.position >= head,
    })
}

fn link_problem(cursor: u64, prev_hash: &Hash, ev: &crate::event::RecordedEvent) -> Option<String> {
    if ev.position != cursor + 1 {
        return Some(format!(
            "expected event {} but found {} (events deleted or renumbered)",
            cursor + 1,
            ev.position
        ));
    }
    if &ev.prev_hash != prev_hash {
        return Some(format!(
            "does not link to event {cursor} (an event before it was deleted, inserted or reordered)"
        ));
    }
    if ev.compute_hash() != ev.hash {
        return Some("content does not match its hash (the event was edited)".into());
    }
    None
}
