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
/// Cases per operation and phase: with 48 operations each run takes about
/// 30 s on two cores (about 1,600 cases), and still covers every check.
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

/// Runs schemathesis with every check, the stateful phase included,
/// against `server` as `token`; fails on any failure.
fn schemathesis(
    server: &served::Server,
    token: &str,
    work: &Path,
    config: Option<&Path>,
    env: &[(&str, &str)],
) {
    let mut cmd = Command::new(venv_tool("schemathesis", "schemathesis"));
    cmd.envs(env.iter().copied());
    if let Some(c) = config {
        cmd.arg("--config-file").arg(c);
    }
    let o = cmd
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args(["--checks", "all", "--workers", "1"])
        .args(["--seed", SCHEMATHESIS_SEED])
        .args(["--max-examples", SCHEMATHESIS_EXAMPLES])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .env("NO_COLOR", "1")
        .current_dir(work)
        .output()
        .expect("start schemathesis");
    let out = text(&o);
    // The summary (phases, failures, cases) goes to the test's output.
    let summary: Vec<&str> = out.lines().skip_while(|l| !l.contains("SUMMARY")).collect();
    println!("{}", summary.join("\n"));
    assert!(o.status.success(), "schemathesis found failures:\n{out}");
    assert!(out.contains(" generated, "), "no test cases ran:\n{out}");
}

/// As the platform admin: tenant operations without a tenant are refused
/// (403 `tenant_required`) or name an unknown one (404), so this run covers
/// parsing, validation, auth and routing on every operation.
#[test]
fn schemathesis_as_the_platform_admin_finds_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path());
    schemathesis(&server, ADMIN, data.path(), None, &[]);
}

/// As a tenant's owner (no X-Tenant-Slug needed): every handler runs, and
/// answers with real data are checked against their schemas. The few
/// operations whose content no schema can express may also answer 422 (or
/// 412 for `If-Match`): tests/schemathesis.toml lists them and why.
#[test]
fn schemathesis_as_a_tenant_owner_finds_nothing() {
    let data = tempfile::tempdir().unwrap();
    let owner = served::tenant(data.path());
    let server = server(data.path());
    let kpi = root().join("examples/plugins/daily-kpi");
    let o = extensor(
        data.path(),
        &[
            "plugin",
            "push",
            kpi.to_str().unwrap(),
            "--server",
            &server.url,
            "--token",
            &owner,
            "--tenant",
            "acme",
            "--enable",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let plugin = out
        .split(" as ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no plugin id in {out}"));
    let config = root().join("tests/schemathesis.toml");
    let env = [("EXTENSOR_PLUGIN_ID", plugin)];
    schemathesis(&server, &owner, data.path(), Some(&config), &env);
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
