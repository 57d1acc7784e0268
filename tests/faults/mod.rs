//! # Layout
//!
//! The fault-injection harness of issue 14, shared by `tests/faults.rs`
//! (a few seeds in CI) and `benches/soak.rs` (many seeds for minutes):
//!
//! - `rng.rs`: SplitMix64; every random choice of a run comes from its seed.
//! - `plan.rs`: the run's plan drawn from the seed (publishes, faults, their
//!   times), and the CI and soak profiles.
//! - `node.rs`: the real `extensor serve` process (kill -9, restart on the
//!   same data) and the HTTP client.
//! - `receiver.rs`: loopback webhook receivers that accept, refuse, hang or
//!   close their port, recording every `webhook-id`.
//! - `world.rs`: the tenant, its plugin (hook, per-second cron job, email),
//!   its webhooks, the SMTP relay; applies the plan's steps.
//! - `check.rs`: the invariants, read back from the event log, the
//!   receivers and the relay's maildir.
//! - `report.rs`: counts and violations.
//! - `cluster.rs`: several nodes of a world on one PostgreSQL store (the
//!   cluster suite and benchmark).
//!
//! A crate including this module also includes
//! `js-runtime/tests/common/{aiosmtpd,python}.rs` at its root as
//! `aiosmtpd` and `python`.

pub mod check;
pub mod cluster;
pub mod node;
pub mod plan;
pub mod receiver;
pub mod report;
pub mod rng;
pub mod world;

use std::time::{Duration, Instant};

use plan::{Plan, Profile};
use report::Report;
use world::World;

/// The environment variable that names the seed to run (decimal).
pub const SEED_ENV: &str = "EXTENSOR_FAULT_SEED";
/// How often settling re-reads the log.
const SETTLE_POLL_MS: u64 = 500;

/// The seed from `EXTENSOR_FAULT_SEED`, or `default`.
pub fn seed_or(default: u64) -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={v:?} is not a decimal seed")),
        Err(_) => default,
    }
}

/// Runs one seed: starts everything, plays the plan, settles, checks.
pub async fn run_seed(seed: u64, profile: &Profile) -> Report {
    let plan = Plan::draw(seed, profile);
    let mut world = World::start(seed).await;
    let start = tokio::time::Instant::now();
    for (at, step) in &plan.steps {
        tokio::time::sleep_until(start + Duration::from_millis(*at)).await;
        world.apply(*step).await;
    }
    tokio::time::sleep_until(start + Duration::from_millis(profile.traffic_ms)).await;
    let traffic_end = chrono::Utc::now();
    let healed = world.heal().await;
    let settle_start = Instant::now();
    let deadline = settle_start + Duration::from_millis(profile.settle_ms);
    let mut log = check::Log::default();
    let (mut counts, violations) = loop {
        let (counts, violations) = check::check(&world, &mut log, traffic_end).await;
        if violations.iter().all(|v| !v.settling) || Instant::now() >= deadline {
            break (counts, violations);
        }
        tokio::time::sleep(Duration::from_millis(SETTLE_POLL_MS)).await;
    };
    counts.insert("operator restarts of failed actors".into(), healed);
    let logs = (!violations.is_empty()).then(|| world.dir.path().to_owned());
    let report = Report {
        seed,
        plan: plan.to_string(),
        counts,
        faults: std::mem::take(&mut world.faults),
        notes: std::mem::take(&mut world.notes),
        violations,
        settle_ms: settle_start.elapsed().as_millis() as u64,
        logs,
    };
    if !report.ok() {
        // Keep the data and logs of a failed run for a look.
        let dir = std::mem::replace(&mut world.dir, tempfile::tempdir().expect("temp dir"));
        let _ = dir.keep();
    }
    report
}
