//! A real SMTP server for tests: Python's aiosmtpd on a free loopback port,
//! writing every message it accepts to a maildir. Shared by the sandbox,
//! engine and example-plugin suites, each including this file with
//! `#[path]`; it uses only std, tokio and tempfile so any crate's tests can.

#![allow(dead_code)]

use std::time::Duration;

/// How long `start` waits for the server to listen, and `delivered` for
/// messages to arrive (polling every `POLL_MS`).
const WAIT_MS: u64 = 10_000;
const POLL_MS: u64 = 25;

/// The running server; killed and reaped on drop.
pub struct Smtp {
    child: std::process::Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// Starts aiosmtpd (`pip install aiosmtpd`) and waits until it listens.
    pub async fn start() -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        // Owned before waiting, so a failed start still kills and reaps it.
        let server = Smtp {
            child,
            port,
            maildir,
        };
        for _ in 0..WAIT_MS / POLL_MS {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// The raw messages delivered so far, sorted.
    pub fn messages(&self) -> Vec<String> {
        let dir = self.maildir.path().join("mail/new");
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The messages delivered, once there are at least `count`.
    pub async fn delivered(&self, count: usize) -> Vec<String> {
        for _ in 0..WAIT_MS / POLL_MS {
            let out = self.messages();
            if out.len() >= count {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
        panic!(
            "expected {count} delivered messages in {}",
            self.maildir.path().display()
        );
    }
}
