//! The HTTP API as plain data in, plain data out: the trigger component converts Spin's
//! request into an `ApiRequest`, calls `Service::handle`, and sends back the
//! `ApiResponse`. Keeping it here lets the whole API run in native unit tests.
//!
//! Every request goes through the pipeline of SPEC §2.2, in its order (which decides the
//! error a bad request gets): route, body, authentication and scopes, URL parameters,
//! query string, content type and input schema, handler.

mod audit_api;
mod auth_api;
mod cron_projects;
mod endpoints;
mod extensions;
mod github;
mod hooks;
pub(crate) use hooks::next_scheduled_date;
mod queue_api;
mod references;
mod schemas;
mod ui;

use crate::auth::{authenticate, signed_host_and_port, AuthFailed, Caller, Client, SignedRequest};
use crate::error::{ApiError, ErrorCode};
use crate::platform::{Clock, KeyValue};
use crate::render::iso_time;
use crate::scopes::{Role, Roles, ScopeExpr, ScopeSet};
use crate::sealed::SealingKey;
use crate::store::{StorageError, Store};
use endpoints::{Access, Endpoint, Input, ENDPOINTS};
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The largest body the API methods take (a GitHub delivery may be larger, `github`).
const MAX_BODY: usize = 10 * 1024 * 1024;

/// The most of a request's body a component reads: the largest any method takes (a GitHub
/// delivery's 25 MB), and one byte more, so the method can say the body is too large.
pub const MAX_READ_BODY: usize = github::MAX_GITHUB_BODY + 1;

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    /// Raw path and query, still percent-encoded (a hookId's `/` arrives as `%2F`).
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// The headers as a request carries them (`wasi:http` fields): names in lower case,
    /// a repeated header's last value winning (as `spin_sdk::http::Request` keeps them),
    /// values as text.
    pub fn headers_from(entries: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            let (name, value) = (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned());
            match headers.iter_mut().find(|(n, _)| *n == name) {
                Some(seen) => seen.1 = value,
                None => headers.push((name, value)),
            }
        }
        headers
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The scheme and authority of the URL the client used, from `spin-full-url`: WASI
    /// HTTP withholds the `Host` header from guests, and Spin passes that URL instead.
    pub(crate) fn spin_full_url(&self) -> Option<(&str, &str)> {
        let (scheme, rest) = self.header("spin-full-url")?.split_once("://")?;
        Some((scheme, rest.split('/').next().unwrap_or_default()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        let mut headers = vec![("content-type".to_string(), "application/json; charset=utf-8".to_string())];
        headers.extend(common_headers());
        Self { status, headers, body: serde_json::to_vec(body).expect("JSON values serialise") }
    }

    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// SPEC §2.3: no caching, and CORS open to any origin (Hawk, not cookies, authenticates).
fn common_headers() -> Vec<(String, String)> {
    [
        ("cache-control", "no-store no-cache must-revalidate"),
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "OPTIONS,GET,HEAD,POST,PUT,DELETE,TRACE,CONNECT"),
        ("access-control-allow-headers", "X-Requested-With,Content-Type,Authorization,Accept,Origin,Cache-Control"),
        ("access-control-max-age", "900"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The deployment's settings, from Spin variables.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub root_client_id: String,
    /// `None` when no root client is configured: then only stored clients exist.
    pub root_access_token: Option<String>,
    pub sealing_key: SealingKey,
    /// What runs: `/__version__`, and `ping`'s uptime (since this build first ran).
    pub build: crate::health::Build,
    /// A remote Taskcluster deployment to create tasks in; the embedded queue when `None`.
    pub taskcluster: Option<crate::remote_queue::TaskclusterCredentials>,
    /// Where failed fires of hooks with `emailOnError` are reported.
    pub failure_channel: Option<crate::notify::FailureChannel>,
    /// RabbitMQ's management API: hook queues are synced on create/update/remove,
    /// hook-changed events published, and `POST /api/taskhooks/v1/relay` runs the relay.
    pub pulse: Option<crate::pulse::PulseConfig>,
    /// The shared secret of GitHub webhooks (`X-Hub-Signature-256`); `None` turns
    /// `/api/github/v1/github` off.
    pub github_webhook_secret: Option<String>,
    /// Where cron projects' repositories may be (`repository_hosts`, `github_api_url`).
    pub repository_hosts: crate::repository::RepositoryHosts,
    /// Where this deployment is reached (`public_url`, e.g. `https://hooks.example.com`).
    pub public_url: Option<String>,
    /// `GET /metrics` with `Authorization: Bearer <this>` (`metrics_token`); without it,
    /// only Hawk with `hooks:metrics`.
    pub metrics_token: Option<String>,
}

impl ServiceConfig {
    /// The `taskcluster_root_url` cron jobs' `.taskcluster.yml` is rendered with: the
    /// deployment their tasks go to, which is this one with the embedded queue.
    pub fn tasks_root_url(&self) -> &str {
        match (&self.taskcluster, &self.public_url) {
            (Some(tc), _) => &tc.root_url,
            (None, Some(url)) => url,
            (None, None) => "",
        }
    }
}

pub const DEFAULT_ROOT_CLIENT_ID: &str = "static/taskhooks/root";

/// What a request's log line says besides its answer: the method that answered, and who
/// called (once authenticated).
struct Seen {
    name: std::cell::Cell<&'static str>,
    /// Counted in the request metrics: API methods but probes; not pages (the UI, the
    /// references, the scrape itself), which would write on every poll.
    metered: std::cell::Cell<bool>,
    client_id: std::cell::RefCell<Option<String>>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { name: std::cell::Cell::new("notFound"), metered: std::cell::Cell::new(false), client_id: std::cell::RefCell::new(None) }
    }
}

pub struct Service<'a> {
    kv: &'a dyn KeyValue,
    clock: &'a dyn Clock,
    config: &'a ServiceConfig,
    /// The roles document, read at most once per request (authentication and the fire's
    /// scope check both need it).
    roles: std::cell::OnceCell<Roles>,
    /// Outbound HTTP, for a remote Taskcluster deployment.
    http: Option<&'a dyn crate::remote_queue::HttpClient>,
    /// The metrics of the fire this request made, written with the request's own count.
    fired: std::cell::RefCell<Option<crate::metrics::FireMetric>>,
}

/// A matched request with its decoded URL parameters, query and parsed body.
pub(crate) struct Call<'r> {
    pub params: BTreeMap<&'static str, String>,
    pub query: BTreeMap<String, String>,
    pub payload: Value,
    pub caller: Caller,
    /// The request as it came (a GitHub delivery's handler reads its raw body).
    pub request: &'r ApiRequest,
}

impl Call<'_> {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or_default()
    }
}

impl From<StorageError> for ApiError {
    /// The store failing is a dependency's outage (503, which clients retry); a record
    /// that does not decode is the service's fault (500).
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Store(e) => ApiError::new(ErrorCode::ServiceUnavailable, format!("the key-value store failed: {e}")),
            other => ApiError::new(ErrorCode::InternalServerError, other.to_string()),
        }
    }
}

fn split_query(path: &str) -> (&str, &str) {
    path.split_once('?').unwrap_or((path, ""))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// Matches on raw path segments, then decodes each parameter, so `%2F` stays inside one.
fn match_endpoint(method: &str, path: &str) -> Option<(&'static Endpoint, BTreeMap<&'static str, String>)> {
    // HEAD is GET without the body, for every GET route (as upstream's Express answers it).
    let method = if method == "HEAD" { "GET" } else { method };
    let rest = path.strip_prefix("/api/")?;
    let (service, rest) = rest.split_once('/')?;
    let route = rest.strip_prefix("v1")?;
    let segments: Vec<&str> = route.split('/').collect();
    ENDPOINTS.iter().find_map(|ep| {
        if ep.method != method || ep.service != service {
            return None;
        }
        let pattern: Vec<&str> = ep.route.split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (p, s) in pattern.iter().zip(&segments) {
            match p.strip_prefix('<').and_then(|p| p.strip_suffix('>')) {
                Some(name) if !s.is_empty() => {
                    params.insert(name, percent_decode_str(s).decode_utf8_lossy().into_owned());
                }
                Some(_) => return None,
                None if p == s => {}
                None => return None,
            }
        }
        Some((ep, params))
    })
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::new(ErrorCode::MalformedPayload, "request body is larger than 10 MB"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
        Ok(_) => Err(ApiError::new(ErrorCode::MalformedPayload, "request body must be a JSON object or array")),
        Err(e) => Err(ApiError::new(ErrorCode::MalformedPayload, format!("request body is not valid JSON: {e}"))),
    }
}

/// The 403 message: what is missing, and the whole expression, as Taskcluster words it.
pub(crate) fn insufficient_scopes(caller: &Caller, required: &ScopeExpr) -> Option<ApiError> {
    let missing = required.unsatisfied(&ScopeSet::new(&caller.scopes))?;
    let who = caller.client_id.as_deref().map(|c| format!("Client ID {c}")).unwrap_or_else(|| "An anonymous request".into());
    Some(ApiError::new(ErrorCode::InsufficientScopes, format!("{who} {}", scope_report(&missing, required))))
}

pub(crate) fn scope_report(missing: &ScopeExpr, required: &ScopeExpr) -> String {
    format!(
        "does not have sufficient scopes and is missing the following scopes:\n\n```\n{}\n```\n\nThis request requires the client to satisfy the following scope expression:\n\n```\n{}\n```",
        pretty(missing),
        pretty(required)
    )
}

/// A single scope bare, an expression as indented JSON.
fn pretty(e: &ScopeExpr) -> String {
    match e {
        ScopeExpr::Scope(s) => s.clone(),
        e => e.to_string(),
    }
}

impl<'a> Service<'a> {
    pub fn new(kv: &'a dyn KeyValue, clock: &'a dyn Clock, config: &'a ServiceConfig) -> Self {
        Service { kv, clock, config, roles: std::cell::OnceCell::new(), http: None, fired: std::cell::RefCell::new(None) }
    }

    pub fn with_http(mut self, http: &'a dyn crate::remote_queue::HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    pub(crate) fn store(&self) -> Store<'_> {
        Store { kv: self.kv, key: &self.config.sealing_key }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub(crate) fn roles(&self) -> Result<&Roles, ApiError> {
        if let Some(roles) = self.roles.get() {
            return Ok(roles);
        }
        let roles = self.store().roles()?;
        let roles = Roles::new(roles.into_iter().map(|r| Role { role_id: r.role_id, scopes: r.scopes }).collect());
        Ok(self.roles.get_or_init(|| roles))
    }


    /// Answers `req`, and logs it (`monitor.apiMethod`, `crate::log`).
    pub fn handle(&self, req: &ApiRequest) -> ApiResponse {
        let started = std::time::Instant::now();
        let seen = Seen::default();
        let mut resp = self.answer(req, &seen);
        if req.method == "HEAD" {
            resp.body.clear();
        }
        let (path, _) = split_query(&req.path);
        let resource = redacted_path(path);
        let client_id = seen.client_id.borrow();
        let fired = self.fired.take();
        if seen.metered.get() {
            crate::metrics::request(self.kv, seen.name.get(), resp.status, fired.as_ref());
        } else if let Some(fired) = &fired {
            crate::metrics::fire(self.kv, fired);
        }
        crate::log::emit(&crate::log::api_method(&crate::log::Request {
            name: seen.name.get(),
            method: &req.method,
            resource: &resource,
            status: resp.status,
            client_id: client_id.as_deref(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        }));
        resp
    }

    fn answer(&self, req: &ApiRequest, seen: &Seen) -> ApiResponse {
        let time = iso_time(self.clock.now());
        if req.method == "OPTIONS" {
            seen.name.set("preflight");
            return ApiResponse { status: 200, headers: common_headers(), body: vec![] };
        }
        let (path, raw_query) = split_query(&req.path);
        if path == "/metrics" && req.method == "GET" {
            seen.name.set("metrics");
            return self.metrics(req, seen, &time);
        }
        if let Some(doc) = references::serve(req, path, self.config.public_url.as_deref()) {
            seen.name.set("references");
            return doc;
        }
        if let Some(file) = ui::asset(&req.method, path) {
            seen.name.set("ui");
            return file;
        }
        let Some((endpoint, params)) = match_endpoint(&req.method, path) else {
            let err = ApiError::new(ErrorCode::ResourceNotFound, format!("No such API endpoint: {} {}", req.method, redacted_path(path)));
            return ApiResponse::json(404, &err.body("", json!({}), json!({}), &time));
        };
        let payload = match endpoint.input {
            Input::Raw => Ok(Value::Null),
            _ => parse_body(&req.body),
        };
        let info_payload = payload.as_ref().ok().filter(|v| !v.is_null()).cloned().unwrap_or(json!({}));
        seen.name.set(endpoint.name);
        seen.metered.set(endpoint.metered);
        let result = payload.and_then(|payload| {
            let caller = self.authorize(endpoint, &params, req, seen)?;
            let mut call = Call { params, query: BTreeMap::new(), payload, caller, request: req };
            endpoint.check_params(&call.params)?;
            call.query = endpoint.check_query(raw_query)?;
            if let Input::Json(schema) = endpoint.input {
                let declared_json = req.header("content-type").is_some_and(|ct| ct.to_ascii_lowercase().contains("application/json"));
                if !declared_json || (req.body.is_empty() && req.header("content-length").is_none()) {
                    return Err(ApiError::new(ErrorCode::MalformedPayload, "this method takes a JSON body: send it with `Content-Type: application/json`"));
                }
                schemas::validate_input(endpoint.service, schema, &call.payload)?;
            }
            (endpoint.handler)(self, &call)
        });
        match result {
            Ok(body) => ApiResponse::json(200, &body),
            Err(err) => {
                // Errors echo the URL parameters (matched again: only errors pay for it),
                // except a trigger token: secrets appear only in the responses meant to
                // return them.
                let mut params_info = match_endpoint(&req.method, path).map(|(_, p)| json!(p)).unwrap_or(json!({}));
                if let Some(token) = params_info.get_mut("token") {
                    *token = json!("<redacted>");
                }
                let mut resp = ApiResponse::json(err.code.status(), &err.body(endpoint.name, params_info, info_payload, &time));
                if err.code == ErrorCode::AuthenticationFailed {
                    let scheme = if endpoint.access == Access::GithubSignature { "X-Hub-Signature-256" } else { "hawk" };
                    resp.headers.push(("www-authenticate".into(), scheme.into()));
                }
                resp
            }
        }
    }

    /// `GET /metrics`: the Prometheus text, for a bearer of `metrics_token` or a Hawk
    /// caller with `hooks:metrics`; errors in the Taskcluster format.
    fn metrics(&self, req: &ApiRequest, seen: &Seen, time: &str) -> ApiResponse {
        let bearer = req.header("authorization").and_then(|a| a.strip_prefix("Bearer "));
        let allowed = match (bearer, &self.config.metrics_token) {
            (Some(given), Some(token)) => {
                if crate::ids::secrets_equal(given.as_bytes(), token.as_bytes()) {
                    Ok(())
                } else {
                    Err(ApiError::new(ErrorCode::AuthenticationFailed, "the bearer token is not this deployment's metrics_token"))
                }
            }
            (Some(_), None) => Err(ApiError::new(ErrorCode::AuthenticationFailed, "no metrics_token is configured: use Hawk credentials with hooks:metrics")),
            (None, _) => self.caller(req).and_then(|caller| {
                seen.client_id.replace(caller.client_id.clone());
                insufficient_scopes(&caller, &ScopeExpr::Scope("hooks:metrics".into())).map_or(Ok(()), Err)
            }),
        };
        let answer = allowed.and_then(|()| crate::metrics::exposition(self.kv).map_err(ApiError::from));
        match answer {
            Ok(text) => {
                let mut headers = vec![("content-type".to_string(), "text/plain; version=0.0.4; charset=utf-8".to_string())];
                headers.extend(common_headers());
                ApiResponse { status: 200, headers, body: text.into_bytes() }
            }
            Err(err) => ApiResponse::json(err.code.status(), &err.body("metrics", json!({}), json!({}), time)),
        }
    }

    /// Authenticates when the endpoint needs a caller, and checks its scope template
    /// (filled from the decoded URL parameters) before anything else looks at the
    /// request, so a caller without scopes learns nothing about ids or existence.
    fn authorize(&self, endpoint: &Endpoint, params: &BTreeMap<&'static str, String>, req: &ApiRequest, seen: &Seen) -> Result<Caller, ApiError> {
        if matches!(endpoint.access, Access::Public | Access::GithubSignature) {
            return Ok(Caller { client_id: None, scopes: vec![] });
        }
        let caller = self.caller(req)?;
        seen.client_id.replace(caller.client_id.clone());
        if let Access::Scopes(template) = endpoint.access {
            let filled = ScopeExpr::from_json(&serde_json::from_str(template).expect("endpoint scope templates are JSON"))
                .and_then(|e| e.fill(&params.iter().map(|(k, v)| (*k, v.as_str())).collect()))
                .expect("endpoint scope templates are valid and use only their URL parameters");
            if let Some(err) = insufficient_scopes(&caller, &filled) {
                return Err(err);
            }
        }
        Ok(caller)
    }

    fn caller(&self, req: &ApiRequest) -> Result<Caller, ApiError> {
        let full_url = req.spin_full_url();
        let scheme = full_url.map(|(s, _)| s).unwrap_or("http");
        let with_host;
        let headers = match (req.header("host"), full_url) {
            (None, Some((_, authority))) => {
                with_host = [req.headers.clone(), vec![("host".to_string(), authority.to_string())]].concat();
                &with_host
            }
            _ => &req.headers,
        };
        let (host, port) = signed_host_and_port(headers, scheme).unwrap_or_default();
        if let (Some(tc), Some(http)) = (&self.config.taskcluster, self.http) {
            return crate::remote_auth::authenticate_remotely(http, tc, req, &host, port);
        }
        let roles = self.roles()?;
        let signed = SignedRequest {
            method: &req.method,
            resource: &req.path,
            host: &host,
            port,
            authorization: req.header("authorization"),
            content_type: req.header("content-type").unwrap_or_default(),
            body: &req.body,
        };
        let storage_failure = RefCell::new(None);
        let now = self.now_ms();
        let lookup = |id: &str| -> Option<Client> {
            if id == self.config.root_client_id {
                return self.config.root_access_token.as_ref().map(|token| Client {
                    client_id: id.to_string(),
                    access_token: token.clone(),
                    scopes: vec!["*".into()],
                });
            }
            match self.store().client(id) {
                Ok(Some(c)) if !c.disabled && crate::render::parse_time_ms(&c.expires).is_some_and(|e| e > now) => {
                    Some(Client { client_id: c.client_id, access_token: c.access_token, scopes: c.scopes })
                }
                Ok(_) => None,
                Err(e) => {
                    *storage_failure.borrow_mut() = Some(e);
                    None
                }
            }
        };
        let result = authenticate(&signed, &lookup, roles, now);
        if let Some(e) = storage_failure.into_inner() {
            return Err(e.into());
        }
        result.map_err(|AuthFailed(why)| ApiError::new(ErrorCode::AuthenticationFailed, why))
    }

    fn ping(&self) -> Result<Value, ApiError> {
        Ok(json!({"alive": true, "uptime": crate::health::uptime(self.kv, &self.config.build, self.clock.now())}))
    }

    fn version(&self) -> Result<Value, ApiError> {
        let b = &self.config.build;
        Ok(json!({"source": "taskhooks", "version": b.version, "commit": b.commit, "build": b.time}))
    }

    /// Healthy only if every configured dependency answers; 503 names those that did not.
    fn heartbeat(&self) -> Result<Value, ApiError> {
        let deps = crate::health::Dependencies {
            kv: self.kv,
            http: self.http,
            queue: self.config.taskcluster.as_ref().map(|t| t.root_url.as_str()),
            pulse: self.config.pulse.as_ref(),
        };
        match crate::health::heartbeat(&deps) {
            // Upstream's answer when healthy, exactly.
            (true, _) => Ok(json!({})),
            (false, checks) => {
                let failed: Vec<String> = checks
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| *v != "ok")
                    .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                    .collect();
                Err(ApiError::new(ErrorCode::ServiceUnavailable, format!("unhealthy:\n{}", failed.join("\n"))))
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod table_tests;

/// A path as an error may echo it: what follows `/trigger/` (a trigger token, on a
/// request that matched no route, such as a GET or a trailing `/`) is left out.
fn redacted_path(path: &str) -> String {
    match path.find("/trigger/") {
        Some(at) => format!("{}/trigger/<redacted>", &path[..at]),
        None => path.to_string(),
    }
}
