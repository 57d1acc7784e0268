//! Where "now" comes from. Everything that waits for a wall-clock time (the
//! job scheduler, retry timers) reads and sleeps through a [`Clock`], so tests
//! drive time with a [`ManualClock`] instead of sleeping for real minutes.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

/// A source of wall-clock time that can also wait for a moment to come.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`now`](Clock::now) has reached `at` (at once if it has).
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The system's clock; sleeps on tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // The system clock may be stepped while we sleep; re-check and
            // sleep again rather than firing early.
            loop {
                let left = at - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// A clock that only moves when told to. Sleepers wake as soon as
/// [`advance`](ManualClock::advance) or [`set`](ManualClock::set) moves the
/// time past their deadline.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    changes: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
            changes: Arc::new(watch::channel(start).0),
        }
    }

    /// Moves the time to `at`. Time never goes backwards: an earlier `at` is
    /// ignored, as a monotonic clock would.
    pub fn set(&self, at: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if at > *now {
            *now = at;
            self.changes.send_replace(at);
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        let target = self.now() + by;
        self.set(target);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut changes = self.changes.subscribe();
        Box::pin(async move {
            loop {
                if *changes.borrow_and_update() >= at {
                    return;
                }
                if changes.changed().await.is_err() {
                    // The clock is gone: nothing will ever move it again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_time_passes_their_deadline() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = ManualClock::new(t0);
        let sleeper = tokio::spawn(clock.sleep_until(t0 + chrono::Duration::seconds(60)));
        clock.advance(chrono::Duration::seconds(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke before its deadline");
        clock.advance(chrono::Duration::seconds(1));
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper)
            .await
            .expect("sleeper woke")
            .expect("joined");
        // Time does not go backwards.
        clock.set(t0);
        assert_eq!(clock.now(), t0 + chrono::Duration::seconds(60));
        // A deadline already passed resolves at once.
        clock.sleep_until(t0).await;
    }
}
