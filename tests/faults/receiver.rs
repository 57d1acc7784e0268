//! A webhook receiver on loopback: a small HTTP/1.1 server that records the
//! `webhook-id` and the event id of every request, and that the harness
//! switches between accepting, refusing (500), hanging past the sender's
//! timeout, and a closed port (connections refused).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A request head larger than this is not a webhook delivery of ours.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Bodies are events of a few hundred bytes; this bounds a broken sender.
const BODY_BYTES_MAX: usize = 1024 * 1024;
/// How often a hanging connection looks whether its mode changed.
const HANG_POLL_MS: u64 = 100;
/// Rebinding the old port after a closed-port outage may race a socket in
/// TIME_WAIT; it is retried this often, this far apart.
const REBIND_TRIES_MAX: u32 = 100;
const REBIND_PAUSE_MS: u64 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200 to every request.
    Accept,
    /// 500 to every request (a retryable refusal).
    Refuse500,
    /// Reads the request and never answers (the sender times out).
    Hang,
    /// Nothing listens on the port: connections are refused.
    Closed,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub webhook_id: String,
    /// `id` of the JSON body (the event id when no transform is declared).
    pub event_id: String,
    /// The status answered; 0 when it hung up without answering.
    pub answered: u16,
}

#[derive(Default)]
struct Shared {
    mode: Option<Mode>,
    seen: Vec<Seen>,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    accept: Option<JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
        }
    }
}

impl Receiver {
    /// Listens on a free loopback port, accepting.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let shared = Arc::new(Mutex::new(Shared {
            mode: Some(Mode::Accept),
            seen: Vec::new(),
        }));
        let accept = Some(tokio::spawn(accept_loop(listener, shared.clone())));
        Receiver {
            port,
            shared,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn mode(&self) -> Mode {
        lock(&self.shared).mode.unwrap_or(Mode::Closed)
    }

    /// Switches the behaviour; `Closed` stops listening, any other mode
    /// listens again on the same port.
    pub async fn set_mode(&mut self, mode: Mode) {
        lock(&self.shared).mode = Some(mode);
        match (mode, self.accept.is_some()) {
            (Mode::Closed, true) => {
                // Dropping the accept task drops the listener and every
                // connection it serves.
                if let Some(task) = self.accept.take() {
                    task.abort();
                    let _ = task.await;
                }
            }
            (Mode::Closed, false) | (_, true) => {}
            (_, false) => {
                let listener = rebind(self.port).await;
                self.accept = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
            }
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared).seen.clone()
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

async fn rebind(port: u16) -> TcpListener {
    for _ in 0..REBIND_TRIES_MAX {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(REBIND_PAUSE_MS)).await;
    }
    panic!("the receiver could not listen on its port {port} again");
}

/// Accepts connections and serves each in a task of its own set, so that
/// aborting this task ends them all.
async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((sock, _)) = accepted else { continue };
                conns.spawn(serve(sock, shared.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve(mut sock: TcpStream, shared: Arc<Mutex<Shared>>) {
    while let Some((head, body)) = read_request(&mut sock).await {
        let webhook_id = header(&head, "webhook-id").unwrap_or_default();
        let event_id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let mode = lock(&shared).mode.unwrap_or(Mode::Closed);
        let answered = match mode {
            Mode::Accept => 200,
            Mode::Refuse500 => 500,
            Mode::Hang | Mode::Closed => 0,
        };
        lock(&shared).seen.push(Seen {
            webhook_id,
            event_id,
            answered,
        });
        if answered == 0 {
            while lock(&shared).mode == Some(Mode::Hang) {
                tokio::time::sleep(Duration::from_millis(HANG_POLL_MS)).await;
            }
            return;
        }
        let reason = if answered == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        let reply = format!("HTTP/1.1 {answered} {reason}\r\ncontent-length: 0\r\n\r\n");
        if sock.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One request: its head (text) and body; `None` at end of stream or on a
/// malformed request.
async fn read_request(sock: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > HEAD_BYTES_MAX {
            return None;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > BODY_BYTES_MAX {
        return None;
    }
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some((head, body))
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}
