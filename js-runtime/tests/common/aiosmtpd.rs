//! A real SMTP server for tests: Python's aiosmtpd on a free loopback port,
//! writing every message it accepts to a maildir. Shared by the sandbox,
//! engine and example-plugin suites, each including this file with
//! `#[path]` (with `python.rs` as the crate's `python` module); it uses only
//! std, tokio and tempfile so any crate's tests can.

#![allow(dead_code)]

use std::time::Duration;

/// How long `start` waits for the server to listen, and `delivered` for
/// messages to arrive (polling every `POLL_MS`).
const WAIT_MS: u64 = 10_000;
const POLL_MS: u64 = 25;

/// The server: binds the loopback port given as its second argument (an
/// ephemeral one without it), prints it once listening, and stores every
/// message in the maildir named by its first argument. Like a real relay it
/// refuses some recipients: `reject@…` for good (550), `busy@…` for now
/// (451), so tests can drive permanent and transient failures.
const SERVER_PY: &str = r#"
import asyncio, socket, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

class Relay(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

async def main():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
    handler = Relay(sys.argv[1])
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(handler), sock=sock)
    print(sock.getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

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
    /// Starts aiosmtpd (from the test Python, `python.rs`) on a port it binds itself
    /// and reports on its first line of output. Picking a free port here and
    /// handing it over would race: under parallel tests another listener can
    /// take the port in between, and the test then talks to the wrong server.
    pub async fn start() -> Smtp {
        let maildir = tempfile::tempdir().unwrap();
        let (child, port) = launch(&maildir, None).await;
        let server = Smtp {
            child,
            port,
            maildir,
        };
        assert!(server.port != 0, "aiosmtpd did not report a listening port");
        server
    }

    /// Takes the relay down (connections to its port are refused) until
    /// [`resume`](Self::resume); the delivered messages stay.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Brings the relay back on the same port and maildir.
    pub async fn resume(&mut self) {
        let (child, port) = launch(&self.maildir, Some(self.port)).await;
        self.child = child;
        assert_eq!(port, self.port, "aiosmtpd did not listen on its old port");
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

/// Starts the server process; its port is 0 when it did not report one
/// (the child is returned either way, so the caller kills and reaps it).
async fn launch(maildir: &tempfile::TempDir, port: Option<u16>) -> (std::process::Child, u16) {
    let mut command = std::process::Command::new(crate::python::python(&["aiosmtpd"]));
    command
        .args(["-c", SERVER_PY])
        .arg(maildir.path().join("mail"));
    if let Some(p) = port {
        command.arg(p.to_string());
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the test Python with aiosmtpd");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(
        Duration::from_millis(WAIT_MS),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
                .map(|_| line)
        }),
    )
    .await;
    let port = match line {
        Ok(Ok(Ok(l))) => l.trim().parse().unwrap_or(0),
        _ => 0,
    };
    (child, port)
}
