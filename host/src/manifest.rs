//! The subset of Spin's application manifest (spin.toml, `spin_manifest_version = 2`) that
//! taskhooks uses. Unknown keys are accepted and ignored so that a manifest written for the
//! real `spin up` (with build sections, descriptions, ...) loads unchanged here.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    #[serde(default)]
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Application {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Accepted as Spin accepts it; the host never prints any variable's value, so a
    /// secret needs no different treatment here.
    #[serde(default)]
    #[allow(dead_code)]
    pub secret: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    #[serde(default)]
    pub cron: Vec<CronTrigger>,
}

#[derive(Debug, Deserialize)]
pub struct HttpTrigger {
    pub route: String,
    pub component: String,
}

#[derive(Debug, Deserialize)]
pub struct CronTrigger {
    pub component: String,
    pub cron_expression: String,
}

#[derive(Debug, Deserialize)]
pub struct ComponentDecl {
    pub source: String,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<(Manifest, PathBuf)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading manifest {}", path.display()))?;
        let manifest = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok((manifest, base))
    }

    pub fn parse(text: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text).context("parsing spin.toml")?;
        if manifest.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version {} is not supported (expected 2)",
                manifest.spin_manifest_version
            );
        }
        for (name, _) in &manifest.variables {
            check_variable_name(name)?;
        }
        let triggers = manifest
            .trigger
            .http
            .iter()
            .map(|t| &t.component)
            .chain(manifest.trigger.cron.iter().map(|t| &t.component));
        for component in triggers {
            if !manifest.component.contains_key(component) {
                bail!("a trigger names component `{component}`, which is not defined");
            }
        }
        for (id, decl) in &manifest.component {
            for name in decl.variables.keys() {
                check_variable_name(name)
                    .with_context(|| format!("in [component.{id}.variables]"))?;
            }
        }
        Ok(manifest)
    }
}

/// Spin's rule: lowercase ASCII letters, digits and underscores, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("invalid variable name `{name}`: use lowercase letters, digits and `_`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minimal_app_and_rejects_dangling_triggers() {
        let ok = r#"
            spin_manifest_version = 2
            [application]
            name = "x"
            [variables]
            token = { default = "a", secret = true }
            [[trigger.http]]
            route = "/..."
            component = "web"
            [component.web]
            source = "web.wasm"
            [component.web.variables]
            token = "{{ token }}"
            [component.web.build]
            command = "cargo build"
        "#;
        let m = Manifest::parse(ok).unwrap();
        assert_eq!(m.trigger.http[0].component, "web");
        assert!(m.variables["token"].secret);
        assert_eq!(m.application.name, "x");

        let dangling = ok.replace("component = \"web\"", "component = \"nope\"");
        let err = Manifest::parse(&dangling).unwrap_err();
        assert!(format!("{err:#}").contains("`nope`"), "{err:#}");

        let v1 = ok.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&v1).is_err());
    }

    #[test]
    fn variable_names_follow_spin_rules() {
        assert!(check_variable_name("root_access_token").is_ok());
        assert!(check_variable_name("Root").is_err());
        assert!(check_variable_name("1abc").is_err());
        assert!(check_variable_name("a-b").is_err());
    }
}
