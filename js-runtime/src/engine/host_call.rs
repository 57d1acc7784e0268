//! The engine-neutral half of a `ctx` host call: decoding the op name and
//! JSON arguments, the permission check, the in-flight bound, and the
//! `{ok}` / `{error}` envelope JS receives. Each engine only moves strings
//! across its boundary and runs the admitted [`HostOp`] on tokio.

use extensor_core::manifest::Permission;
use serde_json::{Value, json};

use super::IsolateSpec;
use crate::error::JsError;
use crate::host::{CallContext, HostOp};

/// Host calls one invocation may have in flight; a fan-out bomb stops here.
pub(crate) const CALLS_IN_FLIGHT_MAX: usize = 64;

/// A host call that passed every check, ready to run.
pub(crate) struct Admitted {
    pub op: HostOp,
    pub cx: CallContext,
}

/// Why a call was refused, and the permission it lacked (for classifying the
/// error if the plugin lets it escape).
pub(crate) struct Refused {
    pub error: JsError,
    pub denied: Option<Permission>,
}

/// Decodes and checks one call. `cx` is the running invocation's context
/// (`None` outside an invocation, e.g. at module top level); `in_flight` is
/// how many calls of this invocation are still running.
pub(crate) fn admit(
    spec: &IsolateSpec,
    cx: Option<CallContext>,
    op: &str,
    args_json: &str,
    in_flight: usize,
) -> Result<Admitted, Refused> {
    let refused = |error| Refused {
        error,
        denied: None,
    };
    let cx = cx.ok_or_else(|| {
        refused(JsError::InvalidArgument {
            op: "ctx",
            message: "ctx can only be used during its own invocation".into(),
        })
    })?;
    let op = HostOp::decode(op, args_json).map_err(refused)?;
    let permission = op.permission();
    if !spec.permissions.contains(&permission) {
        return Err(Refused {
            error: JsError::PermissionDenied {
                permission: permission.as_str().into(),
            },
            denied: Some(permission),
        });
    }
    if in_flight >= CALLS_IN_FLIGHT_MAX {
        return Err(refused(JsError::InvalidArgument {
            op: "ctx",
            message: format!("more than {CALLS_IN_FLIGHT_MAX} host calls in flight"),
        }));
    }
    Ok(Admitted { op, cx })
}

/// What a host call resolves to in JS: `{ok}` or `{error: {kind, message, permission?}}`.
pub(crate) fn envelope(result: Result<Value, JsError>) -> String {
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
