//! The audit history (`crate::audit`) through the API: recording what a call changed,
//! upstream's `getEntityHistory` and `listAuditHistory` (its five fields, paged oldest
//! first), and the extension that also gives what changed.

use super::{Call, Service};
use crate::audit::{self, Entry};
use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

fn encode_token(n: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("audit:{n}"))
}

fn decode_token(token: &str) -> Option<i64> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    text.strip_prefix("audit:")?.parse().ok().filter(|n| *n > 0)
}

/// What the audit keeps of a client: never its access token.
pub(super) fn client_state(c: &crate::store::ClientRecord) -> Value {
    json!({"description": c.description, "scopes": c.scopes, "expires": c.expires, "deleteOnExpiration": c.delete_on_expiration, "disabled": c.disabled})
}

pub(super) fn role_state(r: &crate::store::RoleRecord) -> Value {
    json!({"description": r.description, "scopes": r.scopes})
}

impl Service<'_> {
    /// Records that the caller did `action` to an entity (after it is stored).
    pub(super) fn audit(&self, call: &Call, entity_type: &str, entity_id: &str, action: &str, before: Option<Value>, after: Option<Value>) -> Result<(), ApiError> {
        let entry = Entry {
            client_id: call.caller.client_id.clone().unwrap_or_default(),
            action_type: action.to_string(),
            created: crate::render::iso_time(self.clock.now()),
            entity_id: entity_id.to_string(),
            entity_type: entity_type.to_string(),
            before,
            after,
        };
        crate::log::emit(&crate::log::audit_event(&entry));
        Ok(audit::record(self.kv, &entry, self.clock.now())?)
    }

    /// `getEntityHistory` and `listAuditHistory` (by the route's parameters), and with
    /// `changes` the extension `x-auditChanges`.
    pub(super) fn audit_page(&self, call: &Call, changes: bool) -> Result<Value, ApiError> {
        let limit = match call.query.get("limit").and_then(|l| l.parse::<usize>().ok()) {
            None | Some(0) => audit::MAX_LIMIT,
            Some(l) => l.min(audit::MAX_LIMIT),
        };
        // A token that does not decode starts at the first page, as upstream's.
        let from = call.query.get("continuationToken").and_then(|t| decode_token(t));
        let stream = match call.params.get("clientId") {
            Some(client_id) => audit::client_stream(client_id),
            None => audit::entity_stream(call.param("entityType"), call.param("entityId")),
        };
        let (entries, next) = audit::page(self.kv, &stream, from, limit)?;
        // Upstream's methods answer its five fields; the extension adds what changed.
        let items: Vec<Value> = match changes {
            true => entries.iter().map(|e| serde_json::to_value(e).expect("serialises")).collect(),
            false => entries.iter().map(Entry::upstream).collect(),
        };
        let mut answer = json!({"auditHistory": items});
        if let Some(n) = next {
            answer["continuationToken"] = json!(encode_token(n));
        }
        Ok(answer)
    }
}
