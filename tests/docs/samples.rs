//! Checks for the code blocks that are not run as programs: samples
//! included from tested files, HTTP requests and `curl` commands (against
//! `openapi.yaml`), shell synopses (against the binary's own `--help`), the
//! delivery headers (against what the sender sets) and the receiver's
//! verification snippet (run on a real signature).

use std::collections::HashMap;
use std::process::Command;

use super::{Block, Kind, blocks_of_kind, read, root};
use serde_json::json;

/// Directories whose files are exercised by tests, so a sample included
/// from them is tested code.
const TESTED_SOURCES: [&str; 2] = ["examples/", "actors/tests/fixtures/"];

/// `LANG file=PATH`: the block is the file, byte for byte; webhook YAML and
/// manifests are also put through their validators.
pub fn check_included(b: &Block, path: &str) {
    assert!(
        TESTED_SOURCES.iter().any(|d| path.starts_with(d)) && !path.contains(".."),
        "{}: `file={path}` must name a file under one of {TESTED_SOURCES:?}",
        b.at
    );
    let text = read(path);
    assert!(
        text == b.body,
        "{}: the block differs from {path}; paste the file again",
        b.at
    );
    if path.ends_with("webhook.yaml")
        && let Err(p) = extensor_core::webhook::WebhookSpec::parse(&text)
    {
        panic!("{}: {path} does not validate: {p:#?}", b.at);
    }
    if path.ends_with("manifest.json")
        && let Err(e) = extensor_core::manifest::PluginManifest::parse(text.as_bytes())
    {
        panic!("{}: {path} does not validate: {e}", b.at);
    }
}

/// The operations of `openapi.yaml`: path template → (methods, the path
/// item's text, for parameter names).
pub struct OpenApi(HashMap<String, (Vec<String>, String)>);

impl OpenApi {
    pub fn load() -> OpenApi {
        let text = read("openapi.yaml");
        let paths = &text[text.find("\npaths:\n").expect("openapi.yaml: no paths")..];
        let mut map: HashMap<String, (Vec<String>, String)> = HashMap::new();
        let mut current: Option<String> = None;
        for line in paths.lines().skip(2) {
            if !line.starts_with(' ') && !line.is_empty() {
                break; // the next top-level key (components)
            }
            if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
                let key = format!("/{p}");
                map.insert(key.clone(), (Vec::new(), String::new()));
                current = Some(key);
                continue;
            }
            let Some(entry) = current.as_ref().and_then(|c| map.get_mut(c)) else {
                continue;
            };
            entry.1.push_str(line);
            entry.1.push('\n');
            let method = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'));
            if let Some(m) = method.filter(|m| m.chars().all(|c| c.is_ascii_lowercase())) {
                entry.0.push(m.to_ascii_uppercase());
            }
        }
        assert!(
            map.len() >= 10,
            "openapi.yaml: only {} paths read",
            map.len()
        );
        OpenApi(map)
    }

    /// Checks `METHOD /path?query`: a documented operation, and every query
    /// parameter one of its parameters. Plugin routes (`/ext/…`) are the
    /// plugins' own and not in the document.
    pub fn check(&self, at: &str, method: &str, target: &str) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path.starts_with("/ext/") {
            return;
        }
        let want: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let found = self.0.iter().find(|(template, _)| {
            let have: Vec<&str> = template.split('/').collect();
            have.len() == want.len()
                && have.iter().zip(&want).all(|(h, w)| {
                    let param = h.starts_with('{');
                    // A placeholder in the docs only stands for a parameter.
                    (param && !w.is_empty()) || (h == w && !w.starts_with('{'))
                })
        });
        let Some((template, (methods, item))) = found else {
            panic!("{at}: `{path}` is not a path in openapi.yaml");
        };
        assert!(
            methods.iter().any(|m| m == method),
            "{at}: openapi.yaml has no {method} {template} (it has {methods:?})"
        );
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let name = pair.split('=').next().unwrap_or("");
            assert!(
                item.contains(&format!("name: {name}\n")),
                "{at}: {method} {template} has no query parameter `{name}`"
            );
        }
    }
}

/// HTTP methods a request line may start with.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// An `http` block: a transcript of request lines `METHOD /path?query`
/// (each checked), each optionally followed by `Header: value` lines, a
/// blank line and a body; response status lines (`HTTP/1.1 200 OK`) start
/// an answer, whose headers and body are shown as sent.
pub fn check_http(api: &OpenApi, b: &Block) {
    let mut requests = 0;
    let mut in_body = false;
    for (i, line) in b.body.lines().enumerate() {
        let at = format!("{} (+{})", b.at, i + 1);
        let mut words = line.split_whitespace();
        let (first, second) = (words.next(), words.next());
        match (first, second) {
            (None, _) => in_body = true,
            (Some(m), Some(target))
                if METHODS.contains(&m) && (target.starts_with('/') || target.contains("://")) =>
            {
                let rest = target.split_once("://").map_or(target, |(_, r)| r);
                let path = rest.find('/').map_or("/", |i| &rest[i..]);
                api.check(&at, m, path);
                requests += 1;
                in_body = false;
            }
            (Some(status), _) if status.starts_with("HTTP/") => in_body = false,
            (Some(h), _) if !in_body && h.ends_with(':') => {}
            _ if in_body => {}
            _ => panic!("{at}: `{line}` is not `METHOD /path`, a status line or a header"),
        }
    }
    assert!(requests > 0, "{}: an `http` block names no request", b.at);
}

/// `json schema=NAME`: a JSON object that is an instance of the schema
/// `NAME` of openapi.yaml's components: every required property present, no
/// property the schema does not have (top level).
pub fn check_schema_instance(b: &Block, name: &str) {
    let text = read("openapi.yaml");
    let start = text
        .find(&format!("\n    {name}:\n"))
        .unwrap_or_else(|| panic!("{}: openapi.yaml has no schema `{name}`", b.at));
    let section: Vec<&str> = text[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("      "))
        .collect();
    let mut required = Vec::new();
    let mut properties = Vec::new();
    let mut list = "";
    for line in &section {
        match line.strip_prefix("      ") {
            Some("required:") => list = "required",
            Some("properties:") => list = "properties",
            Some(l) if !l.starts_with(' ') && !l.starts_with('-') => list = "",
            _ => {}
        }
        if let (Some(item), "required") = (line.strip_prefix("      - "), list) {
            required.push(item.trim().to_owned());
        }
        let key = line
            .strip_prefix("        ")
            .and_then(|l| l.strip_suffix(':'));
        if let (Some(key), "properties") = (key, list)
            && !key.starts_with(' ')
        {
            properties.push(key.to_owned());
        }
    }
    assert!(
        !properties.is_empty(),
        "{}: schema `{name}` read no properties",
        b.at
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.body).unwrap_or_else(|e| panic!("{}: not JSON: {e}", b.at));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{}: a `{name}` is an object", b.at));
    for r in &required {
        assert!(obj.contains_key(r), "{}: `{name}` requires `{r}`", b.at);
    }
    for k in obj.keys() {
        assert!(
            properties.contains(k),
            "{}: `{name}` has no property `{k}` (it has {properties:?})",
            b.at
        );
    }
}

/// An `http delivery` block: the headers a webhook delivery carries; every
/// name must be one the sender sets (`actors/src/webhooks/attempt.rs`).
pub fn check_delivery_headers(b: &Block) {
    let source = read("actors/src/webhooks/attempt.rs");
    let mut n = 0;
    for line in b.body.lines().filter(|l| !l.trim().is_empty()) {
        let (name, _) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("{}: `{line}` is not a header", b.at));
        let quoted = format!("\"{name}\"");
        let sent = source
            .match_indices(&quoted)
            .any(|(i, _)| source[..i].trim_end().ends_with(".header("));
        assert!(sent, "{}: deliveries do not send `{name}`", b.at);
        n += 1;
    }
    assert!(n > 0, "{}: no headers", b.at);
}

/// A `python verify` block: a receiver's verification with the published
/// `standardwebhooks` package, run on a delivery signed by our signer with
/// `request_body` and `request_headers` defined and the doc's `whsec_…`
/// replaced by the real secret; the same run on a tampered body must fail.
pub fn check_python_verify(b: &Block) {
    use extensor_core::webhook::signing::{SigningKey, signature_header};
    let python = crate::python::python(&["standardwebhooks"]);
    let secret = SigningKey::encode(b"docs-sample-signing-key-32-bytes");
    let key = SigningKey::parse(&secret).unwrap();
    let body = r#"{"text": "Build 7 on main: success"}"#;
    let ts = chrono::Utc::now().timestamp();
    let sig = signature_header(&[key], "msg_docs", ts, body.as_bytes());
    assert!(
        b.body.contains("\"whsec_…\""),
        "{}: the sample names no \"whsec_…\"",
        b.at
    );
    let snippet = b.body.replace("\"whsec_…\"", &format!("{secret:?}"));
    for (sent, ok) in [(body, true), (&body.replace('7', "8")[..], false)] {
        let script = format!(
            "request_body = {sent:?}\nrequest_headers = {{\"webhook-id\": \"msg_docs\", \"webhook-timestamp\": \"{ts}\", \"webhook-signature\": {sig:?}}}\n{snippet}"
        );
        let o = Command::new(&python)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            o.status.success(),
            ok,
            "{}: verification with {} body: {}",
            b.at,
            if ok { "the signed" } else { "a tampered" },
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Splits shell text into commands of words: quotes and backslashes are
/// honoured, `#` comments dropped, `&&`, `||`, `;`, `|` and parentheses end
/// a command, and redirections (`> file`, `2> file`, `< file`) are dropped.
pub fn shell_commands(text: &str) -> Vec<Vec<String>> {
    let text = text.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in text.lines() {
        let mut words: Vec<String> = Vec::new();
        let mut word: Option<String> = None;
        let mut chars = line.chars().peekable();
        let mut redirect = false;
        while let Some(c) = chars.next() {
            match c {
                '\'' | '"' => {
                    let w = word.get_or_insert_with(String::new);
                    for q in chars.by_ref() {
                        if q == c {
                            break;
                        }
                        w.push(q);
                    }
                }
                '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
                '#' if word.is_none() => break,
                ' ' | '\t' | ';' | '|' | '&' | '(' | ')' | '>' | '<' => {
                    if let Some(w) = word.take() {
                        if redirect {
                            redirect = false;
                        } else if !(c == '>' && w.chars().all(|d| d.is_ascii_digit())) {
                            words.push(w);
                        }
                    }
                    if c == '>' || c == '<' {
                        redirect = true;
                        chars.next_if_eq(&'>');
                    } else if c != ' ' && c != '\t' {
                        end_command(&mut words, &mut commands);
                    }
                }
                _ => word.get_or_insert_with(String::new).push(c),
            }
        }
        if let Some(w) = word.take()
            && !redirect
        {
            words.push(w);
        }
        end_command(&mut words, &mut commands);
    }
    commands
}

fn end_command(words: &mut Vec<String>, commands: &mut Vec<Vec<String>>) {
    if !words.is_empty() {
        commands.push(std::mem::take(words));
    }
}

/// The `name`s of the workspace's packages, from each member's Cargo.toml.
fn workspace_packages() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest
        .split("members")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or("");
    std::iter::once(root().join("Cargo.toml"))
        .chain(
            members
                .split('"')
                .skip(1)
                .step_by(2)
                .filter(|m| *m != ".")
                .map(|m| root().join(m).join("Cargo.toml")),
        )
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .filter_map(|text| {
            let line = text.lines().find(|l| l.trim_start().starts_with("name"))?;
            Some(line.split('"').nth(1)?.to_owned())
        })
        .collect()
}

/// Checks the commands of a `sh` block without running them.
pub struct Synopsis {
    api: OpenApi,
    help: HashMap<Vec<String>, String>,
}

impl Synopsis {
    pub fn new(api: OpenApi) -> Synopsis {
        Synopsis {
            api,
            help: HashMap::new(),
        }
    }

    pub fn check_block(&mut self, b: &Block) -> usize {
        let mut cwd = root();
        let mut n = 0;
        for words in shell_commands(&b.body) {
            // Leading `NAME=value` assignments are environment, not a command.
            let words: Vec<String> = words
                .into_iter()
                .skip_while(|w| w.split_once('=').is_some_and(|(k, _)| is_env_name(k)))
                .collect();
            let Some((program, args)) = words.split_first() else {
                continue;
            };
            let at = format!("{}: `{}`", b.at, words.join(" "));
            match program.as_str() {
                "extensor" => self.check_extensor(&at, args),
                "cargo" => self.check_cargo(&at, args),
                "curl" => self.check_curl(&at, args),
                "cd" => {
                    cwd = cwd.join(args.first().map_or("", String::as_str));
                    assert!(cwd.is_dir(), "{at}: no such directory");
                }
                "npm" => assert!(
                    cwd.join("package.json").is_file()
                        && args.first().is_some_and(|a| a == "install"),
                    "{at}: npm install needs a package.json in {}",
                    cwd.display()
                ),
                p if p.starts_with("scripts/") => check_script(&at, p),
                other => panic!(
                    "{at}: no checker for `{other}`; tag the block `text` if it is not a command"
                ),
            }
            n += 1;
        }
        n
    }

    /// Subcommands as far as `--help` lists them, then every flag must be in
    /// the help of that subcommand.
    fn check_extensor(&mut self, at: &str, args: &[String]) {
        let mut path: Vec<String> = Vec::new();
        for a in args.iter().take_while(|a| !a.starts_with('-')) {
            let subs = subcommands(self.help(&path));
            if subs.is_empty() {
                break; // a positional argument
            }
            assert!(
                subs.contains(a),
                "{at}: `{a}` is not a subcommand of `extensor {}` ({subs:?})",
                path.join(" ")
            );
            path.push(a.clone());
        }
        assert!(!path.is_empty(), "{at}: no extensor subcommand");
        let help = self.help(&path).to_owned();
        for flag in args.iter().filter(|a| a.starts_with('-') && a.len() > 1) {
            let name = flag.split('=').next().unwrap_or(flag);
            assert!(
                mentions(&help, name),
                "{at}: `extensor {}` has no option `{name}`",
                path.join(" ")
            );
        }
    }

    fn help(&mut self, path: &[String]) -> &str {
        self.help.entry(path.to_vec()).or_insert_with(|| {
            let o = Command::new(env!("CARGO_BIN_EXE_extensor"))
                .args(path)
                .arg("--help")
                .output()
                .unwrap();
            assert!(o.status.success(), "extensor {path:?} --help failed");
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
    }

    /// `cargo run [--release] -- ARGS` is `extensor ARGS`; other cargo
    /// subcommands are checked against `cargo SUB --help` up to a `--`
    /// (what follows goes to the test binary, e.g. `-- --ignored`), and a
    /// `-p`/`--package` must name a package of the workspace.
    fn check_cargo(&mut self, at: &str, args: &[String]) {
        let sub = args.first().expect("a cargo subcommand");
        let dash = args.iter().position(|a| a == "--");
        if let (Some(dash), "run") = (dash, sub.as_str()) {
            return self.check_extensor(at, &args[dash + 1..]);
        }
        let own = &args[..dash.unwrap_or(args.len())];
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = Command::new(cargo).args([sub, "--help"]).output().unwrap();
        assert!(o.status.success(), "{at}: `cargo {sub}` is not a command");
        let help = String::from_utf8_lossy(&o.stdout);
        for flag in own.iter().filter(|a| a.starts_with('-')) {
            assert!(mentions(&help, flag), "{at}: cargo {sub} has no `{flag}`");
        }
        for pair in own.windows(2) {
            if pair[0] == "-p" || pair[0] == "--package" {
                assert!(
                    workspace_packages().contains(&pair[1]),
                    "{at}: `{}` is not a package of the workspace",
                    pair[1]
                );
            }
        }
    }

    /// The method (`-X`, else POST with a body, else GET) and the URL's path
    /// must be an operation of openapi.yaml.
    fn check_curl(&mut self, at: &str, args: &[String]) {
        let mut method = None;
        let mut url = None;
        let mut body = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-X" | "--request" => method = it.next().cloned(),
                "-d" | "--data" | "--data-binary" | "-F" | "--form" | "-T" => {
                    body = true;
                    it.next();
                }
                "-H" | "--header" | "-o" | "-u" => {
                    it.next();
                }
                f if f.starts_with('-') => {}
                u => url = Some(u.to_owned()),
            }
        }
        let url = url.unwrap_or_else(|| panic!("{at}: no URL"));
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        let method = method.unwrap_or_else(|| if body { "POST" } else { "GET" }.into());
        self.api.check(at, &method, path);
    }
}

fn is_env_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A project script (`scripts/test`): it must exist and be executable.
fn check_script(at: &str, program: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root().join(program))
        .unwrap_or_else(|e| panic!("{at}: {e}"))
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{at}: `{program}` is not executable");
}

/// The subcommands a clap help text lists under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(str::to_owned)
        .collect()
}

/// Whether `flag` appears in `help` as a whole option name.
fn mentions(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().next_back();
        let after = help[i + flag.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// Every block of the tested docs that this module checks, checked.
pub fn check_all(docs: &[&str]) -> usize {
    let mut synopsis = Synopsis::new(OpenApi::load());
    let api = OpenApi::load();
    let mut n = 0;
    let mut typescript = Vec::new();
    for doc in docs {
        for (b, kind) in blocks_of_kind(doc) {
            match kind {
                Kind::PythonClient => check_python_client(&b),
                Kind::TsClient => typescript.push(b),
                Kind::Included { path } => check_included(&b, &path),
                Kind::Http => check_http(&api, &b),
                Kind::HttpDelivery => check_delivery_headers(&b),
                Kind::PythonVerify => check_python_verify(&b),
                Kind::JsonSchema { name } => check_schema_instance(&b, &name),
                Kind::Json => {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&b.body) {
                        panic!("{}: not JSON: {e}", b.at);
                    }
                }
                Kind::ShSynopsis => assert!(
                    synopsis.check_block(&b) > 0,
                    "{}: a shell block with no command",
                    b.at
                ),
                _ => continue,
            }
            n += 1;
        }
    }
    check_ts_client(&typescript);
    n
}

/// A `python client` block: parsed; its imports run with the generated
/// client on the path; each `module.attribute` on an imported module exists.
fn check_python_client(b: &Block) {
    const CHECK: &str = "import ast, sys\n\
        tree = ast.parse(sys.stdin.read())\n\
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]\n\
        ns = {}\n\
        exec(compile(ast.Module(body=imports, type_ignores=[]), 'doc', 'exec'), ns)\n\
        for n in ast.walk(tree):\n\
        \x20   if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ns:\n\
        \x20       assert hasattr(ns[n.value.id], n.attr), f'{n.value.id}.{n.attr} does not exist'\n\
        assert imports, 'no imports'\n";
    let python = crate::python::python(&["httpx", "attrs"]);
    let mut child = Command::new(python)
        .args(["-c", CHECK])
        .env("PYTHONPATH", root().join("clients/python"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b.body.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        b.at,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every `ts client` block, type-checked together by clients/typescript's
/// `tsc` (strict), with `@extensor/client` naming that package.
fn check_ts_client(blocks: &[Block]) {
    if blocks.is_empty() {
        return;
    }
    let package = root().join("clients/typescript");
    let tsc = package.join("node_modules/.bin/tsc");
    assert!(
        tsc.is_file(),
        "{} is missing: run `scripts/test`",
        tsc.display()
    );
    // Inside the package (its node_modules, its `"type": "module"`), in the
    // git-ignored build folder.
    let dir = package.join("dist/docs-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let name = format!("block{i}.ts");
        std::fs::write(dir.join(&name), format!("// {}\n{}", b.at, b.body)).unwrap();
        files.push(name);
    }
    let config = json!({
        "extends": "../../tsconfig.json",
        "compilerOptions": {"noEmit": true, "rootDir": "../..",
            "paths": {"@extensor/client": ["../../src/index.ts"]}},
        "include": [],
        "files": files,
    });
    std::fs::write(dir.join("tsconfig.json"), config.to_string()).unwrap();
    let o = Command::new(tsc)
        .args(["-p", "tsconfig.json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ts client blocks ({}) do not type-check:\n{}",
        blocks
            .iter()
            .map(|b| b.at.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn the_shell_splitter_understands_the_docs_forms() {
    let c = shell_commands(
        "FOO=1 extensor events export --tenant ten_… > audit.ndjson  # comment\n\
         (cd js-runtime/sdk && npm install --no-save)\n\
         curl -H \"A: b c\" x/y 2> /dev/null | jq .\n\
         extensor a \\\n  --b 'c d'\n",
    );
    let words: Vec<String> = c.iter().map(|w| w.join(",")).collect();
    assert_eq!(
        words,
        [
            "FOO=1,extensor,events,export,--tenant,ten_…",
            "cd,js-runtime/sdk",
            "npm,install,--no-save",
            "curl,-H,A: b c,x/y",
            "jq,.",
            "extensor,a,--b,c d",
        ]
    );
}

#[test]
fn http_transcripts_check_requests_and_pass_answers() {
    let api = OpenApi::load();
    let block = |body: &str| Block {
        at: "sample".into(),
        info: "http".into(),
        body: body.into(),
    };
    check_http(
        &api,
        &block(
            "POST /api/plugins/{id}/secrets\nContent-Type: application/json\n\n{\"value\": \"x\"}\n\nHTTP/1.1 204 No Content\n\nGET /api/plugins/ins_1/runs?job=a&limit=5\n",
        ),
    );
    for (bad, why) in [
        ("GET /api/nowhere\n", "is not a path in openapi.yaml"),
        (
            "DELETE /api/tokens\n",
            "openapi.yaml has no DELETE /api/tokens",
        ),
        (
            "GET /api/plugins/{id}/runs?sort=asc\n",
            "no query parameter `sort`",
        ),
        ("fetch the tokens\n", "is not `METHOD /path`"),
    ] {
        let e = std::panic::catch_unwind(|| check_http(&api, &block(bad))).unwrap_err();
        let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains(why), "{bad:?}: {msg}");
    }
}

#[test]
fn synopses_catch_unknown_commands_options_and_paths() {
    let mut s = Synopsis::new(OpenApi::load());
    let block = |body: &str| Block {
        at: "sample".into(),
        info: "sh".into(),
        body: body.into(),
    };
    let good = "extensor events tail -n 5 --follow  # live\nEXTENSOR_DATA_DIR=x extensor events verify\ncurl -H 'X-Tenant-Slug: acme' localhost:8080/api/tokens\n";
    assert_eq!(s.check_block(&block(good)), 3);
    for (bad, why) in [
        (
            "extensor events verfy\n",
            "`verfy` is not a subcommand of `extensor events`",
        ),
        ("extensor events tail --folow\n", "has no option `--folow`"),
        (
            "curl -X DELETE localhost:8080/api/tokens\n",
            "has no DELETE /api/tokens",
        ),
        ("rm -rf build\n", "no checker for `rm`"),
    ] {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.check_block(&block(bad));
        }))
        .unwrap_err();
        let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains(why), "{bad:?}: {msg}");
    }
}
