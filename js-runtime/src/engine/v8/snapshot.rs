//! The V8 platform (flags, initialisation) and the start-up snapshot: made once per process, on
//! first use, with the prelude and SDK object already evaluated, so every
//! isolate deserialises a ready heap instead of compiling the prelude.
//!
//! First use rather than build time: a build-time snapshot needs deno_core
//! and V8 as build-dependencies too, compiled and linked a second time for
//! the build script (the most expensive part of a cold build), and a
//! snapshot only loads into the very V8 binary and flags that made it, which
//! in-process creation guarantees. The cost is one snapshot per process
//! (measured in docs/BENCHMARKS.md), paid by the first V8 isolate.

use std::sync::OnceLock;

use deno_core::{JsRuntime, JsRuntimeForSnapshot, RuntimeOptions};

use super::V8_STACK_BYTES;
use super::ops::extensor_host;
use crate::engine::PRELUDE;
use crate::error::JsError;

const BOOTSTRAP: &str = include_str!("bootstrap.js");

/// The snapshot, made on first call. Must be called inside a tokio runtime
/// context (deno_core's requirement for any runtime).
pub(super) fn startup_snapshot() -> Result<&'static [u8], JsError> {
    static SNAPSHOT: OnceLock<Result<&'static [u8], String>> = OnceLock::new();
    SNAPSHOT
        .get_or_init(make)
        .clone()
        .map_err(|e| JsError::Internal(format!("V8 start-up snapshot: {e}")))
}

fn make() -> Result<&'static [u8], String> {
    // Initialise the platform in normal (not snapshotting) mode first: V8's
    // flags are process-wide and set once, and the snapshotting ones
    // (`--predictable`) would turn off concurrent compilation and GC for
    // every isolate that follows. The platform is the unprotected one
    // (cargo feature `unsafe_use_unprotected_platform`): isolate threads
    // are not all descendants of the thread that initialised V8, which
    // memory-protection-key JIT pages require.
    deno_core::v8::V8::set_flags_from_string(&format!("--stack-size={}", V8_STACK_BYTES / 1024));
    JsRuntime::init_platform(None);
    let mut runtime = JsRuntimeForSnapshot::try_new(RuntimeOptions {
        extensions: vec![extensor_host::init()],
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let source = format!("({BOOTSTRAP})(Deno.core.ops, {PRELUDE});");
    runtime
        .execute_script("extensor:bootstrap", source)
        .map_err(|e| e.to_string())?;
    Ok(Box::leak(runtime.snapshot()))
}
