//! Hooks as files (`taskhooks apply`): YAML or JSON files declaring hooks and roles,
//! compared with what a deployment holds, in the manner of Mozilla's ci-admin / tc-admin.
//! This is the pure part: the files into the desired set, the deployment's answers into
//! the same form, the plan between the two, and its rendering. The host reads the files and
//! talks to the deployment.
//!
//! Only *managed* resources are compared: those whose id starts with a prefix that a file's
//! `managed:` lists. The prefixes travel with the files, as tc-admin's generators declare
//! them with their resources, so the directory alone decides what a run may remove; a
//! deployed resource outside them is never touched (several repositories, or people in the
//! UI, can share one deployment), and a resource declared outside them is an error, since
//! it could be created but never removed again.
//!
//! Resources are compared on what a `createHook` / `createRole` request carries, with the
//! defaults the service fills in (`schedule: []`, `bindings: []`, the default
//! `triggerSchema`, `emailOnError: true`) and role scopes in normal form, which the
//! service stores them in: a file equal to the deployment gives no difference.

mod line_diff;

use crate::ids::{HookGroupId, HookId};
use crate::model::{Binding, HookCreationRequest, HookDefinition, HookMetadata};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A resource's identity. Roles sort before hooks: the order a plan creates them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceId {
    Role(String),
    Hook { hook_group_id: String, hook_id: String },
}

impl ResourceId {
    /// What a managed prefix is matched against: the roleId, or `hookGroupId/hookId`.
    pub fn name(&self) -> String {
        match self {
            ResourceId::Role(role_id) => role_id.clone(),
            ResourceId::Hook { hook_group_id, hook_id } => format!("{hook_group_id}/{hook_id}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ResourceId::Role(_) => "role",
            ResourceId::Hook { .. } => "hook",
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

/// The prefixes of managed ids, per kind: hooks' are matched against `hookGroupId/hookId`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed {
    pub hooks: Vec<String>,
    pub roles: Vec<String>,
}

impl Managed {
    pub fn manages(&self, id: &ResourceId) -> bool {
        let prefixes = match id {
            ResourceId::Role(_) => &self.roles,
            ResourceId::Hook { .. } => &self.hooks,
        };
        let name = id.name();
        prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// Whether any hook of this group could be managed: the groups worth listing (and the
    /// only ones a caller needs `hooks:list-hooks:<group>` for).
    pub fn may_manage_hooks_in(&self, hook_group_id: &str) -> bool {
        let group = format!("{hook_group_id}/");
        self.hooks.iter().any(|p| group.starts_with(p.as_str()) || p.starts_with(&group))
    }

    /// The groups that can hold managed hooks, when every hook prefix names its group
    /// (holds a `/`); `None` when one ends inside a group name and all groups must be
    /// listed to find them.
    pub fn named_groups(&self) -> Option<Vec<String>> {
        let mut groups: Vec<String> = self.hooks.iter().map(|p| p.split_once('/').map(|(g, _)| g.to_string())).collect::<Option<_>>()?;
        groups.sort();
        groups.dedup();
        Some(groups)
    }

    fn describe(&self) -> String {
        let list = |prefixes: &[String]| if prefixes.is_empty() { "none".to_string() } else { prefixes.join(", ") };
        format!("hooks: {}; roles: {}", list(&self.hooks), list(&self.roles))
    }
}

/// A file as read: its name (as shown in errors) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// By extension: `.yml` / `.yaml`, `.json`; any other file is not a declaration file.
    pub fn of(file_name: &str) -> Option<Format> {
        let (_, extension) = file_name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "yml" | "yaml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Why the files do not make a desired set. Each names the file (or files) at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FileError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{}", duplicate_message(id, first, second))]
    Duplicate { id: ResourceId, first: String, second: String },
    #[error("{file}: {id} is outside the managed prefixes ({managed}); add a prefix for it to a `managed:` list")]
    Unmanaged { file: String, id: ResourceId, managed: String },
}

fn duplicate_message(id: &ResourceId, first: &str, second: &str) -> String {
    if first == second {
        format!("{first}: {id} is declared twice")
    } else {
        format!("{id} is declared twice: in {first} and in {second}")
    }
}

/// Every problem found in the files, one a line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct FileErrors(pub Vec<FileError>);

/// What the files declare: the managed prefixes of them all, and each resource as the body
/// of its create request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub managed: Managed,
    pub resources: BTreeMap<ResourceId, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    managed: ManagedShape,
    #[serde(default)]
    roles: Vec<Value>,
    #[serde(default)]
    hooks: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ManagedShape {
    #[serde(default)]
    hooks: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// A role as a file declares it: `createRole`'s body plus its id.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleDeclaration {
    role_id: String,
    description: String,
    scopes: Vec<String>,
}

/// A role as compared, and as sent to `createRole` / `updateRole`.
#[derive(Serialize)]
struct RoleSpec {
    description: String,
    scopes: Vec<String>,
}

/// A role as the deployment answers it (`role`, `listRoles` items, with `expandedScopes`,
/// `created`, ... besides).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeployedRole {
    role_id: String,
    description: String,
    scopes: Vec<String>,
}

/// A hook as compared, and as sent to `createHook` / `updateHook`: every field explicit,
/// since `updateHook` keeps the stored `bindings` when a body leaves them out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HookSpec {
    metadata: HookMetadata,
    schedule: Vec<String>,
    bindings: Vec<Binding>,
    task: Map<String, Value>,
    trigger_schema: Value,
}

impl From<HookDefinition> for HookSpec {
    fn from(d: HookDefinition) -> Self {
        HookSpec { metadata: d.metadata, schedule: d.schedule, bindings: d.bindings, task: d.task, trigger_schema: d.trigger_schema }
    }
}

fn role_spec(description: String, scopes: &[String]) -> Value {
    serde_json::to_value(RoleSpec { description, scopes: crate::scopes::normalize(scopes) }).expect("serialises")
}

fn hook_spec(spec: HookSpec) -> Value {
    serde_json::to_value(spec).expect("serialises")
}

/// The files into the desired set: every problem of every file is reported, and any one
/// of them means no desired set (so nothing is applied).
pub fn load(files: &[SourceFile]) -> Result<Desired, FileErrors> {
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for file in files {
        match parse_file(file) {
            Ok(contents) => parsed.push((file.name.as_str(), contents)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    let mut managed = Managed::default();
    for (_, contents) in &parsed {
        managed.hooks.extend(contents.managed.hooks.iter().cloned());
        managed.roles.extend(contents.managed.roles.iter().cloned());
    }
    for prefixes in [&mut managed.hooks, &mut managed.roles] {
        prefixes.sort();
        prefixes.dedup();
    }
    // A file that failed to parse may hold the prefix another file's resources lie in:
    // calling those unmanaged would only add noise to the real error.
    let check_managed = errors.is_empty();
    let mut resources = BTreeMap::new();
    let mut declared_in: BTreeMap<ResourceId, &str> = BTreeMap::new();
    for (file, contents) in parsed {
        for (id, body) in contents.resources {
            if let Some(first) = declared_in.get(&id) {
                errors.push(FileError::Duplicate { id, first: first.to_string(), second: file.to_string() });
                continue;
            }
            if check_managed && !managed.manages(&id) {
                errors.push(FileError::Unmanaged { file: file.to_string(), id: id.clone(), managed: managed.describe() });
            }
            declared_in.insert(id.clone(), file);
            resources.insert(id, body);
        }
    }
    if errors.is_empty() {
        Ok(Desired { managed, resources })
    } else {
        Err(FileErrors(errors))
    }
}

struct FileContents {
    managed: Managed,
    resources: Vec<(ResourceId, Value)>,
}

fn parse_file(file: &SourceFile) -> Result<FileContents, Vec<FileError>> {
    let invalid = |message: String| FileError::Invalid { file: file.name.clone(), message };
    let value: Value = match Format::of(&file.name) {
        Some(Format::Yaml) => serde_norway::from_str(&file.text).map_err(|e| vec![invalid(format!("not valid YAML: {e}"))])?,
        Some(Format::Json) => serde_json::from_str(&file.text).map_err(|e| vec![invalid(format!("not valid JSON: {e}"))])?,
        None => return Err(vec![invalid("not a .yml, .yaml or .json file".into())]),
    };
    // An empty YAML file declares nothing (a placeholder, or everything commented out).
    let value = if value.is_null() { Value::Object(Map::new()) } else { value };
    if !value.is_object() {
        return Err(vec![invalid("must be a mapping of `managed`, `roles` and/or `hooks`".into())]);
    }
    let shape: FileShape = serde_json::from_value(value).map_err(|e| vec![invalid(e.to_string())])?;
    let mut errors = Vec::new();
    for (kind, prefixes) in [("hooks", &shape.managed.hooks), ("roles", &shape.managed.roles)] {
        if prefixes.iter().any(String::is_empty) {
            errors.push(invalid(format!("managed.{kind}: an empty prefix would manage every one of the deployment's {kind}; name the prefixes")));
        }
    }
    let mut resources = Vec::new();
    for (i, entry) in shape.roles.into_iter().enumerate() {
        let label = entry.get("roleId").and_then(Value::as_str).map(|id| format!(" ({id})")).unwrap_or_default();
        match role_entry(entry) {
            Ok(resource) => resources.push(resource),
            Err(message) => errors.push(invalid(format!("roles[{i}]{label}: {message}"))),
        }
    }
    for (i, entry) in shape.hooks.into_iter().enumerate() {
        let label = match (entry.get("hookGroupId").and_then(Value::as_str), entry.get("hookId").and_then(Value::as_str)) {
            (Some(g), Some(h)) => format!(" ({g}/{h})"),
            _ => String::new(),
        };
        match hook_entry(entry) {
            Ok(resource) => resources.push(resource),
            Err(message) => errors.push(invalid(format!("hooks[{i}]{label}: {message}"))),
        }
    }
    if errors.is_empty() {
        Ok(FileContents { managed: Managed { hooks: shape.managed.hooks, roles: shape.managed.roles }, resources })
    } else {
        Err(errors)
    }
}

fn role_entry(entry: Value) -> Result<(ResourceId, Value), String> {
    let role: RoleDeclaration = serde_json::from_value(entry).map_err(|e| e.to_string())?;
    // The service's own rules are the authority; these catch what would fail every time,
    // before anything is applied.
    if role.role_id.is_empty() || !crate::scopes::is_valid_scope(&role.role_id) {
        return Err("roleId must be non-empty printable ASCII".into());
    }
    if let Some(bad) = role.scopes.iter().find(|s| !crate::scopes::is_valid_scope(s)) {
        return Err(format!("invalid scope {bad:?}: scopes are printable ASCII"));
    }
    Ok((ResourceId::Role(role.role_id), role_spec(role.description, &role.scopes)))
}

fn hook_entry(entry: Value) -> Result<(ResourceId, Value), String> {
    // Read as the service reads a createHook body, so a field it would refuse is refused
    // here, naming the file.
    let request: HookCreationRequest = serde_json::from_value(entry).map_err(|e| e.to_string())?;
    let hook_group_id = request.hook_group_id.clone().ok_or("missing field `hookGroupId`")?;
    let hook_id = request.hook_id.clone().ok_or("missing field `hookId`")?;
    HookGroupId::new(&hook_group_id).map_err(|e| e.to_string())?;
    HookId::new(&hook_id).map_err(|e| e.to_string())?;
    request.check_constraints().map_err(|errors| errors.join("; "))?;
    let spec = HookSpec {
        metadata: request.metadata,
        schedule: request.schedule,
        bindings: request.bindings.unwrap_or_default(),
        task: request.task,
        trigger_schema: request.trigger_schema,
    };
    Ok((ResourceId::Hook { hook_group_id, hook_id }, hook_spec(spec)))
}

/// What the deployment holds, as its list calls answer: `listHooks`' `hooks` (of the groups
/// that may hold managed hooks) and `listRoles`' items.
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    pub hooks: Vec<Value>,
    pub roles: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the deployment answered a {kind} that is not one: {message}")]
pub struct DeployedError {
    pub kind: &'static str,
    pub message: String,
}

/// A deployed hook with only the fields a createHook request carries.
fn compared_fields(hook: &Value) -> Value {
    const HOOK: [&str; 7] = ["hookGroupId", "hookId", "metadata", "task", "schedule", "bindings", "triggerSchema"];
    const METADATA: [&str; 4] = ["name", "description", "owner", "emailOnError"];
    let pick = |v: &Value, keys: &[&str]| match v {
        Value::Object(map) => Value::Object(map.iter().filter(|(k, _)| keys.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()),
        other => other.clone(),
    };
    let mut hook = pick(hook, &HOOK);
    if let Some(metadata) = hook.get_mut("metadata") {
        *metadata = pick(metadata, &METADATA);
    }
    hook
}

fn deployed_resources(deployed: &Deployed) -> Result<BTreeMap<ResourceId, Value>, DeployedError> {
    let mut out = BTreeMap::new();
    for hook in &deployed.hooks {
        // The schema's `hook-definition`, as this service answers it and upstream does;
        // only the fields compared are read, so a field a newer deployment adds to its
        // answers does not stop every plan (the files' side stays strict).
        let definition: HookDefinition =
            serde_json::from_value(compared_fields(hook)).map_err(|e| DeployedError { kind: "hook", message: e.to_string() })?;
        let id = ResourceId::Hook { hook_group_id: definition.hook_group_id.clone(), hook_id: definition.hook_id.clone() };
        out.insert(id, hook_spec(definition.into()));
    }
    for role in &deployed.roles {
        let role: DeployedRole =
            serde_json::from_value(role.clone()).map_err(|e| DeployedError { kind: "role", message: e.to_string() })?;
        out.insert(ResourceId::Role(role.role_id), role_spec(role.description, &role.scopes));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Create,
    Update,
    Remove,
}

/// One change: `deployed` is the resource as it is (for an update or a removal),
/// `desired` the body to send (for a create or an update).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub action: Action,
    pub id: ResourceId,
    pub deployed: Option<Value>,
    pub desired: Option<Value>,
}

impl Change {
    /// The order changes are applied in: roles created or changed first (a hook's role is
    /// in place before the hook can fire with it), then hooks; hooks removed before the
    /// roles they used.
    fn phase(&self) -> u8 {
        match (&self.id, self.action) {
            (ResourceId::Role(_), Action::Create | Action::Update) => 0,
            (ResourceId::Hook { .. }, Action::Create | Action::Update) => 1,
            (ResourceId::Hook { .. }, Action::Remove) => 2,
            (ResourceId::Role(_), Action::Remove) => 3,
        }
    }
}

/// The changes that make the deployment's managed resources what the files declare, in the
/// order to apply them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// Compares the files with the deployment. Deployed resources outside the managed prefixes
/// are left out, whatever the deployment answered.
pub fn plan(desired: &Desired, deployed: &Deployed) -> Result<Plan, DeployedError> {
    let deployed: BTreeMap<ResourceId, Value> =
        deployed_resources(deployed)?.into_iter().filter(|(id, _)| desired.managed.manages(id)).collect();
    let mut changes = Vec::new();
    for (id, body) in &desired.resources {
        match deployed.get(id) {
            None => changes.push(Change { action: Action::Create, id: id.clone(), deployed: None, desired: Some(body.clone()) }),
            Some(current) if current != body => changes.push(Change {
                action: Action::Update,
                id: id.clone(),
                deployed: Some(current.clone()),
                desired: Some(body.clone()),
            }),
            Some(_) => {}
        }
    }
    for (id, current) in deployed {
        if !desired.resources.contains_key(&id) {
            changes.push(Change { action: Action::Remove, id, deployed: Some(current), desired: None });
        }
    }
    changes.sort_by(|a, b| (a.phase(), &a.id).cmp(&(b.phase(), &b.id)));
    Ok(Plan { changes })
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// `N to create, M to change, K to remove`, or `nothing to do`.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "nothing to do".into();
        }
        format!("{} to create, {} to change, {} to remove", self.count(Action::Create), self.count(Action::Update), self.count(Action::Remove))
    }

    /// The plan as printed: `+ id` with the body to create, `~ id` with a unified diff of
    /// the JSON (`deployed` into `files`), `- id`; then the summary.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        for change in &self.changes {
            match change.action {
                Action::Create => {
                    out.push(format!("+ {}", change.id));
                    out.extend(pretty_lines(change.desired.as_ref()).iter().map(|l| format!("    +{l}")));
                }
                Action::Update => {
                    out.push(format!("~ {}", change.id));
                    out.push("    --- deployed".into());
                    out.push("    +++ files".into());
                    let diff = line_diff::unified(&pretty_lines(change.deployed.as_ref()), &pretty_lines(change.desired.as_ref()), line_diff::CONTEXT);
                    out.extend(diff.iter().map(|l| format!("    {l}")));
                }
                Action::Remove => out.push(format!("- {}", change.id)),
            }
        }
        if !out.is_empty() {
            out.push(String::new());
        }
        out.push(self.summary());
        out.join("\n")
    }
}

/// Pretty JSON with keys sorted at every level, so the diff shows content and never key
/// order (`serde_json` keeps insertion order if a dependency turns on `preserve_order`).
fn pretty_lines(value: Option<&Value>) -> Vec<String> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let Some(value) = value else { return Vec::new() };
    serde_json::to_string_pretty(&sorted(value)).expect("serialises").lines().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile { name: name.into(), text: text.into() }
    }

    const NIGHTLY: &str = r#"
managed:
  hooks: [project-releng/]
  roles: ["hook-id:project-releng/"]
roles:
  - roleId: hook-id:project-releng/nightly
    description: what the nightly hook's tasks may do
    scopes: [queue:create-task:highest:proj-releng/ci, queue:create-task:highest:proj-releng/*]
hooks:
  - hookGroupId: project-releng
    hookId: nightly
    metadata: {name: nightly, description: builds every night, owner: releng@example.com}
    schedule: ["0 0 3 * * *"]
    task:
      provisionerId: proj-releng
      workerType: ci
      payload: {}
"#;

    fn hook_id(g: &str, h: &str) -> ResourceId {
        ResourceId::Hook { hook_group_id: g.into(), hook_id: h.into() }
    }

    fn role_id(r: &str) -> ResourceId {
        ResourceId::Role(r.into())
    }

    fn messages(e: FileErrors) -> Vec<String> {
        e.0.iter().map(ToString::to_string).collect()
    }

    /// The deployment's answers for what `desired` declares, as this service answers them.
    fn deployed_as_declared(desired: &Desired) -> Deployed {
        let mut deployed = Deployed::default();
        for (id, body) in &desired.resources {
            let mut v = body.clone();
            match id {
                ResourceId::Hook { hook_group_id, hook_id } => {
                    v["hookGroupId"] = json!(hook_group_id);
                    v["hookId"] = json!(hook_id);
                    deployed.hooks.push(v);
                }
                ResourceId::Role(r) => {
                    v["roleId"] = json!(r);
                    v["created"] = json!("2026-01-01T00:00:00.000Z");
                    v["expandedScopes"] = v["scopes"].clone();
                    deployed.roles.push(v);
                }
            }
        }
        deployed
    }

    #[test]
    fn a_file_becomes_create_requests_with_the_services_defaults() {
        let desired = load(&[file("nightly.yml", NIGHTLY)]).unwrap();
        assert_eq!(desired.managed, Managed { hooks: vec!["project-releng/".into()], roles: vec!["hook-id:project-releng/".into()] });
        let hook = &desired.resources[&hook_id("project-releng", "nightly")];
        assert_eq!(hook["bindings"], json!([]));
        assert_eq!(hook["triggerSchema"], crate::model::default_trigger_schema());
        assert_eq!(hook["metadata"]["emailOnError"], json!(true));
        assert!(hook.get("hookId").is_none(), "the ids are in the URL");
        let role = &desired.resources[&role_id("hook-id:project-releng/nightly")];
        assert_eq!(role, &json!({"description": "what the nightly hook's tasks may do", "scopes": ["queue:create-task:highest:proj-releng/*"]}), "scopes in normal form");
    }

    #[test]
    fn json_files_read_the_same() {
        let yaml: Value = serde_norway::from_str(NIGHTLY).unwrap();
        let desired = load(&[file("a/nightly.json", &yaml.to_string())]).unwrap();
        assert_eq!(desired, load(&[file("nightly.yaml", NIGHTLY)]).unwrap());
        assert_eq!(Format::of("x.YML"), Some(Format::Yaml));
        assert_eq!(Format::of("README.md"), None);
        assert_eq!(Format::of("noextension"), None);
    }

    #[test]
    fn a_deployment_equal_to_the_files_has_nothing_to_do() {
        let desired = load(&[file("nightly.yml", NIGHTLY)]).unwrap();
        let mut deployed = deployed_as_declared(&desired);
        // The deployment lists the role's scopes as it stored them (in another order, or
        // not normalised): still the same role.
        deployed.roles[0]["scopes"] = json!(["queue:create-task:highest:proj-releng/ci", "queue:create-task:highest:proj-releng/*"]);
        let plan = plan(&desired, &deployed).unwrap();
        assert!(plan.is_empty(), "{plan:#?}");
        assert_eq!(plan.render(), "nothing to do");
    }

    #[test]
    fn an_empty_deployment_creates_roles_before_hooks() {
        let desired = load(&[file("nightly.yml", NIGHTLY)]).unwrap();
        let plan = plan(&desired, &Deployed::default()).unwrap();
        let ids: Vec<String> = plan.changes.iter().map(|c| c.id.to_string()).collect();
        assert_eq!(ids, ["role hook-id:project-releng/nightly", "hook project-releng/nightly"]);
        assert!(plan.changes.iter().all(|c| c.action == Action::Create));
        let text = plan.render();
        assert!(text.starts_with("+ role hook-id:project-releng/nightly\n    +{\n    +  \"description\""), "{text}");
        assert!(text.contains("\n+ hook project-releng/nightly\n"), "{text}");
        assert!(text.ends_with("\n\n2 to create, 0 to change, 0 to remove"), "{text}");
    }

    #[test]
    fn a_change_shows_a_diff_of_the_json() {
        let desired = load(&[file("nightly.yml", NIGHTLY)]).unwrap();
        let mut deployed = deployed_as_declared(&desired);
        deployed.hooks[0]["schedule"] = json!(["0 0 4 * * *"]);
        deployed.roles[0]["description"] = json!("old words");
        let plan = plan(&desired, &deployed).unwrap();
        assert_eq!(plan.summary(), "0 to create, 2 to change, 0 to remove");
        let text = plan.render();
        assert!(text.contains("~ role hook-id:project-releng/nightly\n    --- deployed\n    +++ files\n    @@ -1,5 +1,5 @@\n     {\n    -  \"description\": \"old words\",\n    +  \"description\": \"what the nightly hook's tasks may do\",\n"), "{text}");
        assert!(text.contains("    -    \"0 0 4 * * *\"\n    +    \"0 0 3 * * *\"\n"), "{text}");
        assert_eq!(plan.changes[1].desired.as_ref().unwrap()["schedule"], json!(["0 0 3 * * *"]), "the body sent is the file's");
    }

    #[test]
    fn removals_stay_within_the_managed_prefixes_and_hooks_go_before_roles() {
        let desired = load(&[file("nightly.yml", NIGHTLY)]).unwrap();
        let mut deployed = deployed_as_declared(&desired);
        let mut extra_hook = deployed.hooks[0].clone();
        extra_hook["hookId"] = json!("weekly");
        let mut outside_hook = extra_hook.clone();
        outside_hook["hookGroupId"] = json!("project-other");
        let mut extra_role = deployed.roles[0].clone();
        extra_role["roleId"] = json!("hook-id:project-releng/weekly");
        let mut outside_role = extra_role.clone();
        outside_role["roleId"] = json!("hook-id:project-other/weekly");
        deployed.hooks.extend([extra_hook, outside_hook]);
        deployed.roles.extend([extra_role, outside_role]);
        let plan = plan(&desired, &deployed).unwrap();
        let ids: Vec<String> = plan.changes.iter().map(|c| format!("{:?} {}", c.action, c.id)).collect();
        assert_eq!(ids, ["Remove hook project-releng/weekly", "Remove role hook-id:project-releng/weekly"]);
        assert_eq!(plan.render(), "- hook project-releng/weekly\n- role hook-id:project-releng/weekly\n\n0 to create, 0 to change, 2 to remove");
    }

    #[test]
    fn prefixes_match_ids_and_name_the_groups_worth_listing() {
        let managed = Managed { hooks: vec!["project-releng/".into(), "ci/nightly-".into(), "proj".into()], roles: vec!["hook-id:".into()] };
        assert!(managed.manages(&hook_id("project-releng", "anything/at/all")));
        assert!(managed.manages(&hook_id("ci", "nightly-build")));
        assert!(!managed.manages(&hook_id("ci", "weekly")));
        assert!(managed.manages(&hook_id("projx", "a")), "a plain prefix of the group");
        assert!(managed.manages(&role_id("hook-id:x/y")) && !managed.manages(&role_id("repo:x")));
        assert!(!managed.manages(&role_id("project-releng/")), "prefixes are per kind");
        for group in ["project-releng", "ci", "projx"] {
            assert!(managed.may_manage_hooks_in(group), "{group}");
        }
        assert!(!managed.may_manage_hooks_in("other") && !managed.may_manage_hooks_in("c"));
    }

    #[test]
    fn duplicates_name_both_files() {
        let errors = messages(load(&[file("a.yml", NIGHTLY), file("sub/b.yml", NIGHTLY)]).unwrap_err());
        assert_eq!(errors, [
            "role hook-id:project-releng/nightly is declared twice: in a.yml and in sub/b.yml",
            "hook project-releng/nightly is declared twice: in a.yml and in sub/b.yml",
        ]);
        let twice = "managed: {roles: [r]}\nroles:\n  - {roleId: r, description: d, scopes: []}\n  - {roleId: r, description: e, scopes: []}\n";
        assert_eq!(messages(load(&[file("one.yml", twice)]).unwrap_err()), ["one.yml: role r is declared twice"]);
    }

    #[test]
    fn declarations_outside_the_managed_prefixes_are_refused() {
        let text = "roles:\n  - {roleId: repo:x, description: d, scopes: []}\n";
        let errors = messages(load(&[file("roles.yml", text), file("m.yml", "managed: {hooks: [g/]}")]).unwrap_err());
        assert_eq!(errors, ["roles.yml: role repo:x is outside the managed prefixes (hooks: g/; roles: none); add a prefix for it to a `managed:` list"]);
        // Prefixes declared in another file count.
        assert!(load(&[file("roles.yml", text), file("m.yml", "managed: {roles: ['repo:']}")]).is_ok());
    }

    #[test]
    fn malformed_files_name_the_file_and_the_problem() {
        let cases = [
            ("bad.yml", "hooks: [\n", "bad.yml: not valid YAML: "),
            ("bad.json", "{\"hooks\": ", "bad.json: not valid JSON: "),
            ("list.yml", "- a\n- b\n", "list.yml: must be a mapping of `managed`, `roles` and/or `hooks`"),
            ("typo.yml", "hook: []\n", "typo.yml: unknown field `hook`, expected one of `managed`, `roles`, `hooks`"),
            ("empty.yml", "managed: {roles: ['']}\n", "empty.yml: managed.roles: an empty prefix would manage"),
            ("noid.yml", "hooks:\n  - {hookGroupId: g, metadata: {name: n, description: d, owner: a@example.com}, task: {}}\n", "noid.yml: hooks[0]: missing field `hookId`"),
            ("field.yml", "hooks:\n  - {hookGroupId: g, hookId: h, expires: 1 day, metadata: {name: n, description: d, owner: a@example.com}, task: {}}\n", "field.yml: hooks[0] (g/h): unknown field `expires`"),
            ("owner.yml", "hooks:\n  - {hookGroupId: g, hookId: h, metadata: {name: n, description: d, owner: nobody}, task: {}}\n", "owner.yml: hooks[0] (g/h): metadata.owner must be an e-mail address"),
            ("gid.yml", "hooks:\n  - {hookGroupId: g/x, hookId: h, metadata: {name: n, description: d, owner: a@example.com}, task: {}}\n", "gid.yml: hooks[0] (g/x/h): hookGroupId `g/x` must match"),
            ("role.yml", "roles:\n  - {roleId: r, scopes: []}\n", "role.yml: roles[0] (r): missing field `description`"),
            ("notes.txt", "", "notes.txt: not a .yml, .yaml or .json file"),
        ];
        for (name, text, expected) in cases {
            let errors = messages(load(&[file(name, text)]).unwrap_err());
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].starts_with(expected), "{name}: {}", errors[0]);
        }
        // Every bad file is reported, each once; a good one beside them adds nothing.
        let all = load(&[file("a.yml", "x: 1"), file("b.yml", "- 1"), file("good.yml", NIGHTLY)]).unwrap_err();
        assert_eq!(all.0.len(), 2, "{all}");
        assert!(all.to_string().starts_with("a.yml: unknown field `x`"), "{all}");
    }

    #[test]
    fn an_empty_file_declares_nothing() {
        assert_eq!(load(&[file("empty.yml", "# nothing yet\n")]).unwrap(), Desired::default());
    }

    #[test]
    fn an_unreadable_deployment_answer_is_an_error() {
        let desired = load(&[file("nightly.yml", NIGHTLY)]).unwrap();
        let deployed = Deployed { hooks: vec![json!({"hookGroupId": "g"})], roles: vec![] };
        assert_eq!(plan(&desired, &deployed).unwrap_err().kind, "hook");
    }

    #[test]
    fn prefixes_that_name_their_group_need_only_that_group() {
        let managed = |hooks: &[&str]| Managed { hooks: hooks.iter().map(|s| s.to_string()).collect(), roles: vec![] };
        assert_eq!(managed(&["b/", "a/nightly-", "b/x"]).named_groups(), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(managed(&["a/", "proj"]).named_groups(), None);
    }

    #[test]
    fn fields_a_deployment_adds_are_not_compared() {
        let hook = json!({"hookGroupId": "g", "hookId": "h", "metadata": {"name": "n", "description": "d", "owner": "o@example.com", "emailOnError": true, "labels": {}},
                          "task": {}, "schedule": [], "bindings": [], "triggerSchema": {}, "createdBy": "someone"});
        let resources = deployed_resources(&Deployed { hooks: vec![hook], roles: vec![] }).unwrap();
        assert_eq!(resources.len(), 1);
    }

    #[test]
    fn the_readme_example_is_consistent() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hooks/nightly.yml")).unwrap();
        let desired = load(&[file("examples/hooks/nightly.yml", &text)]).unwrap();
        assert!(desired.resources.keys().any(|id| matches!(id, ResourceId::Hook { .. })));
        assert!(desired.resources.keys().any(|id| matches!(id, ResourceId::Role(_))));
    }
}
