//! One webhook's deliveries, as an actor: it creates deliveries durably for
//! the events it is handed, keeps the pending ones (ready now, or scheduled
//! for a retry), runs attempts as tasks under the endpoint's concurrency and
//! rate caps, applies what they recorded, and asks the dispatcher to disable
//! the webhook after a 410 or too many failures in a row.
//!
//! At start it rebuilds from its deliveries stream: every delivery not yet
//! delivered, failed or skipped is pending again, with the same id (the
//! `webhook-id`), so a restart forgets nothing and receivers can deduplicate.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use extensor_core::aggregate::{Aggregate, DomainEvent};
use extensor_core::event::{EventMeta, NewEvent, Principal, RecordedEvent};
use extensor_core::ids::{DeliveryId, EventId, TenantId};
use extensor_core::store::{APPEND_EVENTS_MAX, ExpectedRevision, READ_EVENTS_MAX};
use extensor_core::webhook::deliveries_stream;
use extensor_core::webhook::delivery::{Created, Delivery, DeliveryCommand, DeliveryEvent, Origin};
use extensor_core::webhook::registry::{WebhookName, WebhookRecord, WebhookStatus};
use extensor_core::webhook::retry::{AttemptOutcome, Verdict, classify};
use extensor_core::webhook::spec::WebhookSpec;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use super::WebhookConfig;
use super::attempt::{self, AttemptCx};
use super::dispatcher::DispatcherMsg;
use crate::error::Error;

/// After the store refused to record an attempt, try that delivery again
/// this much later.
const STORE_RETRY_MS: u64 = 1_000;
/// What one pending delivery costs in memory besides its event (ids, status,
/// queue entries): counted so a backlog of events evicted from memory (after
/// a restart) is bounded in bytes too.
pub const PENDING_DELIVERY_BYTES: usize = 512;

/// Bytes one pending delivery holds: the overhead plus its event, while the
/// event is kept in memory.
fn held_bytes(event: Option<&Arc<RecordedEvent>>) -> usize {
    PENDING_DELIVERY_BYTES
        + event.map_or(0, |e| {
            e.payload.get().len() + e.event_type.len() + e.stream.as_str().len()
        })
}

pub struct Endpoint;

pub struct EndpointArgs {
    pub tenant: TenantId,
    pub name: WebhookName,
    pub record: WebhookRecord,
    pub config: WebhookConfig,
    pub dispatcher: ActorRef<DispatcherMsg>,
}

struct Pending {
    delivery: Delivery,
    /// The event, while it is still in memory (not after a restart).
    event: Option<Arc<RecordedEvent>>,
}

/// Counters for the ops view and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub pending: usize,
    pub in_flight: usize,
    pub scheduled: usize,
    pub handled_through: u64,
    pub consecutive_failures: u32,
    pub active: bool,
    /// Bytes the pending deliveries hold (see `held_bytes`).
    pub pending_bytes: usize,
    /// Batches refused because the backlog was full (by count or bytes).
    pub backlog_refusals: u64,
}

pub struct EndpointState {
    tenant: TenantId,
    name: WebhookName,
    config: WebhookConfig,
    dispatcher: ActorRef<DispatcherMsg>,
    revision: u32,
    cx: Arc<AttemptCx>,
    spec: Arc<WebhookSpec>,
    active: bool,
    pending: HashMap<DeliveryId, Pending>,
    pending_bytes: usize,
    backlog_refusals: u64,
    ready: VecDeque<DeliveryId>,
    scheduled: BTreeSet<(DateTime<Utc>, DeliveryId)>,
    in_flight: HashSet<DeliveryId>,
    /// Every event at or before this position was handed to this endpoint.
    handled_through: u64,
    consecutive_failures: u32,
    tokens: f64,
    refilled: Instant,
    ticker: Option<JoinHandle<()>>,
}

pub enum EndpointMsg {
    /// Creates deliveries for `events` (already matched); answers how many
    /// were created.
    Deliver {
        events: Arc<Vec<Arc<RecordedEvent>>>,
        origin: Origin,
        reply: RpcReplyPort<Result<usize, Error>>,
    },
    /// A new delivery of an earlier delivery's event.
    Redeliver {
        of: DeliveryId,
        event: Arc<RecordedEvent>,
        reply: RpcReplyPort<Result<DeliveryId, Error>>,
    },
    /// A delivery of a synthetic `webhook.test` event.
    SendTest {
        reply: RpcReplyPort<Result<DeliveryId, Error>>,
    },
    /// The webhook was re-declared: new code, target and caps.
    Update {
        record: Box<WebhookRecord>,
        reply: RpcReplyPort<Result<(), Error>>,
    },
    SetActive(bool),
    Stats {
        reply: RpcReplyPort<EndpointStats>,
    },
    /// Due retries and the rate budget.
    Tick,
    /// An attempt task finished; `Err` when nothing could be recorded.
    AttemptDone {
        id: DeliveryId,
        result: Result<Vec<DeliveryEvent>, String>,
    },
}

/// The attempt context of one declaration revision: its code installed and
/// its secrets resolved.
async fn build_cx(
    config: &WebhookConfig,
    tenant: &TenantId,
    name: &WebhookName,
    record: &WebhookRecord,
) -> Result<(Arc<AttemptCx>, Arc<WebhookSpec>), String> {
    let spec = extensor_core::webhook::WebhookSpec::parse(&record.source.yaml).map_err(|p| {
        format!(
            "stored declaration no longer parses: {}",
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let code = super::code::prepare(
        &config.sandbox,
        tenant.as_str(),
        name,
        record.revision,
        &spec,
        &record.source.files,
    )
    .await
    .map_err(|p| {
        format!(
            "stored code no longer loads: {}",
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let (target, redactor) = match config.secrets.secrets(tenant).await {
        Ok(secrets) => (
            attempt::resolve_target(&spec.delivery, &secrets),
            extensor_core::redact::Redactor::new(secrets.into_values()),
        ),
        Err(e) => (
            Err(format!("tenant secrets unavailable: {e}")),
            extensor_core::redact::Redactor::default(),
        ),
    };
    let cx = AttemptCx {
        tenant: tenant.clone(),
        name: name.clone(),
        store: config.store.clone(),
        stream: deliveries_stream(tenant, name),
        http: config.http.clone(),
        target,
        code,
        policy: spec.retry,
        redactor,
    };
    Ok((Arc::new(cx), Arc::new(spec)))
}

impl EndpointState {
    fn path(&self) -> String {
        format!("/tenants/{}/webhooks/{}", self.tenant, self.name)
    }

    /// Replays the deliveries stream: pending deliveries, the last event
    /// handed over, and the failures in a row.
    async fn rebuild(&mut self) -> Result<(), String> {
        let mut all: HashMap<DeliveryId, Delivery> = HashMap::new();
        let mut from = 0;
        loop {
            let page = self
                .config
                .store
                .read_stream(self.cx.stream.clone(), from, READ_EVENTS_MAX)
                .await
                .map_err(|e| e.to_string())?;
            for rec in &page {
                let ev = DeliveryEvent::decode(&rec.event_type, rec.schema_version, &rec.payload)
                    .map_err(|e| format!("position {}: {e}", rec.position))?;
                self.replay_one(&mut all, &ev, rec.position);
            }
            if page.len() < READ_EVENTS_MAX {
                break;
            }
            from += READ_EVENTS_MAX as u64;
        }
        for (id, delivery) in all {
            match delivery.next_attempt_at {
                Some(at) => {
                    self.scheduled.insert((at, id.clone()));
                }
                None => self.ready.push_back(id.clone()),
            }
            self.pending_bytes += held_bytes(None);
            self.pending.insert(
                id,
                Pending {
                    delivery,
                    event: None,
                },
            );
        }
        Ok(())
    }

    fn replay_one(
        &mut self,
        all: &mut HashMap<DeliveryId, Delivery>,
        ev: &DeliveryEvent,
        position: u64,
    ) {
        if let DeliveryEvent::Created(c) = ev
            && c.origin == Origin::Event
        {
            self.handled_through = self.handled_through.max(c.event_position);
        }
        if let DeliveryEvent::Attempted(a) = ev {
            self.count_outcome(&a.outcome);
        }
        let d = all.entry(ev.delivery_id().clone()).or_default();
        // At-least-once: an attempt task of a previous incarnation may have
        // recorded beside this one. Such an event is reported, not fatal.
        if let Err(why) = d.apply(ev) {
            tracing::warn!(stream = %self.cx.stream, position, %why, "skipping a delivery event that does not follow");
        }
        if d.status.is_final() {
            all.remove(ev.delivery_id());
        }
    }

    /// Failed attempts in a row, counting only the receiver's answers.
    fn count_outcome(&mut self, outcome: &AttemptOutcome) -> Option<Verdict> {
        let verdict = classify(outcome);
        match (outcome, verdict) {
            (_, Verdict::Delivered) => self.consecutive_failures = 0,
            (
                AttemptOutcome::Status { .. }
                | AttemptOutcome::Timeout
                | AttemptOutcome::Connection,
                _,
            ) => {
                self.consecutive_failures += 1;
            }
            _ => {}
        }
        Some(verdict)
    }

    async fn deliver(
        &mut self,
        events: &[Arc<RecordedEvent>],
        origin: &Origin,
    ) -> Result<usize, Error> {
        let fresh: Vec<Arc<RecordedEvent>> = events
            .iter()
            .filter(|e| *origin != Origin::Event || e.position > self.handled_through)
            .cloned()
            .collect();
        self.admit(&fresh)?;
        let created: Vec<Created> = fresh
            .iter()
            .map(|ev| self.new_delivery(&ev.event_id, &ev.event_type, ev.position, origin.clone()))
            .collect();
        let n = created.len();
        self.create(created, fresh.into_iter().map(Some).collect())
            .await?;
        if *origin == Origin::Event
            && let Some(last) = events.last()
        {
            self.handled_through = self.handled_through.max(last.position);
        }
        Ok(n)
    }

    /// Refuses a batch the backlog has no room for. A batch is taken whole
    /// or not at all, and an empty backlog takes any batch (so one batch
    /// larger than the byte cap still moves): the backlog holds at most
    /// `max(backlog_bytes_max, one batch)` bytes and `backlog_max` plus one
    /// batch deliveries.
    fn admit(&mut self, fresh: &[Arc<RecordedEvent>]) -> Result<(), Error> {
        if self.pending.is_empty() || fresh.is_empty() {
            return Ok(());
        }
        let bytes: usize = fresh.iter().map(|e| held_bytes(Some(e))).sum();
        let full = if self.pending.len() >= self.config.backlog_max {
            Some(("backlog_max", self.config.backlog_max))
        } else if self.pending_bytes + bytes > self.config.backlog_bytes_max {
            Some(("backlog_bytes_max", self.config.backlog_bytes_max))
        } else {
            None
        };
        match full {
            None => Ok(()),
            Some((limit, max)) => {
                self.backlog_refusals += 1;
                Err(Error::BacklogFull {
                    actor: self.path(),
                    limit,
                    max: max as u64,
                })
            }
        }
    }

    fn new_delivery(
        &self,
        event_id: &EventId,
        event_type: &str,
        position: u64,
        origin: Origin,
    ) -> Created {
        Created {
            delivery_id: DeliveryId::generate(),
            webhook_revision: self.revision,
            event_id: event_id.clone(),
            event_type: event_type.to_owned(),
            event_position: position,
            origin,
            at: Utc::now(),
        }
    }

    /// Appends the creations (durable before any attempt), then queues them.
    async fn create(
        &mut self,
        created: Vec<Created>,
        events: Vec<Option<Arc<RecordedEvent>>>,
    ) -> Result<(), Error> {
        let path = self.path();
        let core = |source: extensor_core::Error| Error::Core {
            actor: path.clone(),
            source,
        };
        let mut batch = Vec::with_capacity(created.len());
        let mut deliveries = Vec::with_capacity(created.len());
        for c in created {
            let mut d = Delivery::default();
            let evs = d
                .decide(&DeliveryCommand::Create(Box::new(c.clone())))
                .map_err(|e| core(e.into()))?;
            for e in &evs {
                d.apply(e).map_err(|reason| {
                    core(extensor_core::Error::InvalidValue {
                        what: "delivery",
                        value: c.delivery_id.to_string(),
                        reason,
                    })
                })?;
            }
            let meta = EventMeta {
                causation_id: Some(c.event_id.clone()),
                ..EventMeta::new(Some(self.tenant.clone()), Principal::system())
            };
            batch.extend(attempt::to_new_events(&evs, &meta).map_err(|reason| {
                core(extensor_core::Error::InvalidValue {
                    what: "delivery",
                    value: c.delivery_id.to_string(),
                    reason,
                })
            })?);
            deliveries.push(d);
        }
        for chunk in batch.chunks(APPEND_EVENTS_MAX) {
            let chunk: Vec<NewEvent> = chunk.to_vec();
            self.config
                .store
                .append(self.cx.stream.clone(), ExpectedRevision::Any, chunk)
                .await
                .map_err(core)?;
        }
        for (d, event) in deliveries.into_iter().zip(events) {
            let id = d.id.clone().expect("a created delivery has an id");
            metrics::counter!("extensor_webhook_deliveries_created_total").increment(1);
            self.ready.push_back(id.clone());
            self.pending_bytes += held_bytes(event.as_ref());
            self.pending.insert(id, Pending { delivery: d, event });
        }
        Ok(())
    }

    fn refill(&mut self) {
        let rate = f64::from(self.spec.delivery.rate_per_second);
        let elapsed = self.refilled.elapsed().as_secs_f64();
        self.refilled = Instant::now();
        // The bucket holds at most one second's worth: a burst after an idle
        // spell is capped at the per-second rate.
        self.tokens = (self.tokens + elapsed * rate).min(rate);
    }

    /// Starts attempts while the caps allow.
    fn pump(&mut self, myself: &ActorRef<EndpointMsg>) {
        if !self.active {
            return;
        }
        self.refill();
        let concurrency = self.spec.delivery.concurrency as usize;
        while self.in_flight.len() < concurrency && self.tokens >= 1.0 {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(p) = self.pending.get(&id) else {
                continue;
            };
            if !self.in_flight.insert(id.clone()) {
                continue;
            }
            self.tokens -= 1.0;
            let (cx, delivery, event) = (self.cx.clone(), p.delivery.clone(), p.event.clone());
            let me = myself.clone();
            tokio::spawn(async move {
                let result = attempt::run(cx, delivery, event).await;
                // The actor may have stopped; the attempt is recorded anyway.
                let _ = me.send_message(EndpointMsg::AttemptDone { id, result });
            });
        }
    }

    fn tick(&mut self, myself: &ActorRef<EndpointMsg>) {
        let now = Utc::now();
        while let Some(first) = self.scheduled.first() {
            if first.0 > now {
                break;
            }
            let (_, id) = self.scheduled.pop_first().expect("checked non-empty");
            self.ready.push_back(id);
        }
        self.pump(myself);
    }

    fn attempt_done(
        &mut self,
        myself: &ActorRef<EndpointMsg>,
        id: DeliveryId,
        result: Result<Vec<DeliveryEvent>, String>,
    ) {
        self.in_flight.remove(&id);
        let events = match result {
            Ok(events) => events,
            Err(why) => {
                tracing::warn!(webhook = %self.name, delivery = %id, %why, "attempt not recorded; retrying later");
                let at = Utc::now() + chrono::Duration::milliseconds(STORE_RETRY_MS as i64);
                self.scheduled.insert((at, id));
                return;
            }
        };
        let mut gone = false;
        for e in &events {
            if let DeliveryEvent::Attempted(a) = e {
                gone |= self.count_outcome(&a.outcome) == Some(Verdict::Gone);
                metrics::counter!("extensor_webhook_attempts_total", "outcome" => outcome_label(&a.outcome)).increment(1);
                metrics::histogram!("extensor_webhook_attempt_seconds")
                    .record(a.latency_ms as f64 / 1000.0);
            }
        }
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        for e in &events {
            if let Err(why) = p.delivery.apply(e) {
                tracing::error!(webhook = %self.name, delivery = %id, %why, "recorded event does not apply");
            }
        }
        if p.delivery.status.is_final() {
            metrics::counter!("extensor_webhook_deliveries_total", "status" => p.delivery.status.as_str()).increment(1);
            if let Some(gone) = self.pending.remove(&id) {
                self.pending_bytes -= held_bytes(gone.event.as_ref()).min(self.pending_bytes);
            }
        } else if let Some(at) = p.delivery.next_attempt_at {
            self.scheduled.insert((at, id));
        }
        let limit = self.spec.retry.disable_after_failures;
        if gone {
            self.disable("the receiver answered 410 Gone".into());
        } else if self.active && self.consecutive_failures >= limit {
            self.disable(format!(
                "{} failed attempts in a row",
                self.consecutive_failures
            ));
        }
        self.pump(myself);
    }

    fn disable(&mut self, reason: String) {
        if !self.active {
            return;
        }
        self.active = false;
        tracing::warn!(webhook = %self.name, %reason, "disabling webhook");
        let _ = self.dispatcher.send_message(DispatcherMsg::AutoDisable {
            name: self.name.clone(),
            reason,
        });
    }

    fn stats(&self) -> EndpointStats {
        EndpointStats {
            pending: self.pending.len(),
            in_flight: self.in_flight.len(),
            scheduled: self.scheduled.len(),
            handled_through: self.handled_through,
            consecutive_failures: self.consecutive_failures,
            active: self.active,
            pending_bytes: self.pending_bytes,
            backlog_refusals: self.backlog_refusals,
        }
    }

    async fn one_delivery(
        &mut self,
        c: Created,
        event: Option<Arc<RecordedEvent>>,
    ) -> Result<DeliveryId, Error> {
        let id = c.delivery_id.clone();
        self.create(vec![c], vec![event]).await?;
        Ok(id)
    }

    async fn update(&mut self, record: &WebhookRecord) -> Result<(), Error> {
        let (cx, spec) = build_cx(&self.config, &self.tenant, &self.name, record)
            .await
            .map_err(|reason| Error::Spawn {
                actor: self.path(),
                reason,
            })?;
        self.cx = cx;
        self.spec = spec;
        self.revision = record.revision;
        Ok(())
    }
}

fn outcome_label(o: &AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Status { status } if (200..300).contains(status) => "2xx",
        AttemptOutcome::Status { status } if (400..500).contains(status) => "4xx",
        AttemptOutcome::Status { status } if (500..600).contains(status) => "5xx",
        AttemptOutcome::Status { .. } => "other_status",
        AttemptOutcome::Timeout => "timeout",
        AttemptOutcome::Connection => "connection",
        AttemptOutcome::Refused => "refused",
        AttemptOutcome::Transform => "transform",
    }
}

impl Actor for Endpoint {
    type Msg = EndpointMsg;
    type State = EndpointState;
    type Arguments = EndpointArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<EndpointMsg>,
        args: EndpointArgs,
    ) -> Result<EndpointState, ActorProcessingErr> {
        let (cx, spec) = build_cx(&args.config, &args.tenant, &args.name, &args.record).await?;
        let tick = Duration::from_millis(args.config.tick_ms.max(1));
        let mut state = EndpointState {
            tenant: args.tenant,
            name: args.name,
            dispatcher: args.dispatcher,
            revision: args.record.revision,
            active: args.record.status == WebhookStatus::Active,
            tokens: f64::from(spec.delivery.rate_per_second),
            refilled: Instant::now(),
            cx,
            spec,
            config: args.config,
            pending: HashMap::new(),
            pending_bytes: 0,
            backlog_refusals: 0,
            ready: VecDeque::new(),
            scheduled: BTreeSet::new(),
            in_flight: HashSet::new(),
            handled_through: 0,
            consecutive_failures: 0,
            ticker: None,
        };
        state.rebuild().await?;
        state.ticker = Some(myself.send_interval(tick, || EndpointMsg::Tick));
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<EndpointMsg>,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        state.pump(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<EndpointMsg>,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<EndpointMsg>,
        msg: EndpointMsg,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EndpointMsg::Deliver {
                events,
                origin,
                reply,
            } => {
                let _ = reply.send(state.deliver(&events, &origin).await);
                state.pump(&myself);
            }
            EndpointMsg::Redeliver { of, event, reply } => {
                let c = state.new_delivery(
                    &event.event_id,
                    &event.event_type,
                    event.position,
                    Origin::Redeliver { of },
                );
                let _ = reply.send(state.one_delivery(c, Some(event)).await);
                state.pump(&myself);
            }
            EndpointMsg::SendTest { reply } => {
                let c = state.new_delivery(
                    &EventId::generate(),
                    attempt::TEST_EVENT_TYPE,
                    0,
                    Origin::Test,
                );
                let _ = reply.send(state.one_delivery(c, None).await);
                state.pump(&myself);
            }
            EndpointMsg::Update { record, reply } => {
                let _ = reply.send(state.update(&record).await);
                state.pump(&myself);
            }
            EndpointMsg::SetActive(active) => {
                if active && !state.active {
                    state.consecutive_failures = 0;
                }
                state.active = active;
                state.pump(&myself);
            }
            EndpointMsg::Stats { reply } => {
                let _ = reply.send(state.stats());
            }
            EndpointMsg::Tick => state.tick(&myself),
            EndpointMsg::AttemptDone { id, result } => state.attempt_done(&myself, id, result),
        }
        Ok(())
    }
}
