//! Scope expressions (JSON), scope sets and role expansion: parsed, filled, checked for
//! satisfaction and expanded through parameterised roles. Nothing may panic; a set that
//! holds `*` satisfies any valid expression without an empty `AnyOf` (which nothing
//! satisfies, as in Taskcluster).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use taskhooks_shared::scopes::{Role, Roles, ScopeExpr, ScopeSet};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(expr) = ScopeExpr::from_json(&value) {
        let empty_any_of = expr.to_string().split_whitespace().collect::<String>().contains("\"AnyOf\":[]");
        assert!(empty_any_of || expr.unsatisfied(&ScopeSet::new(["*"])).is_none(), "* must satisfy {expr}");
        let params = BTreeMap::from([("hookGroupId", "g"), ("hookId", "a/b")]);
        let _ = expr.fill(&params);
        let _ = expr.unsatisfied(&ScopeSet::new(["hooks:*", "assume:hook-id:g/*"]));
    }
    if let Some(list) = value.as_array() {
        let scopes: Vec<String> = list.iter().filter_map(|s| s.as_str().map(str::to_string)).collect();
        let roles = Roles::new(scopes.iter().map(|s| Role { role_id: s.clone(), scopes: scopes.clone() }).collect());
        let _ = roles.expand(scopes.iter().map(|s| format!("assume:{s}")));
    }
});
