//! The JSON schemas of the API (`schemas/` in the repository, embedded by `build.rs`):
//! upstream's for the Hooks, Auth and Queue methods, ours for the extensions. They are
//! served at `<rootUrl>/schemas/<service>/v1/<name>.json` (`super::references`), each
//! method's body is checked against its input schema before its handler runs (SPEC §2.2
//! step 6), and the tests check every answer against its output schema.

use crate::error::{ApiError, ErrorCode};
use boon::{Compiler, Draft, Schemas, UrlLoader};
use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// Where the schemas live for `$ref` resolution while validating (their `$id`s are
/// `/schemas/...`, rooted at the host). On json-schema.org because boon skips meta-schema validation there (these schemas are checked once, by a
/// unit test, not on every request by a fresh component instance).
const BASE: &str = "https://json-schema.org";

/// The text of the schema at `path` (`hooks/v1/hook-definition.json`).
pub(crate) fn file(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, text)| *text)
}

#[cfg(test)]
pub(crate) fn paths() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(p, _)| *p)
}

/// A method's schema (`v1/create-hook-request.json#`, relative to its service's schemas,
/// as the references write it) as a path under `schemas/`.
pub(crate) fn path_of(service: &str, relative: &str) -> String {
    format!("{service}/{}", relative.trim_end_matches('#'))
}

/// `$id`, `$schema` and `$ref` values rooted at `/schemas/` made absolute under `root`
/// (upstream serves its schemas with the deployment's rootUrl in them).
pub(crate) fn absolute(value: &mut Value, root: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if matches!(k.as_str(), "$id" | "$schema" | "$ref") && s.starts_with("/schemas/") => *s = format!("{root}{s}"),
                    other => absolute(other, root),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| absolute(v, root)),
        _ => {}
    }
}

/// Serves `$ref`s between the embedded schemas, and nothing else.
struct Embedded;

impl UrlLoader for Embedded {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        let path = url.strip_prefix(BASE).and_then(|p| p.strip_prefix("/schemas/")).ok_or_else(|| format!("{url} is not one of the API's schemas"))?;
        let text = file(path).ok_or_else(|| format!("no schema {path}"))?;
        let mut schema: Value = serde_json::from_str(text)?;
        // Upstream's `$schema` names its own meta-schema (draft-06 with `metadata`);
        // validation needs only the draft, set below.
        if let Value::Object(map) = &mut schema {
            map.remove("$schema");
        }
        Ok(schema)
    }
}

/// `value` against the schema at `path`: each error with where it is.
pub(crate) fn validate(path: &str, value: &Value) -> Result<(), Vec<String>> {
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    compiler.set_default_draft(Draft::V6);
    compiler.enable_format_assertions();
    compiler.use_loader(Box::new(Embedded));
    let url = format!("{BASE}/schemas/{path}");
    let index = compiler.compile(&url, &mut schemas).map_err(|e| vec![format!("schema {path} does not compile: {e}")])?;
    schemas.validate(value, index).map_err(|e| crate::trigger_schema::error_lines(&e, "", "the body"))
}

/// SPEC §2.2 step 6: the body against the method's input schema, as upstream words the
/// refusal.
pub(crate) fn validate_input(service: &str, relative: &str, payload: &Value) -> Result<(), ApiError> {
    let path = path_of(service, relative);
    validate(&path, payload).map_err(|errors| {
        ApiError::new(
            ErrorCode::InputValidationError,
            format!("Schema Validation Failed!\nRejecting Schema: /schemas/{path}#\nErrors:\n{}", errors.iter().map(|e| format!("  * {e}")).collect::<Vec<_>>().join("\n")),
        )
    })
}
