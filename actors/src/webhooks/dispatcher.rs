//! One tenant's webhooks: the registry aggregate, one [`Endpoint`] child per
//! live webhook (restarted with backoff per the restart policy), and the
//! follower task that watches the tenant's business events and wakes the
//! endpoints they concern. The follower hands over no work and keeps no
//! cursor: each endpoint reads the events itself from its own durable mark,
//! so an endpoint that is down, restarting, failed or full only holds up
//! itself, and no event is ever passed over for it (backpressure pauses;
//! it never skips).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{self, AsOf, Loaded, SnapshotPolicy};
use extensor_core::error::FieldProblem;
use extensor_core::event::{EventMeta, Principal, RecordedEvent, StreamId};
use extensor_core::ids::{DeliveryId, TenantId};
use extensor_core::store::{EventStore, ReadFilter};
use extensor_core::webhook::delivery::Origin;
use extensor_core::webhook::registry::{
    DECLARATION_FILE, TenantWebhooks, WebhookCommand, WebhookName, WebhookRecord, WebhookSource,
    WebhookStatus,
};
use extensor_core::webhook::registry_stream;
use extensor_core::webhook::spec::{Filter, WebhookSpec};
use futures::StreamExt;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::endpoint::{Endpoint, EndpointArgs, EndpointMsg, EndpointStats};
use super::{BATCH_EVENTS_MAX, DELIVER_CALL_TIMEOUT_MS, WebhookConfig};
use crate::error::Error;
use crate::supervision::{
    ActorInfo, ActorKind, ActorStatus, FailureHistory, RestartDecision, call,
};

/// Events one replay request may turn into deliveries.
pub const REPLAY_EVENTS_MAX: usize = 10_000;
/// Timeout of the dispatcher's calls to an endpoint other than deliveries.
const ENDPOINT_CALL_TIMEOUT_MS: u64 = 10_000;
/// Every endpoint is woken at least this often while the tenant has new
/// events, matching or not, so the read marks of webhooks that rarely
/// match keep moving (a restart then re-reads little).
const WAKE_ALL_MS: u64 = 1_000;

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
    pub actor: Option<ActorRef<EndpointMsg>>,
    /// Set while a wake is queued for the endpoint.
    pub wake: Arc<AtomicBool>,
}

impl Route {
    /// Queues one `Wake` unless one is already queued.
    fn wake(&self) {
        if let Some(actor) = &self.actor
            && !self.wake.swap(true, Ordering::SeqCst)
            && actor.send_message(EndpointMsg::Wake).is_err()
        {
            self.wake.store(false, Ordering::SeqCst);
        }
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
    wake: Arc<AtomicBool>,
    restarts: u32,
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
    /// The log's head when the dispatcher started, read before any endpoint
    /// started reading: the follower watches from here, so no event falls
    /// between an endpoint's first read and the follower.
    head: u64,
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
    /// From an endpoint: a 410, or its receiver failing without a success
    /// for the configured period.
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
    /// An operator restart: forget the endpoint's failures, stop it if it
    /// runs, start a new one.
    RestartEndpoint {
        name: WebhookName,
        reply: RpcReplyPort<Result<(), Error>>,
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
            self.config.warm.as_ref(),
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

    /// An endpoint saw a 410, or a receiver failing for the whole period.
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
        let wake = self
            .children
            .get(name)
            .map_or_else(Arc::default, |c| c.wake.clone());
        wake.store(false, Ordering::SeqCst);
        let args = EndpointArgs {
            tenant: self.tenant.clone(),
            name: name.clone(),
            record,
            config: self.config.clone(),
            dispatcher: myself.clone(),
            wake: wake.clone(),
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
            wake,
            restarts: 0,
            history: FailureHistory::default(),
            failed: None,
        });
        child.actor = Some(actor);
        child.failed = None;
        self.show(name, ActorStatus::Running, None);
        Ok(())
    }

    fn endpoint_path(&self, name: &WebhookName) -> String {
        format!("{}/{name}", self.path())
    }

    /// The endpoint's record in the ops tree (with an engine's board).
    fn show(&self, name: &WebhookName, status: ActorStatus, error: Option<&str>) {
        let Some(board) = &self.config.board else {
            return;
        };
        let path = self.endpoint_path(name);
        let previous = board.get(&path);
        let restarts = self.children.get(name).map_or(0, |c| c.restarts);
        let (last_error, last_error_at) = match error {
            Some(e) => (Some(e.to_owned()), Some(Utc::now())),
            None => previous
                .as_ref()
                .map_or((None, None), |p| (p.last_error.clone(), p.last_error_at)),
        };
        let started_at = match status {
            ActorStatus::Running => Some(Utc::now()),
            _ => previous.and_then(|p| p.started_at),
        };
        board.put(
            ActorInfo {
                path,
                kind: ActorKind::Service,
                tenant: Some(self.tenant.to_string()),
                status,
                started_at,
                restarts,
                queue_depth: 0,
                last_error,
                last_error_at,
            },
            None,
        );
    }

    /// An operator restart: the failure history starts afresh.
    async fn operator_restart(
        &mut self,
        myself: &ActorRef<DispatcherMsg>,
        name: WebhookName,
    ) -> Result<(), Error> {
        self.registry
            .state
            .get(&name)
            .ok_or_else(|| self.not_found(&name))?;
        if let Some(child) = self.children.get_mut(&name) {
            child.history.clear();
            if let Some(actor) = child.actor.take() {
                self.by_actor.remove(&actor.get_id());
                actor.stop(Some("operator restart".into()));
            }
        }
        let spawned = self.spawn_endpoint(myself, &name).await;
        self.publish_routes();
        spawned
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
            let Ok(spec) = WebhookSpec::parse(&w.source.yaml) else {
                continue;
            };
            routes.push(Route {
                name: name.clone(),
                spec: Arc::new(spec),
                actor: child.actor.clone(),
                wake: child.wake.clone(),
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
        if let Some(board) = &self.config.board {
            board.remove(&self.endpoint_path(&name));
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
        let Some(error) = error else {
            self.show(&name, ActorStatus::Stopped, None);
            return;
        };
        tracing::warn!(tenant = %self.tenant, webhook = %name, %error, "webhook endpoint failed");
        match child.history.record(&self.config.restart, Utc::now()) {
            RestartDecision::RestartAfter(delay) => {
                child.restarts += 1;
                self.show(&name, ActorStatus::Restarting, Some(&error));
                myself.send_after(delay, move || DispatcherMsg::Restart { name });
            }
            RestartDecision::GiveUp => {
                child.failed = Some(error.clone());
                self.show(&name, ActorStatus::Failed, Some(&error));
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

/// The follower: watches the tenant's events from `after` and wakes the
/// endpoints a batch concerns (every endpoint at least every
/// [`WAKE_ALL_MS`]). It holds no work: an endpoint reads its events itself.
async fn follow(
    store: Arc<dyn EventStore>,
    tenant: TenantId,
    after: u64,
    routes: Routes,
    dispatcher: ActorRef<DispatcherMsg>,
) {
    let filter = ReadFilter {
        stream: Some(StreamId::business_events(&tenant)),
        ..ReadFilter::default()
    };
    let mut batches = store
        .subscribe_all(after, filter)
        .ready_chunks(BATCH_EVENTS_MAX);
    let mut woke_all = Instant::now();
    while let Some(batch) = batches.next().await {
        let mut events = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(ev) => events.push(ev),
                Err(e) => {
                    let _ = dispatcher.send_message(DispatcherMsg::FollowerFailed {
                        error: e.to_string(),
                    });
                    return;
                }
            }
        }
        let all = woke_all.elapsed() >= Duration::from_millis(WAKE_ALL_MS);
        if all {
            woke_all = Instant::now();
        }
        let table = routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for route in table.iter() {
            if all || events.iter().any(|e| matches_spec(&route.spec, e, &tenant)) {
                route.wake();
            }
        }
    }
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
        let head = store.head_position().await?;
        let mut state = DispatcherState {
            tenant: args.tenant,
            config: args.config,
            registry,
            children: BTreeMap::new(),
            by_actor: HashMap::new(),
            routes: Arc::default(),
            head,
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
        // Endpoints catch up from their own marks at start.
        let task = follow(
            state.config.store.clone(),
            state.tenant.clone(),
            state.head,
            state.routes.clone(),
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
            DispatcherMsg::RestartEndpoint { name, reply } => {
                let _ = reply.send(state.operator_restart(&myself, name).await);
            }
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
            // A current endpoint fenced by a stale twin that claimed after
            // it (an old incarnation finishing its start after an operator
            // restart) is restarted like a failed one: the next claim wins,
            // and the stale one stops for good.
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let fenced = reason.filter(|r| r.starts_with(super::endpoint::FENCED));
                state.child_stopped(&myself, cell.get_id(), fenced);
                state.publish_routes();
            }
            _ => {}
        }
        Ok(())
    }
}
