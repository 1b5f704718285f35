//! The HTTP trigger: a hyper server that matches each request to a component by Spin's
//! route rules, adds Spin's `spin-*` request headers, and runs the component's
//! `wasi:http/incoming-handler` in a fresh instance.

use crate::routes::Router;
use crate::runtime::App;
use anyhow::{anyhow, Result};
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::WasiHttpView;

type Body = UnsyncBoxBody<Bytes, anyhow::Error>;

pub struct HttpTrigger {
    app: Arc<App>,
    router: Router,
    handlers: HashMap<String, ProxyPre<crate::runtime::HostState>>,
}

impl HttpTrigger {
    pub fn new(app: Arc<App>, router: Router, component_ids: &[String]) -> Result<Self> {
        let mut handlers = HashMap::new();
        for id in component_ids {
            let pre = ProxyPre::new(app.component(id)?.pre.clone()).map_err(|e| {
                anyhow!("component `{id}` has an HTTP route but does not export wasi:http/incoming-handler: {e}")
            })?;
            handlers.insert(id.clone(), pre);
        }
        Ok(Self { app, router, handlers })
    }

    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        // `TASKHOOKS_TCP_NODELAY=off` leaves Nagle's algorithm on, as `spin up` (3.6) does,
        // to reproduce its sockets (docs/benchmarks.md, the keep-alive test).
        let nodelay = std::env::var("TASKHOOKS_TCP_NODELAY").map_or(true, |v| v != "off");
        loop {
            let (stream, client) = listener.accept().await?;
            if nodelay {
                let _ = stream.set_nodelay(true);
            }
            let this = self.clone();
            let local = stream.local_addr().ok();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, std::convert::Infallible>(this.handle(req, client, local).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    if !e.is_incomplete_message() {
                        eprintln!("taskhooks: connection from {client}: {e}");
                    }
                }
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>, client: SocketAddr, local: Option<SocketAddr>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let Some(m) = self.router.find(&path) else {
            return plain(StatusCode::NOT_FOUND, "Not Found");
        };
        let component = m.component.to_string();
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| local.map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_string());
        let path_and_query = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
        let full_url = format!("http://{host}{path_and_query}");
        let spin_headers = [
            ("spin-full-url", full_url.clone()),
            ("spin-path-info", m.path_info.clone()),
            ("spin-matched-route", m.matched_route.to_string()),
            ("spin-base-path", "/".to_string()),
            ("spin-raw-component-route", m.matched_route.to_string()),
            ("spin-component-route", m.component_route.clone()),
            ("spin-client-addr", client.to_string()),
        ];
        let (mut parts, body) = req.into_parts();
        parts.uri = match full_url.parse() {
            Ok(u) => u,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "Bad Request"),
        };
        for (name, value) in spin_headers {
            if let Ok(v) = value.parse() {
                parts.headers.insert(name, v);
            }
        }
        let req = Request::from_parts(parts, body);
        let method = req.method().clone();
        let record = crate::runtime::LimitRecord::default();
        let outcome = self.run(&component, req, &record).await;
        if let Some(exceeded) = *record.lock().unwrap_or_else(|e| e.into_inner()) {
            if outcome.is_err() {
                eprintln!("taskhooks: component `{component}` was stopped on {method} {}: {exceeded}", m.matched_route);
                return limit_error(exceeded);
            }
        }
        match outcome {
            Ok(resp) => resp,
            Err(e) => {
                // The route, not the path: a path can carry a secret (a trigger token).
                let route = &m.matched_route;
                eprintln!("taskhooks: component `{component}` failed on {method} {route}: {e:#}");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }

    async fn run(&self, component: &str, req: Request<Incoming>, record: &crate::runtime::LimitRecord) -> Result<Response<Body>> {
        let pre = self.handlers.get(component).ok_or_else(|| anyhow!("no handler"))?.clone();
        let limits = &self.app.limits;
        let mut store = self.app.component(component)?.new_store(&self.app.engine, limits, limits.request_time, record);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(|e| anyhow!(e))?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(|e| anyhow!(e))?;
        // The guest runs on this task until it sets the response head (no hand-over to
        // another worker thread for the usual answer), then in its own task, so it can
        // keep streaming the body while the connection sends it.
        let mut guest = Box::pin(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        });
        let mut receiver = receiver;
        let (head, finished) = tokio::select! {
            biased;
            head = &mut receiver => (head.ok(), None),
            ended = &mut guest => (receiver.try_recv().ok(), Some(ended)),
        };
        match (head, finished) {
            (Some(Ok(resp)), finished) => {
                // A guest still running streams the rest of its body from its own task.
                if finished.is_none() {
                    tokio::spawn(guest);
                }
                Ok(resp.map(|b| b.map_err(|e| anyhow!(e)).boxed_unsync()))
            }
            (Some(Err(code)), _) => Err(anyhow!("guest returned error code {code:?}")),
            (None, Some(Ok(()))) => Err(anyhow!("guest never set a response")),
            (None, Some(Err(e))) => Err(anyhow!(e)),
            // The outparam was dropped unset while the guest runs on: its end says why.
            (None, None) => Err(match guest.await {
                Ok(()) => anyhow!("guest never set a response"),
                Err(e) => anyhow!(e),
            }),
        }
    }
}

/// A request stopped by a limit answers in Taskcluster's error format, with a 4xx: the
/// same request would be stopped again, so clients must not retry it (they retry 5xx).
fn limit_error(exceeded: crate::runtime::LimitExceeded) -> Response<Body> {
    let flag = match exceeded {
        crate::runtime::LimitExceeded::Time(_) => "--max-request-time",
        crate::runtime::LimitExceeded::Memory(_) => "--max-instance-memory",
    };
    let body = serde_json::json!({
        "code": "RequestLimitExceeded",
        "message": format!("The request was stopped: {exceeded} (the host's `{flag}`). Nothing it had not finished was stored; a fire it made is in the hook's last fires as unfinished."),
        "requestInfo": {"time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)},
    });
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).map_err(|e| match e {}).boxed_unsync());
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().unwrap());
    resp
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(|e| match e {}).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, "text/plain".parse().unwrap());
    resp
}
