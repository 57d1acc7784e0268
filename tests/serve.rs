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
    assert!(
        response.contains("\"status\":\"ok\"") && response.contains("\"store_head_position\":1"),
        "{response}"
    );
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
