//! Platform-wide sandbox limits and settings, and how a manifest tightens them.

use std::time::Duration;

use extensor_core::manifest::ManifestLimits;

use crate::error::JsError;

const MIB: usize = 1024 * 1024;
/// Issue 3: 100 MiB of heap per isolate unless the platform says otherwise.
pub const HEAP_MB_DEFAULT: usize = 100;
/// Hooks and routes answer users or event flows; 5 s is generous.
pub const DEADLINE_MS_DEFAULT: u64 = 5_000;
/// Jobs are batch work and get longer.
pub const JOB_DEADLINE_MS_DEFAULT: u64 = 30_000;
/// JS stack. QuickJS frames are large (~1 KiB); 1 MiB allows thousands of
/// frames while staying well inside the isolate thread's own stack.
pub const STACK_BYTES_DEFAULT: usize = MIB;
/// Warm isolates kept per installation. Each costs a thread and a heap, so
/// the pool is small; concurrent invocations beyond it wait.
pub const POOL_ISOLATES_MAX_DEFAULT: usize = 2;
/// Invocations one isolate takes at once by default: one running, the rest
/// queued on its thread, which runs them back to back without sleeping in
/// between (issue 20's pipelining; docs/BENCHMARKS.md). With the pool size
/// this bounds what an installation admits at once; callers beyond it wait.
/// Time spent queued does not count against an invocation's deadline.
pub const ISOLATE_QUEUE_MAX_DEFAULT: usize = 8;
/// A warm isolate left idle this long is dropped (its thread ends and its
/// heap is freed): a V8 isolate holds ~11 MiB once warm, and an installation
/// called once an hour should not hold that all hour. Five minutes keeps
/// isolates warm through any steady traffic, where a cold start (0.3 ms on
/// QuickJS, 2 ms on V8) per call would show.
pub const ISOLATE_IDLE_MS_DEFAULT: u64 = 5 * 60 * 1000;
/// V8 isolates kept made ahead of demand (`EXTENSOR_SPARE_ISOLATES`), so a
/// new installation's first isolate skips V8's own start (deserialising
/// the snapshot, ~1.5 ms of a ~2 ms cold start: docs/BENCHMARKS.md). One
/// per sandbox covers installations that arrive one at a time, and costs a
/// thread and a fresh heap (measured there); a burst beyond it waits for
/// spares still being made, or makes its own.
pub const SPARE_ISOLATES_DEFAULT: usize = 1;
/// Each spare is a thread and a heap held whether or not installations
/// come; more than this is memory spent on a burst that rarely comes.
pub const SPARE_ISOLATES_MAX: usize = 16;
/// `ctx.emit` → hook → `ctx.emit` … deeper than this is a loop, not a design.
pub const EMIT_CHAIN_DEPTH_MAX: u32 = 8;
/// The largest JSON result a handler may return: results land in events.
pub const RESULT_BYTES_MAX: usize = MIB;
/// Host operations (HTTP, LLM) time out this long *after* the invocation
/// deadline, so the invocation's own Timeout is what the plugin sees.
pub const HOST_TIMEOUT_SLACK_MS: u64 = 100;
/// After the deadline the host waits this long for the isolate thread to notice
/// (interrupt handler) before giving up on it; covers long native operations.
pub const DEADLINE_GRACE_MS: u64 = 250;

/// Platform-wide settings. Build one explicitly (tests) or with [`SandboxConfig::from_env`].
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub heap_bytes_max: usize,
    pub deadline_ms: u64,
    pub job_deadline_ms: u64,
    pub stack_bytes_max: usize,
    pub pool_isolates_max: usize,
    /// `EXTENSOR_ISOLATE_IDLE_SECONDS`: a warm isolate idle longer than this
    /// is dropped ([`ISOLATE_IDLE_MS_DEFAULT`]).
    pub isolate_idle_ms: u64,
    /// `EXTENSOR_ISOLATE_QUEUE_MAX`: invocations one isolate takes at once
    /// ([`ISOLATE_QUEUE_MAX_DEFAULT`]); 1 runs each isolate one invocation
    /// at a time, handing it the next only after the last answer.
    pub isolate_queue_max: usize,
    /// `EXTENSOR_SPARE_ISOLATES`: V8 isolates kept made ahead of demand
    /// ([`SPARE_ISOLATES_DEFAULT`]); 0 makes every isolate from scratch.
    pub spare_isolates: usize,
    pub network: NetworkPolicy,
    /// `EXTENSOR_JS_ENGINE`: which engine runs plugin code.
    pub engine: JsEngine,
}

/// The JS engine behind the sandbox. Both run the same bundles with the same
/// `ctx` API and limits; docs/PLUGINS.md says what differs for authors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JsEngine {
    /// QuickJS (rquickjs): ES2023, interpreter only, small isolates.
    QuickJs,
    /// V8 through deno_core (cargo feature `v8`): JIT, larger isolates.
    V8,
}

impl JsEngine {
    /// The engines this build contains, default first.
    pub fn available() -> &'static [JsEngine] {
        if cfg!(feature = "v8") {
            &[JsEngine::V8, JsEngine::QuickJs]
        } else {
            &[JsEngine::QuickJs]
        }
    }

    /// `v8` or `quickjs`, as `EXTENSOR_JS_ENGINE` spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            JsEngine::QuickJs => "quickjs",
            JsEngine::V8 => "v8",
        }
    }

    /// Parses `EXTENSOR_JS_ENGINE`; an engine this build lacks is an error
    /// that names the cargo feature.
    pub fn parse(value: &str) -> Result<JsEngine, JsError> {
        let engine = match value.trim().to_ascii_lowercase().as_str() {
            "v8" => JsEngine::V8,
            "quickjs" => JsEngine::QuickJs,
            _ => return Err(bad_env("EXTENSOR_JS_ENGINE", value)),
        };
        if !Self::available().contains(&engine) {
            return Err(JsError::InvalidArgument {
                op: "config",
                message: format!(
                    "EXTENSOR_JS_ENGINE={value:?}: this build has no {} engine (cargo feature `v8` of extensor-js)",
                    engine.as_str()
                ),
            });
        }
        Ok(engine)
    }
}

impl Default for JsEngine {
    /// V8 when the build has it, QuickJS otherwise.
    fn default() -> JsEngine {
        Self::available()[0]
    }
}

/// What outbound HTTP may reach, beyond each manifest's `allowed_hosts`.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    /// `EXTENSOR_ALLOW_PRIVATE_NETWORKS`: loopback and private ranges for
    /// on-prem installs. Link-local and cloud metadata stay refused.
    pub private_networks: PrivateNetworks,
    /// Optional platform allowlist (`EXTENSOR_HTTP_ALLOWED_HOSTS`, comma
    /// separated patterns); when set, a host must match it *and* the manifest.
    pub platform_allowed_hosts: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrivateNetworks {
    #[default]
    Refuse,
    Allow,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            heap_bytes_max: HEAP_MB_DEFAULT * MIB,
            deadline_ms: DEADLINE_MS_DEFAULT,
            job_deadline_ms: JOB_DEADLINE_MS_DEFAULT,
            stack_bytes_max: STACK_BYTES_DEFAULT,
            pool_isolates_max: POOL_ISOLATES_MAX_DEFAULT,
            isolate_idle_ms: ISOLATE_IDLE_MS_DEFAULT,
            isolate_queue_max: ISOLATE_QUEUE_MAX_DEFAULT,
            spare_isolates: SPARE_ISOLATES_DEFAULT,
            network: NetworkPolicy::default(),
            engine: JsEngine::default(),
        }
    }
}

impl SandboxConfig {
    /// Reads `PLUGIN_MEMORY_LIMIT_MB`, `PLUGIN_TIMEOUT_SECONDS`,
    /// `PLUGIN_JOB_TIMEOUT_SECONDS`, `EXTENSOR_ISOLATE_IDLE_SECONDS`,
    /// `EXTENSOR_ALLOW_PRIVATE_NETWORKS`, `EXTENSOR_HTTP_ALLOWED_HOSTS` and
    /// `EXTENSOR_JS_ENGINE`; unset variables keep the defaults.
    pub fn from_env() -> Result<SandboxConfig, JsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup, so tests need not touch
    /// the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<SandboxConfig, JsError> {
        let mut c = SandboxConfig::default();
        if let Some(mb) = number(&get, "PLUGIN_MEMORY_LIMIT_MB")? {
            c.heap_bytes_max = (mb as usize).saturating_mul(MIB);
        }
        if let Some(s) = number(&get, "PLUGIN_TIMEOUT_SECONDS")? {
            c.deadline_ms = s.saturating_mul(1000);
        }
        if let Some(s) = number(&get, "PLUGIN_JOB_TIMEOUT_SECONDS")? {
            c.job_deadline_ms = s.saturating_mul(1000);
        }
        if let Some(s) = number(&get, "EXTENSOR_ISOLATE_IDLE_SECONDS")? {
            c.isolate_idle_ms = s.saturating_mul(1000);
        }
        if let Some(n) = number(&get, "EXTENSOR_ISOLATE_QUEUE_MAX")? {
            c.isolate_queue_max = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = count(&get, "EXTENSOR_SPARE_ISOLATES", SPARE_ISOLATES_MAX)? {
            c.spare_isolates = n;
        }
        if let Some(v) = get("EXTENSOR_ALLOW_PRIVATE_NETWORKS") {
            c.network.private_networks = match v.trim() {
                "true" | "1" | "yes" => PrivateNetworks::Allow,
                "" | "false" | "0" | "no" => PrivateNetworks::Refuse,
                other => return Err(bad_env("EXTENSOR_ALLOW_PRIVATE_NETWORKS", other)),
            };
        }
        if let Some(v) = get("EXTENSOR_JS_ENGINE").filter(|v| !v.trim().is_empty()) {
            c.engine = JsEngine::parse(&v)?;
        }
        if let Some(v) = get("EXTENSOR_HTTP_ALLOWED_HOSTS") {
            let hosts: Vec<String> = v
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect();
            c.network.platform_allowed_hosts = Some(hosts);
        }
        Ok(c)
    }

    /// The limits for one plugin: the platform's, tightened by its manifest.
    pub fn limits_for(&self, m: &ManifestLimits) -> Limits {
        let tighten = |platform: u64, plugin: Option<u32>| match plugin {
            Some(p) => platform.min(u64::from(p)),
            None => platform,
        };
        Limits {
            heap_bytes_max: tighten(
                self.heap_bytes_max as u64,
                m.memory_mb.map(|mb| mb.saturating_mul(MIB as u32)),
            ) as usize,
            deadline_ms: tighten(self.deadline_ms, m.timeout_ms),
            job_deadline_ms: tighten(self.job_deadline_ms, m.job_timeout_ms),
            stack_bytes_max: tighten(
                self.stack_bytes_max as u64,
                m.stack_kb.map(|kb| kb.saturating_mul(1024)),
            ) as usize,
        }
    }
}

/// Effective limits of one installation's isolates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub heap_bytes_max: usize,
    pub deadline_ms: u64,
    pub job_deadline_ms: u64,
    pub stack_bytes_max: usize,
}

impl Limits {
    pub fn deadline(&self, kind: DeadlineKind) -> Duration {
        Duration::from_millis(match kind {
            DeadlineKind::Interactive => self.deadline_ms,
            DeadlineKind::Job => self.job_deadline_ms,
        })
    }
}

/// Which deadline applies: hooks and routes are interactive, jobs are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineKind {
    Interactive,
    Job,
}

fn number(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>, JsError> {
    match get(name) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(bad_env(name, &v)),
        },
    }
}

/// A count that may be 0, at most `max`.
fn count(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    max: usize,
) -> Result<Option<usize>, JsError> {
    match get(name) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= max => Ok(Some(n)),
            Ok(_) => Err(JsError::InvalidArgument {
                op: "config",
                message: format!("{name}={v:?} is more than {max}"),
            }),
            Err(_) => Err(bad_env(name, &v)),
        },
    }
}

fn bad_env(name: &str, value: &str) -> JsError {
    JsError::InvalidArgument {
        op: "config",
        message: format!("{name}={value:?} is not valid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_and_manifest_tightening() {
        let env = |name: &str| match name {
            "PLUGIN_MEMORY_LIMIT_MB" => Some("64".to_string()),
            "PLUGIN_TIMEOUT_SECONDS" => Some("3".to_string()),
            "PLUGIN_JOB_TIMEOUT_SECONDS" => Some("20".to_string()),
            "EXTENSOR_ISOLATE_IDLE_SECONDS" => Some("90".to_string()),
            "EXTENSOR_ISOLATE_QUEUE_MAX" => Some("1".to_string()),
            "EXTENSOR_ALLOW_PRIVATE_NETWORKS" => Some("true".to_string()),
            "EXTENSOR_HTTP_ALLOWED_HOSTS" => Some("*.example.com, api.test".to_string()),
            _ => None,
        };
        let c = SandboxConfig::from_lookup(env).unwrap();
        assert_eq!(c.heap_bytes_max, 64 * MIB);
        assert_eq!((c.deadline_ms, c.job_deadline_ms), (3_000, 20_000));
        assert_eq!(c.isolate_idle_ms, 90_000);
        assert_eq!(c.isolate_queue_max, 1);
        let zero = SandboxConfig::from_lookup(|n| {
            (n == "EXTENSOR_ISOLATE_QUEUE_MAX").then(|| "0".to_string())
        });
        assert!(
            zero.is_err_and(|e| e.to_string().contains("EXTENSOR_ISOLATE_QUEUE_MAX")),
            "a queue of 0 would admit nothing"
        );
        let spares = |v: &'static str| {
            SandboxConfig::from_lookup(move |n| {
                (n == "EXTENSOR_SPARE_ISOLATES").then(|| v.to_string())
            })
        };
        assert_eq!(c.spare_isolates, SPARE_ISOLATES_DEFAULT);
        assert_eq!(spares("0").unwrap().spare_isolates, 0, "0 turns spares off");
        assert_eq!(spares(" 3 ").unwrap().spare_isolates, 3);
        for bad in ["17", "-1", "two", "1.5"] {
            let e = spares(bad).unwrap_err().to_string();
            assert!(
                e.contains("EXTENSOR_SPARE_ISOLATES") && e.contains(bad),
                "{bad}: {e}"
            );
        }
        assert_eq!(c.network.private_networks, PrivateNetworks::Allow);
        assert_eq!(
            c.network.platform_allowed_hosts.as_deref(),
            Some(&["*.example.com".to_string(), "api.test".to_string()][..])
        );
        let l = c.limits_for(&ManifestLimits {
            memory_mb: Some(16),
            timeout_ms: Some(10_000),
            job_timeout_ms: Some(1_000),
            stack_kb: Some(256),
        });
        assert_eq!(
            l,
            Limits {
                heap_bytes_max: 16 * MIB,
                deadline_ms: 3_000,
                job_deadline_ms: 1_000,
                stack_bytes_max: 256 * 1024
            }
        );
        let defaults = SandboxConfig::from_lookup(|_| None).unwrap();
        assert_eq!(
            (
                defaults.heap_bytes_max,
                defaults.deadline_ms,
                defaults.job_deadline_ms
            ),
            (100 * MIB, 5_000, 30_000)
        );
        assert_eq!(defaults.network.private_networks, PrivateNetworks::Refuse);
        assert_eq!(defaults.isolate_idle_ms, ISOLATE_IDLE_MS_DEFAULT);
        assert_eq!(defaults.isolate_queue_max, ISOLATE_QUEUE_MAX_DEFAULT);
        assert_eq!(defaults.engine, JsEngine::available()[0]);
        let quickjs =
            SandboxConfig::from_lookup(|n| (n == "EXTENSOR_JS_ENGINE").then(|| "quickjs".into()));
        assert_eq!(quickjs.unwrap().engine, JsEngine::QuickJs);
        let v8 = SandboxConfig::from_lookup(|n| (n == "EXTENSOR_JS_ENGINE").then(|| "v8".into()));
        match v8 {
            Ok(c) => assert!(cfg!(feature = "v8") && c.engine == JsEngine::V8),
            Err(e) => assert!(!cfg!(feature = "v8") && e.to_string().contains("feature `v8`")),
        }
        assert!(
            SandboxConfig::from_lookup(
                |n| (n == "EXTENSOR_JS_ENGINE").then(|| "spidermonkey".into())
            )
            .is_err()
        );
        assert!(
            SandboxConfig::from_lookup(
                |n| (n == "PLUGIN_TIMEOUT_SECONDS").then(|| "soon".to_string())
            )
            .is_err()
        );
    }
}
