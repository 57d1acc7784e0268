//! The engine boundary. Everything engine-specific lives below this module;
//! the rest of the crate speaks [`IsolateSpec`], [`InvokeJob`] and
//! [`RawOutcome`]. A V8 engine would be a sibling of `quickjs` behind a
//! cargo feature, with the same three types.

mod quickjs;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use extensor_core::manifest::Permission;
use serde_json::Value;

use crate::bundle::Sources;
use crate::config::Limits;
use crate::host::{HostServices, InstallationScope};
use crate::logs::LogEntry;
use crate::plugin::Registration;

pub(crate) use quickjs::Isolate;

/// Everything needed to create an isolate for one installation.
pub(crate) struct IsolateSpec {
    pub sources: Arc<Sources>,
    pub entry: String,
    pub limits: Limits,
    pub permissions: BTreeSet<Permission>,
    pub allowed_hosts: Arc<Vec<String>>,
    pub scope: InstallationScope,
    pub services: HostServices,
    pub plugin_info: Value,
    pub tokio: tokio::runtime::Handle,
}

/// One call into JS: which handler, with what input, under what deadline.
pub(crate) struct InvokeJob {
    /// Index into the isolate's registrations.
    pub handler: usize,
    pub input_json: String,
    /// `{tenant, plugin, invocation}` as given to `ctx`.
    pub info_json: String,
    pub deadline: Duration,
    pub causation_id: Option<String>,
    pub chain_depth: u32,
}

pub(crate) struct RawOutcome {
    pub value: Value,
}

/// What one isolate reports after evaluating the bundle.
pub(crate) struct Loaded {
    pub registrations: Vec<Registration>,
}

/// The JS result plus the logs captured whatever happened.
pub(crate) struct Finished {
    pub result: Result<RawOutcome, crate::error::JsError>,
    pub logs: Vec<LogEntry>,
    /// The isolate hit a limit or is crowded and must not be reused.
    pub discard: bool,
    /// Heap bytes the isolate holds after the invocation (what keeping it
    /// warm costs); the installation sums these for the process-wide cap.
    pub heap_bytes: usize,
}
