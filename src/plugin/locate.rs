//! Maps the validator's JSON paths (`$.jobs[1].schedule`) to a line and
//! column in the manifest's text, so problems read like compiler errors.
//!
//! A small scanner walks the JSON once and records where every path starts:
//! the key for an object member (that is what an author looks for, and it is
//! where an unknown field is), the value for an array item. A path that does
//! not exist (a required field that is missing) falls back to its nearest
//! existing parent.

use std::collections::HashMap;

/// Nesting deeper than this is not a manifest; the scanner stops descending.
const DEPTH_MAX: usize = 64;

/// 1-based (line, column) of `path` in `text`, or of its closest ancestor.
pub fn locate_json_path(text: &str, path: &str) -> (usize, usize) {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
        found: HashMap::new(),
    };
    scanner.skip_ws();
    let start = scanner.pos;
    scanner.found.insert("$".to_owned(), start);
    scanner.value("$", 0);
    let mut p = path.to_owned();
    loop {
        if let Some(&offset) = scanner.found.get(&p) {
            return line_col(text, offset);
        }
        match parent(&p) {
            Some(up) => p = up,
            None => return line_col(text, start),
        }
    }
}

/// `$.a.b[2]` → `$.a.b`; `$.a` → `$`; `$` → none.
fn parent(path: &str) -> Option<String> {
    if path == "$" {
        return None;
    }
    let cut = path.rfind(['.', '['])?;
    Some(path[..cut].to_owned()).filter(|p| !p.is_empty())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    found: HashMap<String, usize>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Scans one value at `path`. Malformed input just ends the scan early:
    /// the paths found so far are still useful.
    fn value(&mut self, path: &str, depth: usize) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'{' if depth < DEPTH_MAX => self.object(path, depth),
            b'[' if depth < DEPTH_MAX => self.array(path, depth),
            b'"' => self.string().map(|_| ()),
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }

    fn object(&mut self, path: &str, depth: usize) -> Option<()> {
        self.pos += 1;
        loop {
            self.skip_ws();
            match self.peek()? {
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                b',' => self.pos += 1,
                b'"' => {
                    let key_at = self.pos;
                    let key = self.string()?;
                    let member = format!("{path}.{key}");
                    self.found.entry(member.clone()).or_insert(key_at);
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.pos += 1;
                    self.value(&member, depth + 1)?;
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, path: &str, depth: usize) -> Option<()> {
        self.pos += 1;
        let mut index = 0;
        loop {
            self.skip_ws();
            match self.peek()? {
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                b',' => {
                    self.pos += 1;
                    index += 1;
                }
                _ => {
                    let item = format!("{path}[{index}]");
                    self.found.entry(item.clone()).or_insert(self.pos);
                    self.value(&item, depth + 1)?;
                }
            }
        }
    }

    /// A JSON string starting at `pos`; returns it decoded enough to match
    /// the validator's keys (escapes other than `\"` and `\\` are rare in
    /// manifest keys and are kept raw).
    fn string(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let next = self.peek()?;
                    self.pos += 1;
                    match next {
                        b'"' | b'\\' | b'/' => out.push(next),
                        other => out.extend_from_slice(&[b'\\', other]),
                    }
                }
                other => out.push(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{
  "slug": "x",
  "jobs": [
    {"name": "a", "schedule": "61 * * * *"},
    {
      "name": "b",
      "timezone": "Mars/Olympus"
    }
  ],
  "permisions": ["a"]
}"#;

    #[test]
    fn members_items_and_fallbacks() {
        assert_eq!(locate_json_path(TEXT, "$.slug"), (2, 3));
        assert_eq!(locate_json_path(TEXT, "$.jobs[0].schedule"), (4, 19));
        assert_eq!(locate_json_path(TEXT, "$.jobs[1]"), (5, 5));
        assert_eq!(locate_json_path(TEXT, "$.jobs[1].timezone"), (7, 7));
        assert_eq!(locate_json_path(TEXT, "$.permisions"), (10, 3));
        // Missing fields point at their parent.
        assert_eq!(locate_json_path(TEXT, "$.jobs[1].schedule"), (5, 5));
        assert_eq!(locate_json_path(TEXT, "$.name"), (1, 1));
    }

    #[test]
    fn malformed_text_does_not_panic() {
        for t in [
            "",
            "{",
            "{\"a\": [1, {\"b\"",
            "[[[[",
            "\"unterminated",
            "{\"k\\",
        ] {
            let _ = locate_json_path(t, "$.a[1].b");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(locate_json_path(&deep, "$[0][0]"), (1, 3));
    }
}
