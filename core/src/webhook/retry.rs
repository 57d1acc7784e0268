//! Retry policy and response classification, as pure functions: what an
//! attempt's outcome means, and when (if ever) to try again.
//!
//! - 2xx: delivered.
//! - 410 Gone: the receiver says the endpoint is gone: fail and disable it.
//! - 408, 429, 5xx, timeouts, connection errors: retry.
//! - any other status (other 4xx, 1xx, 3xx: redirects are not followed):
//!   fail at once; trying again would get the same answer.
//!
//! Delays: exponential (`initial × 2^(n-1)` capped at `max`, with "equal
//! jitter": half fixed, half random, so that a burst of failures does not
//! come back as a burst of retries) or fixed. `Retry-After` lengthens the
//! delay, never shortens it, up to [`RETRY_AFTER_MS_MAX`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const MAX_ATTEMPTS_DEFAULT: u32 = 6;
/// More than this and a delivery outlives any reasonable outage window.
pub const MAX_ATTEMPTS_MAX: u32 = 30;
/// Default exponential schedule: 5 s, 10 s, 20 s … capped at one hour.
pub const INITIAL_INTERVAL_MS_DEFAULT: u64 = 5_000;
pub const MAX_INTERVAL_MS_DEFAULT: u64 = 3_600_000;
/// No single wait may exceed a day.
pub const INTERVAL_MS_MAX: u64 = 86_400_000;
/// A receiver's `Retry-After` is honoured up to this (one hour).
pub const RETRY_AFTER_MS_MAX: u64 = 3_600_000;
/// How long an endpoint may fail without a single success before it is
/// disabled (`webhook.disabled`): 5 days, as receivers expect from Svix. A
/// burst of failures, however many, never disables an endpoint; only a
/// receiver that has been failing this long does. The platform setting is
/// `EXTENSOR_WEBHOOK_DISABLE_AFTER_FAILING_SECS` (`WebhookConfig`).
pub const DISABLE_AFTER_FAILING_MS_DEFAULT: u64 = 5 * 24 * 60 * 60 * 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backoff {
    Exponential { initial_ms: u64, max_ms: u64 },
    Fixed { interval_ms: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: MAX_ATTEMPTS_DEFAULT,
            backoff: Backoff::Exponential {
                initial_ms: INITIAL_INTERVAL_MS_DEFAULT,
                max_ms: MAX_INTERVAL_MS_DEFAULT,
            },
        }
    }
}

/// What came back from one attempt, as far as retrying is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver answered with this status.
    Status { status: u16 },
    /// No complete answer within the timeout.
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// The SSRF guard refused the address, or the URL is unusable: a
    /// configuration problem that retrying does not fix.
    Refused,
    /// The transform or filter failed (threw, timed out, bad result).
    Transform,
}

/// What an outcome means for the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Delivered,
    Retry,
    Fail,
    /// 410: fail and disable the endpoint.
    Gone,
}

pub fn classify(outcome: &AttemptOutcome) -> Verdict {
    match outcome {
        AttemptOutcome::Status { status } => match *status {
            200..=299 => Verdict::Delivered,
            410 => Verdict::Gone,
            408 | 429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Fail,
        },
        AttemptOutcome::Timeout | AttemptOutcome::Connection => Verdict::Retry,
        AttemptOutcome::Refused | AttemptOutcome::Transform => Verdict::Fail,
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts_made + 1`, or `None` when the
    /// delivery has had all its attempts. `random` is uniform in [0, 1)
    /// (the caller's randomness keeps this function pure).
    pub fn next_delay(
        &self,
        attempts_made: u32,
        random: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let base_ms = match self.backoff {
            Backoff::Fixed { interval_ms } => interval_ms,
            Backoff::Exponential { initial_ms, max_ms } => {
                let doublings = attempts_made.saturating_sub(1).min(40);
                let full = initial_ms.saturating_mul(1u64 << doublings).min(max_ms);
                let half = full / 2;
                let jitter = (half as f64 * random.clamp(0.0, 1.0)) as u64;
                full - half + jitter
            }
        };
        let base = Duration::from_millis(base_ms.max(1));
        Some(match retry_after {
            Some(ra) => base.max(ra.min(Duration::from_millis(RETRY_AFTER_MS_MAX))),
            None => base,
        })
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(RETRY_AFTER_MS_MAX / 1000)));
    }
    let when = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> Verdict {
        classify(&AttemptOutcome::Status { status: s })
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(status(200), Verdict::Delivered);
        assert_eq!(status(204), Verdict::Delivered);
        assert_eq!(status(410), Verdict::Gone);
        for s in [408, 429, 500, 502, 503, 599] {
            assert_eq!(status(s), Verdict::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422, 301, 302, 101] {
            assert_eq!(status(s), Verdict::Fail, "{s}");
        }
        assert_eq!(classify(&AttemptOutcome::Timeout), Verdict::Retry);
        assert_eq!(classify(&AttemptOutcome::Connection), Verdict::Retry);
        assert_eq!(classify(&AttemptOutcome::Refused), Verdict::Fail);
        assert_eq!(classify(&AttemptOutcome::Transform), Verdict::Fail);
    }

    #[test]
    fn exponential_with_jitter_and_cap() {
        let p = RetryPolicy {
            max_attempts: 6,
            backoff: Backoff::Exponential {
                initial_ms: 1_000,
                max_ms: 10_000,
            },
        };
        let ms = |n, r| p.next_delay(n, r, None).map(|d| d.as_millis() as u64);
        assert_eq!(ms(1, 0.0), Some(500));
        assert_eq!(ms(1, 0.999_999), Some(999));
        assert_eq!(ms(2, 0.0), Some(1_000));
        assert_eq!(ms(3, 0.0), Some(2_000));
        assert_eq!(ms(5, 0.0), Some(5_000), "capped at max 10 s, half jittered");
        assert_eq!(ms(6, 0.5), None, "six attempts made: no more");
        for r in [0.0, 0.3, 0.7, 0.99] {
            let d = ms(4, r).unwrap();
            assert!((4_000..8_000).contains(&d), "{d}");
        }
    }

    #[test]
    fn fixed_interval_and_retry_after() {
        let p = RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::Fixed { interval_ms: 200 },
        };
        assert_eq!(p.next_delay(1, 0.9, None), Some(Duration::from_millis(200)));
        let longer = Some(Duration::from_secs(7));
        assert_eq!(p.next_delay(1, 0.0, longer), Some(Duration::from_secs(7)));
        let shorter = Some(Duration::from_millis(10));
        assert_eq!(
            p.next_delay(2, 0.0, shorter),
            Some(Duration::from_millis(200))
        );
        let huge = Some(Duration::from_secs(86_400 * 30));
        assert_eq!(
            p.next_delay(1, 0.0, huge),
            Some(Duration::from_millis(RETRY_AFTER_MS_MAX))
        );
        assert_eq!(p.next_delay(3, 0.0, longer), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
