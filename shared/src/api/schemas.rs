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
    let schema = Embedded.load(&format!("{BASE}/schemas/{path}")).map_err(|e| vec![format!("schema {path} does not compile: {e}")])?;
    if type_only(&schema).is_some_and(|types| has_one_of(value, &types)) {
        return Ok(());
    }
    with_boon(path, schema, value)
}

/// The `type` of a schema that asserts nothing else (`trigger-hook.json`: "an object"),
/// `None` for any other schema. Compiling even such a schema with boon is most of a
/// trigger's input check (4.8% of a `triggerHook`'s CPU in a profile: a fresh component
/// instance compiles it on every request), so a value of a type it names is accepted
/// without it; anything else still goes to boon, which words the refusal.
fn type_only(schema: &Value) -> Option<Vec<String>> {
    const ANNOTATIONS: [&str; 4] = ["$id", "$schema", "title", "description"];
    let schema = schema.as_object()?;
    if schema.keys().any(|k| k != "type" && !ANNOTATIONS.contains(&k.as_str())) {
        return None;
    }
    const TYPES: [&str; 7] = ["object", "array", "string", "number", "integer", "boolean", "null"];
    let types: Vec<String> = match schema.get("type")? {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(|t| t.as_str().map(str::to_string)).collect::<Option<_>>()?,
        _ => return None,
    };
    // A misspelt type (or any annotation of the wrong kind) is boon's to refuse.
    let annotations_are_text = ["title", "description"].iter().all(|k| schema.get(*k).is_none_or(Value::is_string));
    (annotations_are_text && types.iter().all(|t| TYPES.contains(&t.as_str()))).then_some(types)
}

/// Whether `value` is plainly of one of `types` (JSON Schema's names). An integer written
/// as `1.0` is not "plainly" one: it is left to boon.
fn has_one_of(value: &Value, types: &[String]) -> bool {
    types.iter().any(|t| match t.as_str() {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    })
}

/// `value` against `schema` (the one at `path`, loaded), compiled by boon; `$ref`s to
/// other schemas are loaded from the embedded files.
fn with_boon(path: &str, schema: Value, value: &Value) -> Result<(), Vec<String>> {
    let uncompiled = |e: boon::CompileError| vec![format!("schema {path} does not compile: {e}")];
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    compiler.set_default_draft(Draft::V6);
    compiler.enable_format_assertions();
    compiler.use_loader(Box::new(Embedded));
    let url = format!("{BASE}/schemas/{path}");
    compiler.add_resource(&url, schema).map_err(uncompiled)?;
    let index = compiler.compile(&url, &mut schemas).map_err(uncompiled)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The shortcut decides exactly as boon does, for every embedded schema it takes and
    /// a value of every JSON type (and the integer boon alone accepts, `1.0`).
    #[test]
    fn a_type_only_schema_accepts_and_refuses_as_boon_does() {
        let values = [json!({}), json!({"a": 1}), json!([]), json!("s"), json!(1), json!(-1), json!(1.5), json!(1.0), json!(true), json!(null)];
        let load = |path: &str| Embedded.load(&format!("{BASE}/schemas/{path}")).unwrap();
        let taken: Vec<&str> = paths().filter(|p| p.ends_with(".json") && type_only(&load(p)).is_some()).collect();
        assert!(taken.contains(&"hooks/v1/trigger-hook.json"), "{taken:?}");
        for path in &taken {
            for v in &values {
                assert_eq!(validate(path, v), with_boon(path, load(path), v), "{path}: {v}");
            }
        }
        assert!(validate("hooks/v1/trigger-hook.json", &json!([])).unwrap_err()[0].contains("array"));
    }

    #[test]
    fn only_a_schema_that_asserts_nothing_but_its_type_is_taken() {
        assert_eq!(type_only(&json!({"$id": "x", "title": "t", "type": ["object", "null"]})), Some(vec!["object".into(), "null".into()]));
        for schema in [json!({"type": "object", "required": ["a"]}), json!({"type": "object", "additionalProperties": false}), json!({"title": "no type"}), json!({"type": 1}), json!([]),
                       json!({"type": ["object", "objekt"]}), json!({"type": "object", "title": 3})] {
            assert_eq!(type_only(&schema), None, "{schema}");
        }
        assert!(has_one_of(&json!(3), &["integer".into()]) && !has_one_of(&json!(3.0), &["integer".into()]));
    }
}
