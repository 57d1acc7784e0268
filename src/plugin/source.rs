//! Reading a plugin's source directory into a bundle, refusing what an
//! upload would refuse, and printing located problems.
//!
//! Every toolkit command starts here, so `validate`, `pack`, `test` and
//! `push` all see exactly the same files: the ones `pack` puts in the ZIP.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use extensor_js::Problem;
use extensor_js::bundle::{BUNDLE_BYTES_MAX, BUNDLE_FILES_MAX, MANIFEST_FILE};

use super::locate::locate_json_path;

/// Directories deeper than this are not a plugin layout but a mistake (or a
/// loop through a bind mount); the walk stops there with a problem.
pub const DIR_DEPTH_MAX: usize = 16;

/// A plugin directory read into memory.
pub struct PluginSource {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl PluginSource {
    pub fn text(&self, path: &str) -> Option<&str> {
        self.files
            .get(path)
            .and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// Whether a path inside the plugin directory is left out of the bundle:
/// dotfiles (`.env` holds local secrets and must never be uploaded),
/// `node_modules/`, the top-level `tests/` directory, and top-level `*.zip`
/// files (a previous `pack` run in the directory itself).
pub fn excluded(rel: &str, is_dir: bool) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if name.starts_with('.') || name == "node_modules" {
        return true;
    }
    let top_level = !rel.contains('/');
    top_level
        && if is_dir {
            rel == "tests"
        } else {
            rel.ends_with(".zip")
        }
}

/// Reads `root` the way an upload reads a ZIP: regular files only, every
/// size and count bounded. Every problem is returned, each naming the path.
pub fn read_plugin_dir(root: &Path) -> Result<PluginSource, Vec<Problem>> {
    let shown = root.display().to_string();
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(vec![Problem::new(shown, "is not a directory")]),
        Err(e) => return Err(vec![Problem::new(shown, format!("cannot be read: {e}"))]),
    }
    let mut walk = Walk {
        root: root.to_path_buf(),
        files: BTreeMap::new(),
        total_bytes: 0,
        problems: Vec::new(),
    };
    walk.dir(root, "", 0);
    if !walk.files.contains_key(MANIFEST_FILE) && walk.problems.is_empty() {
        walk.problems.push(Problem::new(
            format!("{shown}/{MANIFEST_FILE}"),
            "is missing: a plugin directory has manifest.json at its root (`extensor plugin new NAME` creates one)",
        ));
    }
    if walk.problems.is_empty() {
        Ok(PluginSource { files: walk.files })
    } else {
        Err(walk.problems)
    }
}

struct Walk {
    root: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
    total_bytes: u64,
    problems: Vec<Problem>,
}

impl Walk {
    fn problem(&mut self, rel: &str, message: impl Into<String>) {
        let at = if rel.is_empty() {
            self.root.display().to_string()
        } else {
            format!("{}/{rel}", self.root.display())
        };
        self.problems.push(Problem::new(at, message));
    }

    fn dir(&mut self, dir: &Path, rel: &str, depth: usize) {
        if depth > DIR_DEPTH_MAX {
            self.problem(
                rel,
                format!("is nested deeper than {DIR_DEPTH_MAX} directories"),
            );
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.problem(rel, format!("cannot be listed: {e}")),
        };
        let mut names = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => names.push(e),
                Err(e) => return self.problem(rel, format!("cannot be listed: {e}")),
            }
        }
        // Sorted, so problems and the ZIP come out in the same order each time.
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            self.entry(&entry, rel, depth);
            if self.files.len() > BUNDLE_FILES_MAX {
                return;
            }
        }
    }

    fn entry(&mut self, entry: &std::fs::DirEntry, parent: &str, depth: usize) {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            let lossy = entry.file_name().to_string_lossy().into_owned();
            return self.problem(&join(parent, &lossy), "has a name that is not UTF-8");
        };
        let rel = join(parent, &name);
        if name.contains(['\\', ':']) || name.chars().any(char::is_control) {
            return self.problem(&rel, "has a name with \\, : or a control character, which a ZIP path cannot carry portably");
        }
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) => return self.problem(&rel, format!("cannot be read: {e}")),
        };
        if excluded(&rel, kind.is_dir()) {
            return;
        }
        if kind.is_symlink() {
            return self.problem(
                &rel,
                "is a symbolic link; uploads refuse links, so copy the file into the plugin instead",
            );
        }
        if kind.is_dir() {
            return self.dir(&entry.path(), &rel, depth + 1);
        }
        if !kind.is_file() {
            return self.problem(&rel, "is not a regular file (a socket, pipe or device)");
        }
        self.file(&entry.path(), rel);
    }

    fn file(&mut self, path: &Path, rel: String) {
        if self.files.len() == BUNDLE_FILES_MAX {
            self.files.insert(rel.clone(), Vec::new());
            return self.problem("", format!("holds more than {BUNDLE_FILES_MAX} files"));
        }
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) => return self.problem(&rel, format!("cannot be read: {e}")),
        };
        // Checked before reading, so a huge file is never loaded into memory.
        let limit = BUNDLE_BYTES_MAX as u64;
        if len > limit {
            return self.problem(
                &rel,
                format!("is {len} bytes; a whole bundle holds at most {limit} bytes"),
            );
        }
        if self.total_bytes + len > limit {
            // Reported once, at the file that crosses the line.
            if self.total_bytes <= limit {
                self.problem(
                    &rel,
                    format!("takes the bundle past its limit of {limit} bytes"),
                );
            }
            self.total_bytes += len;
            return;
        }
        match std::fs::read(path) {
            Ok(bytes) => {
                self.total_bytes += bytes.len() as u64;
                self.files.insert(rel, bytes);
            }
            Err(e) => self.problem(&rel, format!("cannot be read: {e}")),
        }
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// Renders problems as `file:line:column: message` lines, mapping manifest
/// JSON paths to their line in manifest.json. `source` gives file contents
/// when the directory could be read.
pub fn render_problems(root: &Path, source: Option<&PluginSource>, problems: &[Problem]) -> String {
    let manifest_text = source.and_then(|s| s.text(MANIFEST_FILE));
    let mut out = String::new();
    for p in problems {
        let line = render_one(root, manifest_text, p);
        let _ = writeln!(out, "{line}");
    }
    out
}

fn render_one(root: &Path, manifest_text: Option<&str>, p: &Problem) -> String {
    let dir = root.display();
    if p.path == "$" || p.path.starts_with("$.") || p.path.starts_with("$[") {
        let Some(text) = manifest_text else {
            return format!("{dir}/{MANIFEST_FILE}: {}", p.message);
        };
        // serde_json's syntax errors carry their own position.
        let (line, col) =
            json_error_position(&p.message).unwrap_or_else(|| locate_json_path(text, &p.path));
        return if p.path == "$" {
            format!("{dir}/{MANIFEST_FILE}:{line}:{col}: {}", p.message)
        } else {
            format!(
                "{dir}/{MANIFEST_FILE}:{line}:{col}: {}: {}",
                p.path, p.message
            )
        };
    }
    if p.path == extensor_js::unzip::ARCHIVE_PATH {
        return format!("{dir} (packed as a ZIP): {}", p.message);
    }
    if p.path.starts_with(&dir.to_string()) {
        // Already a filesystem path (from reading the directory).
        return format!("{}: {}", p.path, p.message);
    }
    format!("{dir}/{}: {}", p.path, p.message)
}

/// `line 3 column 14` in a serde_json error message.
fn json_error_position(message: &str) -> Option<(usize, usize)> {
    let at = message.rfind(" at line ")?;
    let rest = &message[at + " at line ".len()..];
    let mut parts = rest.split(" column ");
    let line = parts.next()?.trim().parse().ok()?;
    let col = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((line, col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions() {
        assert!(excluded(".env", false));
        assert!(excluded("lib/.DS_Store", false));
        assert!(excluded("tests", true));
        assert!(excluded("lib/node_modules", true));
        assert!(!excluded("lib/tests", true));
        assert!(!excluded("tests", false));
        assert!(!excluded("main.js", false));
        assert!(excluded("x-1.0.0.zip", false));
        assert!(!excluded("data/x.zip", false));
    }

    #[test]
    fn serde_positions_are_read_back() {
        let m = "not valid JSON: expected `,` or `}` at line 3 column 14";
        assert_eq!(json_error_position(m), Some((3, 14)));
        assert_eq!(json_error_position("must be a JSON object"), None);
    }
}
