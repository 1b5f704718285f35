//! The subset of the Taskcluster Auth v1 API that a standalone deployment needs: clients,
//! roles, and scope expansion, enough for the official `Auth` client to set up a hook's
//! role and the people who may use it.

use super::endpoints::valid_client_id;
use super::{insufficient_scopes, Call, Service};
use crate::error::{ApiError, ErrorCode};
use crate::ids::nice_slugid;
use crate::render::{iso_time, parse_time_ms};
use crate::scopes::{is_valid_scope, Role, Roles, ScopeExpr};
use crate::store::{Claimed, ClientRecord, RoleRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// The most clients one `listClients` page holds.
const MAX_CLIENTS_PAGE: usize = 1000;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateClientRequest {
    description: String,
    expires: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    delete_on_expiration: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateRoleRequest {
    description: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeSetBody {
    scopes: Vec<String>,
}

fn input<T: for<'de> Deserialize<'de>>(payload: &Value) -> Result<T, ApiError> {
    serde_json::from_value(payload.clone()).map_err(|e| ApiError::new(ErrorCode::InputValidationError, e.to_string()))
}

/// Scopes a client or role may be given: valid characters, and no trailing `**`, which
/// would let its holder delegate more than it has.
fn check_scopes(scopes: &[String]) -> Result<(), ApiError> {
    for s in scopes {
        if !is_valid_scope(s) {
            return Err(ApiError::new(ErrorCode::InputValidationError, format!("invalid scope {s:?}: scopes are printable ASCII")));
        }
        if s.ends_with("**") {
            return Err(ApiError::new(ErrorCode::InputError, format!("scope {s:?} ends in `**`, which is not allowed")));
        }
    }
    Ok(())
}

/// A fresh access token: 44 random URL-safe characters, as Taskcluster issues them.
fn new_access_token() -> String {
    format!("{}{}", nice_slugid(), nice_slugid())
}

impl Service<'_> {
    /// The caller must hold every scope it hands out (no privilege escalation).
    fn require_all(&self, call: &Call, scopes: &[String]) -> Result<(), ApiError> {
        let expr = ScopeExpr::AllOf(scopes.iter().cloned().map(ScopeExpr::Scope).collect());
        insufficient_scopes(&call.caller, &expr).map_or(Ok(()), Err)
    }

    fn client_json(&self, c: &ClientRecord, with_token: bool) -> Result<Value, ApiError> {
        let mut v = json!({
            "clientId": c.client_id,
            "description": c.description,
            "expires": c.expires,
            "created": c.created,
            "lastModified": c.last_modified,
            "lastDateUsed": c.last_date_used,
            "lastRotated": c.last_rotated,
            "deleteOnExpiration": c.delete_on_expiration,
            "disabled": c.disabled,
            "scopes": c.scopes,
            "expandedScopes": self.roles()?.expand(&c.scopes).map_err(expansion_error)?,
        });
        if with_token {
            v["accessToken"] = json!(c.access_token);
        }
        Ok(v)
    }

    /// `roles`: all roles as they now are (after a write, not the request's cached view).
    fn role_json(r: &RoleRecord, roles: &Roles) -> Result<Value, ApiError> {
        Ok(json!({
            "roleId": r.role_id,
            "description": r.description,
            "scopes": r.scopes,
            "created": r.created,
            "lastModified": r.last_modified,
            "expandedScopes": roles.expand([format!("assume:{}", r.role_id)]).map_err(expansion_error)?,
        }))
    }

    pub(super) fn client(&self, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let client_id = call.param("clientId");
        let no_client = || ApiError::new(ErrorCode::ResourceNotFound, format!("client `{client_id}` not found"));
        self.client_json(&store.client(client_id)?.ok_or_else(no_client)?, false)
    }

    pub(super) fn list_clients(&self, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let prefix = call.query.get("prefix").map(String::as_str).unwrap_or_default();
        let limit = call.query.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0).unwrap_or(MAX_CLIENTS_PAGE).min(MAX_CLIENTS_PAGE);
        // The token names the last clientId listed (ids come sorted), so a page is stable
        // while clients are created or deleted; one that does not decode starts at the
        // first page, as upstream's.
        let after = call.query.get("continuationToken").and_then(|t| URL_SAFE_NO_PAD.decode(t).ok()).and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.strip_prefix("clients:").map(str::to_string));
        let ids: Vec<String> = store.client_ids(prefix)?.into_iter().filter(|id| after.as_ref().is_none_or(|a| id > a)).collect();
        let page = &ids[..ids.len().min(limit)];
        let mut clients = Vec::new();
        for c in store.clients(page)? {
            clients.push(self.client_json(&c, false)?);
        }
        let mut answer = json!({"clients": clients});
        if let (true, Some(last)) = (ids.len() > page.len(), page.last()) {
            answer["continuationToken"] = json!(URL_SAFE_NO_PAD.encode(format!("clients:{last}")));
        }
        Ok(answer)
    }

    pub(super) fn create_client(&self, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let now = iso_time(self.clock.now());
        let client_id = call.param("clientId");
        refuse_static(client_id)?;
        let req: CreateClientRequest = input(&call.payload)?;
        check_scopes(&req.scopes)?;
        if parse_time_ms(&req.expires).is_none() {
            return Err(ApiError::new(ErrorCode::InputValidationError, "expires must be a date-time"));
        }
        self.require_all(call, &req.scopes)?;
        let exists = || ApiError::new(ErrorCode::RequestConflict, format!("client `{client_id}` already exists"));
        if client_id == self.config.root_client_id {
            return Err(exists());
        }
        debug_assert!(valid_client_id(client_id));
        let client = ClientRecord {
            client_id: client_id.to_string(),
            description: req.description,
            scopes: crate::scopes::normalize(&req.scopes),
            expires: req.expires,
            created: now.clone(),
            last_modified: now.clone(),
            last_date_used: now.clone(),
            last_rotated: now,
            delete_on_expiration: req.delete_on_expiration,
            disabled: false,
            access_token: new_access_token(),
        };
        // The answer is worked out before anything is stored: a request that fails
        // leaves nothing behind.
        let answer = self.client_json(&client, true)?;
        // Of concurrent creators of one clientId exactly one creates it.
        if let Claimed::Exists(()) = store.create_client(&client)? {
            return Err(exists());
        }
        self.audit(call, "client", client_id, crate::audit::action::CREATED, None, Some(super::audit_api::client_state(&client)))?;
        Ok(answer)
    }

    pub(super) fn reset_access_token(&self, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let now = iso_time(self.clock.now());
        let client_id = call.param("clientId");
        let no_client = || ApiError::new(ErrorCode::ResourceNotFound, format!("client `{client_id}` not found"));
        refuse_static(client_id)?;
        let token = new_access_token();
        let client = store
            .update_client(client_id, |client| {
                client.access_token.clone_from(&token);
                client.last_rotated.clone_from(&now);
                client.last_modified.clone_from(&now);
            })?
            .ok_or_else(no_client)?;
        self.audit(call, "client", client_id, crate::audit::action::ACCESS_TOKEN_RESET, None, None)?;
        self.client_json(&client, true)
    }

    pub(super) fn delete_client(&self, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let client_id = call.param("clientId");
        refuse_static(client_id)?;
        let before = store.client(client_id)?;
        store.delete_client(client_id)?;
        if let Some(c) = before {
            self.audit(call, "client", client_id, crate::audit::action::DELETED, Some(super::audit_api::client_state(&c)), None)?;
        }
        Ok(json!({}))
    }

    pub(super) fn list_roles(&self, _call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let roles = self.roles()?;
        Ok(Value::Array(store.roles()?.iter().map(|r| Self::role_json(r, roles)).collect::<Result<_, _>>()?))
    }

    pub(super) fn role(&self, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let role_id = call.param("roleId");
        let no_role = || ApiError::new(ErrorCode::ResourceNotFound, format!("role `{role_id}` not found"));
        Self::role_json(&store.role(role_id)?.ok_or_else(no_role)?, self.roles()?)
    }

    pub(super) fn delete_role(&self, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let role_id = call.param("roleId");
        let before = store.role(role_id)?;
        if store.delete_role(role_id)? {
            self.audit(call, "role", role_id, crate::audit::action::DELETED, before.as_ref().map(super::audit_api::role_state), None)?;
        }
        Ok(json!({}))
    }

    pub(super) fn expand_scopes(&self, call: &Call) -> Result<Value, ApiError> {
        let req: ScopeSetBody = input(&call.payload)?;
        check_scopes(&req.scopes)?;
        Ok(json!({"scopes": self.roles()?.expand(&req.scopes).map_err(expansion_error)?}))
    }

    /// `createRole` (`creating`) and `updateRole`.
    pub(super) fn write_role(&self, call: &Call, creating: bool) -> Result<Value, ApiError> {
        let store = self.store();
        let now = iso_time(self.clock.now());
        let role_id = call.param("roleId");
        let no_role = || ApiError::new(ErrorCode::ResourceNotFound, format!("role `{role_id}` not found"));
        let req: CreateRoleRequest = input(&call.payload)?;
        check_scopes(&req.scopes)?;
        self.require_all(call, &req.scopes)?;
        let scopes = crate::scopes::normalize(&req.scopes);
        // Upstream's rules for the role set as it would be: no role that expands
        // without end is ever stored.
        let mut would_be: Vec<Role> = store.roles()?.into_iter().filter(|r| r.role_id != role_id).map(|r| Role { role_id: r.role_id, scopes: r.scopes }).collect();
        would_be.push(Role { role_id: role_id.to_string(), scopes: scopes.clone() });
        crate::scopes::check_role_set(&would_be).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
        // What this write replaces, to undo it (below).
        let mut undo: Option<Option<RoleRecord>> = None;
        let role = if creating {
            let role = RoleRecord { role_id: role_id.to_string(), scopes: scopes.clone(), description: req.description.clone(), created: now.clone(), last_modified: now };
            // Of concurrent creators exactly one creates it; the others compare.
            match store.create_role(&role)? {
                Claimed::Created => {
                    undo = Some(None);
                    role
                }
                Claimed::Exists(existing) => {
                    let existing = existing.ok_or_else(|| ApiError::new(ErrorCode::RequestConflict, format!("role `{role_id}` is being created")))?;
                    if existing.scopes != scopes || existing.description != req.description {
                        return Err(ApiError::new(ErrorCode::RequestConflict, format!("role `{role_id}` already exists")));
                    }
                    existing
                }
            }
        } else {
            let mut before: Option<RoleRecord> = None;
            let updated = store
                .update_role(role_id, |r| {
                    before = Some(r.clone());
                    r.scopes.clone_from(&scopes);
                    r.description.clone_from(&req.description);
                    r.last_modified.clone_from(&now);
                })?
                .ok_or_else(no_role)?;
            undo = Some(before);
            updated
        };
        let roles = store.roles()?;
        let now_roles: Vec<Role> = roles.iter().map(|r| Role { role_id: r.role_id.clone(), scopes: r.scopes.clone() }).collect();
        // Checked again with the roles as they are now: two writes at once, each
        // fine alone, can make a cycle together. The later check sees both, and
        // its write is undone.
        if let (Err(e), Some(undo)) = (crate::scopes::check_role_set(&now_roles), undo.clone()) {
            match undo {
                None => {
                    store.delete_role(role_id)?;
                }
                Some(before) => {
                    store.update_role(role_id, |r| {
                        r.scopes.clone_from(&before.scopes);
                        r.description.clone_from(&before.description);
                        r.last_modified.clone_from(&before.last_modified);
                    })?;
                }
            }
            return Err(ApiError::new(ErrorCode::InputError, e.to_string()));
        }
        // Recorded once the write stands; an identical re-create changed nothing.
        if let Some(replaced) = &undo {
            let action = if replaced.is_none() { crate::audit::action::CREATED } else { crate::audit::action::UPDATED };
            self.audit(call, "role", role_id, action, replaced.as_ref().map(super::audit_api::role_state), Some(super::audit_api::role_state(&role)))?;
        }
        Self::role_json(&role, &Roles::new(now_roles))
    }
}

fn expansion_error(e: crate::scopes::ScopeError) -> ApiError {
    ApiError::new(ErrorCode::InputError, e.to_string())
}

/// Upstream reserves `static/` for clients configured with the deployment (here the root
/// client); the API neither creates nor changes them, with upstream's error.
fn refuse_static(client_id: &str) -> Result<(), ApiError> {
    if client_id.starts_with("static/") {
        return Err(ApiError::new(
            ErrorCode::InputError,
            format!("clientId \"{client_id}\" starts with \"static/\" which is reserved for statically configured clients. Contact your administrator to change static clients."),
        ));
    }
    Ok(())
}
