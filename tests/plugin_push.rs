//! `extensor plugin push`: what it refuses before any request, and how it
//! reports a server it cannot reach.

use std::path::Path;
use std::process::{Command, Output};

fn extensor(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(args)
        .env("EXTENSOR_DATA_DIR", data)
        .env_remove("EXTENSOR_TOKEN")
        .env_remove("EXTENSOR_SERVER")
        .env_remove("EXTENSOR_TENANT")
        .output()
        .expect("run extensor")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn push_refuses_locally_and_reports_unreachable_servers() {
    let dir = tempfile::tempdir().unwrap();
    // A broken plugin never leaves the machine: validation fails first.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("manifest.json"), "{}").unwrap();
    let o = extensor(
        dir.path(),
        &[
            "plugin",
            "push",
            broken.to_str().unwrap(),
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--tenant",
            "acme",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("$.slug: is required"), "{}", err(&o));
    assert!(
        !err(&o).contains("127.0.0.1:9"),
        "no request was made: {}",
        err(&o)
    );

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/welcome-email");
    let example = example.to_str().unwrap();
    // Nothing listens on the discard port: a connection error naming the URL.
    let o = extensor(
        dir.path(),
        &[
            "plugin",
            "push",
            example,
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--tenant",
            "acme",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("POST http://127.0.0.1:9/api/plugins/upload"),
        "{}",
        err(&o)
    );
    let o = extensor(
        dir.path(),
        &[
            "plugin", "push", example, "--server", "ftp://x", "--token", "t", "--tenant", "acme",
        ],
    );
    assert!(
        err(&o).contains("--server `ftp://x` is not an http:// or https:// base URL"),
        "{}",
        err(&o)
    );
}
