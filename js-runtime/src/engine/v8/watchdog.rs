//! One process-wide watchdog thread that terminates V8 isolates whose
//! deadline passed while JS was running. V8 cannot interrupt itself the
//! way QuickJS's interrupt handler does; `IsolateHandle::terminate_execution`
//! from another thread is the supported way to stop a busy isolate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deno_core::v8::IsolateHandle;

struct Entry {
    handle: IsolateHandle,
    fired: Arc<AtomicBool>,
}

/// With nothing armed the watchdog still looks this often, so that arming
/// a deadline later than its next look needs no wake-up: every invocation
/// arms one, and waking this thread each time cost the warm hook path a
/// futex wake and a context switch (docs/BENCHMARKS.md).
const IDLE_LOOK_MS: u64 = 1_000;

#[derive(Default)]
struct Armed {
    next_id: u64,
    by_deadline: BTreeMap<(Instant, u64), Entry>,
    /// When the watchdog looks next on its own; `None` while it is awake.
    looks_at: Option<Instant>,
}

struct Watchdog {
    armed: Mutex<Armed>,
    changed: Condvar,
}

/// A deadline being watched; dropping it disarms.
pub(super) struct Deadline {
    key: (Instant, u64),
    fired: Arc<AtomicBool>,
}

impl Deadline {
    /// Whether the watchdog terminated the isolate for this deadline.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        lock(&watchdog().armed).by_deadline.remove(&self.key);
    }
}

/// Terminates `handle`'s isolate at `at` unless the returned guard is dropped first.
pub(super) fn arm(handle: IsolateHandle, at: Instant) -> Deadline {
    let dog = watchdog();
    let fired = Arc::new(AtomicBool::new(false));
    let (key, sooner) = {
        let mut armed = lock(&dog.armed);
        armed.next_id += 1;
        let key = (at, armed.next_id);
        armed.by_deadline.insert(
            key,
            Entry {
                handle,
                fired: fired.clone(),
            },
        );
        (key, armed.looks_at.is_some_and(|looks| at < looks))
    };
    // An awake watchdog sees the new entry before it sleeps again.
    if sooner {
        dog.changed.notify_one();
    }
    Deadline { key, fired }
}

fn watchdog() -> &'static Watchdog {
    static DOG: OnceLock<&'static Watchdog> = OnceLock::new();
    DOG.get_or_init(|| {
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            armed: Mutex::default(),
            changed: Condvar::new(),
        }));
        // Lives for the process, like V8's own platform threads.
        std::thread::Builder::new()
            .name("extensor-v8-watchdog".into())
            .spawn(move || watch(dog))
            .expect("spawn the V8 watchdog thread");
        dog
    })
}

fn watch(dog: &'static Watchdog) {
    let mut armed = lock(&dog.armed);
    loop {
        let now = Instant::now();
        let next = armed.by_deadline.first_key_value().map(|(k, _)| k.0);
        if let Some(at) = next
            && at <= now
        {
            if let Some((_, entry)) = armed.by_deadline.pop_first() {
                entry.fired.store(true, Ordering::SeqCst);
                entry.handle.terminate_execution();
            }
            continue;
        }
        let looks = next.unwrap_or(now + Duration::from_millis(IDLE_LOOK_MS));
        armed.looks_at = Some(looks);
        armed = dog
            .changed
            .wait_timeout(armed, looks - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        armed.looks_at = None;
    }
}

/// The map is plain data; a poisoned lock is still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
