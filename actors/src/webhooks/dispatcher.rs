//! One tenant's webhooks: the registry aggregate, one [`Endpoint`] child per
//! live webhook (restarted with backoff per the restart policy), and the
//! follower task that reads the tenant's business events from the webhook
//! cursor and hands each batch to the endpoints whose patterns and filters
//! match. The cursor is its own stream, so webhooks never wait for the
//! plugin hook dispatcher and vice versa.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{self, AsOf, Loaded, SnapshotPolicy};
use extensor_core::error::FieldProblem;
use extensor_core::event::{EventMeta, NewEvent, Principal, RecordedEvent, StreamId};
use extensor_core::ids::{DeliveryId, TenantId};
use extensor_core::store::{EventStore, ExpectedRevision, ReadFilter};
use extensor_core::webhook::delivery::Origin;
use extensor_core::webhook::registry::{
    DECLARATION_FILE, TenantWebhooks, WebhookCommand, WebhookName, WebhookRecord, WebhookSource,
    WebhookStatus,
};
use extensor_core::webhook::spec::{Filter, WebhookSpec};
use extensor_core::webhook::{cursor_stream, registry_stream};
use futures::StreamExt;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::endpoint::{Endpoint, EndpointArgs, EndpointMsg, EndpointStats};
use super::{BATCH_EVENTS_MAX, DELIVER_CALL_TIMEOUT_MS, WebhookConfig};
use crate::error::Error;
use crate::supervision::{FailureHistory, RestartDecision, call};

/// Events one replay request may turn into deliveries.
pub const REPLAY_EVENTS_MAX: usize = 10_000;
/// Timeout of the dispatcher's calls to an endpoint other than deliveries.
const ENDPOINT_CALL_TIMEOUT_MS: u64 = 10_000;
/// The follower retries an endpoint that refused a batch after this many
/// endpoint ticks: an endpoint frees backlog room only as attempts end and
/// retries come due, which it checks once a tick.
const FOLLOWER_RETRY_TICKS: u64 = 2;
/// After this many refusals in a row from an endpoint that is *unavailable*
/// (restarting, stopped) the follower moves on without it for this batch,
/// so one broken endpoint cannot stall the others. A full backlog is not
/// unavailability: the follower waits for room however long it takes, and
/// never skips (the events stay in the log; nothing is dropped).
pub const FOLLOWER_RETRIES_MAX: u32 = 300;
/// The cursor is also recorded after this long without a save.
const CURSOR_SAVE_MS: u64 = 1_000;
const CURSOR_EVENT: &str = "webhook.cursor_saved";

pub struct WebhookDispatcher;

pub struct DispatcherArgs {
    pub tenant: TenantId,
    pub config: WebhookConfig,
}

/// What the follower needs to know about one live webhook.
#[derive(Clone)]
pub struct Route {
    pub name: WebhookName,
    pub spec: Arc<WebhookSpec>,
    pub declared_at: DateTime<Utc>,
    pub active: bool,
    pub actor: Option<ActorRef<EndpointMsg>>,
}

impl Route {
    fn matches(&self, ev: &RecordedEvent, tenant: &TenantId) -> bool {
        self.active && ev.recorded_at >= self.declared_at && matches_spec(&self.spec, ev, tenant)
    }
}

/// Pattern and field-equality filter (JS filters run at attempt time).
pub fn matches_spec(spec: &WebhookSpec, ev: &RecordedEvent, tenant: &TenantId) -> bool {
    if !spec.follows(&ev.event_type) {
        return false;
    }
    let Some(Filter::Equals(conds)) = &spec.filter else {
        return true;
    };
    let value = super::attempt::event_json(tenant, ev);
    conds
        .iter()
        .all(|(path, want)| lookup(&value, path) == Some(want))
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.get(key))
}

type Routes = Arc<RwLock<Arc<Vec<Route>>>>;

struct Child {
    actor: Option<ActorRef<EndpointMsg>>,
    history: FailureHistory,
    failed: Option<String>,
}

pub struct DispatcherState {
    tenant: TenantId,
    config: WebhookConfig,
    registry: Loaded<TenantWebhooks>,
    children: BTreeMap<WebhookName, Child>,
    by_actor: HashMap<ActorId, WebhookName>,
    routes: Routes,
    cursor: u64,
    follower: Option<JoinHandle<()>>,
}

/// Whether `Apply` records the declaration or only checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    Apply,
    DryRun,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

#[derive(Clone, Debug)]
pub struct Applied {
    pub change: Change,
    pub record: Option<WebhookRecord>,
}

pub enum DispatcherMsg {
    Apply {
        name: WebhookName,
        source: WebhookSource,
        mode: ApplyMode,
        /// Apply only if the live webhook is at this revision (`If-Match`);
        /// otherwise `Conflict { code: "precondition_failed" }`. Checked in
        /// the dispatcher, which handles one message at a time, so two
        /// writers that read the same revision cannot both succeed.
        if_revision: Option<u32>,
        meta: EventMeta,
        reply: RpcReplyPort<Result<Applied, Error>>,
    },
    Delete {
        name: WebhookName,
        meta: EventMeta,
        reply: RpcReplyPort<Result<(), Error>>,
    },
    SetEnabled {
        name: WebhookName,
        /// `None` enables; `Some(reason)` disables.
        disabled: Option<String>,
        meta: EventMeta,
        reply: RpcReplyPort<Result<(), Error>>,
    },
    /// From an endpoint: a 410 or too many failures in a row.
    AutoDisable {
        name: WebhookName,
        reason: String,
    },
    Registry {
        reply: RpcReplyPort<TenantWebhooks>,
    },
    Redeliver {
        name: WebhookName,
        delivery: DeliveryId,
        reply: RpcReplyPort<Result<DeliveryId, Error>>,
    },
    Replay {
        name: WebhookName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reply: RpcReplyPort<Result<usize, Error>>,
    },
    SendTest {
        name: WebhookName,
        reply: RpcReplyPort<Result<DeliveryId, Error>>,
    },
    Stats {
        name: WebhookName,
        reply: RpcReplyPort<Result<EndpointStats, Error>>,
    },
    /// Sent to itself after a child's backoff delay.
    Restart {
        name: WebhookName,
    },
    /// The follower task ended with an error: fail so the supervisor restarts.
    FollowerFailed {
        error: String,
    },
}

fn invalid(problems: Vec<FieldProblem>) -> extensor_core::Error {
    extensor_core::Error::InvalidWebhook(problems)
}

impl DispatcherState {
    fn path(&self) -> String {
        format!("/tenants/{}/webhooks", self.tenant)
    }

    fn core(&self, source: extensor_core::Error) -> Error {
        Error::Core {
            actor: self.path(),
            source,
        }
    }

    fn not_found(&self, name: &WebhookName) -> Error {
        self.core(extensor_core::Error::Domain(aggregate::refuse(
            "webhooks",
            "active",
            "webhook_not_found",
            format!("no webhook `{name}`"),
        )))
    }

    async fn execute(&mut self, command: WebhookCommand, meta: &EventMeta) -> Result<usize, Error> {
        let stream = registry_stream(&self.tenant);
        let executed = aggregate::execute_from(
            &*self.config.store,
            &stream,
            self.registry.clone(),
            &command,
            meta,
            SnapshotPolicy::DEFAULT,
        )
        .await
        .map_err(|e| self.core(e))?;
        self.registry = executed.state;
        Ok(executed.events)
    }

    /// `If-Match`: the live webhook `name` must be at `expected`.
    fn check_revision(&self, name: &WebhookName, expected: Option<u32>) -> Result<(), Error> {
        let Some(expected) = expected else {
            return Ok(());
        };
        match self.registry.state.get(name).map(|w| w.revision) {
            Some(current) if current == expected => Ok(()),
            Some(current) => Err(Error::Conflict {
                code: "precondition_failed",
                message: format!(
                    "webhook `{name}` is at revision {current}, not {expected} (If-Match): \
                     read it again and reapply your change"
                ),
            }),
            None => Err(Error::Conflict {
                code: "precondition_failed",
                message: format!(
                    "webhook `{name}` does not exist, so it is not at revision {expected} (If-Match)"
                ),
            }),
        }
    }

    async fn apply(
        &mut self,
        myself: &ActorRef<DispatcherMsg>,
        name: WebhookName,
        source: WebhookSource,
        mode: ApplyMode,
        meta: &EventMeta,
    ) -> Result<Applied, Error> {
        let secrets = self.tenant_secrets().await?;
        let known = secrets.keys().cloned().collect();
        let spec = source.validate(&known).map_err(|p| self.core(invalid(p)))?;
        // The secrets must also make a usable target (a URL, `whsec_` keys,
        // header values), or every delivery would fail later.
        super::attempt::resolve_target(&spec.delivery, &secrets).map_err(|why| {
            let problem = FieldProblem::new(DECLARATION_FILE, format!("delivery: {why}"));
            self.core(invalid(vec![problem]))
        })?;
        let revision = self
            .registry
            .state
            .webhooks
            .get(&name)
            .map_or(1, |w| w.revision + 1);
        super::code::prepare(
            &self.config.sandbox,
            self.tenant.as_str(),
            &name,
            revision,
            &spec,
            &source.files,
        )
        .await
        .map_err(|p| self.core(invalid(p)))?;
        let existing = self.registry.state.get(&name).cloned();
        let change = match &existing {
            None => Change::Created,
            Some(w) if w.digest == source.digest() => Change::Unchanged,
            Some(_) => Change::Updated,
        };
        if mode == ApplyMode::DryRun || change == Change::Unchanged {
            return Ok(Applied {
                change,
                record: existing,
            });
        }
        let command = WebhookCommand::Declare {
            tenant: self.tenant.clone(),
            name: name.clone(),
            source,
            known_secrets: known,
            at: Utc::now(),
        };
        self.execute(command, meta).await?;
        let record = self
            .registry
            .state
            .get(&name)
            .cloned()
            .expect("just declared");
        self.refresh_endpoint(myself, &name, &record).await?;
        self.publish_routes();
        Ok(Applied {
            change,
            record: Some(record),
        })
    }

    /// An endpoint saw a 410 or too many failures in a row.
    async fn auto_disable(&mut self, name: WebhookName, reason: String) {
        let meta = EventMeta::new(Some(self.tenant.clone()), Principal::system());
        if let Err(e) = self.set_enabled(name.clone(), Some(reason), &meta).await {
            tracing::error!(webhook = %name, error = %e, "could not record webhook.disabled");
        }
    }

    async fn send_test(&self, name: &WebhookName) -> Result<DeliveryId, Error> {
        let actor = self.endpoint(name)?;
        call(
            &self.path(),
            &actor,
            |reply| EndpointMsg::SendTest { reply },
            ENDPOINT_CALL_TIMEOUT_MS,
        )
        .await?
    }

    async fn stats(&self, name: &WebhookName) -> Result<EndpointStats, Error> {
        let actor = self.endpoint(name)?;
        call(
            &self.path(),
            &actor,
            |reply| EndpointMsg::Stats { reply },
            ENDPOINT_CALL_TIMEOUT_MS,
        )
        .await
    }

    /// A child's backoff delay is over: start it again (if still declared).
    async fn restart_endpoint(&mut self, myself: &ActorRef<DispatcherMsg>, name: WebhookName) {
        if self.registry.state.get(&name).is_some()
            && let Err(e) = self.spawn_endpoint(myself, &name).await
        {
            tracing::error!(webhook = %name, error = %e, "endpoint restart failed");
            if let Some(c) = self.children.get_mut(&name) {
                c.failed = Some(e.to_string());
            }
        }
        self.publish_routes();
    }

    /// The tenant's secrets: a `${SECRET:NAME}` must name one at apply
    /// time, not fail later at delivery.
    async fn tenant_secrets(&self) -> Result<BTreeMap<String, String>, Error> {
        let secrets = self
            .config
            .secrets
            .secrets(&self.tenant)
            .await
            .map_err(|e| {
                self.core(extensor_core::Error::InvalidValue {
                    what: "tenant secrets",
                    value: self.tenant.to_string(),
                    reason: e,
                })
            })?;
        Ok(secrets)
    }

    /// Hands a new revision to the webhook's running endpoint, or starts one.
    async fn refresh_endpoint(
        &mut self,
        myself: &ActorRef<DispatcherMsg>,
        name: &WebhookName,
        record: &WebhookRecord,
    ) -> Result<(), Error> {
        match self.children.get(name).and_then(|c| c.actor.clone()) {
            Some(actor) => {
                let r = Box::new(record.clone());
                call(
                    &self.path(),
                    &actor,
                    |reply| EndpointMsg::Update { record: r, reply },
                    ENDPOINT_CALL_TIMEOUT_MS,
                )
                .await??;
                Ok(())
            }
            None => self.spawn_endpoint(myself, name).await,
        }
    }

    async fn spawn_endpoint(
        &mut self,
        myself: &ActorRef<DispatcherMsg>,
        name: &WebhookName,
    ) -> Result<(), Error> {
        let Some(record) = self.registry.state.get(name).cloned() else {
            return Ok(());
        };
        let args = EndpointArgs {
            tenant: self.tenant.clone(),
            name: name.clone(),
            record,
            config: self.config.clone(),
            dispatcher: myself.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, Endpoint, args, myself.get_cell())
            .await
            .map_err(|e| Error::Spawn {
                actor: format!("{}/{name}", self.path()),
                reason: e.to_string(),
            })?;
        self.by_actor.insert(actor.get_id(), name.clone());
        let child = self.children.entry(name.clone()).or_insert_with(|| Child {
            actor: None,
            history: FailureHistory::default(),
            failed: None,
        });
        child.actor = Some(actor);
        child.failed = None;
        Ok(())
    }

    /// Gives the follower the current routing table.
    fn publish_routes(&self) {
        let mut routes = Vec::new();
        for (name, w) in &self.registry.state.webhooks {
            if w.status == WebhookStatus::Deleted {
                continue;
            }
            let Some(child) = self.children.get(name) else {
                continue;
            };
            if child.failed.is_some() {
                continue;
            }
            let Ok(spec) = WebhookSpec::parse(&w.source.yaml) else {
                continue;
            };
            routes.push(Route {
                name: name.clone(),
                spec: Arc::new(spec),
                declared_at: w.declared_at,
                active: w.status == WebhookStatus::Active,
                actor: child.actor.clone(),
            });
        }
        *self
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(routes);
    }

    async fn delete(&mut self, name: WebhookName, meta: &EventMeta) -> Result<(), Error> {
        self.execute(WebhookCommand::Delete { name: name.clone() }, meta)
            .await?;
        if let Some(child) = self.children.remove(&name)
            && let Some(actor) = child.actor
        {
            self.by_actor.remove(&actor.get_id());
            actor.stop(Some("webhook deleted".into()));
        }
        self.publish_routes();
        Ok(())
    }

    async fn set_enabled(
        &mut self,
        name: WebhookName,
        disabled: Option<String>,
        meta: &EventMeta,
    ) -> Result<(), Error> {
        let active = disabled.is_none();
        let command = match disabled {
            None => WebhookCommand::Enable { name: name.clone() },
            Some(reason) => WebhookCommand::Disable {
                name: name.clone(),
                reason,
            },
        };
        self.execute(command, meta).await?;
        if let Some(actor) = self.children.get(&name).and_then(|c| c.actor.clone()) {
            let _ = actor.send_message(EndpointMsg::SetActive(active));
        }
        self.publish_routes();
        Ok(())
    }

    fn endpoint(&self, name: &WebhookName) -> Result<ActorRef<EndpointMsg>, Error> {
        self.registry
            .state
            .get(name)
            .ok_or_else(|| self.not_found(name))?;
        let child = self
            .children
            .get(name)
            .ok_or_else(|| self.not_found(name))?;
        match (&child.actor, &child.failed) {
            (Some(a), _) => Ok(a.clone()),
            (None, Some(why)) => Err(Error::Failed {
                actor: format!("{}/{name}", self.path()),
                last_error: why.clone(),
            }),
            (None, None) => Err(Error::Stopped {
                actor: format!("{}/{name}", self.path()),
            }),
        }
    }

    async fn redeliver(&self, name: &WebhookName, of: DeliveryId) -> Result<DeliveryId, Error> {
        let actor = self.endpoint(name)?;
        let found = super::query::delivery(&*self.config.store, &self.tenant, name, &of)
            .await
            .map_err(|e| self.core(e))?;
        let Some(d) = found else {
            return Err(self.core(extensor_core::Error::Domain(aggregate::refuse(
                "delivery",
                "absent",
                "delivery_not_found",
                format!("no delivery {of} of webhook `{name}`"),
            ))));
        };
        if d.created.origin == Origin::Test {
            return Err(self.core(extensor_core::Error::Domain(aggregate::refuse(
                "delivery",
                d.status.as_str(),
                "not_redeliverable",
                "a test delivery is not redelivered: send a new test",
            ))));
        }
        let event = load_event(&*self.config.store, &self.tenant, d.created.event_position)
            .await
            .map_err(|e| self.core(e))?;
        let ev = Arc::new(event);
        call(
            &self.path(),
            &actor,
            |reply| EndpointMsg::Redeliver {
                of,
                event: ev,
                reply,
            },
            ENDPOINT_CALL_TIMEOUT_MS,
        )
        .await?
    }

    async fn replay(
        &self,
        name: &WebhookName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let actor = self.endpoint(name)?;
        let record = self
            .registry
            .state
            .get(name)
            .ok_or_else(|| self.not_found(name))?;
        let spec = WebhookSpec::parse(&record.source.yaml).map_err(|_| self.not_found(name))?;
        let filter = ReadFilter {
            stream: Some(StreamId::business_events(&self.tenant)),
            recorded_from: Some(from),
            recorded_before: Some(to),
            ..ReadFilter::default()
        };
        let mut after = 0;
        let mut total = 0;
        loop {
            let page = self
                .config
                .store
                .read_all(after, filter.clone(), BATCH_EVENTS_MAX)
                .await
                .map_err(|e| self.core(e))?;
            let Some(last) = page.last() else { break };
            after = last.position;
            let matched: Vec<Arc<RecordedEvent>> = page
                .iter()
                .filter(|e| matches_spec(&spec, e, &self.tenant))
                .map(|e| Arc::new(e.clone()))
                .collect();
            if total + matched.len() > REPLAY_EVENTS_MAX {
                return Err(self.core(extensor_core::Error::InvalidValue {
                    what: "replay range",
                    value: format!("{from} .. {to}"),
                    reason: format!(
                        "more than {REPLAY_EVENTS_MAX} matching events; replay a shorter range"
                    ),
                }));
            }
            if !matched.is_empty() {
                let events = Arc::new(matched);
                total += call(
                    &self.path(),
                    &actor,
                    |reply| EndpointMsg::Deliver {
                        events,
                        origin: Origin::Replay,
                        reply,
                    },
                    DELIVER_CALL_TIMEOUT_MS,
                )
                .await??;
            }
            if page.len() < BATCH_EVENTS_MAX {
                break;
            }
        }
        Ok(total)
    }

    fn child_stopped(
        &mut self,
        myself: &ActorRef<DispatcherMsg>,
        id: ActorId,
        error: Option<String>,
    ) {
        let Some(name) = self.by_actor.remove(&id) else {
            return;
        };
        let Some(child) = self.children.get_mut(&name) else {
            return;
        };
        child.actor = None;
        let Some(error) = error else { return };
        tracing::warn!(tenant = %self.tenant, webhook = %name, %error, "webhook endpoint failed");
        match child.history.record(&self.config.restart, Utc::now()) {
            RestartDecision::RestartAfter(delay) => {
                myself.send_after(delay, move || DispatcherMsg::Restart { name });
            }
            RestartDecision::GiveUp => {
                child.failed = Some(error);
                self.publish_routes();
            }
        }
    }
}

/// Reads one of the tenant's business events by position.
pub async fn load_event(
    store: &dyn EventStore,
    tenant: &TenantId,
    position: u64,
) -> Result<RecordedEvent, extensor_core::Error> {
    let filter = ReadFilter {
        stream: Some(StreamId::business_events(tenant)),
        position_max: Some(position),
        ..ReadFilter::default()
    };
    let found = store
        .read_all(position.saturating_sub(1), filter, 1)
        .await?;
    found
        .into_iter()
        .next()
        .ok_or_else(|| extensor_core::Error::InvalidValue {
            what: "event position",
            value: position.to_string(),
            reason: "no event of this tenant there".into(),
        })
}

async fn load_cursor(
    store: &dyn EventStore,
    tenant: &TenantId,
) -> Result<u64, extensor_core::Error> {
    let stream = cursor_stream(tenant);
    let Some(rev) = store.stream_revision(stream.clone()).await? else {
        return Ok(0);
    };
    let last = store.read_stream(stream, rev, 1).await?;
    let position = last
        .first()
        .and_then(|e| serde_json::from_str::<Value>(e.payload.get()).ok())
        .and_then(|v| v.get("position").and_then(Value::as_u64))
        .unwrap_or(0);
    Ok(position)
}

async fn save_cursor(
    store: &dyn EventStore,
    tenant: &TenantId,
    position: u64,
) -> Result<(), extensor_core::Error> {
    let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
    let ev = NewEvent::new(
        CURSOR_EVENT,
        1,
        meta,
        &serde_json::json!({ "position": position }),
    )?;
    store
        .append(cursor_stream(tenant), ExpectedRevision::Any, vec![ev])
        .await
        .map(drop)
}

/// The follower: reads the tenant's events from `after` and hands each
/// batch to the matching endpoints, saving the cursor now and then.
async fn follow(
    store: Arc<dyn EventStore>,
    tenant: TenantId,
    after: u64,
    routes: Routes,
    cursor_every: u64,
    retry_ms: u64,
    dispatcher: ActorRef<DispatcherMsg>,
) {
    let filter = ReadFilter {
        stream: Some(StreamId::business_events(&tenant)),
        ..ReadFilter::default()
    };
    let mut batches = store
        .subscribe_all(after, filter)
        .ready_chunks(BATCH_EVENTS_MAX);
    let (mut unsaved, mut saved_at, mut last) = (0u64, Instant::now(), after);
    loop {
        let next =
            tokio::time::timeout(Duration::from_millis(CURSOR_SAVE_MS), batches.next()).await;
        let batch = match next {
            Err(_idle) => Vec::new(),
            Ok(None) => return,
            Ok(Some(b)) => b,
        };
        let mut events = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(ev) => events.push(Arc::new(ev)),
                Err(e) => {
                    let _ = dispatcher.send_message(DispatcherMsg::FollowerFailed {
                        error: e.to_string(),
                    });
                    return;
                }
            }
        }
        if let Some(l) = events.last() {
            last = l.position;
            unsaved += events.len() as u64;
            hand_over(&routes, &tenant, &events, retry_ms).await;
        }
        let due = unsaved >= cursor_every
            || (unsaved > 0 && saved_at.elapsed() >= Duration::from_millis(CURSOR_SAVE_MS));
        if due {
            match save_cursor(&*store, &tenant, last).await {
                Ok(()) => (unsaved, saved_at) = (0, Instant::now()),
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "webhook cursor not saved; will retry")
                }
            }
        }
    }
}

/// Hands `events` to every matching endpoint, all endpoints at once.
async fn hand_over(
    routes: &Routes,
    tenant: &TenantId,
    events: &[Arc<RecordedEvent>],
    retry_ms: u64,
) {
    let table = routes
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let calls = table.iter().filter_map(|route| {
        let matched: Vec<Arc<RecordedEvent>> = events
            .iter()
            .filter(|e| route.matches(e, tenant))
            .cloned()
            .collect();
        (!matched.is_empty())
            .then(|| deliver_with_retries(routes, route.name.clone(), Arc::new(matched), retry_ms))
    });
    futures::future::join_all(calls).await;
}

async fn deliver_with_retries(
    routes: &Routes,
    name: WebhookName,
    events: Arc<Vec<Arc<RecordedEvent>>>,
    retry_ms: u64,
) {
    let mut unavailable = 0u32;
    while unavailable < FOLLOWER_RETRIES_MAX {
        let actor = {
            let table = routes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match table.iter().find(|r| r.name == name) {
                None => return,
                Some(r) if !r.active => return,
                Some(r) => r.actor.clone(),
            }
        };
        if let Some(actor) = actor {
            let events = events.clone();
            let path = format!("webhook endpoint {name}");
            match call(
                &path,
                &actor,
                |reply| EndpointMsg::Deliver {
                    events,
                    origin: Origin::Event,
                    reply,
                },
                DELIVER_CALL_TIMEOUT_MS,
            )
            .await
            {
                Ok(Ok(_)) => return,
                // A full backlog pauses reading; it never counts toward
                // skipping the batch.
                Ok(Err(Error::Backpressure { .. } | Error::BacklogFull { .. })) => {}
                Ok(Err(e)) | Err(e) => {
                    unavailable += 1;
                    tracing::debug!(webhook = %name, error = %e, "endpoint refused a batch; retrying")
                }
            }
        } else {
            unavailable += 1;
        }
        tokio::time::sleep(Duration::from_millis(retry_ms)).await;
    }
    tracing::error!(webhook = %name, events = events.len(), "endpoint unavailable; this batch skipped it");
}

impl Actor for WebhookDispatcher {
    type Msg = DispatcherMsg;
    type State = DispatcherState;
    type Arguments = DispatcherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<DispatcherMsg>,
        args: DispatcherArgs,
    ) -> Result<DispatcherState, ActorProcessingErr> {
        let store = args.config.store.clone();
        let registry = aggregate::load::<TenantWebhooks>(
            &*store,
            &registry_stream(&args.tenant),
            AsOf::Latest,
        )
        .await?;
        let cursor = load_cursor(&*store, &args.tenant).await?;
        let mut state = DispatcherState {
            tenant: args.tenant,
            config: args.config,
            registry,
            children: BTreeMap::new(),
            by_actor: HashMap::new(),
            routes: Arc::default(),
            cursor,
            follower: None,
        };
        let names: Vec<WebhookName> = state
            .registry
            .state
            .webhooks
            .iter()
            .filter(|(_, w)| w.status != WebhookStatus::Deleted)
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            state.spawn_endpoint(&myself, &name).await?;
        }
        state.publish_routes();
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<DispatcherMsg>,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        let task = follow(
            state.config.store.clone(),
            state.tenant.clone(),
            state.cursor,
            state.routes.clone(),
            state.config.cursor_every_events,
            state.config.tick_ms.max(1) * FOLLOWER_RETRY_TICKS,
            myself,
        );
        state.follower = Some(tokio::spawn(task));
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<DispatcherMsg>,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(f) = state.follower.take() {
            f.abort();
        }
        for child in state.children.values() {
            if let Some(a) = &child.actor {
                a.stop(Some("tenant webhooks stopping".into()));
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatcherMsg>,
        msg: DispatcherMsg,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatcherMsg::Apply {
                name,
                source,
                mode,
                if_revision,
                meta,
                reply,
            } => {
                let applied = match state.check_revision(&name, if_revision) {
                    Ok(()) => state.apply(&myself, name, source, mode, &meta).await,
                    Err(e) => Err(e),
                };
                let _ = reply.send(applied);
            }
            DispatcherMsg::Delete { name, meta, reply } => {
                let _ = reply.send(state.delete(name, &meta).await);
            }
            DispatcherMsg::SetEnabled {
                name,
                disabled,
                meta,
                reply,
            } => {
                let _ = reply.send(state.set_enabled(name, disabled, &meta).await);
            }
            DispatcherMsg::AutoDisable { name, reason } => state.auto_disable(name, reason).await,
            DispatcherMsg::Registry { reply } => {
                let _ = reply.send(state.registry.state.clone());
            }
            DispatcherMsg::Redeliver {
                name,
                delivery,
                reply,
            } => {
                let _ = reply.send(state.redeliver(&name, delivery).await);
            }
            DispatcherMsg::Replay {
                name,
                from,
                to,
                reply,
            } => {
                let _ = reply.send(state.replay(&name, from, to).await);
            }
            DispatcherMsg::SendTest { name, reply } => {
                let _ = reply.send(state.send_test(&name).await);
            }
            DispatcherMsg::Stats { name, reply } => {
                let _ = reply.send(state.stats(&name).await);
            }
            DispatcherMsg::Restart { name } => state.restart_endpoint(&myself, name).await,
            DispatcherMsg::FollowerFailed { error } => {
                return Err(format!("webhook follower: {error}").into());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<DispatcherMsg>,
        evt: SupervisionEvent,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                state.child_stopped(&myself, cell.get_id(), Some(err.to_string()));
                state.publish_routes();
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.child_stopped(&myself, cell.get_id(), None)
            }
            _ => {}
        }
        Ok(())
    }
}
