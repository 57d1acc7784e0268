//! Property tests of the core parsers that take untrusted bytes: plugin
//! manifests, webhook YAML, cron schedules and event payloads. Generated
//! hostile input (random bytes, mutated valid documents, deep nesting,
//! oversized values) must never panic; every error names the problem and
//! where it is; the documented limits hold. Seeds are fixed and case counts
//! bounded so CI is fast and a failure reproduces.

use chrono::{TimeZone, Utc};
use extensor_core::Error;
use extensor_core::event::{EventMeta, NewEvent, PAYLOAD_BYTES_MAX, Principal, StreamId};
use extensor_core::ids::TenantId;
use extensor_core::manifest::{MANIFEST_BYTES_MAX, PluginManifest, event_type_problem};
use extensor_core::schedule::JobSchedule;
use extensor_core::webhook::WebhookSpec;
use extensor_core::webhook::yaml::{YAML_BYTES_MAX, YAML_DEPTH_MAX};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Value, json};

/// Cases per property: enough to find shallow bugs, few enough for CI.
const CASES: u32 = 256;

fn config() -> Config {
    Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(0x5eed_0013),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Any JSON value, nested up to 6 levels, with hostile strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 128, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings that parsers trip on: control characters, separators, unicode,
/// path tricks, very long runs.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[a-z.*_-]{0,40}",
        Just(String::new()),
        Just("../../etc/passwd".to_owned()),
        Just("\u{0}\r\n\t".to_owned()),
        Just("platform.admin_token_set".to_owned()),
        (1usize..3000).prop_map(|n| "a".repeat(n)),
        "[\u{80}-\u{10ffff}]{1,8}",
    ]
}

fn valid_manifest() -> Value {
    json!({
        "slug": "shop", "name": "Shop", "version": "1.0.0", "entry": "main.js",
        "permissions": ["routes.public", "files.read"],
        "hooks": ["order.created"],
        "routes": [{"method": "GET", "path": "/items/:id", "public": true}],
        "jobs": [{"name": "nightly", "schedule": "0 3 * * *", "timezone": "Europe/London"}],
        "limits": {"memory_mb": 16, "timeout_ms": 500},
    })
}

/// A valid manifest with one field (at any depth) replaced by generated JSON.
fn mutated_manifest() -> impl Strategy<Value = Value> {
    let paths: Vec<Vec<&'static str>> = vec![
        vec!["slug"],
        vec!["version"],
        vec!["entry"],
        vec!["permissions"],
        vec!["hooks"],
        vec!["routes"],
        vec!["jobs"],
        vec!["limits"],
        vec!["limits", "memory_mb"],
        vec!["allowed_hosts"],
        vec!["extra_field"],
    ];
    (prop::sample::select(paths), json_value()).prop_map(|(path, v)| {
        let mut m = valid_manifest();
        let mut at = &mut m;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                at[*key] = v.clone();
            } else {
                at = &mut at[*key];
            }
        }
        m
    })
}

fn assert_manifest_problems(result: Result<PluginManifest, Error>) {
    match result {
        Ok(_) => {}
        Err(Error::InvalidManifest(problems)) => {
            assert!(!problems.is_empty(), "an error lists its problems");
            for p in &problems {
                assert!(p.path.starts_with('$'), "located by JSON path: {p:?}");
                assert!(!p.message.is_empty(), "{p:?}");
            }
        }
        Err(other) => panic!("manifest errors are InvalidManifest, got {other}"),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn manifests_from_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_manifest_problems(PluginManifest::parse(&bytes));
    }

    #[test]
    fn manifests_of_any_json_name_every_problem(v in json_value()) {
        assert_manifest_problems(PluginManifest::parse(v.to_string().as_bytes()));
    }

    #[test]
    fn mutated_manifests_name_the_field(v in mutated_manifest()) {
        assert_manifest_problems(PluginManifest::parse(v.to_string().as_bytes()));
    }
}

#[test]
fn an_oversized_manifest_is_refused_before_parsing() {
    let mut m = valid_manifest();
    m["description"] = json!("x".repeat(MANIFEST_BYTES_MAX));
    match PluginManifest::parse(m.to_string().as_bytes()) {
        Err(Error::InvalidManifest(p)) => {
            assert_eq!(p[0].path, "$");
            assert!(
                p[0].message.contains(&MANIFEST_BYTES_MAX.to_string()),
                "{p:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

const VALID_WEBHOOK: &str = "api_version: v1
on: [\"order.*\", \"invoice.paid\"]
filter: {equals: {\"data.branch\": \"main\"}}
delivery:
  url: \"${SECRET:URL}\"
  headers:
    X-Env: prod
  timeout_ms: 5000
  concurrency: 4
retry:
  max_attempts: 5
  backoff: exponential
";

/// YAML that abuses the parser: random text, mutated lines of a valid
/// declaration, deep nesting, anchors and aliases, tags, many documents.
fn hostile_yaml() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = VALID_WEBHOOK.lines().collect();
    let swapped = lines.clone();
    let n = lines.len();
    prop_oneof![
        ".{0,200}",
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (0..n, hostile_string()).prop_map(move |(i, s)| {
            let mut l: Vec<String> = lines.iter().map(|x| (*x).to_owned()).collect();
            l[i] = s;
            l.join("\n")
        }),
        (0..n, 0..n).prop_map(move |(i, j)| {
            let mut l: Vec<&str> = swapped.clone();
            l.swap(i, j);
            l.join("\n")
        }),
        (1usize..200).prop_map(|d| format!("api_version: {}1{}", "[".repeat(d), "]".repeat(d))),
        (1usize..200).prop_map(|d| {
            let mut s = String::new();
            for i in 0..d {
                s.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
            }
            s
        }),
        (1usize..50).prop_map(|n| {
            let mut s = "a: &a [x, x]\n".to_owned();
            for i in 0..n {
                s.push_str(&format!("b{i}: *a\n"));
            }
            s
        }),
        Just("api_version: !!binary aGk=\n".to_owned()),
        Just(format!("{VALID_WEBHOOK}---\n{VALID_WEBHOOK}")),
    ]
}

fn assert_webhook_problems(text: &str) {
    if let Err(problems) = WebhookSpec::parse(text) {
        assert!(!problems.is_empty());
        for p in &problems {
            assert!(p.line >= 1 && p.column >= 1, "located: {p}");
            assert!(!p.message.is_empty(), "{p}");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn webhook_yaml_never_panics_and_locates_problems(text in hostile_yaml()) {
        assert_webhook_problems(&text);
    }
}

#[test]
fn webhook_yaml_limits_hold() {
    let big = format!(
        "{VALID_WEBHOOK}description: \"{}\"\n",
        "x".repeat(YAML_BYTES_MAX)
    );
    let problems = WebhookSpec::parse(&big).unwrap_err();
    assert!(
        problems[0].message.contains(&YAML_BYTES_MAX.to_string()),
        "{}",
        problems[0]
    );
    let deep = format!(
        "api_version: {}1{}",
        "[".repeat(YAML_DEPTH_MAX + 1),
        "]".repeat(YAML_DEPTH_MAX + 1)
    );
    let problems = WebhookSpec::parse(&deep).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("deep") || p.message.contains("depth")),
        "{problems:?}"
    );
    if let Err(p) = WebhookSpec::parse(VALID_WEBHOOK) {
        panic!("{p:?}");
    }
}

fn cron_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        Just("?".to_owned()),
        (0u64..100).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u32..70).prop_map(|n| format!("*/{n}")),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a},{b}")),
        Just("L".to_owned()),
        Just("5W".to_owned()),
        Just("MON-FRI".to_owned()),
        Just("JAN".to_owned()),
        Just("2#3".to_owned()),
        "[ -~]{0,6}",
    ]
}

fn timezone() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("UTC".to_owned()),
        Just("Europe/London".to_owned()),
        Just("America/New_York".to_owned()),
        Just("Australia/Lord_Howe".to_owned()),
        ".{0,20}",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any expression either parses, and then walks forward strictly in
    /// time (across DST changes), or is refused naming the expression.
    #[test]
    fn cron_schedules_parse_or_name_the_field(
        fields in prop::collection::vec(cron_field(), 0..8),
        tz in timezone(),
    ) {
        let expr = fields.join(" ");
        match JobSchedule::new(&expr, &tz) {
            Ok(s) => {
                let mut at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
                for _ in 0..20 {
                    match s.next_after(at) {
                        Some(next) => {
                            prop_assert!(next > at, "{expr} in {tz}: {next} after {at}");
                            at = next;
                        }
                        None => break,
                    }
                }
            }
            Err(Error::InvalidValue { what, reason, .. }) => {
                prop_assert!(what == "schedule" || what == "timezone");
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Event types and payloads as `POST /api/events` and `ctx.emit` take
    /// them: the type check and the event's own validation never panic, and
    /// a refused type says why.
    #[test]
    fn event_types_and_payloads_are_checked_without_panicking(
        event_type in hostile_string(),
        data in json_value(),
    ) {
        let checked = event_type_problem(&event_type);
        if let Some(reason) = checked {
            prop_assert!(!reason.is_empty());
        }
        let tenant = TenantId::generate();
        let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
        match NewEvent::new(&event_type, 1, meta, &data) {
            Ok(ev) => {
                let verdict = ev.validate(&StreamId::business_events(&tenant));
                if checked.is_none() && ev.payload.get().len() <= PAYLOAD_BYTES_MAX {
                    prop_assert!(verdict.is_ok(), "{event_type}: {verdict:?}");
                }
                if let Err(e) = verdict {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn oversized_payloads_are_refused_naming_the_limit() {
    let tenant = TenantId::generate();
    let meta = EventMeta::new(Some(tenant.clone()), Principal::system());
    let big = json!({"blob": "x".repeat(PAYLOAD_BYTES_MAX)});
    let err = match NewEvent::new("order.created", 1, meta, &big) {
        Err(e) => e,
        Ok(ev) => ev
            .validate(&StreamId::business_events(&tenant))
            .unwrap_err(),
    };
    assert!(
        err.to_string().contains(&PAYLOAD_BYTES_MAX.to_string()),
        "{err}"
    );
}
