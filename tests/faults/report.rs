//! What a run found: counts of what happened and every violated invariant,
//! each with the id it concerns.

use std::collections::BTreeMap;
use std::fmt;

/// One broken promise.
#[derive(Clone, Debug)]
pub struct Violation {
    /// `hook-ran`, `webhook-delivered`, `webhook-id-stable`,
    /// `webhook-enabled`, `cron-ran-once`, `cron-not-twice`,
    /// `email-arrived`, `nothing-left-running`, `server-up`.
    pub invariant: &'static str,
    /// The event, delivery, run, occurrence or message it concerns.
    pub id: String,
    pub detail: String,
    /// Still able to resolve by waiting longer (something pending); a
    /// settled run has none of these, or ran out of time.
    pub settling: bool,
}

/// Counters, summed over seeds by the soak.
pub type Counts = BTreeMap<String, u64>;

pub struct Report {
    pub seed: u64,
    pub plan: String,
    pub counts: Counts,
    /// Faults injected, by kind.
    pub faults: Counts,
    /// Planned faults that could not be injected, and why.
    pub notes: Vec<String>,
    pub violations: Vec<Violation>,
    /// How long settling took, or the settle deadline when it ran out.
    pub settle_ms: u64,
    /// Where the servers' logs are (kept when the run failed).
    pub logs: Option<std::path::PathBuf>,
}

/// Violations printed in full per invariant; the rest are counted.
const PRINTED_PER_INVARIANT_MAX: usize = 8;

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Violations per invariant.
    pub fn by_invariant(&self) -> Counts {
        let mut out = Counts::new();
        for v in &self.violations {
            *out.entry(v.invariant.to_owned()).or_default() += 1;
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} (reproduce: EXTENSOR_FAULT_SEED={})",
            self.seed, self.seed
        )?;
        write!(f, "{}", self.plan)?;
        writeln!(f, "counts: {:?}", self.counts)?;
        writeln!(f, "faults injected: {:?}", self.faults)?;
        for n in &self.notes {
            writeln!(f, "not injected: {n}")?;
        }
        writeln!(f, "settled in {} ms", self.settle_ms)?;
        if let Some(logs) = &self.logs {
            writeln!(f, "server logs: {}", logs.display())?;
        }
        writeln!(
            f,
            "{} violations: {:?}",
            self.violations.len(),
            self.by_invariant()
        )?;
        for (invariant, count) in self.by_invariant() {
            let of_it = self.violations.iter().filter(|v| v.invariant == invariant);
            for v in of_it.take(PRINTED_PER_INVARIANT_MAX) {
                let state = if v.settling { " (still pending)" } else { "" };
                writeln!(f, "  [{}] {}: {}{state}", v.invariant, v.id, v.detail)?;
            }
            if count as usize > PRINTED_PER_INVARIANT_MAX {
                let more = count as usize - PRINTED_PER_INVARIANT_MAX;
                writeln!(f, "  [{invariant}] … {more} more")?;
            }
        }
        Ok(())
    }
}
