//! `route.accessed`: the seed's audit record of plugin route traffic.
//!
//! Routes are the high-volume invocation, so one record covers one route
//! of one installation over one flush interval (not one request): how many
//! requests reached its handler, how many of those failed, and the p50 and
//! p99 of their durations. Records of a tenant go to `route_access-<tenant>`
//! (the stream category that owns the `route.` namespace).
//!
//! Durations are counted in [`LATENCY_BUCKETS`] log-linear buckets (four
//! per power of two, so a reported percentile is the upper bound of its
//! bucket: at most 25 % above the true value). This file is the pure
//! part: the payload and the bucket arithmetic; the counters and the actor
//! that flushes them live in `extensor-actors` (`route_access`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::StreamId;
use crate::ids::{InstallationId, TenantId};

/// The event type.
pub const ROUTE_ACCESSED: &str = "route.accessed";
/// Its payload's schema version.
pub const ROUTE_ACCESSED_SCHEMA_VERSION: u32 = 1;
/// `route` of the record that counts the routes past a tenant's cap.
pub const OVERFLOW_ROUTE: &str = "*";

/// Sub-buckets per power of two of the duration in microseconds.
const SUB_BUCKETS: usize = 4;
/// Buckets: exact 0..=3 µs, then four per power of two up to 2^29 µs
/// (about 9 minutes, past every deadline); longer lands in the last.
pub const LATENCY_BUCKETS: usize = 112;

/// The stream a tenant's route records go to.
pub fn stream(tenant: &TenantId) -> Result<StreamId, Error> {
    StreamId::new("route_access", tenant.as_str())
}

/// `route.accessed`, schema version 1: one route of one installation over
/// `[interval_start, interval_end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteAccessed {
    /// `null` in the record of routes past the tenant's cap
    /// (`route` = `*`).
    pub installation: Option<InstallationId>,
    /// The plugin's slug (`null` with `installation`).
    pub plugin: Option<String>,
    /// The registered route: method and pattern, `GET /users/:id`.
    pub route: String,
    pub interval_start: DateTime<Utc>,
    pub interval_end: DateTime<Utc>,
    /// Requests that reached the route's handler.
    pub count: u64,
    /// Of those, the ones whose handler failed (threw, hit a limit,
    /// answered something invalid) or answered a 5xx status.
    pub errors: u64,
    /// Duration percentiles in microseconds (bucket upper bounds).
    pub duration_p50_us: u64,
    pub duration_p99_us: u64,
}

/// The bucket of a duration of `us` microseconds.
pub fn bucket_of(us: u64) -> usize {
    if us < SUB_BUCKETS as u64 {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros() as usize; // floor(log2), >= 2
    let sub = ((us >> (octave - 2)) & 3) as usize;
    (SUB_BUCKETS * (octave - 1) + sub).min(LATENCY_BUCKETS - 1)
}

/// The largest duration (µs) bucket `i` holds.
pub fn bucket_upper_us(i: usize) -> u64 {
    if i < SUB_BUCKETS {
        return i as u64;
    }
    let octave = i / SUB_BUCKETS + 1;
    let sub = (i % SUB_BUCKETS) as u64;
    ((5 + sub) << (octave - 2)) - 1
}

/// The `q` quantile (0 < q ≤ 1) of the durations counted in `buckets`, as
/// its bucket's upper bound; 0 when nothing was counted.
pub fn quantile_us(buckets: &[u64], q: f64) -> u64 {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_upper_us(i);
        }
    }
    bucket_upper_us(buckets.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_lands_in_a_bucket_whose_bounds_hold_it() {
        let mut lower = 0;
        for i in 0..LATENCY_BUCKETS - 1 {
            let upper = bucket_upper_us(i);
            assert!(upper >= lower, "bucket {i}");
            assert_eq!(bucket_of(lower), i, "lower bound of {i}");
            assert_eq!(bucket_of(upper), i, "upper bound of {i}");
            // Four per power of two: at most 25 % wide.
            assert!(
                upper - lower <= lower / 4 + 1,
                "bucket {i}: {lower}..={upper}"
            );
            lower = upper + 1;
        }
        assert_eq!(bucket_of(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn quantiles_come_from_the_counts() {
        let mut b = vec![0u64; LATENCY_BUCKETS];
        for us in 1..=100u64 {
            b[bucket_of(us * 1_000)] += 1;
        }
        let p50 = quantile_us(&b, 0.5);
        let p99 = quantile_us(&b, 0.99);
        assert!((50_000..=62_500).contains(&p50), "{p50}");
        assert!((99_000..=123_750).contains(&p99), "{p99}");
        assert_eq!(quantile_us(&[0; LATENCY_BUCKETS], 0.5), 0);
    }
}
