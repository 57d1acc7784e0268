//! Plugin lifecycle, secrets, uploads, publishing, routes and chains.

use extensor_actors::Error;
use extensor_actors::engine::{ChainFailure, RouteRequest, StepStatus, UploadAction};
use extensor_core::aggregate::{self, SnapshotPolicy};
use extensor_core::event::{EventMeta, StreamId};
use extensor_core::installation::{InstallationCommand, InstallationStatus, PluginInstallation};
use extensor_core::role::Role;
use extensor_js::Trigger;
use serde_json::json;

use crate::support::*;

const ECHO_SECRET: &str = "import { route } from 'extensor:sdk';
route('GET', '/secret', async (_req, ctx) => ({ value: await ctx.secrets.get('API_KEY'), version: ctx.plugin.version }));";

fn secret_plugin(version: &str) -> Vec<u8> {
    plugin(
        "echo",
        version,
        json!({"permissions": ["secrets.read"], "routes": [{"method": "GET", "path": "/secret"}]}),
        ECHO_SECRET,
    )
}

fn get(path: &str) -> RouteRequest {
    RouteRequest {
        method: "GET".into(),
        path: path.into(),
        caller: Some(Role::Viewer),
        ..RouteRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_upgrade_rollback_uninstall_and_tenant_scoping() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let other = new_tenant(&engine, "globex").await;

    let v1 = engine
        .upload_plugin(&tenant, secret_plugin("1.0.0"), admin())
        .await
        .unwrap();
    assert_eq!(v1.action, UploadAction::Installed);
    let id = v1.installation_id.clone();
    assert_eq!(
        engine.installation(&tenant, &id).await.unwrap().status,
        InstallationStatus::Disabled
    );
    // Disabled: routes answer NotFound.
    let err = engine
        .route(&tenant, "echo", get("/secret"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    engine.enable(&tenant, &id, admin()).await.unwrap();
    engine
        .set_secret(&tenant, &id, "API_KEY", "s3cr3t-plaintext-value", admin())
        .await
        .unwrap();
    let keys = engine.secret_keys(&tenant, &id).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key, "API_KEY");
    let r = engine.route(&tenant, "echo", get("/secret")).await.unwrap();
    assert_eq!(
        r.body,
        json!({"value": "s3cr3t-plaintext-value", "version": "1.0.0"})
    );

    // Upgrade keeps the secret; rollback restores the version.
    let v2 = engine
        .upload_plugin(&tenant, secret_plugin("2.0.0"), admin())
        .await
        .unwrap();
    assert_eq!(v2.action, UploadAction::Upgraded);
    assert_eq!(v2.installation_id, id);
    let r = engine.route(&tenant, "echo", get("/secret")).await.unwrap();
    assert_eq!(r.body["version"], "2.0.0");
    assert_eq!(r.body["value"], "s3cr3t-plaintext-value");
    let same = engine
        .upload_plugin(&tenant, secret_plugin("2.0.0"), admin())
        .await
        .unwrap();
    assert_eq!(same.action, UploadAction::Unchanged);
    let view = engine.roll_back(&tenant, &id, admin()).await.unwrap();
    assert_eq!(view.current.manifest.version.to_string(), "1.0.0");
    let r = engine.route(&tenant, "echo", get("/secret")).await.unwrap();
    assert_eq!(r.body["version"], "1.0.0");

    // Another tenant sees nothing of it: exactly like an absent id.
    for result in [
        engine.installation(&other, &id).await.map(drop),
        engine.enable(&other, &id, admin()).await.map(drop),
        engine.secret_keys(&other, &id).await.map(drop),
        engine
            .set_secret(&other, &id, "X", "y", admin())
            .await
            .map(drop),
        engine.uninstall(&other, &id, admin()).await,
        engine
            .invoke(
                &other,
                &id,
                Trigger::Job { name: "x".into() },
                json!({}),
                None,
            )
            .await
            .map(drop),
    ] {
        assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
    }
    assert!(engine.installations(&other).await.unwrap().is_empty());
    assert!(matches!(
        engine.route(&other, "echo", get("/secret")).await,
        Err(Error::NotFound { .. })
    ));

    // The plaintext never reaches the store's files.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes
                .windows(b"s3cr3t-plaintext-value".len())
                .any(|w| w == b"s3cr3t-plaintext-value");
            assert!(!found, "plaintext secret in {}", path.display());
        }
    }

    engine
        .remove_secret(&tenant, &id, "API_KEY", admin())
        .await
        .unwrap();
    assert!(matches!(
        engine.remove_secret(&tenant, &id, "API_KEY", admin()).await,
        Err(Error::NotFound { .. })
    ));
    engine.uninstall(&tenant, &id, admin()).await.unwrap();
    assert!(matches!(
        engine.installation(&tenant, &id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(engine.installations(&tenant).await.unwrap().is_empty());
    // Reinstalling the slug after an uninstall works.
    let again = engine
        .upload_plugin(&tenant, secret_plugin("3.0.0"), admin())
        .await
        .unwrap();
    assert_eq!(again.action, UploadAction::Installed);
    assert!(engine.secret_keys(&tenant, &id).await.unwrap().is_empty());
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"not a zip".to_vec(), "(zip)", "not a readable ZIP"),
        (
            zip_of(&[("manifest.json", "{}"), ("../evil.js", "x")]),
            "../evil.js",
            "`..`",
        ),
        (
            zip_of(&[("main.js", "x")]),
            "manifest.json",
            "no manifest.json",
        ),
        (
            plugin(
                "Bad Slug",
                "1",
                json!({"permissions": ["root"]}),
                "export default 1;",
            ),
            "$.slug",
            "",
        ),
        (
            plugin("ok", "1.0.0", json!({}), "this is not javascript ("),
            "main.js",
            "",
        ),
    ];
    for (zip, path, fragment) in cases {
        let err = engine
            .upload_plugin(&tenant, zip, admin())
            .await
            .unwrap_err();
        let Error::Validation(problems) = &err else {
            panic!("expected validation error, got {err}");
        };
        assert!(
            problems
                .iter()
                .any(|p| p.path.starts_with(path) && p.message.contains(fragment)),
            "{path}: {problems:?}"
        );
    }
    // A bad manifest reports every problem at once.
    let err = engine
        .upload_plugin(
            &tenant,
            plugin("Bad Slug", "x", json!({"permissions": ["root"]}), "1;"),
            admin(),
        )
        .await
        .unwrap_err();
    let Error::Validation(problems) = err else {
        panic!("validation")
    };
    assert!(problems.len() >= 3, "{problems:?}");
    assert!(engine.installations(&tenant).await.unwrap().is_empty());
    let bundles = std::fs::read_dir(dir.path().join("bundles"))
        .unwrap()
        .count();
    assert_eq!(bundles, 0, "nothing stored for refused uploads");
    // Uploading to a tenant that does not exist is NotFound.
    let ghost = extensor_core::ids::TenantId::generate();
    let err = engine
        .upload_plugin(&ghost, secret_plugin("1.0.0"), admin())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_publish_returns_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let first = engine
        .publish(
            &tenant,
            "order.created",
            json!({"n": 1}),
            Some("req-1".into()),
            admin(),
        )
        .await
        .unwrap();
    let retry = engine
        .publish(
            &tenant,
            "order.created",
            json!({"n": 1}),
            Some("req-1".into()),
            admin(),
        )
        .await
        .unwrap();
    assert_eq!(first.event_id, retry.event_id);
    assert_eq!(first.position, retry.position);
    let other = engine
        .publish(
            &tenant,
            "order.created",
            json!({"n": 1}),
            Some("req-2".into()),
            admin(),
        )
        .await
        .unwrap();
    assert_ne!(other.event_id, first.event_id);
    let plain = engine
        .publish(&tenant, "order.created", json!({"n": 1}), None, admin())
        .await
        .unwrap();
    let stream = engine
        .store()
        .read_stream(StreamId::business_events(&tenant), 0, 100)
        .await
        .unwrap();
    assert_eq!(stream.len(), 3, "the retry appended nothing");
    assert_eq!(stream[2].event_id, plain.event_id);
    // The same key for a different event is a conflict, not a silent no-op.
    let err = engine
        .publish(
            &tenant,
            "order.created",
            json!({"n": 2}),
            Some("req-1".into()),
            admin(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idempotency_key_reused");
    // Another tenant's identical key is its own event.
    let t2 = new_tenant(&engine, "globex").await;
    let theirs = engine
        .publish(
            &t2,
            "order.created",
            json!({"n": 1}),
            Some("req-1".into()),
            admin(),
        )
        .await
        .unwrap();
    assert_ne!(theirs.event_id, first.event_id);
    // Bad input is named.
    for (ty, key) in [("bad type!", None), ("ok.type", Some(String::new()))] {
        let err = engine
            .publish(&tenant, ty, json!({}), key, admin())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_check_roles_and_public_access() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let js = "import { route } from 'extensor:sdk';
        route('GET', '/items/:id', (req) => ({ id: req.params.id, q: req.query.q }));
        route('POST', '/admin', () => ({ status: 201, headers: {'x-made': 'yes'}, body: 'made' }));
        route('GET', '/open', () => 'hello');";
    let manifest = json!({
        "permissions": ["routes.public"],
        "routes": [
            {"method": "GET", "path": "/items/:id"},
            {"method": "POST", "path": "/admin", "min_role": "admin"},
            {"method": "GET", "path": "/open", "public": true},
        ]
    });
    install(&engine, &tenant, plugin("shop", "1.0.0", manifest, js)).await;
    let mut req = get("/items/42");
    req.query.insert("q".into(), "x".into());
    let r = engine.route(&tenant, "shop", req).await.unwrap();
    assert_eq!(r.body, json!({"id": "42", "q": "x"}));

    let mut post = get("/admin");
    post.method = "POST".into();
    let err = engine
        .route(&tenant, "shop", post.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    post.caller = Some(Role::Owner);
    let r = engine.route(&tenant, "shop", post).await.unwrap();
    assert_eq!((r.status, r.body.clone()), (201, json!("made")));
    assert_eq!(r.headers["x-made"], "yes");

    let mut anon = get("/items/1");
    anon.caller = None;
    let err = engine.route(&tenant, "shop", anon).await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err}");
    let mut open = get("/open");
    open.caller = None;
    assert_eq!(
        engine.route(&tenant, "shop", open).await.unwrap().body,
        json!("hello")
    );

    for (slug, path) in [("shop", "/nope"), ("nope", "/open"), ("NOT A SLUG", "/x")] {
        let err = engine.route(&tenant, slug, get(path)).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{slug}{path}: {err}");
    }
    // Three handler runs so far (refused calls never reached the plugin).
    let stats = engine.plugin_stats(&tenant).await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].invocations, stats[0].errors), (3, 0));
    assert!(stats[0].p50_us > 0 && stats[0].max_us >= stats[0].p99_us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_chains_run_in_install_order_and_skip_or_abort() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let filter = |suffix: &str| {
        format!(
            "import sdk from 'extensor:sdk';
             sdk.llmFilter('summary', (x) => ({{ text: x.text + '{suffix}' }}));"
        )
    };
    let m = json!({"llm_filters": ["summary"]});
    install(
        &engine,
        &tenant,
        plugin("zeta", "1.0.0", m.clone(), &filter("-z")),
    )
    .await;
    let bad = "import sdk from 'extensor:sdk';
        sdk.llmFilter('summary', () => { throw new Error('nope'); });";
    install(&engine, &tenant, plugin("broken", "1.0.0", m.clone(), bad)).await;
    install(&engine, &tenant, plugin("alpha", "1.0.0", m, &filter("-a"))).await;

    let skip = engine
        .apply_filters(&tenant, "summary", json!({"text": "t"}), ChainFailure::Skip)
        .await
        .unwrap();
    assert_eq!(
        skip.value,
        json!({"text": "t-z-a"}),
        "install order, failure skipped"
    );
    let statuses: Vec<_> = skip.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [StepStatus::Ok, StepStatus::Skipped, StepStatus::Ok]
    );
    assert!(skip.steps[1].error.as_deref().unwrap().contains("nope"));

    let abort = engine
        .apply_filters(
            &tenant,
            "summary",
            json!({"text": "t"}),
            ChainFailure::Abort,
        )
        .await
        .unwrap();
    assert!(abort.aborted);
    assert_eq!(abort.value, json!({"text": "t-z"}));
    assert_eq!(abort.steps.len(), 2);

    let none = engine
        .run_generator_hooks(&tenant, "draft", json!([1]), ChainFailure::Skip)
        .await
        .unwrap();
    assert_eq!((none.value, none.steps.len()), (json!([1]), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_installation_stream_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let tenant = new_tenant(&engine, "acme").await;
    let id = install(&engine, &tenant, secret_plugin("1.0.0")).await;
    // Warm the installation actor, then let "another process" append to
    // the same stream behind its back.
    engine
        .set_secret(&tenant, &id, "A", "1", admin())
        .await
        .unwrap();
    let stream = StreamId::installation(&id);
    let outside = InstallationCommand::SetSecret {
        key: "B".into(),
        ciphertext: engine
            .secret_box()
            .encrypt(&format!("{tenant}/{id}/B"), "2")
            .unwrap(),
        updated_at: chrono::Utc::now(),
        if_revision: None,
    };
    let meta = EventMeta::new(Some(tenant.clone()), admin());
    aggregate::execute::<PluginInstallation>(
        &**engine.store(),
        &stream,
        &outside,
        &meta,
        SnapshotPolicy::NEVER,
    )
    .await
    .unwrap();
    // The actor's state is stale; its command must not overwrite B.
    engine
        .set_secret(&tenant, &id, "C", "3", admin())
        .await
        .unwrap();
    let keys: Vec<String> = engine
        .secret_keys(&tenant, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(keys, ["A", "B", "C"]);
    let events = engine.store().read_stream(stream, 0, 100).await.unwrap();
    let revisions: Vec<u64> = events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, (0..events.len() as u64).collect::<Vec<_>>());
    let secret_sets = events
        .iter()
        .filter(|e| e.event_type == "plugin.secret_set")
        .count();
    assert_eq!(secret_sets, 3, "no lost or duplicated event");
}

const FLAKY: &str = "import { hook, route } from 'extensor:sdk';
hook('order.created', (e) => ({ n: e.data.n }));
route('GET', '/flaky', () => 'up');";

/// Crash-loops the installation's actor until it is marked failed
/// (`failed_max` is 3: the fourth panic within the window).
async fn crash_until_failed(
    engine: &extensor_actors::Engine,
    tenant: &extensor_core::ids::TenantId,
    id: &extensor_core::ids::InstallationId,
) -> extensor_actors::supervision::ActorInfo {
    let path = format!("/tenants/{tenant}/installations/{id}");
    let board = engine.status_board().clone();
    for _ in 0..4 {
        let handle = loop {
            match engine_installation_handle(engine, tenant, id).await {
                Ok(h) => break h,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        };
        let before = board.get(&path).and_then(|i| i.last_error_at);
        handle.panic().unwrap();
        // This panic's failure is recorded (the board's last error moved):
        // only then is the next panic sent, to the restarted actor. Waiting
        // for "not running" could return on the previous restart's status
        // while this actor was still alive, and the next panic then queued
        // behind this one in a mailbox that died with it (seen in CI).
        board
            .wait_until(&path, |i| i.last_error_at != before, WAIT_MS)
            .await
            .unwrap();
    }
    board
        .wait_until(
            &path,
            |i| i.status == extensor_actors::ActorStatus::Failed,
            WAIT_MS,
        )
        .await
        .unwrap()
}

/// Waits for the next record of `event_type` in the installation's hook
/// stream after position `after`.
async fn next_hook_record_of(
    store: &std::sync::Arc<dyn extensor_core::store::EventStore>,
    id: &extensor_core::ids::InstallationId,
    event_type: &str,
    after: u64,
) -> (
    extensor_core::event::RecordedEvent,
    extensor_actors::dispatcher::HookRecord,
) {
    use futures::StreamExt;
    let filter = extensor_core::store::ReadFilter {
        stream: Some(extensor_actors::dispatcher::hooks_stream(id)),
        ..Default::default()
    };
    let mut events = store.subscribe_all(after, filter);
    let find = async {
        loop {
            let ev = events.next().await.expect("open").expect("event");
            if ev.event_type == event_type {
                let record = serde_json::from_str(ev.payload.get()).expect("record");
                return (ev, record);
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_millis(WAIT_MS), find)
        .await
        .unwrap_or_else(|_| panic!("no {event_type} record for {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_installation_fails_while_siblings_serve() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let store = engine.store().clone();
    let tenant = new_tenant(&engine, "acme").await;
    let m = json!({"events": ["order.created"], "routes": [{"method": "GET", "path": "/flaky"}]});
    let bad = install(&engine, &tenant, plugin("flaky", "1.0.0", m, FLAKY)).await;
    let js = "import { route } from 'extensor:sdk'; route('GET', '/ping', () => 'pong');";
    let m = json!({"routes": [{"method": "GET", "path": "/ping"}]});
    let good = install(&engine, &tenant, plugin("pinger", "1.0.0", m, js)).await;
    let path = format!("/tenants/{tenant}/installations/{bad}");
    let publish = |n: u64| {
        let engine = engine.clone();
        let tenant = tenant.clone();
        async move {
            engine
                .publish(&tenant, "order.created", json!({"n": n}), None, admin())
                .await
                .unwrap()
        }
    };
    // Serving before the failure: its route answers and its hook runs.
    let r = engine.route(&tenant, "flaky", get("/flaky")).await.unwrap();
    assert_eq!(r.body, json!("up"));
    let first = publish(1).await;
    let ran = hook_records(&store, &bad, 1).await;
    assert_eq!(ran[0].1.event_id.as_ref(), Some(&first.event_id));

    let info = crash_until_failed(&engine, &tenant, &bad).await;
    assert!(info.last_error.unwrap().contains("fault drill"));
    // Its commands are refused.
    let err = engine.disable(&tenant, &bad, admin()).await.unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err}");
    // Its route too (503 `actor_failed` at the API), though the index still
    // lists it as enabled; so are invocations of any other kind.
    let err = engine
        .route(&tenant, "flaky", get("/flaky"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "actor_failed", "{err}");
    assert!(
        matches!(err, Error::Failed { ref actor, .. } if *actor == path),
        "{err}"
    );
    let trigger = Trigger::Hook {
        event_type: "order.created".into(),
    };
    let err = engine
        .invoke(&tenant, &bad, trigger, json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "actor_failed", "{err}");
    // Its hook lane pauses at the next event, with a record, and runs nothing.
    let second = publish(2).await;
    let (_, pause) = next_hook_record_of(&store, &bad, "hook.paused", 0).await;
    assert_eq!(pause.event_id.as_ref(), Some(&second.event_id));
    assert_eq!(pause.error_code.as_deref(), Some("actor_failed"));
    assert_eq!(stored_records(&store, &bad).await.len(), 1, "no hook ran");
    // The sibling and the tenant keep serving.
    let r = engine.route(&tenant, "pinger", get("/ping")).await.unwrap();
    assert_eq!(r.body, json!("pong"));
    engine.disable(&tenant, &good, admin()).await.unwrap();
    engine.tenant(&tenant).await.unwrap();

    // An operator restart brings it back with the same state: the paused
    // event runs (nothing was skipped), and so do its routes.
    engine.restart_actor(&path).await.unwrap();
    let ran = hook_records(&store, &bad, 2).await;
    assert_eq!(ran[1].1.event_id.as_ref(), Some(&second.event_id));
    assert_eq!(ran[1].0.event_type, "hook.executed");
    let r = engine.route(&tenant, "flaky", get("/flaky")).await.unwrap();
    assert_eq!(r.body, json!("up"));
    let view = engine.disable(&tenant, &bad, admin()).await.unwrap();
    assert_eq!(view.status, InstallationStatus::Disabled);
    let tree = engine.tree().await.unwrap();
    let entry = tree.actors.iter().find(|a| a.path == path).unwrap();
    assert_eq!(entry.status, extensor_actors::ActorStatus::Running);
    assert!(entry.restarts >= 3);
}

/// A process restart while a lane is paused on a failed installation
/// resumes at the paused event: the fresh engine's actor is not failed, so
/// the event runs then, neither skipped nor run twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_lane_resumes_at_its_event_after_a_process_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, ev, paused_at) = {
        let engine = start(dir.path()).await;
        let tenant = new_tenant(&engine, "acme").await;
        let m =
            json!({"events": ["order.created"], "routes": [{"method": "GET", "path": "/flaky"}]});
        let bad = install(&engine, &tenant, plugin("flaky", "1.0.0", m, FLAKY)).await;
        crash_until_failed(&engine, &tenant, &bad).await;
        let ev = engine
            .publish(&tenant, "order.created", json!({"n": 7}), None, admin())
            .await
            .unwrap();
        let (paused_at, _) = next_hook_record_of(engine.store(), &bad, "hook.paused", 0).await;
        engine.shutdown(std::time::Duration::from_secs(5)).await;
        (bad, ev, paused_at.position)
    };
    let engine = start(dir.path()).await;
    let store = engine.store().clone();
    let (_, ran) = next_hook_record_of(&store, &bad, "hook.executed", paused_at).await;
    assert_eq!(ran.event_id.as_ref(), Some(&ev.event_id));
    assert_eq!(ran.outcome, Some(json!({"n": 7})));
    let records = stored_records(&store, &bad).await;
    assert_eq!(records.len(), 1, "ran once: {records:?}");
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}

async fn engine_installation_handle(
    engine: &extensor_actors::Engine,
    tenant: &extensor_core::ids::TenantId,
    id: &extensor_core::ids::InstallationId,
) -> Result<extensor_actors::tenant_supervisor::Handle<PluginInstallation>, Error> {
    engine.installation_handle(tenant, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_backpressure_not_growth() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), open_store(dir.path()));
    config.tree.supervisor_calls_max = 2;
    config.tree.mailbox_messages_max = 2;
    let engine = extensor_actors::Engine::start(config).await.unwrap();
    let tenant = new_tenant(&engine, "acme").await;
    let burst = (0..64).map(|_| {
        let engine = engine.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move { engine.tenant(&tenant).await })
    });
    let results = futures::future::join_all(burst).await;
    let mut refused = 0;
    for r in results {
        match r.unwrap() {
            Ok(loaded) => assert_eq!(loaded.state.name, "acme"),
            Err(Error::Backpressure { depth_max, .. }) => {
                assert_eq!(depth_max, 2);
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        refused > 0,
        "64 concurrent calls through a gate of 2 must be refused"
    );
    assert_eq!(
        Error::Backpressure {
            actor: "/".into(),
            depth_max: 2
        }
        .code(),
        "backpressure"
    );
    // Once the burst is over the tenant serves again.
    engine.tenant(&tenant).await.unwrap();
}
