//! The `extensor` binary's audit commands, run as a user would run them,
//! against a real store written through the kernel.

use std::path::Path;
use std::process::{Command, Output};

use extensor_core::aggregate::{self, SnapshotPolicy};
use extensor_core::event::{EventMeta, Principal, StreamId};
use extensor_core::ids::{InstallationId, TenantId};
use extensor_core::installation::{InstallationCommand, InstalledVersion, PluginInstallation};
use extensor_core::manifest::PluginManifest;
use extensor_core::store::sqlite::{OpenMode, SqliteConfig, SqliteStore};
use extensor_core::tenant::{Tenant, TenantCommand};

fn extensor(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(args)
        .env("EXTENSOR_DATA_DIR", data_dir)
        .output()
        .expect("run extensor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Fixture {
    dir: tempfile::TempDir,
    tenant: TenantId,
    installation: InstallationId,
}

/// A store with one tenant (created, renamed twice) and one installation
/// (installed, enabled): 5 events.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(SqliteConfig::new(dir.path(), OpenMode::CreateIfMissing)).unwrap();
    let tenant = TenantId::generate();
    let ts = StreamId::tenant(&tenant);
    let meta = EventMeta::new(Some(tenant.clone()), Principal::operator("alice").unwrap());
    let p = SnapshotPolicy::NEVER;
    let create = TenantCommand::Create {
        tenant_id: tenant.clone(),
        slug: "acme".parse().unwrap(),
        name: "Acme".into(),
    };
    aggregate::execute::<Tenant>(&store, &ts, &create, &meta, p)
        .await
        .unwrap();
    for name in ["Acme Two", "Acme Three"] {
        aggregate::execute::<Tenant>(
            &store,
            &ts,
            &TenantCommand::Rename { name: name.into() },
            &meta,
            p,
        )
        .await
        .unwrap();
    }
    let manifest = PluginManifest::parse(
        br#"{"slug":"daily-kpi","name":"KPI","version":"1.0.0","entry":"main.js"}"#,
    )
    .unwrap();
    let installation = InstallationId::for_slug(&tenant, &manifest.slug);
    let is = StreamId::installation(&installation);
    let install = InstallationCommand::Install {
        installation_id: installation.clone(),
        tenant: tenant.clone(),
        version: InstalledVersion {
            manifest,
            bundle_digest: "sha256:00ff".into(),
        },
    };
    aggregate::execute::<PluginInstallation>(&store, &is, &install, &meta, p)
        .await
        .unwrap();
    aggregate::execute::<PluginInstallation>(&store, &is, &InstallationCommand::Enable, &meta, p)
        .await
        .unwrap();
    store.close().await;
    Fixture {
        dir,
        tenant,
        installation,
    }
}

fn tamper(dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(dir.join("events.sqlite3")).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[tokio::test]
async fn verify_passes_then_catches_each_kind_of_tampering() {
    let cases = [
        ("edited", "UPDATE events SET payload = '{\"name\":\"Evil\"}' WHERE position = 2", "position 2", "edited"),
        ("deleted", "DELETE FROM events WHERE position = 3", "position 3", "deleted"),
        (
            "reordered",
            "UPDATE events SET payload = CASE position WHEN 2 THEN (SELECT payload FROM events WHERE position = 3)
                                                      ELSE (SELECT payload FROM events WHERE position = 2) END
             WHERE position IN (2, 3)",
            "position 2",
            "edited",
        ),
        (
            "inserted",
            "INSERT INTO events SELECT 6, stream, 3, 'evt_01JCZ6X8K9QG7M2V3N4P5R6S7T', event_type, schema_version,
                    recorded_at, tenant, principal, correlation_id, causation_id, payload, prev_hash, hash
             FROM events WHERE position = 3",
            "position 6",
            "link",
        ),
    ];
    for (what, sql, at, reason) in cases {
        let f = fixture().await;
        let ok = extensor(f.dir.path(), &["events", "verify"]);
        assert!(
            ok.status.success(),
            "{what}: clean store verifies: {}",
            stderr(&ok)
        );
        assert!(
            stdout(&ok).contains("OK: 5 events verified"),
            "{}",
            stdout(&ok)
        );
        tamper(f.dir.path(), sql);
        let out = extensor(f.dir.path(), &["events", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: exit code; stdout {} stderr {}",
            stdout(&out),
            stderr(&out)
        );
        let text = stdout(&out);
        assert!(text.contains(at) && text.contains(reason), "{what}: {text}");
    }
}

#[tokio::test]
async fn verify_with_an_anchor_catches_truncation() {
    let f = fixture().await;
    let json = extensor(f.dir.path(), &["events", "verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let anchor = format!(
        "{}:{}",
        report["head_position"],
        report["head_hash"].as_str().unwrap()
    );
    assert!(
        extensor(f.dir.path(), &["events", "verify", "--anchor", &anchor])
            .status
            .success()
    );
    tamper(f.dir.path(), "DELETE FROM events WHERE position = 5");
    assert!(
        extensor(f.dir.path(), &["events", "verify"])
            .status
            .success(),
        "without an anchor a truncated chain is still a chain"
    );
    let out = extensor(f.dir.path(), &["events", "verify", "--anchor", &anchor]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("truncated"), "{}", stdout(&out));
    let bad = extensor(f.dir.path(), &["events", "verify", "--anchor", "5:nothex"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("64 hex"), "{}", stderr(&bad));
}

#[tokio::test]
async fn export_is_ndjson_with_filters_and_quiet_when_piped() {
    let f = fixture().await;
    let all = extensor(f.dir.path(), &["events", "export"]);
    assert!(all.status.success(), "{}", stderr(&all));
    assert!(
        all.stderr.is_empty(),
        "no progress bar when not on a terminal: {}",
        stderr(&all)
    );
    let lines: Vec<serde_json::Value> = stdout(&all)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["event_type"], "tenant.created");
    assert_eq!(lines[4]["principal"], "operator:alice");
    let count = |args: &[&str]| stdout(&extensor(f.dir.path(), args)).lines().count();
    assert_eq!(count(&["events", "export", "--type", "plugin."]), 2);
    assert_eq!(
        count(&[
            "events",
            "export",
            "--stream",
            &format!("tenant-{}", f.tenant)
        ]),
        3
    );
    assert_eq!(
        count(&["events", "export", "--tenant", f.tenant.as_str()]),
        5
    );
    assert_eq!(
        count(&[
            "events",
            "export",
            "--tenant",
            TenantId::generate().as_str()
        ]),
        0
    );
    assert_eq!(
        count(&["events", "export", "--after", "1", "--until", "3"]),
        2
    );
    let t3 = lines[2]["recorded_at"].as_str().unwrap();
    assert_eq!(
        count(&["events", "export", "--from", t3]) + count(&["events", "export", "--to", t3]),
        5,
        "--from and --to split the log at a time"
    );
    let file = f.dir.path().join("out.ndjson");
    let to_file = extensor(
        f.dir.path(),
        &["events", "export", "--output", file.to_str().unwrap()],
    );
    assert!(stderr(&to_file).contains("exported 5 events"));
    assert_eq!(std::fs::read_to_string(file).unwrap(), stdout(&all));
}

#[tokio::test]
async fn state_now_and_in_the_past() {
    let f = fixture().await;
    let now = extensor(f.dir.path(), &["state", "tenant", f.tenant.as_str()]);
    assert!(now.status.success(), "{}", stderr(&now));
    let v: serde_json::Value = serde_json::from_slice(&now.stdout).unwrap();
    assert_eq!(
        (v["state"]["name"].as_str(), v["revision"].as_u64()),
        (Some("Acme Three"), Some(2))
    );
    let then = extensor(
        f.dir.path(),
        &["state", "tenant", f.tenant.as_str(), "--at", "2"],
    );
    let v: serde_json::Value = serde_json::from_slice(&then.stdout).unwrap();
    assert_eq!(v["state"]["name"], "Acme Two");
    let export = stdout(&extensor(
        f.dir.path(),
        &["events", "export", "--until", "1"],
    ));
    let t1: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    let at_time = extensor(
        f.dir.path(),
        &[
            "state",
            "tenant",
            f.tenant.as_str(),
            "--at",
            t1["recorded_at"].as_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&at_time.stdout).unwrap();
    assert_eq!(v["state"]["name"], "Acme", "{}", stderr(&at_time));
    let ins = extensor(
        f.dir.path(),
        &[
            "state",
            "installation",
            f.installation.as_str(),
            "--at",
            "4",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&ins.stdout).unwrap();
    assert_eq!(
        v["state"]["status"], "disabled",
        "installed but not yet enabled at position 4"
    );
    let before = extensor(
        f.dir.path(),
        &[
            "state",
            "installation",
            f.installation.as_str(),
            "--at",
            "3",
        ],
    );
    assert_eq!(before.status.code(), Some(1));
    assert!(
        stderr(&before).contains("has no events at that point"),
        "{}",
        stderr(&before)
    );
}

#[tokio::test]
async fn tail_prints_the_newest_events() {
    let f = fixture().await;
    let out = extensor(f.dir.path(), &["events", "tail", "-n", "2"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("plugin.installed") && lines[1].contains("plugin.enabled"),
        "{text}"
    );
    let filtered = stdout(&extensor(
        f.dir.path(),
        &["events", "tail", "-n", "1", "--type", "tenant.", "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(filtered.trim()).unwrap();
    assert_eq!(
        (v["event_type"].as_str(), v["position"].as_u64()),
        (Some("tenant.renamed"), Some(3))
    );
}

#[tokio::test]
async fn hostile_arguments_get_clear_errors() {
    let f = fixture().await;
    let unknown = TenantId::generate();
    let cases: [(&[&str], &str); 7] = [
        (
            &["state", "tenant", "ins_01JCZ6X8K9QG7M2V3N4P5R6S7T"],
            "must start with `ten_`",
        ),
        (
            &["state", "tenant", f.tenant.as_str(), "--at", "yesterday"],
            "RFC 3339",
        ),
        (&["state", "tenant", unknown.as_str()], "has no events"),
        (
            &["events", "export", "--tenant", "'; DROP TABLE events; --"],
            "--tenant",
        ),
        (
            &["events", "export", "--stream", "../../etc/passwd"],
            "--stream",
        ),
        (&["events", "export", "--from", "2026-13-45"], "--from"),
        (&["events", "tail", "-n", "99999999"], "at most"),
    ];
    for (args, expected) in cases {
        let out = extensor(f.dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }
    let missing = extensor(&f.dir.path().join("nothing-here"), &["events", "verify"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no event store here"),
        "{}",
        stderr(&missing)
    );
    let export = stdout(&extensor(f.dir.path(), &["events", "export"]));
    assert_eq!(export.lines().count(), 5, "hostile input changed nothing");
}

#[test]
fn a_foreign_database_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("events.sqlite3")).unwrap();
    conn.execute_batch("CREATE TABLE accounts (id INTEGER);")
        .unwrap();
    drop(conn);
    let out = extensor(dir.path(), &["events", "export"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("events.sqlite3") && stderr(&out).contains("format marker"),
        "{}",
        stderr(&out)
    );
}

/// `tail --follow` opens the store read-only, so events appended by another
/// process (here: a second store handle with its own writer) reach it through
/// the store's head poller.
#[tokio::test]
async fn tail_follow_sees_appends_from_another_process() {
    use std::io::{BufRead, BufReader};
    let f = fixture().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["events", "tail", "-n", "1", "--follow", "--json"])
        .env("EXTENSOR_DATA_DIR", f.dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["position"], 5);
    let store =
        SqliteStore::open(SqliteConfig::new(f.dir.path(), OpenMode::CreateIfMissing)).unwrap();
    let ts = StreamId::tenant(&f.tenant);
    let meta = EventMeta::new(Some(f.tenant.clone()), Principal::system());
    let rename = TenantCommand::Rename {
        name: "Followed".into(),
    };
    aggregate::execute::<Tenant>(&store, &ts, &rename, &meta, SnapshotPolicy::NEVER)
        .await
        .unwrap();
    let next = tokio::task::spawn_blocking(move || lines.next());
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), next).await;
    // Killing the child also unblocks the reader thread if it timed out.
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line
        .expect("tail --follow printed nothing within 20 s")
        .unwrap()
        .unwrap()
        .unwrap();
    let live: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (live["position"].as_u64(), live["event_type"].as_str()),
        (Some(6), Some("tenant.renamed"))
    );
    assert_eq!(live["payload"]["name"], "Followed");
}
