//! The engine-neutral checks of a `ctx` host call before it may start:
//! it runs inside an invocation, its op name and JSON arguments decode, and
//! the manifest grants its permission. The isolate's in-flight budget (count
//! and bytes) and the envelope JS receives are `host::calls`. Each engine
//! only moves strings across its boundary and runs the admitted [`HostOp`]
//! on tokio.

use extensor_core::manifest::Permission;

use super::IsolateSpec;
use crate::error::JsError;
use crate::host::{CallContext, HostOp};

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
/// (`None` outside an invocation, e.g. at module top level).
pub(crate) fn admit(
    spec: &IsolateSpec,
    cx: Option<CallContext>,
    op: &str,
    args_json: &str,
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
    Ok(Admitted { op, cx })
}
