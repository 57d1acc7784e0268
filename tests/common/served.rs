//! A real `extensor serve` process for end-to-end CLI tests: started on a
//! free loopback port over a temporary store, with a tenant made by
//! `extensor tenant create`. Included with `#[path]` by the suites that
//! drive the CLI or a client against a live server (`plugin_push`,
//! `webhooks_apply`, `contract`).

#![allow(dead_code)] // each suite uses a part of it

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The running server; killed and reaped on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary over `data`, ignoring any CLI defaults in the caller's
/// environment.
pub fn extensor(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(args)
        .env("EXTENSOR_DATA_DIR", data)
        .env_remove("EXTENSOR_TOKEN")
        .env_remove("EXTENSOR_SERVER")
        .env_remove("EXTENSOR_TENANT")
        .output()
        .expect("run extensor")
}

/// stdout and stderr together, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Starts `extensor serve` on port 0 and reads the address it prints first.
pub fn serve(data: &Path, admin_token: &str) -> Server {
    serve_with(data, admin_token, &[])
}

/// As [`serve`], with extra environment (`EXTENSOR_…` settings).
pub fn serve_with(data: &Path, admin_token: &str, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_extensor"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("EXTENSOR_DATA_DIR", data)
        .env("EXTENSOR_ADMIN_TOKEN", admin_token)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    Server {
        child,
        url: format!("http://{addr}"),
    }
}

/// Creates tenant `acme` and returns its owner token.
pub fn tenant(data: &Path) -> String {
    let o = extensor(
        data,
        &["tenant", "create", "--slug", "acme", "--name", "Acme"],
    );
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.split("owner token (shown once, store it now): ").nth(1))
        .unwrap_or_else(|| panic!("no token in {}", text(&o)))
        .trim()
        .to_owned()
}

/// A plugin ZIP of `(path, text)` entries, as `extensor plugin push` uploads.
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}
