//! The API surface as a table: each method's route, access rule (SPEC §5's scope
//! templates, or public), declared query keys and whether it takes a JSON body.

use crate::error::{ApiError, ErrorCode};
use crate::ids::{HookGroupId, HookId};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Access {
    /// Never looks at credentials (monitoring, `triggerHookWithToken`, public reads).
    Public,
    /// Needs to know the caller, but no particular scope (`currentScopes`).
    Authenticated,
    /// A scope expression template (JSON) over the URL parameters.
    Scopes(&'static str),
}

#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `hooks`, `auth`, `queue`, or `taskhooks` (our extensions): the `/api/<service>/v1` prefix.
    pub service: &'static str,
    pub method: &'static str,
    pub route: &'static str,
    pub name: &'static str,
    pub access: Access,
    pub query: &'static [&'static str],
    pub input: bool,
}

impl Endpoint {
    /// SPEC §2.2 step 4: each URL parameter against its pattern; every bad one is named.
    pub fn check_params(&self, params: &BTreeMap<&'static str, String>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        for (name, value) in params {
            let bad = match *name {
                "hookGroupId" => HookGroupId::new(value).err().map(|e| e.to_string()),
                "hookId" => HookId::new(value).err().map(|e| e.to_string()),
                "clientId" => (!valid_client_id(value))
                    .then(|| format!("clientId `{value}` must match regular expression ^[A-Za-z0-9!@/:.+|_-]+$")),
                "roleId" => (!valid_role_id(value)).then(|| format!("roleId `{value}` must match regular expression ^[\\x20-\\x7e]+$")),
                "entityType" => (!crate::audit::ENTITY_TYPES.contains(&value.as_str()))
                    .then(|| format!("entityType `{value}` must match regular expression ^(client|role|secret|hook|worker-pool)$")),
                "project" => (!crate::cron_project::valid_project(value)).then(|| format!("project `{value}` must match regular expression ^[A-Za-z0-9_-]{{1,64}}$")),
                _ => None,
            };
            errors.extend(bad);
        }
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

pub(crate) fn valid_client_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!@/:.+|_-".contains(&b))
}

pub(crate) fn valid_role_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

const MODIFY_HOOK: &str = r#"{"AllOf": ["hooks:modify-hook:<hookGroupId>/<hookId>", "assume:hook-id:<hookGroupId>/<hookId>"]}"#;

macro_rules! ep {
    ($service:literal, $method:literal, $route:literal, $name:literal, $access:expr) => {
        ep!($service, $method, $route, $name, $access, [], false)
    };
    ($service:literal, $method:literal, $route:literal, $name:literal, $access:expr, [$($q:literal),*], $input:literal) => {
        Endpoint { service: $service, method: $method, route: $route, name: $name, access: $access, query: &[$($q),*], input: $input }
    };
}

use Access::*;

/// Order matters only where two routes could match the same path; none can.
pub(crate) static ENDPOINTS: &[Endpoint] = &[
    // Hooks v1 (SPEC §5).
    ep!("hooks", "GET", "/ping", "ping", Public),
    ep!("hooks", "GET", "/__lbheartbeat__", "lbheartbeat", Public),
    ep!("hooks", "GET", "/__version__", "version", Public),
    ep!("hooks", "GET", "/__heartbeat__", "heartbeat", Public),
    ep!("hooks", "GET", "/hooks", "listHookGroups", Scopes(r#""hooks:list-hooks:""#)),
    ep!("hooks", "GET", "/hooks/<hookGroupId>", "listHooks", Scopes(r#""hooks:list-hooks:<hookGroupId>""#)),
    ep!("hooks", "GET", "/hooks/<hookGroupId>/<hookId>", "hook", Scopes(r#""hooks:get:<hookGroupId>:<hookId>""#)),
    ep!("hooks", "GET", "/hooks/<hookGroupId>/<hookId>/status", "getHookStatus", Scopes(r#""hooks:status:<hookGroupId>/<hookId>""#)),
    ep!("hooks", "PUT", "/hooks/<hookGroupId>/<hookId>", "createHook", Scopes(MODIFY_HOOK), [], true),
    ep!("hooks", "POST", "/hooks/<hookGroupId>/<hookId>", "updateHook", Scopes(MODIFY_HOOK), [], true),
    ep!("hooks", "DELETE", "/hooks/<hookGroupId>/<hookId>", "removeHook", Scopes(r#""hooks:modify-hook:<hookGroupId>/<hookId>""#)),
    ep!("hooks", "POST", "/hooks/<hookGroupId>/<hookId>/trigger", "triggerHook", Scopes(r#""hooks:trigger-hook:<hookGroupId>/<hookId>""#), [], true),
    ep!("hooks", "GET", "/hooks/<hookGroupId>/<hookId>/token", "getTriggerToken", Scopes(r#""hooks:get-trigger-token:<hookGroupId>/<hookId>""#)),
    ep!("hooks", "POST", "/hooks/<hookGroupId>/<hookId>/token", "resetTriggerToken", Scopes(r#""hooks:reset-trigger-token:<hookGroupId>/<hookId>""#)),
    ep!("hooks", "POST", "/hooks/<hookGroupId>/<hookId>/trigger/<token>", "triggerHookWithToken", Public, [], true),
    ep!("hooks", "GET", "/hooks/<hookGroupId>/<hookId>/last-fires", "listLastFires", Scopes(r#""hooks:list-last-fires:<hookGroupId>/<hookId>""#), ["continuationToken", "limit"], false),
    // Auth v1 subset: clients and roles (standalone mode).
    ep!("auth", "GET", "/ping", "ping", Public),
    // The official clients drop the trailing `/` the Auth API declares; take both.
    ep!("auth", "GET", "/clients/", "listClients", Public, ["prefix", "continuationToken", "limit"], false),
    ep!("auth", "GET", "/clients", "listClients", Public, ["prefix", "continuationToken", "limit"], false),
    ep!("auth", "GET", "/clients/<clientId>", "client", Public),
    ep!("auth", "PUT", "/clients/<clientId>", "createClient", Scopes(r#""auth:create-client:<clientId>""#), [], true),
    ep!("auth", "DELETE", "/clients/<clientId>", "deleteClient", Scopes(r#""auth:delete-client:<clientId>""#)),
    ep!("auth", "POST", "/clients/<clientId>/reset", "resetAccessToken", Scopes(r#""auth:reset-access-token:<clientId>""#)),
    ep!("auth", "GET", "/roles/", "listRoles", Public),
    ep!("auth", "GET", "/roles", "listRoles", Public),
    ep!("auth", "GET", "/roles/<roleId>", "role", Public),
    ep!("auth", "PUT", "/roles/<roleId>", "createRole", Scopes(r#""auth:create-role:<roleId>""#), [], true),
    ep!("auth", "POST", "/roles/<roleId>", "updateRole", Scopes(r#""auth:update-role:<roleId>""#), [], true),
    ep!("auth", "DELETE", "/roles/<roleId>", "deleteRole", Scopes(r#""auth:delete-role:<roleId>""#)),
    ep!("auth", "GET", "/scopes/current", "currentScopes", Authenticated),
    // Audit history (`crate::audit`), as upstream serves it.
    ep!("auth", "GET", "/audit/<entityType>/<entityId>", "getEntityHistory", Scopes(r#""auth:audit-history:<entityType>""#), ["continuationToken", "limit"], false),
    ep!("auth", "GET", "/clients/<clientId>/audit", "listAuditHistory", Scopes(r#""auth:client-audit-history:<clientId>""#), ["continuationToken", "limit"], false),
    ep!("auth", "POST", "/scopes/expand", "expandScopes", Public, [], true),
    // The embedded queue (Queue v1 subset). createTask checks the task's own scope
    // requirement in the handler, as the Queue does.
    ep!("queue", "GET", "/ping", "ping", Public),
    ep!("queue", "PUT", "/task/<taskId>", "createTask", Authenticated, [], true),
    ep!("queue", "GET", "/task/<taskId>", "task", Public),
    ep!("queue", "GET", "/task/<taskId>/status", "status", Public),
    ep!("queue", "GET", "/task-group/<taskGroupId>/list", "listTaskGroup", Public, ["continuationToken", "limit"], false),
    // Extensions beyond upstream (names prefixed `x-`).
    ep!("taskhooks", "POST", "/hooks/<hookGroupId>/<hookId>/dry-run", "x-dryRun", Scopes(r#""hooks:get:<hookGroupId>:<hookId>""#), [], true),
    ep!("taskhooks", "GET", "/hooks/<hookGroupId>/<hookId>/next-fires", "x-nextFires", Scopes(r#""hooks:get:<hookGroupId>:<hookId>""#), ["count"], false),
    ep!("taskhooks", "POST", "/schedule-preview", "x-schedulePreview", Public, [], true),
    ep!("taskhooks", "POST", "/tick", "x-tick", Scopes(r#""hooks:tick""#)),
    ep!("taskhooks", "POST", "/relay", "x-relay", Scopes(r#""hooks:relay""#)),
    ep!("taskhooks", "GET", "/hooks/<hookGroupId>/<hookId>/pulse", "x-pulseStatus", Scopes(r#""hooks:get:<hookGroupId>:<hookId>""#)),
    ep!("taskhooks", "GET", "/hooks/<hookGroupId>/<hookId>/fire-stats", "x-fireStats", Scopes(r#""hooks:get:<hookGroupId>:<hookId>""#)),
    ep!("taskhooks", "GET", "/hooks/<hookGroupId>/last-fire-results", "x-lastFireResults", Scopes(r#""hooks:list-hooks:<hookGroupId>""#)),
    ep!("taskhooks", "GET", "/audit/<entityType>/<entityId>", "x-auditChanges", Scopes(r#""auth:audit-history:<entityType>""#), ["continuationToken", "limit"], false),
    // Cron projects: a repository's `.cron.yml` run by the service (`crate::cron_project`).
    ep!("taskhooks", "GET", "/cron-projects", "x-listCronProjects", Scopes(r#""hooks:list-cron-projects""#)),
    ep!("taskhooks", "GET", "/cron-projects/<project>", "x-getCronProject", Scopes(r#""hooks:get-cron-project:<project>""#)),
    ep!("taskhooks", "PUT", "/cron-projects/<project>", "x-putCronProject", Scopes(r#""hooks:modify-cron-project:<project>""#), [], true),
    ep!("taskhooks", "DELETE", "/cron-projects/<project>", "x-deleteCronProject", Scopes(r#""hooks:modify-cron-project:<project>""#)),
    ep!("taskhooks", "POST", "/cron-projects/<project>/dry-run", "x-dryRunCronProject", Scopes(r#""hooks:get-cron-project:<project>""#), [], true),
];
