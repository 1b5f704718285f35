//! The endpoint table against itself, the schemas, the served references and the README.

use super::endpoints::{param, Access, Endpoint, Input, ENDPOINTS, PARAMS, SERVICES};
use super::{references, schemas};
use serde_json::{json, Value};

#[test]
fn each_parameter_check_is_its_pattern() {
    let long = "a".repeat(1000);
    let too_long = "a".repeat(1001);
    let samples = [
        "", "a", "A-z_09", "a/b", "a b", "%", "é", "!@/:.+|_-", "client", "role", "hook", "secret", "worker-pool", "clients", "x\u{7f}", "~ ~",
        "fGbFdnkeQ_e0sAlDZtJCMA", "fGbFdnkeQ_e0sAlDZtJCMB", "fGbFdnkeA_e0sAlDZtJCMA", "abc_def-1", long.as_str(), too_long.as_str(),
    ];
    for p in PARAMS {
        let re = regex::Regex::new(p.pattern).unwrap();
        for s in samples {
            assert_eq!((p.valid)(s), re.is_match(s), "{} on {s:?}: the check and {} disagree", p.name, p.pattern);
        }
    }
}

#[test]
fn routes_are_unique_and_their_parameters_declared() {
    for (i, a) in ENDPOINTS.iter().enumerate() {
        for arg in a.args() {
            assert!(param(arg).is_some(), "{a:?}: parameter {arg} is not in PARAMS");
        }
        for b in &ENDPOINTS[i + 1..] {
            assert!(!(a.service == b.service && a.method == b.method && a.route == b.route), "{a:?} and {b:?} share a route");
            assert!(!(a.listed && b.listed && a.service == b.service && a.name == b.name), "{a:?} and {b:?} share a name");
        }
        assert!(SERVICES.iter().any(|(s, _)| *s == a.service), "{a:?}: service not in SERVICES");
        if a.listed {
            assert!(!a.description.is_empty() && !a.category.is_empty(), "{a:?} needs a description and a category");
        }
    }
}

fn declared_schemas(e: &Endpoint) -> Vec<String> {
    let input = match e.input {
        Input::Json(s) => Some(s),
        _ => None,
    };
    input.into_iter().chain(e.output).map(|s| schemas::path_of(e.service, s)).collect()
}

#[test]
fn every_declared_schema_is_embedded_and_compiles() {
    for e in ENDPOINTS {
        for path in declared_schemas(e) {
            assert!(schemas::file(&path).is_some(), "{e:?}: no schema {path}");
            // Compiling it (with its `$ref`s) is validating something against it.
            assert!(
                !schemas::validate(&path, &json!(null)).unwrap_err().iter().any(|e| e.contains("does not compile")),
                "{path} does not compile"
            );
        }
    }
}

/// Each schema file is JSON, names itself by its path, and passes the draft-06
/// meta-schema (upstream's meta-schema is draft-06 plus `metadata`), which the request
/// path skips for speed.
#[test]
fn every_schema_file_is_a_valid_schema() {
    let mut count = 0;
    for path in schemas::paths() {
        let mut schema: Value = serde_json::from_str(schemas::file(path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(schema["$id"], json!(format!("/schemas/{path}#")), "{path}'s $id");
        if path.starts_with("common/") {
            continue;
        }
        schema["$schema"] = json!("http://json-schema.org/draft-06/schema#");
        strip_refs(&mut schema);
        let mut compiler = boon::Compiler::new();
        let url = format!("https://taskhooks.invalid/schemas/{path}");
        compiler.add_resource(&url, schema).unwrap();
        compiler.compile(&url, &mut boon::Schemas::new()).unwrap_or_else(|e| panic!("{path} is not a draft-06 schema: {e:#}"));
        count += 1;
    }
    assert!(count >= 40, "only {count} schemas");
}

/// `$ref`s to other files are resolved by `schemas::validate` (tested above); here each
/// file is checked alone.
fn strip_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("$ref").and_then(Value::as_str).is_some_and(|r| !r.starts_with('#')) {
                map.remove("$ref");
            }
            map.values_mut().for_each(strip_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_refs),
        _ => {}
    }
}

#[test]
fn input_validation_names_what_is_wrong() {
    let err = schemas::validate_input("hooks", "v1/create-hook-request.json#", &json!({"metadata": {"name": "n"}, "task": {}, "extra": 1})).unwrap_err();
    assert_eq!(err.code, crate::error::ErrorCode::InputValidationError);
    assert!(err.message.contains("Rejecting Schema: /schemas/hooks/v1/create-hook-request.json#"), "{}", err.message);
    assert!(err.message.contains("/metadata"), "{}", err.message);
    assert!(err.message.contains("extra"), "{}", err.message);
    schemas::validate_input("auth", "v1/scopeset.json#", &json!({"scopes": ["a"]})).unwrap();
    // A public method's body of many bad items: a short message.
    let many = json!({"scopes": (0..100_000).collect::<Vec<_>>()});
    let err = schemas::validate_input("auth", "v1/scopeset.json#", &many).unwrap_err();
    assert!(err.message.lines().count() <= 25 && err.message.contains("... and 99980 more"), "{}", &err.message[..err.message.len().min(2000)]);
}

#[test]
fn references_follow_taskclusters_formats() {
    let root = "https://tc.example.com";
    let mut manifest = references::manifest(root);
    assert_eq!(manifest["$schema"], "https://tc.example.com/schemas/common/manifest-v3.json#");
    // Upstream's manifest names its `$schema`, which that schema does not allow.
    manifest.as_object_mut().unwrap().remove("$schema");
    validate_common("common/manifest-v3.json", &manifest);
    assert_eq!(manifest["references"][0], "https://tc.example.com/references/hooks/v1/api.json");
    for (service, _) in SERVICES {
        let reference = references::api_reference(service, root).unwrap();
        validate_common("common/api-reference-v0.json", &reference);
        let names: Vec<&str> = reference["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        let listed = ENDPOINTS.iter().filter(|e| e.service == *service && e.listed).count();
        assert_eq!(names.len(), listed, "{service}");
    }
    let hooks = references::api_reference("hooks", root).unwrap();
    let create = hooks["entries"].as_array().unwrap().iter().find(|e| e["name"] == "createHook").unwrap();
    assert_eq!(create["method"], "put");
    assert_eq!(create["args"], json!(["hookGroupId", "hookId"]));
    assert_eq!(create["input"], "v1/create-hook-request.json#");
    assert_eq!(create["scopes"]["AllOf"][1], "assume:hook-id:<hookGroupId>/<hookId>");
    assert!(references::api_reference("nothing", root).is_none());
}

fn validate_common(path: &str, doc: &Value) {
    if let Err(errors) = schemas::validate(path, doc) {
        panic!("not a valid {path}: {errors:?}\n{doc:#}");
    }
}

#[test]
fn schemas_are_served_with_the_root_url() {
    let req = super::ApiRequest { method: "GET".into(), path: "/schemas/hooks/v1/create-hook-request.json".into(), headers: vec![("host".into(), "h.example:8080".into())], body: vec![] };
    let resp = references::serve(&req, "/schemas/hooks/v1/create-hook-request.json", None).unwrap();
    let schema = resp.body_json();
    assert_eq!(schema["$id"], "http://h.example:8080/schemas/hooks/v1/create-hook-request.json#");
    // Upstream's relative `$ref`s resolve against that `$id`.
    assert_eq!(schema["properties"]["bindings"]["$ref"], "bindings.json#");
    let resp = references::serve(&req, "/schemas/hooks/v1/create-hook-request.json", Some("https://hooks.example.com/")).unwrap();
    assert_eq!(resp.body_json()["$schema"], "https://hooks.example.com/schemas/common/metaschema.json#");
    assert!(references::serve(&req, "/schemas/hooks/v1/nothing.json", None).is_none());
    // Behind a TLS-terminating proxy, and through Spin (no `Host` given to the guest).
    let mut proxied = req.clone();
    proxied.headers.push(("x-forwarded-proto".into(), "https".into()));
    assert_eq!(references::root_url(&proxied, None), "https://h.example:8080");
    let spin = super::ApiRequest { headers: vec![("spin-full-url".into(), "http://127.0.0.1:3000/references/manifest.json".into())], ..req.clone() };
    assert_eq!(references::root_url(&spin, None), "http://127.0.0.1:3000");
    let head = super::ApiRequest { method: "HEAD".into(), ..req.clone() };
    let resp = references::serve(&head, "/references/manifest.json", None).unwrap();
    assert_eq!((resp.status, resp.body.len()), (200, 0));
    assert!(references::serve(&req, "/references/nothing/v1/api.json", None).is_none());
}

/// The README's API tables, generated from the table: `TASKHOOKS_BLESS=1 cargo test`
/// rewrites them; otherwise a difference fails.
#[test]
fn readme_api_tables_are_the_endpoint_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut rest = readme.as_str();
    let mut found = 0;
    while let Some(start) = rest.find("<!-- api-table: ") {
        let header_end = start + rest[start..].find("-->").unwrap() + 3;
        let service = rest[start + 16..header_end - 3].trim();
        let end = header_end + rest[header_end..].find("<!-- /api-table -->").expect("an api-table ends");
        out.push_str(&rest[..header_end]);
        out.push('\n');
        out.push_str(&api_table(service));
        rest = &rest[end..];
        found += 1;
    }
    out.push_str(rest);
    assert_eq!(found, SERVICES.len(), "the README has a table per service");
    if std::env::var_os("TASKHOOKS_BLESS").is_some() {
        std::fs::write(path, &out).unwrap();
    } else {
        assert!(out == readme, "README.md's API tables differ from the endpoint table: run `TASKHOOKS_BLESS=1 cargo test -p taskhooks-shared readme_api_tables`");
    }
}

fn api_table(service: &str) -> String {
    let mut t = String::from("| method | route | scopes | what |\n| --- | --- | --- | --- |\n");
    for e in ENDPOINTS.iter().filter(|e| e.service == service && e.listed) {
        let scopes = match e.access {
            Access::Public => "none".to_string(),
            Access::Authenticated => "any client".to_string(),
            Access::GithubSignature => "`X-Hub-Signature-256`".to_string(),
            Access::Scopes(template) => scope_text(&serde_json::from_str(template).unwrap()),
        };
        let query = if e.query.is_empty() { String::new() } else { format!("?{}", e.query.join("&")) };
        t.push_str(&format!("| `{}` | `{} {}{query}` | {scopes} | {} |\n", e.name, e.method, e.route, e.description.replace('|', "\\|")));
    }
    t
}

fn scope_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        Value::Object(o) if o.contains_key("AllOf") => o["AllOf"].as_array().unwrap().iter().map(scope_text).collect::<Vec<_>>().join(" and "),
        Value::Object(o) if o.contains_key("AnyOf") => o["AnyOf"].as_array().unwrap().iter().map(scope_text).collect::<Vec<_>>().join(" or "),
        other => format!("`{other}`"),
    }
}
