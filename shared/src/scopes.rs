//! Taskcluster scope algebra (SPEC §13): satisfaction, scope expressions, what is missing,
//! role expansion with parameterised roles, normalisation, and scope templates.
//!
//! Written by hand because no Rust crate implements Taskcluster's rules; the cases in the
//! tests below are the rules of SPEC §13 and the examples of `taskcluster-lib-scopes` and
//! the Auth service's role resolver.

use serde_json::{json, Value};
use rustc_hash::FxHashSet as HashSet;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope {0:?} contains characters outside printable ASCII")]
    InvalidScope(String),
    #[error("invalid scope expression: {0}")]
    InvalidExpression(String),
    #[error("scope template {template:?} uses <{param}>, which the request does not have")]
    MissingParameter { template: String, param: String },
    /// The roles expand the scopes past [`MAX_EXPANDED_SCOPES`] or [`MAX_EXPANDED_BYTES`]:
    /// a role set that grows without end (refused when roles are written, see
    /// [`check_role_set`]) or one far larger than any real deployment's.
    #[error("expanding these scopes through the roles gives more than {MAX_EXPANDED_SCOPES} scopes or {MAX_EXPANDED_BYTES} bytes; a role grants scopes that assume roles without end")]
    ExpansionTooLarge,
    /// A role set upstream's Auth service refuses (its `dependencyOrdering`).
    #[error("{0}")]
    InvalidRoles(String),
}

/// The most scopes one expansion may reach.
pub const MAX_EXPANDED_SCOPES: usize = 100_000;
/// The most bytes of scopes one expansion may reach.
pub const MAX_EXPANDED_BYTES: usize = 10 << 20;

/// Printable ASCII only (0x20–0x7E), as Taskcluster requires.
pub fn is_valid_scope(scope: &str) -> bool {
    scope.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Whether the given scope `given` satisfies the required scope `required`: equal, or
/// `given` ends in `*` and `required` starts with the rest of it. Only a final `*` is
/// special.
pub fn satisfies(given: &str, required: &str) -> bool {
    given == required || given.strip_suffix('*').is_some_and(|prefix| required.starts_with(prefix))
}

/// A set of scopes indexed for satisfaction checks in O(length of the required scope).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeSet {
    exact: HashSet<String>,
    /// For each scope `p*` in the set, `p`.
    star_prefixes: HashSet<String>,
    /// The distinct lengths of `star_prefixes`, ascending: a check probes only these.
    prefix_lengths: Vec<usize>,
}

impl ScopeSet {
    pub fn new<S: AsRef<str>>(scopes: impl IntoIterator<Item = S>) -> Self {
        let mut set = Self::default();
        for s in scopes {
            set.insert(s.as_ref());
        }
        set
    }

    pub fn insert(&mut self, scope: &str) {
        if let Some(prefix) = scope.strip_suffix('*') {
            if let Err(at) = self.prefix_lengths.binary_search(&prefix.len()) {
                self.prefix_lengths.insert(at, prefix.len());
            }
            self.star_prefixes.insert(prefix.to_string());
        }
        self.exact.insert(scope.to_string());
    }

    pub fn satisfies(&self, required: &str) -> bool {
        if self.exact.contains(required) {
            return true;
        }
        self.has_star_prefix_of(required, required.len() + 1)
    }

    /// Whether some `p*` in the set has `p` a prefix of `s` shorter than `limit`.
    fn has_star_prefix_of(&self, s: &str, limit: usize) -> bool {
        self.prefix_lengths
            .iter()
            .take_while(|&&len| len < limit && len <= s.len())
            .any(|&len| s.is_char_boundary(len) && self.star_prefixes.contains(&s[..len]))
    }

    pub fn len(&self) -> usize {
        self.exact.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// The scopes in normal form: sorted, without duplicates and without any scope that
    /// another member already satisfies. A normal set satisfies exactly what the original
    /// did.
    pub fn normalized(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .exact
            .iter()
            .filter(|s| {
                // Drop `s` when a star scope `p*` of the set covers it. Two star scopes can
                // cover each other (`foo:*` and `foo:**`); then the shorter prefix stays.
                let limit = match s.strip_suffix('*') {
                    Some(own) => own.len(), // only strictly shorter prefixes
                    None => s.len() + 1,    // any prefix, `s` itself included (`s*` covers `s`)
                };
                !self.has_star_prefix_of(s, limit)
            })
            .cloned()
            .collect();
        out.sort_unstable();
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.exact.iter().map(String::as_str)
    }
}

/// Normalises a list of scopes (see [`ScopeSet::normalized`]).
pub fn normalize<S: AsRef<str>>(scopes: impl IntoIterator<Item = S>) -> Vec<String> {
    ScopeSet::new(scopes).normalized()
}

/// A scope expression: a scope, `{"AllOf": [...]}` or `{"AnyOf": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeExpr {
    Scope(String),
    AllOf(Vec<ScopeExpr>),
    AnyOf(Vec<ScopeExpr>),
}

impl ScopeExpr {
    /// Parses the JSON form, including the legacy disjunctive normal form
    /// `[[a, b], [c]]` = `{AnyOf: [{AllOf: [a, b]}, {AllOf: [c]}]}`.
    pub fn from_json(v: &Value) -> Result<Self, ScopeError> {
        match v {
            Value::String(s) if is_valid_scope(s) => Ok(ScopeExpr::Scope(s.clone())),
            Value::String(s) => Err(ScopeError::InvalidScope(s.clone())),
            Value::Object(o) if o.len() == 1 => {
                let (key, inner) = o.iter().next().expect("one entry");
                let Value::Array(items) = inner else {
                    return Err(ScopeError::InvalidExpression(format!("{key} must be an array")));
                };
                let items = items.iter().map(Self::from_json).collect::<Result<Vec<_>, _>>()?;
                match key.as_str() {
                    "AllOf" => Ok(ScopeExpr::AllOf(items)),
                    "AnyOf" => Ok(ScopeExpr::AnyOf(items)),
                    other => Err(ScopeError::InvalidExpression(format!("unknown operator {other:?}"))),
                }
            }
            Value::Array(alternatives) => {
                let anyof = alternatives
                    .iter()
                    .map(|alt| match alt {
                        Value::Array(all) => all
                            .iter()
                            .map(|s| match s {
                                Value::String(_) => Self::from_json(s),
                                _ => Err(ScopeError::InvalidExpression("DNF entries must be strings".into())),
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map(ScopeExpr::AllOf),
                        _ => Err(ScopeError::InvalidExpression("DNF must be an array of arrays".into())),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(ScopeExpr::AnyOf(anyof))
            }
            _ => Err(ScopeError::InvalidExpression(format!(
                "expected a scope, {{\"AllOf\": [...]}} or {{\"AnyOf\": [...]}}, got {v}"
            ))),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ScopeExpr::Scope(s) => json!(s),
            ScopeExpr::AllOf(items) => json!({"AllOf": items.iter().map(Self::to_json).collect::<Vec<_>>()}),
            ScopeExpr::AnyOf(items) => json!({"AnyOf": items.iter().map(Self::to_json).collect::<Vec<_>>()}),
        }
    }

    pub fn satisfied_by(&self, scopes: &ScopeSet) -> bool {
        match self {
            ScopeExpr::Scope(s) => scopes.satisfies(s),
            ScopeExpr::AllOf(items) => items.iter().all(|e| e.satisfied_by(scopes)),
            ScopeExpr::AnyOf(items) => items.iter().any(|e| e.satisfied_by(scopes)),
        }
    }

    /// Whether a plain list of scopes satisfies the expression, without building a
    /// [`ScopeSet`]: the expression's few leaf scopes are indexed instead, and the list is
    /// streamed past them once. This is the fast path for "does this caller's (expanded)
    /// scope list satisfy this endpoint's expression", where the list is long and the
    /// expression short.
    pub fn satisfied_by_list<S: AsRef<str>>(&self, scopes: &[S]) -> bool {
        let mut leaves: Vec<&str> = Vec::new();
        self.collect_leaves(&mut leaves);
        let mut index: rustc_hash::FxHashMap<&str, Vec<usize>> = Default::default();
        for (i, leaf) in leaves.iter().enumerate() {
            index.entry(leaf).or_default().push(i);
        }
        // Bit n set = some leaf is n bytes long (n < 128): most given scopes can then be
        // ruled out as exact matches without hashing them.
        let mut leaf_lengths = 0u128;
        let mut long_leaves = false;
        for leaf in &leaves {
            match leaf.len() {
                n if n < 128 => leaf_lengths |= 1 << n,
                _ => long_leaves = true,
            }
        }
        let mut satisfied = vec![false; leaves.len()];
        for given in scopes {
            let given = given.as_ref();
            let may_equal = if given.len() < 128 { leaf_lengths & (1 << given.len()) != 0 } else { long_leaves };
            if let Some(hits) = may_equal.then(|| index.get(given)).flatten() {
                for &i in hits {
                    satisfied[i] = true;
                }
            }
            if let Some(prefix) = given.strip_suffix('*') {
                for (i, leaf) in leaves.iter().enumerate() {
                    if leaf.starts_with(prefix) {
                        satisfied[i] = true;
                    }
                }
            }
        }
        let mut next = 0;
        self.evaluate_leaves(&satisfied, &mut next)
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            ScopeExpr::Scope(s) => out.push(s),
            ScopeExpr::AllOf(items) | ScopeExpr::AnyOf(items) => items.iter().for_each(|e| e.collect_leaves(out)),
        }
    }

    /// Evaluates with leaf results in `collect_leaves` order; every leaf is consumed so
    /// that `next` stays aligned (no short-circuit).
    fn evaluate_leaves(&self, satisfied: &[bool], next: &mut usize) -> bool {
        match self {
            ScopeExpr::Scope(_) => {
                *next += 1;
                satisfied[*next - 1]
            }
            ScopeExpr::AllOf(items) => items.iter().fold(true, |acc, e| e.evaluate_leaves(satisfied, next) && acc),
            ScopeExpr::AnyOf(items) => items.iter().fold(false, |acc, e| e.evaluate_leaves(satisfied, next) || acc),
        }
    }

    /// The part of the expression that `scopes` does not satisfy, or `None` when it is
    /// satisfied: an `AllOf` keeps only its unsatisfied members, an unsatisfied `AnyOf`
    /// stays whole (any one of its members would do).
    pub fn unsatisfied(&self, scopes: &ScopeSet) -> Option<ScopeExpr> {
        match self {
            ScopeExpr::Scope(s) => (!scopes.satisfies(s)).then(|| self.clone()),
            ScopeExpr::AllOf(items) => {
                let missing: Vec<_> = items.iter().filter_map(|e| e.unsatisfied(scopes)).collect();
                match missing.len() {
                    0 => None,
                    1 => missing.into_iter().next(),
                    _ => Some(ScopeExpr::AllOf(missing)),
                }
            }
            ScopeExpr::AnyOf(items) => {
                if items.iter().any(|e| e.satisfied_by(scopes)) {
                    return None;
                }
                let simplified: Vec<_> = items.iter().filter_map(|e| e.unsatisfied(scopes)).collect();
                if simplified.len() == 1 {
                    simplified.into_iter().next()
                } else {
                    Some(ScopeExpr::AnyOf(simplified))
                }
            }
        }
    }

    /// Fills `<param>` placeholders from the request's parameters, e.g.
    /// `hooks:modify-hook:<hookGroupId>/<hookId>`.
    pub fn fill(&self, params: &BTreeMap<&str, &str>) -> Result<ScopeExpr, ScopeError> {
        Ok(match self {
            ScopeExpr::Scope(s) => ScopeExpr::Scope(fill_template(s, params)?),
            ScopeExpr::AllOf(items) => ScopeExpr::AllOf(items.iter().map(|e| e.fill(params)).collect::<Result<_, _>>()?),
            ScopeExpr::AnyOf(items) => ScopeExpr::AnyOf(items.iter().map(|e| e.fill(params)).collect::<Result<_, _>>()?),
        })
    }
}

impl fmt::Display for ScopeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string_pretty(&self.to_json()).expect("JSON"))
    }
}

fn fill_template(template: &str, params: &BTreeMap<&str, &str>) -> Result<String, ScopeError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else { break };
        let name = &rest[start + 1..start + len];
        out.push_str(&rest[..start]);
        let value = params.get(name).ok_or_else(|| ScopeError::MissingParameter {
            template: template.to_string(),
            param: name.to_string(),
        })?;
        out.push_str(value);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A role: `assume:<roleId>` grants `scopes`. A roleId ending in `*` is parameterised:
/// `<..>` in its scopes stands for what the `*` matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub role_id: String,
    pub scopes: Vec<String>,
}

/// All roles of a deployment, ready to expand scope sets.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    roles: Vec<Role>,
    /// `assume:<roleId>` for each role, built once rather than per check.
    assume_scopes: Vec<String>,
}

impl Roles {
    pub fn new(roles: Vec<Role>) -> Self {
        let assume_scopes = roles.iter().map(|r| format!("assume:{}", r.role_id)).collect();
        Self { roles, assume_scopes }
    }

    /// The scopes a role grants for the scope `assumed` that selected it.
    fn grant(role: &Role, assumed: &str, out: &mut Vec<String>) {
        let Some(prefix) = role.role_id.strip_suffix('*') else {
            out.extend(role.scopes.iter().cloned());
            return;
        };
        // What the role's `*` matched: the rest of `assume:<prefix>...`, or `*` when the
        // assumed scope is itself a wider star scope covering the whole role.
        let param = assumed
            .strip_prefix("assume:")
            .and_then(|a| a.strip_prefix(prefix))
            .unwrap_or("*");
        for scope in &role.scopes {
            match scope.find("<..>") {
                None => out.push(scope.clone()),
                Some(at) => {
                    let mut s = format!("{}{}", &scope[..at], param);
                    if !param.ends_with('*') {
                        s.push_str(&scope[at + 4..].replace("<..>", param));
                    }
                    out.push(s);
                }
            }
        }
    }

    /// Expands `scopes` to a fixed point: every role a scope in the set assumes adds its
    /// scopes, repeatedly. The result is normalised. Bounded: past [`MAX_EXPANDED_SCOPES`]
    /// or [`MAX_EXPANDED_BYTES`] it stops with an error rather than growing until memory
    /// runs out.
    pub fn expand<S: AsRef<str>>(&self, scopes: impl IntoIterator<Item = S>) -> Result<Vec<String>, ScopeError> {
        let mut bytes = 0usize;
        let mut set = ScopeSet::default();
        let mut queue: Vec<String> = Vec::new();
        for s in scopes {
            let s = s.as_ref();
            if !set.exact.contains(s) {
                set.insert(s);
                queue.push(s.to_string());
            }
        }
        let mut done: HashSet<String> = HashSet::default();
        let mut granted = Vec::new();
        while let Some(scope) = queue.pop() {
            // Only `assume:...` scopes, or star scopes wide enough to cover `assume:`
            // (`*`, `as*`), can select a role.
            let can_assume = scope.starts_with("assume:")
                || scope.strip_suffix('*').is_some_and(|p| "assume:".starts_with(p));
            if !can_assume {
                continue;
            }
            if done.contains(&scope) {
                continue;
            }
            for (role, assume_role) in self.roles.iter().zip(&self.assume_scopes) {
                let selected = satisfies(&scope, assume_role)
                    || (role.role_id.ends_with('*') && satisfies(assume_role, &scope));
                if selected {
                    granted.clear();
                    Self::grant(role, &scope, &mut granted);
                    for g in granted.drain(..) {
                        if !set.satisfies(&g) {
                            bytes += g.len();
                            if set.len() >= MAX_EXPANDED_SCOPES || bytes > MAX_EXPANDED_BYTES {
                                return Err(ScopeError::ExpansionTooLarge);
                            }
                            set.insert(&g);
                            queue.push(g);
                        }
                    }
                }
            }
            done.insert(scope);
        }
        Ok(set.normalized())
    }
}

/// Upstream's rules for a set of roles (taskcluster-auth's `dependencyOrdering`), checked
/// before a role is written: a parameterised role's scope may hold `<..>` once, and not
/// right after a `*`; and no role may depend on itself, where role A depends on role B if
/// a scope of A, with `<..>` taken at its worst as `*`, assumes B. Without a cycle every
/// expansion ends; with one (`probe-star*` granting `assume:probe-star<..>x`) it grows
/// without end. The error names the cycle as upstream's does.
pub fn check_role_set(roles: &[Role]) -> Result<(), ScopeError> {
    let mut worst: Vec<Vec<String>> = Vec::with_capacity(roles.len());
    for role in roles {
        let parameterised = role.role_id.ends_with('*');
        let mut scopes = Vec::with_capacity(role.scopes.len());
        for scope in &role.scopes {
            match scope.find("<..>") {
                Some(at) if parameterised => {
                    if scope[at + 4..].contains("<..>") {
                        return Err(ScopeError::InvalidRoles(format!("parameterized scope '{scope}' contains multiple '<..>'")));
                    }
                    if scope[..at].ends_with('*') && at + 4 == scope.len() {
                        return Err(ScopeError::InvalidRoles(format!(
                            "parameterized scope '{scope}' ends with '*<..>' which implies an ambiguous kleene"
                        )));
                    }
                    // A parameter ending in `*` swallows the rest of the scope.
                    scopes.push(format!("{}*", &scope[..at]));
                }
                _ => scopes.push(scope.clone()),
            }
        }
        worst.push(scopes);
    }
    let assume: Vec<String> = roles.iter().map(|r| format!("assume:{}", r.role_id)).collect();
    let depends = |a: usize, b: usize| {
        worst[a].iter().any(|s| satisfies(s, &assume[b]) || (roles[b].role_id.ends_with('*') && satisfies(&assume[b], s)))
    };
    // Depth-first search over the dependency graph, iterative so a long chain of roles
    // cannot overflow the stack: 0 unseen, 1 on the path, 2 done.
    let mut state = vec![0u8; roles.len()];
    for root in 0..roles.len() {
        if state[root] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if *next == roles.len() {
                state[node] = 2;
                path.pop();
                continue;
            }
            let dep = *next;
            *next += 1;
            if !depends(node, dep) {
                continue;
            }
            match state[dep] {
                0 => {
                    state[dep] = 1;
                    path.push((dep, 0));
                }
                1 => {
                    let start = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let cycle: Vec<&str> = path[start..].iter().map(|(n, _)| assume[*n].as_str()).chain([assume[dep].as_str()]).collect();
                    return Err(ScopeError::InvalidRoles(format!("Roles may not contain dependency cycles, found: '{}'", cycle.join("' -> '"))));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The answers of the library upstream uses (`benches/js-reference/vectors.mjs`, with
    /// the pinned taskcluster-lib-scopes): satisfaction and the normal form, every case.
    #[test]
    fn agrees_with_taskcluster_lib_scopes_on_every_generated_case() {
        #[derive(serde::Deserialize)]
        struct Case {
            scopes: Vec<String>,
            expression: Value,
            satisfied: bool,
            normalized: Vec<String>,
        }
        #[derive(serde::Deserialize)]
        struct Vectors {
            library: String,
            cases: Vec<Case>,
        }
        let v: Vectors = serde_json::from_str(include_str!("../tests/vectors/scopes.json")).unwrap();
        assert!(v.cases.len() >= 1000, "{}", v.library);
        let mut differ = Vec::new();
        for (i, c) in v.cases.iter().enumerate() {
            let expr = ScopeExpr::from_json(&c.expression).unwrap_or_else(|e| panic!("case {i}: {e}"));
            let got = expr.satisfied_by(&ScopeSet::new(&c.scopes));
            if got != c.satisfied || expr.satisfied_by_list(&c.scopes) != c.satisfied {
                differ.push(format!("case {i}: {:?} satisfies {} : {got}, {} says {}", c.scopes, c.expression, v.library, c.satisfied));
            }
            let normal = normalize(&c.scopes);
            if normal != c.normalized {
                differ.push(format!("case {i}: normal form of {:?}: {normal:?}, {} says {:?}", c.scopes, v.library, c.normalized));
            }
        }
        assert!(differ.is_empty(), "{} of {} cases differ:\n{}", differ.len(), v.cases.len(), differ.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
    }

    use super::*;

    fn role(id: &str, scopes: &[&str]) -> Role {
        Role { role_id: id.into(), scopes: scopes.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn role_sets_are_checked_by_upstreams_rules() {
        // upstream role_test.js "create a role introducing a parameter cycle"
        let err = check_role_set(&[role("a*", &["assume:b<..>"]), role("b*", &["assume:a<..>x"])]).unwrap_err().to_string();
        assert!(err.starts_with("Roles may not contain dependency cycles, found: 'assume:a*' -> 'assume:b*' -> 'assume:a*'"), "{err}");
        // The attack of the issue: one role whose parameter makes it assume itself, longer.
        let err = check_role_set(&[role("probe-star*", &["assume:probe-star<..>x"])]).unwrap_err().to_string();
        assert!(err.contains("'assume:probe-star*' -> 'assume:probe-star*'"), "{err}");
        assert!(check_role_set(&[role("a", &["assume:a"])]).is_err(), "a role assuming itself");
        assert!(check_role_set(&[role("a", &["assume:b"]), role("b", &["assume:c"]), role("c", &["assume:a*"])]).is_err());
        assert!(check_role_set(&[role("admin", &["*"])]).is_err(), "`*` assumes every role, itself included, as upstream finds");
        assert!(check_role_set(&[role("a*", &["x<..>y<..>"])]).unwrap_err().to_string().contains("multiple '<..>'"));
        assert!(check_role_set(&[role("a*", &["x*<..>"])]).unwrap_err().to_string().contains("ambiguous kleene"));
        assert_eq!(check_role_set(&[role("a*", &["x*<..>y"])]), Ok(()), "only a trailing `*<..>` is ambiguous, as upstream");
        // What real deployments have: chains, parameters into other roles, non-role stars.
        let fine = [
            role("hook-id:proj/*", &["assume:project:proj:hooks", "queue:route:index.proj.<..>.*"]),
            role("project:proj:hooks", &["queue:create-task:*", "assume:worker-pool:proj/*"]),
            role("worker-pool:proj/*", &["queue:claim-work:proj/<..>"]),
            role("repo:github.com/org/*", &["assume:project:proj:hooks", "secrets:get:<..>"]),
            role("x<..>", &["x<..>y<..>"]),
        ];
        assert_eq!(check_role_set(&fine), Ok(()));
    }

    #[test]
    fn an_expansion_that_would_grow_without_end_stops_with_an_error() {
        let r = Roles::new(vec![role("probe-star*", &["assume:probe-star<..>x"])]);
        assert_eq!(r.expand(["assume:probe-star"]), Err(ScopeError::ExpansionTooLarge));
        assert_eq!(r.expand(["assume:other"]).unwrap(), vec!["assume:other"]);
    }

    fn set(scopes: &[&str]) -> ScopeSet {
        ScopeSet::new(scopes.iter().copied())
    }

    #[test]
    fn single_scope_rules() {
        // (given, required, satisfied?) — SPEC §13 rule 2.
        let cases = [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("abc*", "abc", true),
            ("abc*", "abc*", true),
            ("abc*", "abcd", true),
            ("abc*", "abc:x:y", true),
            ("abc*", "ab", false),
            ("*", "anything at all", true),
            ("*", "", true),
            ("a*b", "a*b", true),
            ("a*b", "axb", false),
            ("hooks:trigger-hook:proj/nightly", "hooks:trigger-hook:proj/*", false),
            ("hooks:trigger-hook:proj/*", "hooks:trigger-hook:proj/*", true),
            ("foo:**", "foo:*", true),
            ("foo:**", "foo:*x", true),
            ("foo:**", "foo:abc", false),
        ];
        for (given, required, expected) in cases {
            assert_eq!(satisfies(given, required), expected, "{given} vs {required}");
            assert_eq!(set(&[given]).satisfies(required), expected, "set {given} vs {required}");
        }
    }

    #[test]
    fn sets_and_validity() {
        let s = set(&["a", "b:*"]);
        assert!(s.satisfies("a") && s.satisfies("b:x") && !s.satisfies("c") && !s.satisfies("b"));
        assert!(!set(&[]).satisfies(""));
        assert!(is_valid_scope("queue:create-task:highest:proj/ci with space"));
        assert!(!is_valid_scope("tab\there"));
        assert!(!is_valid_scope("é"));
        assert_eq!(ScopeExpr::from_json(&json!("bad\n")), Err(ScopeError::InvalidScope("bad\n".into())));
    }

    #[test]
    fn expressions() {
        let e = |v: Value| ScopeExpr::from_json(&v).unwrap();
        let s = set(&["a", "b*"]);
        assert!(e(json!({"AllOf": []})).satisfied_by(&s));
        assert!(!e(json!({"AnyOf": []})).satisfied_by(&s));
        assert!(e(json!({"AllOf": ["a", "bc"]})).satisfied_by(&s));
        assert!(!e(json!({"AllOf": ["a", "c"]})).satisfied_by(&s));
        assert!(e(json!({"AnyOf": ["c", {"AllOf": ["a", "b"]}]})).satisfied_by(&s));
        assert_eq!(e(json!([["a", "b"], ["c"]])), e(json!({"AnyOf": [{"AllOf": ["a", "b"]}, {"AllOf": ["c"]}]})));
        assert!(ScopeExpr::from_json(&json!({"AllOf": [], "AnyOf": []})).is_err());
        assert!(ScopeExpr::from_json(&json!({"OneOf": []})).is_err());
        assert!(ScopeExpr::from_json(&json!({"AllOf": "a"})).is_err());
        assert!(ScopeExpr::from_json(&json!(5)).is_err());
        let round = json!({"AnyOf": ["x", {"AllOf": ["y", "z"]}]});
        assert_eq!(e(round.clone()).to_json(), round);
    }

    #[test]
    fn what_is_missing() {
        let e = |v: Value| ScopeExpr::from_json(&v).unwrap();
        let s = set(&["hooks:modify-hook:g/*"]);
        let create = e(json!({"AllOf": ["hooks:modify-hook:g/h", "assume:hook-id:g/h"]}));
        assert_eq!(create.unsatisfied(&s), Some(e(json!("assume:hook-id:g/h"))));
        let either = e(json!({"AllOf": ["x", {"AnyOf": ["y", "z"]}]}));
        assert_eq!(either.unsatisfied(&s), Some(e(json!({"AllOf": ["x", {"AnyOf": ["y", "z"]}]}))));
        assert_eq!(either.unsatisfied(&set(&["x"])), Some(e(json!({"AnyOf": ["y", "z"]}))));
        assert_eq!(either.unsatisfied(&set(&["x", "z"])), None);
        assert!(e(json!("assume:hook-id:g/h")).to_string().contains("assume:hook-id:g/h"));
    }

    #[test]
    fn templates() {
        let params = BTreeMap::from([("hookGroupId", "proj-x"), ("hookId", "a/b")]);
        let t = ScopeExpr::from_json(&json!({"AllOf": ["hooks:modify-hook:<hookGroupId>/<hookId>", "assume:hook-id:<hookGroupId>/<hookId>"]})).unwrap();
        assert_eq!(
            t.fill(&params).unwrap().to_json(),
            json!({"AllOf": ["hooks:modify-hook:proj-x/a/b", "assume:hook-id:proj-x/a/b"]})
        );
        assert_eq!(ScopeExpr::Scope("hooks:get:<hookGroupId>:<hookId>".into()).fill(&params).unwrap(), ScopeExpr::Scope("hooks:get:proj-x:a/b".into()));
        assert!(matches!(ScopeExpr::Scope("x:<taskId>".into()).fill(&params), Err(ScopeError::MissingParameter { .. })));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize(["b", "a", "a"]), vec!["a", "b"]);
        assert_eq!(normalize(["a*", "ab", "abc*", "a"]), vec!["a*"]);
        assert_eq!(normalize(["*", "x"]), vec!["*"]);
        assert_eq!(normalize(["foo:**", "foo:*"]), vec!["foo:*"]);
        assert_eq!(normalize(["ab*", "a"]), vec!["a", "ab*"]);
    }

    fn roles() -> Roles {
        Roles::new(vec![
            Role { role_id: "hook-id:proj/nightly".into(), scopes: vec!["queue:create-task:highest:proj/*".into(), "assume:project:proj".into()] },
            Role { role_id: "project:proj".into(), scopes: vec!["secrets:get:proj/*".into()] },
            Role { role_id: "hook-id:other/*".into(), scopes: vec!["queue:route:index.other.<..>".into()] },
            Role { role_id: "project-admin:*".into(), scopes: vec!["hooks:modify-hook:project-<..>/*".into(), "assume:hook-id:project-<..>/*".into()] },
            Role { role_id: "anonymous".into(), scopes: vec!["hooks:get:public:*".into()] },
        ])
    }

    #[test]
    fn role_expansion_follows_assume_to_a_fixed_point() {
        let r = roles();
        assert_eq!(
            r.expand(["assume:hook-id:proj/nightly"]).unwrap(),
            vec!["assume:hook-id:proj/nightly", "assume:project:proj", "queue:create-task:highest:proj/*", "secrets:get:proj/*"]
        );
        // A star scope pulls in every role it covers.
        let wide = r.expand(["assume:hook-id:proj/*"]).unwrap();
        assert!(wide.contains(&"secrets:get:proj/*".to_string()), "{wide:?}");
        // Roles with no assume stay untouched.
        assert_eq!(r.expand(["x"]).unwrap(), vec!["x"]);
        assert_eq!(r.expand(["assume:anonymous"]).unwrap(), vec!["assume:anonymous", "hooks:get:public:*"]);
    }

    #[test]
    fn parameterised_roles() {
        let r = roles();
        assert!(r.expand(["assume:hook-id:other/x"]).unwrap().contains(&"queue:route:index.other.x".to_string()));
        let zap = r.expand(["assume:project-admin:zap"]).unwrap();
        assert!(zap.contains(&"hooks:modify-hook:project-zap/*".to_string()), "{zap:?}");
        assert!(zap.contains(&"assume:hook-id:project-zap/*".to_string()), "{zap:?}");
        // A matched part ending in `*` cuts the scope right after the substitution.
        let z = r.expand(["assume:project-admin:z*"]).unwrap();
        assert!(z.contains(&"hooks:modify-hook:project-z*".to_string()), "{z:?}");
        // `*` alone covers everything, including every parameterised role.
        let all = r.expand(["*"]).unwrap();
        assert_eq!(all, vec!["*"]);
        let star = r.expand(["assume:*"]).unwrap();
        assert!(star.contains(&"hooks:modify-hook:project-*".to_string()), "{star:?}");
        assert!(star.contains(&"secrets:get:proj/*".to_string()), "{star:?}");
    }

    #[test]
    fn a_hook_role_in_practice() {
        // SPEC §13 rule 9: hook proj-x/nightly creates a task for proj-x/ci with
        // `scopes: ["secrets:get:proj-x/token"]` at the default priority.
        let roles = Roles::new(vec![Role {
            role_id: "hook-id:proj-x/*".into(),
            scopes: vec!["secrets:get:proj-x/*".into(), "queue:create-task:highest:proj-x/*".into(),
                         "queue:create-task:project:none".into(), "queue:scheduler-id:-".into()],
        }]);
        let priorities = ["highest", "very-high", "high", "medium", "low", "very-low", "lowest"];
        let queue_requires = ScopeExpr::AllOf(vec![
            ScopeExpr::Scope("secrets:get:proj-x/token".into()),
            ScopeExpr::Scope("queue:create-task:project:none".into()),
            ScopeExpr::Scope("queue:scheduler-id:-".into()),
            ScopeExpr::AnyOf(priorities.iter().map(|p| ScopeExpr::Scope(format!("queue:create-task:{p}:proj-x/ci"))).collect()),
        ]);
        let hook_scopes = roles.expand(["assume:hook-id:proj-x/nightly"]).unwrap();
        assert!(queue_requires.satisfied_by_list(&hook_scopes), "{hook_scopes:?}");
        // Another project's hook gets none of it.
        let other = roles.expand(["assume:hook-id:proj-y/nightly"]).unwrap();
        assert_eq!(queue_requires.unsatisfied(&ScopeSet::new(&other)), Some(queue_requires.clone()));
        // Creating the hook needs both scopes; triggering needs only the trigger scope.
        let create = ScopeExpr::AllOf(vec![
            ScopeExpr::Scope("hooks:modify-hook:proj-x/nightly".into()),
            ScopeExpr::Scope("assume:hook-id:proj-x/nightly".into()),
        ]);
        assert!(!create.satisfied_by_list(&["hooks:modify-hook:proj-x/*"]));
        assert!(create.satisfied_by_list(&["hooks:modify-hook:proj-x/*", "assume:hook-id:proj-x/*"]));
        assert!(ScopeExpr::Scope("hooks:trigger-hook:proj-x/nightly".into()).satisfied_by_list(&["hooks:trigger-hook:proj-x/nightly"]));
    }

    #[test]
    fn cycles_terminate() {
        let r = Roles::new(vec![
            Role { role_id: "a".into(), scopes: vec!["assume:b".into(), "x".into()] },
            Role { role_id: "b".into(), scopes: vec!["assume:a".into(), "y".into()] },
        ]);
        assert_eq!(r.expand(["assume:a"]).unwrap(), vec!["assume:a", "assume:b", "x", "y"]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    // Scopes over a tiny alphabet, so that prefixes and stars collide often.
    fn scope() -> impl Strategy<Value = String> {
        "[ab:]{0,4}\\*?"
    }

    proptest! {
        #[test]
        fn a_set_satisfies_each_of_its_members(scopes in prop::collection::vec(scope(), 0..12)) {
            let set = ScopeSet::new(&scopes);
            for s in &scopes {
                prop_assert!(set.satisfies(s));
            }
        }

        #[test]
        fn normalising_never_changes_what_is_satisfied(
            scopes in prop::collection::vec(scope(), 0..12),
            required in prop::collection::vec(scope(), 0..12),
        ) {
            let set = ScopeSet::new(&scopes);
            let normal = ScopeSet::new(set.normalized());
            for r in &required {
                prop_assert_eq!(set.satisfies(r), normal.satisfies(r), "{}", r);
            }
            // Normal form is a fixed point, and minimal: no member covers another.
            let normalized = set.normalized();
            prop_assert_eq!(normalize(&normalized), normalized.clone());
            for (i, a) in normalized.iter().enumerate() {
                for (j, b) in normalized.iter().enumerate() {
                    prop_assert!(i == j || !satisfies(a, b), "{} covers {}", a, b);
                }
            }
        }

        #[test]
        fn the_indexed_set_agrees_with_the_definition(
            scopes in prop::collection::vec(scope(), 0..8),
            required in scope(),
        ) {
            let by_definition = scopes.iter().any(|g| satisfies(g, &required));
            prop_assert_eq!(ScopeSet::new(&scopes).satisfies(&required), by_definition);
        }

        #[test]
        fn list_and_set_satisfaction_agree(
            scopes in prop::collection::vec(scope(), 0..10),
            leaves in prop::collection::vec(scope(), 1..6),
            shape in 0u8..4,
        ) {
            let leaf = |i: usize| ScopeExpr::Scope(leaves[i % leaves.len()].clone());
            let expr = match shape {
                0 => leaf(0),
                1 => ScopeExpr::AllOf((0..leaves.len()).map(leaf).collect()),
                2 => ScopeExpr::AnyOf((0..leaves.len()).map(leaf).collect()),
                _ => ScopeExpr::AllOf(vec![leaf(0), ScopeExpr::AnyOf((1..leaves.len()).map(leaf).collect())]),
            };
            prop_assert_eq!(expr.satisfied_by_list(&scopes), expr.satisfied_by(&ScopeSet::new(&scopes)));
        }

        #[test]
        fn expansion_only_adds_power(scopes in prop::collection::vec(scope(), 0..6), required in scope()) {
            let roles = Roles::new(vec![
                Role { role_id: "a*".into(), scopes: vec!["b:<..>".into()] },
                Role { role_id: "b".into(), scopes: vec!["assume:a:".into()] },
            ]);
            let expanded = ScopeSet::new(roles.expand(&scopes).unwrap());
            if ScopeSet::new(&scopes).satisfies(&required) {
                prop_assert!(expanded.satisfies(&required));
            }
        }
    }
}
