//! Shared helpers: a real SQLite store in a tempdir, a real engine with
//! real isolates, plugin ZIPs built in the test.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use extensor_actors::dispatcher::{HookRecord, hooks_stream};
use extensor_actors::engine::{Engine, EngineConfig, TreeSettings};
use extensor_actors::supervision::RestartPolicy;
use extensor_core::aggregate::SnapshotPolicy;
use extensor_core::event::{Principal, RecordedEvent};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::secrets::SecretKey;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::store::{EventStore, ReadFilter};
use extensor_core::tenant::TenantCommand;
use extensor_js::{NetworkPolicy, PrivateNetworks, SandboxConfig};
use futures::StreamExt;
use serde_json::{Value, json};

pub const WAIT_MS: u64 = 20_000;

pub fn open_store(dir: &Path) -> Arc<dyn EventStore> {
    let config = SqliteConfig {
        data_dir: dir.to_path_buf(),
        mode: OpenMode::CreateIfMissing,
        store_bytes_max: None,
    };
    Arc::new(SqliteStore::open(config).expect("open store"))
}

pub fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        heap_bytes_max: 32 * 1024 * 1024,
        deadline_ms: 1_000,
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
        engine: extensor_js::JsEngine::default(),
    }
}

pub fn fast_tree(failures_max: u32) -> TreeSettings {
    TreeSettings {
        policy: RestartPolicy {
            backoff_initial_ms: 1,
            backoff_max_ms: 4,
            failures_max,
            window_ms: 60_000,
        },
        snapshots: SnapshotPolicy::DEFAULT,
        mailbox_messages_max: 100,
        passivate_idle_ms: None,
        ..TreeSettings::default()
    }
}

/// The key file under `dir` (created on first use), so a restarted engine
/// decrypts what the first one sealed.
pub fn config(dir: &Path, store: Arc<dyn EventStore>) -> EngineConfig {
    let key = SecretKey::load_with(dir, |_| None).expect("key");
    let mut c = EngineConfig::new(store, dir.to_path_buf(), key);
    c.sandbox = sandbox_config();
    c.tree = fast_tree(3);
    c
}

pub async fn start(dir: &Path) -> Engine {
    Engine::start(config(dir, open_store(dir)))
        .await
        .expect("engine starts")
}

pub fn admin() -> Principal {
    Principal::platform_admin()
}

pub async fn new_tenant(engine: &Engine, slug: &str) -> TenantId {
    let tenant = TenantId::generate();
    let command = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: slug.parse().expect("slug"),
        name: slug.into(),
    };
    engine
        .tenant_execute(&tenant, command, admin())
        .await
        .expect("create tenant");
    tenant
}

pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, body) in files {
        w.start_file(*name, opts).expect("start file");
        w.write_all(body.as_bytes()).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// A plugin ZIP: manifest (slug, version, overrides) and `main.js`.
pub fn plugin(slug: &str, version: &str, overrides: Value, main_js: &str) -> Vec<u8> {
    let mut m = json!({"slug": slug, "name": slug, "version": version, "entry": "main.js"});
    if let (Value::Object(base), Value::Object(extra)) = (&mut m, overrides) {
        base.extend(extra);
    }
    zip_of(&[("manifest.json", &m.to_string()), ("main.js", main_js)])
}

/// Uploads and enables; returns the installation id.
pub async fn install(engine: &Engine, tenant: &TenantId, zip: Vec<u8>) -> InstallationId {
    let out = engine
        .upload_plugin(tenant, zip, admin())
        .await
        .expect("upload");
    engine
        .enable(tenant, &out.installation_id, admin())
        .await
        .expect("enable");
    out.installation_id
}

/// Waits until the installation's hook stream holds `n` hook records
/// (checkpoints and pauses excluded) and returns them in order.
pub async fn hook_records(
    store: &Arc<dyn EventStore>,
    id: &InstallationId,
    n: usize,
) -> Vec<(RecordedEvent, HookRecord)> {
    let filter = ReadFilter {
        stream: Some(hooks_stream(id)),
        ..ReadFilter::default()
    };
    let mut events = store.subscribe_all(0, filter);
    let mut out = Vec::new();
    let collect = async {
        while out.len() < n {
            let ev = events.next().await.expect("stream open").expect("event");
            if matches!(
                ev.event_type.as_str(),
                "hook.checkpoint" | "hook.paused" | "hook.lane_claimed"
            ) {
                continue;
            }
            let record: HookRecord = serde_json::from_str(ev.payload.get()).expect("record");
            out.push((ev, record));
        }
    };
    tokio::time::timeout(Duration::from_millis(WAIT_MS), collect)
        .await
        .unwrap_or_else(|_| panic!("waited for {n} hook records of {id}"));
    out
}

/// Every hook record currently stored for the installation.
pub async fn stored_records(store: &Arc<dyn EventStore>, id: &InstallationId) -> Vec<HookRecord> {
    store
        .read_stream(hooks_stream(id), 0, 10_000)
        .await
        .expect("read")
        .into_iter()
        .filter(|e| {
            !matches!(
                e.event_type.as_str(),
                "hook.checkpoint" | "hook.paused" | "hook.lane_claimed"
            )
        })
        .map(|e| serde_json::from_str(e.payload.get()).expect("record"))
        .collect()
}
