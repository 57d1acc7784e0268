//! The webhook declaration: one YAML file in the seed's format, parsed into
//! a [`WebhookSpec`] with every problem reported at once, each at its line
//! and column.
//!
//! ```yaml
//! api_version: v1
//! on: ["build.completed", "auth.user.*"]
//! delivery:
//!   url: "${SECRET:WEBHOOK_URL}"
//!   signing: {alg: "HMAC-SHA256", secret: "${SECRET:WEBHOOK_SIGNING_KEY}"}
//! transform: {language: "javascript", entry: "transforms/build_completed.js#transform"}
//! retry: {max_attempts: 6, backoff: "exponential"}
//! ```
//!
//! The full format is documented in `docs/WEBHOOKS_AS_CODE.md`; its examples
//! are files under `examples/webhooks/` that the tests parse.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::retry::{Backoff, INTERVAL_MS_MAX, MAX_ATTEMPTS_DEFAULT, MAX_ATTEMPTS_MAX, RetryPolicy};
use super::yaml::{self, Mark, Node, Value, key_text};
use crate::error::FieldProblem;

/// Patterns per webhook: a webhook follows a few event families, not a catalogue.
pub const PATTERNS_MAX: usize = 32;
/// Extra request headers per webhook.
pub const HEADERS_MAX: usize = 32;
pub const HEADER_VALUE_CHARS_MAX: usize = 1_024;
/// A receiver that takes longer than this is treated as down.
pub const TIMEOUT_MS_MAX: u64 = 30_000;
pub const TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Deliveries in flight to one endpoint at once.
pub const CONCURRENCY_DEFAULT: u32 = 8;
pub const CONCURRENCY_MAX: u32 = 64;
/// Requests per second to one endpoint.
pub const RATE_PER_SECOND_DEFAULT: u32 = 1_000;
pub const RATE_PER_SECOND_MAX: u32 = 10_000;
/// Signing secrets at once: the current one plus those being rotated out.
pub const SIGNING_SECRETS_MAX: usize = 3;
/// Field-equality filter conditions.
pub const FILTER_CONDITIONS_MAX: usize = 16;
pub const URL_CHARS_MAX: usize = 2_048;
pub const DESCRIPTION_CHARS_MAX: usize = 500;

/// What a `${SECRET:NAME}` name may look like (the tenant secret key rules).
fn secret_name_ok(name: &str) -> bool {
    crate::installation::secret_key_problem(name).is_none()
}

/// One validation problem, located in the YAML.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending key, e.g. `delivery.timeout_ms`.
    pub field: String,
    pub message: String,
}

impl Problem {
    /// As a core [`FieldProblem`] whose path is `file:line:column`.
    pub fn to_field_problem(&self, file: &str) -> FieldProblem {
        FieldProblem::new(
            format!("{file}:{}:{}", self.line, self.column),
            if self.field.is_empty() {
                self.message.clone()
            } else {
                format!("{}: {}", self.field, self.message)
            },
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// An event-type pattern: `*`, an exact type, or a prefix ending in `.*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventPattern(String);

impl EventPattern {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self.0.strip_suffix(".*") {
            Some(prefix) => {
                event_type.len() > prefix.len() + 1
                    && event_type.starts_with(prefix)
                    && event_type.as_bytes()[prefix.len()] == b'.'
            }
            None => self.0 == "*" || self.0 == event_type,
        }
    }
}

impl std::str::FromStr for EventPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self(s.into()));
        }
        let body = s.strip_suffix(".*").unwrap_or(s);
        let segment_ok = |seg: &str| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if s.len() > crate::event::EVENT_TYPE_BYTES_MAX || !body.split('.').all(segment_ok) {
            return Err(format!(
                "`{}` is not an event pattern: use an event type like `build.completed`, a family like `auth.user.*`, or `*`",
                crate::error::truncate_for_error(s)
            ));
        }
        Ok(Self(s.into()))
    }
}

impl TryFrom<String> for EventPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<EventPattern> for String {
    fn from(p: EventPattern) -> String {
        p.0
    }
}

/// A string that may reference tenant secrets as `${SECRET:NAME}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplatePart {
    Text(String),
    Secret(String),
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(TemplatePart::Text(rest[..start].into()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err("`${` without a closing `}`".into());
            };
            let inner = &after[..end];
            let Some(name) = inner.strip_prefix("SECRET:") else {
                return Err(format!(
                    "`${{{}}}`: only `${{SECRET:NAME}}` references are supported",
                    crate::error::truncate_for_error(inner)
                ));
            };
            if !secret_name_ok(name) {
                return Err(format!(
                    "`{}` is not a secret name (letters, digits, _ . -)",
                    crate::error::truncate_for_error(name)
                ));
            }
            parts.push(TemplatePart::Secret(name.into()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.into()));
        }
        Ok(Template { parts })
    }

    /// The secret names referenced.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Secret(n) => Some(n.as_str()),
            TemplatePart::Text(_) => None,
        })
    }

    /// The text with every reference replaced; `Err(name)` for the first
    /// secret `lookup` does not know.
    pub fn resolve(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Secret(n) => out.push_str(&lookup(n).ok_or_else(|| n.clone())?),
            }
        }
        Ok(out)
    }

    /// The text without references, when it has none.
    pub fn literal(&self) -> Option<String> {
        self.resolve(&|_| None).ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Javascript,
    Typescript,
}

/// `{language, entry: "path/to/file.js#exportName"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRef {
    pub language: Language,
    /// Relative path of the module inside the webhook's files.
    pub file: String,
    /// The exported function to call.
    pub export: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Filter {
    /// Every dotted path (`data.plan`, `type`) must equal its value.
    Equals(Vec<(String, serde_json::Value)>),
    /// A JS/TS predicate: the event is delivered when it returns true.
    Code(CodeRef),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signing {
    /// First the current secret, then those being rotated out; each
    /// produces one signature.
    pub secrets: Vec<Template>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliverySpec {
    pub url: Template,
    pub headers: BTreeMap<String, Template>,
    pub signing: Option<Signing>,
    pub timeout_ms: u64,
    pub concurrency: u32,
    pub rate_per_second: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookSpec {
    pub description: Option<String>,
    pub on: Vec<EventPattern>,
    pub delivery: DeliverySpec,
    pub transform: Option<CodeRef>,
    pub filter: Option<Filter>,
    pub retry: RetryPolicy,
    /// Keys an earlier version accepted and this one no longer honours
    /// (`retry.disable_after_failures`). A stored declaration that has one
    /// still parses, so a webhook applied before keeps running; applying
    /// one is refused with these problems ([`WebhookSource::validate`](super::WebhookSource::validate)).
    #[serde(skip)]
    pub retired: Vec<Problem>,
}

impl WebhookSpec {
    /// Parses and validates a declaration; `Err` lists every problem.
    pub fn parse(text: &str) -> Result<WebhookSpec, Vec<Problem>> {
        let root = yaml::parse(text).map_err(|e| {
            vec![Problem {
                line: e.mark.line,
                column: e.mark.col,
                field: String::new(),
                message: e.message,
            }]
        })?;
        let mut cx = Cx::default();
        let spec = cx.webhook(&root);
        cx.problems.sort_by_key(|p| (p.line, p.column));
        match spec {
            Some(mut s) if cx.problems.is_empty() => {
                s.retired = cx.retired;
                Ok(s)
            }
            _ => Err(cx.problems),
        }
    }

    /// Every tenant secret the declaration references.
    pub fn secret_refs(&self) -> BTreeSet<String> {
        let d = &self.delivery;
        let mut all: BTreeSet<String> = d.url.secrets().map(String::from).collect();
        for h in d.headers.values() {
            all.extend(h.secrets().map(String::from));
        }
        for s in d.signing.iter().flat_map(|s| &s.secrets) {
            all.extend(s.secrets().map(String::from));
        }
        all
    }

    /// Whether an event of `event_type` is one this webhook follows.
    pub fn follows(&self, event_type: &str) -> bool {
        self.on.iter().any(|p| p.matches(event_type))
    }

    /// The code files the declaration needs from its bundle.
    pub fn code_files(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        if let Some(t) = &self.transform {
            out.insert(t.file.as_str());
        }
        if let Some(Filter::Code(c)) = &self.filter {
            out.insert(c.file.as_str());
        }
        out
    }
}

/// The validation pass: collects problems instead of stopping at the first.
#[derive(Default)]
struct Cx {
    problems: Vec<Problem>,
    retired: Vec<Problem>,
}

type Fields<'a> = BTreeMap<&'static str, &'a Node>;

impl Cx {
    fn problem(&mut self, mark: Mark, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: mark.line,
            column: mark.col,
            field: field.into(),
            message: message.into(),
        });
    }

    /// A mapping's entries by key; unknown keys are problems.
    fn fields<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        known: &[&'static str],
    ) -> Option<Fields<'a>> {
        let Value::Map(entries) = &node.value else {
            let want = if path.is_empty() {
                "the document"
            } else {
                path
            };
            self.problem(
                node.mark,
                path,
                format!("{want} must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let name = key_text(k);
            match known.iter().find(|n| **n == name) {
                Some(n) => {
                    out.insert(*n, v);
                }
                None => self.problem(
                    k.mark,
                    &join(path, &name),
                    format!("unknown key; expected one of: {}", known.join(", ")),
                ),
            }
        }
        Some(out)
    }

    fn required<'a>(
        &mut self,
        f: &Fields<'a>,
        parent: &Node,
        path: &str,
        key: &str,
    ) -> Option<&'a Node> {
        let found = f.get(key).copied();
        if found.is_none() {
            self.problem(parent.mark, &join(path, key), "is required");
        }
        found
    }

    fn string(&mut self, node: &Node, path: &str, chars_max: usize) -> Option<String> {
        match &node.value {
            Value::Str(s) if s.chars().count() <= chars_max => Some(s.clone()),
            Value::Str(_) => {
                self.problem(
                    node.mark,
                    path,
                    format!("longer than {chars_max} characters"),
                );
                None
            }
            _ => {
                self.problem(
                    node.mark,
                    path,
                    format!("must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn template(&mut self, node: &Node, path: &str, chars_max: usize) -> Option<Template> {
        let s = self.string(node, path, chars_max)?;
        match Template::parse(&s) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(node.mark, path, e);
                None
            }
        }
    }

    fn int(&mut self, node: Option<&Node>, path: &str, range: (u64, u64), default: u64) -> u64 {
        let Some(node) = node else { return default };
        match node.value {
            Value::Int(i) if i >= 0 && (range.0..=range.1).contains(&(i as u64)) => i as u64,
            Value::Int(_) => {
                self.problem(
                    node.mark,
                    path,
                    format!("must be from {} to {}", range.0, range.1),
                );
                default
            }
            _ => {
                self.problem(
                    node.mark,
                    path,
                    format!("must be an integer, found {}", node.kind()),
                );
                default
            }
        }
    }

    fn webhook(&mut self, root: &Node) -> Option<WebhookSpec> {
        let known = [
            "api_version",
            "description",
            "on",
            "delivery",
            "transform",
            "filter",
            "retry",
        ];
        let f = self.fields(root, "", &known)?;
        if let Some(v) = self.required(&f, root, "", "api_version")
            && v.as_str() != Some("v1")
        {
            self.problem(v.mark, "api_version", "must be `v1`");
        }
        let description = f
            .get("description")
            .and_then(|d| self.string(d, "description", DESCRIPTION_CHARS_MAX));
        let on = self
            .required(&f, root, "", "on")
            .and_then(|n| self.patterns(n));
        let delivery = self
            .required(&f, root, "", "delivery")
            .and_then(|n| self.delivery(n));
        let transform = f.get("transform").and_then(|n| self.code(n, "transform"));
        let filter = f.get("filter").and_then(|n| self.filter(n));
        let retry = match f.get("retry") {
            Some(n) => self.retry(n),
            None => Some(RetryPolicy::default()),
        };
        Some(WebhookSpec {
            description,
            on: on?,
            delivery: delivery?,
            transform,
            filter,
            retry: retry?,
            retired: Vec::new(),
        })
    }

    fn patterns(&mut self, node: &Node) -> Option<Vec<EventPattern>> {
        let items: Vec<&Node> = match &node.value {
            Value::Str(_) => vec![node],
            Value::Seq(items) if !items.is_empty() && items.len() <= PATTERNS_MAX => {
                items.iter().collect()
            }
            Value::Seq(_) => {
                self.problem(
                    node.mark,
                    "on",
                    format!("must list 1 to {PATTERNS_MAX} event patterns"),
                );
                return None;
            }
            _ => {
                self.problem(
                    node.mark,
                    "on",
                    format!("must be a list of event patterns, found {}", node.kind()),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("on[{i}]");
            let Some(s) = self.string(item, &path, 200) else {
                continue;
            };
            match s.parse::<EventPattern>() {
                Ok(p) => out.push(p),
                Err(e) => self.problem(item.mark, &path, e),
            }
        }
        Some(out)
    }

    fn delivery(&mut self, node: &Node) -> Option<DeliverySpec> {
        let known = [
            "url",
            "headers",
            "signing",
            "timeout_ms",
            "concurrency",
            "rate_per_second",
        ];
        let f = self.fields(node, "delivery", &known)?;
        let url = self
            .required(&f, node, "delivery", "url")
            .and_then(|n| self.url(n));
        let headers = match f.get("headers") {
            Some(h) => self.headers(h),
            None => Some(BTreeMap::new()),
        };
        let signing = f.get("signing").and_then(|n| self.signing(n));
        let timeout_ms = self.int(
            f.get("timeout_ms").copied(),
            "delivery.timeout_ms",
            (1, TIMEOUT_MS_MAX),
            TIMEOUT_MS_DEFAULT,
        );
        let concurrency = self.int(
            f.get("concurrency").copied(),
            "delivery.concurrency",
            (1, CONCURRENCY_MAX.into()),
            CONCURRENCY_DEFAULT.into(),
        ) as u32;
        let rate_per_second = self.int(
            f.get("rate_per_second").copied(),
            "delivery.rate_per_second",
            (1, RATE_PER_SECOND_MAX.into()),
            RATE_PER_SECOND_DEFAULT.into(),
        ) as u32;
        Some(DeliverySpec {
            url: url?,
            headers: headers?,
            signing,
            timeout_ms,
            concurrency,
            rate_per_second,
        })
    }

    fn url(&mut self, node: &Node) -> Option<Template> {
        let t = self.template(node, "delivery.url", URL_CHARS_MAX)?;
        // A URL that is entirely a secret is checked once resolved; a literal
        // one is checked now.
        if let Some(lit) = t.literal()
            && let Err(e) = check_url(&lit)
        {
            self.problem(node.mark, "delivery.url", e);
            return None;
        }
        Some(t)
    }

    fn headers(&mut self, node: &Node) -> Option<BTreeMap<String, Template>> {
        let Value::Map(entries) = &node.value else {
            self.problem(
                node.mark,
                "delivery.headers",
                format!("must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        if entries.len() > HEADERS_MAX {
            self.problem(
                node.mark,
                "delivery.headers",
                format!("at most {HEADERS_MAX} headers"),
            );
            return None;
        }
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let name = key_text(k).into_owned();
            let path = format!("delivery.headers.{name}");
            if let Some(why) = header_name_problem(&name) {
                self.problem(k.mark, &path, why);
                continue;
            }
            if let Some(t) = self.template(v, &path, HEADER_VALUE_CHARS_MAX) {
                out.insert(name, t);
            }
        }
        Some(out)
    }

    fn signing(&mut self, node: &Node) -> Option<Signing> {
        let f = self.fields(node, "delivery.signing", &["alg", "secret", "secrets"])?;
        if let Some(alg) = f.get("alg")
            && alg.as_str() != Some("HMAC-SHA256")
        {
            self.problem(
                alg.mark,
                "delivery.signing.alg",
                "only `HMAC-SHA256` (Standard Webhooks v1) is supported",
            );
        }
        let mut secrets = Vec::new();
        match (f.get("secret"), f.get("secrets")) {
            (Some(s), None) => secrets.extend(self.template(s, "delivery.signing.secret", 512)),
            (None, Some(list)) => match &list.value {
                Value::Seq(items) if !items.is_empty() && items.len() <= SIGNING_SECRETS_MAX => {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("delivery.signing.secrets[{i}]");
                        secrets.extend(self.template(item, &path, 512));
                    }
                }
                _ => self.problem(
                    list.mark,
                    "delivery.signing.secrets",
                    format!("must list 1 to {SIGNING_SECRETS_MAX} secrets (current first)"),
                ),
            },
            _ => self.problem(
                node.mark,
                "delivery.signing",
                "needs exactly one of `secret` or `secrets`",
            ),
        }
        (!secrets.is_empty()).then_some(Signing { secrets })
    }

    fn code(&mut self, node: &Node, path: &str) -> Option<CodeRef> {
        let f = self.fields(node, path, &["language", "entry"])?;
        let language = self.required(&f, node, path, "language").and_then(|n| {
            let lp = format!("{path}.language");
            match n.as_str() {
                Some("javascript" | "js") => Some(Language::Javascript),
                Some("typescript" | "ts") => Some(Language::Typescript),
                Some(other) => {
                    self.problem(
                        n.mark,
                        &lp,
                        format!(
                            "`{}` is not supported: transforms and filters are JavaScript or TypeScript (`javascript`, `typescript`)",
                            crate::error::truncate_for_error(other)
                        ),
                    );
                    None
                }
                None => {
                    self.problem(n.mark, &lp, format!("must be a string, found {}", n.kind()));
                    None
                }
            }
        });
        let entry_path = format!("{path}.entry");
        let entry = self
            .required(&f, node, path, "entry")
            .and_then(|n| Some((n, self.string(n, &entry_path, 300)?)));
        let (entry_node, entry) = entry?;
        let default_export = if path == "filter" {
            "filter"
        } else {
            "transform"
        };
        match parse_entry(&entry, default_export, language?) {
            Ok((file, export)) => Some(CodeRef {
                language: language?,
                file,
                export,
            }),
            Err(e) => {
                self.problem(entry_node.mark, &entry_path, e);
                None
            }
        }
    }

    fn filter(&mut self, node: &Node) -> Option<Filter> {
        let Value::Map(entries) = &node.value else {
            self.problem(
                node.mark,
                "filter",
                format!("must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        if entries.iter().any(|(k, _)| key_text(k) == "equals") {
            let f = self.fields(node, "filter", &["equals"])?;
            let eq = f.get("equals")?;
            let Value::Map(conds) = &eq.value else {
                self.problem(
                    eq.mark,
                    "filter.equals",
                    "must map field paths to values, e.g. {\"data.plan\": \"pro\"}",
                );
                return None;
            };
            if conds.is_empty() || conds.len() > FILTER_CONDITIONS_MAX {
                self.problem(
                    eq.mark,
                    "filter.equals",
                    format!("must hold 1 to {FILTER_CONDITIONS_MAX} conditions"),
                );
                return None;
            }
            let mut out = Vec::new();
            for (k, v) in conds {
                let path = key_text(k).into_owned();
                let scalar = match &v.value {
                    Value::Null => serde_json::Value::Null,
                    Value::Bool(b) => (*b).into(),
                    Value::Int(i) => (*i).into(),
                    Value::Float(f) => serde_json::json!(f),
                    Value::Str(s) => s.clone().into(),
                    _ => {
                        self.problem(
                            v.mark,
                            &format!("filter.equals.{path}"),
                            "must be a scalar value",
                        );
                        continue;
                    }
                };
                out.push((path, scalar));
            }
            return Some(Filter::Equals(out));
        }
        self.code(node, "filter").map(Filter::Code)
    }

    fn retry(&mut self, node: &Node) -> Option<RetryPolicy> {
        let known = [
            "max_attempts",
            "backoff",
            "initial_interval_ms",
            "max_interval_ms",
            "interval_ms",
            "disable_after_failures",
        ];
        let f = self.fields(node, "retry", &known)?;
        let max_attempts = self.int(
            f.get("max_attempts").copied(),
            "retry.max_attempts",
            (1, MAX_ATTEMPTS_MAX.into()),
            MAX_ATTEMPTS_DEFAULT.into(),
        ) as u32;
        let default = RetryPolicy::default();
        let kind = f.get("backoff").map(|b| (b, b.as_str()));
        let backoff = match kind {
            None | Some((_, Some("exponential"))) => {
                let Backoff::Exponential { initial_ms, max_ms } = default.backoff else {
                    unreachable!("the default backoff is exponential")
                };
                let initial_ms = self.int(
                    f.get("initial_interval_ms").copied(),
                    "retry.initial_interval_ms",
                    (1, INTERVAL_MS_MAX),
                    initial_ms,
                );
                let max_ms = self.int(
                    f.get("max_interval_ms").copied(),
                    "retry.max_interval_ms",
                    (1, INTERVAL_MS_MAX),
                    max_ms.max(initial_ms),
                );
                if max_ms < initial_ms {
                    self.problem(
                        node.mark,
                        "retry.max_interval_ms",
                        "must not be below initial_interval_ms",
                    );
                }
                Backoff::Exponential { initial_ms, max_ms }
            }
            Some((_, Some("fixed"))) => {
                let interval_ms = self.int(
                    f.get("interval_ms").copied(),
                    "retry.interval_ms",
                    (1, INTERVAL_MS_MAX),
                    60_000,
                );
                Backoff::Fixed { interval_ms }
            }
            Some((b, _)) => {
                self.problem(b.mark, "retry.backoff", "must be `exponential` or `fixed`");
                return None;
            }
        };
        if let Some(n) = f.get("disable_after_failures") {
            self.retired.push(Problem {
                line: n.mark.line,
                column: n.mark.col,
                field: "retry.disable_after_failures".into(),
                message: "is no longer supported: a webhook is disabled only after failing \
                          without a single success for the platform's period (default 5 days, \
                          EXTENSOR_WEBHOOK_DISABLE_AFTER_FAILING_SECS); remove the key"
                    .into(),
            });
        }
        Some(RetryPolicy {
            max_attempts,
            backoff,
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `file.js#export` → (file, export), checking the file path and extension.
fn parse_entry(
    entry: &str,
    default_export: &str,
    lang: Language,
) -> Result<(String, String), String> {
    let (file, export) = match entry.split_once('#') {
        Some((f, e)) => (f, e),
        None => (entry, default_export),
    };
    let ident_ok = !export.is_empty()
        && !export.as_bytes()[0].is_ascii_digit()
        && export
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
    if !ident_ok {
        return Err(format!("`{export}` is not a JavaScript export name"));
    }
    if let Some(why) = relative_path_problem(file) {
        return Err(why);
    }
    let ext_ok = match lang {
        Language::Javascript => file.ends_with(".js") || file.ends_with(".mjs"),
        Language::Typescript => file.ends_with(".ts"),
    };
    if !ext_ok {
        return Err(format!(
            "`{file}` does not match the language (javascript: .js/.mjs, typescript: .ts)"
        ));
    }
    Ok((file.to_owned(), export.to_owned()))
}

/// `None` when `path` is a plain relative path inside the webhook's files.
pub fn relative_path_problem(path: &str) -> Option<String> {
    let ok = !path.is_empty()
        && path.len() <= 200
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b));
    (!ok).then(|| {
        format!(
            "`{}` must be a relative path inside the webhook's files (no `..`, no leading `/`)",
            crate::error::truncate_for_error(path)
        )
    })
}

/// Scheme and shape of a delivery URL (reachability is the SSRF guard's job).
pub fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| {
            format!(
                "`{}` must be an http:// or https:// URL",
                crate::error::truncate_for_error(url)
            )
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{}` must name a host, without credentials or spaces",
            crate::error::truncate_for_error(url)
        ));
    }
    Ok(())
}

fn header_name_problem(name: &str) -> Option<String> {
    let token = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Some(format!(
            "`{}` is not an HTTP header name",
            crate::error::truncate_for_error(name)
        ));
    }
    let lower = name.to_ascii_lowercase();
    let reserved = lower.starts_with("webhook-")
        || [
            "content-type",
            "content-length",
            "host",
            "transfer-encoding",
            "connection",
        ]
        .contains(&lower.as_str());
    reserved.then(|| format!("`{name}` is set by Extensor and may not be overridden"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/webhooks/build-completed/webhook.yaml");

    fn problems(yaml: &str) -> Vec<Problem> {
        WebhookSpec::parse(yaml).unwrap_err()
    }

    fn at(ps: &[Problem], line: usize, column: usize) -> &Problem {
        ps.iter()
            .find(|p| (p.line, p.column) == (line, column))
            .unwrap_or_else(|| panic!("no problem at {line}:{column} in {ps:#?}"))
    }

    #[test]
    fn the_documented_example_parses() {
        let s = WebhookSpec::parse(EXAMPLE).unwrap();
        assert!(s.follows("build.completed") && s.follows("auth.user.created"));
        assert!(!s.follows("auth.user") && !s.follows("build.started"));
        assert_eq!(
            s.secret_refs().into_iter().collect::<Vec<_>>(),
            vec!["WEBHOOK_SIGNING_KEY", "WEBHOOK_URL"]
        );
        let t = s.transform.as_ref().unwrap();
        assert_eq!(
            (t.file.as_str(), t.export.as_str()),
            ("transforms/build_completed.js", "transform")
        );
        assert_eq!(s.delivery.timeout_ms, 10_000);
        assert_eq!(s.retry.max_attempts, 6);
        assert_eq!(
            s.filter,
            Some(Filter::Equals(vec![("data.branch".into(), "main".into())]))
        );
    }

    #[test]
    fn the_docs_show_the_tested_example_verbatim() {
        let docs = include_str!("../../../docs/WEBHOOKS_AS_CODE.md");
        let js = include_str!(
            "../../../examples/webhooks/build-completed/transforms/build_completed.js"
        );
        assert!(
            docs.contains(EXAMPLE),
            "docs/WEBHOOKS_AS_CODE.md must quote the example YAML"
        );
        assert!(
            docs.contains(js),
            "docs/WEBHOOKS_AS_CODE.md must quote the example transform"
        );
    }

    #[test]
    fn the_seed_format_minimal_and_defaults() {
        let s = WebhookSpec::parse(
            "api_version: v1\non: \"*\"\ndelivery:\n  url: https://example.com/hook\n",
        )
        .unwrap();
        assert!(s.follows("anything.at.all"));
        assert_eq!(s.retry, RetryPolicy::default());
        assert_eq!(s.delivery.concurrency, CONCURRENCY_DEFAULT);
        assert!(s.transform.is_none() && s.delivery.signing.is_none());
    }

    #[test]
    fn python_transform_gets_a_clear_error_at_its_place() {
        let yaml = "api_version: v1\non: [a.b]\ndelivery: {url: \"https://x.test/\"}\ntransform:\n  language: python\n  entry: t.py#transform\n";
        let ps = problems(yaml);
        let p = at(&ps, 5, 13);
        assert_eq!(p.field, "transform.language");
        assert!(p.message.contains("JavaScript or TypeScript"), "{p}");
    }

    #[test]
    fn every_problem_is_listed_with_line_and_column() {
        let yaml = "\
api_version: v2
on: [\"build..x\", 5, \"auth.*.user\"]
delivery:
  url: \"ftp://example.com\"
  timeout_ms: \"fast\"
  headers: {Content-Type: x, \"bad header\": y}
  signing: {alg: MD5, secret: \"${ENV:X}\"}
  concurrency: 0
retry: {max_attempts: 99, backoff: linear}
colour: blue
";
        let ps = problems(yaml);
        let want = [
            (1, 14, "api_version"),
            (2, 6, "on[0]"),
            (2, 18, "on[1]"),
            (2, 21, "on[2]"),
            (4, 8, "delivery.url"),
            (5, 15, "delivery.timeout_ms"),
            (6, 13, "delivery.headers.Content-Type"),
            (6, 30, "delivery.headers.bad header"),
            (7, 18, "delivery.signing.alg"),
            (7, 31, "delivery.signing.secret"),
            (8, 16, "delivery.concurrency"),
            (9, 23, "retry.max_attempts"),
            (9, 36, "retry.backoff"),
            (10, 1, "colour"),
        ];
        for (line, col, field) in want {
            assert_eq!(at(&ps, line, col).field, field, "{ps:#?}");
        }
        assert_eq!(ps.len(), want.len(), "{ps:#?}");
    }

    #[test]
    fn wrong_types_and_missing_keys() {
        let ps = problems("api_version: v1\non: {a: 1}\n");
        assert!(at(&ps, 2, 5).message.contains("list of event patterns"));
        assert!(at(&ps, 1, 1).field == "delivery" && at(&ps, 1, 1).message == "is required");
        let ps = problems("- just\n- a list\n");
        assert!(at(&ps, 1, 1).message.contains("must be a mapping"));
        let ps = problems("");
        assert!(ps[0].message.contains("must be a mapping, found null"));
        let ps = problems(
            "api_version: v1\non: [a]\ndelivery: {url: \"https://x.test\"}\ntransform: {language: typescript, entry: \"../x.ts#f\"}\nfilter: {language: javascript, entry: \"f.ts#1x\"}\n",
        );
        assert!(at(&ps, 4, 42).message.contains("relative path"));
        assert!(at(&ps, 5, 39).message.contains("export name"));
    }

    #[test]
    fn templates() {
        let t = Template::parse("https://${SECRET:HOST}/x?k=${SECRET:K}").unwrap();
        assert_eq!(t.secrets().collect::<Vec<_>>(), vec!["HOST", "K"]);
        let lookup = |n: &str| (n == "HOST").then(|| "h.example".to_string());
        assert_eq!(t.resolve(&lookup), Err("K".into()));
        let both = |n: &str| Some(format!("<{n}>"));
        assert_eq!(t.resolve(&both).unwrap(), "https://<HOST>/x?k=<K>");
        assert!(Template::parse("${SECRET:").is_err());
        assert!(Template::parse("${SECRET:a b}").is_err());
        assert!(
            Template::parse("${HOME}")
                .unwrap_err()
                .contains("only `${SECRET:NAME}`")
        );
        assert_eq!(
            Template::parse("plain").unwrap().literal().as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn patterns() {
        for ok in ["*", "a", "auth.user.*", "build.completed", "a-b.c_d"] {
            assert!(ok.parse::<EventPattern>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "*.a",
            "a.*.b",
            "a b",
            "auth.user*",
            "**",
        ] {
            assert!(bad.parse::<EventPattern>().is_err(), "{bad}");
        }
        let p: EventPattern = "auth.user.*".parse().unwrap();
        assert!(p.matches("auth.user.created") && p.matches("auth.user.a.b"));
        assert!(!p.matches("auth.user") && !p.matches("auth.users.x"));
    }
}
