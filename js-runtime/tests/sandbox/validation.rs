//! Validation: imports, TypeScript errors, registrations vs the manifest.

use extensor_js::{Bundle, Problem};
use serde_json::json;

use crate::support::*;

engine_tests! {

async fn problems(b: Bundle) -> Vec<Problem> {
    match sandbox().validate(&b).await {
        Ok(_) => panic!("bundle should not validate"),
        Err(p) => p,
    }
}

fn has(problems: &[Problem], path: &str, needle: &str) -> bool {
    problems
        .iter()
        .any(|p| p.path == path && p.message.contains(needle))
}

#[tokio::test]
async fn forbidden_imports_are_reported_with_file_line_and_specifier() {
    let b = Bundle::new()
        .with_file("manifest.json", manifest(json!({})))
        .with_file("main.js", "import { hook } from 'extensor:sdk';\nimport fs from 'node:fs';\nimport x from './lib/a.js';\nhook('test.ping', () => 1);\n")
        .with_file("lib/a.js", "import pad from 'npm:left-pad';\nimport y from 'https://evil.test/x.js';\nimport z from '../../outside.js';\nexport default 1;\n");
    let p = problems(b).await;
    assert!(has(&p, "main.js:2:16", "node:fs"), "{p:#?}");
    assert!(has(&p, "lib/a.js:1:17", "npm:left-pad"), "{p:#?}");
    assert!(has(&p, "lib/a.js:2:15", "https://evil.test/x.js"), "{p:#?}");
    assert!(has(&p, "lib/a.js:3:15", "escapes the bundle"), "{p:#?}");
}

#[tokio::test]
async fn dynamic_import_outside_the_bundle_fails_at_runtime() {
    let ins = install(json!({}), "import { hook } from 'extensor:sdk'; hook('test.ping', async () => { const spec = 'node:' + 'fs'; return await import(spec); });", extensor_js::HostServices::default()).await;
    let err = ins.invoke(ping()).await.unwrap_err();
    assert!(err.to_string().contains("node:fs"), "{err}");
}

#[tokio::test]
async fn typescript_syntax_errors_point_into_the_original_source() {
    let b = Bundle::new()
        .with_file("manifest.json", manifest(json!({"entry": "main.ts"})))
        .with_file("main.ts", "import { hook } from 'extensor:sdk';\ntype A = { n: number };\n\nconst x: A = { n: 1 ;\n");
    let p = problems(b).await;
    assert!(p.iter().any(|p| p.path.starts_with("main.ts:4:")), "{p:#?}");
}

#[tokio::test]
async fn registrations_are_checked_against_the_manifest() {
    let m = json!({
        "events": ["test.ping", "test.declared_only"],
        "jobs": [{"name": "nightly", "schedule": "0 2 * * *"}, {"name": "forgotten", "schedule": "0 3 * * *"}],
        "routes": [{"method": "GET", "path": "/a"}],
        "llm_filters": ["summary"],
    });
    let code = "import { hook, route, job, generatorHook } from 'extensor:sdk';
        hook('test.ping', () => 1);
        hook('test.ping', () => 2);
        hook('other.event', () => 1);
        job('nightly', '0 4 * * *', () => 1);
        job('undeclared', '0 4 * * *', () => 1);
        route('POST', '/b', () => 1);
        generatorHook('draft', () => 1);";
    let p = problems(bundle(m, code)).await;
    for (path, needle) in [
        ("main.js", "hook(`test.ping`) is registered twice"),
        ("main.js", "hook(`other.event`)"),
        ("main.js", "uses schedule `0 4 * * *`"),
        ("main.js", "job(`undeclared`)"),
        ("main.js", "route(`POST /b`)"),
        ("main.js", "generatorHook(`draft`)"),
        ("$.events[1]", "test.declared_only"),
        ("$.jobs[1]", "forgotten"),
        ("$.routes[0]", "GET /a"),
        ("$.llm_filters[0]", "summary"),
    ] {
        assert!(has(&p, path, needle), "missing {path}: {needle} in {p:#?}");
    }
    assert_eq!(p.len(), 10, "{p:#?}");
}

#[tokio::test]
async fn routes_need_a_declaration() {
    let p = problems(bundle(json!({}), "import { hook, route } from 'extensor:sdk'; hook('test.ping', () => 1); route('GET', '/x', () => 1);")).await;
    assert!(has(&p, "main.js", "declares no routes"), "{p:#?}");
    let ok = sandbox().validate(&bundle(json!({"routes": true}), "import { hook, route } from 'extensor:sdk'; hook('test.ping', () => 1); route('GET', '/x', () => 1);")).await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn manifest_and_evaluation_problems_are_reported() {
    let p = problems(Bundle::new().with_file("main.js", "")).await;
    assert!(has(&p, "manifest.json", "no manifest.json"), "{p:#?}");
    let p = problems(
        Bundle::new()
            .with_file("manifest.json", r#"{"slug": "Bad"}"#)
            .with_file("main.js", ""),
    )
    .await;
    assert!(p.iter().any(|p| p.path == "$.slug"), "{p:#?}");
    let p = problems(bundle(json!({}), "throw new Error('boom at load');")).await;
    assert!(has(&p, "main.js", "boom at load"), "{p:#?}");
    let p = problems(bundle(json!({}), "while (true) {}")).await;
    assert!(has(&p, "main.js", "deadline of 1000 ms exceeded"), "{p:#?}");
    let p = problems(bundle(json!({"entry": "missing.js"}), "")).await;
    assert!(has(&p, "$.entry", "missing.js"), "{p:#?}");
    let p = problems(bundle(
        json!({}),
        "import { hook } from 'extensor:sdk'; hook('test.ping', 'not a function');",
    ))
    .await;
    assert!(has(&p, "main.js", "fn must be a function"), "{p:#?}");
}

#[tokio::test]
async fn registering_after_load_is_refused() {
    let ins = install(
        json!({}),
        "import { hook } from 'extensor:sdk'; hook('test.ping', () => { try { hook('test.ping', () => 2); return 'registered'; } catch (e) { return e.message; } });",
        extensor_js::HostServices::default(),
    )
    .await;
    let v = ins.invoke(ping()).await.unwrap().value;
    assert!(
        v.as_str()
            .unwrap()
            .contains("only be registered while the bundle loads"),
        "{v}"
    );
}

#[tokio::test]
async fn the_sdk_example_plugin_validates_and_runs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/example");
    let plugin = sandbox()
        .validate(&Bundle::from_dir(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(plugin.registrations.len(), 3);
    let files = tempfile::tempdir().unwrap();
    let outbox = std::sync::Arc::new(MemOutbox::default());
    let services = extensor_js::HostServices {
        files: Some(std::sync::Arc::new(
            extensor_js::host::files::FileStore::new(files.path()),
        )),
        secrets: Some(std::sync::Arc::new(MemSecrets::default())),
        outbox: Some(outbox.clone()),
        ..Default::default()
    };
    let ins = sandbox().install(plugin, scope("ins1"), services);
    let v = ins
        .invoke(hook(
            "auth.user.created",
            json!({"data": {"email": "ada@example.com", "name": "Ada"}}),
        ))
        .await
        .unwrap()
        .value;
    assert_eq!(v, json!({"sent": "msg_1", "count": 1}));
    assert_eq!(
        outbox.0.lock().unwrap()[0].text.as_deref(),
        Some("Hello Ada, welcome aboard! — The team")
    );
}
}
