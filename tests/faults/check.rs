//! The invariants, checked from outside: the tenant's event log read over
//! `GET /api/events`, what the receivers saw and what reached the relay.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::node::Api;
use super::receiver::Seen;
use super::report::{Counts, Violation};
use super::world::{JOB, ORDER, RETRY_ATTEMPTS, TICK, Timeline, World};

/// Events per page read from the log (the API's maximum).
const PAGE_EVENTS: u32 = 1_000;
/// A run still `scheduled` or `running` this long after its time is stuck
/// (the job takes milliseconds; its deadline is far longer than it needs).
const STUCK_AFTER_MS: i64 = 10_000;

/// The records of one delivery in `webhook_deliveries-<tenant>.<name>`.
const DELIVERY_TYPES: [&str; 5] = [
    "webhook.delivery_created",
    "webhook.delivery_attempted",
    "webhook.delivered",
    "webhook.failed",
    "webhook.delivery_skipped",
];

/// The tenant's log, read incrementally.
#[derive(Default)]
pub struct Log {
    after: u64,
    events: Vec<Value>,
}

impl Log {
    async fn catch_up(&mut self, api: &Api) -> Result<(), String> {
        loop {
            let path = format!("/api/events?after={}&limit={PAGE_EVENTS}", self.after);
            let page = api.get(&path).await.map_err(|e| e.to_string())?;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                return Ok(());
            }
            self.after = page["next_after"].as_u64().unwrap_or(self.after);
            self.events.extend(events);
        }
    }
}

#[derive(Default, Debug)]
struct Delivery {
    event_id: String,
    attempts: u64,
    outcome: Option<String>,
    reason: Option<String>,
}

#[derive(Default, Debug)]
struct Run {
    scheduled_for: Option<DateTime<Utc>>,
    started: u64,
    finals: Vec<String>,
    last: String,
    detail: String,
}

#[derive(Default, Debug)]
struct Email {
    subject: String,
    status: String,
    attempts: u64,
    error: Option<String>,
}

/// The log folded into what the invariants talk about.
#[derive(Default)]
struct Folded {
    /// Event id → hook runs recorded (`hook.executed`) and failures.
    hooks: BTreeMap<String, (u64, Vec<String>)>,
    /// Webhook name → delivery id → delivery.
    deliveries: BTreeMap<String, BTreeMap<String, Delivery>>,
    runs: BTreeMap<String, Run>,
    /// Run id → invocations (the job's `fault.tick` markers).
    ticks: BTreeMap<String, u64>,
    emails: BTreeMap<String, Email>,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

impl Folded {
    fn of(events: &[Value], tenant: &str) -> Folded {
        let mut f = Folded::default();
        let webhook_prefix = format!("webhook_deliveries-{tenant}.");
        for e in events {
            let (ty, data, stream) = (
                e["type"].as_str().unwrap_or(""),
                &e["data"],
                s(&e["stream"]),
            );
            if let Some(name) = stream.strip_prefix(&webhook_prefix) {
                // Only the delivery records; the stream also holds the
                // endpoint's own bookkeeping (claims, cursors).
                if DELIVERY_TYPES.contains(&ty) {
                    f.delivery(name, ty, data);
                }
            } else if ty.starts_with("hook.") {
                f.hook(ty, data);
            } else if ty.starts_with("job.run_") && stream.ends_with(&format!(".{JOB}")) {
                f.run(ty, data);
            } else if ty.starts_with("email.") {
                f.email(ty, &s(&e["id"]), data);
            } else if ty == TICK {
                *f.ticks.entry(s(&data["run_id"])).or_default() += 1;
            }
        }
        f
    }

    fn hook(&mut self, ty: &str, data: &Value) {
        let entry = self.hooks.entry(s(&data["event_id"])).or_default();
        match ty {
            "hook.executed" => entry.0 += 1,
            "hook.failed" => entry.1.push(s(&data["error"])),
            _ => {}
        }
    }

    fn delivery(&mut self, name: &str, ty: &str, data: &Value) {
        let d = self
            .deliveries
            .entry(name.to_owned())
            .or_default()
            .entry(s(&data["delivery_id"]))
            .or_default();
        match ty {
            "webhook.delivery_created" => d.event_id = s(&data["event_id"]),
            "webhook.delivery_attempted" => d.attempts += 1,
            "webhook.delivered" | "webhook.failed" | "webhook.delivery_skipped" => {
                d.outcome = Some(ty.to_owned());
                d.reason = data["reason"].as_str().map(str::to_owned);
            }
            _ => {}
        }
    }

    fn run(&mut self, ty: &str, data: &Value) {
        let r = self.runs.entry(s(&data["run_id"])).or_default();
        if let Some(t) = data["scheduled_for"].as_str().and_then(|t| t.parse().ok()) {
            r.scheduled_for = Some(t);
        }
        let status = ty.trim_start_matches("job.run_").to_owned();
        match status.as_str() {
            "started" => r.started += 1,
            "scheduled" => {}
            _ => {
                r.finals.push(status.clone());
                r.detail = [&data["reason"], &data["error"]]
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
        r.last = status;
    }

    fn email(&mut self, ty: &str, id: &str, data: &Value) {
        if ty == "email.queued" {
            let m = self.emails.entry(id.to_owned()).or_default();
            m.subject = s(&data["subject"]);
            m.status = "pending".into();
            return;
        }
        let Some(m) = self
            .emails
            .get_mut(data["outbox_id"].as_str().unwrap_or(""))
        else {
            return;
        };
        match ty {
            "email.sent" => m.status = "sent".into(),
            "email.failed" => m.status = "failed".into(),
            "email.attempt_failed" => m.attempts += 1,
            _ => return,
        }
        m.error = data["error"].as_str().map(str::to_owned);
    }
}

/// What the receivers and the relay saw, taken before and after the log is
/// read: an id seen before was created before the read; a delivery recorded
/// in the read was seen before the snapshot after it.
struct Seens {
    before: Vec<Vec<Seen>>,
    after: Vec<Vec<Seen>>,
    subjects: BTreeSet<String>,
}

fn subjects(messages: &[String]) -> BTreeSet<String> {
    messages
        .iter()
        .flat_map(|m| m.lines())
        .filter_map(|l| l.strip_prefix("Subject: "))
        .map(|s| s.trim().to_owned())
        .collect()
}

/// What the run should have produced.
struct Expect<'a> {
    published: &'a [String],
    /// Webhook `n` delivers to receiver `n`.
    webhooks: &'a [String],
    timeline: &'a Timeline,
    /// When traffic stopped: cron occurrences up to then are expected.
    until: DateTime<Utc>,
}

/// Reads the log and checks every invariant. `until` is when traffic
/// stopped: cron occurrences up to then are expected.
pub async fn check(world: &World, log: &mut Log, until: DateTime<Utc>) -> (Counts, Vec<Violation>) {
    let before = world.receivers.iter().map(|r| r.seen()).collect();
    if let Err(e) = log.catch_up(&world.api).await {
        let v = violation("server-up", "GET /api/events", e, true);
        return (Counts::new(), vec![v]);
    }
    let seens = Seens {
        before,
        after: world.receivers.iter().map(|r| r.seen()).collect(),
        subjects: subjects(&world.relay.messages()),
    };
    let f = Folded::of(&log.events, &world.tenant_id);
    let expect = Expect {
        published: &world.published,
        webhooks: &world.webhooks,
        timeline: &world.timeline,
        until,
    };
    let mut out = invariants(&expect, &f, &seens);
    check_webhook_status(world, &mut out).await;
    (counts(world, &f, &seens), out)
}

/// Every invariant that the log, the receivers and the relay decide.
fn invariants(expect: &Expect, f: &Folded, seens: &Seens) -> Vec<Violation> {
    let mut out = Vec::new();
    check_hooks(expect.published, f, &mut out);
    check_webhooks(expect, f, seens, &mut out);
    check_cron(expect.timeline, f, expect.until, &mut out);
    check_emails(f, seens, &mut out);
    out
}

fn violation(
    invariant: &'static str,
    id: impl Into<String>,
    detail: impl Into<String>,
    settling: bool,
) -> Violation {
    Violation {
        invariant,
        id: id.into(),
        detail: detail.into(),
        settling,
    }
}

fn check_hooks(published: &[String], f: &Folded, out: &mut Vec<Violation>) {
    let queued: BTreeSet<&str> = f.emails.values().map(|m| m.subject.as_str()).collect();
    for e in published {
        let (ran, failures) = f.hooks.get(e).cloned().unwrap_or_default();
        if ran == 0 {
            let detail = format!("no hook.executed for the {ORDER} event; failures: {failures:?}");
            out.push(violation("hook-ran", e, detail, true));
        } else if !queued.contains(format!("fault {e}").as_str()) {
            let detail = "hook.executed, but no email naming the event id was queued";
            out.push(violation("hook-ran", e, detail, true));
        }
    }
}

fn check_webhooks(expect: &Expect, f: &Folded, seens: &Seens, out: &mut Vec<Violation>) {
    let published: BTreeSet<&str> = expect.published.iter().map(String::as_str).collect();
    let empty = BTreeMap::new();
    for (n, name) in expect.webhooks.iter().enumerate() {
        let deliveries = f.deliveries.get(name).unwrap_or(&empty);
        let mut of_event: BTreeMap<&str, Vec<(&str, &Delivery)>> = BTreeMap::new();
        for (id, d) in deliveries {
            of_event
                .entry(d.event_id.as_str())
                .or_default()
                .push((id, d));
        }
        for e in expect.published {
            let key = format!("{e} → {name}");
            let ds = of_event.get(e.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            delivery_of_event(&key, ds, &seens.after[n], e, out);
        }
        for seen in &seens.before[n] {
            if !published.contains(seen.event_id.as_str()) {
                continue;
            }
            let known = of_event
                .get(seen.event_id.as_str())
                .is_some_and(|ds| ds.iter().any(|(id, _)| *id == seen.webhook_id));
            if !known {
                let detail = format!(
                    "{name} received event {} with webhook-id {:?}, which no delivery of that event has",
                    seen.event_id, seen.webhook_id
                );
                out.push(violation(
                    "webhook-id-stable",
                    &seen.webhook_id,
                    detail,
                    false,
                ));
            }
        }
    }
}

/// One event's deliveries to one webhook: exactly one delivery (one
/// `webhook-id`), finished, and if delivered then accepted by the receiver.
fn delivery_of_event(
    key: &str,
    ds: &[(&str, &Delivery)],
    seen: &[Seen],
    event: &str,
    out: &mut Vec<Violation>,
) {
    if ds.len() > 1 {
        let ids: Vec<&str> = ds.iter().map(|(id, _)| *id).collect();
        let detail = format!(
            "{} deliveries {ids:?}: a receiver cannot deduplicate them",
            ds.len()
        );
        out.push(violation("webhook-id-stable", key, detail, false));
    }
    let Some((id, d)) = ds
        .iter()
        .find(|(_, d)| d.outcome.as_deref() == Some("webhook.delivered"))
        .or(ds.first())
    else {
        out.push(violation(
            "webhook-delivered",
            key,
            "no delivery created",
            true,
        ));
        return;
    };
    match d.outcome.as_deref() {
        None => {
            let detail = format!("delivery {id} pending after {} attempts", d.attempts);
            out.push(violation("webhook-delivered", key, detail, true));
        }
        Some("webhook.delivered") => {
            let accepted = seen
                .iter()
                .any(|s| s.webhook_id == *id && s.event_id == event && s.answered == 200);
            if !accepted {
                let detail =
                    format!("delivery {id} recorded delivered, but the receiver never accepted it");
                out.push(violation("webhook-delivered", key, detail, true));
            }
        }
        Some("webhook.failed") if d.attempts >= RETRY_ATTEMPTS.into() => {}
        Some("webhook.failed") => {
            let detail = format!(
                "delivery {id} failed after {} of {RETRY_ATTEMPTS} attempts ({:?}): the receivers answer only 200, 500 or nothing",
                d.attempts, d.reason
            );
            out.push(violation("webhook-delivered", key, detail, false));
        }
        Some(other) => {
            let detail = format!("delivery {id}: {other} ({:?})", d.reason);
            out.push(violation("webhook-delivered", key, detail, false));
        }
    }
}

/// The harness never disables a webhook: one that is disabled was disabled
/// by the system.
async fn check_webhook_status(world: &World, out: &mut Vec<Violation>) {
    let Ok(list) = world.api.get("/api/webhooks").await else {
        out.push(violation(
            "server-up",
            "GET /api/webhooks",
            "no answer",
            true,
        ));
        return;
    };
    for w in list["webhooks"].as_array().into_iter().flatten() {
        if w["status"] != "active" {
            let detail = format!("{} ({})", s(&w["status"]), s(&w["disabled_reason"]));
            out.push(violation("webhook-enabled", s(&w["name"]), detail, false));
        }
    }
}

fn check_cron(timeline: &Timeline, f: &Folded, until: DateTime<Utc>, out: &mut Vec<Violation>) {
    let now = Utc::now();
    let mut at: BTreeMap<DateTime<Utc>, Vec<(&str, &Run)>> = BTreeMap::new();
    for (id, r) in &f.runs {
        if let Some(t) = r.scheduled_for {
            at.entry(t).or_default().push((id, r));
        }
        let invoked = f.ticks.get(id).copied().unwrap_or(0);
        if r.started > 1 || invoked > 1 || r.finals.len() > 1 {
            let detail = format!(
                "started {} times, invoked {invoked} times, outcomes {:?}",
                r.started, r.finals
            );
            out.push(violation("cron-not-twice", id.as_str(), detail, false));
        }
        let stuck = r
            .scheduled_for
            .is_some_and(|t| (now - t).num_milliseconds() > STUCK_AFTER_MS);
        if stuck && (r.last == "scheduled" || r.last == "running") {
            let detail = format!("{} since {:?}", r.last, r.scheduled_for);
            out.push(violation("nothing-left-running", id.as_str(), detail, true));
        }
    }
    // Every instant, the gaps of a hand-over included: an occurrence whose
    // runs may be late or missed there is still never run by two runs.
    let expected = timeline.expected(until);
    for (t, runs) in &at {
        let ran: Vec<&str> = runs
            .iter()
            .filter(|(id, r)| r.started > 0 || f.ticks.get(*id).is_some_and(|n| *n > 0))
            .map(|(id, _)| *id)
            .collect();
        if ran.len() > 1 && !expected.contains(t) {
            let detail = format!("started by runs {ran:?}");
            out.push(violation("cron-not-twice", t.to_rfc3339(), detail, false));
        }
    }
    for t in expected {
        let key = t.to_rfc3339();
        match at.get(&t).map(Vec::as_slice).unwrap_or(&[]) {
            [] => out.push(violation(
                "cron-ran-once",
                key,
                "no run of this occurrence",
                true,
            )),
            [(id, r)] => match r.last.as_str() {
                "succeeded" => {}
                "scheduled" | "running" => out.push(violation(
                    "cron-ran-once",
                    key,
                    format!("{id} still {}", r.last),
                    true,
                )),
                _ if r.started == 1 && r.last != "skipped" => {}
                _ => {
                    let detail = format!("{id} {} without running ({})", r.last, r.detail);
                    out.push(violation("cron-ran-once", key, detail, false))
                }
            },
            runs => {
                let ids: Vec<&str> = runs.iter().map(|(id, _)| *id).collect();
                out.push(violation(
                    "cron-not-twice",
                    key,
                    format!("runs {ids:?}"),
                    false,
                ));
            }
        }
    }
}

fn check_emails(f: &Folded, seens: &Seens, out: &mut Vec<Violation>) {
    for (id, m) in &f.emails {
        if m.status == "failed" {
            let detail = format!("failed after {} attempts: {:?}", m.attempts, m.error);
            out.push(violation("email-arrived", id, detail, false));
        } else if !seens.subjects.contains(&m.subject) {
            let detail = format!(
                "{:?} {} after {} failed attempts ({:?})",
                m.subject, m.status, m.attempts, m.error
            );
            out.push(violation("email-arrived", id, detail, true));
        }
    }
}

fn counts(world: &World, f: &Folded, seens: &Seens) -> Counts {
    let mut c = Counts::new();
    let mut add = |k: &str, n: u64| *c.entry(k.to_owned()).or_default() += n;
    add("events published", world.published.len() as u64);
    add("hook runs", f.hooks.values().map(|h| h.0).sum());
    add(
        "hook failures",
        f.hooks.values().map(|h| h.1.len() as u64).sum(),
    );
    for d in f.deliveries.values().flat_map(|m| m.values()) {
        add("deliveries", 1);
        add("delivery attempts", d.attempts);
        add(d.outcome.as_deref().unwrap_or("deliveries pending"), 1);
    }
    for r in seens.after.iter().flatten() {
        add("receiver requests", 1);
        add(
            if r.answered == 200 {
                "receiver accepted"
            } else {
                "receiver refused"
            },
            1,
        );
    }
    for r in f.runs.values() {
        add(&format!("job runs {}", r.last), 1);
    }
    add("job invocations", f.ticks.values().sum());
    add("emails queued", f.emails.len() as u64);
    add(
        "email attempts failed",
        f.emails.values().map(|m| m.attempts).sum(),
    );
    add(
        "distinct subjects at the relay",
        seens.subjects.len() as u64,
    );
    add("process starts", world.node.starts.into());
    c
}

/// The checker itself, on hand-made logs: each invariant catches the
/// breakage it names (the product cannot be made to break on purpose).
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TENANT: &str = "ten_1";
    const DELIVERIES: &str = "webhook_deliveries-ten_1.sink-0";
    const RUNS: &str = "jobs-ins_1.tick";

    fn ev(stream: &str, ty: &str, id: &str, data: Value) -> Value {
        json!({"stream": stream, "type": ty, "id": id, "data": data})
    }

    fn seen(webhook_id: &str, event_id: &str, answered: u16) -> Seen {
        Seen {
            webhook_id: webhook_id.into(),
            event_id: event_id.into(),
            answered,
        }
    }

    /// Order `e` handled fully: its hook ran and mailed, one delivery
    /// (`msg_<e>`) accepted on the second attempt, the mail at the relay.
    fn handled(e: &str) -> (Vec<Value>, Vec<Seen>, String) {
        let d = format!("msg_{e}");
        let events = vec![
            ev("hooks-ins_1", "hook.executed", "h", json!({"event_id": e})),
            ev(
                "outbox-ten_1",
                "email.queued",
                &format!("q_{e}"),
                json!({"subject": format!("fault {e}")}),
            ),
            ev(
                "outbox-ten_1",
                "email.sent",
                "s",
                json!({"outbox_id": format!("q_{e}")}),
            ),
            ev(
                DELIVERIES,
                "webhook.delivery_created",
                "c",
                json!({"delivery_id": d, "event_id": e}),
            ),
            ev(
                DELIVERIES,
                "webhook.endpoint_cursor",
                "k",
                json!({"position": 7}),
            ),
            ev(
                DELIVERIES,
                "webhook.delivery_attempted",
                "a",
                json!({"delivery_id": d}),
            ),
            ev(
                DELIVERIES,
                "webhook.delivery_attempted",
                "a",
                json!({"delivery_id": d}),
            ),
            ev(
                DELIVERIES,
                "webhook.delivered",
                "d",
                json!({"delivery_id": d}),
            ),
        ];
        let seens = vec![seen(&d, e, 500), seen(&d, e, 200)];
        (events, seens, format!("fault {e}"))
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + s, 0).unwrap()
    }

    /// Records of run `id` at second `s`: claimed, started `starts` times,
    /// then `end` (if any); `ticks` invocation markers.
    fn run(id: &str, s: i64, starts: usize, end: Option<&str>, ticks: usize) -> Vec<Value> {
        let data = json!({"run_id": id, "scheduled_for": at(s).to_rfc3339()});
        let mut out = vec![ev(RUNS, "job.run_scheduled", "r", data.clone())];
        out.extend((0..starts).map(|_| ev(RUNS, "job.run_started", "r", json!({"run_id": id}))));
        out.extend(end.map(|t| ev(RUNS, t, "r", data.clone())));
        out.push(ev(RUNS, "job.claims_fenced", "r", json!({"epoch": 2})));
        out.extend((0..ticks).map(|_| ev("events-ten_1", TICK, "t", json!({"run_id": id}))));
        out
    }

    fn violations(
        events: &[Value],
        published: &[&str],
        seen: Vec<Seen>,
        subjects: &[String],
    ) -> Vec<(String, String)> {
        let f = Folded::of(events, TENANT);
        let seens = Seens {
            before: vec![seen.clone()],
            after: vec![seen],
            subjects: subjects.iter().cloned().collect(),
        };
        let published: Vec<String> = published.iter().map(|s| s.to_string()).collect();
        let timeline = Timeline {
            enabled_at: Some(at(0)),
            gaps: vec![(at(10), at(12))],
        };
        let expect = Expect {
            published: &published,
            webhooks: &["sink-0".to_owned()],
            timeline: &timeline,
            until: at(14),
        };
        let mut out: Vec<_> = invariants(&expect, &f, &seens)
            .into_iter()
            .map(|v| (v.invariant.to_owned(), v.id))
            .collect();
        out.sort();
        out
    }

    /// Runs at every expected second (2 to 14, except the gap 10 to 12).
    fn every_occurrence() -> Vec<Value> {
        (2..=14)
            .filter(|s| !(10..=12).contains(s))
            .flat_map(|s| run(&format!("run_{s}"), s, 1, Some("job.run_succeeded"), 1))
            .collect()
    }

    #[test]
    fn orders_and_occurrences_handled_fully_break_nothing() {
        let (mut events, seen, subject) = handled("evt_a");
        events.extend(every_occurrence());
        // A run in the gap may be skipped; a claim of the future is pending.
        events.extend(run("run_11", 11, 0, Some("job.run_skipped"), 0));
        events.extend(run("run_future", 100_000_000, 0, None, 0));
        assert_eq!(violations(&events, &["evt_a"], seen, &[subject]), vec![]);
    }

    #[test]
    fn a_hook_not_run_a_second_delivery_and_a_mail_not_arrived_are_each_reported() {
        let (mut events, seen, _) = handled("evt_a");
        events.remove(0); // hook.executed
        events.push(ev(
            DELIVERIES,
            "webhook.delivery_created",
            "c",
            json!({"delivery_id": "msg_again", "event_id": "evt_a"}),
        ));
        events.extend(every_occurrence());
        let found = violations(&events, &["evt_a"], seen, &[]);
        let kinds: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            ["email-arrived", "hook-ran", "webhook-id-stable"],
            "{found:?}"
        );
    }

    #[test]
    fn an_unknown_webhook_id_a_lost_delivery_and_a_short_failure_are_reported() {
        let (mut events, mut seen, subject) = handled("evt_a");
        let (more, _, subject_b) = handled("evt_b");
        events.extend(
            more.into_iter()
                .filter(|e| e["type"] != "webhook.delivered"),
        );
        events.push(ev(
            DELIVERIES,
            "webhook.failed",
            "f",
            json!({"delivery_id": "msg_evt_b"}),
        ));
        let (lost, _, subject_c) = handled("evt_c");
        events.extend(
            lost.into_iter()
                .filter(|e| !e["stream"].as_str().unwrap().starts_with("webhook_")),
        );
        seen.push(seen_other());
        events.extend(every_occurrence());
        let found = violations(
            &events,
            &["evt_a", "evt_b", "evt_c"],
            seen,
            &[subject, subject_b, subject_c],
        );
        assert_eq!(
            found,
            [
                ("webhook-delivered".to_owned(), "evt_b → sink-0".to_owned()),
                ("webhook-delivered".to_owned(), "evt_c → sink-0".to_owned()),
                ("webhook-id-stable".to_owned(), "msg_forged".to_owned()),
            ]
        );
    }

    fn seen_other() -> Seen {
        seen("msg_forged", "evt_a", 200)
    }

    #[test]
    fn an_occurrence_run_twice_missed_skipped_or_stuck_is_reported() {
        let mut events: Vec<Value> = every_occurrence()
            .into_iter()
            .filter(|e| {
                !["run_3", "run_4", "run_5", "run_6", "run_7"]
                    .contains(&e["data"]["run_id"].as_str().unwrap_or(""))
            })
            .collect();
        events.extend(run("run_3", 3, 2, Some("job.run_succeeded"), 1)); // started twice
        events.extend(run("run_4", 4, 1, Some("job.run_succeeded"), 2)); // invoked twice
        events.extend(run("run_5", 5, 0, Some("job.run_skipped"), 0)); // not run while up
        events.extend(run("run_6", 6, 0, None, 0)); // claimed, never settled
        // second 7: no run at all
        // second 11 is in the gap: missing it is allowed, two runs are not
        events.extend(run("run_11a", 11, 1, Some("job.run_succeeded"), 1));
        events.extend(run("run_11b", 11, 1, Some("job.run_succeeded"), 1));
        let found = violations(&events, &[], vec![], &[]);
        let expected: Vec<(String, String)> = [
            ("cron-not-twice", at(11).to_rfc3339()),
            ("cron-not-twice", "run_3".to_owned()),
            ("cron-not-twice", "run_4".to_owned()),
            ("cron-ran-once", at(5).to_rfc3339()),
            ("cron-ran-once", at(6).to_rfc3339()),
            ("cron-ran-once", at(7).to_rfc3339()),
            ("nothing-left-running", "run_6".to_owned()),
        ]
        .into_iter()
        .map(|(k, id)| (k.to_owned(), id))
        .collect();
        assert_eq!(found, expected);
    }
}
