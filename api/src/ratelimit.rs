//! Per-tenant rate limits: one token bucket per (tenant, class of call), so
//! one tenant flooding events cannot starve another's plugin routes or its
//! own management calls. A refused call answers 429 with `Retry-After`.
//!
//! Settings (requests per second and burst, 0 = unlimited):
//! `EXTENSOR_RATE_EVENTS_PER_S` (default 500) / `EXTENSOR_RATE_EVENTS_BURST`
//! (1000), `EXTENSOR_RATE_ROUTES_PER_S` (2000) / `EXTENSOR_RATE_ROUTES_BURST`
//! (4000), `EXTENSOR_RATE_MANAGEMENT_PER_S` (200) /
//! `EXTENSOR_RATE_MANAGEMENT_BURST` (400).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use extensor_core::ids::TenantId;

/// Buckets kept before idle ones are swept; bounds memory under tenant churn.
const BUCKETS_MAX: usize = 100_000;

/// Which budget a call draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// `POST /api/events`.
    Events,
    /// `/ext/<slug>/…` plugin routes.
    Routes,
    /// Every other authenticated `/api` call.
    Management,
}

impl RateClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Events => "events",
            RateClass::Routes => "plugin routes",
            RateClass::Management => "management",
        }
    }
}

/// A sustained rate and a burst; `per_s == 0` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_s: u32,
    pub burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub events: Rate,
    pub routes: Rate,
    pub management: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            events: Rate {
                per_s: 500,
                burst: 1_000,
            },
            routes: Rate {
                per_s: 2_000,
                burst: 4_000,
            },
            management: Rate {
                per_s: 200,
                burst: 400,
            },
        }
    }
}

impl RateLimits {
    pub const UNLIMITED: RateLimits = RateLimits {
        events: Rate { per_s: 0, burst: 0 },
        routes: Rate { per_s: 0, burst: 0 },
        management: Rate { per_s: 0, burst: 0 },
    };

    /// Reads the `EXTENSOR_RATE_*` variables over the defaults.
    pub fn from_env() -> Result<Self, String> {
        let d = Self::default();
        Ok(Self {
            events: rate_from_env("EVENTS", d.events)?,
            routes: rate_from_env("ROUTES", d.routes)?,
            management: rate_from_env("MANAGEMENT", d.management)?,
        })
    }

    fn get(&self, class: RateClass) -> Rate {
        match class {
            RateClass::Events => self.events,
            RateClass::Routes => self.routes,
            RateClass::Management => self.management,
        }
    }
}

fn rate_from_env(class: &str, default: Rate) -> Result<Rate, String> {
    let read = |suffix: &str, default: u32| -> Result<u32, String> {
        let name = format!("EXTENSOR_RATE_{class}_{suffix}");
        match std::env::var(&name) {
            Ok(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{name}=`{v}` is not a whole number")),
            Err(_) => Ok(default),
        }
    };
    let per_s = read("PER_S", default.per_s)?;
    let burst = read("BURST", default.burst.max(per_s))?;
    Ok(Rate {
        per_s,
        burst: burst.max(1),
    })
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(TenantId, RateClass), Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token, or says how many whole seconds until one is there.
    pub fn check(&self, tenant: &TenantId, class: RateClass) -> Result<(), u64> {
        let rate = self.limits.get(class);
        if rate.per_s == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= BUCKETS_MAX {
            // Full buckets are the same as absent ones: drop them.
            buckets.retain(|(_, c), b| {
                let r = self.limits.get(*c);
                refill(b, r, now) < f64::from(r.burst)
            });
        }
        let bucket = buckets.entry((tenant.clone(), class)).or_insert(Bucket {
            tokens: f64::from(rate.burst),
            refilled: now,
        });
        let tokens = refill(bucket, rate, now);
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            return Ok(());
        }
        let wait_s = (1.0 - tokens) / f64::from(rate.per_s);
        Err(wait_s.ceil().max(1.0) as u64)
    }
}

fn refill(b: &mut Bucket, rate: Rate, now: Instant) -> f64 {
    let elapsed = now.duration_since(b.refilled).as_secs_f64();
    b.tokens = (b.tokens + elapsed * f64::from(rate.per_s)).min(f64::from(rate.burst));
    b.refilled = now;
    b.tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_retry_after_and_per_tenant_buckets() {
        let limits = RateLimits {
            management: Rate { per_s: 1, burst: 3 },
            ..RateLimits::UNLIMITED
        };
        let rl = RateLimiter::new(limits);
        let a = TenantId::generate();
        let b = TenantId::generate();
        for _ in 0..3 {
            rl.check(&a, RateClass::Management).unwrap();
        }
        assert_eq!(rl.check(&a, RateClass::Management), Err(1));
        rl.check(&b, RateClass::Management)
            .expect("another tenant has its own bucket");
        rl.check(&a, RateClass::Events).expect("unlimited class");
    }
}
