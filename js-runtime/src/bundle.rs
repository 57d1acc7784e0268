//! Plugin bundles: the files, module resolution confined to the bundle, the
//! static import check, and TypeScript type stripping (oxc).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oxc::allocator::Allocator;
use oxc::codegen::{Codegen, CodegenOptions};
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

use crate::error::{JsError, Problem};

/// The manifest's file name at the bundle root.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The one module a plugin may import that is not one of its own files.
pub const SDK_MODULE: &str = "extensor:sdk";
/// A bundle bigger than this is refused: it is parsed and held per isolate.
pub const BUNDLE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// More files than this is not a plugin.
pub const BUNDLE_FILES_MAX: usize = 1_000;

/// The files of a plugin, by relative path (`main.ts`, `lib/util.js`).
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    pub fn new() -> Bundle {
        Bundle::default()
    }

    /// Adds a file. The path is kept as given; validation refuses bad ones.
    pub fn with_file(mut self, path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Bundle {
        self.files.insert(path.into(), contents.into());
        self
    }

    /// Reads a directory tree into a bundle. Symlinks are skipped: a bundle
    /// is data, and a link could point anywhere on the host.
    pub fn from_dir(root: &Path) -> Result<Bundle, JsError> {
        let mut bundle = Bundle::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_err(&dir, e))?;
                let kind = entry.file_type().map_err(|e| io_err(&dir, e))?;
                let path = entry.path();
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file() {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                    bundle.files.insert(rel, bytes);
                }
            }
        }
        Ok(bundle)
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn total_bytes(&self) -> usize {
        self.files.values().map(Vec::len).sum()
    }
}

fn io_err(path: &Path, e: std::io::Error) -> JsError {
    JsError::InvalidArgument {
        op: "bundle",
        message: format!("{}: {e}", path.display()),
    }
}

/// Executable sources after stripping, by bundle path. Immutable and shared
/// by every isolate of every installation of the plugin.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub modules: BTreeMap<String, String>,
    /// For stripped TypeScript: per output line (0-based), the mappings
    /// `(output column, original line, original column)`, all 0-based.
    pub line_maps: BTreeMap<String, LineMap>,
}

pub(crate) type LineMap = Vec<Vec<(u32, u32, u32)>>;

impl Sources {
    /// Rewrites `file.ts:line:col` positions in a JS stack trace from the
    /// stripped output back to the original TypeScript source.
    pub fn remap_stack(&self, stack: &str) -> String {
        let mut out = stack.to_owned();
        for (path, map) in &self.line_maps {
            out = remap_positions(&out, path, map);
        }
        out
    }
}

fn remap_positions(text: &str, path: &str, map: &LineMap) -> String {
    let needle = format!("{path}:");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let after = &rest[i + needle.len()..];
        let line_digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let col_part = after[line_digits..].strip_prefix(':').unwrap_or("");
        let col_digits = col_part.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..i + needle.len()]);
        let line: Option<u32> = after[..line_digits].parse().ok();
        let col: u32 = col_part[..col_digits].parse().unwrap_or(1);
        let mapped = line.and_then(|l| lookup(map, l.saturating_sub(1), col.saturating_sub(1)));
        let consumed = line_digits + usize::from(col_digits > 0) + col_digits;
        match mapped {
            Some((l, c)) if col_digits > 0 => out.push_str(&format!("{}:{}", l + 1, c + 1)),
            Some((l, _)) => out.push_str(&format!("{}", l + 1)),
            None => out.push_str(&after[..consumed]),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

fn lookup(map: &LineMap, line: u32, col: u32) -> Option<(u32, u32)> {
    let tokens = map.get(line as usize)?;
    let best = tokens
        .iter()
        .rev()
        .find(|t| t.0 <= col)
        .or_else(|| tokens.first())?;
    Some((best.1, best.2))
}

pub(crate) fn is_script(path: &str) -> bool {
    path.ends_with(".js") || path.ends_with(".mjs") || path.ends_with(".ts")
}

/// Resolves `specifier` imported from module `base` to a bundle path, or says
/// why not. Only relative specifiers inside the bundle and the SDK resolve.
pub(crate) fn resolve(
    base: &str,
    specifier: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<String, String> {
    if specifier == SDK_MODULE {
        return Ok(SDK_MODULE.to_owned());
    }
    if !(specifier.starts_with("./") || specifier.starts_with("../")) {
        return Err(format!(
            "`{specifier}` is not allowed: plugins may import only `{SDK_MODULE}` and relative paths inside the bundle"
        ));
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for seg in specifier.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("`{specifier}` escapes the bundle"));
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    // TypeScript convention: `./util.js` names `util.ts`; extensionless too.
    let candidates = [
        joined.clone(),
        joined.replace_suffix(".js", ".ts"),
        format!("{joined}.ts"),
        format!("{joined}.js"),
    ];
    candidates
        .into_iter()
        .find(|c| is_script(c) && exists(c))
        .ok_or_else(|| format!("`{specifier}` does not name a file in the bundle"))
}

trait ReplaceSuffix {
    fn replace_suffix(&self, from: &str, to: &str) -> String;
}

impl ReplaceSuffix for String {
    fn replace_suffix(&self, from: &str, to: &str) -> String {
        match self.strip_suffix(from) {
            Some(stem) => format!("{stem}{to}"),
            None => self.clone(),
        }
    }
}

/// Strips types from `.ts` files, checks every static import of every
/// script, and returns the executable sources, or every problem found.
pub(crate) fn compile(bundle: &Bundle) -> Result<Sources, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut sources = Sources::default();
    if bundle.files.len() > BUNDLE_FILES_MAX {
        problems.push(Problem::new(
            "$",
            format!("more than {BUNDLE_FILES_MAX} files"),
        ));
    }
    if bundle.total_bytes() > BUNDLE_BYTES_MAX {
        problems.push(Problem::new(
            "$",
            format!("bundle exceeds {BUNDLE_BYTES_MAX} bytes"),
        ));
    }
    for (path, bytes) in &bundle.files {
        if !is_script(path) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            problems.push(Problem::new(path.clone(), "is not valid UTF-8"));
            continue;
        };
        match compile_one(path, text, |p| bundle.files.contains_key(p)) {
            Ok((js, map)) => {
                sources.modules.insert(path.clone(), js);
                if let Some(map) = map {
                    sources.line_maps.insert(path.clone(), map);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(problems)
    }
}

/// One file: parse (reporting syntax errors at original positions), check
/// imports, strip types when TypeScript.
fn compile_one(
    path: &str,
    text: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<(String, Option<LineMap>), Vec<Problem>> {
    let allocator = Allocator::default();
    let source_type = SourceType::from_path(Path::new(path))
        .unwrap_or_default()
        .with_module(true);
    let parsed = Parser::new(&allocator, text, source_type).parse();
    let mut problems = errors_of(path, text, &parsed.diagnostics);
    if !problems.is_empty() || parsed.panicked {
        if problems.is_empty() {
            problems.push(Problem::new(path.to_owned(), "could not be parsed"));
        }
        return Err(problems);
    }
    for (specifier, uses) in parsed.module_record.requested_modules.iter() {
        for u in uses.iter().filter(|u| !u.is_type) {
            if let Err(why) = resolve(path, specifier.as_str(), &exists) {
                problems.push(Problem::new(
                    location(path, text, u.span.start as usize),
                    why,
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if !source_type.is_typescript() {
        return Ok((text.to_owned(), None));
    }
    strip_types(&allocator, path, text, parsed.program)
}

/// The error-severity diagnostics as problems at their `file:line:column`.
fn errors_of(
    path: &str,
    text: &str,
    diagnostics: &[oxc::diagnostics::OxcDiagnostic],
) -> Vec<Problem> {
    diagnostics
        .iter()
        .filter(|d| d.severity == oxc::diagnostics::Severity::Error)
        .map(|d| {
            let offset = d.labels.first().map(|l| l.offset()).unwrap_or(0);
            Problem::new(location(path, text, offset as usize), d.message.to_string())
        })
        .collect()
}

/// TypeScript → JavaScript, with a line map back to the original positions
/// so stack traces and errors name the author's lines.
fn strip_types<'a>(
    allocator: &'a Allocator,
    path: &str,
    text: &str,
    mut program: oxc::ast::ast::Program<'a>,
) -> Result<(String, Option<LineMap>), Vec<Problem>> {
    let scoping = SemanticBuilder::new()
        .build(&program)
        .semantic
        .into_scoping();
    let options = TransformOptions::default();
    let ret = Transformer::new(allocator, Path::new(path), &options)
        .build_with_scoping(scoping, &mut program);
    let errors = errors_of(path, text, &ret.diagnostics);
    if !errors.is_empty() {
        return Err(errors);
    }
    let options = CodegenOptions {
        source_map_path: Some(PathBuf::from(path)),
        ..CodegenOptions::default()
    };
    let ret = Codegen::new().with_options(options).build(&program);
    let map = ret.map.map(|m| {
        let mut lines: LineMap = Vec::new();
        for t in m.get_tokens() {
            let line = t.get_dst_line() as usize;
            if lines.len() <= line {
                lines.resize(line + 1, Vec::new());
            }
            lines[line].push((t.get_dst_col(), t.get_src_line(), t.get_src_col()));
        }
        lines
    });
    Ok((ret.code, map))
}

/// `file:line:column`, 1-based, for a byte offset into `text`.
pub(crate) fn location(path: &str, text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{path}:{line}:{column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(p: &str) -> bool {
        ["main.js", "lib/util.ts", "lib/x.js"].contains(&p)
    }

    #[test]
    fn resolution_stays_inside_the_bundle() {
        assert_eq!(resolve("main.js", "./lib/x.js", has).unwrap(), "lib/x.js");
        assert_eq!(
            resolve("lib/x.js", "./util.js", has).unwrap(),
            "lib/util.ts"
        );
        assert_eq!(resolve("lib/x.js", "../main", has).unwrap(), "main.js");
        assert_eq!(resolve("main.js", SDK_MODULE, has).unwrap(), SDK_MODULE);
        for bad in [
            "node:fs",
            "npm:left-pad",
            "https://x.test/a.js",
            "fs",
            "../../etc/passwd",
            "/abs.js",
            "./missing.js",
        ] {
            assert!(resolve("main.js", bad, has).is_err(), "{bad}");
        }
    }

    #[test]
    fn typescript_is_stripped_and_errors_point_into_the_original() {
        let (js, _) = compile_one(
            "main.ts",
            "const x: number = 1;\nexport function f(a: string): string { return a }\n",
            has,
        )
        .unwrap();
        assert!(js.contains("const x = 1"), "{js}");
        assert!(!js.contains(": number"), "{js}");
        let err = compile_one("main.ts", "const a = 1;\n\nconst x: = 2;\n", has).unwrap_err();
        assert!(err[0].path.starts_with("main.ts:3:"), "{err:?}");
    }

    #[test]
    fn bad_imports_are_located() {
        let err = compile_one("main.js", "// hi\nimport fs from 'node:fs';\n", has).unwrap_err();
        assert_eq!(err[0].path, "main.js:2:16");
        assert!(err[0].message.contains("node:fs"));
    }
}
