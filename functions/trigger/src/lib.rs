//! The HTTP component: the Hooks API, the Auth API subset, the local queue's reads and
//! the extensions, all under `/api/...`. All request handling lives in
//! `taskhooks_shared::api`; this crate converts between Spin's HTTP types and the shared
//! plain-data request and response, and reads the deployment's settings from variables.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use taskhooks_shared::api::{ApiRequest, ApiResponse, Service, ServiceConfig, DEFAULT_ROOT_CLIENT_ID};
use taskhooks_shared::platform::SystemClock;
use taskhooks_shared::sealed::SealingKey;
use taskhooks_shared::notify::FailureChannel;
use taskhooks_shared::remote_queue::TaskclusterCredentials;
use taskhooks_spin_adapter::{variable, SpinHttp, SpinKeyValue};

fn config() -> Result<ServiceConfig, String> {
    let key = variable("secrets_key").ok_or("the `secrets_key` variable is not set")?;
    let sealing_key = SealingKey::from_base64(&key).map_err(|e| format!("`secrets_key`: {e}"))?;
    let taskcluster = match (variable("taskcluster_root_url"), variable("taskcluster_client_id"), variable("taskcluster_access_token")) {
        (None, _, _) => None,
        (Some(root_url), Some(client_id), Some(access_token)) => Some(TaskclusterCredentials { root_url, client_id, access_token }),
        (Some(_), _, _) => return Err("`taskcluster_root_url` is set, so `taskcluster_client_id` and `taskcluster_access_token` must be too".into()),
    };
    let failure_channel = match (&taskcluster, variable("error_webhook_url")) {
        (_, Some(url)) => Some(FailureChannel::Webhook(url)),
        (Some(c), None) => Some(FailureChannel::TaskclusterNotify(c.clone())),
        (None, None) => None,
    };
    Ok(ServiceConfig {
        root_client_id: variable("root_client_id").unwrap_or_else(|| DEFAULT_ROOT_CLIENT_ID.to_string()),
        root_access_token: variable("root_access_token"),
        sealing_key,
        version: env!("CARGO_PKG_VERSION").to_string(),
        taskcluster,
        failure_channel,
    })
}

fn server_error(message: &str) -> ApiResponse {
    eprintln!("trigger: {message}");
    ApiResponse::json(500, &serde_json::json!({"code": "InternalServerError", "message": message, "requestInfo": {}}))
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
    let resp = match (SpinKeyValue::open_default(), config()) {
        (Ok(kv), Ok(config)) => Service::new(&kv, &SystemClock, &config).with_http(&SpinHttp).handle(&api_req),
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
