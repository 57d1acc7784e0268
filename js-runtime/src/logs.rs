//! Captured `console.*` / `ctx.log` output. Plugin output is data, never
//! printed raw: it is bounded per invocation and kept per installation.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Lines kept per invocation; a chatty loop must not fill host memory.
pub const LOG_ENTRIES_PER_INVOCATION_MAX: usize = 200;
/// Bytes kept per invocation across all lines.
pub const LOG_BYTES_PER_INVOCATION_MAX: usize = 64 * 1024;
/// One line longer than this is cut.
pub const LOG_LINE_BYTES_MAX: usize = 4 * 1024;
/// Lines kept per installation as "recent logs".
pub const RECENT_LOG_ENTRIES_MAX: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> LogLevel {
        match s {
            "debug" | "trace" => LogLevel::Debug,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub level: LogLevel,
    pub time: DateTime<Utc>,
    pub message: String,
}

/// One invocation's log lines, bounded by count and bytes. Lines past the
/// bound are counted so the cut is visible.
#[derive(Debug, Default)]
pub struct LogCapture {
    entries: Vec<LogEntry>,
    bytes: usize,
    dropped: usize,
}

impl LogCapture {
    pub fn push(&mut self, level: LogLevel, message: &str) {
        let message = cut(message, LOG_LINE_BYTES_MAX);
        if self.entries.len() >= LOG_ENTRIES_PER_INVOCATION_MAX
            || self.bytes + message.len() > LOG_BYTES_PER_INVOCATION_MAX
        {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.entries.push(LogEntry {
            level,
            time: Utc::now(),
            message,
        });
    }

    /// The captured lines, plus a marker line when some were dropped.
    pub fn finish(mut self) -> Vec<LogEntry> {
        if self.dropped > 0 {
            self.entries.push(LogEntry {
                level: LogLevel::Warn,
                time: Utc::now(),
                message: format!("[{} log lines dropped: per-invocation limit]", self.dropped),
            });
        }
        self.entries
    }
}

/// An installation's recent log lines, oldest first.
#[derive(Debug, Default)]
pub struct RecentLogs {
    ring: VecDeque<LogEntry>,
}

impl RecentLogs {
    pub fn extend(&mut self, entries: &[LogEntry]) {
        for e in entries {
            if self.ring.len() == RECENT_LOG_ENTRIES_MAX {
                self.ring.pop_front();
            }
            self.ring.push_back(e.clone());
        }
    }

    pub fn snapshot(&self) -> Vec<LogEntry> {
        self.ring.iter().cloned().collect()
    }
}

/// Cuts at a char boundary at or below `bytes_max`.
pub(crate) fn cut(s: &str, bytes_max: usize) -> String {
    if s.len() <= bytes_max {
        return s.to_owned();
    }
    let mut end = bytes_max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_bounded_and_marks_drops() {
        let mut c = LogCapture::default();
        for i in 0..LOG_ENTRIES_PER_INVOCATION_MAX + 5 {
            c.push(LogLevel::Info, &format!("line {i}"));
        }
        let logs = c.finish();
        assert_eq!(logs.len(), LOG_ENTRIES_PER_INVOCATION_MAX + 1);
        assert!(logs.last().unwrap().message.contains("5 log lines dropped"));
    }

    #[test]
    fn long_lines_are_cut_on_char_boundaries() {
        let s = "é".repeat(LOG_LINE_BYTES_MAX);
        let out = cut(&s, LOG_LINE_BYTES_MAX);
        assert!(out.len() <= LOG_LINE_BYTES_MAX + 3);
    }

    #[test]
    fn ring_keeps_the_newest() {
        let mut r = RecentLogs::default();
        let mut c = LogCapture::default();
        c.push(LogLevel::Warn, "x");
        let one = c.finish();
        for _ in 0..RECENT_LOG_ENTRIES_MAX + 3 {
            r.extend(&one);
        }
        assert_eq!(r.snapshot().len(), RECENT_LOG_ENTRIES_MAX);
    }
}
