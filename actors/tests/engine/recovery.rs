//! Recovery at scale: many tenants with hooks written straight into the log,
//! then a fresh engine on that log.

use std::sync::Arc;
use std::time::Duration;

use extensor_actors::engine::RECOVERY_TENANTS_CONCURRENT;
use extensor_actors::supervision::{ActorKind, ActorStatus};
use extensor_core::store::sqlite::{HEAD_POLL_MS, OpenMode, SqliteConfig, SqliteStore};
use futures::StreamExt;

use extensor_core::aggregate::{SnapshotPolicy, execute};
use extensor_core::event::{EventMeta, Principal, StreamId};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::{InstallationCommand, InstalledVersion, PluginInstallation};
use extensor_core::store::EventStore;
use extensor_core::tenant::{Tenant, TenantCommand};
use serde_json::json;

use crate::support::*;

const HOOK_JS: &str =
    "import { hook } from 'extensor:sdk'; hook('order.created', (e) => ({ ok: true }));";

/// Writes `tenants` tenants, each with one enabled installation hooking
/// `order.created`, straight into the log.
async fn seed(store: &Arc<dyn EventStore>, dir: &std::path::Path, tenants: usize) -> Vec<TenantId> {
    let zip = plugin(
        "hook",
        "1.0.0",
        json!({"events": ["order.created"]}),
        HOOK_JS,
    );
    let bundles = extensor_core::bundles::BundleStore::open(dir).unwrap();
    let digest = bundles.put(zip.clone()).await.unwrap();
    let bundle = extensor_js::Bundle::from_zip(&zip, &extensor_js::ZipLimits::default()).unwrap();
    let manifest = extensor_js::Sandbox::new(sandbox_config())
        .validate(&bundle)
        .await
        .unwrap()
        .manifest
        .clone();
    let ids: Vec<TenantId> = (0..tenants).map(|_| TenantId::generate()).collect();
    let never = SnapshotPolicy::NEVER;
    futures::future::join_all(ids.iter().enumerate().map(|(n, tenant)| {
        let store = store.clone();
        let version = InstalledVersion {
            manifest: manifest.clone(),
            bundle_digest: digest.clone(),
        };
        async move {
            let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
            let create = TenantCommand::Create {
                tenant_id: tenant.clone(),
                slug: format!("t{n}").parse().unwrap(),
                name: "t".into(),
            };
            execute::<Tenant>(&*store, &StreamId::tenant(tenant), &create, &meta, never)
                .await
                .unwrap();
            let id = InstallationId::for_slug(tenant, &version.manifest.slug);
            let stream = StreamId::installation(&id);
            let install = InstallationCommand::Install {
                installation_id: id.clone(),
                tenant: tenant.clone(),
                version,
            };
            execute::<PluginInstallation>(&*store, &stream, &install, &meta, never)
                .await
                .unwrap();
            let enable = InstallationCommand::Enable;
            execute::<PluginInstallation>(&*store, &stream, &enable, &meta, never)
                .await
                .unwrap();
        }
    }))
    .await;
    ids
}

/// The store's reads, counted until they stop: a settled engine reads
/// only the store's head poll (one read per poll interval).
async fn reads_when_settled(store: &SqliteStore) -> u64 {
    let mut last = store.reads();
    loop {
        tokio::time::sleep(Duration::from_millis(HEAD_POLL_MS / 2)).await;
        let now = store.reads();
        if now <= last + 1 {
            return now;
        }
        last = now;
    }
}

/// Hundreds of tenants with hooks come back after a restart: when
/// `Engine::start` returns, the services' start-up reads are done but for
/// the last few tenants' (recovery is bounded, so a request made then does
/// not queue behind every tenant's start-up), and every tenant then loads
/// concurrently with its state intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tenants_recover_and_load_concurrently() {
    const TENANTS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).unwrap();
    let store: Arc<dyn EventStore> = Arc::new(sqlite.clone());
    let tenants = seed(&store, dir.path(), TENANTS).await;
    let engine = extensor_actors::Engine::start(config(dir.path(), store.clone()))
        .await
        .unwrap();
    let at_start = sqlite.reads();
    let settled = reads_when_settled(&sqlite).await;
    // Starting every tenant at once left ~40% of the ~7,000 start-up reads
    // (about 23 per tenant) queued when `start` returned; bounded, what is
    // left is the last few tenants' share.
    let late = settled - at_start;
    let bound = RECOVERY_TENANTS_CONCURRENT as u64 * 64;
    assert!(
        late <= bound,
        "{late} reads after start returned (bound {bound})"
    );
    // Every tenant's dispatcher runs with its lane.
    let tree = engine.tree().await.unwrap();
    let dispatchers = tree
        .actors
        .iter()
        .filter(|a| a.kind == ActorKind::Dispatcher && a.status == ActorStatus::Running)
        .count();
    assert_eq!(dispatchers, TENANTS);
    // Every tenant loads, 64 at a time, none refused or timed out.
    let loaded: Vec<_> = futures::stream::iter(tenants.iter().enumerate())
        .map(|(n, tenant)| {
            let engine = engine.clone();
            async move { (n, engine.tenant(tenant).await) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(loaded.len(), TENANTS);
    for (n, result) in loaded {
        let tenant = result.unwrap_or_else(|e| panic!("tenant {n}: {e}"));
        let slug = tenant.state.slug.map(|s| s.to_string());
        assert_eq!(slug.as_deref(), Some(format!("t{n}").as_str()));
    }
    engine.shutdown(Duration::from_secs(5)).await;
}

/// Which of the tenant's on-demand services are running, per the tree.
async fn on_demand_services(engine: &extensor_actors::Engine, tenant: &TenantId) -> Vec<String> {
    let tree = engine.tree().await.unwrap();
    let prefix = format!("/tenants/{tenant}/");
    let mut out: Vec<String> = tree
        .actors
        .iter()
        .filter(|a| a.status == ActorStatus::Running)
        .filter_map(|a| a.path.strip_prefix(&prefix))
        .filter(|name| ["webhooks", "scheduler"].contains(name))
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

/// The webhook dispatcher and the scheduler start only for tenants that
/// need them: on the first webhook apply, when a plugin with jobs is
/// enabled, and after a restart for the tenants that have webhooks or
/// enabled jobs; a tenant with neither (even one with hooks) gets neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_scheduler_services_start_only_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let plain = new_tenant(&engine, "plain").await;
    let hooked = new_tenant(&engine, "hooked").await;
    let web = new_tenant(&engine, "web").await;
    let jobs = new_tenant(&engine, "jobs").await;
    let hook = json!({"events": ["order.created"]});
    install(&engine, &hooked, plugin("hook", "1.0.0", hook, HOOK_JS)).await;
    for t in [&plain, &hooked, &web, &jobs] {
        assert!(on_demand_services(&engine, t).await.is_empty(), "{t}");
    }

    let yaml = "api_version: v1\non: [\"build.completed\"]\ndelivery:\n  url: \"https://example.com/hook\"\n";
    let source = extensor_core::webhook::registry::WebhookSource {
        yaml: yaml.into(),
        files: Default::default(),
    };
    let meta = EventMeta::new(Some(web.clone()), Principal::system());
    let build = |reply| extensor_actors::webhooks::DispatcherMsg::Apply {
        name: "builds".parse().unwrap(),
        source,
        mode: extensor_actors::webhooks::dispatcher::ApplyMode::Apply,
        if_revision: None,
        meta,
        reply,
    };
    engine
        .webhooks(&web)
        .await
        .unwrap()
        .call(build, Some(Duration::from_secs(30)))
        .await
        .unwrap()
        .unwrap()
        .expect("webhook applied");
    assert_eq!(on_demand_services(&engine, &web).await, ["webhooks"]);

    let manifest = include_str!("../fixtures/nightly-report/manifest.json");
    let main_js = include_str!("../fixtures/nightly-report/main.js");
    let zip = zip_of(&[("manifest.json", manifest), ("main.js", main_js)]);
    install(&engine, &jobs, zip).await;
    assert_eq!(on_demand_services(&engine, &jobs).await, ["scheduler"]);
    for t in [&plain, &hooked] {
        assert!(on_demand_services(&engine, t).await.is_empty(), "{t}");
    }
    engine.shutdown(Duration::from_secs(5)).await;
    drop(engine);

    let engine = start(dir.path()).await;
    assert_eq!(on_demand_services(&engine, &web).await, ["webhooks"]);
    assert_eq!(on_demand_services(&engine, &jobs).await, ["scheduler"]);
    for t in [&plain, &hooked] {
        assert!(on_demand_services(&engine, t).await.is_empty(), "{t}");
    }
    // The hooked tenant's supervisor did start: its dispatcher runs.
    let tree = engine.tree().await.unwrap();
    let dispatcher = format!("/tenants/{hooked}/dispatcher");
    assert!(
        tree.actors
            .iter()
            .any(|a| a.path == dispatcher && a.status == ActorStatus::Running),
        "{dispatcher}"
    );
    engine.shutdown(Duration::from_secs(5)).await;
}
