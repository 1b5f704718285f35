//! `triggerSchema`: the JSON Schema a hook author supplies for trigger payloads
//! (SPEC §5.1 step 3, §5.10 step 4), validated with the `boon` crate. `boon` was chosen
//! over `jsonschema` for size: the trigger component grew by ~2.7 MB with `jsonschema`
//! (regex engines and big-number arithmetic it cannot leave out) and by ~1.4 MB with
//! `boon`, which passes the same JSON-Schema-Test-Suite drafts.
//!
//! Decisions: a schema without `$schema` is read as draft-07 (what upstream's Ajv uses);
//! drafts 4, 6, 2019-09 and 2020-12 are accepted when named; the schema must pass its
//! draft's meta-schema; formats are asserted; nothing is ever fetched (every `$ref` must
//! resolve inside the schema); defaults in the schema are *not* applied to payloads (as
//! upstream does, whatever its docs say); every error is listed with its path (upstream's
//! meta-validation printed `Property undefined`).

use boon::{Compiler, Draft, SchemaIndex, Schemas, UrlLoader};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TriggerSchemaError {
    #[error("triggerSchema is not a valid JSON schema:\n{}", .0.join("\n"))]
    InvalidSchema(Vec<String>),
    #[error("{}", .0.join("; "))]
    PayloadRejected(Vec<String>),
}

/// Where the schema "lives" for `$ref` resolution: an absolute URL that is never loaded.
const SCHEMA_URL: &str = "https://taskhooks.invalid/trigger-schema.json";

/// Where a schema already checked at createHook/updateHook lives when a trigger compiles
/// it again. boon skips meta-schema validation for documents on json-schema.org (its own
/// meta-schemas); checking against the meta-schema means compiling every draft's
/// meta-schema first, which a fresh component instance (one per request) would redo on
/// every trigger (249 triggers/s in the load run, against 2,155 without; docs/benchmarks.md).
const CHECKED_SCHEMA_URL: &str = "https://json-schema.org/taskhooks/checked-trigger-schema.json";

/// Refuses every load: trigger schemas may only reference themselves.
struct NoRemoteReferences;

impl UrlLoader for NoRemoteReferences {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("{url} is outside the schema; remote references are not allowed").into())
    }
}

/// The most errors one message lists: a body of millions of bad items must not make a
/// message of hundreds of megabytes (nor a quadratic search for repeats).
pub(crate) const MAX_LISTED_ERRORS: usize = 20;

/// The innermost errors of a boon error tree, each as `<prefix><path>: <what>` (`<path>`
/// empty: `empty`), each once, at most `MAX_LISTED_ERRORS` and then how many more.
pub(crate) fn error_lines(e: &boon::ValidationError<'_, '_>, prefix: &str, empty: &str) -> Vec<String> {
    fn walk(e: &boon::ValidationError<'_, '_>, prefix: &str, empty: &str, seen: &mut std::collections::HashSet<String>, out: &mut Vec<String>, more: &mut usize) {
        if e.causes.is_empty() {
            let at = e.instance_location.to_string();
            let line = format!("{prefix}{}: {}", if at.is_empty() { empty } else { at.as_str() }, e.kind);
            if seen.insert(line.clone()) {
                if out.len() < MAX_LISTED_ERRORS {
                    out.push(line);
                } else {
                    *more += 1;
                }
            }
        }
        for cause in &e.causes {
            walk(cause, prefix, empty, seen, out, more);
        }
    }
    let (mut seen, mut out, mut more) = (std::collections::HashSet::new(), Vec::new(), 0);
    walk(e, prefix, empty, &mut seen, &mut out, &mut more);
    if more > 0 {
        out.push(format!("... and {more} more"));
    }
    out
}

fn leaf_errors(e: &boon::ValidationError<'_, '_>, prefix: &str, out: &mut Vec<String>) {
    out.extend(error_lines(e, prefix, ""));
}

/// Every `pattern` in `schema` whose regular expression compiles past the regex engine's
/// size limit (`(a{1000}){1000}`): boon reports those as a bug of its own (and asserts in
/// debug builds), so they are found first and named.
fn oversized_patterns(schema: &Value, at: &str, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                let here = format!("{at}/{key}");
                if let (true, Value::String(p)) = (key == "pattern", value) {
                    if let Err(regex::Error::CompiledTooBig(limit)) = regex::Regex::new(p) {
                        out.push(format!("* {here}: the regular expression is too large (it compiles to more than {limit} bytes)"));
                    }
                } else {
                    oversized_patterns(value, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                oversized_patterns(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The text of a reference cycle anywhere in a validation error's tree.
fn ref_cycle(e: &boon::ValidationError<'_, '_>) -> Option<String> {
    if matches!(e.kind, boon::ErrorKind::RefCycle { .. }) {
        return Some(e.kind.to_string());
    }
    e.causes.iter().find_map(ref_cycle)
}

/// A checked trigger schema, ready to validate payloads.
pub struct TriggerSchema {
    schemas: Schemas,
    index: SchemaIndex,
}

impl TriggerSchema {
    /// Checks `schema` against its draft's meta-schema and compiles it. A schema whose
    /// references loop without reading any of the payload (`{"$ref": "#"}`) passes the
    /// meta-schema but could never accept a trigger: it is refused here, found by
    /// validating the smallest payload, `{}`.
    pub fn compile(schema: &Value) -> Result<Self, TriggerSchemaError> {
        let compiled = Self::compile_at(schema, SCHEMA_URL)?;
        if let Err(e) = compiled.schemas.validate(&Value::Object(Default::default()), compiled.index) {
            if let Some(cycle) = ref_cycle(&e) {
                return Err(TriggerSchemaError::InvalidSchema(vec![format!("* triggerSchema: {cycle}, so no payload can ever be validated")]));
            }
        }
        Ok(compiled)
    }

    /// Compiles a schema that [`TriggerSchema::compile`] accepted before (a stored hook's),
    /// without checking it against its meta-schema again.
    pub fn compile_checked(schema: &Value) -> Result<Self, TriggerSchemaError> {
        Self::compile_at(schema, CHECKED_SCHEMA_URL)
    }

    fn compile_at(schema: &Value, url: &str) -> Result<Self, TriggerSchemaError> {
        let invalid = |reason: String| TriggerSchemaError::InvalidSchema(vec![format!("* {reason}")]);
        if !schema.is_object() {
            return Err(invalid("triggerSchema must be an object".into()));
        }
        if let Some(uri) = schema.get("$schema") {
            let known = uri.as_str().and_then(Draft::from_url).is_some();
            if !known {
                return Err(invalid(format!("$schema {uri} is not a JSON Schema draft taskhooks knows (draft-04 to 2020-12)")));
            }
        }
        let mut too_big = Vec::new();
        oversized_patterns(schema, "triggerSchema", &mut too_big);
        if !too_big.is_empty() {
            return Err(TriggerSchemaError::InvalidSchema(too_big));
        }
        let mut compiler = Compiler::new();
        compiler.set_default_draft(Draft::V7);
        compiler.enable_format_assertions();
        compiler.use_loader(Box::new(NoRemoteReferences));
        compiler.add_resource(url, schema.clone()).map_err(|e| invalid(format!("{e:#}")))?;
        let mut schemas = Schemas::new();
        let index = compiler.compile(url, &mut schemas).map_err(|e| match e {
            boon::CompileError::ValidationError { src, .. } => {
                let mut lines = Vec::new();
                leaf_errors(&src, "* triggerSchema", &mut lines);
                TriggerSchemaError::InvalidSchema(lines)
            }
            boon::CompileError::Bug(e) => invalid(format!("a keyword of triggerSchema could not be compiled: {e}")),
            other => invalid(format!("{other:#}")),
        })?;
        Ok(Self { schemas, index })
    }

    /// Every reason `payload` fails the schema, each with its path (`data/n: ...`),
    /// joined by `; ` in the error's text.
    pub fn validate(&self, payload: &Value) -> Result<(), TriggerSchemaError> {
        self.schemas.validate(payload, self.index).map_err(|e| {
            let mut lines = Vec::new();
            leaf_errors(&e, "data", &mut lines);
            TriggerSchemaError::PayloadRejected(lines)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pattern_too_large_to_compile_is_named() {
        let err = TriggerSchema::compile(&json!({"type": "object", "properties": {"x": {"type": "string", "pattern": "(a{1000}){1000}"}}})).err().unwrap().to_string();
        assert!(err.contains("triggerSchema/properties/x/pattern: the regular expression is too large"), "{err}");
        assert!(!err.contains("bug"), "{err}");
        assert!(TriggerSchema::compile(&json!({"type": "string", "pattern": "^[a-z]{1,10}$"})).is_ok());
    }

    #[test]
    fn a_schema_whose_references_loop_is_refused_and_recursion_is_not() {
        let err = TriggerSchema::compile(&json!({"$ref": "#"})).err().unwrap().to_string();
        assert!(err.contains("reference cycle") && err.contains("no payload can ever be validated"), "{err}");
        let looped = json!({"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}}, "$ref": "#/definitions/a"});
        assert!(TriggerSchema::compile(&looped).is_err());
        let tree = json!({"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}});
        let schema = TriggerSchema::compile(&tree).unwrap();
        assert!(schema.validate(&json!({"children": [{"children": []}]})).is_ok());
    }

    #[test]
    fn a_checked_schema_compiles_the_same_without_the_meta_schema() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}, "d": {"format": "date-time"}},
                            "definitions": {"s": {"type": "string"}}, "required": ["n"],
                            "patternProperties": {"^x-": {"$ref": "#/definitions/s"}}, "additionalProperties": false});
        let checked = TriggerSchema::compile(&schema).unwrap();
        let fast = TriggerSchema::compile_checked(&schema).unwrap();
        for payload in [json!({"n": 1}), json!({"n": "x"}), json!({}), json!({"n": 1, "x-a": 2}), json!({"n": 1, "d": "nope"}), json!({"n": 1, "y": 0})] {
            assert_eq!(checked.validate(&payload), fast.validate(&payload), "{payload}");
        }
        assert!(fast.validate(&json!({"n": 1, "x-a": 2})).is_err(), "$ref inside the schema still resolves");
        // Remote references stay refused on the fast path too.
        assert!(TriggerSchema::compile_checked(&json!({"$ref": "https://json-schema.org/other.json"})).is_err());
    }

    #[test]
    fn the_default_schema_accepts_only_an_empty_object() {
        let s = TriggerSchema::compile(&crate::model::default_trigger_schema()).unwrap();
        assert!(s.validate(&json!({})).is_ok());
        let err = s.validate(&json!({"x": 1})).unwrap_err().to_string();
        assert_eq!(err, "data: additionalProperties 'x' not allowed");
        let two = s.validate(&json!({"a": 1, "b": 2})).unwrap_err().to_string();
        assert!(two.contains("'a'") && two.contains("'b'"), "{two}");
    }

    #[test]
    fn every_failing_path_is_listed() {
        let s = TriggerSchema::compile(&json!({
            "type": "object",
            "properties": {"n": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["n"],
            "additionalProperties": false
        }))
        .unwrap();
        assert!(s.validate(&json!({"n": 1, "tags": ["a"]})).is_ok());
        let TriggerSchemaError::PayloadRejected(errors) = s.validate(&json!({"n": "x", "tags": ["a", 2], "extra": true})).unwrap_err() else {
            panic!()
        };
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("data/n:")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("data/tags/1:")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("data:") && e.contains("extra")), "{errors:?}");
    }

    #[test]
    fn formats_are_checked_and_defaults_not_applied() {
        let s = TriggerSchema::compile(&json!({"properties": {"when": {"type": "string", "format": "date-time", "default": "x"}}})).unwrap();
        assert!(s.validate(&json!({"when": "2026-01-01T00:00:00Z"})).is_ok());
        assert!(s.validate(&json!({"when": "yesterday"})).is_err());
        let payload = json!({});
        s.validate(&payload).unwrap();
        assert_eq!(payload, json!({}));
    }

    #[test]
    fn invalid_schemas_are_refused_with_reasons() {
        let err = TriggerSchema::compile(&json!({"type": "beer"})).err().unwrap().to_string();
        assert!(err.starts_with("triggerSchema is not a valid JSON schema:"), "{err}");
        assert!(err.contains("triggerSchema/type"), "{err}");
        assert!(TriggerSchema::compile(&json!({"properties": {"a": {"minLength": -1}}})).is_err());
        assert!(TriggerSchema::compile(&json!("a string")).is_err());
        assert!(TriggerSchema::compile(&json!({"$schema": "https://example.com/mine"})).is_err());
        assert!(TriggerSchema::compile(&json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"})).is_ok());
    }

    #[test]
    fn remote_references_are_never_fetched() {
        let remote = json!({"$ref": "https://example.com/schema.json"});
        assert!(TriggerSchema::compile(&remote).is_err());
        let local = json!({"definitions": {"n": {"type": "number"}}, "properties": {"a": {"$ref": "#/definitions/n"}}});
        let s = TriggerSchema::compile(&local).unwrap();
        assert!(s.validate(&json!({"a": 1})).is_ok());
        assert!(s.validate(&json!({"a": "x"})).is_err());
    }
}
