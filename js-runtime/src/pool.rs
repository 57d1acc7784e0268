//! An installation's warm isolates, and which one each invocation goes to
//! (issue 20). At most `pool_isolates_max` isolates, each taking up to
//! `isolate_queue_max` invocations at once: one running, the
//! rest queued on its thread, so a busy isolate goes from one invocation
//! straight to the next instead of sleeping until the host hands it
//! another (which cost up to four thread wake-ups per invocation:
//! docs/BENCHMARKS.md, plugin routes). An invocation goes to an idle
//! isolate if there is one, else to a new isolate while the pool has room,
//! else it queues on the least busy one; beyond pool × depth, callers wait
//! for a permit (backpressure: nothing is dropped). An isolate that is
//! discarded (a limit hit, killed) leaves the pool at once; invocations
//! queued on it that never started are run elsewhere.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use crate::engine::{Isolate, IsolateSpec};
use crate::error::JsError;

pub(crate) struct Pool {
    spec: Arc<IsolateSpec>,
    members: Arc<Mutex<Members>>,
    /// A member was added, freed or removed: callers waiting for one look again.
    changed: Notify,
    /// Invocations admitted at once: isolates × depth.
    permits: Semaphore,
    isolates_max: usize,
    /// Invocations one isolate takes at once.
    queue_max: usize,
    /// The sandbox's count of isolates ever started.
    started: Arc<AtomicU64>,
    /// The most heap the pool's isolates held together since it was built,
    /// each invocation's isolate counted at its in-call peak.
    heap_peak_bytes: AtomicUsize,
}

#[derive(Default)]
pub(crate) struct Members {
    list: Vec<Member>,
    /// Isolates being started now (they count against the pool's size).
    starting: usize,
    next_id: u64,
}

struct Member {
    id: u64,
    isolate: Arc<Isolate>,
    /// Invocations sent to it and not answered yet.
    busy: usize,
    /// Heap bytes it held after its last invocation.
    heap: HeapShare,
    /// When `busy` last fell to zero.
    idle_since: Instant,
}

/// One member's heap bytes, kept in the sandbox's running total of every
/// warm isolate's heap ([`IsolateSpec::warm_heap`]) as well: a change is
/// added to it, and dropping the member (discarded, reaped, or its pool
/// dropped) takes its bytes out, so no path that ends a member can leave
/// the total wrong.
struct HeapShare {
    bytes: usize,
    total: Arc<AtomicUsize>,
}

impl HeapShare {
    fn new(bytes: usize, total: &Arc<AtomicUsize>) -> HeapShare {
        total.fetch_add(bytes, Ordering::Relaxed);
        HeapShare {
            bytes,
            total: total.clone(),
        }
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn set(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            self.total.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            self.total.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }
}

impl Drop for HeapShare {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// One invocation's claim on one isolate; dropping it gives the claim back
/// with what [`ran`](Lease::ran) or [`not_run`](Lease::not_run) recorded.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    id: u64,
    pub isolate: Arc<Isolate>,
    /// After the invocation: `(held, in-call peak)` heap bytes.
    heap_bytes: Option<(usize, usize)>,
    discard: bool,
}

enum Pick {
    Member(u64, Arc<Isolate>),
    Start,
    Wait,
}

impl Pool {
    /// `isolates_max` and `queue_max` of at least 1 (the settings refuse 0).
    pub fn new(
        spec: Arc<IsolateSpec>,
        (isolates_max, queue_max): (usize, usize),
        started: Arc<AtomicU64>,
    ) -> Pool {
        let (isolates_max, queue_max) = (isolates_max.max(1), queue_max.max(1));
        Pool {
            spec,
            members: Arc::default(),
            changed: Notify::new(),
            permits: Semaphore::new(isolates_max.saturating_mul(queue_max)),
            isolates_max,
            queue_max,
            started,
            heap_peak_bytes: AtomicUsize::new(0),
        }
    }

    pub fn spec(&self) -> &Arc<IsolateSpec> {
        &self.spec
    }

    /// Admission of one invocation (waits while the pool is full).
    pub async fn permit(&self) -> Result<SemaphorePermit<'_>, JsError> {
        self.permits
            .acquire()
            .await
            .map_err(|e| JsError::Internal(e.to_string()))
    }

    /// An isolate for one invocation: idle, new, or the least busy.
    pub async fn lease(&self) -> Result<Lease<'_>, JsError> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.pick() {
                Pick::Member(id, isolate) => return Ok(self.lease_of(id, isolate)),
                Pick::Start => {
                    let (id, isolate) = self.start_member(1).await?;
                    return Ok(self.lease_of(id, isolate));
                }
                Pick::Wait => notified.await,
            }
        }
    }

    fn pick(&self) -> Pick {
        let mut m = lock(&self.members);
        // The most recently used idle one, so the others stay idle long
        // enough for the reaper when traffic falls.
        if let Some(x) = m
            .list
            .iter_mut()
            .filter(|x| x.busy == 0)
            .max_by_key(|x| x.idle_since)
        {
            x.busy += 1;
            return Pick::Member(x.id, x.isolate.clone());
        }
        if m.list.len() + m.starting < self.isolates_max {
            m.starting += 1;
            return Pick::Start;
        }
        match m
            .list
            .iter_mut()
            .filter(|x| x.busy < self.queue_max)
            .min_by_key(|x| x.busy)
        {
            Some(x) => {
                x.busy += 1;
                Pick::Member(x.id, x.isolate.clone())
            }
            None => Pick::Wait,
        }
    }

    fn lease_of(&self, id: u64, isolate: Arc<Isolate>) -> Lease<'_> {
        Lease {
            pool: self,
            id,
            isolate,
            heap_bytes: None,
            discard: false,
        }
    }

    /// Starts an isolate (one `starting` slot was taken for it) and adds it
    /// with `busy` invocations.
    async fn start_member(&self, busy: usize) -> Result<(u64, Arc<Isolate>), JsError> {
        let slot = Starting(self);
        self.started.fetch_add(1, Ordering::Relaxed);
        let isolate = Arc::new(Isolate::start(self.spec.clone()).await?);
        let heap_bytes = isolate.loaded_heap_bytes();
        let id = {
            let mut m = lock(&self.members);
            let id = m.next_id;
            m.next_id += 1;
            m.list.push(Member {
                id,
                isolate: isolate.clone(),
                busy,
                heap: HeapShare::new(heap_bytes, &self.spec.warm_heap),
                idle_since: Instant::now(),
            });
            let total = m.list.iter().map(|x| x.heap.bytes()).sum();
            self.heap_peak_bytes.fetch_max(total, Ordering::Relaxed);
            id
        };
        drop(slot);
        Ok((id, isolate))
    }

    /// Starts isolates until `count` exist (bounded by the pool size).
    pub async fn prewarm(&self, count: usize) -> Result<(), JsError> {
        let want = count.min(self.isolates_max);
        loop {
            {
                let mut m = lock(&self.members);
                if m.list.len() + m.starting >= want {
                    return Ok(());
                }
                m.starting += 1;
            }
            self.start_member(0).await?;
        }
    }

    /// Isolates alive in the pool, busy or idle.
    pub fn isolates(&self) -> usize {
        lock(&self.members).list.len()
    }

    /// Heap bytes the pool's isolates held after their last invocation.
    pub fn heap_bytes(&self) -> usize {
        lock(&self.members)
            .list
            .iter()
            .map(|x| x.heap.bytes())
            .sum()
    }

    /// The most heap the pool's isolates held together at any point since
    /// the pool was built: when an invocation ends, its isolate counts at
    /// its in-call peak and the others at what they held after their last
    /// invocation. At least [`heap_bytes`](Self::heap_bytes) was then.
    pub fn heap_peak_bytes(&self) -> usize {
        self.heap_peak_bytes.load(Ordering::Relaxed)
    }

    /// Every isolate's heap bytes now (asks each thread).
    pub async fn memory_bytes(&self) -> Vec<usize> {
        let isolates: Vec<Arc<Isolate>> = lock(&self.members)
            .list
            .iter()
            .map(|x| x.isolate.clone())
            .collect();
        let mut out = Vec::new();
        for isolate in isolates {
            out.extend(isolate.memory_bytes().await);
        }
        out
    }

    /// For the reaper, which must not keep the pool alive.
    pub fn members(&self) -> Weak<Mutex<Members>> {
        Arc::downgrade(&self.members)
    }

    fn give_back(&self, id: u64, heap_bytes: Option<(usize, usize)>, discard: bool) {
        let removed = {
            let mut m = lock(&self.members);
            let Some(i) = m.list.iter().position(|x| x.id == id) else {
                return;
            };
            if let Some((_, peak)) = heap_bytes {
                let others: usize = m
                    .list
                    .iter()
                    .filter(|x| x.id != id)
                    .map(|x| x.heap.bytes())
                    .sum();
                self.heap_peak_bytes
                    .fetch_max(others.saturating_add(peak), Ordering::Relaxed);
            }
            let x = &mut m.list[i];
            x.busy -= 1;
            if let Some((bytes, _)) = heap_bytes {
                x.heap.set(bytes);
            }
            if x.busy == 0 {
                x.idle_since = Instant::now();
            }
            let remove = discard || x.isolate.is_closed();
            remove.then(|| m.list.swap_remove(i))
        };
        // Outside the lock: ending an isolate's thread is not free.
        drop(removed);
        self.changed.notify_waiters();
    }
}

impl Lease<'_> {
    /// The invocation ran: the heap the isolate holds now and the most it
    /// held during the invocation, and whether it is discarded.
    pub fn ran(&mut self, (heap_bytes, heap_peak_bytes): (usize, usize), discard: bool) {
        self.heap_bytes = Some((heap_bytes, heap_peak_bytes));
        self.discard = discard;
    }

    /// The isolate closed before the invocation started: it leaves the pool.
    pub fn not_run(&mut self) {
        self.discard = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.give_back(self.id, self.heap_bytes, self.discard);
    }
}

/// A `starting` slot, given back however the start ends (also when the
/// starting caller goes away).
struct Starting<'a>(&'a Pool);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        lock(&self.0.members).starting -= 1;
        self.0.changed.notify_waiters();
    }
}

/// The reaper: sleeps until the longest-idle isolate has been idle for
/// `after`, drops every isolate idle that long, and repeats. It holds the
/// pool only weakly and ends when the installation is gone (which also
/// aborts it), so it never keeps an isolate alive.
pub(crate) async fn reap_idle(pool: Weak<Mutex<Members>>, after: Duration) {
    loop {
        let next = {
            let Some(pool) = pool.upgrade() else { return };
            let oldest = lock(&pool)
                .list
                .iter()
                .filter(|x| x.busy == 0)
                .map(|x| x.idle_since)
                .min();
            oldest.map_or_else(|| Instant::now() + after, |t| t + after)
        };
        tokio::time::sleep_until(next.into()).await;
        let Some(pool) = pool.upgrade() else { return };
        // Dropped outside the lock: ending an isolate's thread is not free.
        let expired: Vec<Member> = {
            let mut m = lock(&pool);
            let now = Instant::now();
            let (gone, keep) = std::mem::take(&mut m.list)
                .into_iter()
                .partition(|x| x.busy == 0 && now.duration_since(x.idle_since) >= after);
            m.list = keep;
            gone
        };
        drop(expired);
    }
}

/// A poisoned lock only means another invocation panicked mid-update of a
/// plain list; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
