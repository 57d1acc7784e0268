//! Catch-up subscriptions shared by every backend that has a live feed.
//!
//! The subscriber registers for live events *before* it reads the stored
//! ones, then reads the store up to the head it saw. Live events at or below
//! that head are duplicates and are skipped; everything above it arrives
//! live, in order. If the live feed shows a gap (another process appended,
//! or this subscriber lagged behind the bounded live buffer) the subscriber
//! goes back to reading the store from its cursor. So there is never a gap
//! and never a duplicate, and a slow subscriber costs a bounded buffer, not
//! unbounded memory.
//!
//! Appends by another process that no live event of ours follows are seen
//! through `external_head`: the backend's one head poller announces them
//! there, so an idle subscriber costs no reads at all (the backend polls
//! once per interval, not once per subscriber).

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::{broadcast, watch};

use super::{EventStore, EventStream, ReadFilter};
use crate::error::Error;
use crate::event::RecordedEvent;

/// Events read from the store per catch-up page.
const CATCH_UP_PAGE_EVENTS: usize = 1_000;

enum Mode {
    CatchUp,
    Live,
    Done,
}

struct State<S> {
    store: S,
    filter: ReadFilter,
    live: broadcast::Receiver<Arc<RecordedEvent>>,
    /// The newest head known to hold another process's appends.
    external_head: watch::Receiver<u64>,
    /// Every position up to here has been delivered or filtered out.
    cursor: u64,
    pending: VecDeque<RecordedEvent>,
    mode: Mode,
}

pub fn subscribe<S: EventStore + Clone>(
    store: S,
    live: broadcast::Receiver<Arc<RecordedEvent>>,
    mut external_head: watch::Receiver<u64>,
    after: u64,
    filter: ReadFilter,
) -> EventStream {
    // The catch-up reads up to the head anyway: only later news counts.
    external_head.borrow_and_update();
    let state = State {
        store,
        filter,
        live,
        external_head,
        cursor: after,
        pending: VecDeque::new(),
        mode: Mode::CatchUp,
    };
    futures::stream::unfold(state, next).boxed()
}

async fn next<S: EventStore>(mut st: State<S>) -> Option<(Result<RecordedEvent, Error>, State<S>)> {
    loop {
        if let Some(ev) = st.pending.pop_front() {
            return Some((Ok(ev), st));
        }
        let step = match st.mode {
            Mode::Done => return None,
            Mode::CatchUp => catch_up_page(&mut st).await,
            Mode::Live => live_step(&mut st).await,
        };
        match step {
            Ok(Some(ev)) => return Some((Ok(ev), st)),
            Ok(None) => {}
            Err(e) => {
                st.mode = Mode::Done;
                return Some((Err(e), st));
            }
        }
    }
}

async fn catch_up_page<S: EventStore>(st: &mut State<S>) -> Result<Option<RecordedEvent>, Error> {
    let head = st.store.head_position().await?;
    if st.cursor >= head {
        st.mode = Mode::Live;
        return Ok(None);
    }
    let mut filter = st.filter.clone();
    filter.position_max = Some(filter.position_max.map_or(head, |p| p.min(head)));
    let page = st
        .store
        .read_all(st.cursor, filter, CATCH_UP_PAGE_EVENTS)
        .await?;
    st.cursor = match page.last() {
        Some(last) if page.len() == CATCH_UP_PAGE_EVENTS => last.position,
        // A short page means the scan reached `head`.
        _ => head,
    };
    st.pending.extend(page);
    Ok(None)
}

async fn live_step<S: EventStore>(st: &mut State<S>) -> Result<Option<RecordedEvent>, Error> {
    // Live events first: ours are broadcast before the poller could call
    // them another process's.
    let received = tokio::select! {
        biased;
        received = st.live.recv() => received,
        changed = st.external_head.changed() => {
            if changed.is_err() {
                return Err(Error::StoreClosed);
            }
            if *st.external_head.borrow_and_update() > st.cursor {
                st.mode = Mode::CatchUp;
            }
            return Ok(None);
        }
    };
    match received {
        Ok(ev) if ev.position <= st.cursor => Ok(None),
        Ok(ev) if ev.position == st.cursor + 1 => {
            st.cursor = ev.position;
            Ok(st.filter.matches(&ev).then(|| (*ev).clone()))
        }
        // A gap: someone else appended, go read the store.
        Ok(_) => {
            st.mode = Mode::CatchUp;
            Ok(None)
        }
        Err(broadcast::error::RecvError::Lagged(_)) => {
            // Re-register first, then read the store: nothing falls between.
            st.live = st.live.resubscribe();
            st.mode = Mode::CatchUp;
            Ok(None)
        }
        Err(broadcast::error::RecvError::Closed) => Err(Error::StoreClosed),
    }
}
