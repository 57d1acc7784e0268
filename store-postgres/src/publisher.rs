//! Live events for every subscriber of a store instance, from one `LISTEN`
//! session and one reader.
//!
//! Every append, from any node, notifies [`NOTIFY_CHANNEL`] with its last
//! position when it commits. The store's one listener session turns those
//! notifications (and this instance's own commits) into a wake-up of the
//! store's one publisher, which reads the new events from the log once, in
//! position order, and broadcasts them to every subscriber in this process.
//! So 10,000 subscribers cost one session and one read per batch of
//! appends, and never poll; the catch-up-then-live switch is
//! `extensor_core::store::subscription`'s, the same as SQLite's.
//!
//! A notification lost while the listener reconnects is made up for: after
//! each (re)connection it wakes the publisher, which reads up to the head.

use std::sync::Arc;
use std::time::Duration;

use extensor_core::event::RecordedEvent;
use extensor_core::store::ReadFilter;
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio_postgres::AsyncMessage;

use crate::pool::Pool;
use crate::schema::NOTIFY_CHANNEL;

/// Events read from the log per publisher read.
const PUBLISH_PAGE_EVENTS: usize = 1_000;
/// Waits between attempts to (re)open the listener session or to read
/// after a failed read, growing to the maximum.
const RETRY_MS_MIN: u64 = 100;
const RETRY_MS_MAX: u64 = 5_000;

/// Wakes the publisher: the value is the newest position known to be
/// committed (a hint: the publisher reads until the log has no more, and
/// skips a wake-up for positions it has already published).
pub(crate) type Wake = watch::Sender<u64>;

/// Broadcasts every event after `published` in order, each time it is woken.
pub(crate) async fn publish(
    pool: Arc<Pool>,
    live: broadcast::Sender<Arc<RecordedEvent>>,
    mut wake: watch::Receiver<u64>,
    mut published: u64,
) {
    let mut retry = RETRY_MS_MIN;
    loop {
        if wake.changed().await.is_err() {
            return;
        }
        if *wake.borrow_and_update() <= published {
            continue;
        }
        loop {
            let page = match crate::read_all(
                &pool,
                published,
                &ReadFilter::default(),
                PUBLISH_PAGE_EVENTS,
            )
            .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "reading new events to publish failed; retrying");
                    tokio::time::sleep(Duration::from_millis(retry)).await;
                    retry = (retry * 2).min(RETRY_MS_MAX);
                    continue;
                }
            };
            retry = RETRY_MS_MIN;
            let short = page.len() < PUBLISH_PAGE_EVENTS;
            for ev in page {
                published = ev.position;
                // No receivers is fine: nobody subscribes right now.
                let _ = live.send(Arc::new(ev));
            }
            if short {
                break;
            }
        }
    }
}

/// Keeps one session listening on [`NOTIFY_CHANNEL`], reconnecting with
/// backoff, and wakes the publisher on every notification.
pub(crate) async fn listen(pool: Arc<Pool>, wake: Arc<Wake>) {
    let mut retry = RETRY_MS_MIN;
    loop {
        match listen_once(&pool, &wake).await {
            Ok(()) => retry = RETRY_MS_MIN,
            Err(e) => {
                tracing::warn!(store = pool.location().shown(), error = %e, "store listener session failed; reconnecting");
            }
        }
        tokio::time::sleep(Duration::from_millis(retry)).await;
        retry = (retry * 2).min(RETRY_MS_MAX);
    }
}

/// One listener session, until it ends.
async fn listen_once(pool: &Pool, wake: &Wake) -> Result<(), String> {
    let location = pool.location();
    let (client, mut connection) = location
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| crate::errors::describe(&e))?;
    let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let listen_sql = format!("LISTEN {NOTIFY_CHANNEL}");
    let listen = client.batch_execute(&listen_sql);
    tokio::pin!(listen, messages);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done.map_err(|e| crate::errors::describe(&e))?;
                listening = true;
                // Appends committed while no session listened: read them.
                let head = crate::head_position(pool).await.map_err(|e| e.to_string())?;
                wake.send_modify(|v| *v = (*v).max(head));
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Ok(position) = n.payload().parse::<u64>() {
                        wake.send_modify(|v| *v = (*v).max(position));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(crate::errors::describe(&e)),
                None => return Ok(()),
            },
        }
    }
}
