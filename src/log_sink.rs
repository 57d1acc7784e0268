//! Where the server's log lines go: a bounded in-memory buffer that one
//! writer thread drains to stderr in batches. Before, every line was its
//! own `write(2)` on the thread that logged it, one syscall per request on
//! the request path (docs/BENCHMARKS.md, plugin routes). Nothing is
//! dropped: a logger that finds the buffer full waits for the writer
//! (backpressure), and [`Flush`] writes what is left when the server stops.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes of log lines held before a logger waits for the writer.
const LOG_BUFFER_BYTES_MAX: usize = 1024 * 1024;
/// The writer wakes on its own this often; a logger wakes it sooner only
/// when the buffer is half full, so a busy server pays no wake-up per line.
const WRITER_LOOK_MS: u64 = 5;

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    /// Loggers waiting for room.
    waiting: usize,
    /// The server stopped: write what is left and end.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// The writer: more to write, or closed.
    more: Condvar,
    /// Loggers: room again.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `MakeWriter` for the fmt subscriber. Cheap to clone.
#[derive(Clone)]
pub struct LogSink(Arc<Shared>);

/// Writes what the buffer holds and ends the writer thread when dropped;
/// keep it until the server has stopped.
pub struct Flush {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// The sink and its flush guard; starts the writer thread.
pub fn start() -> std::io::Result<(LogSink, Flush)> {
    let shared = Arc::new(Shared::default());
    let for_writer = shared.clone();
    let writer = std::thread::Builder::new()
        .name("extensor-log".into())
        .spawn(move || write_out(&for_writer))?;
    Ok((
        LogSink(shared.clone()),
        Flush {
            shared,
            writer: Some(writer),
        },
    ))
}

fn write_out(shared: &Shared) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut buf = shared.lock();
            if buf.bytes.is_empty() && !buf.closed {
                buf = shared
                    .more
                    .wait_timeout(buf, Duration::from_millis(WRITER_LOOK_MS))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut batch, &mut buf.bytes);
            if buf.waiting > 0 {
                shared.room.notify_all();
            }
            buf.closed && batch.is_empty()
        };
        if closed {
            return;
        }
        if !batch.is_empty() {
            // Nowhere to report a failing stderr; the lines are gone either way.
            let _ = std::io::stderr().lock().write_all(&batch);
            batch.clear();
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.more.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// One log line's writer: appends to the buffer.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.0.lock();
        while buf.bytes.len() >= LOG_BUFFER_BYTES_MAX && !buf.closed {
            buf.waiting += 1;
            buf = self.0.room.wait(buf).unwrap_or_else(|e| e.into_inner());
            buf.waiting -= 1;
        }
        if buf.closed {
            // After the flush: straight to stderr, as before the sink.
            drop(buf);
            return std::io::stderr().lock().write(bytes);
        }
        let was_below_half = buf.bytes.len() < LOG_BUFFER_BYTES_MAX / 2;
        buf.bytes.extend_from_slice(bytes);
        if was_below_half && buf.bytes.len() >= LOG_BUFFER_BYTES_MAX / 2 {
            self.0.more.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line written reaches the buffer's reader, in order, even when
    /// loggers outpace the writer and have to wait for room.
    #[test]
    fn nothing_is_dropped_under_backpressure() {
        let shared = Arc::new(Shared::default());
        let line = vec![b'x'; 4096];
        let lines = 3 * LOG_BUFFER_BYTES_MAX / line.len();
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut seen = 0usize;
                while seen < lines * 4096 {
                    let mut buf = shared.lock();
                    seen += std::mem::take(&mut buf.bytes).len();
                    if buf.waiting > 0 {
                        shared.room.notify_all();
                    }
                    drop(buf);
                    std::thread::sleep(Duration::from_millis(1));
                }
                seen
            })
        };
        let mut w = LineWriter(&shared);
        for _ in 0..lines {
            w.write_all(&line).unwrap();
        }
        assert_eq!(reader.join().unwrap(), lines * 4096);
    }
}
