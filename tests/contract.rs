//! The API contract, checked from outside against a live `extensor serve`:
//! schemathesis with every check (the stateful phase included) over the
//! served OpenAPI document, and the generated clients in `clients/`: they
//! are what `scripts/clients` generates from `openapi.yaml` today, and each
//! runs the seed's walk (clients/python_walk.py, clients/typescript/walk.ts).
//!
//! The tools come from `scripts/test`: the project's Python venv
//! (`$EXTENSOR_PYTHON`) and `clients/typescript/node_modules`. A missing
//! tool fails the test, naming the fix; nothing here skips.

#[path = "../js-runtime/tests/common/python.rs"]
mod python;
#[path = "common/served.rs"]
mod served;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use served::{extensor, serve_with, text};

const ADMIN: &str = "contract-platform-admin-token-0123456789";

/// Fixed, so that a failure reproduces with the same cases.
const SCHEMATHESIS_SEED: &str = "20261205";
/// Cases per operation and phase: with about 45 operations this keeps the
/// run near a minute on two cores, and still covers every check.
const SCHEMATHESIS_EXAMPLES: &str = "10";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A server whose webhooks may deliver to loopback (the walks' receivers).
fn server(data: &Path) -> served::Server {
    serve_with(data, ADMIN, &[("EXTENSOR_ALLOW_PRIVATE_NETWORKS", "true")])
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot start: {e}"));
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    o
}

/// The tool `name` next to the test Python (a console script of the venv).
fn venv_tool(name: &str, module: &str) -> PathBuf {
    let tool = python::python(&[module]).with_file_name(name);
    assert!(
        tool.is_file(),
        "{} is missing: run `scripts/test`",
        tool.display()
    );
    tool
}

#[test]
fn schemathesis_with_every_check_finds_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path());
    let cli = venv_tool("schemathesis", "schemathesis");
    let report = tempfile::tempdir().unwrap();
    let o = Command::new(cli)
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args(["--checks", "all", "--workers", "1"])
        .args(["--seed", SCHEMATHESIS_SEED])
        .args(["--max-examples", SCHEMATHESIS_EXAMPLES])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--report", "junit", "--report-dir"])
        .arg(report.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(data.path())
        .output()
        .expect("start schemathesis");
    let out = text(&o);
    // The summary (operations, cases, failures) goes to the test's output.
    let summary: Vec<&str> = out.lines().skip_while(|l| !l.contains("SUMMARY")).collect();
    println!("{}", summary.join("\n"));
    assert!(o.status.success(), "schemathesis found failures:\n{out}");
}

/// `scripts/clients DIR` regenerates both clients into DIR; the committed
/// ones must be byte for byte what it writes.
#[test]
fn the_committed_clients_are_the_generated_ones() {
    let fresh = tempfile::tempdir().unwrap();
    run(Command::new(root().join("scripts/clients"))
        .arg(fresh.path())
        .env(
            python::PYTHON_ENV,
            python::python(&["openapi_python_client"]),
        ));
    // The Python package whole; of the TypeScript package, the generated types.
    let committed = files(&root().join("clients/python"));
    let generated = files(&fresh.path().join("python"));
    let names = |m: &[(String, Vec<u8>)]| m.iter().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>();
    let (a, b) = (names(&committed), names(&generated));
    assert!(
        a == b,
        "clients/python: only committed {:?}, only generated {:?}; run `scripts/clients`",
        a.difference(&b).collect::<Vec<_>>(),
        b.difference(&a).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in committed.iter().zip(&generated) {
        assert!(
            x == y,
            "clients/python/{name} is stale; run `scripts/clients`"
        );
    }
    let types = "typescript/src/schema.d.ts";
    assert!(
        std::fs::read(root().join("clients").join(types)).unwrap()
            == std::fs::read(fresh.path().join(types)).unwrap(),
        "clients/{types} is stale; run `scripts/clients`"
    );
}

/// Every file under `dir` (relative path, bytes), sorted; build output and
/// installed packages left out.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if ["node_modules", "__pycache__", "dist", ".ruff_cache"].contains(&name.as_str()) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The example plugins the walk uploads, packed by `extensor plugin pack`.
fn packed(work: &Path) -> (PathBuf, PathBuf) {
    let pack = |name: &str| {
        let zip = work.join(format!("{name}.zip"));
        let dir = root().join("examples/plugins").join(name);
        let o = extensor(
            work,
            &[
                "plugin",
                "pack",
                dir.to_str().unwrap(),
                "-o",
                zip.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        zip
    };
    (pack("welcome-email"), pack("daily-kpi"))
}

/// What every walk is told: where the server is, the admin token, the
/// plugins to upload and the webhook example to apply.
fn walk(cmd: &mut Command, server: &served::Server, work: &Path) -> String {
    let (welcome, kpi) = packed(work);
    let o = run(cmd
        .env("EXTENSOR_URL", &server.url)
        .env("EXTENSOR_ADMIN_TOKEN", ADMIN)
        .env("WALK_WELCOME_ZIP", welcome)
        .env("WALK_JOB_ZIP", kpi)
        .env(
            "WALK_WEBHOOK_DIR",
            root().join("examples/webhooks/build-completed"),
        ));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("walk: done"),
        "the walk did not finish:\n{}",
        text(&o)
    );
    out
}

#[test]
fn the_python_client_runs_the_seed_walk() {
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path());
    let python = python::python(&["httpx", "attrs", "standardwebhooks"]);
    let out = walk(
        Command::new(python)
            .arg(root().join("clients/python_walk.py"))
            .env("PYTHONPATH", root().join("clients/python")),
        &server,
        data.path(),
    );
    println!("{out}");
}

#[test]
fn the_typescript_client_compiles_strict_and_runs_the_seed_walk() {
    let ts = root().join("clients/typescript");
    let tsc = ts.join("node_modules/.bin/tsc");
    assert!(
        tsc.is_file(),
        "{} is missing: run `scripts/test` (npm ci in clients/typescript)",
        tsc.display()
    );
    // Strict type-check of the generated types, the client and the walk,
    // compiled into clients/typescript/dist (git-ignored), where node
    // resolves openapi-fetch from the package's node_modules.
    run(Command::new(&tsc)
        .args(["-p", "tsconfig.json"])
        .current_dir(&ts));
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path());
    let out = walk(
        Command::new("node")
            .arg(ts.join("dist/walk.js"))
            .current_dir(&ts),
        &server,
        data.path(),
    );
    println!("{out}");
}
