//! Wire types shared by several resources.

use extensor_core::role::Role;
use poem_openapi::Enum;

/// A token's role within its tenant, weakest first.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum RoleName {
    Viewer,
    Developer,
    Admin,
    Owner,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Role {
        match r {
            RoleName::Viewer => Role::Viewer,
            RoleName::Developer => Role::Developer,
            RoleName::Admin => Role::Admin,
            RoleName::Owner => Role::Owner,
        }
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> RoleName {
        match r {
            Role::Viewer => RoleName::Viewer,
            Role::Developer => RoleName::Developer,
            Role::Admin => RoleName::Admin,
            Role::Owner => RoleName::Owner,
        }
    }
}

/// The revision an `If-Match` value names: `"3"` or `3` (its validator
/// admits only these, up to nine digits, so it always fits).
pub fn revision_of(if_match: &str) -> u32 {
    if_match.trim_matches('"').parse().unwrap_or(u32::MAX)
}

/// A request string that is a JSON string: poem-openapi's `String` also
/// takes a number or a boolean (`"name": false` became the name `false`),
/// which the document cannot say. Request bodies use `Text`, so a value of
/// another type is refused (400) as the document's `type: string` promises.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(pub String);

impl std::ops::Deref for Text {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

impl poem_openapi::types::Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> std::borrow::Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        <String as poem_openapi::types::Type>::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl poem_openapi::types::ParseFromJSON for Text {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value.unwrap_or_default() {
            serde_json::Value::String(s) => Ok(Text(s)),
            other => Err(poem_openapi::types::ParseError::expected_type(other)),
        }
    }
}

impl poem_openapi::types::ToJSON for Text {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ParseFromJSON;
    use serde_json::json;

    use super::*;

    #[test]
    fn text_takes_only_json_strings() {
        assert_eq!(Text::parse_from_json(Some(json!("a"))).unwrap().0, "a");
        for other in [json!(false), json!(1), json!(null), json!([]), json!({})] {
            assert!(Text::parse_from_json(Some(other)).is_err());
        }
    }

    #[test]
    fn if_match_names_a_revision_with_or_without_quotes() {
        assert_eq!(revision_of("\"3\""), 3);
        assert_eq!(revision_of("12"), 12);
    }
}
