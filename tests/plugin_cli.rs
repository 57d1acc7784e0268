//! `extensor plugin …` driven as an author drives it: scaffold, validate,
//! pack, test; and every surface fed hostile input (bad directories,
//! symlinks, huge files, broken manifests and sources, missing files, bad
//! route methods), each answered with a clear error naming what and where.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn extensor(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extensor"))
        .current_dir(cwd)
        .args(args)
        .env_remove("EXTENSOR_ALLOW_PRIVATE_NETWORKS")
        .output()
        .expect("run extensor")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins")
}

/// A plugin directory from (path, contents) pairs.
fn plugin(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const GOOD_MANIFEST: &str = r#"{
  "slug": "probe",
  "name": "Probe",
  "version": "1.0.0",
  "entry": "main.js",
  "events": ["app.ping"],
  "routes": [{"method": "GET", "path": "/items/:id"}]
}"#;

const GOOD_MAIN: &str = "import { hook, route } from 'extensor:sdk';\n\
hook('app.ping', (e, ctx) => { console.log('got', e.data); if (e.data && e.data.fail) throw new Error('asked to fail'); return { pong: e.data }; });\n\
route('GET', '/items/:id', (req) => ({ status: 200, body: { id: req.params.id, q: req.query, body: req.body } }));\n";

fn good() -> tempfile::TempDir {
    plugin(&[("manifest.json", GOOD_MANIFEST), ("main.js", GOOD_MAIN)])
}

#[test]
fn scaffolds_validate_and_their_sample_tests_pass() {
    let work = tempfile::tempdir().unwrap();
    for (name, flag) in [("hello-js", None), ("hello-ts", Some("--ts"))] {
        let mut args = vec!["plugin", "new", name];
        args.extend(flag);
        let o = extensor(work.path(), &args);
        assert!(o.status.success(), "{}", err(&o));
        let o = extensor(work.path(), &["plugin", "validate", name]);
        assert!(o.status.success(), "{}", err(&o));
        assert!(
            out(&o).contains(&format!("ok: {name} 0.1.0")),
            "{}",
            out(&o)
        );
        let event = format!("{name}/tests/ping.event.json");
        let expect = format!("{name}/tests/ping.expected.json");
        let o = extensor(
            work.path(),
            &[
                "plugin", "test", name, "--event", &event, "--expect", &expect,
            ],
        );
        assert!(o.status.success(), "{}{}", out(&o), err(&o));
        // The secret from NAME/.env changes the reply, and the expectation says so.
        std::fs::write(work.path().join(name).join(".env"), "GREETING=hi there\n").unwrap();
        let o = extensor(
            work.path(),
            &[
                "plugin", "test", name, "--event", &event, "--expect", &expect,
            ],
        );
        assert_eq!(o.status.code(), Some(1));
        assert!(
            err(&o).contains("$.reply is \"hi there\", expected \"pong\""),
            "{}",
            err(&o)
        );
        for args in [["--route", "GET", "/hello"], ["--job", "nightly", ""]] {
            let mut a = vec!["plugin", "test", name];
            a.extend(args.iter().filter(|s| !s.is_empty()));
            let o = extensor(work.path(), &a);
            assert!(o.status.success(), "{a:?}: {}", err(&o));
        }
    }
    // The same name twice is refused, and so is a name that is not a slug.
    let o = extensor(work.path(), &["plugin", "new", "hello-js"]);
    assert!(err(&o).contains("already exists"), "{}", err(&o));
    let o = extensor(work.path(), &["plugin", "new", "Bad_Name"]);
    assert!(
        err(&o).contains("`Bad_Name` cannot be a plugin slug"),
        "{}",
        err(&o)
    );
    assert!(!work.path().join("Bad_Name").exists());
}

/// The SDK's `tsc`, installed by `scripts/test` from its package-lock.json.
fn sdk_tsc() -> std::path::PathBuf {
    let tsc = Path::new(env!("CARGO_MANIFEST_DIR")).join("js-runtime/sdk/node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "tsc missing: run `scripts/test` (it runs `npm ci` in js-runtime/sdk)"
    );
    tsc
}

/// extensor.d.ts, the SDK example and the TypeScript example plugin
/// type-check under `strict` (js-runtime/sdk/tsconfig.json).
#[test]
fn the_sdk_types_and_the_typescript_examples_type_check() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("js-runtime/sdk");
    let o = Command::new(sdk_tsc())
        .args(["-p", "tsconfig.json"])
        .current_dir(&sdk)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
}

#[test]
fn the_typescript_scaffold_type_checks_against_the_sdk() {
    let tsc = sdk_tsc();
    let work = tempfile::tempdir().unwrap();
    let o = extensor(work.path(), &["plugin", "new", "typed", "--ts"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = Command::new(&tsc)
        .args(["-p", "typed/tsconfig.json"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
}

#[test]
fn every_manifest_problem_is_printed_at_its_line() {
    let manifest = r#"{
  "slug": "Bad_Slug",
  "name": "x",
  "version": "one",
  "entry": "main.js",
  "permissions": ["send_email", "root"],
  "jobs": [
    {"name": "a", "schedule": "61 * * * *"}
  ],
  "permisions": []
}"#;
    let dir = plugin(&[("manifest.json", manifest), ("main.js", "")]);
    let o = extensor(dir.path(), &["plugin", "validate", "."]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    for expected in [
        "./manifest.json:2:3: $.slug: `Bad_Slug`",
        "./manifest.json:4:3: $.version: `one` is not a semantic version",
        "./manifest.json:6:33: $.permissions[1]: unknown permission `root`",
        "./manifest.json:8:19: $.jobs[0].schedule:",
        "./manifest.json:10:3: $.permisions: unknown field",
        "has 5 problems",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in\n{e}");
    }
    // Not JSON at all: serde's own position.
    let dir = plugin(&[
        ("manifest.json", "{\n  \"slug\": \"x\",\n  oops\n}"),
        ("main.js", ""),
    ]);
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(e.contains("./manifest.json:3:3: not valid JSON"), "{e}");
    // A required field missing points at the object that lacks it.
    let dir = plugin(&[("manifest.json", "{\"slug\": \"ab\"}"), ("main.js", "")]);
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(
        e.contains("./manifest.json:1:1: $.name: is required"),
        "{e}"
    );
}

#[test]
fn source_problems_name_file_line_and_column() {
    let dir = plugin(&[
        ("manifest.json", GOOD_MANIFEST),
        (
            "main.js",
            "import { hook } from 'extensor:sdk';\nimport './lib/util.js';\nhook('app.ping', () => 1);\n",
        ),
        ("lib/util.js", "// fine\nexport const x = ;\n"),
    ]);
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(e.contains("./lib/util.js:2:18:"), "{e}");
    let dir = plugin(&[
        (
            "manifest.json",
            &GOOD_MANIFEST.replace("main.js", "main.ts"),
        ),
        (
            "main.ts",
            "import { hook } from 'extensor:sdk';\n\nconst n: = 1;\n",
        ),
    ]);
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(e.contains("./main.ts:3:"), "{e}");
    let dir = plugin(&[
        ("manifest.json", GOOD_MANIFEST),
        ("main.js", "import fs from 'node:fs';\n"),
    ]);
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(
        e.contains("./main.js:1:16: `node:fs` is not allowed"),
        "{e}"
    );
    // Registrations that disagree with the manifest.
    let dir = plugin(&[
        ("manifest.json", GOOD_MANIFEST),
        (
            "main.js",
            "import { hook } from 'extensor:sdk';\nhook('other.event', () => 1);\n",
        ),
    ]);
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(
        e.contains("hook(`other.event`) handles an event not declared"),
        "{e}"
    );
    assert!(
        e.contains(
            "./manifest.json:6:14: $.events[0]: `app.ping` is declared but no hook() handles it"
        ),
        "{e}"
    );
    // A bundle that throws while evaluating.
    let dir = plugin(&[
        ("manifest.json", GOOD_MANIFEST),
        ("main.js", "throw new Error('boom at load');\n"),
    ]);
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(
        e.contains("./main.js: evaluating the bundle threw") && e.contains("boom at load"),
        "{e}"
    );
}

#[test]
fn hostile_directories_are_refused_with_the_path() {
    let work = tempfile::tempdir().unwrap();
    let o = extensor(work.path(), &["plugin", "validate", "does-not-exist"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("does-not-exist: cannot be read"),
        "{}",
        err(&o)
    );
    std::fs::write(work.path().join("file"), "x").unwrap();
    let e = err(&extensor(work.path(), &["plugin", "validate", "file"]));
    assert!(e.contains("file: is not a directory"), "{e}");
    std::fs::create_dir(work.path().join("empty")).unwrap();
    let e = err(&extensor(work.path(), &["plugin", "validate", "empty"]));
    assert!(e.contains("empty/manifest.json: is missing"), "{e}");

    // A symlink inside the plugin, pointing outside it, is refused, not followed.
    let dir = good();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd.js")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
    for cmd in ["validate", "pack"] {
        let o = extensor(dir.path(), &["plugin", cmd, "."]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        let e = err(&o);
        assert!(e.contains("./passwd.js: is a symbolic link"), "{e}");
        assert!(e.contains("./etc: is a symbolic link"), "{e}");
    }
    assert!(
        !dir.path().join("probe-1.0.0.zip").exists(),
        "nothing packed"
    );

    // A huge (sparse) file is refused from its size, without being read.
    let dir = good();
    let f = std::fs::File::create(dir.path().join("data.bin")).unwrap();
    f.set_len(64 * 1024 * 1024 * 1024).unwrap();
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(
        e.contains("./data.bin: is 68719476736 bytes; a whole bundle holds at most 8388608 bytes"),
        "{e}"
    );

    // Many files that together exceed the bundle: reported once, where the line is crossed.
    let dir = good();
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..1024 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    for i in 0..9 {
        std::fs::write(dir.path().join(format!("blob{i}.dat")), &noise).unwrap();
    }
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert_eq!(
        e.matches("takes the bundle past its limit of 8388608 bytes")
            .count(),
        1,
        "{e}"
    );
    assert!(e.contains("./blob8.dat: takes the bundle past"), "{e}");

    // Too many files.
    let dir = good();
    for i in 0..=extensor_js::bundle::BUNDLE_FILES_MAX {
        std::fs::write(dir.path().join(format!("f{i}.txt")), "").unwrap();
    }
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(e.contains("holds more than 1000 files"), "{e}");

    // What only the upload's ZIP reader refuses (a suspicious compression
    // ratio) is refused locally too, naming the file.
    let dir = good();
    std::fs::write(dir.path().join("zeros.dat"), vec![0u8; 1024 * 1024]).unwrap();
    for cmd in ["validate", "pack"] {
        let e = err(&extensor(dir.path(), &["plugin", cmd, "."]));
        assert!(
            e.contains("./zeros.dat: compresses 1048576 bytes") && e.contains("zip bomb"),
            "{cmd}: {e}"
        );
    }

    // A FIFO would block a naive reader forever.
    let dir = good();
    let fifo = dir.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let e = err(&extensor(dir.path(), &["plugin", "validate", "."]));
    assert!(e.contains("./pipe: is not a regular file"), "{e}");
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().into_owned())
        .collect()
}

#[test]
fn pack_is_deterministic_and_leaves_out_dev_files() {
    let dir = good();
    for (p, t) in [
        (".env", "SECRET=do-not-ship"),
        ("tests/ping.json", "{}"),
        ("node_modules/x/index.js", ""),
        ("lib/data.txt", "kept"),
    ] {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, t).unwrap();
    }
    let o = extensor(dir.path(), &["plugin", "pack", "."]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("packed probe 1.0.0 (3 files"),
        "{}",
        out(&o)
    );
    let first = std::fs::read(dir.path().join("probe-1.0.0.zip")).unwrap();
    assert_eq!(
        zip_names(&first),
        ["lib/data.txt", "main.js", "manifest.json"]
    );
    // Newer mtimes and a second run (with the first ZIP lying in the directory) change nothing.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(dir.path().join("main.js"), GOOD_MAIN).unwrap();
    let o = extensor(dir.path(), &["plugin", "pack", ".", "-o", "again.zip"]);
    assert!(o.status.success(), "{}", err(&o));
    let second = std::fs::read(dir.path().join("again.zip")).unwrap();
    assert_eq!(first, second);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&first)).unwrap();
    let mut text = String::new();
    z.by_name("main.js")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, GOOD_MAIN);

    // An invalid plugin is not packed.
    let bad = plugin(&[("manifest.json", "{}"), ("main.js", "")]);
    let o = extensor(bad.path(), &["plugin", "pack", ".", "-o", "out.zip"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!bad.path().join("out.zip").exists());
    // An output path that cannot be written says so.
    let o = extensor(
        dir.path(),
        &["plugin", "pack", ".", "-o", "no/such/dir/x.zip"],
    );
    assert!(err(&o).contains("no/such/dir/x.zip"), "{}", err(&o));
}

#[test]
fn test_runs_hooks_and_routes_and_reports_failures() {
    let dir = good();
    std::fs::write(
        dir.path().join("ev.json"),
        r#"{"type": "app.ping", "data": {"n": 1}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("fail.json"),
        r#"{"event_type": "app.ping", "event_data": {"fail": true}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("body.json"), r#"{"a": [1, 2]}"#).unwrap();
    let o = extensor(
        dir.path(),
        &["plugin", "test", ".", "--event", "ev.json", "--json"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(report["value"], serde_json::json!({"pong": {"n": 1}}));
    assert_eq!(report["logs"][0]["message"], "got {\"n\":1}");

    let o = extensor(dir.path(), &["plugin", "test", ".", "--event", "fail.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("error: Thrown: Error: asked to fail"),
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains("[info] got {\"fail\":true}"),
        "logs are shown on failure: {}",
        out(&o)
    );
    assert!(err(&o).contains("the plugin failed: Thrown"), "{}", err(&o));

    let o = extensor(
        dir.path(),
        &[
            "plugin",
            "test",
            ".",
            "--route",
            "get",
            "/items/42?full=1",
            "--body",
            "body.json",
            "--header",
            "X-Trace: abc",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(
        report["value"],
        serde_json::json!({"status": 200, "body": {"id": "42", "q": {"full": "1"}, "body": {"a": [1, 2]}}})
    );
}

#[test]
fn test_refuses_bad_inputs_clearly() {
    let dir = good();
    std::fs::write(
        dir.path().join("notjson.json"),
        "{\n  \"type\": app.ping\n}",
    )
    .unwrap();
    std::fs::write(dir.path().join("array.json"), "[]").unwrap();
    std::fs::write(dir.path().join("badtype.json"), r#"{"type": "app.*"}"#).unwrap();
    std::fs::write(
        dir.path().join("secrets.env"),
        "GOOD=1\nthis line is wrong\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ok.json"), r#"{"type": "app.ping"}"#).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::File::create(dir.path().join("tests/huge.json"))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    std::fs::write(
        dir.path().join("seed.ndjson"),
        "{\"type\": \"a.b\"}\n{\"data\": 1}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("input.json"), "[1]").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--event", "missing.json"],
            "event file missing.json: No such file",
        ),
        (
            &["--event", "notjson.json"],
            "event file notjson.json:2:11: not valid JSON",
        ),
        (&["--event", "array.json"], "must be a JSON object"),
        (
            &["--event", "badtype.json"],
            "`type` must be a concrete event type",
        ),
        (&["--event", "."], "event file .: is not a regular file"),
        (
            &["--route", "TRACE", "/items/1"],
            "`TRACE` is not a route method; routes use GET, POST, PUT, PATCH, DELETE",
        ),
        (
            &["--route", "GET", "items"],
            "route path `items` must start with /",
        ),
        (
            &["--route", "GET", "/nope"],
            "no route for GET /nope; its routes: GET /items/:id",
        ),
        (
            &["--route", "GET", "/items/1", "--body", "missing.json"],
            "body file missing.json",
        ),
        (
            &["--route", "GET", "/items/1", "--header", "no-colon"],
            "--header `no-colon` is not `Name: value`",
        ),
        (
            &["--job", "nightly"],
            "the plugin registers no job `nightly`; its jobs: none",
        ),
        (
            &["--event", "ok.json", "--secrets", "secrets.env"],
            "secrets.env:2: expected KEY=VALUE",
        ),
        (
            &["--event", "ok.json", "--db", "missing.sqlite"],
            "read model missing.sqlite does not exist",
        ),
        (
            &["--event", "tests/huge.json"],
            "event file tests/huge.json: is 1099511627776 bytes; the limit is 4194304",
        ),
        (
            &["--event", "ok.json", "--seed-events", "seed.ndjson"],
            "seed.ndjson:2: each line needs a string `type`",
        ),
        (
            &["--event", "ok.json", "--input", "input.json"],
            "--input applies only to --job",
        ),
    ];
    for (args, expected) in cases {
        let mut a = vec!["plugin", "test", "."];
        a.extend_from_slice(args);
        let o = extensor(dir.path(), &a);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains(expected),
            "{args:?}: expected {expected:?} in {}",
            err(&o)
        );
    }
    let o = extensor(
        dir.path(),
        &[
            "plugin", "test", ".", "--event", "ok.json", "--body", "b.json",
        ],
    );
    assert!(
        err(&o).contains("--body and --header apply only to --route"),
        "{}",
        err(&o)
    );
    // Usage errors come from the argument parser (exit 2): no trigger, two triggers.
    for args in [
        vec!["plugin", "test", "."],
        vec!["plugin", "test", ".", "--job", "a", "--event", "x.json"],
    ] {
        let o = extensor(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
    }
}

#[test]
fn the_examples_run_through_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // welcome-email: the template secret comes from a dotenv file; the email is printed, not sent.
    std::fs::write(
        w.join("secrets.env"),
        "WELCOME_EMAIL_TEMPLATE=\"Subject: Hi {{first_name}}\\n\\nWelcome, {{email}}!\"\n",
    )
    .unwrap();
    std::fs::write(w.join("user.json"), r#"{"type": "auth.user.created", "data": {"user": {"email": "ada@example.com", "first_name": "Ada"}}}"#).unwrap();
    let dir = examples().join("welcome-email");
    let dir = dir.to_str().unwrap();
    let o = extensor(
        w,
        &[
            "plugin",
            "test",
            dir,
            "--event",
            "user.json",
            "--secrets",
            "secrets.env",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("email (recorded, not sent) to ada@example.com: Hi Ada"),
        "{text}"
    );
    assert!(text.contains("  | Welcome, ada@example.com!"), "{text}");

    // daily-kpi: a seeded read model, files kept in a directory we read back.
    std::fs::write(
        w.join("events.ndjson"),
        "{\"type\": \"auth.user.created\", \"time\": \"2026-11-23T10:00:00Z\", \"data\": {}}\n\
         {\"type\": \"order.paid\", \"time\": \"2026-11-23T11:00:00Z\", \"data\": {\"amount_cents\": 700}}\n",
    )
    .unwrap();
    std::fs::write(w.join("day.json"), r#"{"day": "2026-11-23"}"#).unwrap();
    let dir = examples().join("daily-kpi");
    let dir = dir.to_str().unwrap();
    let o = extensor(
        w,
        &[
            "plugin",
            "test",
            dir,
            "--job",
            "compute_daily_kpis",
            "--seed-events",
            "events.ndjson",
            "--input",
            "day.json",
            "--files-dir",
            "files",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(report["events"][0]["event_type"], "kpi.daily");
    assert_eq!(
        report["files"],
        serde_json::json!(["kpi/2026-11-23.csv", "kpi/latest.json"])
    );
    let o = extensor(
        w,
        &[
            "plugin",
            "test",
            dir,
            "--route",
            "GET",
            "/latest",
            "--files-dir",
            "files",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(report["value"]["body"]["revenue_cents"], 700);
    assert_eq!(report["value"]["body"]["signups"], 1);

    // slack-notifier: real, guarded HTTP. Without EXTENSOR_ALLOW_PRIVATE_NETWORKS
    // a webhook URL on loopback is refused, and the run fails saying so.
    std::fs::write(
        w.join("slack.env"),
        "SLACK_WEBHOOK_URL=http://127.0.0.1:9/services/x\n",
    )
    .unwrap();
    std::fs::write(
        w.join("build.json"),
        r#"{"type": "build.completed", "data": {"project": "api", "status": "success"}}"#,
    )
    .unwrap();
    let dir = examples().join("slack-notifier");
    let dir = dir.to_str().unwrap();
    let o = extensor(
        w,
        &[
            "plugin",
            "test",
            dir,
            "--event",
            "build.json",
            "--secrets",
            "slack.env",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("NetworkDenied"), "{}", out(&o));
}

/// `extensor` with extra environment; the LLM and network variables of the
/// calling shell never leak in.
fn extensor_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_extensor"));
    c.current_dir(cwd).args(args);
    for k in [
        "EXTENSOR_ALLOW_PRIVATE_NETWORKS",
        "EXTENSOR_LLM_BASE_URL",
        "EXTENSOR_LLM_API_KEY",
        "EXTENSOR_LLM_MODELS",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    c.output().expect("run extensor")
}

fn json_report(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}{}", out(o), err(o));
    serde_json::from_str(&out(o)).unwrap_or_else(|e| panic!("{e}: {}", out(o)))
}

const LLM_MANIFEST: &str = r#"{
  "slug": "classifier",
  "name": "Classifier",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["llm"],
  "events": ["text.classify"]
}"#;

/// One completion per text; the model comes from the event when given.
const LLM_MAIN: &str = "import { hook } from 'extensor:sdk';\n\
hook('text.classify', async (e, ctx) => {\n\
  const replies = []; let last = null;\n\
  for (const text of e.data.texts) {\n\
    last = await ctx.llm.complete({ model: e.data.model, max_tokens: 50000,\n\
      messages: [{ role: 'system', content: 'Answer with one word.' }, { role: 'user', content: text }] });\n\
    replies.push(last.content);\n\
  }\n\
  return { replies, model: last.model, finish_reason: last.finish_reason, usage: last.usage };\n\
});\n";

fn llm_plugin() -> tempfile::TempDir {
    let dir = plugin(&[("manifest.json", LLM_MANIFEST), ("main.js", LLM_MAIN)]);
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "two.json",
        r#"{"type": "text.classify", "data": {"texts": ["buy cheap pills now", "lunch at noon?"]}}"#,
    );
    write(
        "big-model.json",
        r#"{"type": "text.classify", "data": {"texts": ["hi"], "model": "big-model"}}"#,
    );
    write("reply.txt", "{\"label\": \"spam\"}");
    write("replies.json", r#"["spam", "ham"]"#);
    write("one-reply.json", r#"["spam"]"#);
    write("bad-replies.json", r#"["spam", {"label": "ham"}]"#);
    dir
}

#[test]
fn test_has_an_llm_stand_in_that_echoes_by_default() {
    let dir = llm_plugin();
    let args = ["plugin", "test", ".", "--event", "two.json", "--json"];
    let report = json_report(&extensor_env(dir.path(), &args, &[]));
    assert_eq!(
        report["value"]["replies"],
        serde_json::json!(["buy cheap pills now", "lunch at noon?"])
    );
    assert_eq!(report["value"]["model"], "local-stand-in");
    assert_eq!(report["value"]["finish_reason"], "stop");
    // usage counts words: "Answer with one word." + "lunch at noon?" / the reply.
    assert_eq!(
        report["value"]["usage"],
        serde_json::json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    );
    assert_eq!(
        report["llm_backend"],
        "stand-in: echo of the last user message"
    );
    let calls = report["llm"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["messages"][0]["content"], "Answer with one word.");
    assert_eq!(calls[1]["reply"], "lunch at noon?");
    // The readable form shows each prompt and reply.
    let o = extensor_env(
        dir.path(),
        &["plugin", "test", ".", "--event", "two.json"],
        &[],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains(
            "llm (stand-in: echo of the last user message):\n  local-stand-in < buy cheap pills now\n  local-stand-in > buy cheap pills now\n"
        ),
        "{}",
        out(&o)
    );
}

#[test]
fn test_llm_stand_in_answers_canned_replies() {
    let dir = llm_plugin();
    let run = |extra: &[&str]| {
        let mut a = vec!["plugin", "test", ".", "--event", "two.json", "--json"];
        a.extend_from_slice(extra);
        extensor_env(dir.path(), &a, &[])
    };
    // A text file (here JSON that is not an array) answers every completion.
    let report = json_report(&run(&["--llm-reply", "reply.txt"]));
    assert_eq!(
        report["value"]["replies"],
        serde_json::json!(["{\"label\": \"spam\"}", "{\"label\": \"spam\"}"])
    );
    assert_eq!(report["llm_backend"], "stand-in: the reply in reply.txt");
    // A JSON array answers one completion each, in order.
    let report = json_report(&run(&["--llm-reply", "replies.json"]));
    assert_eq!(
        report["value"]["replies"],
        serde_json::json!(["spam", "ham"])
    );
    // ...and a completion after the last fails, saying why.
    let o = run(&["--llm-reply", "one-reply.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(report["llm"][0]["reply"], "spam");
    assert_eq!(
        report["llm"][1]["error"],
        "the stand-in's 1 replies from one-reply.json are used up"
    );
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("endpoint answered 500"),
        "{report}"
    );
    // Bad reply files are refused before anything runs.
    for (file, expected) in [
        (
            "bad-replies.json",
            "llm reply file bad-replies.json: [1] is an object, not a string",
        ),
        ("missing.txt", "llm reply file missing.txt"),
        (".", "llm reply file .: is not a regular file"),
    ] {
        let o = run(&["--llm-reply", file]);
        assert_eq!(o.status.code(), Some(1), "{file}");
        assert!(err(&o).contains(expected), "{file}: {}", err(&o));
        assert!(out(&o).is_empty(), "{file}: ran anyway: {}", out(&o));
    }
}

#[test]
fn test_llm_follows_the_platforms_model_allowlist() {
    let dir = llm_plugin();
    let args = ["plugin", "test", ".", "--event", "big-model.json", "--json"];
    let o = extensor_env(dir.path(), &args, &[]);
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    // Uncaught in the plugin, the host's InvalidArgument is a throw.
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("InvalidArgument")
            && message.contains("model `big-model` is not in the platform's allowlist"),
        "{report}"
    );
    assert_eq!(
        report["llm"],
        serde_json::json!([]),
        "refused before any call"
    );
    let env = [("EXTENSOR_LLM_MODELS", "small-model, big-model")];
    let report = json_report(&extensor_env(dir.path(), &args, &env));
    assert_eq!(report["value"]["replies"], serde_json::json!(["hi"]));
    assert_eq!(report["llm"][0]["model"], "big-model");
}

/// Answers one HTTP request on loopback with `body` (JSON); the request's
/// head and body are sent back over the channel.
fn answer_once(body: &'static str) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if buf.len() >= end + 4 + len || n == 0 {
                    tx.send(text).unwrap();
                    break;
                }
            }
        }
        write!(
            sock,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    (port, rx)
}

#[test]
fn test_llm_uses_a_real_endpoint_when_configured() {
    let dir = llm_plugin();
    std::fs::write(
        dir.path().join("one.json"),
        r#"{"type": "text.classify", "data": {"texts": ["hello"]}}"#,
    )
    .unwrap();
    let (port, seen) = answer_once(
        r#"{"model": "real-model-2026", "choices": [{"message": {"role": "assistant", "content": "from the endpoint"}, "finish_reason": "length"}], "usage": {"total_tokens": 9}}"#,
    );
    let base = format!("http://127.0.0.1:{port}/v1");
    let env = [
        ("EXTENSOR_LLM_BASE_URL", base.as_str()),
        ("EXTENSOR_LLM_API_KEY", "sk-local-test"),
        ("EXTENSOR_LLM_MODELS", "real-model"),
    ];
    let args = ["plugin", "test", ".", "--event", "one.json", "--json"];
    let report = json_report(&extensor_env(dir.path(), &args, &env));
    assert_eq!(
        report["value"]["replies"],
        serde_json::json!(["from the endpoint"])
    );
    assert_eq!(report["value"]["model"], "real-model-2026");
    assert_eq!(report["value"]["finish_reason"], "length");
    assert_eq!(report["llm"], serde_json::json!([]));
    assert_eq!(
        report["llm_backend"],
        format!("EXTENSOR_LLM_BASE_URL ({base})")
    );
    // --llm-reply still means the stand-in, endpoint or not.
    let mut canned = args.to_vec();
    canned.extend(["--llm-reply", "reply.txt"]);
    let report = json_report(&extensor_env(dir.path(), &canned, &env));
    assert_eq!(report["llm_backend"], "stand-in: the reply in reply.txt");
    let request = seen.recv().unwrap();
    assert!(
        request.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-local-test"),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(&request[request.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    // The client's clamp: max_tokens 50000 is sent as 8192.
    assert_eq!(body["max_tokens"], 8192);
    assert_eq!(body["model"], "real-model");
    assert_eq!(body["messages"][1]["content"], "hello");
}

/// ctx.http is the real guarded client: with private networks allowed (as an
/// operator may), a request to an allowed host really goes out.
#[test]
fn test_http_is_the_real_guarded_client() {
    let manifest = r#"{
  "slug": "fetcher",
  "name": "Fetcher",
  "version": "1.0.0",
  "entry": "main.js",
  "permissions": ["outbound_http", "secrets.read"],
  "allowed_hosts": ["localhost"],
  "events": ["app.fetch"]
}"#;
    let main = "import { hook } from 'extensor:sdk';\n\
hook('app.fetch', async (e, ctx) => {\n\
  const r = await ctx.http.fetch(await ctx.secrets.get('TARGET'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(e.data) });\n\
  return { status: r.status, answer: await r.json() };\n\
});\n";
    let dir = plugin(&[
        ("manifest.json", manifest),
        ("main.js", main),
        ("ev.json", r#"{"type": "app.fetch", "data": {"n": 7}}"#),
    ]);
    let (port, seen) = answer_once(r#"{"ok": true}"#);
    std::fs::write(
        dir.path().join(".env"),
        format!("TARGET=http://localhost:{port}/hook\n"),
    )
    .unwrap();
    let args = ["plugin", "test", ".", "--event", "ev.json", "--json"];
    let env = [("EXTENSOR_ALLOW_PRIVATE_NETWORKS", "true")];
    let report = json_report(&extensor_env(dir.path(), &args, &env));
    assert_eq!(
        report["value"],
        serde_json::json!({"status": 200, "answer": {"ok": true}})
    );
    let request = seen.recv().unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
    assert!(request.ends_with("\r\n\r\n{\"n\":7}"), "{request}");
    // The same run without the operator's permission is refused by the guard.
    let o = extensor_env(dir.path(), &args, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("NetworkDenied"), "{}", out(&o));
}

/// `--db FILE` keeps the read model between runs: seeded once, queried again.
#[test]
fn test_db_file_persists_between_runs() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(
        w.join("events.ndjson"),
        "{\"type\": \"order.paid\", \"time\": \"2026-11-23T11:00:00Z\", \"data\": {\"amount_cents\": 900}}\n",
    )
    .unwrap();
    std::fs::write(w.join("day.json"), r#"{"day": "2026-11-23"}"#).unwrap();
    let dir = examples().join("daily-kpi");
    let dir = dir.to_str().unwrap();
    let job = [
        "plugin",
        "test",
        dir,
        "--job",
        "compute_daily_kpis",
        "--input",
        "day.json",
        "--db",
        "kpi.sqlite",
        "--json",
    ];
    let mut seeded = job.to_vec();
    seeded.extend(["--seed-events", "events.ndjson"]);
    for args in [&seeded[..], &job[..]] {
        let report = json_report(&extensor_env(w, args, &[]));
        assert_eq!(report["value"]["revenue_cents"], 900, "{args:?}");
    }
    assert!(w.join("kpi.sqlite").is_file());
}
