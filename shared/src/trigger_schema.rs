//! `triggerSchema`: the JSON Schema a hook author supplies for trigger payloads
//! (SPEC §5.1 step 3, §5.10 step 4), with the `jsonschema` crate built without network or
//! file resolution, so a schema can never make the service fetch anything.
//!
//! Decisions: schemas are read as draft-07 (what upstream's Ajv uses) unless they name
//! another draft in `$schema`; formats are checked; defaults in the schema are *not*
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

fn draft_of(schema: &Value) -> Result<Draft, TriggerSchemaError> {
    let Some(uri) = schema.get("$schema") else { return Ok(Draft::Draft7) };
    let uri = uri.as_str().unwrap_or_default().trim_end_matches('#');
    Ok(match uri {
        "http://json-schema.org/draft-04/schema" => Draft::Draft4,
        "http://json-schema.org/draft-06/schema" => Draft::Draft6,
        "http://json-schema.org/draft-07/schema" => Draft::Draft7,
        "https://json-schema.org/draft/2019-09/schema" => Draft::Draft201909,
        "https://json-schema.org/draft/2020-12/schema" => Draft::Draft202012,
        other => {
            return Err(TriggerSchemaError::InvalidSchema(vec![format!(
                "* $schema {other:?} is not a JSON Schema draft taskhooks knows (draft-04 to 2020-12)"
            )]))
        }
    })
}

fn meta_errors(draft: Draft, schema: &Value) -> Vec<String> {
    let validator = match draft {
        Draft::Draft4 => jsonschema::draft4::meta::validator(),
        Draft::Draft6 => jsonschema::draft6::meta::validator(),
        Draft::Draft201909 => jsonschema::draft201909::meta::validator(),
        Draft::Draft202012 => jsonschema::draft202012::meta::validator(),
        _ => jsonschema::draft7::meta::validator(),
    };
    validator
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
        let draft = draft_of(schema)?;
        let errors = meta_errors(draft, schema);
        if !errors.is_empty() {
            return Err(TriggerSchemaError::InvalidSchema(errors));
        }
        let validator = jsonschema::options()
            .with_draft(draft)
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
