//! The plugin manifest (`manifest.json` at the root of a bundle) and its
//! validation.
//!
//! Validation walks the raw JSON instead of deserialising into the struct
//! directly, so it can report *every* problem at once, each with its JSON path
//! (`$.jobs[1].schedule`), rather than stopping at serde's first error.
//! `docs/PLUGINS.md` documents every field; a test keeps the two in step.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::truncate_for_error;
use crate::error::{Error, FieldProblem};
use crate::role::Role;

/// A manifest larger than this is not a manifest. Keeps a hostile upload from
/// making us parse megabytes of JSON.
pub const MANIFEST_BYTES_MAX: usize = 64 * 1024;
/// Slugs appear in URLs (`/ext/<slug>/`) and stream names; keep them short.
pub const SLUG_CHARS_MAX: usize = 64;
pub const NAME_CHARS_MAX: usize = 100;
pub const DESCRIPTION_CHARS_MAX: usize = 2_000;
/// Upper bound on declared hooks, jobs, routes, hosts, filters: each costs
/// scheduler or dispatcher work, and no sane plugin needs more.
pub const DECLARATIONS_MAX: usize = 256;
/// A run-each catch-up never replays more than this many missed runs.
pub const CATCH_UP_RUNS_MAX: u32 = 1_000;
/// Event types and filter kinds: `auth.user.created`, `summary`.
pub const EVENT_TYPE_CHARS_MAX: usize = 128;

/// A plugin slug: lowercase ASCII letters, digits and single dashes, starting
/// with a letter. It names the plugin in URLs, so it is deliberately plain.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Slug {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match slug_problem(s) {
            None => Ok(Slug(s.to_owned())),
            Some(reason) => Err(Error::InvalidValue {
                what: "slug",
                value: truncate_for_error(s),
                reason,
            }),
        }
    }
}

impl TryFrom<String> for Slug {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({})", self.0)
    }
}

fn slug_problem(s: &str) -> Option<String> {
    if s.len() < 2 || s.len() > SLUG_CHARS_MAX {
        return Some(format!("must be 2 to {SLUG_CHARS_MAX} characters"));
    }
    let bytes = s.as_bytes();
    if !bytes[0].is_ascii_lowercase() {
        return Some("must start with a lowercase letter".into());
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Some("may contain only lowercase letters, digits and dashes".into());
    }
    if s.ends_with('-') || s.contains("--") {
        return Some("must not end with a dash or contain two dashes in a row".into());
    }
    None
}

/// What a plugin may do through `ctx`. A host API call without its permission
/// throws `PermissionDenied` naming the permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "secrets.read")]
    SecretsRead,
    #[serde(rename = "outbound_http")]
    OutboundHttp,
    #[serde(rename = "llm")]
    Llm,
    #[serde(rename = "files.read")]
    FilesRead,
    #[serde(rename = "files.write")]
    FilesWrite,
    #[serde(rename = "db.read")]
    DbRead,
    #[serde(rename = "events.emit")]
    EventsEmit,
    #[serde(rename = "send_email")]
    SendEmail,
    #[serde(rename = "routes.public")]
    RoutesPublic,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::SecretsRead,
        Permission::OutboundHttp,
        Permission::Llm,
        Permission::FilesRead,
        Permission::FilesWrite,
        Permission::DbRead,
        Permission::EventsEmit,
        Permission::SendEmail,
        Permission::RoutesPublic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SecretsRead => "secrets.read",
            Permission::OutboundHttp => "outbound_http",
            Permission::Llm => "llm",
            Permission::FilesRead => "files.read",
            Permission::FilesWrite => "files.write",
            Permission::DbRead => "db.read",
            Permission::EventsEmit => "events.emit",
            Permission::SendEmail => "send_email",
            Permission::RoutesPublic => "routes.public",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::InvalidValue {
                what: "permission",
                value: truncate_for_error(s),
                reason: format!("known permissions: {}", permission_names()),
            })
    }
}

fn permission_names() -> String {
    Permission::ALL.map(Permission::as_str).join(", ")
}

/// HTTP methods a plugin route may register.
pub const ROUTE_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// One declared route, `{"method": "GET", "path": "/ping"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDecl {
    pub method: String,
    pub path: String,
    /// The weakest role allowed to call the route; `viewer` by default.
    pub min_role: Role,
    /// Callable without a token; requires the `routes.public` permission.
    pub public: bool,
}

/// `routes: true` lets the plugin register any route in code; a list pins them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routes {
    None,
    Any,
    Declared(Vec<RouteDecl>),
}

/// What a job does about occurrences missed while the server was down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    Skip,
    RunOnce,
    RunEach,
}

/// What a job does when an occurrence fires while the previous run is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    Skip,
    QueueOne,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDecl {
    pub name: String,
    /// Normalised to the seconds form (`0 */5 * * * *`) the cron crate reads.
    pub schedule: String,
    /// IANA zone name; `UTC` when the manifest gives none.
    pub timezone: String,
    pub catch_up: CatchUp,
    /// Only meaningful with `run_each`: the most missed runs replayed.
    pub catch_up_max: u32,
    pub overlap: Overlap,
}

/// Per-plugin limits. Each may only tighten the platform's own limit; the
/// runtime takes the smaller of the two.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLimits {
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub job_timeout_ms: Option<u32>,
    pub stack_kb: Option<u32>,
}

/// A validated manifest. Only [`PluginManifest::parse`] builds one from user
/// input, so holding one means every field passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginManifest {
    pub slug: Slug,
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    pub entry: String,
    pub permissions: BTreeSet<Permission>,
    pub routes: Routes,
    pub events: Vec<String>,
    pub jobs: Vec<JobDecl>,
    pub llm_filters: Vec<String>,
    pub generator_hooks: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub limits: ManifestLimits,
}

/// Every top-level field the manifest accepts; anything else is reported,
/// because a misspelt `permisions` silently ignored is a plugin that fails
/// later in a confusing way.
pub const MANIFEST_FIELDS: [&str; 13] = [
    "slug",
    "name",
    "version",
    "description",
    "entry",
    "permissions",
    "routes",
    "events",
    "jobs",
    "llm_filters",
    "generator_hooks",
    "allowed_hosts",
    "limits",
];

/// Fields of one `routes` entry.
pub const ROUTE_FIELDS: [&str; 4] = ["method", "path", "min_role", "public"];
/// Fields of one `jobs` entry.
pub const JOB_FIELDS: [&str; 6] = [
    "name",
    "schedule",
    "timezone",
    "catch_up",
    "catch_up_max",
    "overlap",
];
/// Fields of `limits`.
pub const LIMITS_FIELDS: [&str; 4] = ["memory_mb", "timeout_ms", "job_timeout_ms", "stack_kb"];

impl PluginManifest {
    /// Parses and validates `manifest.json`, returning every problem found.
    pub fn parse(bytes: &[u8]) -> Result<PluginManifest, Error> {
        if bytes.len() > MANIFEST_BYTES_MAX {
            return Err(Error::InvalidManifest(vec![FieldProblem::new(
                "$",
                format!(
                    "manifest is {} bytes; the limit is {MANIFEST_BYTES_MAX}",
                    bytes.len()
                ),
            )]));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::InvalidManifest(vec![FieldProblem::new("$", format!("not valid JSON: {e}"))])
        })?;
        let Value::Object(obj) = value else {
            return Err(Error::InvalidManifest(vec![FieldProblem::new(
                "$",
                "must be a JSON object",
            )]));
        };
        let mut v = Validator::default();
        let manifest = v.manifest(&obj);
        match manifest {
            Some(m) if v.problems.is_empty() => Ok(m),
            _ => Err(Error::InvalidManifest(v.problems)),
        }
    }

    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// Collects problems while walking the manifest. Each field method returns
/// `None` when the field is unusable; the walk goes on regardless so that
/// every problem is reported in one response.
#[derive(Default)]
struct Validator {
    problems: Vec<FieldProblem>,
}

impl Validator {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(FieldProblem::new(path, message));
    }

    fn manifest(&mut self, obj: &Map<String, Value>) -> Option<PluginManifest> {
        for key in obj.keys() {
            if !MANIFEST_FIELDS.contains(&key.as_str()) {
                self.problem(
                    format!("$.{}", truncate_for_error(key)),
                    format!(
                        "unknown field; known fields: {}",
                        MANIFEST_FIELDS.join(", ")
                    ),
                );
            }
        }
        let slug = self.slug(obj.get("slug"));
        let name = self.bounded_text(obj.get("name"), "$.name", NAME_CHARS_MAX, Needed::Required);
        let version = self.version(obj.get("version"));
        let description = self.bounded_text(
            obj.get("description"),
            "$.description",
            DESCRIPTION_CHARS_MAX,
            Needed::Optional,
        );
        let entry = self.entry(obj.get("entry"));
        let permissions = self.permissions(obj.get("permissions"));
        let routes = self.routes(obj.get("routes"), permissions.as_ref());
        let events = self.names(obj.get("events"), "$.events", NameKind::EventPattern);
        let jobs = self.jobs(obj.get("jobs"));
        let llm_filters = self.names(obj.get("llm_filters"), "$.llm_filters", NameKind::Kind);
        let generator_hooks = self.names(
            obj.get("generator_hooks"),
            "$.generator_hooks",
            NameKind::Kind,
        );
        let allowed_hosts = self.allowed_hosts(obj.get("allowed_hosts"));
        let limits = self.limits(obj.get("limits"));
        Some(PluginManifest {
            slug: slug?,
            name: name?,
            version: version?,
            description: description?,
            entry: entry?,
            permissions: permissions?,
            routes: routes?,
            events: events?,
            jobs: jobs?,
            llm_filters: llm_filters?,
            generator_hooks: generator_hooks?,
            allowed_hosts: allowed_hosts?,
            limits: limits?,
        })
    }

    fn slug(&mut self, v: Option<&Value>) -> Option<Slug> {
        let s = self.bounded_text(v, "$.slug", SLUG_CHARS_MAX, Needed::Required)?;
        match slug_problem(&s) {
            None => Some(Slug(s)),
            Some(reason) => {
                self.problem("$.slug", format!("`{}` {reason}", truncate_for_error(&s)));
                None
            }
        }
    }

    fn version(&mut self, v: Option<&Value>) -> Option<semver::Version> {
        let s = self.bounded_text(v, "$.version", NAME_CHARS_MAX, Needed::Required)?;
        match semver::Version::parse(&s) {
            Ok(ver) => Some(ver),
            Err(e) => {
                let quoted = truncate_for_error(&s);
                self.problem(
                    "$.version",
                    format!("`{quoted}` is not a semantic version like 1.2.3: {e}"),
                );
                None
            }
        }
    }

    fn entry(&mut self, v: Option<&Value>) -> Option<String> {
        let s = self.bounded_text(v, "$.entry", 256, Needed::Required)?;
        if !(s.ends_with(".js") || s.ends_with(".mjs") || s.ends_with(".ts")) {
            self.problem(
                "$.entry",
                "must be a .js, .mjs or .ts file inside the bundle",
            );
            return None;
        }
        if s.starts_with('/')
            || s.split(['/', '\\'])
                .any(|seg| seg == ".." || seg.is_empty())
        {
            self.problem(
                "$.entry",
                "must be a relative path inside the bundle (no leading /, no .. segments)",
            );
            return None;
        }
        Some(s)
    }

    /// A string field of at most `chars_max` characters. An absent optional
    /// field is the empty string.
    fn bounded_text(
        &mut self,
        v: Option<&Value>,
        path: &str,
        chars_max: usize,
        needed: Needed,
    ) -> Option<String> {
        match v {
            None | Some(Value::Null) => {
                if needed == Needed::Required {
                    self.problem(path, "is required");
                    return None;
                }
                Some(String::new())
            }
            Some(Value::String(s)) if needed == Needed::Required && s.trim().is_empty() => {
                self.problem(path, "must not be empty");
                None
            }
            Some(Value::String(s)) if s.chars().count() > chars_max => {
                self.problem(path, format!("must be at most {chars_max} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(path, format!("must be a string, not {}", json_kind(other)));
                None
            }
        }
    }

    fn array<'v>(&mut self, v: Option<&'v Value>, path: &str) -> Option<&'v [Value]> {
        match v {
            None | Some(Value::Null) => Some(&[]),
            Some(Value::Array(items)) if items.len() > DECLARATIONS_MAX => {
                self.problem(path, format!("at most {DECLARATIONS_MAX} entries"));
                None
            }
            Some(Value::Array(items)) => Some(items),
            Some(other) => {
                self.problem(path, format!("must be an array, not {}", json_kind(other)));
                None
            }
        }
    }

    fn permissions(&mut self, v: Option<&Value>) -> Option<BTreeSet<Permission>> {
        let items = self.array(v, "$.permissions")?;
        let mut out = BTreeSet::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("$.permissions[{i}]");
            let Some(s) = self.bounded_text(Some(item), &path, 64, Needed::Required) else {
                ok = false;
                continue;
            };
            match s.parse::<Permission>() {
                Ok(p) if !out.insert(p) => {
                    self.problem(path, format!("`{s}` is listed twice"));
                    ok = false;
                }
                Ok(_) => {}
                Err(_) => {
                    self.problem(
                        path,
                        format!(
                            "unknown permission `{}`; known permissions: {}",
                            truncate_for_error(&s),
                            permission_names()
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn routes(
        &mut self,
        v: Option<&Value>,
        permissions: Option<&BTreeSet<Permission>>,
    ) -> Option<Routes> {
        match v {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Some(Routes::None),
            Some(Value::Bool(true)) => Some(Routes::Any),
            Some(Value::Array(_)) => {
                let items = self.array(v, "$.routes")?;
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.route(item, &format!("$.routes[{i}]"), permissions) {
                        Some(r)
                            if out
                                .iter()
                                .any(|o: &RouteDecl| o.method == r.method && o.path == r.path) =>
                        {
                            self.problem(
                                format!("$.routes[{i}]"),
                                format!("{} {} is declared twice", r.method, r.path),
                            );
                            ok = false;
                        }
                        Some(r) => out.push(r),
                        None => ok = false,
                    }
                }
                ok.then_some(Routes::Declared(out))
            }
            Some(other) => {
                self.problem(
                    "$.routes",
                    format!(
                        "must be true, false or a list of routes, not {}",
                        json_kind(other)
                    ),
                );
                None
            }
        }
    }

    fn route(
        &mut self,
        item: &Value,
        path: &str,
        permissions: Option<&BTreeSet<Permission>>,
    ) -> Option<RouteDecl> {
        let obj = self.object(item, path, &ROUTE_FIELDS)?;
        let method = self
            .bounded_text(
                obj.get("method"),
                &format!("{path}.method"),
                16,
                Needed::Required,
            )
            .map(|m| m.to_ascii_uppercase());
        let method = method.and_then(|m| {
            if ROUTE_METHODS.contains(&m.as_str()) {
                Some(m)
            } else {
                self.problem(
                    format!("{path}.method"),
                    format!("must be one of {}", ROUTE_METHODS.join(", ")),
                );
                None
            }
        });
        let route_path = self.route_path(obj.get("path"), &format!("{path}.path"));
        let min_role = match obj.get("min_role") {
            None | Some(Value::Null) => Some(Role::Viewer),
            Some(Value::String(s)) => s.parse::<Role>().ok().or_else(|| {
                self.problem(
                    format!("{path}.min_role"),
                    "must be one of owner, admin, developer, viewer",
                );
                None
            }),
            Some(other) => {
                self.problem(
                    format!("{path}.min_role"),
                    format!("must be a string, not {}", json_kind(other)),
                );
                None
            }
        };
        let public = self.flag(obj.get("public"), &format!("{path}.public"));
        if public == Some(true)
            && permissions.is_some_and(|p| !p.contains(&Permission::RoutesPublic))
        {
            self.problem(
                format!("{path}.public"),
                "a public route needs the `routes.public` permission",
            );
            return None;
        }
        Some(RouteDecl {
            method: method?,
            path: route_path?,
            min_role: min_role?,
            public: public?,
        })
    }

    fn route_path(&mut self, v: Option<&Value>, path: &str) -> Option<String> {
        let s = self.bounded_text(v, path, 256, Needed::Required)?;
        let valid_chars = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.:~".contains(&b));
        if !s.starts_with('/') || !valid_chars || s.split('/').any(|seg| seg == "..") {
            self.problem(
                path,
                "must start with / and contain only letters, digits and / - _ . : ~ (`:name` is a parameter)",
            );
            return None;
        }
        Some(s)
    }

    fn flag(&mut self, v: Option<&Value>, path: &str) -> Option<bool> {
        match v {
            None | Some(Value::Null) => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.problem(
                    path,
                    format!("must be true or false, not {}", json_kind(other)),
                );
                None
            }
        }
    }

    fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(obj) = v else {
            self.problem(path, format!("must be an object, not {}", json_kind(v)));
            return None;
        };
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(
                    format!("{path}.{}", truncate_for_error(key)),
                    format!("unknown field; known fields: {}", known.join(", ")),
                );
            }
        }
        Some(obj)
    }

    fn names(&mut self, v: Option<&Value>, path: &str, kind: NameKind) -> Option<Vec<String>> {
        let items = self.array(v, path)?;
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let Some(s) = self.bounded_text(
                Some(item),
                &item_path,
                EVENT_TYPE_CHARS_MAX,
                Needed::Required,
            ) else {
                ok = false;
                continue;
            };
            if let Some(reason) = name_problem(&s, kind) {
                self.problem(item_path, format!("`{}` {reason}", truncate_for_error(&s)));
                ok = false;
            } else if out.contains(&s) {
                self.problem(item_path, format!("`{s}` is listed twice"));
                ok = false;
            } else {
                out.push(s);
            }
        }
        ok.then_some(out)
    }

    fn jobs(&mut self, v: Option<&Value>) -> Option<Vec<JobDecl>> {
        let items = self.array(v, "$.jobs")?;
        let mut out: Vec<JobDecl> = Vec::with_capacity(items.len());
        // Names seen so far, valid jobs or not, so a duplicate is reported
        // even when its first occurrence had other problems.
        let mut seen: Vec<&str> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("$.jobs[{i}]");
            let job = self.job(item, &path);
            if let Some(name) = item.get("name").and_then(Value::as_str) {
                if seen.contains(&name) {
                    self.problem(
                        format!("{path}.name"),
                        format!("job `{}` is declared twice", truncate_for_error(name)),
                    );
                    ok = false;
                    continue;
                }
                seen.push(name);
            }
            match job {
                Some(job) => out.push(job),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn job(&mut self, item: &Value, path: &str) -> Option<JobDecl> {
        let obj = self.object(item, path, &JOB_FIELDS)?;
        let name = self.names(
            Some(&Value::Array(
                obj.get("name").cloned().into_iter().collect(),
            )),
            &format!("{path}.name"),
            NameKind::Kind,
        );
        let name = match (obj.get("name"), name) {
            (None, _) => {
                self.problem(format!("{path}.name"), "is required");
                None
            }
            (_, Some(mut n)) => n.pop(),
            (_, None) => None,
        };
        let schedule = self
            .bounded_text(
                obj.get("schedule"),
                &format!("{path}.schedule"),
                256,
                Needed::Required,
            )
            .and_then(|s| match normalize_cron(&s) {
                Ok(norm) => Some(norm),
                Err(reason) => {
                    self.problem(format!("{path}.schedule"), reason);
                    None
                }
            });
        let timezone = self.timezone(obj.get("timezone"), &format!("{path}.timezone"));
        let catch_up = self.choice(
            obj.get("catch_up"),
            &format!("{path}.catch_up"),
            &[
                ("skip", CatchUp::Skip),
                ("run_once", CatchUp::RunOnce),
                ("run_each", CatchUp::RunEach),
            ],
        );
        let catch_up_max = self.count(
            obj.get("catch_up_max"),
            &format!("{path}.catch_up_max"),
            10,
            CATCH_UP_RUNS_MAX,
        );
        let overlap = self.choice(
            obj.get("overlap"),
            &format!("{path}.overlap"),
            &[("skip", Overlap::Skip), ("queue_one", Overlap::QueueOne)],
        );
        Some(JobDecl {
            name: name?,
            schedule: schedule?,
            timezone: timezone?,
            catch_up: catch_up?,
            catch_up_max: catch_up_max?,
            overlap: overlap?,
        })
    }

    fn timezone(&mut self, v: Option<&Value>, path: &str) -> Option<String> {
        let tz = self.bounded_text(v, path, 64, Needed::Optional)?;
        if tz.is_empty() {
            return Some("UTC".into());
        }
        match tz.parse::<chrono_tz::Tz>() {
            Ok(_) => Some(tz),
            Err(_) => {
                self.problem(
                    path,
                    format!(
                        "`{}` is not an IANA time zone such as Europe/Paris",
                        truncate_for_error(&tz)
                    ),
                );
                None
            }
        }
    }

    /// One of a fixed set of strings; the first choice is the default.
    fn choice<T: Copy>(
        &mut self,
        v: Option<&Value>,
        path: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        match v {
            None | Some(Value::Null) => Some(choices[0].1),
            Some(Value::String(s)) => match choices.iter().find(|(n, _)| n == s) {
                Some((_, t)) => Some(*t),
                None => {
                    self.problem(path, format!("must be one of {}", names.join(", ")));
                    None
                }
            },
            Some(other) => {
                self.problem(
                    path,
                    format!(
                        "must be one of {}, not {}",
                        names.join(", "),
                        json_kind(other)
                    ),
                );
                None
            }
        }
    }

    fn count(&mut self, v: Option<&Value>, path: &str, default: u32, max: u32) -> Option<u32> {
        match v {
            None | Some(Value::Null) => Some(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(x) if (1..=u64::from(max)).contains(&x) => u32::try_from(x).ok(),
                _ => {
                    self.problem(path, format!("must be a whole number from 1 to {max}"));
                    None
                }
            },
            Some(other) => {
                self.problem(path, format!("must be a number, not {}", json_kind(other)));
                None
            }
        }
    }

    fn allowed_hosts(&mut self, v: Option<&Value>) -> Option<Vec<String>> {
        let items = self.array(v, "$.allowed_hosts")?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("$.allowed_hosts[{i}]");
            let Some(h) = self.bounded_text(Some(item), &path, 253, Needed::Required) else {
                ok = false;
                continue;
            };
            match host_pattern_problem(&h) {
                None => out.push(h.to_ascii_lowercase()),
                Some(reason) => {
                    self.problem(path, format!("`{}` {reason}", truncate_for_error(&h)));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn limits(&mut self, v: Option<&Value>) -> Option<ManifestLimits> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Some(ManifestLimits::default());
        };
        let obj = self.object(v, "$.limits", &LIMITS_FIELDS)?;
        let mut field = |name: &str, max: u32| -> Option<Option<u32>> {
            match obj.get(name) {
                None | Some(Value::Null) => Some(None),
                some => self
                    .count(some, &format!("$.limits.{name}"), 1, max)
                    .map(Some),
            }
        };
        Some(ManifestLimits {
            memory_mb: field("memory_mb", 4_096)?,
            timeout_ms: field("timeout_ms", 600_000)?,
            job_timeout_ms: field("job_timeout_ms", 3_600_000)?,
            stack_kb: field("stack_kb", 65_536)?,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Needed {
    Required,
    Optional,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NameKind {
    /// `auth.user.created`, or a prefix pattern `auth.user.*`.
    EventPattern,
    /// A job name, filter kind or generator kind: `daily_cleanup`, `summary`.
    Kind,
}

/// Why `s` is not a concrete event type such as `auth.user.created` (no
/// wildcard), or `None` if it is one. The same rule the manifest applies to
/// `events`; `ctx.emit` uses it for the types plugins publish.
pub fn event_type_problem(s: &str) -> Option<&'static str> {
    if s.len() > EVENT_TYPE_CHARS_MAX {
        return Some("is longer than 128 characters");
    }
    if s.ends_with(".*") || s == "*" {
        return Some("must be a concrete event type, not a pattern");
    }
    name_problem(s, NameKind::EventPattern)
}

fn name_problem(s: &str, kind: NameKind) -> Option<&'static str> {
    let body = match kind {
        NameKind::EventPattern => s.strip_suffix(".*").unwrap_or(s),
        NameKind::Kind => s,
    };
    if kind == NameKind::EventPattern && s == "*" {
        return None;
    }
    let ok_chars = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let starts_ok = body.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if !ok_chars || !starts_ok || body.ends_with('.') || body.contains("..") {
        return Some(match kind {
            NameKind::EventPattern => {
                "is not an event type like `auth.user.created` (letters, digits, . _ -; a trailing `.*` matches a prefix)"
            }
            NameKind::Kind => "must start with a letter and contain only letters, digits, . _ -",
        });
    }
    None
}

/// `hooks.slack.com` or `*.example.com`; no scheme, port, path or IP literal
/// wildcard tricks.
fn host_pattern_problem(h: &str) -> Option<&'static str> {
    let body = h.strip_prefix("*.").unwrap_or(h);
    let labels_ok = body.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !labels_ok {
        return Some("is not a host name or `*.suffix` pattern (no scheme, port or path)");
    }
    if h.starts_with("*.") && !body.contains('.') {
        return Some("wildcards must keep at least two labels, e.g. `*.example.com`");
    }
    None
}

/// Accepts the 5-field standard form (`*/5 * * * *`) and the cron crate's
/// seconds form (6 or 7 fields), and returns the seconds form.
///
/// In the 5-field form weekdays are standard cron's (0 or 7 = Sunday,
/// 1 = Monday); the cron crate counts 1 = Sunday, so numeric weekdays are
/// translated. The seconds form is passed to the cron crate as written.
pub fn normalize_cron(expr: &str) -> Result<String, String> {
    let fields = expr.split_whitespace().count();
    let normalized = match fields {
        5 => {
            let mut parts: Vec<String> = expr.split_whitespace().map(str::to_owned).collect();
            parts[4] = standard_weekdays(&parts[4]).ok_or_else(|| {
                format!(
                    "`{}`: the weekday field must be 0-7 (0 or 7 = Sunday), names, ranges, lists or steps",
                    truncate_for_error(expr)
                )
            })?;
            format!("0 {}", parts.join(" "))
        }
        6 | 7 => expr.split_whitespace().collect::<Vec<_>>().join(" "),
        n => {
            return Err(format!(
                "`{}` has {n} fields; expected 5 (minute hour day month weekday) or 6-7 with seconds",
                truncate_for_error(expr)
            ));
        }
    };
    cron::Schedule::from_str(&normalized)
        .map(|_| normalized)
        .map_err(|e| {
            format!(
                "`{}` is not a valid cron expression: {e}",
                truncate_for_error(expr)
            )
        })
}

/// Translates a standard-cron weekday field into the cron crate's numbering
/// (1 = Sunday … 7 = Saturday). Names and `*` pass through; numeric items,
/// ranges and steps are expanded into an explicit list. `None`: malformed.
fn standard_weekdays(field: &str) -> Option<String> {
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty();
    let mut out: Vec<String> = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let bounds = match range.split_once('-') {
            Some((a, b)) if numeric(a) && numeric(b) => Some((a, b)),
            None if numeric(range) => Some((range, range)),
            _ => None,
        };
        let Some((a, b)) = bounds else {
            // `*`, `*/2`, names: the crate reads them as standard cron does
            // (`*/2` over 1-7 is Sun, Tue, Thu, Sat, as over 0-6).
            out.push(item.to_owned());
            continue;
        };
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        let step: u32 = match step {
            Some(s) => s.parse().ok().filter(|s| *s > 0)?,
            None => 1,
        };
        if a > 7 || b > 7 || a > b {
            return None;
        }
        let last = if step > 1 && !range.contains('-') {
            7
        } else {
            b
        };
        for day in (a..=last).step_by(step as usize) {
            let crate_day = (day % 7 + 1).to_string();
            if !out.contains(&crate_day) {
                out.push(crate_day);
            }
        }
    }
    Some(out.join(","))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(v: Value) -> Vec<FieldProblem> {
        match PluginManifest::parse(v.to_string().as_bytes()) {
            Err(Error::InvalidManifest(p)) => p,
            other => panic!("expected InvalidManifest, got {other:?}"),
        }
    }

    fn paths(v: Value) -> Vec<String> {
        problems(v).into_iter().map(|p| p.path).collect()
    }

    fn seed_manifest() -> Value {
        json!({
            "slug": "welcome-email",
            "name": "Welcome Email",
            "version": "1.0.0",
            "description": "Sends welcome emails to new users",
            "entry": "main.js",
            "permissions": ["send_email", "secrets.read"],
            "routes": true,
            "events": ["auth.user.created"],
            "jobs": [{"name": "daily_cleanup", "schedule": "0 2 * * *"}]
        })
    }

    #[test]
    fn seed_manifest_is_valid() {
        let m = PluginManifest::parse(seed_manifest().to_string().as_bytes()).unwrap();
        assert_eq!(m.slug.as_str(), "welcome-email");
        assert_eq!(m.version, semver::Version::new(1, 0, 0));
        assert!(m.has(Permission::SendEmail) && !m.has(Permission::Llm));
        assert_eq!(m.routes, Routes::Any);
        assert_eq!(m.jobs[0].schedule, "0 0 2 * * *");
        assert_eq!(m.jobs[0].timezone, "UTC");
        assert_eq!(m.jobs[0].catch_up, CatchUp::Skip);
        assert_eq!(m.jobs[0].overlap, Overlap::Skip);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let got = paths(json!({
            "slug": "Bad_Slug",
            "name": "",
            "version": "one",
            "entry": "../main.js",
            "permissions": ["send_email", "root", "send_email"],
            "events": ["ok.event", "bad event"],
            "jobs": [
                {"name": "a", "schedule": "61 * * * *"},
                {"name": "b", "schedule": "* * * * *", "timezone": "Mars/Olympus"},
                {"name": "a", "schedule": "* * * * *"}
            ],
            "permisions": []
        }));
        for expected in [
            "$.permisions",
            "$.slug",
            "$.name",
            "$.version",
            "$.entry",
            "$.permissions[1]",
            "$.permissions[2]",
            "$.events[1]",
            "$.jobs[0].schedule",
            "$.jobs[1].timezone",
            "$.jobs[2].name",
        ] {
            assert!(
                got.contains(&expected.to_string()),
                "missing {expected} in {got:?}"
            );
        }
    }

    #[test]
    fn malformed_documents_are_refused_clearly() {
        let err = PluginManifest::parse(b"{not json").unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = PluginManifest::parse(b"[1,2]").unwrap_err().to_string();
        assert!(err.contains("must be a JSON object"), "{err}");
        let big = vec![b' '; MANIFEST_BYTES_MAX + 1];
        let err = PluginManifest::parse(&big).unwrap_err().to_string();
        assert!(err.contains("limit"), "{err}");
        assert_eq!(
            paths(json!({"slug": 5, "name": "n", "version": "1.0.0", "entry": "main.js"})),
            ["$.slug"]
        );
    }

    #[test]
    fn routes_public_needs_permission_and_methods_are_checked() {
        let mut m = seed_manifest();
        m["routes"] = json!([
            {"method": "get", "path": "/ping"},
            {"method": "TRACE", "path": "/x"},
            {"method": "POST", "path": "/hook", "public": true},
            {"method": "GET", "path": "no-slash"}
        ]);
        let got = paths(m.clone());
        assert_eq!(
            got,
            [
                "$.routes[1].method",
                "$.routes[2].public",
                "$.routes[3].path"
            ]
        );
        m["permissions"] = json!(["routes.public"]);
        m["routes"] = json!([{"method": "get", "path": "/ping", "min_role": "admin"}, {"method": "POST", "path": "/hook", "public": true}]);
        let parsed = PluginManifest::parse(m.to_string().as_bytes()).unwrap();
        let Routes::Declared(routes) = parsed.routes else {
            panic!("declared routes expected")
        };
        assert_eq!(routes[0].method, "GET");
        assert_eq!(routes[0].min_role, Role::Admin);
        assert!(routes[1].public);
    }

    #[test]
    fn hosts_limits_and_policies() {
        let mut m = seed_manifest();
        m["allowed_hosts"] = json!([
            "hooks.slack.com",
            "*.Example.com",
            "http://x.com",
            "*.com",
            "1.2.3.4:80"
        ]);
        m["limits"] = json!({"memory_mb": 0, "timeout_ms": 1000, "heap": 1});
        m["jobs"] = json!([{"name": "j", "schedule": "0 0 * * * *", "catch_up": "always", "overlap": "queue_one", "catch_up_max": 5000}]);
        let got = paths(m);
        assert_eq!(
            got,
            [
                "$.jobs[0].catch_up",
                "$.jobs[0].catch_up_max",
                "$.allowed_hosts[2]",
                "$.allowed_hosts[3]",
                "$.allowed_hosts[4]",
                "$.limits.heap",
                "$.limits.memory_mb"
            ]
        );
    }

    #[test]
    fn cron_forms() {
        assert_eq!(normalize_cron("*/5 * * * *").unwrap(), "0 */5 * * * *");
        assert_eq!(normalize_cron("30 0 2 * * Mon").unwrap(), "30 0 2 * * Mon");
        assert!(normalize_cron("* * *").unwrap_err().contains("3 fields"));
        assert!(normalize_cron("0 0 25 * * *").is_err());
    }

    #[test]
    fn concrete_event_types() {
        assert_eq!(event_type_problem("auth.user.created"), None);
        for bad in [
            "",
            "auth.user.*",
            "*",
            "1abc",
            "a..b",
            "a.",
            "a b",
            &"a".repeat(129),
        ] {
            assert!(event_type_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn slug_rules() {
        for ok in ["ab", "welcome-email", "kpi2", "a-b-c"] {
            assert!(ok.parse::<Slug>().is_ok(), "{ok}");
        }
        for bad in [
            "a",
            "-ab",
            "Ab",
            "a_b",
            "ab-",
            "a--b",
            "1ab",
            &"a".repeat(65),
        ] {
            assert!(bad.parse::<Slug>().is_err(), "{bad}");
        }
    }
}
