//! A minimal SMTP relay on 127.0.0.1 for benchmarks and the mailer's
//! latency test: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; it accepts every
//! message and counts them. Each reply is one write, as a production relay
//! sends it (aiosmtpd writes a multi-line EHLO reply line by line, which
//! costs its own delayed-ACK stall per connection and would hide the
//! client's).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A relay that accepts every message and counts them.
pub async fn relay() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(session(socket, counted.clone()));
        }
    });
    (port, count)
}

async fn session(socket: tokio::net::TcpStream, count: Arc<AtomicU64>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 bench relay\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-bench\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                if write.write_all(b"354 go\r\n").await.is_err() {
                    return;
                }
                while let Ok(Some(body)) = lines.next_line().await {
                    if body == "." {
                        break;
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 unknown\r\n",
        };
        if write.write_all(answer).await.is_err() {
            return;
        }
    }
}
