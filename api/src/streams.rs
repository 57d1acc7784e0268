//! Server-sent event streams for live views (the console uses them; any
//! client can): `GET /api/events/stream` (the tenant's log, catch-up then
//! live), `GET /api/plugins/{id}/logs/stream` (a plugin's console output)
//! and `GET /api/ops/tree/stream` (the supervision tree, platform admin).
//!
//! They authenticate exactly like the other operations (bearer token plus
//! `X-Tenant-Slug`, so `EventSource`-less clients such as `fetch` readers
//! work; nothing goes in the URL). Each is bounded: a stream holds one
//! [`StreamSlot`] of its owner's [`STREAMS_PER_OWNER_MAX`], sends a
//! comment heartbeat every [`HEARTBEAT_MS`] so proxies and clients see a
//! dead peer, and is pulled by the connection (poem writes an item only
//! when the socket takes it), so a slow reader costs the store
//! subscription's bounded buffer, never a growing queue. Streams end when
//! the server starts shutting down ([`Streams::close`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use extensor_core::role::Role;
use extensor_core::store::ReadFilter;
use futures::stream::{BoxStream, StreamExt};
use poem::IntoResponse;
use poem::web::sse::Event;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, OpenApi};
use tokio::sync::watch;

use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::events::EventView;
use crate::ops::TreeView;
use crate::plugins::{LogLine, admit, plugin_id};
use crate::ratelimit::RateClass;
use crate::state::State;
use crate::tags::ApiTags;

/// Concurrent streams one tenant (or the platform admin) may hold open: a
/// console tab uses at most two, so this allows a few tabs and tools while
/// one caller cannot pin the server's subscriptions.
pub const STREAMS_PER_OWNER_MAX: usize = 8;
/// A comment line is sent when nothing else was for this long (default of
/// `ServerConfig::stream_heartbeat`).
pub const HEARTBEAT_MS: u64 = 15_000;
/// The tree stream sends at most one snapshot per this interval: a burst
/// of status changes (a tenant's actors starting) is one update.
const TREE_UPDATE_INTERVAL_MS: u64 = 500;
/// How often the plugin log stream looks for new lines (the isolates keep
/// their recent lines in a bounded ring; there is no feed to follow).
const LOG_POLL_MS: u64 = 1_000;

/// The open-stream counts per owner, the heartbeat and the shutdown signal.
pub struct Streams {
    open: Arc<Mutex<HashMap<String, usize>>>,
    closing: watch::Sender<bool>,
    heartbeat: Duration,
}

impl Default for Streams {
    fn default() -> Self {
        Self::new(Duration::from_millis(HEARTBEAT_MS))
    }
}

impl Streams {
    pub fn new(heartbeat: Duration) -> Self {
        Self {
            open: Arc::default(),
            closing: watch::channel(false).0,
            heartbeat,
        }
    }

    /// Takes one of `owner`'s slots, or refuses with 429 `too_many_streams`.
    fn acquire(&self, owner: String) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(owner.clone()).or_insert(0);
        if *n >= STREAMS_PER_OWNER_MAX {
            return Err(ApiError::rate_limited("stream", 5).with_code("too_many_streams"));
        }
        *n += 1;
        Ok(StreamSlot {
            open: self.open.clone(),
            owner,
            closing: self.closing.subscribe(),
        })
    }

    /// Ends every open stream (the server is shutting down) and refuses
    /// nothing else: a stream opened afterwards ends at once.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Streams open now for `owner` (tests, metrics).
    pub fn open_for(&self, owner: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(owner).copied().unwrap_or(0)
    }
}

/// One open stream; dropping it (the client went away, the stream ended)
/// frees the slot.
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    owner: String,
    closing: watch::Receiver<bool>,
}

impl StreamSlot {
    /// `stream`, ended when the server shuts down, holding the slot for
    /// as long as it runs.
    fn bind<T: Send + 'static>(self, stream: BoxStream<'static, T>) -> BoxStream<'static, T> {
        let mut closing = self.closing.clone();
        let closed = async move {
            let _ = closing.wait_for(|c| *c).await;
        };
        stream
            .take_until(closed)
            .map(move |item| {
                let _slot = &self;
                item
            })
            .boxed()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

/// What one stream sends: the SSE `event:` name and the JSON `data:` type.
pub trait SseItem: Type + ToJSON + Send + 'static {
    /// The `event:` field of every message.
    const EVENT: &'static str;
    /// What `data:` holds, for the OpenAPI document.
    const DATA: &'static str;
    /// Whether messages carry an `id:` (resumable with `Last-Event-ID`).
    const RESUMABLE: bool;
}

impl SseItem for EventView {
    const EVENT: &'static str = "event";
    const DATA: &'static str = "An `EventView` as JSON.";
    const RESUMABLE: bool = true;
}

impl SseItem for LogLine {
    const EVENT: &'static str = "log";
    const DATA: &'static str = "A `LogLine` as JSON.";
    const RESUMABLE: bool = false;
}

impl SseItem for TreeView {
    const EVENT: &'static str = "tree";
    const DATA: &'static str = "A `TreeView` as JSON: the whole tree.";
    const RESUMABLE: bool = false;
}

/// A `text/event-stream` body of `T` messages. Its OpenAPI schema
/// describes one event (`event`, `data`, `id`), as OpenAPI 3.0 readers of
/// event streams (schemathesis among them) expect, rather than poem's
/// array-of-`T`; `T` itself is registered, so its schema is in the document.
pub struct Sse<T: SseItem>(EventStream<BoxStream<'static, T>>);

impl<T: SseItem> Payload for Sse<T> {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        let text = |description: &'static str| {
            MetaSchemaRef::Inline(Box::new(MetaSchema {
                description: Some(description),
                ..MetaSchema::new("string")
            }))
        };
        let event = MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("The message's kind."),
            enum_items: vec![serde_json::Value::from(T::EVENT)],
            ..MetaSchema::new("string")
        }));
        let mut properties = vec![("event", event), ("data", text(T::DATA))];
        let mut required = vec!["event", "data"];
        if T::RESUMABLE {
            properties.push(("id", text("The event's global position.")));
            required.push("id");
        }
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("One server-sent event; comment lines are heartbeats."),
            properties,
            required,
            ..MetaSchema::new("object")
        }))
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: SseItem> IntoResponse for Sse<T> {
    fn into_response(self) -> poem::Response {
        self.0.into_response()
    }
}

#[derive(ApiResponse)]
pub enum EventsStream {
    /// `text/event-stream`: `event: event` messages, `id:` the position,
    /// `data:` the event; comment heartbeats while idle.
    #[oai(status = 200)]
    Ok(Sse<EventView>),
}

#[derive(ApiResponse)]
pub enum LogStream {
    /// `text/event-stream`: `event: log` messages, one console line each;
    /// comment heartbeats while idle.
    #[oai(status = 200)]
    Ok(Sse<LogLine>),
}

#[derive(ApiResponse)]
pub enum TreeStream {
    /// `text/event-stream`: `event: tree` messages, each a whole snapshot;
    /// comment heartbeats while idle.
    #[oai(status = 200)]
    Ok(Sse<TreeView>),
}

fn sse<T: SseItem>(
    streams: &Streams,
    stream: BoxStream<'static, T>,
    mut to_event: impl FnMut(&T, String) -> Event + Send + 'static,
) -> Sse<T> {
    Sse(EventStream::new(stream)
        .keep_alive(streams.heartbeat)
        .to_event(move |item| {
            let json = item.to_json_string();
            to_event(&item, json).event_type(T::EVENT)
        }))
}

pub struct StreamsApi;

#[OpenApi(prefix_path = "/api")]
impl StreamsApi {
    /// Follow the tenant's log: stored events after `after`, then new ones live
    ///
    /// Each SSE message is one event (`event: event`, `id:` its position,
    /// `data:` the event as JSON). A reconnecting client's `Last-Event-ID`
    /// header (the SSE protocol's, a position) resumes after that position
    /// and takes precedence over `after`. Without either it starts at the
    /// current head (new events only).
    #[oai(
        path = "/events/stream",
        method = "get",
        operation_id = "streamEvents",
        tag = "ApiTags::Events"
    )]
    async fn events(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        req: &poem::Request,
        /// Only events after this global position (default: the current head).
        after: Query<Option<u64>>,
        /// Event type or type prefix (`plugin.` matches `plugin.enabled`),
        /// 1 to 128 characters.
        #[oai(name = "type", validator(min_length = 1, max_length = 128))]
        event_type: Query<Option<String>>,
    ) -> Result<EventsStream, ApiError> {
        let ctx = state.tenant_access(&auth, &tenant, Role::Viewer, RateClass::Management)?;
        let slot = state.streams.acquire(ctx.tenant.to_string())?;
        let after = match last_event_id(req)?.or(after.0) {
            Some(p) => p,
            None => state.store.head_position().await?,
        };
        let filter = ReadFilter {
            tenant: Some(ctx.tenant),
            type_prefix: event_type.0,
            ..ReadFilter::default()
        };
        // A store error ends the stream; the client reconnects with its
        // Last-Event-ID and loses nothing.
        let events = state
            .store
            .subscribe_all(after, filter)
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| std::future::ready(r.ok().map(EventView::from)))
            .boxed();
        Ok(EventsStream::Ok(sse(
            &state.streams,
            slot.bind(events),
            |e, json| Event::message(json).id(e.position.to_string()),
        )))
    }

    /// Follow a plugin's console output
    ///
    /// Each SSE message (`event: log`) is one line, oldest first: first the
    /// lines the plugin's isolates still hold, then new ones as they are
    /// logged (looked for every second).
    #[oai(
        path = "/plugins/:id/logs/stream",
        method = "get",
        operation_id = "streamPluginLogs",
        tag = "ApiTags::Plugins"
    )]
    async fn plugin_logs(
        &self,
        state: State<'_>,
        auth: BearerAuth,
        /// The tenant to act in (its slug). Optional with a tenant token,
        /// which names its tenant (a different slug is refused); required
        /// with the platform-admin token.
        #[oai(name = "X-Tenant-Slug")]
        tenant: Header<Option<String>>,
        /// The plugin's id (`ins_…`).
        id: Path<String>,
    ) -> Result<LogStream, ApiError> {
        let ctx = admit(&state, &auth, &tenant, Role::Viewer)?;
        let id = plugin_id(&id)?;
        // Existence and scope are checked now, not on the first poll.
        state.engine.recent_logs(&ctx.tenant, &id).await?;
        let slot = state.streams.acquire(ctx.tenant.to_string())?;
        let engine = state.engine.clone();
        let tenant = ctx.tenant;
        let lines = futures::stream::unfold(
            (LogCursor::default(), true),
            move |(mut cursor, mut first)| {
                let engine = engine.clone();
                let (tenant, id) = (tenant.clone(), id.clone());
                async move {
                    loop {
                        if !first {
                            tokio::time::sleep(Duration::from_millis(LOG_POLL_MS)).await;
                        }
                        first = false;
                        // The plugin was uninstalled (or its tenant stopped): end.
                        let logs = engine.recent_logs(&tenant, &id).await.ok()?;
                        let fresh = cursor.advance(logs);
                        if !fresh.is_empty() {
                            return Some((futures::stream::iter(fresh), (cursor, false)));
                        }
                    }
                }
            },
        )
        .flatten()
        .map(|l| LogLine {
            level: serde_json::to_value(l.level)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "log".into()),
            time: l.time,
            message: l.message,
        })
        .boxed();
        Ok(LogStream::Ok(sse(
            &state.streams,
            slot.bind(lines),
            |_, json| Event::message(json),
        )))
    }

    /// Follow the supervision tree (platform admin)
    ///
    /// Each SSE message (`event: tree`) is a whole snapshot, sent at once
    /// and then whenever an actor's record changes (at most two a second).
    #[oai(
        path = "/ops/tree/stream",
        method = "get",
        operation_id = "streamOpsTree",
        tag = "ApiTags::Ops"
    )]
    async fn tree(&self, state: State<'_>, auth: BearerAuth) -> Result<TreeStream, ApiError> {
        state.platform_admin(&auth)?;
        let slot = state.streams.acquire("platform-admin".into())?;
        let app = state.0.clone();
        let changes = app.engine.status_board().changes();
        let snapshots = futures::stream::unfold((changes, true), move |(mut changes, first)| {
            let app = app.clone();
            async move {
                if !first {
                    tokio::time::sleep(Duration::from_millis(TREE_UPDATE_INTERVAL_MS)).await;
                    changes.changed().await.ok()?;
                }
                changes.borrow_and_update();
                let view = crate::ops::tree_view(&app).await.ok()?;
                Some((view, (changes, false)))
            }
        })
        .boxed();
        Ok(TreeStream::Ok(sse(
            &state.streams,
            slot.bind(snapshots),
            |_, json| Event::message(json),
        )))
    }
}

/// The SSE protocol's `Last-Event-ID` (a position), read from the request
/// rather than declared: it is the protocol's header, not an API parameter.
fn last_event_id(req: &poem::Request) -> Result<Option<u64>, ApiError> {
    let Some(v) = req.headers().get("last-event-id") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "header:Last-Event-ID",
                "must be an event position (an integer)",
            )
        })
}

/// Which of a plugin's recent log lines were sent already. The ring holds
/// lines in time order; a line is new when it is later than the last one
/// sent, or at the same instant beyond those already sent at it.
#[derive(Default)]
struct LogCursor {
    last: Option<chrono::DateTime<chrono::Utc>>,
    sent_at_last: usize,
}

impl LogCursor {
    fn advance(&mut self, logs: Vec<extensor_js::LogEntry>) -> Vec<extensor_js::LogEntry> {
        let mut seen_at_last = 0;
        let mut fresh = Vec::new();
        for l in logs {
            match self.last {
                Some(t) if l.time < t => continue,
                Some(t) if l.time == t => {
                    seen_at_last += 1;
                    if seen_at_last <= self.sent_at_last {
                        continue;
                    }
                }
                _ => {}
            }
            fresh.push(l);
        }
        if let Some(newest) = fresh.last().map(|l| l.time) {
            let same = fresh.iter().filter(|l| l.time == newest).count();
            self.sent_at_last = if Some(newest) == self.last {
                self.sent_at_last + same
            } else {
                same
            };
            self.last = Some(newest);
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use extensor_js::LogLevel;

    fn line(ms: i64, msg: &str) -> extensor_js::LogEntry {
        extensor_js::LogEntry {
            level: LogLevel::Info,
            time: Utc.timestamp_millis_opt(ms).unwrap(),
            message: msg.into(),
        }
    }

    fn messages(v: Vec<extensor_js::LogEntry>) -> Vec<String> {
        v.into_iter().map(|l| l.message).collect()
    }

    #[test]
    fn log_cursor_sends_each_line_once_even_at_one_instant() {
        let mut c = LogCursor::default();
        assert_eq!(
            messages(c.advance(vec![line(1, "a"), line(2, "b")])),
            ["a", "b"]
        );
        assert_eq!(
            messages(c.advance(vec![line(1, "a"), line(2, "b"), line(2, "c")])),
            ["c"]
        );
        assert!(c.advance(vec![line(2, "b"), line(2, "c")]).is_empty());
        assert_eq!(
            messages(c.advance(vec![line(2, "b"), line(2, "c"), line(3, "d")])),
            ["d"]
        );
    }

    #[test]
    fn slots_are_bounded_per_owner_and_freed_on_drop() {
        let s = Streams::default();
        let held: Vec<_> = (0..STREAMS_PER_OWNER_MAX)
            .map(|_| s.acquire("t".into()).unwrap())
            .collect();
        let refused = s.acquire("t".into()).err().unwrap();
        assert_eq!(refused.problem().code, "too_many_streams");
        assert!(s.acquire("other".into()).is_ok());
        drop(held);
        assert_eq!(s.open_for("t"), 0);
        assert!(s.acquire("t".into()).is_ok());
    }
}
