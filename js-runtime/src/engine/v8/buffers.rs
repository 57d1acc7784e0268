//! Array-buffer memory per isolate. V8 keeps `ArrayBuffer` contents outside
//! its heap, so the heap limit alone would let `new ArrayBuffer(…)` in a
//! loop take the machine's memory. This allocator counts those bytes against
//! a budget of the same size as the heap limit; a refused allocation is a
//! `RangeError` in JS and `HeapLimit` for the host.

use std::alloc::Layout;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use deno_core::v8;

/// Alignment of every buffer (V8 asks for none; 16 suits SIMD and typed arrays).
const BUFFER_ALIGN_BYTES: usize = 16;

pub(super) struct BufferBudget {
    used_bytes: AtomicUsize,
    limit_bytes: usize,
    exhausted: AtomicBool,
}

impl BufferBudget {
    pub fn new(limit_bytes: usize) -> Arc<BufferBudget> {
        Arc::new(BufferBudget {
            used_bytes: AtomicUsize::new(0),
            limit_bytes,
            exhausted: AtomicBool::new(false),
        })
    }

    /// Whether an allocation was refused since the last [`reset`](Self::reset).
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst)
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::SeqCst)
    }

    fn reserve(&self, len: usize) -> bool {
        let admitted = self
            .used_bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(len)
                    .filter(|after| *after <= self.limit_bytes)
            })
            .is_ok();
        if !admitted {
            self.exhausted.store(true, Ordering::SeqCst);
        }
        admitted
    }

    fn release(&self, len: usize) {
        self.used_bytes.fetch_sub(len, Ordering::SeqCst);
    }
}

/// A V8 array-buffer allocator drawing on `budget`.
pub(super) fn allocator(budget: &Arc<BufferBudget>) -> v8::UniqueRef<v8::Allocator> {
    static VTABLE: v8::RustAllocatorVtable<BufferBudget> = v8::RustAllocatorVtable {
        allocate,
        allocate_uninitialized: allocate,
        free,
        drop: drop_handle,
    };
    let handle = Arc::into_raw(budget.clone());
    // SAFETY: `handle` is a live `Arc` that V8 owns until it calls `drop`,
    // and the vtable functions below only use it as a `&BufferBudget`.
    unsafe { v8::new_rust_allocator(handle, &VTABLE) }
}

fn layout(len: usize) -> Option<Layout> {
    Layout::from_size_align(len.max(1), BUFFER_ALIGN_BYTES).ok()
}

unsafe extern "C" fn allocate(budget: &BufferBudget, len: usize) -> *mut c_void {
    let Some(layout) = layout(len) else {
        return std::ptr::null_mut();
    };
    if !budget.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        budget.release(len);
    }
    p.cast()
}

unsafe extern "C" fn free(budget: &BufferBudget, data: *mut c_void, len: usize) {
    if data.is_null() {
        return;
    }
    if let Some(layout) = layout(len) {
        budget.release(len);
        // SAFETY: V8 frees with the length it allocated with, so this is the
        // layout `allocate` used for this pointer.
        unsafe { std::alloc::dealloc(data.cast(), layout) };
    }
}

unsafe extern "C" fn drop_handle(handle: *const BufferBudget) {
    // SAFETY: `handle` came from `Arc::into_raw` in `allocator`, once.
    drop(unsafe { Arc::from_raw(handle) });
}
