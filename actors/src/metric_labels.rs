//! Bounded label values for `/metrics`: a label that carries a name a
//! tenant chooses (a plugin's slug, a job) admits at most a fixed number
//! of distinct values per process; later ones are reported as [`OTHER`].
//! So every series family has a known upper bound whatever the tenants
//! do, and the bound is what docs/OPERATIONS.md states.

use std::collections::HashSet;
use std::sync::{LazyLock, RwLock};

/// Distinct `plugin` label values (slugs) per process.
pub const PLUGIN_LABELS_MAX: usize = 500;
/// Distinct (`installation`, `job`) label pairs per process.
pub const JOB_LABELS_MAX: usize = 500;
/// The value every name past its cap is reported as.
pub const OTHER: &str = "_other";

/// The first `max` distinct values seen, admitted for good.
pub struct LabelCap {
    max: usize,
    seen: RwLock<HashSet<String>>,
}

impl LabelCap {
    fn new(max: usize) -> Self {
        LabelCap {
            max,
            seen: RwLock::default(),
        }
    }

    /// Whether `value` may be a label value: already admitted, or admitted
    /// now because the cap leaves room.
    pub fn admit(&self, value: &str) -> bool {
        let seen = self
            .seen
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(value) {
            return true;
        }
        drop(seen);
        let mut seen = self
            .seen
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= self.max {
            return seen.contains(value);
        }
        seen.insert(value.to_owned());
        true
    }
}

static PLUGINS: LazyLock<LabelCap> = LazyLock::new(|| LabelCap::new(PLUGIN_LABELS_MAX));
static JOBS: LazyLock<LabelCap> = LazyLock::new(|| LabelCap::new(JOB_LABELS_MAX));

/// The `plugin` label for a slug.
pub fn plugin(slug: &str) -> String {
    if PLUGINS.admit(slug) {
        slug.to_owned()
    } else {
        OTHER.to_owned()
    }
}

/// The `installation` and `job` labels for a job.
pub fn job(installation: &str, job: &str) -> (String, String) {
    if JOBS.admit(&format!("{installation}/{job}")) {
        (installation.to_owned(), job.to_owned())
    } else {
        (OTHER.to_owned(), OTHER.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_cap_are_other_and_admitted_ones_stay() {
        let cap = LabelCap::new(2);
        assert!(cap.admit("a"));
        assert!(cap.admit("b"));
        assert!(!cap.admit("c"));
        assert!(cap.admit("a"));
        assert!(!cap.admit("c"));
    }
}
