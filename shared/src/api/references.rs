//! How Taskcluster tools discover a service: `GET <rootUrl>/references/manifest.json`
//! (`manifest-v3`), an API reference per service (`api-reference-v0`) generated from the
//! endpoint table, and `GET <rootUrl>/schemas/...`, each with the deployment's rootUrl
//! in it, as upstream's references service serves them. The official clients build their
//! methods from these references.

use super::endpoints::{Access, Endpoint, Input, ENDPOINTS, SERVICES};
use super::{schemas, ApiRequest, ApiResponse};
use serde_json::{json, Value};

/// The reference of one service (`hooks`, `auth`, ...), with `$schema` under `root`.
pub(crate) fn api_reference(service: &str, root: &str) -> Option<Value> {
    let (_, title) = SERVICES.iter().find(|(s, _)| *s == service)?;
    let entries: Vec<Value> = ENDPOINTS.iter().filter(|e| e.service == service && e.listed).map(entry).collect();
    Some(json!({
        "$schema": format!("{root}/schemas/common/api-reference-v0.json#"),
        "apiVersion": "v1",
        "serviceName": service,
        "title": title,
        "description": format!("{title}, served by taskhooks. Generated from its endpoint table."),
        "entries": entries,
    }))
}

fn entry(e: &Endpoint) -> Value {
    let mut v = json!({
        "type": "function",
        "method": e.method.to_ascii_lowercase(),
        "route": e.route,
        "args": e.args().collect::<Vec<_>>(),
        "query": e.query,
        "name": e.name,
        "stability": e.stability.as_str(),
        "title": e.title,
        "description": e.description,
        "category": e.category,
    });
    if let Access::Scopes(template) = e.access {
        v["scopes"] = serde_json::from_str(template).expect("endpoint scope templates are JSON");
    }
    if let Input::Json(schema) = e.input {
        v["input"] = json!(schema);
    }
    if let Some(schema) = e.output {
        v["output"] = json!(schema);
    }
    v
}

pub(crate) fn manifest(root: &str) -> Value {
    json!({
        "$schema": format!("{root}/schemas/common/manifest-v3.json#"),
        "references": SERVICES.iter().map(|(s, _)| format!("{root}/references/{s}/v1/api.json")).collect::<Vec<_>>(),
    })
}

/// The rootUrl the client used: `public_url` when configured (a deployment should set
/// it: otherwise the documents name whatever `Host` a request sends), else the request's
/// authority (`Host`, or Spin's `spin-full-url`) with the scheme a TLS-terminating proxy
/// reports (`X-Forwarded-Proto`), as Hawk's signed host and port are read.
pub(crate) fn root_url(req: &ApiRequest, public_url: Option<&str>) -> String {
    if let Some(url) = public_url.filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_string();
    }
    let full_url = req.spin_full_url();
    let scheme = req.header("x-forwarded-proto").map(str::trim).or(full_url.map(|(s, _)| s)).unwrap_or("http").to_ascii_lowercase();
    let authority = req.header("host").or(full_url.map(|(_, authority)| authority)).unwrap_or("localhost");
    format!("{scheme}://{authority}")
}

/// The document at `path`, if it is a reference or a schema.
pub(crate) fn serve(req: &ApiRequest, path: &str, public_url: Option<&str>) -> Option<ApiResponse> {
    if req.method != "GET" && req.method != "HEAD" {
        return None;
    }
    let doc = if let Some(rest) = path.strip_prefix("/references/") {
        let root = root_url(req, public_url);
        match rest {
            "manifest.json" => manifest(&root),
            _ => {
                let service = rest.strip_suffix("/v1/api.json")?;
                api_reference(service, &root)?
            }
        }
    } else {
        let file = schemas::file(path.strip_prefix("/schemas/")?)?;
        let mut schema: Value = serde_json::from_str(file).expect("embedded schemas are JSON (a unit test checks)");
        schemas::absolute(&mut schema, &root_url(req, public_url));
        schema
    };
    let mut resp = ApiResponse::json(200, &doc);
    if req.method == "HEAD" {
        resp.body.clear();
    }
    Some(resp)
}
