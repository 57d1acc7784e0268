//! Shared helpers: configs, bundles, in-memory platform services; the
//! loopback HTTP server is js-runtime/tests/common/loopback_http.rs.

#![allow(dead_code)]

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use extensor_js::host::{
    EmailOutbox, EmitRequest, EventSink, InstallationScope, OutboundEmail, SecretStore,
};
use extensor_js::{
    Bundle, HostServices, Installation, Invocation, JsEngine, NetworkPolicy, PrivateNetworks,
    Sandbox, SandboxConfig, Trigger, ValidatedPlugin,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

pub const HEAP_BYTES_TEST: usize = 32 * 1024 * 1024;
pub const DEADLINE_MS_TEST: u64 = 1_000;

/// Defines every test in it once per engine this build has, as
/// `<file>::quickjs::<name>` and `<file>::v8::<name>` (feature `v8`), so one
/// `cargo test` runs the whole suite on both. Other items are repeated in
/// each engine's module. A test's first statement picks its engine for
/// [`config`] on the test's thread.
macro_rules! engine_tests {
    (@each) => {};
    (@each #[$first:meta] $(#[$attr:meta])* async fn $name:ident() $body:block $($rest:tt)*) => {
        #[$first] $(#[$attr])* async fn $name() { crate::support::use_engine(ENGINE); $body }
        engine_tests!(@each $($rest)*);
    };
    (@each #[$first:meta] $(#[$attr:meta])* fn $name:ident() $body:block $($rest:tt)*) => {
        #[$first] $(#[$attr])* fn $name() { crate::support::use_engine(ENGINE); $body }
        engine_tests!(@each $($rest)*);
    };
    (@each $item:item $($rest:tt)*) => {
        $item
        engine_tests!(@each $($rest)*);
    };
    ($($item:tt)*) => {
        mod quickjs {
            #[allow(unused_imports)]
            use super::*;
            const ENGINE: extensor_js::JsEngine = extensor_js::JsEngine::QuickJs;
            engine_tests!(@each $($item)*);
        }
        #[cfg(feature = "v8")]
        mod v8 {
            #[allow(unused_imports)]
            use super::*;
            const ENGINE: extensor_js::JsEngine = extensor_js::JsEngine::V8;
            engine_tests!(@each $($item)*);
        }
    };
}

thread_local! {
    static ENGINE: Cell<Option<JsEngine>> = const { Cell::new(None) };
}

/// Picks the engine [`config`] uses on this thread (a test's own thread).
pub fn use_engine(engine: JsEngine) {
    ENGINE.with(|e| e.set(Some(engine)));
}

/// The engine of the running test; a helper called from anywhere else fails
/// loudly instead of silently testing the default engine.
pub fn engine() -> JsEngine {
    ENGINE
        .with(Cell::get)
        .expect("no engine chosen on this thread: define the test inside engine_tests!")
}

/// Small limits so hostile tests finish fast; loopback reachable.
pub fn config() -> SandboxConfig {
    SandboxConfig {
        engine: engine(),
        heap_bytes_max: HEAP_BYTES_TEST,
        deadline_ms: DEADLINE_MS_TEST,
        job_deadline_ms: 2_000,
        stack_bytes_max: 512 * 1024,
        pool_isolates_max: 2,
        isolate_idle_ms: extensor_js::config::ISOLATE_IDLE_MS_DEFAULT,
        isolate_queue_max: extensor_js::config::ISOLATE_QUEUE_MAX_DEFAULT,
        spare_isolates: extensor_js::config::SPARE_ISOLATES_DEFAULT,
        network: NetworkPolicy {
            private_networks: PrivateNetworks::Allow,
            platform_allowed_hosts: None,
        },
    }
}

pub fn sandbox() -> Sandbox {
    Sandbox::new(config())
}

/// A manifest with the given overrides merged over a minimal valid one.
pub fn manifest(overrides: Value) -> String {
    let mut m = json!({
        "slug": "test-plugin",
        "name": "Test Plugin",
        "version": "1.2.3",
        "entry": "main.js",
        "events": ["test.ping"],
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut m, overrides) {
        base.extend(extra);
    }
    m.to_string()
}

pub fn bundle(manifest_overrides: Value, main_js: &str) -> Bundle {
    Bundle::new()
        .with_file("manifest.json", manifest(manifest_overrides))
        .with_file("main.js", main_js)
}

pub async fn validated(manifest_overrides: Value, main_js: &str) -> Arc<ValidatedPlugin> {
    match sandbox()
        .validate(&bundle(manifest_overrides, main_js))
        .await
    {
        Ok(p) => p,
        Err(problems) => panic!("bundle should validate: {problems:#?}"),
    }
}

pub fn scope(installation: &str) -> InstallationScope {
    InstallationScope {
        tenant_id: "ten1".into(),
        installation_id: installation.into(),
    }
}

/// Validates and installs a hook plugin with `services`.
pub async fn install(
    manifest_overrides: Value,
    main_js: &str,
    services: HostServices,
) -> Installation {
    let plugin = validated(manifest_overrides, main_js).await;
    sandbox().install(plugin, scope("ins1"), services)
}

pub fn hook(event_type: &str, input: Value) -> Invocation {
    Invocation {
        id: "inv_1".into(),
        trigger: Trigger::Hook {
            event_type: event_type.into(),
        },
        input,
        event_id: Some("evt_1".into()),
        chain_depth: 0,
    }
}

pub fn ping() -> Invocation {
    hook("test.ping", json!({"n": 1}))
}

/// Secrets keyed by installation id then key.
#[derive(Default)]
pub struct MemSecrets(pub HashMap<(String, String), String>);

impl SecretStore for MemSecrets {
    fn get<'a>(
        &'a self,
        scope: &'a InstallationScope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, extensor_js::JsError>> {
        Box::pin(async move {
            Ok(self
                .0
                .get(&(scope.installation_id.clone(), key.to_owned()))
                .cloned())
        })
    }
}

#[derive(Default)]
pub struct MemEvents(pub Mutex<Vec<(InstallationScope, EmitRequest)>>);

impl EventSink for MemEvents {
    fn emit<'a>(
        &'a self,
        scope: &'a InstallationScope,
        event: EmitRequest,
    ) -> BoxFuture<'a, Result<String, extensor_js::JsError>> {
        Box::pin(async move {
            let mut v = self.0.lock().unwrap();
            v.push((scope.clone(), event));
            Ok(format!("evt_emitted_{}", v.len()))
        })
    }
}

#[derive(Default)]
pub struct MemOutbox(pub Mutex<Vec<OutboundEmail>>);

impl EmailOutbox for MemOutbox {
    fn record<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        email: OutboundEmail,
    ) -> BoxFuture<'a, Result<String, extensor_js::JsError>> {
        Box::pin(async move {
            let mut v = self.0.lock().unwrap();
            v.push(email);
            Ok(format!("msg_{}", v.len()))
        })
    }
}

pub use crate::loopback_http::{HttpServer, Seen};
