//! The OpenAPI document as served (`/openapi.yaml`, `/openapi.json`) and
//! committed (`openapi.yaml`): poem-openapi's document with two structural
//! corrections that make it exact for validators and client generators, and
//! the `Allow` header of `405` answers derived from it.
//!
//! The corrections (each a fact about how poem-openapi serializes, so they
//! hold for every type without per-field annotations):
//! - **nullable optionals**: an `Option<T>` field is serialized as `null`
//!   when it is `None` (and `null` is accepted for it in requests), but
//!   poem-openapi only marks it "not required". Every object property that
//!   is not required and has no `default` is such a field; it gets
//!   `nullable: true`.
//! - **unsigned integers are not negative**: `u32` is `format: uint32`,
//!   which validators ignore; each gets its `minimum` and `maximum`.
//! - **closed objects**: a request type with `deny_unknown_fields`
//!   refuses other properties, but poem-openapi does not say so; the types
//!   in [`CLOSED_OBJECTS`] and every `multipart/form-data` body (the one
//!   `Multipart` type, `plugins::PluginUpload`, denies them too) get
//!   `additionalProperties: false` (unit tests check that each really
//!   refuses an unknown property).
//! - **no `allOf` of a reference and a patch**: a documented field of a
//!   named type is emitted as `allOf: [{$ref}, {description, default…}]`,
//!   which generators read as an intersection with a non-object (and drop
//!   the schema: openapi-python-client did, for every enum field). The patch
//!   is lifted beside a one-element `allOf`.
//!
//! The YAML also quotes the plain scalars that YAML 1.1 readers take for
//! booleans (`on`, `yes`, `n`…): serde_yaml writes YAML 1.2 and leaves them
//! bare, and PyYAML (openapi-python-client's reader) then saw the webhook
//! field `on` as `true`.
//!
//! Constraints (lengths, patterns, ranges) are not added here: they are
//! declared where they are enforced, as poem-openapi validators on the
//! parameters and fields themselves.

use std::sync::OnceLock;

use serde_yaml::{Mapping, Value};

/// Request types declared with `#[oai(deny_unknown_fields)]` (by the name
/// the document gives them).
pub const CLOSED_OBJECTS: [&str; 3] = ["ReplayRequest", "SecretValue", "WebhookJson"];

/// The range of each unsigned integer format poem-openapi emits.
const UNSIGNED_MAX: [(&str, u64); 4] = [
    ("uint8", u8::MAX as u64),
    ("uint16", u16::MAX as u64),
    ("uint32", u32::MAX as u64),
    ("uint64", u64::MAX),
];

/// The HTTP methods an OpenAPI path item may hold, as poem routes them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

struct Document {
    yaml: String,
    json: String,
    /// Each path template split into segments (`None` for `{param}`), with
    /// its methods for `Allow`, most specific (most literal segments) first.
    routes: Vec<(Vec<Option<String>>, String)>,
}

fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let raw = crate::server::api_service().spec_yaml();
        let mut doc: Value = serde_yaml::from_str(&raw).expect("poem-openapi emits valid YAML");
        correct(&mut doc);
        close_objects(&mut doc);
        let yaml =
            quote_yaml11_booleans(&serde_yaml::to_string(&doc).expect("a YAML value serializes"));
        assert_eq!(
            serde_yaml::from_str::<Value>(&yaml).ok().as_ref(),
            Some(&doc),
            "quoting changed the document"
        );
        Document {
            yaml,
            json: serde_json::to_string_pretty(&doc).expect("a YAML document is JSON-compatible"),
            routes: routes(&doc),
        }
    })
}

/// The document as YAML (what `extensor openapi` prints).
pub fn yaml() -> &'static str {
    &document().yaml
}

/// The document as JSON.
pub fn json() -> &'static str {
    &document().json
}

/// The `Allow` value for `path` (`GET, DELETE`): the methods the document
/// lists for the most specific path template matching it; `None` when no
/// operation's path matches.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    document()
        .routes
        .iter()
        .find(|(template, _)| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.as_deref().is_none_or(|lit| lit == *s))
        })
        .map(|(_, allow)| allow.as_str())
}

fn routes(doc: &Value) -> Vec<(Vec<Option<String>>, String)> {
    let mut out: Vec<(Vec<Option<String>>, String)> = doc["paths"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(path, item)| {
            let template = path
                .as_str()?
                .trim_end_matches('/')
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect();
            let allow: Vec<String> = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_ascii_uppercase())
                .collect();
            Some((template, allow.join(", ")))
        })
        .collect();
    out.sort_by_key(|(t, _)| std::cmp::Reverse(t.iter().filter(|s| s.is_some()).count()));
    out
}

/// Plain scalars YAML 1.1 reads as booleans and YAML 1.2 as strings
/// (`true` and `false` are booleans in both, and serde_yaml quotes them
/// when they are strings).
const YAML11_BOOLEANS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// Quotes YAML 1.1 booleans where serde_yaml writes them bare: as a
/// mapping key (`on:`), a sequence item (`- on`) or a value (`k: on`).
fn quote_yaml11_booleans(yaml: &str) -> String {
    let quote = |s: &str| {
        if YAML11_BOOLEANS.contains(&s) {
            format!("'{s}'")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::with_capacity(yaml.len() + 64);
    for line in yaml.lines() {
        let body = line.trim_start();
        let (indent, body) = line.split_at(line.len() - body.len());
        let (item, body) = match body.strip_prefix("- ") {
            Some(rest) => ("- ", rest),
            None => ("", body),
        };
        let fixed = match body.split_once(": ") {
            Some((k, v)) => format!("{}: {}", quote(k), quote(v)),
            None => match body.strip_suffix(':') {
                Some(k) => format!("{}:", quote(k)),
                None => quote(body),
            },
        };
        out.push_str(indent);
        out.push_str(item);
        out.push_str(&fixed);
        out.push('\n');
    }
    out
}

/// Applies both corrections everywhere in the document.
fn correct(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            lift_all_of_patch(map);
            mark_nullable_optionals(map);
            bound_unsigned(map);
            for (_, v) in map.iter_mut() {
                correct(v);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(correct),
        _ => {}
    }
}

/// `format: uint32` (and its kin) → `minimum: 0`, `maximum: 4294967295`,
/// unless a validator already narrowed them.
fn bound_unsigned(map: &mut Mapping) {
    let Some(max) = map
        .get("format")
        .and_then(Value::as_str)
        .and_then(|f| UNSIGNED_MAX.iter().find(|(name, _)| *name == f))
        .map(|(_, max)| *max)
    else {
        return;
    };
    map.entry("minimum".into()).or_insert(Value::from(0));
    map.entry("maximum".into()).or_insert(Value::from(max));
}

/// `additionalProperties: false` on the [`CLOSED_OBJECTS`] and on the
/// schema of every `multipart/form-data` body.
fn close_objects(doc: &mut Value) {
    fn close(value: &mut Value, multipart: bool) {
        match value {
            Value::Mapping(map) => {
                let named = map
                    .get("title")
                    .and_then(Value::as_str)
                    .is_some_and(|t| CLOSED_OBJECTS.contains(&t));
                if map.get("type").and_then(Value::as_str) == Some("object") && (named || multipart)
                {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                for (k, v) in map.iter_mut() {
                    let k = k.as_str();
                    // The media type, then its `schema`.
                    let inside =
                        k == Some("multipart/form-data") || (multipart && k == Some("schema"));
                    close(v, inside);
                }
            }
            Value::Sequence(items) => items.iter_mut().for_each(|v| close(v, false)),
            _ => {}
        }
    }
    close(doc, false);
}

/// `allOf: [{$ref}, {patch}]` → `allOf: [{$ref}]` with the patch's keys
/// beside it (only when the patch is annotations, not a second schema).
fn lift_all_of_patch(map: &mut Mapping) {
    let Some(Value::Sequence(parts)) = map.get("allOf") else {
        return;
    };
    let [first, Value::Mapping(patch)] = parts.as_slice() else {
        return;
    };
    let annotation_only = patch.keys().all(|k| {
        matches!(
            k.as_str(),
            Some("description" | "default" | "nullable" | "readOnly" | "writeOnly" | "deprecated")
        )
    });
    if first.get("$ref").is_none() || !annotation_only {
        return;
    }
    let (first, patch) = (first.clone(), patch.clone());
    map.insert("allOf".into(), Value::Sequence(vec![first]));
    for (k, v) in patch {
        map.entry(k).or_insert(v);
    }
}

/// Object properties that are neither required nor defaulted are `Option`s:
/// `nullable: true`. A bare `$ref` is wrapped in a one-element `allOf`
/// first, since OpenAPI 3.0 ignores the siblings of a `$ref`.
fn mark_nullable_optionals(map: &mut Mapping) {
    let required: Vec<String> = map
        .get("required")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let Some(Value::Mapping(properties)) = map.get_mut("properties") else {
        return;
    };
    for (name, schema) in properties.iter_mut() {
        let optional = name
            .as_str()
            .is_some_and(|n| !required.iter().any(|r| r == n));
        if let Value::Mapping(schema) = schema
            && optional
            && !schema.contains_key("default")
        {
            if let Some(reference) = schema.remove("$ref") {
                let mut target = Mapping::new();
                target.insert("$ref".into(), reference);
                schema.insert(
                    "allOf".into(),
                    Value::Sequence(vec![Value::Mapping(target)]),
                );
            }
            schema.insert("nullable".into(), Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enum_field_with_a_description_is_one_reference_with_annotations() {
        let mut doc: Value = serde_yaml::from_str(
            "type: object\nrequired: [role]\nproperties:\n  role:\n    allOf:\n    - $ref: '#/components/schemas/RoleName'\n    - description: the role\n      default: viewer\n",
        )
        .unwrap();
        correct(&mut doc);
        let role = &doc["properties"]["role"];
        assert_eq!(role["allOf"].as_sequence().unwrap().len(), 1);
        assert_eq!(role["description"], "the role");
        assert_eq!(role["default"], "viewer");
        assert!(role.get("nullable").is_none(), "required and defaulted");
    }

    #[test]
    fn only_optional_undefaulted_properties_become_nullable() {
        let mut doc: Value = serde_yaml::from_str(
            "type: object\nrequired: [a]\nproperties:\n  a: {type: string}\n  b: {type: string}\n  c: {type: array, default: []}\n  d: {$ref: '#/components/schemas/D'}\n",
        )
        .unwrap();
        correct(&mut doc);
        let p = &doc["properties"];
        assert!(p["a"].get("nullable").is_none());
        assert_eq!(p["b"]["nullable"], true);
        assert!(p["c"].get("nullable").is_none());
        assert_eq!(p["d"]["nullable"], true);
        assert_eq!(p["d"]["allOf"][0]["$ref"], "#/components/schemas/D");
        assert!(p["d"].get("$ref").is_none(), "no sibling of a $ref");
    }

    #[test]
    fn yaml11_booleans_are_quoted_and_nothing_else_changes() {
        let text = "on:\n- on\n- once\nk: off\nm: 'on'\n";
        assert_eq!(
            quote_yaml11_booleans(text),
            "'on':\n- 'on'\n- once\nk: 'off'\nm: 'on'\n"
        );
        assert!(yaml().contains("'on':"), "the webhook field `on` is quoted");
    }

    #[test]
    fn the_closed_objects_refuse_an_unknown_property_and_say_so() {
        use poem_openapi::types::ParseFromJSON;
        use serde_json::json;
        let extra = |mut v: serde_json::Value| {
            v["unknown"] = json!(1);
            Some(v)
        };
        let at = "2026-01-01T00:00:00Z";
        let replay = json!({"from": at, "to": at});
        assert!(crate::webhooks::ReplayRequest::parse_from_json(Some(replay.clone())).is_ok());
        assert!(crate::webhooks::ReplayRequest::parse_from_json(extra(replay)).is_err());
        let value = json!({"value": "v"});
        assert!(crate::tenant_secrets::SecretValue::parse_from_json(Some(value.clone())).is_ok());
        assert!(crate::tenant_secrets::SecretValue::parse_from_json(extra(value)).is_err());
        let source = json!({"yaml": "y"});
        assert!(crate::webhook_body::WebhookJson::parse_from_json(Some(source.clone())).is_ok());
        assert!(crate::webhook_body::WebhookJson::parse_from_json(extra(source)).is_err());
        let doc: serde_json::Value = serde_json::from_str(json()).unwrap();
        for name in CLOSED_OBJECTS {
            assert_eq!(
                doc["components"]["schemas"][name]["additionalProperties"], false,
                "{name}"
            );
        }
        let upload = &doc["paths"]["/api/plugins/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]
            ["schema"];
        assert_eq!(upload["additionalProperties"], false);
    }

    #[test]
    fn unsigned_integers_have_their_range() {
        let doc: serde_json::Value = serde_json::from_str(json()).unwrap();
        let after = doc["paths"]["/api/events"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "after")
            .unwrap();
        assert_eq!(after["schema"]["minimum"].as_f64(), Some(0.0));
        let limit = doc["paths"]["/api/events"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        let bound = |k: &str| limit["schema"][k].as_f64();
        assert_eq!(
            (bound("minimum"), bound("maximum")),
            (Some(1.0), Some(1000.0))
        );
    }

    #[test]
    fn allow_lists_the_methods_of_the_most_specific_path() {
        assert_eq!(allowed_methods("/api/plugins/upload"), Some("POST"));
        assert_eq!(allowed_methods("/api/plugins/ins_1"), Some("GET, DELETE"));
        assert_eq!(allowed_methods("/api/tenants"), Some("GET, POST"));
        assert_eq!(allowed_methods("/nowhere"), None);
    }
}
