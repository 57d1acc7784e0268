//! Shared pieces for the example-plugin tests: the sandbox, loading an
//! example from `examples/plugins/`, in-memory platform services, a mailer
//! for the real SMTP server (js-runtime/tests/common/aiosmtpd.rs) and a
//! loopback HTTP server (js-runtime/tests/common/loopback_http.rs).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use extensor_js::host::mail::{SmtpConfig, SmtpMailer, SmtpTls};
use extensor_js::host::{
    EmailOutbox, EmitRequest, EventSink, InstallationScope, OutboundEmail, SecretStore,
};
use extensor_js::{
    Bundle, Invocation, JsError, NetworkPolicy, PrivateNetworks, Sandbox, SandboxConfig, Trigger,
    ValidatedPlugin,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

pub fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/plugins")
        .join(name)
}

/// Platform defaults, except that loopback is reachable (the mocks live there).
pub fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig {
        network: NetworkPolicy {
            private_networks: PrivateNetworks::Allow,
            platform_allowed_hosts: None,
        },
        engine: extensor_js::JsEngine::default(),
        ..SandboxConfig::default()
    })
}

pub async fn validate(bundle: &Bundle) -> Arc<ValidatedPlugin> {
    match sandbox().validate(bundle).await {
        Ok(p) => p,
        Err(problems) => panic!("the example should validate: {problems:#?}"),
    }
}

/// The example's files exactly as they are in the repository.
pub fn example_bundle(name: &str) -> Bundle {
    Bundle::from_dir(&example_dir(name)).expect("read example")
}

pub fn scope() -> InstallationScope {
    InstallationScope {
        tenant_id: "ten_examples".into(),
        installation_id: "ins_examples".into(),
    }
}

pub fn hook(event_type: &str, data: Value) -> Invocation {
    Invocation {
        id: "inv_1".into(),
        trigger: Trigger::Hook {
            event_type: event_type.into(),
        },
        input: json!({"id": "evt_1", "type": event_type, "tenant": "ten_examples", "time": "2026-11-24T10:00:00.000Z", "data": data}),
        event_id: Some("evt_1".into()),
        chain_depth: 0,
    }
}

pub fn route(method: &str, pattern: &str, path: &str, params: Value, body: Value) -> Invocation {
    Invocation {
        id: "inv_2".into(),
        trigger: Trigger::Route {
            method: method.into(),
            path: pattern.into(),
        },
        input: json!({"method": method, "path": path, "params": params, "query": {}, "headers": {}, "body": body}),
        event_id: None,
        chain_depth: 0,
    }
}

pub fn job(name: &str, input: Value) -> Invocation {
    Invocation {
        id: "inv_3".into(),
        trigger: Trigger::Job { name: name.into() },
        input,
        event_id: None,
        chain_depth: 0,
    }
}

pub fn thrown_message(e: &JsError) -> String {
    match e {
        JsError::Thrown { message, .. } => message.clone(),
        other => panic!("expected the plugin to throw, got {other:?}"),
    }
}

#[derive(Default)]
pub struct MemSecrets(pub HashMap<String, String>);

impl SecretStore for MemSecrets {
    fn get<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, JsError>> {
        Box::pin(async move { Ok(self.0.get(key).cloned()) })
    }
}

#[derive(Default)]
pub struct MemEvents(pub Mutex<Vec<EmitRequest>>);

impl EventSink for MemEvents {
    fn emit<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        event: EmitRequest,
    ) -> BoxFuture<'a, Result<String, JsError>> {
        Box::pin(async move {
            let mut v = self.0.lock().unwrap();
            v.push(event);
            Ok(format!("evt_emitted_{}", v.len()))
        })
    }
}

/// The outbox the way the platform runs it: record the message, then
/// deliver it with the real SMTP mailer.
pub struct SmtpOutbox {
    pub mailer: SmtpMailer,
    pub sent: Mutex<Vec<OutboundEmail>>,
}

impl EmailOutbox for SmtpOutbox {
    fn record<'a>(
        &'a self,
        _scope: &'a InstallationScope,
        email: OutboundEmail,
    ) -> BoxFuture<'a, Result<String, JsError>> {
        Box::pin(async move {
            self.mailer.deliver(&email).await?;
            let mut v = self.sent.lock().unwrap();
            v.push(email);
            Ok(format!("msg_{}", v.len()))
        })
    }
}

pub use crate::aiosmtpd::Smtp;

impl Smtp {
    pub fn mailer(&self) -> SmtpMailer {
        SmtpMailer::new(SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            from: "welcome@example.com".into(),
            credentials: None,
            tls: SmtpTls::None,
        })
        .unwrap()
    }
}

pub use crate::loopback_http::{HttpServer, Seen};
