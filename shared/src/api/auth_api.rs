//! The subset of the Taskcluster Auth v1 API that a standalone deployment needs: clients,
//! roles, and scope expansion, enough for the official `Auth` client to set up a hook's
//! role and the people who may use it.

use super::endpoints::valid_client_id;
use super::{insufficient_scopes, Call, Service};
use crate::error::{ApiError, ErrorCode};
use crate::ids::nice_slugid;
use crate::render::{iso_time, parse_time_ms};
use crate::scopes::{is_valid_scope, Role, Roles, ScopeExpr};
use crate::store::{ClientRecord, RoleRecord};
use serde::Deserialize;
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
            "expandedScopes": self.roles()?.expand(&c.scopes),
        });
        if with_token {
            v["accessToken"] = json!(c.access_token);
        }
        Ok(v)
    }

    /// `roles`: all roles as they now are (after a write, not the request's cached view).
    fn role_json(r: &RoleRecord, roles: &Roles) -> Value {
        json!({
            "roleId": r.role_id,
            "description": r.description,
            "scopes": r.scopes,
            "created": r.created,
            "lastModified": r.last_modified,
            "expandedScopes": roles.expand([format!("assume:{}", r.role_id)]),
        })
    }

    pub(super) fn auth_method(&self, name: &str, call: &Call) -> Result<Value, ApiError> {
        let store = self.store();
        let now = iso_time(self.clock.now());
        let client_id = call.param("clientId");
        let role_id = call.param("roleId");
        let no_client = || ApiError::new(ErrorCode::ResourceNotFound, format!("client `{client_id}` not found"));
        let no_role = || ApiError::new(ErrorCode::ResourceNotFound, format!("role `{role_id}` not found"));
        match name {
            "client" => self.client_json(&store.client(client_id)?.ok_or_else(no_client)?, false),
            "listClients" => {
                let prefix = call.query.get("prefix").map(String::as_str).unwrap_or_default();
                let mut clients = Vec::new();
                for id in store.client_ids(prefix)? {
                    if let Some(c) = store.client(&id)? {
                        clients.push(self.client_json(&c, false)?);
                    }
                }
                Ok(json!({"clients": clients}))
            }
            "createClient" => {
                let req: CreateClientRequest = input(&call.payload)?;
                check_scopes(&req.scopes)?;
                if parse_time_ms(&req.expires).is_none() {
                    return Err(ApiError::new(ErrorCode::InputValidationError, "expires must be a date-time"));
                }
                self.require_all(call, &req.scopes)?;
                if client_id == self.config.root_client_id || store.client(client_id)?.is_some() {
                    return Err(ApiError::new(ErrorCode::RequestConflict, format!("client `{client_id}` already exists")));
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
                store.put_client(&client)?;
                self.client_json(&client, true)
            }
            "resetAccessToken" => {
                let mut client = store.client(client_id)?.ok_or_else(no_client)?;
                client.access_token = new_access_token();
                client.last_rotated = now.clone();
                client.last_modified = now;
                store.put_client(&client)?;
                self.client_json(&client, true)
            }
            "deleteClient" => {
                store.delete_client(client_id)?;
                Ok(json!({}))
            }
            "listRoles" => {
                let roles = self.roles()?;
                Ok(Value::Array(store.roles()?.iter().map(|r| Self::role_json(r, roles)).collect()))
            }
            "role" => Ok(Self::role_json(store.roles()?.iter().find(|r| r.role_id == role_id).ok_or_else(no_role)?, self.roles()?)),
            "createRole" | "updateRole" => {
                let req: CreateRoleRequest = input(&call.payload)?;
                check_scopes(&req.scopes)?;
                self.require_all(call, &req.scopes)?;
                let scopes = crate::scopes::normalize(&req.scopes);
                let mut roles = store.roles()?;
                let existing = roles.iter().position(|r| r.role_id == role_id);
                let role = match (name, existing) {
                    ("createRole", Some(i)) => {
                        let r = &roles[i];
                        if r.scopes != scopes || r.description != req.description {
                            return Err(ApiError::new(ErrorCode::RequestConflict, format!("role `{role_id}` already exists")));
                        }
                        return Ok(Self::role_json(r, self.roles()?));
                    }
                    ("createRole", None) => {
                        roles.push(RoleRecord { role_id: role_id.to_string(), scopes, description: req.description, created: now.clone(), last_modified: now });
                        roles.last().expect("just pushed").clone()
                    }
                    (_, None) => return Err(no_role()),
                    (_, Some(i)) => {
                        roles[i].scopes = scopes;
                        roles[i].description = req.description;
                        roles[i].last_modified = now;
                        roles[i].clone()
                    }
                };
                store.put_roles(&mut roles)?;
                let now_roles = Roles::new(roles.iter().map(|r| Role { role_id: r.role_id.clone(), scopes: r.scopes.clone() }).collect());
                Ok(Self::role_json(&role, &now_roles))
            }
            "deleteRole" => {
                let mut roles = store.roles()?;
                let before = roles.len();
                roles.retain(|r| r.role_id != role_id);
                if roles.len() != before {
                    store.put_roles(&mut roles)?;
                }
                Ok(json!({}))
            }
            "currentScopes" => Ok(json!({"scopes": call.caller.scopes})),
            "expandScopes" => {
                let req: ScopeSetBody = input(&call.payload)?;
                check_scopes(&req.scopes)?;
                Ok(json!({"scopes": self.roles()?.expand(&req.scopes)}))
            }
            other => Err(ApiError::new(ErrorCode::InternalServerError, format!("method {other} has no handler"))),
        }
    }
}
