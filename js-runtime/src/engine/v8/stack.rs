//! The per-isolate JS stack limit.
//!
//! V8 takes its default stack limit from the process-wide `--stack-size`
//! flag, measured down from the top of whichever thread initialises the
//! isolate. A limit passed in `CreateParams` is not enough: V8 records it,
//! then resets the stack guard from the flag while it deserialises the
//! snapshot, but keeps the smaller stack size for its central-stack checks,
//! so JS below the recorded size but within the flag's limit trips a
//! `CHECK` and aborts the process. `v8::Isolate::SetStackLimit`, called on
//! the isolate's own thread after it exists, sets both consistently; it is
//! V8's public C++ API, which the `v8` crate does not bind, so it is
//! declared here by its C++ symbol (present in every `librusty_v8` archive).

use deno_core::v8;

unsafe extern "C" {
    /// `void v8::Isolate::SetStackLimit(uintptr_t stack_limit)`; a member
    /// function, so the isolate is its first (`this`) argument.
    #[cfg_attr(
        not(target_env = "msvc"),
        link_name = "_ZN2v87Isolate13SetStackLimitEm"
    )]
    #[cfg_attr(
        target_env = "msvc",
        link_name = "?SetStackLimit@Isolate@v8@@QEAAX_K@Z"
    )]
    fn v8_isolate_set_stack_limit(isolate: v8::UnsafeRawIsolatePtr, stack_limit: usize);
}

/// Lets JS on this isolate use `bytes` of stack below the caller's frame.
///
/// Must be called on the thread that runs the isolate's JS for its whole
/// life (the limit is an address on this thread's stack), and that thread's
/// stack must extend at least `bytes` (plus a margin for native frames
/// beyond the limit) below here; `Isolate::start` sizes it so.
#[inline(never)]
pub(super) fn limit_stack(isolate: &mut v8::Isolate, bytes: usize) {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let Some(limit) = here.checked_sub(bytes).filter(|&l| l > 0) else {
        panic!("a stack limit of {bytes} bytes below {here:#x} is not an address");
    };
    // SAFETY: the isolate is alive and owned by this thread, which is the
    // only thread that ever enters it; the limit lies within this thread's
    // stack (see above), which V8 requires of the address it is given.
    unsafe { v8_isolate_set_stack_limit(isolate.as_raw_isolate_ptr(), limit) }
}
