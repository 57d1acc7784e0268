//! The ops console end to end: a real `extensor serve` (this build, with
//! the console embedded) driven by headless Chromium through
//! `console/e2e/run.mjs` (playwright-core over Debian's `chromium`).
//! Screenshots of every page land in `target/console-screenshots`.
//!
//! Needs `node`, `chromium` and the console's npm packages
//! (`console/scripts/install-test-deps.sh` installs all three). A missing
//! one fails this test with that instruction; it never skips.

#[path = "common/served.rs"]
mod served;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use served::{serve_with, tenant};

const ADMIN: &str = "console-e2e-admin-token-0123456789abcdef";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_tools() -> (PathBuf, PathBuf) {
    let fix = "run console/scripts/install-test-deps.sh (installs chromium, node and the console's npm packages)";
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: {fix}"
    );
    let chromium = std::env::var_os("EXTENSOR_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "{} is missing: {fix}",
        chromium.display()
    );
    let modules = repo().join("console/node_modules");
    for m in ["playwright-core", "axe-core"] {
        assert!(
            modules.join(m).exists(),
            "console/node_modules/{m} is missing: {fix}"
        );
    }
    (chromium, modules)
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A plugin with a hook, a job in a non-UTC zone and a route.
const MANIFEST: &str = r#"{
  "slug": "order-notes",
  "name": "Order notes",
  "version": "1.0.0",
  "description": "Notes every order and tallies them nightly",
  "entry": "main.js",
  "permissions": [],
  "events": ["order.created"],
  "routes": [{"method": "GET", "path": "/ping"}],
  "jobs": [{"name": "tally", "schedule": "0 3 * * *", "timezone": "Europe/Paris"}]
}"#;

const MAIN: &str = r#"import { hook, job, route } from "extensor:sdk";
hook("order.created", async (event, ctx) => {
  ctx.log("info", "hook ran for", event.data.order);
  return { noted: event.data.order };
});
job("tally", "0 3 * * *", async (input, ctx) => {
  ctx.log("info", "tally ran");
  return { counted: 1 };
});
route("GET", "/ping", () => ({ status: "ok" }));
"#;

/// Several problems at once: a bad slug, a bad version, a missing entry.
const BAD_MANIFEST: &str = r#"{
  "slug": "Not A Slug!",
  "name": "Broken",
  "version": "one",
  "description": "",
  "entry": "missing.js"
}"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn console_end_to_end_in_headless_chromium() {
    let (chromium, _) = require_tools();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let fixtures = dir.path();
    let good = write(
        fixtures,
        "order-notes.zip",
        &zip_of(&[("manifest.json", MANIFEST), ("main.js", MAIN)]),
    );
    let bad = write(
        fixtures,
        "broken.zip",
        &zip_of(&[("manifest.json", BAD_MANIFEST)]),
    );
    let owner = tenant(&data);
    let server = serve_with(
        &data,
        ADMIN,
        &[
            ("EXTENSOR_FAULT_DRILLS", "true"),
            // The webhook receiver is the test's, on loopback.
            ("EXTENSOR_ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    );
    let shots = repo().join("target/console-screenshots");
    let out = Command::new("node")
        .arg("e2e/run.mjs")
        .current_dir(repo().join("console"))
        .env("EXTENSOR_URL", &server.url)
        .env("ADMIN_TOKEN", ADMIN)
        .env("OWNER_TOKEN", &owner)
        .env("TENANT_SLUG", "acme")
        .env("PLUGIN_ZIP", &good)
        .env("BAD_ZIP", &bad)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "console e2e failed:\n{report}");
    assert!(report.contains(" passed, 0 failed"), "{report}");
}
