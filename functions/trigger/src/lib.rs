//! The HTTP component: the Hooks API (and the embedded Queue API) under `/api/...`.
//! All request handling lives in `taskhooks_shared::api`; this crate only converts between
//! Spin's HTTP types and the shared plain-data request and response.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use taskhooks_shared::api::{ApiRequest, ApiResponse, Service};
use taskhooks_shared::platform::SystemClock;
use taskhooks_spin_adapter::SpinKeyValue;

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
    let resp = match SpinKeyValue::open_default() {
        Ok(kv) => Service { kv: &kv, clock: &SystemClock }.handle(&api_req),
        Err(e) => {
            eprintln!("trigger: {e}");
            ApiResponse::json(500, &serde_json::json!({"code": "InternalServerError", "message": "key-value store unavailable"}))
        }
    };
    let mut builder = Response::builder();
    builder.status(resp.status);
    for (k, v) in resp.headers {
        builder.header(k, v);
    }
    builder.body(resp.body).build()
}
