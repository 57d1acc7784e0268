//! The host-call budget of one isolate: how many `ctx.*` calls may be in
//! flight and how many bytes they may hold, whatever engine runs the JS.
//!
//! A call holds bytes from the moment JS makes it (its JSON arguments) until
//! JS has its answer (the JSON envelope the promise resolves with): answers
//! that arrived but were not yet handed to JS sit in the engine's channel,
//! and a fan-out of large reads would otherwise pile them up there. An engine
//! asks [`HostCalls::admit`] before starting a call, runs
//! [`CallTicket::finish`] on its answer, and drops the [`Settled`] once JS
//! has taken the envelope (or the invocation ended), which releases both the
//! count and the bytes. Nothing here knows about QuickJS or V8.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::error::JsError;

/// Host calls one isolate may have in flight; a fan-out bomb
/// (`Promise.all` of thousands of fetches) stops here.
pub const HOST_CALLS_IN_FLIGHT_MAX: usize = 64;
/// Bytes the in-flight host calls of one isolate may hold together
/// (arguments plus answers not yet handed to JS). 64 calls each reading a
/// large file or query result would otherwise make the host hold 64 times
/// the per-call cap; 32 MiB is several full-size answers at once.
pub const HOST_CALL_BYTES_IN_FLIGHT_MAX: usize = 32 * 1024 * 1024;

#[derive(Debug, Default)]
struct Used {
    calls: usize,
    bytes: usize,
}

/// One isolate's in-flight host calls. Cheap to clone (shared counters).
#[derive(Clone, Debug)]
pub struct HostCalls {
    used: Arc<Mutex<Used>>,
    calls_max: usize,
    bytes_max: usize,
}

impl Default for HostCalls {
    fn default() -> Self {
        HostCalls::new(HOST_CALLS_IN_FLIGHT_MAX, HOST_CALL_BYTES_IN_FLIGHT_MAX)
    }
}

impl HostCalls {
    pub fn new(calls_max: usize, bytes_max: usize) -> HostCalls {
        HostCalls {
            used: Arc::default(),
            calls_max,
            bytes_max,
        }
    }

    /// (calls, bytes) in flight now.
    pub fn in_flight(&self) -> (usize, usize) {
        let u = lock(&self.used);
        (u.calls, u.bytes)
    }

    /// Admits a call whose JSON arguments are `args_bytes` long, or says
    /// which limit it would break.
    pub fn admit(&self, args_bytes: usize) -> Result<CallTicket, JsError> {
        let mut u = lock(&self.used);
        if u.calls >= self.calls_max {
            return Err(JsError::LimitExceeded {
                op: "ctx",
                limit: "HOST_CALLS_IN_FLIGHT_MAX",
                max: self.calls_max as u64,
                what: format!("{} host calls in flight", u.calls + 1),
            });
        }
        if u.bytes.saturating_add(args_bytes) > self.bytes_max {
            return Err(self.bytes_error(u.bytes.saturating_add(args_bytes)));
        }
        u.calls += 1;
        u.bytes += args_bytes;
        Ok(CallTicket {
            calls: self.clone(),
            bytes: args_bytes,
        })
    }

    fn bytes_error(&self, would_hold: usize) -> JsError {
        JsError::LimitExceeded {
            op: "ctx",
            limit: "HOST_CALL_BYTES_IN_FLIGHT_MAX",
            max: self.bytes_max as u64,
            what: format!("host calls in flight would hold {would_hold} bytes"),
        }
    }
}

/// One admitted call; dropping it releases what it holds.
#[derive(Debug)]
pub struct CallTicket {
    calls: HostCalls,
    bytes: usize,
}

impl CallTicket {
    /// Turns the call's result into the envelope JS receives and accounts
    /// for its bytes; an answer that would push the isolate past
    /// [`HOST_CALL_BYTES_IN_FLIGHT_MAX`] becomes an error envelope instead
    /// (the large value is dropped here, before it queues).
    pub fn finish(mut self, result: Result<Value, JsError>) -> Settled {
        let text = envelope(result);
        let mut u = lock(&self.calls.used);
        let held = u.bytes - self.bytes.min(u.bytes);
        let text = if held.saturating_add(text.len()) > self.calls.bytes_max {
            envelope(Err(self.calls.bytes_error(held.saturating_add(text.len()))))
        } else {
            text
        };
        u.bytes = held + text.len();
        self.bytes = text.len();
        drop(u);
        Settled {
            envelope: text,
            _ticket: self,
        }
    }
}

impl Drop for CallTicket {
    fn drop(&mut self) {
        let mut u = lock(&self.calls.used);
        u.calls = u.calls.saturating_sub(1);
        u.bytes = u.bytes.saturating_sub(self.bytes);
    }
}

/// A finished call's envelope, still counted until it is dropped.
#[derive(Debug)]
pub struct Settled {
    pub envelope: String,
    _ticket: CallTicket,
}

/// What a host call resolves to in JS: `{ok}` or
/// `{error: {kind, message, permission?}}`.
pub fn envelope(result: Result<Value, JsError>) -> String {
    match result {
        Ok(v) => json!({ "ok": v }).to_string(),
        Err(e) => {
            let permission = match &e {
                JsError::PermissionDenied { permission } => Some(permission.clone()),
                _ => None,
            };
            json!({"error": {"kind": e.kind(), "message": e.to_string(), "permission": permission}})
                .to_string()
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_bytes_are_both_bounded_and_released() {
        let calls = HostCalls::new(2, 100);
        let a = calls.admit(10).unwrap();
        let b = calls.admit(10).unwrap();
        let err = calls.admit(1).unwrap_err();
        assert!(
            err.to_string().contains("HOST_CALLS_IN_FLIGHT_MAX"),
            "{err}"
        );
        drop(b);
        let err = calls.admit(95).unwrap_err();
        assert!(
            err.to_string().contains("HOST_CALL_BYTES_IN_FLIGHT_MAX"),
            "{err}"
        );
        // A large answer becomes an error envelope, not a queued value.
        let settled = a.finish(Ok(Value::String("x".repeat(200))));
        assert!(
            settled.envelope.contains("LimitExceeded"),
            "{}",
            settled.envelope
        );
        assert!(settled.envelope.len() <= 200);
        assert_eq!(calls.in_flight().0, 1);
        drop(settled);
        assert_eq!(calls.in_flight(), (0, 0));
        let ok = calls.admit(5).unwrap().finish(Ok(json!(1)));
        assert_eq!(ok.envelope, r#"{"ok":1}"#);
        assert_eq!(calls.in_flight(), (1, ok.envelope.len()));
    }
}
