//! `extensor serve` as an operator runs it: a real process, real HTTP over
//! loopback, a real SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn start(data_dir: &std::path::Path, listen: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["serve", "--listen", listen])
        .env("EXTENSOR_DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start extensor serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, addr)
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, addr) = start(&data, "127.0.0.1:0");
    let response = get(&addr, "/healthz");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
    // The head is a position: a fresh store already holds the kernel's own
    // first records (the platform admin token, the outbox index's marker).
    let head: u64 = response
        .split("\"store_head_position\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no store_head_position in {response}"));
    assert!(head >= 1, "{response}");
    let missing = get(&addr, "/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        data.join("events.sqlite3").is_file(),
        "serve creates the embedded store"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "exit 0 after SIGTERM, got {status}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("stopped cleanly"), "{err}");
    // Logs piped to a file or collector carry no terminal colour codes.
    assert!(err.contains("request") && !err.contains('\u{1b}'), "{err}");
    let verify = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["events", "verify"])
        .env("EXTENSOR_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the store is intact after shutdown"
    );
}

#[test]
fn unusable_listen_address_or_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (listen, data, expected) in [
        (
            "not-an-address",
            dir.path().join("d1"),
            "cannot listen on not-an-address",
        ),
        (
            "127.0.0.1:0",
            std::path::PathBuf::from("/proc/extensor"),
            "/proc/extensor",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_extensor"))
            .args(["serve", "--listen", listen])
            .env("EXTENSOR_DATA_DIR", &data)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{listen}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected) && !err.contains("panicked"), "{err}");
    }
}

/// Reads `n` lines of the child's stdout.
fn lines(child: &mut Child, n: usize) -> Vec<String> {
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    (0..n)
        .map(|_| {
            let mut l = String::new();
            reader.read_line(&mut l).unwrap();
            l
        })
        .collect()
}

fn request(addr: &str, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{head}Host: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn empty_store_prints_a_generated_admin_token_once_and_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("EXTENSOR_DATA_DIR", &data)
        .env_remove("EXTENSOR_ADMIN_TOKEN")
        .env("EXTENSOR_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(&mut child, 2);
    let addr = out[0]
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let token = out[1].rsplit(' ').next().unwrap().trim().to_owned();
    assert!(
        out[1].contains("platform-admin token") && token.starts_with("ext_"),
        "{out:?}"
    );
    let listed = request(
        &addr,
        &format!(
            "GET /api/tenants HTTP/1.1\r\nAuthorization: Bearer {token}\r\nX-Request-Id: req-123\r\n"
        ),
    );
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(
        listed
            .to_ascii_lowercase()
            .contains("x-request-id: req-123"),
        "{listed}"
    );
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let request_line = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["path"] == "/api/tenants")
        .unwrap_or_else(|| panic!("no JSON request line in {err}"));
    assert_eq!(request_line["span"]["id"], "req-123", "{request_line}");
    assert_eq!(request_line["status"], 200);
    // A second start on the same store prints no token: it was shown once.
    let mut again = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("EXTENSOR_DATA_DIR", &data)
        .env_remove("EXTENSOR_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(again.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("listening"), "{first}");
    Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(!rest.contains("token"), "printed a token twice: {rest}");
    assert!(again.wait().unwrap().success());
}

#[test]
fn tenant_create_cli_prints_the_owner_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |slug: &str| {
        Command::new(env!("CARGO_BIN_EXE_extensor"))
            .args(["tenant", "create", "--slug", slug, "--name", "Acme Inc"])
            .env("EXTENSOR_DATA_DIR", &data)
            .output()
            .unwrap()
    };
    let out = run("acme");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("tenant ten_") && text.contains("owner token"),
        "{text}"
    );
    let again = run("acme");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("slug `acme` is taken"));
    let bad = run("Bad Slug");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--slug"));
}

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else if path.is_file() {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

/// A secret's plaintext goes in over HTTP and is used by the plugin, yet it
/// appears nowhere: not in any file under the data directory (store, WAL,
/// snapshots, bundles, plugin files) and not in the server's own logs, kept
/// at `debug` in JSON form for the whole run.
#[tokio::test]
async fn a_secrets_plaintext_is_in_no_file_and_no_log_line() {
    const PLAINTEXT: &str = "serve-secret-plaintext-5b2f0c8e";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = "serve-test-platform-admin-token-0123456789";
    let mut child = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("EXTENSOR_DATA_DIR", &data)
        .env("EXTENSOR_ADMIN_TOKEN", admin)
        .env("EXTENSOR_LOG_FORMAT", "json")
        .env("EXTENSOR_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let tenant: serde_json::Value = http
        .post(format!("{base}/api/tenants"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"slug": "acme", "name": "Acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = tenant["owner_token"]["token"].as_str().unwrap().to_owned();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/welcome-email");
    let push = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args([
            "plugin",
            "push",
            example.to_str().unwrap(),
            "--server",
            &base,
        ])
        .args(["--token", &owner, "--tenant", "acme", "--enable"])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let plugins: serde_json::Value = http
        .get(format!("{base}/api/plugins"))
        .bearer_auth(&owner)
        .header("X-Tenant-Slug", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = plugins.to_string();
    let id = id
        .split('"')
        .find(|s| s.starts_with("ins_"))
        .expect("an installation id")
        .to_owned();
    let set = http
        .post(format!("{base}/api/plugins/{id}/secrets"))
        .bearer_auth(&owner)
        .header("X-Tenant-Slug", "acme")
        .json(&serde_json::json!({"key": "WELCOME_EMAIL_TEMPLATE", "value": PLAINTEXT}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    // The hook reads the secret (sending may fail: no SMTP here; either way
    // the plaintext went through the engine).
    let ran = http
        .post(format!("{base}/api/plugins/test-event"))
        .bearer_auth(&owner)
        .header("X-Tenant-Slug", "acme")
        .json(&serde_json::json!({"event_type": "auth.user.created", "event_data": {"email": "a@example.com", "name": "A"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ran.status(), 200);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let mut logs = first;
    stdout.read_to_string(&mut logs).unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("\"level\":\"DEBUG\"") || logs.contains("\"level\":\"INFO\""),
        "{logs}"
    );
    assert!(
        logs.contains("secrets"),
        "the secret request is logged: {logs}"
    );
    assert!(!logs.contains(PLAINTEXT), "plaintext in the server log");
    let mut files = Vec::new();
    all_files(&data, &mut files);
    assert!(files.len() > 2, "store, key file, bundle at least");
    for (path, bytes) in files {
        let found = bytes
            .windows(PLAINTEXT.len())
            .any(|w| w == PLAINTEXT.as_bytes());
        assert!(!found, "plaintext found in {}", path.display());
    }
}
