//! The long fault soak of issue 14: the harness of `tests/faults.rs` run
//! seed after seed (the soak profile: a minute of traffic and 30 faults per
//! seed) for `--minutes N` (default 10), printing each seed's counts and
//! violations and, at the end, the totals recorded in docs/BENCHMARKS.md.
//!
//! `cargo bench --bench soak -- --minutes 30 --seed 100` (add `--profile dev`
//! to reuse a debug build: the soak checks correctness, not speed). No new
//! seed starts after the deadline; the one running then finishes.

#[path = "../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "../tests/faults/mod.rs"]
#[allow(dead_code)] // the CI suite uses the parts the soak does not
mod harness;
#[path = "../js-runtime/tests/common/python.rs"]
mod python;

use std::time::{Duration, Instant};

use harness::plan::Profile;
use harness::report::Counts;

const MINUTES_DEFAULT: u64 = 10;

/// `--minutes N` and `--seed S` (the first seed; later ones follow it).
/// Cargo's own `--bench` flag and anything else are ignored.
fn args() -> (u64, u64) {
    let mut minutes = MINUTES_DEFAULT;
    let mut seed = harness::seed_or(1);
    let argv: Vec<String> = std::env::args().collect();
    for pair in argv.windows(2) {
        let parse = |v: &str| {
            v.parse()
                .unwrap_or_else(|_| panic!("{} takes a number, not {v:?}", pair[0]))
        };
        match pair[0].as_str() {
            "--minutes" => minutes = parse(&pair[1]),
            "--seed" => seed = parse(&pair[1]),
            _ => {}
        }
    }
    (minutes, seed)
}

fn add(total: &mut Counts, part: &Counts) {
    for (k, v) in part {
        *total.entry(k.clone()).or_default() += v;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (minutes, first) = args();
    let profile = Profile::soak();
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let (mut counts, mut faults, mut violations) = (Counts::new(), Counts::new(), Counts::new());
    let mut failed_seeds = Vec::new();
    let mut seed = first;
    let began = Instant::now();
    while Instant::now() < end {
        let report = harness::run_seed(seed, &profile).await;
        println!("{report}");
        add(&mut counts, &report.counts);
        add(&mut faults, &report.faults);
        add(&mut violations, &report.by_invariant());
        if !report.ok() {
            failed_seeds.push(seed);
        }
        seed += 1;
    }
    println!(
        "== soak: seeds {first}..{} in {:.1} min",
        seed - 1,
        began.elapsed().as_secs_f64() / 60.0
    );
    println!("counts:");
    counts.iter().for_each(|(k, v)| println!("  {k}: {v}"));
    println!("faults injected:");
    faults.iter().for_each(|(k, v)| println!("  {k}: {v}"));
    println!("violations: {violations:?}; seeds with violations: {failed_seeds:?}");
}
