//! A run's plan, drawn entirely from its seed before anything starts: when
//! events are published and which fault is injected when. The same seed
//! gives the same plan (the system's own timing still varies).

use std::fmt;

use super::receiver::Mode;
use super::rng::Rng;

/// How long and how hard a run drives the system.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Traffic and faults happen in `[0, traffic_ms)`; then the run settles.
    pub traffic_ms: u64,
    /// Pause between two publishes, drawn in this range.
    pub publish_gap_ms: (u64, u64),
    /// Events per publish, drawn in `[1, burst_max]`.
    pub burst_max: u64,
    /// Faults injected per run.
    pub faults: u64,
    /// Receiver and relay outages last this long: longer than a webhook's
    /// whole retry window (`RETRY_*` in `world.rs`).
    pub outage_ms: (u64, u64),
    /// How long the process stays dead after a `kill -9`.
    pub down_ms: (u64, u64),
    /// The longest the run waits for everything to settle after traffic.
    pub settle_ms: u64,
}

impl Profile {
    /// The CI profile: a short run that still injects one of most kinds.
    pub fn ci() -> Profile {
        Profile {
            traffic_ms: 16_000,
            publish_gap_ms: (150, 600),
            burst_max: 3,
            faults: 8,
            outage_ms: (3_000, 6_000),
            down_ms: (200, 1_500),
            settle_ms: 45_000,
        }
    }

    /// The soak profile: a minute of traffic per seed, with outages up to
    /// 40 s (past the webhook follower's 30 s patience with a full backlog).
    /// About 400 orders a minute, under the outbox's 600 messages a minute
    /// per tenant; settling allows for the outbox's doubling backoff after
    /// the longest relay outage (its next attempt can come ~64 s later).
    pub fn soak() -> Profile {
        Profile {
            traffic_ms: 60_000,
            publish_gap_ms: (100, 500),
            burst_max: 3,
            faults: 30,
            outage_ms: (2_000, 40_000),
            down_ms: (200, 3_000),
            settle_ms: 150_000,
        }
    }
}

/// What a restart fault restarts, by its ops-tree path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/tenants/<t>/<name>`: `dispatcher`, `webhooks`, `scheduler`, `outbox`.
    Service(&'static str),
    /// `/tenants/<t>/installations/<ins>`.
    Installation,
    /// The tenant's `n`-th other child in the tree (webhook endpoints and
    /// whatever else a tenant runs), if there is one.
    Other(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `POST /api/ops/actors/{path}/restart`.
    Restart(Target),
    /// `POST /api/ops/actors/{path}/fault-drill`: the installation's actor
    /// panics in its handler.
    Panic,
    /// SIGKILL the process, wait, start it again on the same data.
    Kill9 { down_ms: u64 },
    /// Receiver `which` behaves as `mode` until its `ReceiverBack`.
    Receiver { which: usize, mode: Mode },
    /// The SMTP relay goes down until `RelayBack`.
    RelayDown,
    /// `POST /api/ops/tenants/{id}/stop`, wait, `…/resume`.
    TenantPause { for_ms: u64 },
}

impl Fault {
    /// The name counted in the report.
    pub fn kind(&self) -> String {
        match self {
            Fault::Restart(Target::Service(s)) => format!("restart {s}"),
            Fault::Restart(Target::Installation) => "restart installation".into(),
            Fault::Restart(Target::Other(_)) => "restart other child".into(),
            Fault::Panic => "panic installation".into(),
            Fault::Kill9 { .. } => "kill -9".into(),
            Fault::Receiver { mode, .. } => format!("receiver {mode:?}"),
            Fault::RelayDown => "relay down".into(),
            Fault::TenantPause { .. } => "tenant stop/resume".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Publish { count: u64 },
    Fault(Fault),
    ReceiverBack { which: usize },
    RelayBack,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// `(at_ms, step)`, sorted by time.
    pub steps: Vec<(u64, Step)>,
}

/// Receivers the harness runs, one webhook each.
pub const RECEIVERS: usize = 2;
/// No fault in the first moments: the plugin's first cron occurrences and
/// the webhooks' first deliveries happen undisturbed.
const QUIET_START_MS: u64 = 1_500;

impl Plan {
    pub fn draw(seed: u64, p: &Profile) -> Plan {
        let mut rng = Rng::new(seed);
        let mut steps = Vec::new();
        let mut t = 0;
        while t < p.traffic_ms {
            steps.push((
                t,
                Step::Publish {
                    count: rng.between(1, p.burst_max),
                },
            ));
            t += rng.between(p.publish_gap_ms.0, p.publish_gap_ms.1);
        }
        for _ in 0..p.faults {
            let at = rng.between(QUIET_START_MS, p.traffic_ms - 1);
            let fault = draw_fault(&mut rng, p);
            steps.push((at, Step::Fault(fault)));
            let outage = rng.between(p.outage_ms.0, p.outage_ms.1);
            match fault {
                Fault::Receiver { which, .. } => {
                    steps.push((at + outage, Step::ReceiverBack { which }))
                }
                Fault::RelayDown => steps.push((at + outage, Step::RelayBack)),
                _ => {}
            }
        }
        steps.sort_by_key(|(at, _)| *at);
        Plan { seed, steps }
    }

    pub fn faults(&self) -> impl Iterator<Item = (u64, Fault)> + '_ {
        self.steps.iter().filter_map(|(at, s)| match s {
            Step::Fault(f) => Some((*at, *f)),
            _ => None,
        })
    }
}

fn draw_fault(rng: &mut Rng, p: &Profile) -> Fault {
    #[derive(Clone, Copy)]
    enum K {
        Service,
        Installation,
        Other,
        Panic,
        Kill,
        Receiver,
        Relay,
        Pause,
    }
    let kind = rng.weighted(&[
        (K::Service, 6),
        (K::Installation, 2),
        (K::Other, 1),
        (K::Panic, 2),
        (K::Kill, 3),
        (K::Receiver, 5),
        (K::Relay, 2),
        (K::Pause, 1),
    ]);
    match kind {
        K::Service => {
            let names = ["dispatcher", "webhooks", "scheduler", "outbox"];
            Fault::Restart(Target::Service(names[rng.below(4) as usize]))
        }
        K::Installation => Fault::Restart(Target::Installation),
        K::Other => Fault::Restart(Target::Other(rng.below(8))),
        K::Panic => Fault::Panic,
        K::Kill => Fault::Kill9 {
            down_ms: rng.between(p.down_ms.0, p.down_ms.1),
        },
        K::Receiver => Fault::Receiver {
            which: rng.below(RECEIVERS as u64) as usize,
            mode: [Mode::Refuse500, Mode::Closed, Mode::Hang][rng.below(3) as usize],
        },
        K::Relay => Fault::RelayDown,
        K::Pause => Fault::TenantPause {
            for_ms: rng.between(p.down_ms.0, p.down_ms.1),
        },
    }
}

/// Every fault kind a plan can draw whose injection does not depend on the
/// tree's shape at the time (`restart other child` does).
pub fn kinds() -> Vec<String> {
    let mut out: Vec<String> = ["dispatcher", "webhooks", "scheduler", "outbox"]
        .iter()
        .map(|s| Fault::Restart(Target::Service(s)).kind())
        .collect();
    out.push(Fault::Restart(Target::Installation).kind());
    out.push(Fault::Panic.kind());
    out.push(Fault::Kill9 { down_ms: 0 }.kind());
    for mode in [Mode::Refuse500, Mode::Closed, Mode::Hang] {
        out.push(Fault::Receiver { which: 0, mode }.kind());
    }
    out.push(Fault::RelayDown.kind());
    out.push(Fault::TenantPause { for_ms: 0 }.kind());
    out
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events: u64 = self
            .steps
            .iter()
            .map(|(_, s)| match s {
                Step::Publish { count } => *count,
                _ => 0,
            })
            .sum();
        writeln!(f, "plan of seed {}: {events} events; faults:", self.seed)?;
        for (at, step) in &self.steps {
            if !matches!(step, Step::Publish { .. }) {
                writeln!(f, "  {at:>6} ms  {step:?}")?;
            }
        }
        Ok(())
    }
}
