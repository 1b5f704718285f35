//! The HTTP component: the Hooks API, the Auth API subset, the local queue's reads and
//! the extensions, all under `/api/...`. All request handling lives in
//! `taskhooks_shared::api`; this crate converts between Spin's HTTP types and the shared
//! plain-data request and response, and reads the deployment's settings from variables.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use taskhooks_shared::api::{ApiRequest, ApiResponse, Service};
use taskhooks_shared::platform::SystemClock;
use taskhooks_spin_adapter::{ensure_layout, service_config, SpinHttp, SpinKeyValue};

fn server_error(message: &str) -> ApiResponse {
    eprintln!("trigger: {message}");
    ApiResponse::json(500, &serde_json::json!({"code": "InternalServerError", "message": message, "requestInfo": {}}))
}

/// The store is not ready for this version (an older layout to upgrade, or a set-up in
/// progress): 503, which Taskcluster clients retry.
fn unavailable(message: &str) -> ApiResponse {
    eprintln!("trigger: {message}");
    ApiResponse::json(503, &serde_json::json!({"code": "ServiceUnavailable", "message": message, "requestInfo": {}}))
}

#[http_component]
fn handle(req: Request) -> Response {
    let api_req = ApiRequest {
        method: req.method().to_string(),
        path: req.path_and_query().unwrap_or(req.path()).to_string(),
        headers: req
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: req.into_body(),
    };
    // `ping` and `__lbheartbeat__` say the service runs, whatever its store does.
    let needs_no_store = api_req.method == "GET" && (api_req.path.ends_with("/v1/ping") || api_req.path.ends_with("/__lbheartbeat__"));
    let resp = match (SpinKeyValue::open_default(), service_config(env!("CARGO_PKG_VERSION"))) {
        (Ok(kv), Ok(config)) => match ensure_layout(&kv) {
            Ok(()) => Service::new(&kv, &SystemClock, &config).with_http(&SpinHttp).handle(&api_req),
            Err(_) if needs_no_store => Service::new(&kv, &SystemClock, &config).handle(&api_req),
            Err(e) => unavailable(&format!("the key-value store is not ready: {e}")),
        },
        (Err(e), _) => server_error(&format!("key-value store unavailable: {e}")),
        (_, Err(e)) => server_error(&format!("misconfigured deployment: {e}")),
    };
    let mut builder = Response::builder();
    builder.status(resp.status);
    for (k, v) in resp.headers {
        builder.header(k, v);
    }
    builder.body(resp.body).build()
}
