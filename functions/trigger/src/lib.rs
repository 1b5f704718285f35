//! The HTTP component: the Hooks API, the Auth API subset, the local queue's reads and
//! the extensions, all under `/api/...`. All request handling lives in
//! `taskhooks_shared::api`; this crate converts between Spin's HTTP types and the shared
//! plain-data request and response, and reads the deployment's settings from variables.

use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use taskhooks_shared::api::{ApiRequest, ApiResponse, Service, MAX_READ_BODY};
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

/// The request read straight from `wasi:http` into the shared plain-data request, rather
/// than through `spin_sdk::http::Request`, which builds and parses a URI and a hash map
/// of headers that would then be copied again (5% of a `ping`'s CPU).
#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let method = req.method().to_string();
    let path = req.path_with_query().unwrap_or_default();
    let headers = ApiRequest::headers_from(req.headers().entries());
    let resp = match read_body(req).await {
        Ok(body) => answer(ApiRequest { method, path, headers, body }),
        Err(e) => server_error(&format!("the request could not be read: {e}")),
    };
    send(resp, out);
}

/// The body, at most `MAX_READ_BODY` bytes of it (more than any method takes, which it
/// then refuses): a larger body is not read into memory.
async fn read_body(req: IncomingRequest) -> Result<Vec<u8>, String> {
    use futures::TryStreamExt;
    let mut stream = req.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| e.to_debug_string())? {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_READ_BODY - body.len())]);
        if body.len() == MAX_READ_BODY {
            break;
        }
    }
    Ok(body)
}

fn answer(api_req: ApiRequest) -> ApiResponse {
    // `ping` and `__lbheartbeat__` say the service runs, whatever its store does.
    let needs_no_store = api_req.method == "GET" && (api_req.path.ends_with("/v1/ping") || api_req.path.ends_with("/__lbheartbeat__"));
    match (SpinKeyValue::open_default(), service_config(env!("CARGO_PKG_VERSION"))) {
        (Ok(kv), Ok(config)) => match ensure_layout(&kv) {
            Ok(()) => Service::new(&kv, &SystemClock, &config).with_http(&SpinHttp).handle(&api_req),
            Err(_) if needs_no_store => Service::new(&kv, &SystemClock, &config).handle(&api_req),
            Err(e) => unavailable(&format!("the key-value store is not ready: {e}")),
        },
        (Err(e), _) => server_error(&format!("key-value store unavailable: {e}")),
        (_, Err(e)) => server_error(&format!("misconfigured deployment: {e}")),
    }
}

/// Sends the answer with its `content-length`, the whole body written and finished before
/// the response is handed over. Spin's HTTP server (3.6) does not set `TCP_NODELAY` and
/// writes the headers as soon as the response is set: a body written after it leaves in a
/// second small segment, which Nagle's algorithm holds until the client's delayed ACK,
/// ~40 ms, on every request of a keep-alive connection. Ready before `set`, hyper writes
/// headers and body together. A body larger than the stream takes at once (it is a
/// channel of one chunk until the server reads it) is streamed after `set` instead.
fn send(resp: ApiResponse, out: ResponseOutparam) {
    let mut headers: Vec<(String, Vec<u8>)> = resp.headers.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    headers.push(("content-length".into(), resp.body.len().to_string().into_bytes()));
    let response = OutgoingResponse::new(Fields::from_list(&headers).unwrap_or_else(|_| Fields::new()));
    let _ = response.set_status_code(resp.status);
    let Ok(body) = response.body() else {
        return out.set(response);
    };
    let Ok(stream) = body.write() else {
        return out.set(response);
    };
    let fits = resp.body.is_empty() || stream.check_write().is_ok_and(|n| n as usize >= resp.body.len());
    if fits {
        if !resp.body.is_empty() && stream.write(&resp.body).is_err() {
            eprintln!("trigger: the response body could not be written");
        }
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
        return out.set(response);
    }
    out.set(response);
    let mut rest = resp.body.as_slice();
    while !rest.is_empty() {
        stream.subscribe().block();
        let Ok(n) = stream.check_write() else {
            // The client went away.
            return;
        };
        let (chunk, more) = rest.split_at((n as usize).min(rest.len()));
        if stream.write(chunk).is_err() {
            return;
        }
        rest = more;
    }
    let _ = stream.blocking_flush();
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}
