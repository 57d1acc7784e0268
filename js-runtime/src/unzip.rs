//! Reading an uploaded plugin ZIP into a [`Bundle`], defensively.
//!
//! An upload is hostile until proven otherwise: the archive's size, its
//! entry count, the total it inflates to and each entry's compression ratio
//! are capped (zip bombs), checking both what entries *declare* and what
//! they *actually* inflate to, since a crafted header can lie. Entry names
//! that are absolute, contain `..`, backslashes or control characters,
//! symlinks, duplicates and encrypted entries are refused. Every problem is
//! reported at once, each named by its entry path.

use std::collections::BTreeSet;
use std::io::{Cursor, Read};

use crate::bundle::{BUNDLE_BYTES_MAX, BUNDLE_FILES_MAX, Bundle, MANIFEST_FILE};
use crate::error::Problem;

/// Largest upload accepted: a plugin is code, not assets.
pub const UPLOAD_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Total inflated size: the same budget a bundle may hold in memory.
pub const UNCOMPRESSED_BYTES_MAX: usize = BUNDLE_BYTES_MAX;
/// Entries (files and directories) in one archive.
pub const ENTRIES_MAX: usize = BUNDLE_FILES_MAX + 200;
/// Source code deflates 3-10x; 100x is a bomb or padding.
pub const COMPRESSION_RATIO_MAX: u64 = 100;
/// Entries smaller than this skip the ratio check: a tiny file of repeated
/// characters legitimately compresses very well and can do no harm.
pub const RATIO_CHECK_BYTES_MIN: u64 = 4 * 1024;
/// Entry names longer than this are refused.
pub const ENTRY_NAME_BYTES_MAX: usize = 512;

/// Where a problem that is about the archive as a whole is reported.
pub const ARCHIVE_PATH: &str = "(zip)";

/// The caps applied to an upload. [`ZipLimits::default`] uses the named
/// constants; [`ZipLimits::from_env`] lets an operator change them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipLimits {
    pub upload_bytes_max: usize,
    pub uncompressed_bytes_max: usize,
    pub entries_max: usize,
    pub compression_ratio_max: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            upload_bytes_max: UPLOAD_BYTES_MAX,
            uncompressed_bytes_max: UNCOMPRESSED_BYTES_MAX,
            entries_max: ENTRIES_MAX,
            compression_ratio_max: COMPRESSION_RATIO_MAX,
        }
    }
}

impl ZipLimits {
    /// `EXTENSOR_UPLOAD_BYTES_MAX`, `EXTENSOR_BUNDLE_UNCOMPRESSED_BYTES_MAX`,
    /// `EXTENSOR_BUNDLE_ENTRIES_MAX`, `EXTENSOR_BUNDLE_COMPRESSION_RATIO_MAX`;
    /// unset variables keep the defaults, a malformed one is an error naming it.
    pub fn from_env() -> Result<ZipLimits, String> {
        Self::from_lookup(|n| std::env::var(n).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ZipLimits, String> {
        let mut l = ZipLimits::default();
        let num = |name: &str| -> Result<Option<u64>, String> {
            match get(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| format!("{name}=`{v}` is not a positive whole number")),
            }
        };
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if let Some(n) = num("EXTENSOR_UPLOAD_BYTES_MAX")? {
            l.upload_bytes_max = size(n);
        }
        if let Some(n) = num("EXTENSOR_BUNDLE_UNCOMPRESSED_BYTES_MAX")? {
            l.uncompressed_bytes_max = size(n);
        }
        if let Some(n) = num("EXTENSOR_BUNDLE_ENTRIES_MAX")? {
            l.entries_max = size(n);
        }
        if let Some(n) = num("EXTENSOR_BUNDLE_COMPRESSION_RATIO_MAX")? {
            l.compression_ratio_max = n;
        }
        Ok(l)
    }
}

impl Bundle {
    /// Reads an uploaded plugin ZIP. Every problem is returned, each with
    /// the entry it concerns (or `(zip)` for the archive itself).
    pub fn from_zip(bytes: &[u8], limits: &ZipLimits) -> Result<Bundle, Vec<Problem>> {
        Self::from_zip_with_root(bytes, limits, MANIFEST_FILE)
    }

    /// Reads an uploaded ZIP whose root must hold `root_file` (a plugin's
    /// `manifest.json`, a webhook's `webhook.yaml`), with the same defences.
    pub fn from_zip_with_root(
        bytes: &[u8],
        limits: &ZipLimits,
        root_file: &str,
    ) -> Result<Bundle, Vec<Problem>> {
        if bytes.len() > limits.upload_bytes_max {
            return Err(vec![Problem::new(
                ARCHIVE_PATH,
                format!(
                    "upload is {} bytes; the limit is {}",
                    bytes.len(),
                    limits.upload_bytes_max
                ),
            )]);
        }
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            vec![Problem::new(
                ARCHIVE_PATH,
                format!("not a readable ZIP archive: {e}"),
            )]
        })?;
        if archive.len() > limits.entries_max {
            return Err(vec![Problem::new(
                ARCHIVE_PATH,
                format!(
                    "{} entries; the limit is {}",
                    archive.len(),
                    limits.entries_max
                ),
            )]);
        }
        let mut reader = Reader {
            limits,
            bundle: Bundle::new(),
            problems: Vec::new(),
            seen: BTreeSet::new(),
            inflated_bytes: 0,
        };
        for index in 0..archive.len() {
            reader.entry(&mut archive, index);
        }
        reader.finish(root_file)
    }
}

struct Reader<'a> {
    limits: &'a ZipLimits,
    bundle: Bundle,
    problems: Vec<Problem>,
    seen: BTreeSet<String>,
    /// Bytes actually inflated so far, across entries.
    inflated_bytes: u64,
}

impl Reader<'_> {
    fn entry(&mut self, archive: &mut zip::ZipArchive<Cursor<&[u8]>>, index: usize) {
        let fallback_name = archive
            .name_for_index(index)
            .and_then(Result::ok)
            .map_or_else(|| format!("entry #{index}"), |n| n.into_owned());
        let mut file = match archive.by_index(index) {
            Ok(f) => f,
            Err(e) => {
                let name = fallback_name;
                self.problems
                    .push(Problem::new(name, format!("cannot be read: {e}")));
                return;
            }
        };
        let Some(name) = self.checked_name(&file) else {
            return;
        };
        if file.is_dir() {
            return;
        }
        if let Some(message) = self.size_problem(file.size(), file.compressed_size()) {
            self.problems.push(Problem::new(name, message));
            return;
        }
        // Read at most one byte past the declared size and past what is left
        // of the budget: whichever is hit first, the lie or the bomb shows.
        let budget =
            (self.limits.uncompressed_bytes_max as u64).saturating_sub(self.inflated_bytes);
        let cap = file.size().min(budget).saturating_add(1);
        let mut contents =
            Vec::with_capacity(usize::try_from(file.size().min(budget)).unwrap_or(0));
        if let Err(e) = (&mut file).take(cap).read_to_end(&mut contents) {
            self.problems
                .push(Problem::new(name, format!("cannot be inflated: {e}")));
            return;
        }
        let actual = contents.len() as u64;
        self.inflated_bytes += actual;
        if actual > file.size() {
            self.problems.push(Problem::new(
                name,
                format!(
                    "declares {} bytes but inflates to more: a forged header",
                    file.size()
                ),
            ));
        } else if actual > budget {
            self.problems.push(Problem::new(
                name,
                format!(
                    "the archive inflates past {} bytes",
                    self.limits.uncompressed_bytes_max
                ),
            ));
        } else {
            self.bundle = std::mem::take(&mut self.bundle).with_file(name, contents);
        }
    }

    /// The entry's name if it is acceptable; otherwise a problem is recorded.
    fn checked_name(&mut self, file: &zip::read::ZipFile<'_, Cursor<&[u8]>>) -> Option<String> {
        let raw = String::from_utf8_lossy(file.name_raw()).into_owned();
        let mut shown: String = raw.chars().take(ENTRY_NAME_BYTES_MAX).collect();
        if shown.is_empty() {
            // A problem is always located: a nameless entry is the archive's.
            shown = ARCHIVE_PATH.to_owned();
        }
        let problem = if file.is_symlink() {
            Some("is a symbolic link; bundles hold only regular files".to_owned())
        } else if file.encrypted() {
            Some("is encrypted; upload an unencrypted archive".to_owned())
        } else {
            name_problem(&raw)
        };
        if let Some(message) = problem {
            self.problems.push(Problem::new(shown, message));
            return None;
        }
        let name = raw.trim_end_matches('/').to_owned();
        if !self.seen.insert(name.clone()) {
            self.problems
                .push(Problem::new(shown, "appears more than once in the archive"));
            return None;
        }
        Some(name)
    }

    fn size_problem(&self, declared: u64, compressed: u64) -> Option<String> {
        let total_max = self.limits.uncompressed_bytes_max as u64;
        if declared > total_max {
            return Some(format!(
                "declares {declared} bytes uncompressed; the limit for the whole bundle is {total_max}"
            ));
        }
        let ratio_max = self.limits.compression_ratio_max;
        if declared >= RATIO_CHECK_BYTES_MIN && declared > compressed.saturating_mul(ratio_max) {
            return Some(format!(
                "compresses {declared} bytes into {compressed}: more than {ratio_max}:1 looks like a zip bomb"
            ));
        }
        None
    }

    fn finish(self, root_file: &str) -> Result<Bundle, Vec<Problem>> {
        let mut problems = self.problems;
        if problems.is_empty() && self.bundle.file(root_file).is_none() {
            problems.push(Problem::new(
                root_file,
                format!("the archive has no {root_file} at its root (zip the files, not the folder holding them)"),
            ));
        }
        if problems.is_empty() {
            Ok(self.bundle)
        } else {
            Err(problems)
        }
    }
}

/// Why an entry name is refused, if it is.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("holds an entry with an empty name".into());
    }
    if name.len() > ENTRY_NAME_BYTES_MAX {
        return Some(format!("name is longer than {ENTRY_NAME_BYTES_MAX} bytes"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Some("name contains control characters".into());
    }
    if name.contains('\\') {
        return Some("name contains a backslash; use `/` between folders".into());
    }
    let bytes = name.as_bytes();
    if name.starts_with('/') || (bytes.len() >= 2 && bytes[1] == b':') {
        return Some("is an absolute path; entries must be relative to the bundle root".into());
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    for seg in body.split('/') {
        match seg {
            ".." => return Some("contains a `..` segment".into()),
            "." | "" => return Some("contains an empty or `.` segment".into()),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn manifest() -> &'static [u8] {
        br#"{"slug":"demo","name":"Demo","version":"1.0.0","entry":"main.js"}"#
    }

    /// Builds an archive from (name, bytes, method) entries.
    fn build(entries: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes, method) in entries {
            let opts = SimpleFileOptions::default().compression_method(*method);
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    const STORED: zip::CompressionMethod = zip::CompressionMethod::Stored;
    const DEFLATED: zip::CompressionMethod = zip::CompressionMethod::Deflated;

    fn problems(bytes: &[u8], limits: &ZipLimits) -> Vec<Problem> {
        Bundle::from_zip(bytes, limits).expect_err("must be refused")
    }

    fn has(problems: &[Problem], path: &str, fragment: &str) -> bool {
        problems
            .iter()
            .any(|p| p.path == path && p.message.contains(fragment))
    }

    #[test]
    fn a_good_archive_reads() {
        let zip = build(&[
            ("manifest.json", manifest(), DEFLATED),
            ("lib/", b"", STORED),
            ("main.js", b"export default 1;", STORED),
            ("lib/util.js", b"export const x = 1;", DEFLATED),
        ]);
        let bundle = Bundle::from_zip(&zip, &ZipLimits::default()).unwrap();
        let paths: Vec<_> = bundle.paths().collect();
        assert_eq!(paths, ["lib/util.js", "main.js", "manifest.json"]);
        assert_eq!(bundle.file("lib/util.js").unwrap(), b"export const x = 1;");
    }

    #[test]
    fn hostile_names_are_each_named() {
        let zip = build(&[
            ("manifest.json", manifest(), STORED),
            ("/etc/passwd", b"x", STORED),
            ("../escape.js", b"x", STORED),
            ("a/../../b.js", b"x", STORED),
            ("C:/win.js", b"x", STORED),
            ("back\\slash.js", b"x", STORED),
            ("a//b.js", b"x", STORED),
        ]);
        let p = problems(&zip, &ZipLimits::default());
        assert!(has(&p, "/etc/passwd", "absolute"), "{p:?}");
        assert!(has(&p, "../escape.js", "`..`"), "{p:?}");
        assert!(has(&p, "a/../../b.js", "`..`"), "{p:?}");
        assert!(has(&p, "C:/win.js", "absolute"), "{p:?}");
        assert!(has(&p, "back\\slash.js", "backslash"), "{p:?}");
        assert!(has(&p, "a//b.js", "empty"), "{p:?}");
        assert_eq!(p.len(), 6, "{p:?}");
    }

    #[test]
    fn symlinks_and_duplicates_refused() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default();
        w.start_file("manifest.json", opts).unwrap();
        w.write_all(manifest()).unwrap();
        w.add_symlink("main.js", "/etc/passwd", opts).unwrap();
        w.start_file("dup.js", opts).unwrap();
        w.write_all(b"1").unwrap();
        // The writer refuses duplicate names itself; a raw second entry is
        // what a hostile tool produces, so patch the name of a third entry.
        w.start_file("dupX.js", opts).unwrap();
        w.write_all(b"2").unwrap();
        let mut bytes = w.finish().unwrap().into_inner();
        replace_all(&mut bytes, b"dupX.js", b"dup.js/");
        let p = problems(&bytes, &ZipLimits::default());
        assert!(has(&p, "main.js", "symbolic link"), "{p:?}");
        assert!(
            p.iter().any(|x| x.message.contains("more than once")),
            "{p:?}"
        );
    }

    /// Same-length replacement in local and central headers.
    fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let mut i = 0;
        while i + from.len() <= bytes.len() {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
            }
            i += 1;
        }
    }

    #[test]
    fn zip_bombs_refused() {
        let zeros = vec![0u8; 2 * 1024 * 1024];
        let zip = build(&[
            ("manifest.json", manifest(), STORED),
            ("bomb.js", &zeros, DEFLATED),
        ]);
        let p = problems(&zip, &ZipLimits::default());
        assert!(has(&p, "bomb.js", "zip bomb"), "{p:?}");

        // Many entries that each pass the ratio check but together exceed
        // the total budget.
        let limits = ZipLimits {
            uncompressed_bytes_max: 64 * 1024,
            ..ZipLimits::default()
        };
        let chunk: Vec<u8> = (0..40 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
        let zip = build(&[
            ("manifest.json", manifest(), STORED),
            ("a.js", &chunk, STORED),
            ("b.js", &chunk, STORED),
        ]);
        let p = problems(&zip, &limits);
        assert!(has(&p, "b.js", "inflates past"), "{p:?}");
    }

    #[test]
    fn a_lying_size_header_is_caught() {
        let body = vec![b'a'; 3000];
        let mut bytes = build(&[
            ("manifest.json", manifest(), STORED),
            ("liar.js", &body, STORED),
        ]);
        // Rewrite the declared uncompressed size (local header and central
        // directory) of liar.js from 3000 to 10: its real content is longer.
        let declared = 3000u32.to_le_bytes();
        let mut patched = 0;
        let mut i = 0;
        while i + 30 <= bytes.len() {
            let sig: [u8; 4] = bytes[i..i + 4].try_into().unwrap();
            if &sig == b"PK\x03\x04" && &bytes[i + 30..i + 37] == b"liar.js" {
                assert_eq!(&bytes[i + 22..i + 26], &declared);
                bytes[i + 22..i + 26].copy_from_slice(&10u32.to_le_bytes());
                patched += 1;
            }
            if &sig == b"PK\x01\x02"
                && i + 53 <= bytes.len()
                && &bytes[i + 46..i + 53] == b"liar.js"
            {
                bytes[i + 24..i + 28].copy_from_slice(&10u32.to_le_bytes());
                patched += 1;
            }
            i += 1;
        }
        assert_eq!(patched, 2);
        let p = problems(&bytes, &ZipLimits::default());
        assert!(
            p.iter().any(|x| x.path == "liar.js"),
            "the forged entry must be named: {p:?}"
        );
    }

    #[test]
    fn archive_level_problems() {
        let limits = ZipLimits::default();
        let p = problems(b"definitely not a zip", &limits);
        assert!(has(&p, ARCHIVE_PATH, "not a readable ZIP"), "{p:?}");

        let big = vec![0u8; 64];
        let small = ZipLimits {
            upload_bytes_max: 10,
            ..ZipLimits::default()
        };
        assert!(has(
            &problems(&big, &small),
            ARCHIVE_PATH,
            "the limit is 10"
        ));

        let few = ZipLimits {
            entries_max: 2,
            ..ZipLimits::default()
        };
        let zip = build(&[
            ("manifest.json", manifest(), STORED),
            ("a.js", b"1", STORED),
            ("b.js", b"2", STORED),
        ]);
        assert!(has(&problems(&zip, &few), ARCHIVE_PATH, "3 entries"));

        let no_manifest = build(&[("plugin/manifest.json", manifest(), STORED)]);
        assert!(has(
            &problems(&no_manifest, &limits),
            MANIFEST_FILE,
            "no manifest.json"
        ));
    }

    #[test]
    fn limits_from_env() {
        let l =
            ZipLimits::from_lookup(|n| (n == "EXTENSOR_BUNDLE_ENTRIES_MAX").then(|| "7".into()))
                .unwrap();
        assert_eq!(l.entries_max, 7);
        assert_eq!(l.upload_bytes_max, UPLOAD_BYTES_MAX);
        let err =
            ZipLimits::from_lookup(|n| (n == "EXTENSOR_UPLOAD_BYTES_MAX").then(|| "lots".into()))
                .unwrap_err();
        assert!(err.contains("EXTENSOR_UPLOAD_BYTES_MAX"), "{err}");
    }
}
