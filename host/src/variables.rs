//! Spin variables: application variables declared in `[variables]` (default, required,
//! secret), overridden by `SPIN_VARIABLE_<NAME>` environment variables (Spin's environment
//! provider), and exposed to each component only through the templates in its
//! `[component.<id>.variables]` table.

use crate::manifest::{Manifest, VariableDecl};
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, HashMap};

/// The resolved application variables.
pub struct AppVariables {
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// Resolves every declared variable; a `required` one with no value is an error at
    /// start-up, as in Spin.
    pub fn resolve(
        decls: &BTreeMap<String, VariableDecl>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (name, decl) in decls {
            let from_env = env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()));
            match from_env.or_else(|| decl.default.clone()) {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if decl.required => {
                    bail!(
                        "variable `{name}` is required: set SPIN_VARIABLE_{}",
                        name.to_ascii_uppercase()
                    )
                }
                None => {}
            }
        }
        Ok(Self { values })
    }

    /// Expands a component variable template such as `"{{ root_access_token }}"` or
    /// `"prefix-{{ name }}"`.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| anyhow!("unclosed `{{{{` in template `{template}`"))?;
            let name = after[..end].trim();
            let value = self
                .values
                .get(name)
                .ok_or_else(|| anyhow!("template `{template}` uses undefined variable `{name}`"))?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The variables one component may read, already expanded.
#[derive(Default, Clone)]
pub struct ComponentVariables {
    values: HashMap<String, String>,
}

impl ComponentVariables {
    pub fn for_component(manifest: &Manifest, app: &AppVariables, id: &str) -> Result<Self> {
        let decl = &manifest.component[id];
        let mut values = HashMap::new();
        for (name, template) in &decl.variables {
            let value = app
                .expand(template)
                .map_err(|e| anyhow!("component `{id}`, variable `{name}`: {e}"))?;
            values.insert(name.clone(), value);
        }
        Ok(Self { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls() -> BTreeMap<String, VariableDecl> {
        let m = Manifest::parse(
            r#"
            spin_manifest_version = 2
            [variables]
            a = { default = "one" }
            b = { required = true }
            c = { default = "three", secret = true }
            "#,
        )
        .unwrap();
        m.variables
    }

    #[test]
    fn environment_overrides_defaults_and_required_must_be_set() {
        let err = AppVariables::resolve(&decls(), &|_| None).err().unwrap();
        assert!(err.to_string().contains("SPIN_VARIABLE_B"), "{err}");

        let env = |k: &str| match k {
            "SPIN_VARIABLE_B" => Some("two".to_string()),
            "SPIN_VARIABLE_C" => Some("env".to_string()),
            _ => None,
        };
        let app = AppVariables::resolve(&decls(), &env).unwrap();
        assert_eq!(app.expand("{{ a }}-{{b}}-{{ c }}!").unwrap(), "one-two-env!");
        assert!(app.expand("{{ nope }}").is_err());
        assert!(app.expand("{{ a").is_err());
    }
}
