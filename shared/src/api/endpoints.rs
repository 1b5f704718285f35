//! The API surface, declared once: for each method its service, route (URL parameters in
//! `<..>`), name, title, access rule (SPEC §5's scope templates, or public), query keys,
//! input and output schemas, description and handler. Routing, dispatch, URL-parameter
//! and query checks, input validation, the served API references (`super::references`),
//! the README's API tables and the output checks of the tests all read this table, as
//! Taskcluster's services derive theirs from `APIBuilder` declarations.

use super::{Call, Service};
use crate::error::{ApiError, ErrorCode};
use crate::render::FiredBy;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Access {
    /// Never looks at credentials (monitoring, `triggerHookWithToken`, public reads).
    Public,
    /// Needs to know the caller, but no particular scope (`currentScopes`).
    Authenticated,
    /// A scope expression template (JSON) over the URL parameters.
    Scopes(&'static str),
    /// Signed as a GitHub webhook (`X-Hub-Signature-256` over the raw body), not Hawk.
    GithubSignature,
}

/// What a method takes as its body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Input {
    /// No body is read (one sent is parsed, and must be JSON, as upstream's).
    None,
    /// A JSON body, declared as `Content-Type: application/json`, valid against this
    /// schema (relative to `<rootUrl>/schemas/<service>/`, as the references write it).
    Json(&'static str),
    /// The raw bytes, for the handler to read (a GitHub delivery: JSON or a form).
    Raw,
}

/// Upstream's stability levels (`api-reference-v0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stability {
    Stable,
    Deprecated,
}

impl Stability {
    pub fn as_str(self) -> &'static str {
        match self {
            Stability::Stable => "stable",
            Stability::Deprecated => "deprecated",
        }
    }
}

pub(crate) type Handler = for<'s, 'a, 'c, 'r> fn(&'s Service<'a>, &'c Call<'r>) -> Result<Value, ApiError>;

pub(crate) struct Endpoint {
    /// `hooks`, `auth`, `queue`, `github`, or `taskhooks` (our extensions): the
    /// `/api/<service>/v1` prefix.
    pub service: &'static str,
    pub method: &'static str,
    pub route: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub category: &'static str,
    pub stability: Stability,
    /// Markdown: the reference's description and the README table's last column.
    pub description: &'static str,
    pub access: Access,
    pub query: &'static [&'static str],
    pub input: Input,
    /// The answer's schema, relative to `<rootUrl>/schemas/<service>/`.
    pub output: Option<&'static str>,
    pub handler: Handler,
    /// Listed in the references and README; `false` for the aliases the official
    /// clients need (a route without its trailing `/`).
    pub listed: bool,
    /// Counted in the request metrics; `false` for load balancers' probes, which would
    /// write on every poll.
    pub metered: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} /api/{}/v1{}", self.name, self.method, self.service, self.route)
    }
}

impl Endpoint {
    const fn new(service: &'static str, method: &'static str, route: &'static str, name: &'static str, title: &'static str, access: Access, handler: Handler) -> Self {
        Endpoint {
            service,
            method,
            route,
            name,
            title,
            category: "",
            stability: Stability::Stable,
            description: "",
            access,
            query: &[],
            input: Input::None,
            output: None,
            handler,
            listed: true,
            metered: true,
        }
    }

    /// The URL parameters of the route, in order.
    pub fn args(&self) -> impl Iterator<Item = &'static str> {
        self.route.split('/').filter_map(|s| s.strip_prefix('<').and_then(|s| s.strip_suffix('>')))
    }

    /// SPEC §2.2 step 4: each URL parameter against its pattern; every bad one is named.
    pub fn check_params(&self, params: &BTreeMap<&'static str, String>) -> Result<(), ApiError> {
        let errors: Vec<String> = params
            .iter()
            .filter_map(|(name, value)| {
                let param = param(name).expect("every route parameter is declared in PARAMS (a unit test checks)");
                (!(param.valid)(value)).then(|| format!("{name} `{value}` must match regular expression {}", param.pattern))
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::InvalidRequestArguments, errors.join("\n")))
        }
    }

    /// SPEC §2.2 step 5: only declared keys (and `bewit`), `limit` digits only.
    pub fn check_query(&self, raw: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let mut out = BTreeMap::new();
        for (k, v) in super::parse_query(raw) {
            if k == "bewit" {
                continue;
            }
            if !self.query.contains(&k.as_str()) {
                return Err(ApiError::new(ErrorCode::InvalidRequestArguments, format!("query-string parameter `{k}` is not allowed for {}", self.name)));
            }
            let ok = match k.as_str() {
                "limit" | "count" => !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
                "continuationToken" => !v.is_empty(),
                _ => true,
            };
            if !ok {
                return Err(ApiError::new(ErrorCode::InvalidRequestArguments, format!("query-string parameter `{k}` has an invalid value {v:?}")));
            }
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// A URL parameter: the pattern the references and errors state, and its check.
pub(crate) struct Param {
    pub name: &'static str,
    /// Upstream's regular expression for it (ours where upstream has none).
    pub pattern: &'static str,
    /// The same rule as code: a wasm instance lives for one request, so a compiled regex
    /// would be compiled again on every call. A unit test holds each check to its
    /// pattern with the `regex` crate.
    pub valid: fn(&str) -> bool,
}

pub(crate) static PARAMS: &[Param] = &[
    Param { name: "hookGroupId", pattern: "^[a-zA-Z0-9-_]{1,1000}$", valid: |v| crate::ids::HookGroupId::new(v).is_ok() },
    Param { name: "hookId", pattern: "^[a-zA-Z0-9-_/]{1,1000}$", valid: |v| crate::ids::HookId::new(v).is_ok() },
    Param { name: "token", pattern: "^.+$", valid: |v| !v.is_empty() },
    Param { name: "clientId", pattern: "^[A-Za-z0-9!@/:.+|_-]+$", valid: valid_client_id },
    Param { name: "roleId", pattern: "^[\\x20-\\x7e]+$", valid: valid_role_id },
    Param { name: "entityType", pattern: "^(client|role|secret|hook|worker-pool)$", valid: |v| crate::audit::ENTITY_TYPES.contains(&v) },
    Param { name: "entityId", pattern: "^.+$", valid: |v| !v.is_empty() },
    Param { name: "taskId", pattern: SLUGID, valid: crate::ids::is_slugid },
    Param { name: "taskGroupId", pattern: SLUGID, valid: crate::ids::is_slugid },
    Param { name: "project", pattern: "^[A-Za-z0-9_-]{1,64}$", valid: crate::cron_project::valid_project },
];

/// Upstream's `SLUGID_PATTERN`.
const SLUGID: &str = "^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$";

pub(crate) fn param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

pub(crate) fn valid_client_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!@/:.+|_-".contains(&b))
}

pub(crate) fn valid_role_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

const MODIFY_HOOK: &str = r#"{"AllOf": ["hooks:modify-hook:<hookGroupId>/<hookId>", "assume:hook-id:<hookGroupId>/<hookId>"]}"#;
const GET_HOOK: &str = r#""hooks:get:<hookGroupId>:<hookId>""#;
const PAGED: &[&str] = &["continuationToken", "limit"];

/// `ep!(service METHOD route name, title, access, handler; field = value, ...)`: the
/// fields not given keep `Endpoint::new`'s defaults.
macro_rules! ep {
    ($service:literal $method:ident $route:literal $name:literal, $title:literal, $access:expr, $handler:expr $(; $($field:ident = $value:expr),* $(,)?)?) => {{
        #[allow(unused_mut)]
        let mut e = Endpoint::new($service, stringify!($method), $route, $name, $title, $access, $handler);
        $($(e.$field = $value;)*)?
        e
    }};
}

use Access::*;

/// Order matters only where two routes could match the same path; none can.
pub(crate) static ENDPOINTS: &[Endpoint] = &[
    // Hooks v1 (SPEC §5), with upstream's names, routes, scopes and schemas.
    ep!("hooks" GET "/ping" "ping", "Ping Server", Public, |s, _| s.ping();
        category = "Monitoring", metered = false, description = "Whether the service is up, and for how long (`uptime`, seconds since this build first ran)."),
    ep!("hooks" GET "/__lbheartbeat__" "lbheartbeat", "Load Balancer Heartbeat", Public, |_, _| Ok(Value::Object(Default::default()));
        category = "Monitoring", metered = false, description = "Always `{}`: for load balancers."),
    ep!("hooks" GET "/__version__" "version", "Taskcluster Version", Public, |s, _| s.version();
        category = "Monitoring", description = "What runs: `{source, version, commit, build}`."),
    ep!("hooks" GET "/__heartbeat__" "heartbeat", "Heartbeat", Public, |s, _| s.heartbeat();
        category = "Monitoring", description = "`{}` when the key-value store and every configured dependency answer; else 503 naming those that did not."),
    ep!("hooks" GET "/hooks" "listHookGroups", "List hook groups", Scopes(r#""hooks:list-hooks:""#), |s, c| s.list_hook_groups(c);
        category = "Hooks", output = Some("v1/list-hook-groups-response.json#"), description = "The hook groups that hold at least one hook."),
    ep!("hooks" GET "/hooks/<hookGroupId>" "listHooks", "List hooks in a given group", Scopes(r#""hooks:list-hooks:<hookGroupId>""#), |s, c| s.list_hooks(c);
        category = "Hooks", output = Some("v1/list-hooks-response.json#"), description = "The definitions of the hooks in a group; 404 for a group without hooks."),
    ep!("hooks" GET "/hooks/<hookGroupId>/<hookId>" "hook", "Get hook definition", Scopes(GET_HOOK), |s, c| s.hook(c);
        category = "Hooks", output = Some("v1/hook-definition.json#"), description = "A hook's definition."),
    ep!("hooks" GET "/hooks/<hookGroupId>/<hookId>/status" "getHookStatus", "Get hook status", Scopes(r#""hooks:status:<hookGroupId>/<hookId>""#), |s, c| s.hook_status(c);
        category = "Hook Status", stability = Stability::Deprecated, output = Some("v1/hook-status.json#"),
        description = "The hook's last fire and next scheduled date (superseded by `listLastFires`)."),
    ep!("hooks" PUT "/hooks/<hookGroupId>/<hookId>" "createHook", "Create a hook", Scopes(MODIFY_HOOK), |s, c| s.create_hook(c);
        category = "Hooks", input = Input::Json("v1/create-hook-request.json#"), output = Some("v1/hook-definition.json#"),
        description = "Creates a hook; re-creating an identical one succeeds, a different one is a 409."),
    ep!("hooks" POST "/hooks/<hookGroupId>/<hookId>" "updateHook", "Update a hook", Scopes(MODIFY_HOOK), |s, c| s.update_hook(c);
        category = "Hooks", input = Input::Json("v1/create-hook-request.json#"), output = Some("v1/hook-definition.json#"),
        description = "Replaces a hook's definition (an omitted `schedule` clears it, omitted `bindings` keep theirs)."),
    ep!("hooks" DELETE "/hooks/<hookGroupId>/<hookId>" "removeHook", "Delete a hook", Scopes(r#""hooks:modify-hook:<hookGroupId>/<hookId>""#), |s, c| s.remove_hook(c);
        category = "Hooks", description = "Removes a hook, its last fires and its Pulse queue; `{}` also when it did not exist."),
    ep!("hooks" POST "/hooks/<hookGroupId>/<hookId>/trigger" "triggerHook", "Trigger a hook", Scopes(r#""hooks:trigger-hook:<hookGroupId>/<hookId>""#), |s, c| s.trigger(c, FiredBy::TriggerHook);
        category = "Hooks", input = Input::Json("v1/trigger-hook.json#"), output = Some("v1/trigger-hook-response.json#"),
        description = "Fires the hook with the body as `payload` (checked against its `triggerSchema`): `{taskId}`, or `{}` when the template declines."),
    ep!("hooks" GET "/hooks/<hookGroupId>/<hookId>/token" "getTriggerToken", "Get a trigger token", Scopes(r#""hooks:get-trigger-token:<hookGroupId>/<hookId>""#), |s, c| s.get_trigger_token(c);
        category = "Hooks", output = Some("v1/trigger-token-response.json#"), description = "The hook's secret trigger token."),
    ep!("hooks" POST "/hooks/<hookGroupId>/<hookId>/token" "resetTriggerToken", "Reset a trigger token", Scopes(r#""hooks:reset-trigger-token:<hookGroupId>/<hookId>""#), |s, c| s.reset_trigger_token(c);
        category = "Hooks", output = Some("v1/trigger-token-response.json#"), description = "A new trigger token; the old one stops working."),
    ep!("hooks" POST "/hooks/<hookGroupId>/<hookId>/trigger/<token>" "triggerHookWithToken", "Trigger a hook with a token", Public, |s, c| s.trigger(c, FiredBy::TriggerHookWithToken);
        category = "Hooks", input = Input::Json("v1/trigger-hook.json#"), output = Some("v1/trigger-hook-response.json#"),
        description = "`triggerHook` for whoever holds the hook's trigger token (compared in constant time), without credentials."),
    ep!("hooks" GET "/hooks/<hookGroupId>/<hookId>/last-fires" "listLastFires", "Get information about recent hook fires", Scopes(r#""hooks:list-last-fires:<hookGroupId>/<hookId>""#), |s, c| s.list_last_fires(c);
        category = "Hook Status", query = PAGED, output = Some("v1/list-lastFires-response.json#"),
        description = "The hook's fires, newest first, paged (`limit`, `continuationToken`; a token the service did not issue starts at the first page)."),
    // Auth v1 subset: clients and roles (standalone mode).
    ep!("auth" GET "/ping" "ping", "Ping Server", Public, |s, _| s.ping(); category = "Monitoring", metered = false, description = "Whether the service is up."),
    ep!("auth" GET "/clients/" "listClients", "List Clients", Public, |s, c| s.list_clients(c);
        category = "Clients", query = &["prefix", "continuationToken", "limit"], output = Some("v1/list-clients-response.json#"),
        description = "The stored clients (`prefix` narrows them), without access tokens."),
    // The official clients drop the trailing `/` the Auth API declares; take both.
    ep!("auth" GET "/clients" "listClients", "List Clients", Public, |s, c| s.list_clients(c);
        query = &["prefix", "continuationToken", "limit"], output = Some("v1/list-clients-response.json#"), listed = false),
    ep!("auth" GET "/clients/<clientId>" "client", "Get Client", Public, |s, c| s.client(c);
        category = "Clients", output = Some("v1/get-client-response.json#"), description = "A client, without its access token."),
    ep!("auth" PUT "/clients/<clientId>" "createClient", "Create Client", Scopes(r#""auth:create-client:<clientId>""#), |s, c| s.create_client(c);
        category = "Clients", input = Input::Json("v1/create-client-request.json#"), output = Some("v1/create-client-response.json#"),
        description = "Creates a client with scopes the caller holds itself; the answer carries its access token, which is never shown again."),
    ep!("auth" DELETE "/clients/<clientId>" "deleteClient", "Delete Client", Scopes(r#""auth:delete-client:<clientId>""#), |s, c| s.delete_client(c);
        category = "Clients", description = "Deletes a client; `{}` also when it did not exist."),
    ep!("auth" POST "/clients/<clientId>/reset" "resetAccessToken", "Reset `accessToken`", Scopes(r#""auth:reset-access-token:<clientId>""#), |s, c| s.reset_access_token(c);
        category = "Clients", output = Some("v1/create-client-response.json#"), description = "A new access token for the client; the old one stops working."),
    ep!("auth" GET "/roles/" "listRoles", "List Roles (no pagination)", Public, |s, c| s.list_roles(c);
        category = "Roles", output = Some("v1/list-roles-response.json#"), description = "Every role, with its expanded scopes."),
    ep!("auth" GET "/roles" "listRoles", "List Roles (no pagination)", Public, |s, c| s.list_roles(c); output = Some("v1/list-roles-response.json#"), listed = false),
    ep!("auth" GET "/roles/<roleId>" "role", "Get Role", Public, |s, c| s.role(c);
        category = "Roles", output = Some("v1/get-role-response.json#"), description = "A role, with its expanded scopes."),
    ep!("auth" PUT "/roles/<roleId>" "createRole", "Create Role", Scopes(r#""auth:create-role:<roleId>""#), |s, c| s.write_role(c, true);
        category = "Roles", input = Input::Json("v1/create-role-request.json#"), output = Some("v1/get-role-response.json#"),
        description = "Creates a role with scopes the caller holds itself; no role set that expands without end is stored."),
    ep!("auth" POST "/roles/<roleId>" "updateRole", "Update Role", Scopes(r#""auth:update-role:<roleId>""#), |s, c| s.write_role(c, false);
        category = "Roles", input = Input::Json("v1/create-role-request.json#"), output = Some("v1/get-role-response.json#"),
        description = "Replaces a role's description and scopes, under the same rules as `createRole`."),
    ep!("auth" DELETE "/roles/<roleId>" "deleteRole", "Delete Role", Scopes(r#""auth:delete-role:<roleId>""#), |s, c| s.delete_role(c);
        category = "Roles", description = "Deletes a role; `{}` also when it did not exist."),
    ep!("auth" GET "/scopes/current" "currentScopes", "Get Current Scopes", Authenticated, |_, c| Ok(serde_json::json!({"scopes": c.caller.scopes}));
        category = "Scopes and Auth", output = Some("v1/scopeset.json#"), description = "The caller's scopes, expanded."),
    ep!("auth" POST "/scopes/expand" "expandScopes", "Expand Scopes", Public, |s, c| s.expand_scopes(c);
        category = "Scopes and Auth", input = Input::Json("v1/scopeset.json#"), output = Some("v1/scopeset.json#"), description = "The given scopes with every role they assume expanded."),
    // Audit history (`crate::audit`), as upstream serves it.
    ep!("auth" GET "/audit/<entityType>/<entityId>" "getEntityHistory", "Get Entity History", Scopes(r#""auth:audit-history:<entityType>""#), |s, c| s.audit_page(c, false);
        category = "Audit", query = PAGED, output = Some("v1/get-entity-history-response.json#"),
        description = "Who created, changed or deleted a hook, role or client, and when, oldest first (30 days are kept)."),
    ep!("auth" GET "/clients/<clientId>/audit" "listAuditHistory", "List Audit History", Scopes(r#""auth:client-audit-history:<clientId>""#), |s, c| s.audit_page(c, false);
        category = "Audit", query = PAGED, output = Some("v1/get-entity-history-response.json#"), description = "What a client did, oldest first."),
    // The embedded queue (Queue v1 subset). createTask checks the task's own scope
    // requirement in the handler, as the Queue does.
    ep!("queue" GET "/ping" "ping", "Ping Server", Public, |s, _| s.ping(); category = "Monitoring", metered = false, description = "Whether the service is up."),
    ep!("queue" PUT "/task/<taskId>" "createTask", "Create New Task", Authenticated, |s, c| s.create_task(c);
        category = "Tasks", input = Input::Json("v1/create-task-request.json#"), output = Some("v1/task-status-response.json#"),
        description = "Records a task in the embedded queue (it runs nowhere) after the Queue's checks, including its scopes."),
    ep!("queue" GET "/task/<taskId>" "task", "Get Task Definition", Public, |s, c| s.task(c);
        category = "Tasks", output = Some("v1/task.json#"), description = "A task's definition."),
    ep!("queue" GET "/task/<taskId>/status" "status", "Get task status", Public, |s, c| s.task_status(c);
        category = "Tasks", output = Some("v1/task-status-response.json#"), description = "A task's status (`pending` for ever: nothing runs it)."),
    ep!("queue" GET "/task-group/<taskGroupId>/list" "listTaskGroup", "List Task Group", Public, |s, c| s.list_task_group(c);
        category = "Task Groups", query = PAGED, output = Some("v1/list-task-group-response.json#"), description = "The tasks of a task group, paged."),
    // GitHub deliveries (the route Taskcluster's GitHub service uses).
    ep!("github" POST "/github" "githubWebHookConsumer", "Consume GitHub WebHook", GithubSignature, |s, c| s.github_delivery(c.request);
        category = "Github Service", input = Input::Raw,
        description = "A GitHub webhook delivery, signed with `github_webhook_secret`: fires the hooks bound to its `exchange/taskcluster-github/v1/...` exchange."),
    // Extensions beyond upstream (names prefixed `x-`).
    ep!("taskhooks" POST "/hooks/<hookGroupId>/<hookId>/dry-run" "x-dryRun", "Dry run", Scopes(GET_HOOK), |s, c| s.dry_run(c);
        category = "Hooks", input = Input::Json("v1/dry-run-request.json#"), output = Some("v1/dry-run-response.json#"),
        description = "body `{\"payload\": {...}, \"firedBy\": \"triggerHook\"}` (`firedBy` any of `triggerHook`, `triggerHookWithToken`, `schedule`, `pulseMessage`; `clientId` optional). Answers what firing would do, without creating or recording anything: `{\"outcome\": \"task\", \"taskId\", \"task\"}`, `{\"outcome\": \"declined\"}`, `{\"outcome\": \"invalid-payload\", \"error\"}`, `{\"outcome\": \"render-error\", \"error\"}`, `{\"outcome\": \"invalid-task\", \"taskId\", \"error\"}` (the Queue would refuse it), or `{\"outcome\": \"insufficient-scopes\", \"task\", \"role\", \"missingScopes\", \"requiredScopes\"}`. With a Taskcluster deployment configured, the role's scopes are that deployment's to check, at creation."),
    ep!("taskhooks" GET "/hooks/<hookGroupId>/<hookId>/next-fires" "x-nextFires", "Next fires", Scopes(GET_HOOK), |s, c| s.next_fires(c);
        category = "Hooks", query = &["count"], output = Some("v1/next-fires-response.json#"),
        description = "`{\"nextFires\": [ISO times]}`: the hook's next N (`count`, default 5, max 100) scheduled fires"),
    ep!("taskhooks" POST "/tick" "x-tick", "Tick", Scopes(r#""hooks:tick""#), |s, _| s.tick_now();
        category = "Operations", output = Some("v1/tick-response.json#"),
        description = "one scheduler tick now, cron projects included: `{\"due\", \"fired\", \"declined\", \"failed\", \"retrying\", \"cronProjects\": {\"synced\", \"failed\": [{\"project\", \"error\"}]}}`. For platforms that offer scheduled HTTP calls but not Spin's cron trigger."),
    ep!("taskhooks" POST "/relay" "x-relay", "Relay", Scopes(r#""hooks:relay""#), |s, _| s.relay_now();
        category = "Operations", output = Some("v1/relay-response.json#"),
        description = "one Pulse relay run now: `{\"queues\", \"fired\", \"declined\", \"failed\", \"retrying\", \"discarded\", \"duplicates\", \"outOfOrder\", \"bound\", \"unbound\", \"deleted\", \"bindingErrors\", \"queueErrors\", \"busy\", \"errors\"}`"),
    ep!("taskhooks" GET "/hooks/<hookGroupId>/<hookId>/pulse" "x-pulseStatus", "Pulse status", Scopes(GET_HOOK), |s, c| s.pulse_status(c);
        category = "Hook Status", output = Some("v1/pulse-status-response.json#"),
        description = "the hook's queue, each binding's state on the broker (`bound`, or `failed` with RabbitMQ's reason, e.g. an exchange that does not exist), since when, and the messages its `triggerSchema` discarded (`count`, `last`)"),
    ep!("taskhooks" GET "/hooks/<hookGroupId>/<hookId>/fire-stats" "x-fireStats", "Fire stats", Scopes(GET_HOOK), |s, c| s.fire_stats(c);
        category = "Hook Status", output = Some("v1/fire-stats-response.json#"),
        description = "the hook's fires per hour for the last 24 hours and per day for the last 30: `{\"hours\": [{\"start\", \"success\", \"error\", \"declined\"}], \"days\": [...]}` (declined fires included, which last fires do not record; kept 31 days)"),
    ep!("taskhooks" GET "/hooks/<hookGroupId>/last-fire-results" "x-lastFireResults", "Last fire results", Scopes(r#""hooks:list-hooks:<hookGroupId>""#), |s, c| s.last_fire_results(c);
        category = "Hook Status", output = Some("v1/last-fire-results-response.json#"),
        description = "`{\"lastFires\": {\"<hookId>\": \"success\" | \"error\" | \"none\"}}`: each hook's last fire, for the explorer"),
    ep!("taskhooks" GET "/audit/<entityType>/<entityId>" "x-auditChanges", "Audit changes", Scopes(r#""auth:audit-history:<entityType>""#), |s, c| s.audit_page(c, true);
        category = "Audit", query = PAGED, output = Some("v1/audit-changes-response.json#"),
        description = "`getEntityHistory`'s entries with what changed: each also has `before` and `after` (the hook's definition; a role's description and scopes; a client's description, scopes, expiry and flags, never its token); paged as upstream (`limit`, `continuationToken`)"),
    ep!("taskhooks" POST "/schedule-preview" "x-schedulePreview", "Schedule preview", Public, |s, c| s.schedule_preview(c);
        category = "Hooks", input = Input::Json("v1/schedule-preview-request.json#"), output = Some("v1/next-fires-response.json#"),
        description = "body `{\"schedule\": [cron...], \"count\": N, \"from\": ISO}`: the next fires of any schedule, or a 400 naming the bad entry"),
    // Cron projects: a repository's `.cron.yml` run by the service (`crate::cron_project`).
    ep!("taskhooks" GET "/cron-projects" "x-listCronProjects", "List cron projects", Scopes(r#""hooks:list-cron-projects""#), |s, _| s.list_cron_projects();
        category = "Cron Projects", output = Some("v1/list-cron-projects-response.json#"),
        description = "the repositories registered to have their `.cron.yml` run by the service (see *Cron projects*)"),
    ep!("taskhooks" GET "/cron-projects/<project>" "x-getCronProject", "Get a cron project", Scopes(r#""hooks:get-cron-project:<project>""#), |s, c| s.get_cron_project(c);
        category = "Cron Projects", output = Some("v1/cron-project.json#"),
        description = "a registered project, and `status`: what the last read of its `.cron.yml` found"),
    ep!("taskhooks" PUT "/cron-projects/<project>" "x-putCronProject", "Register a cron project", Scopes(r#""hooks:modify-cron-project:<project>""#), |s, c| s.put_cron_project(c);
        category = "Cron Projects", input = Input::Json("v1/cron-project-request.json#"), output = Some("v1/cron-project.json#"),
        description = "needs `assume:repo:<repoPath>:cron:*` too; body `{\"repository\": {\"url\", \"type\": \"git\" | \"hg\", \"branch\", \"level\": \"1\"-\"3\"}, \"bindings\": {\"<job>\": [{\"exchange\", \"routingKeyPattern\"}]}, \"owner\": e-mail}`; creates or changes the project"),
    ep!("taskhooks" DELETE "/cron-projects/<project>" "x-deleteCronProject", "Remove a cron project", Scopes(r#""hooks:modify-cron-project:<project>""#), |s, c| s.delete_cron_project(c);
        category = "Cron Projects", description = "removes the project and its managed hooks"),
    ep!("taskhooks" POST "/cron-projects/<project>/dry-run" "x-dryRunCronProject", "Cron project dry run", Scopes(r#""hooks:get-cron-project:<project>""#), |s, c| s.dry_run_cron_project(c);
        category = "Cron Projects", input = Input::Json("v1/cron-project-dry-run-request.json#"), output = Some("v1/cron-project-dry-run-response.json#"),
        description = "body `{\"at\": ISO time}` (default now): the repository's tip, and for the 15-minute slot of `at` each job `.cron.yml` runs in it with the task it would create (`{\"job\", \"taskId\", \"task\"}`, or `{\"job\", \"error\"}`); nothing is created"),
];

/// The services the table declares, in the order the references list them.
pub(crate) const SERVICES: &[(&str, &str)] = &[
    ("hooks", "Hooks Service"),
    ("auth", "Authentication API (the part a standalone taskhooks deployment serves)"),
    ("queue", "Queue Service (the embedded queue's subset)"),
    ("github", "Taskcluster GitHub API (webhook deliveries)"),
    ("taskhooks", "taskhooks extensions"),
];
