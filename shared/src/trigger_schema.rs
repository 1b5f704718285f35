//! `triggerSchema`: the JSON Schema a hook author supplies for trigger payloads
//! (SPEC §5.1 step 3, §5.10 step 4), with the `jsonschema` crate built without network or
//! file resolution, so a schema can never make the service fetch anything.
//!
//! Decisions: schemas are JSON Schema draft-07 (what upstream's Ajv uses; a `$schema`
//! naming another draft is refused rather than silently read as draft-07); formats are checked; defaults in the schema are *not*
//! applied to payloads (as upstream does, whatever its docs say); every error is listed
//! with the path it concerns (upstream's meta-validation printed `Property undefined`).

use jsonschema::Draft;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TriggerSchemaError {
    #[error("triggerSchema is not a valid JSON schema:\n{}", .0.join("\n"))]
    InvalidSchema(Vec<String>),
    #[error("{}", .0.join("; "))]
    PayloadRejected(Vec<String>),
}

fn location(path: &str) -> String {
    if path.is_empty() {
        "data".to_string()
    } else {
        format!("data{path}")
    }
}

/// Only draft-07 (upstream's dialect): each further draft's meta-schema validator adds
/// hundreds of KB to every component that links this crate.
fn check_dialect(schema: &Value) -> Result<(), TriggerSchemaError> {
    match schema.get("$schema").map(|v| v.as_str().unwrap_or_default().trim_end_matches('#')) {
        None | Some("http://json-schema.org/draft-07/schema") => Ok(()),
        Some(other) => Err(TriggerSchemaError::InvalidSchema(vec![format!(
            "* $schema {other:?} is not supported: trigger schemas are JSON Schema draft-07 \
             (omit $schema or use http://json-schema.org/draft-07/schema#)"
        )])),
    }
}

fn meta_errors(schema: &Value) -> Vec<String> {
    jsonschema::draft7::meta::validator()
        .iter_errors(schema)
        .map(|e| format!("* {}: {e}", location(e.instance_path().as_str()).replacen("data", "triggerSchema", 1)))
        .collect()
}

/// A checked trigger schema, ready to validate payloads.
pub struct TriggerSchema {
    schema: Value,
    validator: jsonschema::Validator,
}

impl TriggerSchema {
    /// Checks `schema` against its draft's meta-schema and compiles it. Remote `$ref`s
    /// are refused (no retrieval is built in).
    pub fn compile(schema: &Value) -> Result<Self, TriggerSchemaError> {
        if !schema.is_object() {
            return Err(TriggerSchemaError::InvalidSchema(vec!["* triggerSchema must be an object".into()]));
        }
        check_dialect(schema)?;
        let errors = meta_errors(schema);
        if !errors.is_empty() {
            return Err(TriggerSchemaError::InvalidSchema(errors));
        }
        let validator = jsonschema::options()
            .with_draft(Draft::Draft7)
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| TriggerSchemaError::InvalidSchema(vec![format!("* {e}")]))?;
        Ok(Self { schema: schema.clone(), validator })
    }

    /// Every reason `payload` fails the schema, each with its path
    /// (`data/n must ...`), joined by `; ` in the error's text.
    pub fn validate(&self, payload: &Value) -> Result<(), TriggerSchemaError> {
        let mut errors: Vec<String> = Vec::new();
        for e in self.validator.iter_errors(payload) {
            let path = e.instance_path().as_str().to_string();
            let text = match self.unexpected_properties(&e, payload) {
                Some(text) => text,
                None => e.to_string(),
            };
            let line = format!("{}: {text}", location(&path));
            if !errors.contains(&line) {
                errors.push(line);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(TriggerSchemaError::PayloadRejected(errors))
        }
    }
}

impl TriggerSchema {
    /// `additionalProperties: false` with no `properties` beside it comes back from the
    /// crate as "False schema does not allow <value>" at the object's path, without the
    /// property's name; name the unexpected properties instead.
    fn unexpected_properties(&self, e: &jsonschema::ValidationError<'_>, payload: &Value) -> Option<String> {
        let schema_path = e.schema_path().as_str();
        let parent = schema_path.strip_suffix("/additionalProperties")?;
        if !matches!(e.kind(), jsonschema::error::ValidationErrorKind::FalseSchema) {
            return None;
        }
        let object = payload.pointer(e.instance_path().as_str())?.as_object()?;
        let subschema = self.schema.pointer(parent)?;
        if subschema.get("patternProperties").is_some() {
            return None;
        }
        let declared = subschema.get("properties").and_then(Value::as_object);
        let unexpected: Vec<String> = object
            .keys()
            .filter(|k| declared.is_none_or(|d| !d.contains_key(*k)))
            .map(|k| format!("`{k}`"))
            .collect();
        let verb = if unexpected.len() == 1 { "was" } else { "were" };
        Some(format!("must NOT have additional properties ({} {verb} unexpected)", unexpected.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_default_schema_accepts_only_an_empty_object() {
        let s = TriggerSchema::compile(&crate::model::default_trigger_schema()).unwrap();
        assert!(s.validate(&json!({})).is_ok());
        let err = s.validate(&json!({"x": 1})).unwrap_err().to_string();
        assert_eq!(err, "data: must NOT have additional properties (`x` was unexpected)");
        let two = s.validate(&json!({"a": 1, "b": 2})).unwrap_err().to_string();
        assert_eq!(two, "data: must NOT have additional properties (`a`, `b` were unexpected)");
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
