//! The body of `PUT /api/webhooks/{name}`: the declaration as YAML, a ZIP
//! holding `webhook.yaml` and its code files, or the same as JSON (the YAML
//! and each file as a string, for clients that speak only JSON). YAML and
//! ZIP are read with a byte cap before anything parses them (JSON with the
//! server's body cap; the source's own caps are checked when it is
//! validated), and the ZIP goes through the same
//! hostile-archive defences as plugin uploads (size, entry count, inflated
//! size, ratio, forged headers, `..`, absolute paths, symlinks), with caps
//! sized for a webhook (its source is at most 128 KiB).

use std::collections::BTreeMap;

use extensor_core::webhook::registry::{DECLARATION_FILE, SOURCE_BYTES_MAX, WebhookSource};
use extensor_js::{Bundle, ZipLimits};
use poem::http::StatusCode;
use poem::{Request, RequestBody};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::{ApiRequest, Object};

use crate::error::{ApiError, FieldError};
use crate::types::Text;

/// A YAML body larger than a webhook's whole source cannot be valid.
pub const YAML_BODY_BYTES_MAX: usize = SOURCE_BYTES_MAX;
/// A ZIP of at most 128 KiB of text never needs more than this.
pub const ZIP_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Entries in a webhook ZIP: 16 code files, the YAML, and their folders.
pub const ZIP_ENTRIES_MAX: usize = 64;
/// Source code deflates 3-10x; 100x is a bomb or padding.
pub const ZIP_COMPRESSION_RATIO_MAX: u64 = 100;

/// The media types accepted as YAML (compared without parameters).
const YAML_TYPES: [&str; 3] = ["application/yaml", "text/yaml", "application/x-yaml"];
const ZIP_TYPES: [&str; 2] = ["application/zip", "application/x-zip-compressed"];

/// `type/subtype` of a Content-Type, lowercased, without parameters.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

async fn read_capped(body: &mut RequestBody, max: usize, what: &str) -> poem::Result<Vec<u8>> {
    let body = body.take()?;
    body.into_bytes_limit(max)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| {
            let status = match e {
                poem::error::ReadBodyError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("{what} bodies are limited to {max} bytes")
            } else {
                format!("reading the {what} body: {e}")
            };
            poem::Error::from_string(detail, status)
        })
}

fn string_schema(format: &'static str) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        format: Some(format),
        ..MetaSchema::new("string")
    }))
}

/// `webhook.yaml` as text (at most 128 KiB).
pub struct YamlText(pub Vec<u8>);

impl Payload for YamlText {
    const CONTENT_TYPE: &'static str = "application/yaml";

    fn check_content_type(content_type: &str) -> bool {
        YAML_TYPES.contains(&essence(content_type).as_str())
    }

    fn schema_ref() -> MetaSchemaRef {
        string_schema("yaml")
    }
}

impl ParsePayload for YamlText {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        read_capped(body, YAML_BODY_BYTES_MAX, "YAML")
            .await
            .map(Self)
    }
}

/// A ZIP archive (at most 1 MiB).
pub struct ZipBytes(pub Vec<u8>);

impl Payload for ZipBytes {
    const CONTENT_TYPE: &'static str = "application/zip";

    fn check_content_type(content_type: &str) -> bool {
        ZIP_TYPES.contains(&essence(content_type).as_str())
    }

    fn schema_ref() -> MetaSchemaRef {
        string_schema("binary")
    }
}

impl ParsePayload for ZipBytes {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        read_capped(body, ZIP_BODY_BYTES_MAX, "ZIP").await.map(Self)
    }
}

/// The declaration and its code files as JSON strings.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct WebhookJson {
    /// The text of `webhook.yaml`.
    pub yaml: Text,
    /// The code files it names: relative path → source (at most 16; with
    /// the YAML at most 128 KiB).
    #[oai(default, validator(max_properties = 16))]
    pub files: BTreeMap<String, Text>,
}

/// The declaration, alone, zipped with its code files, or as JSON.
#[derive(ApiRequest)]
pub enum WebhookBody {
    /// `webhook.yaml` alone.
    Yaml(YamlText),
    /// The same, as `text/yaml` (matched by the variant above; listed so
    /// the document names it).
    #[oai(content_type = "text/yaml")]
    TextYaml(YamlText),
    /// A ZIP with `webhook.yaml` at its root and the code files it names.
    Zip(ZipBytes),
    /// The YAML and its code files as strings.
    Json(Json<WebhookJson>),
}

impl WebhookBody {
    /// The source to apply; malformed archives and non-UTF-8 text are 422.
    pub fn into_source(self) -> Result<WebhookSource, ApiError> {
        match self {
            WebhookBody::Yaml(YamlText(bytes)) | WebhookBody::TextYaml(YamlText(bytes)) => {
                let yaml = String::from_utf8(bytes).map_err(|e| {
                    ApiError::invalid_field(
                        DECLARATION_FILE,
                        format!("is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
                    )
                    .with_code("invalid_webhook")
                })?;
                Ok(WebhookSource {
                    yaml,
                    files: BTreeMap::new(),
                })
            }
            WebhookBody::Zip(ZipBytes(bytes)) => source_from_zip(&bytes),
            WebhookBody::Json(Json(WebhookJson { yaml, files })) => Ok(WebhookSource {
                yaml: yaml.0,
                files: files.into_iter().map(|(k, v)| (k, v.0)).collect(),
            }),
        }
    }
}

fn zip_limits() -> ZipLimits {
    ZipLimits {
        upload_bytes_max: ZIP_BODY_BYTES_MAX,
        uncompressed_bytes_max: SOURCE_BYTES_MAX,
        entries_max: ZIP_ENTRIES_MAX,
        compression_ratio_max: ZIP_COMPRESSION_RATIO_MAX,
    }
}

fn invalid_archive(errors: Vec<FieldError>) -> ApiError {
    let detail = format!(
        "the ZIP is refused: {}",
        errors
            .iter()
            .take(5)
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    );
    ApiError::validation(detail, errors).with_code("invalid_archive")
}

/// Unpacks a webhook ZIP: `webhook.yaml` is the declaration, every other
/// file a code file (UTF-8 text).
pub fn source_from_zip(bytes: &[u8]) -> Result<WebhookSource, ApiError> {
    let bundle =
        Bundle::from_zip_with_root(bytes, &zip_limits(), DECLARATION_FILE).map_err(|ps| {
            invalid_archive(
                ps.into_iter()
                    .map(|p| FieldError {
                        path: format!("zip:{}", p.path),
                        message: p.message,
                    })
                    .collect(),
            )
        })?;
    let mut source = WebhookSource::default();
    let mut errors = Vec::new();
    for path in bundle.paths() {
        let text = bundle
            .file(path)
            .map(|b| String::from_utf8(b.to_vec()))
            .unwrap_or_else(|| Ok(String::new()));
        match text {
            Ok(t) if path == DECLARATION_FILE => source.yaml = t,
            Ok(t) => {
                source.files.insert(path.to_owned(), t);
            }
            Err(_) => errors.push(FieldError {
                path: format!("zip:{path}"),
                message: "is not UTF-8 text; webhook files are YAML and JavaScript/TypeScript"
                    .into(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(source)
    } else {
        Err(invalid_archive(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_compared_without_parameters() {
        assert!(YamlText::check_content_type(
            "application/yaml; charset=utf-8"
        ));
        assert!(YamlText::check_content_type("Text/YAML"));
        assert!(!YamlText::check_content_type("application/json"));
        assert!(ZipBytes::check_content_type("application/zip"));
        assert!(!ZipBytes::check_content_type("application/yaml"));
    }

    #[test]
    fn a_zip_without_the_declaration_names_it() {
        let e = source_from_zip(b"not a zip").unwrap_err();
        let p = e.problem();
        assert_eq!((p.status, p.code.as_str()), (422, "invalid_archive"));
        assert_eq!(p.errors[0].path, "zip:(zip)");
    }
}
