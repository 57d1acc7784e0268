//! The fault-injection suite of issue 14, short enough for CI: a real
//! `extensor serve` with a plugin (a hook that mails the event id, a cron
//! job every second that emits its run id), two webhooks to loopback
//! receivers and a real SMTP relay, driven by seeded traffic while faults
//! are injected at seeded times (ops restarts of each service and of the
//! installation, a panic in the installation's actor, `kill -9` and a
//! restart on the same data, receiver and relay outages longer than every
//! webhook retry window, a tenant stop and resume). After settling it checks
//! every delivery guarantee and prints each violation with its id.
//!
//! Reproduce a seed: `EXTENSOR_FAULT_SEED=N cargo test --test faults seed_1`.
//! The long run is `cargo bench --bench soak` (`tests/faults/` is shared).

#[path = "../js-runtime/tests/common/aiosmtpd.rs"]
mod aiosmtpd;
#[path = "faults/mod.rs"]
#[allow(dead_code)] // the soak uses the parts CI does not
mod harness;
#[path = "../js-runtime/tests/common/python.rs"]
mod python;

use harness::plan::Profile;

async fn seed_keeps_every_guarantee(default_seed: u64) {
    let seed = harness::seed_or(default_seed);
    let report = harness::run_seed(seed, &Profile::ci()).await;
    assert!(
        report.ok(),
        "invariants violated under seed {seed} (reproduce with {}={seed}):\n{report}",
        harness::SEED_ENV
    );
    println!("{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_1() {
    seed_keeps_every_guarantee(0x5EED_0001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_2() {
    seed_keeps_every_guarantee(0x5EED_0002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_3() {
    seed_keeps_every_guarantee(0x5EED_0003).await;
}
