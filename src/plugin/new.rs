//! `extensor plugin new NAME [--ts]`: a plugin directory that validates and
//! whose sample test passes as created: manifest, entry (JS or TS), the SDK
//! declaration file, and `tests/` with an event and its expected result.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use extensor_core::manifest::Slug;

/// The SDK's TypeScript declarations, shipped into every new plugin so
/// editors type-check `ctx` without a package install.
pub const SDK_DTS: &str = include_str!("../../js-runtime/sdk/extensor.d.ts");

#[derive(Args)]
pub struct NewArgs {
    /// Directory to create; its last component is the plugin's slug
    /// (lowercase letters, digits and dashes).
    pub name: PathBuf,
    /// Write the entry in TypeScript (main.ts) instead of JavaScript.
    #[arg(long)]
    pub ts: bool,
}

/// Which language the entry is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Language {
    JavaScript,
    TypeScript,
}

pub fn run(args: NewArgs) -> Result<()> {
    let language = if args.ts {
        Language::TypeScript
    } else {
        Language::JavaScript
    };
    let files = scaffold(&args.name, language)?;
    println!("created {}:", args.name.display());
    for f in &files {
        println!("  {f}");
    }
    println!(
        "next: extensor plugin test {} --event {0}/tests/ping.event.json --expect {0}/tests/ping.expected.json",
        args.name.display()
    );
    Ok(())
}

/// Writes the scaffold and returns the relative paths written.
pub fn scaffold(dir: &Path, language: Language) -> Result<Vec<String>> {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        bail!("`{}` does not end in a plugin name", dir.display());
    };
    let slug: Slug = name
        .parse()
        .with_context(|| format!("`{name}` cannot be a plugin slug"))?;
    if std::fs::symlink_metadata(dir).is_ok() {
        bail!("{} already exists; choose a new directory", dir.display());
    }
    let (entry, code) = match language {
        Language::JavaScript => ("main.js", MAIN_JS),
        Language::TypeScript => ("main.ts", MAIN_TS),
    };
    let mut files: Vec<(&str, String)> = vec![
        ("manifest.json", manifest(&slug, entry)),
        (entry, code.to_owned()),
        ("extensor.d.ts", SDK_DTS.to_owned()),
        ("tests/ping.event.json", PING_EVENT.to_owned()),
        ("tests/ping.expected.json", PING_EXPECTED.to_owned()),
        ("tests/README.md", tests_readme(name)),
        (".gitignore", ".env\n*.zip\nnode_modules/\n".to_owned()),
    ];
    if language == Language::TypeScript {
        files.push(("tsconfig.json", TSCONFIG.to_owned()));
    }
    std::fs::create_dir_all(dir.join("tests"))
        .with_context(|| format!("creating {}", dir.display()))?;
    for (rel, text) in &files {
        let path = dir.join(rel);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p.to_owned()).collect())
}

fn manifest(slug: &Slug, entry: &str) -> String {
    let m = serde_json::json!({
        "slug": slug.as_str(),
        "name": slug.as_str(),
        "version": "0.1.0",
        "description": "A new Extensor plugin",
        "entry": entry,
        "permissions": ["secrets.read"],
        "events": ["app.ping"],
        "routes": [{"method": "GET", "path": "/hello"}],
        "jobs": [{"name": "nightly", "schedule": "0 3 * * *"}]
    });
    let mut text = serde_json::to_string_pretty(&m).unwrap_or_default();
    text.push('\n');
    text
}

const MAIN_JS: &str = r#"import { hook, route, job } from "extensor:sdk";

// Runs for every `app.ping` event the tenant publishes.
hook("app.ping", async (event, ctx) => {
  const greeting = (await ctx.secrets.get("GREETING")) ?? "pong";
  ctx.log("info", "ping from", event.data?.from ?? "nobody");
  return { reply: greeting, from: event.data?.from ?? null };
});

// Served at /ext/<slug>/hello.
route("GET", "/hello", async (req, ctx) => ({
  status: 200,
  body: { hello: req.query.name ?? "world", plugin: ctx.plugin.slug },
}));

// Runs at 03:00 UTC every day (and on `run-now`).
job("nightly", "0 3 * * *", async (_input, ctx) => {
  ctx.log("info", "nightly run");
  return { done: true };
});
"#;

const MAIN_TS: &str = r#"import { hook, route, job, type Ctx, type Event } from "extensor:sdk";

interface Ping {
  from?: string;
}

// Runs for every `app.ping` event the tenant publishes.
hook<Ping>("app.ping", async (event: Event<Ping>, ctx: Ctx) => {
  const greeting = (await ctx.secrets.get("GREETING")) ?? "pong";
  const from = (event.data as Ping | undefined)?.from ?? null;
  ctx.log("info", "ping from", from ?? "nobody");
  return { reply: greeting, from };
});

// Served at /ext/<slug>/hello.
route("GET", "/hello", async (req, ctx) => ({
  status: 200,
  body: { hello: req.query.name ?? "world", plugin: ctx.plugin.slug },
}));

// Runs at 03:00 UTC every day (and on `run-now`).
job("nightly", "0 3 * * *", async (_input, ctx) => {
  ctx.log("info", "nightly run");
  return { done: true };
});
"#;

const PING_EVENT: &str = r#"{
  "type": "app.ping",
  "data": { "from": "the sample test" }
}
"#;

const PING_EXPECTED: &str = r#"{
  "reply": "pong",
  "from": "the sample test"
}
"#;

const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2022",
    "module": "ES2022",
    "moduleResolution": "Bundler",
    "strict": true,
    "noEmit": true,
    "lib": ["ES2022"],
    "types": []
  },
  "files": ["extensor.d.ts", "main.ts"]
}
"#;

fn tests_readme(name: &str) -> String {
    format!(
        "# Tests for {name}\n\n\
         `tests/` is not packed into the plugin. Run the sample test with:\n\n\
         ```sh\n\
         extensor plugin test {name} --event {name}/tests/ping.event.json --expect {name}/tests/ping.expected.json\n\
         ```\n\n\
         Secrets come from `{name}/.env` (`GREETING=hello`), which is never packed.\n\
         Other runs: `--route GET /hello`, `--job nightly`. Validate with\n\
         `extensor plugin validate {name}` and build the ZIP with `extensor plugin pack {name}`.\n"
    )
}
