//! `taskhooks apply PATH`: hooks and roles kept as files (the format and the comparison are
//! `taskhooks_shared::hook_files`), compared with a Taskcluster deployment through its
//! public API, so the same files work against this service and against upstream's: Hooks
//! v1 `listHookGroups`, `listHooks`, `createHook`, `updateHook`, `removeHook`; Auth v1
//! `listRoles`, `createRole`, `updateRole`, `deleteRole`. Prints the plan; changes the
//! deployment only with `--apply`.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use taskhooks_shared::hawk::{client_header, Outgoing};
use taskhooks_shared::hook_files::{self, Action, Change, Deployed, Format, ResourceId, SourceFile};

/// Exit status with `--check` when the plan is not empty. Errors exit 2, as `diff` does,
/// so a script can tell "something to do" from "could not find out".
pub const EXIT_CHANGES_PENDING: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

/// One API call, answer included. Taskcluster's own calls take seconds at most; this only
/// bounds a deployment that stopped answering.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest hooks file read (the largest task templates in use are tens of kilobytes).
const MAX_FILE_BYTES: u64 = 8 << 20;

/// The largest answer read: a `listHooks` of a group with many large task templates.
const MAX_ANSWER_BYTES: u64 = 100 << 20;

#[derive(Debug, PartialEq)]
pub struct ApplyOptions {
    pub path: PathBuf,
    pub apply: bool,
    pub check: bool,
}

/// `PATH [--apply | --check]`; `Err("help")` for `--help`, as `main`'s parser.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<ApplyOptions> {
    let (mut path, mut apply, mut check) = (None, false, false);
    for arg in args {
        match arg.as_str() {
            "--apply" => apply = true,
            "--check" => check = true,
            "-h" | "--help" => bail!("help"),
            a if !a.starts_with('-') && path.is_none() => path = Some(PathBuf::from(a)),
            other => bail!("unknown argument `{other}`"),
        }
    }
    if apply && check {
        bail!("--apply and --check exclude each other: --check only plans");
    }
    let path = path.ok_or_else(|| anyhow!("`apply` needs a PATH: a directory of .yml, .yaml or .json files"))?;
    Ok(ApplyOptions { path, apply, check })
}

/// Runs the command; the exit status: 0, or [`EXIT_CHANGES_PENDING`] with `--check`.
pub fn run(opts: &ApplyOptions) -> Result<i32> {
    let files = read_files(&opts.path)?;
    // The files are checked before the deployment is asked anything: a bad file is
    // reported the same with or without credentials, and nothing is applied.
    let desired = hook_files::load(&files).map_err(|e| anyhow!("{e}\nnothing was applied"))?;
    let tc = Taskcluster::from_env()?;
    let deployed = tc.deployed(&desired.managed)?;
    let plan = hook_files::plan(&desired, &deployed)?;
    println!("{}", plan.render());
    if !opts.apply {
        if !plan.is_empty() {
            println!("(not applied: run again with --apply)");
        }
        return Ok(if opts.check && !plan.is_empty() { EXIT_CHANGES_PENDING } else { 0 });
    }
    for (done, change) in plan.changes.iter().enumerate() {
        tc.apply(change).with_context(|| {
            format!("stopped after {done} of {} changes; the rest were not applied", plan.changes.len())
        })?;
        println!("{} {}", past_tense(change.action), change.id);
    }
    if !plan.is_empty() {
        println!("applied: {}", plan.summary().replace(" to create", " created").replace(" to change", " changed").replace(" to remove", " removed"));
    }
    Ok(0)
}

fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Remove => "removed",
    }
}

/// The declaration files under `root` (or `root` itself), in name order: `.yml`, `.yaml`
/// and `.json`, skipping hidden files and directories (`.git`, editors' files).
fn read_files(root: &Path) -> Result<Vec<SourceFile>> {
    let meta = std::fs::metadata(root).with_context(|| format!("{}", root.display()))?;
    let mut paths = Vec::new();
    if meta.is_file() {
        paths.push(root.to_path_buf());
    } else {
        collect(root, &mut paths)?;
        if paths.is_empty() {
            bail!("{}: no .yml, .yaml or .json files in it", root.display());
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let size = std::fs::metadata(&path).with_context(|| format!("{}: cannot read it", path.display()))?.len();
            if size > MAX_FILE_BYTES {
                bail!("{}: {size} bytes; a hooks file may have at most {MAX_FILE_BYTES}", path.display());
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read it", path.display()))?;
            Ok(SourceFile { name: path.display().to_string(), text })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        // Directories are descended only when real ones: a symlink back up the tree would
        // loop. A symlinked file is read like any other.
        if kind.is_dir() {
            collect(&path, out)?;
        } else if (kind.is_file() || (kind.is_symlink() && path.is_file())) && Format::of(&path.to_string_lossy()).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// Taskcluster credentials from the environment, as the official clients read them.
struct Credentials {
    client_id: String,
    access_token: String,
    /// Temporary credentials' certificate (`TASKCLUSTER_CERTIFICATE`), sent in Hawk's `ext`.
    certificate: Option<Value>,
}

// By hand, so that no debug print can show the access token.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A failed call: the deployment's error (`code`, `message`), or no answer. Never the
/// request's headers, so never a credential.
#[derive(Debug)]
enum CallError {
    Api { call: String, status: u16, code: String, message: String },
    Transport { call: String, message: String },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Api { call, status, code, message } => write!(f, "{call}: HTTP {status} {code}: {message}"),
            CallError::Transport { call, message } => write!(f, "{call}: no answer: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

struct Taskcluster {
    root_url: String,
    credentials: Option<Credentials>,
    agent: ureq::Agent,
}

impl Taskcluster {
    fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let root_url = var("TASKCLUSTER_ROOT_URL")
            .ok_or_else(|| anyhow!("TASKCLUSTER_ROOT_URL is not set: the deployment to compare with (e.g. https://tc.example.com)"))?;
        let root_url = checked_root_url(&root_url)?;
        let credentials = match (var("TASKCLUSTER_CLIENT_ID"), var("TASKCLUSTER_ACCESS_TOKEN")) {
            (Some(client_id), Some(access_token)) => {
                let certificate = match var("TASKCLUSTER_CERTIFICATE") {
                    None => None,
                    Some(text) => Some(
                        serde_json::from_str::<Value>(&text)
                            .ok()
                            .filter(Value::is_object)
                            .ok_or_else(|| anyhow!("TASKCLUSTER_CERTIFICATE is not a JSON object"))?,
                    ),
                };
                Some(Credentials { client_id, access_token, certificate })
            }
            // No credentials at all: calls are made without, with the scopes the
            // deployment gives `anonymous`.
            (None, None) => None,
            (Some(_), None) => bail!("TASKCLUSTER_CLIENT_ID is set without TASKCLUSTER_ACCESS_TOKEN"),
            (None, Some(_)) => bail!("TASKCLUSTER_ACCESS_TOKEN is set without TASKCLUSTER_CLIENT_ID"),
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            // A redirected request would not match its Hawk signature.
            .max_redirects(0)
            .build()
            .new_agent();
        Ok(Taskcluster { root_url, credentials, agent })
    }

    /// The managed part of the deployment (and possibly more; the plan filters): the hooks
    /// of every group that may hold a managed hook, and the roles.
    fn deployed(&self, managed: &hook_files::Managed) -> Result<Deployed> {
        let mut deployed = Deployed::default();
        if !managed.hooks.is_empty() {
            // Prefixes that name their group (`project-releng/...`) need only that group's
            // `listHooks` (and only `hooks:list-hooks:<group>`); a prefix within a group
            // name (`proj`) needs the list of groups.
            let groups: Vec<String> = match managed.named_groups() {
                Some(groups) => groups,
                None => {
                    let all = self.list("listHookGroups", "hooks", "hooks", "groups")?;
                    all.iter().filter_map(Value::as_str).filter(|g| managed.may_manage_hooks_in(g)).map(str::to_string).collect()
                }
            };
            for group in &groups {
                match self.list("listHooks", "hooks", &format!("hooks/{}", encode(group)), "hooks") {
                    Ok(hooks) => deployed.hooks.extend(hooks),
                    // A group without hooks does not exist.
                    Err(CallError::Api { status: 404, .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if !managed.roles.is_empty() {
            deployed.roles = self.list("listRoles", "auth", "roles/", "roles")?;
        }
        Ok(deployed)
    }

    /// A list call, all its pages: an object's `field` followed by `continuationToken`,
    /// or a plain array (`listRoles` answers one, unpaginated).
    fn list(&self, name: &str, service: &str, path: &str, field: &str) -> Result<Vec<Value>, CallError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page_path = match &token {
                Some(t) => format!("{path}?continuationToken={}", encode(t)),
                None => path.to_string(),
            };
            let answer = self.call(name, "GET", service, &page_path, None)?;
            let bad = |what: &str| CallError::Api { call: name.to_string(), status: 200, code: "UnexpectedAnswer".into(), message: what.to_string() };
            match answer {
                Value::Array(page) => {
                    items.extend(page);
                    return Ok(items);
                }
                Value::Object(mut page) => {
                    match page.remove(field) {
                        Some(Value::Array(page_items)) => items.extend(page_items),
                        _ => return Err(bad(&format!("the answer has no `{field}` list"))),
                    }
                    match page.remove("continuationToken") {
                        // A server answering the same token again would be asked for ever.
                        Some(Value::String(t)) if token.as_deref() == Some(t.as_str()) => return Err(bad("the same continuationToken twice")),
                        Some(Value::String(t)) if !t.is_empty() => token = Some(t),
                        _ => return Ok(items),
                    }
                }
                _ => return Err(bad("the answer is neither a list nor an object")),
            }
        }
    }

    fn apply(&self, change: &Change) -> Result<(), CallError> {
        let (service, path) = match &change.id {
            ResourceId::Role(role_id) => ("auth", format!("roles/{}", encode(role_id))),
            ResourceId::Hook { hook_group_id, hook_id } => ("hooks", format!("hooks/{}/{}", encode(hook_group_id), encode(hook_id))),
        };
        let (name, method) = match (&change.id, change.action) {
            (ResourceId::Role(_), Action::Create) => ("createRole", "PUT"),
            (ResourceId::Role(_), Action::Update) => ("updateRole", "POST"),
            (ResourceId::Role(_), Action::Remove) => ("deleteRole", "DELETE"),
            (ResourceId::Hook { .. }, Action::Create) => ("createHook", "PUT"),
            (ResourceId::Hook { .. }, Action::Update) => ("updateHook", "POST"),
            (ResourceId::Hook { .. }, Action::Remove) => ("removeHook", "DELETE"),
        };
        self.call(&format!("{name} {}", change.id.name()), method, service, &path, change.desired.as_ref()).map(drop)
    }

    /// One Hawk-signed call to `<rootUrl>/api/<service>/v1/<path>`; `call` names it in
    /// errors.
    fn call(&self, call: &str, method: &str, service: &str, path: &str, body: Option<&Value>) -> Result<Value, CallError> {
        let url = format!("{}/api/{service}/v1/{path}", self.root_url);
        let transport = |message: String| CallError::Transport { call: call.to_string(), message };
        let bytes = body.map(|b| serde_json::to_vec(b).expect("serialises")).unwrap_or_default();
        let content_type = if body.is_some() { "application/json" } else { "" };
        let mut request = ureq::http::Request::builder().method(method).uri(&url).header("accept", "application/json");
        if body.is_some() {
            request = request.header("content-type", content_type);
        }
        if let Some(c) = &self.credentials {
            let ext = c.certificate.as_ref().map(|cert| json!({"certificate": cert}));
            let nonce = taskhooks_shared::ids::nice_slugid();
            let outgoing = Outgoing { method, url: &url, content_type, body: &bytes };
            let header = client_header(&c.client_id, &c.access_token, &outgoing, ext.as_ref(), chrono::Utc::now().timestamp(), &nonce[..12])
                .ok_or_else(|| transport(format!("cannot sign a request to {url}")))?;
            request = request.header("authorization", header);
        }
        let answer = if body.is_some() {
            request.body(bytes).map(|r| self.agent.run(r))
        } else {
            request.body(()).map(|r| self.agent.run(r))
        };
        let mut response = answer.map_err(|e| transport(e.to_string()))?.map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_vec().map_err(|e| transport(e.to_string()))?;
        let parsed: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            // `deleteRole` and `removeHook` answer an empty body.
            return Ok(parsed);
        }
        let code = parsed.get("code").and_then(Value::as_str).unwrap_or("UnknownError").to_string();
        let message = parsed
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&text).chars().take(1000).collect());
        Err(CallError::Api { call: call.to_string(), status, code, message })
    }
}

/// The root URL without its trailing `/`: https, or http to this machine only (Hawk signs
/// requests but does not hide them).
fn checked_root_url(root_url: &str) -> Result<String> {
    let root_url = root_url.trim_end_matches('/');
    let Some((scheme, rest)) = root_url.split_once("://") else {
        bail!("TASKCLUSTER_ROOT_URL `{root_url}` is not an absolute URL");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => authority,
    };
    match scheme {
        "https" => Ok(root_url.to_string()),
        "http" if is_loopback(host) => Ok(root_url.to_string()),
        "http" => bail!("TASKCLUSTER_ROOT_URL `{root_url}`: plain http is only for this machine (localhost, 127.0.0.1); use https"),
        other => bail!("TASKCLUSTER_ROOT_URL `{root_url}`: unsupported scheme `{other}`"),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A path segment as the official clients encode parameters (`encodeURIComponent`'s
/// unreserved set): a `/` in a hookId or roleId travels as `%2F`.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<ApplyOptions> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        assert_eq!(args(&["dir"]).unwrap(), ApplyOptions { path: "dir".into(), apply: false, check: false });
        assert_eq!(args(&["--apply", "dir"]).unwrap(), ApplyOptions { path: "dir".into(), apply: true, check: false });
        assert!(args(&["dir", "--check"]).unwrap().check);
        assert!(args(&[]).unwrap_err().to_string().contains("needs a PATH"));
        assert!(args(&["a", "b"]).unwrap_err().to_string().contains("`b`"));
        assert!(args(&["a", "--apply", "--check"]).is_err());
        assert_eq!(args(&["--help"]).unwrap_err().to_string(), "help");
    }

    #[test]
    fn root_urls() {
        assert_eq!(checked_root_url("https://tc.example.com/").unwrap(), "https://tc.example.com");
        assert_eq!(checked_root_url("http://127.0.0.1:3000").unwrap(), "http://127.0.0.1:3000");
        assert!(checked_root_url("http://localhost").is_ok() && checked_root_url("http://[::1]:80").is_ok());
        assert!(checked_root_url("http://tc.example.com").unwrap_err().to_string().contains("use https"));
        assert!(checked_root_url("http://127.0.0.1.example.com").is_err());
        assert!(checked_root_url("tc.example.com").is_err());
    }

    #[test]
    fn segments_are_encoded_as_the_official_clients_do() {
        assert_eq!(encode("hook-id:project-releng/nightly"), "hook-id%3Aproject-releng%2Fnightly");
        assert_eq!(encode("a_b-c.d*"), "a_b-c.d*");
    }

    #[test]
    fn credentials_never_print_the_token() {
        let c = Credentials { client_id: "me".into(), access_token: "secret-token".into(), certificate: None };
        assert!(!format!("{c:?}").contains("secret-token"));
    }
}
