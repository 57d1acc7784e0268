//! What an isolate's heap costs: the committed bytes now, and the most it
//! held during an invocation. V8 keeps no running peak, so the heap is
//! sampled right before every garbage collection, where a growing heap is
//! at its local maximum (a collection is what would shrink it), and once
//! more when the invocation ends.

use std::cell::Cell;
use std::ffi::c_void;

use deno_core::v8;

/// Bytes V8 has committed for an isolate's heap (physical pages, not
/// reserved address space), plus memory it accounts outside it (array
/// buffers).
pub(super) fn committed_bytes(s: &v8::HeapStatistics) -> usize {
    s.total_physical_size() + s.external_memory()
}

/// The in-call high-water mark of [`committed_bytes`], kept by a GC
/// prologue callback. Must outlive the isolate it watches (the engine
/// declares it after its runtime, so it is dropped after the isolate).
pub(super) struct HeapPeak(Box<Cell<usize>>);

impl HeapPeak {
    pub fn watch(isolate: &mut v8::Isolate) -> HeapPeak {
        let peak = HeapPeak(Box::new(Cell::new(0)));
        let data = std::ptr::from_ref::<Cell<usize>>(&peak.0)
            .cast_mut()
            .cast::<c_void>();
        isolate.add_gc_prologue_callback(sample, data, v8::GCType::kGCTypeAll);
        peak
    }

    /// Forgets earlier samples: an invocation starts.
    pub fn reset(&self) {
        self.0.set(0);
    }

    /// The most sampled since [`reset`](Self::reset), or `now` if more.
    pub fn peak(&self, now: usize) -> usize {
        self.0.get().max(now)
    }
}

/// Runs on the isolate's own thread, inside V8, before each collection.
unsafe extern "C" fn sample(
    isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: `data` is the boxed cell of a live `HeapPeak` (it outlives
    // the isolate), and V8 calls this on the isolate's only thread, so the
    // cell is never touched concurrently.
    let peak = unsafe { &*data.cast::<Cell<usize>>() };
    // SAFETY: V8 passes the isolate that is collecting; reading its heap
    // statistics from a GC callback is allowed, and this wrapper owns
    // nothing (dropping it does not dispose the isolate).
    let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(isolate) };
    let bytes = committed_bytes(&isolate.get_heap_statistics());
    if bytes > peak.get() {
        peak.set(bytes);
    }
}
