//! The platform traits of `taskhooks-shared` implemented over the Spin SDK, shared by the
//! three components.

use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
use taskhooks_shared::platform::{CasAttempt, KeyValue, StoreError};

/// The application's key-value store (`key_value_stores = ["default"]` in spin.toml),
/// through `wasi:keyvalue@0.2.0-draft2` (Spin 3: the same data as `fermyon:spin/key-value`,
/// plus compare-and-swap, increment and batches). It cannot list keys: see
/// `taskhooks_shared::platform`.
pub struct SpinKeyValue(store::Bucket);

impl SpinKeyValue {
    pub fn open_default() -> Result<Self, StoreError> {
        store::open("default").map(Self).map_err(|e| StoreError(format!("opening the default store: {e:?}")))
    }
}

fn store_error(e: store::Error) -> StoreError {
    StoreError(match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(m) => m,
    })
}

impl KeyValue for SpinKeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).map_err(store_error)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value).map_err(store_error)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).map_err(store_error)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        Ok(taskhooks_shared::platform::align_found(keys, batch::get_many(&self.0, keys).map_err(store_error)?))
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        batch::set_many(&self.0, entries).map_err(store_error)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.0, key, delta).map_err(store_error)
    }
    fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<CasAttempt, StoreError> {
        let cas = atomics::Cas::new(&self.0, key).map_err(store_error)?;
        let current = cas.current().map_err(store_error)?;
        let Some(new) = update(current.as_deref()) else { return Ok(CasAttempt::Unchanged) };
        match atomics::swap(cas, &new) {
            Ok(()) => Ok(CasAttempt::Swapped),
            Err(atomics::CasError::CasFailed(_)) => Ok(CasAttempt::Conflict),
            Err(atomics::CasError::StoreError(e)) => Err(store_error(e)),
        }
    }
}

/// Makes sure the store has the current key layout (one read when it has; see
/// `taskhooks_shared::layout::ensure`).
pub fn ensure_layout(kv: &SpinKeyValue) -> Result<(), String> {
    taskhooks_shared::layout::ensure(kv, &std::thread::sleep).map_err(|e| e.to_string())
}

/// A Spin variable, or `None` when it is unset or empty (our spin.toml declares optional
/// settings with an empty default).
pub fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok().filter(|v| !v.is_empty())
}

/// Outbound HTTP through Spin (`allowed_outbound_hosts` decides where it may go), on the
/// `wasi:http` interfaces directly rather than `spin_sdk::http::send`, because only they
/// take request options: every request is bounded by a timeout (connect, first byte and
/// between bytes), which Spin honours (its own default is 600 s).
pub struct SpinHttp;

/// The largest answer read: a dependency's answer is no more trusted than a caller's.
const MAX_RESPONSE_BYTES: usize = 32 << 20;

impl SpinHttp {
    /// How long a request without a budget of its own may take.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
}

fn split_url(url: &str) -> Result<(spin_sdk::wit::wasi::http0_2_0::types::Scheme, &str, &str), String> {
    use spin_sdk::wit::wasi::http0_2_0::types::Scheme;
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("not an absolute URL: {url}"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("unsupported scheme {other}")),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((scheme, authority, if path.is_empty() { "/" } else { path }))
}

impl taskhooks_shared::remote_queue::HttpClient for SpinHttp {
    fn send(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        self.send_within(method, url, headers, body, Self::DEFAULT_TIMEOUT)
    }

    fn send_within(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8], timeout: std::time::Duration) -> Result<(u16, Vec<u8>), String> {
        self.exchange(method, url, headers, body, timeout).map(|(status, _, body)| (status, body))
    }

    fn get_within(&self, url: &str, headers: &[(String, String)], timeout: std::time::Duration) -> Result<(u16, Option<String>, Vec<u8>), String> {
        self.exchange("GET", url, headers, &[], timeout)
    }

    fn sleep(&self, d: std::time::Duration) {
        std::thread::sleep(d);
    }
}

impl SpinHttp {
    /// One request and its answer: status, `location` header, body.
    fn exchange(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8], timeout: std::time::Duration) -> Result<(u16, Option<String>, Vec<u8>), String> {
        use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types};
        // The platform's timeouts bound each phase (and each chunk of the answer); the
        // deadline bounds the whole exchange, so an answer trickling in cannot outlast it.
        let deadline = std::time::Instant::now() + timeout;
        let late = || format!("no complete answer from {url} within {} ms", timeout.as_millis());
        let fields = types::Fields::new();
        for (k, v) in headers {
            fields.append(k, &v.as_bytes().to_vec()).map_err(|e| format!("header {k}: {e:?}"))?;
        }
        let request = types::OutgoingRequest::new(fields);
        let method = match method {
            "GET" => types::Method::Get,
            "POST" => types::Method::Post,
            "PUT" => types::Method::Put,
            "DELETE" => types::Method::Delete,
            other => types::Method::Other(other.to_string()),
        };
        let (scheme, authority, path) = split_url(url)?;
        let invalid = |what: &str| format!("{what} of {url} refused");
        request.set_method(&method).map_err(|()| invalid("method"))?;
        request.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
        request.set_authority(Some(authority)).map_err(|()| invalid("authority"))?;
        request.set_path_with_query(Some(path)).map_err(|()| invalid("path"))?;
        let outgoing = request.body().map_err(|()| "request body unavailable".to_string())?;
        let options = types::RequestOptions::new();
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // A platform that does not support an option keeps its own (Spin supports all three).
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
        let _ = options.set_between_bytes_timeout(Some(ns));
        let pending = outgoing_handler::handle(request, Some(options)).map_err(|e| format!("{e:?}"))?;
        {
            let stream = outgoing.write().map_err(|()| "request body stream unavailable".to_string())?;
            for chunk in body.chunks(4096) {
                stream.blocking_write_and_flush(chunk).map_err(|e| format!("sending the body: {e:?}"))?;
                if std::time::Instant::now() > deadline {
                    return Err(late());
                }
            }
        }
        types::OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"))?;
        let response = loop {
            match pending.get() {
                Some(r) => break r,
                None => pending.subscribe().block(),
            }
        };
        let response = response.map_err(|()| "response already taken".to_string())?.map_err(|e| format!("{e:?}"))?;
        let status = response.status();
        let location = response.headers().get(&"location".to_string()).first().map(|v| String::from_utf8_lossy(v).into_owned());
        let incoming = response.consume().map_err(|()| "response body unavailable".to_string())?;
        let mut answer = Vec::new();
        {
            let stream = incoming.stream().map_err(|()| "response body stream unavailable".to_string())?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => answer.extend_from_slice(&chunk),
                    Err(wasi::io::streams::StreamError::Closed) => break,
                    Err(e) => return Err(format!("reading the answer: {e:?}")),
                }
                if std::time::Instant::now() > deadline {
                    return Err(late());
                }
                if answer.len() > MAX_RESPONSE_BYTES {
                    return Err(format!("the answer from {url} is larger than {MAX_RESPONSE_BYTES} bytes"));
                }
            }
        }
        types::IncomingBody::finish(incoming);
        Ok((status, location, answer))
    }
}

/// RabbitMQ's management API, when `pulse_api_url` is set.
pub fn pulse_config() -> Option<taskhooks_shared::pulse::PulseConfig> {
    use taskhooks_shared::pulse::{PulseConfig, DEFAULT_NAMESPACE};
    Some(PulseConfig {
        api_url: variable("pulse_api_url")?,
        username: variable("pulse_username").unwrap_or_default(),
        password: variable("pulse_password").unwrap_or_default(),
        vhost: variable("pulse_vhost").unwrap_or_else(|| "/".into()),
        namespace: variable("pulse_namespace").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
    })
}

/// The deployment's settings, from the component's Spin variables (see spin.toml).
pub fn service_config(version: &str) -> Result<taskhooks_shared::api::ServiceConfig, String> {
    use taskhooks_shared::notify::FailureChannel;
    use taskhooks_shared::remote_queue::{RemoteTaskQueue, TaskclusterCredentials};
    use taskhooks_shared::sealed::SealingKey;
    // Metrics are kept unless turned off (`metrics = "off"`).
    taskhooks_shared::metrics::set_enabled(variable("metrics").as_deref() != Some("off"));
    let key = variable("secrets_key").ok_or("the `secrets_key` variable is not set")?;
    let sealing_key = SealingKey::from_base64(&key).map_err(|e| format!("`secrets_key`: {e}"))?;
    let taskcluster = match (variable("taskcluster_root_url"), variable("taskcluster_client_id"), variable("taskcluster_access_token")) {
        (None, _, _) => None,
        (Some(root_url), Some(client_id), Some(access_token)) => {
            let request_timeout = match variable("taskcluster_timeout_seconds") {
                None => RemoteTaskQueue::DEFAULT_BUDGET,
                Some(s) => match s.parse::<u64>() {
                    Ok(n) if n > 0 => std::time::Duration::from_secs(n),
                    _ => return Err(format!("`taskcluster_timeout_seconds` must be a whole number of seconds, at least 1 (got {s:?})")),
                },
            };
            Some(TaskclusterCredentials { root_url, client_id, access_token, request_timeout })
        }
        (Some(_), _, _) => return Err("`taskcluster_root_url` is set, so `taskcluster_client_id` and `taskcluster_access_token` must be too".into()),
    };
    let failure_channel = match (&taskcluster, variable("error_webhook_url")) {
        (_, Some(url)) => Some(FailureChannel::Webhook { url, secret: variable("error_webhook_secret") }),
        (Some(c), None) => Some(FailureChannel::TaskclusterNotify(c.clone())),
        (None, None) => None,
    };
    Ok(taskhooks_shared::api::ServiceConfig {
        root_client_id: variable("root_client_id").unwrap_or_else(|| taskhooks_shared::api::DEFAULT_ROOT_CLIENT_ID.to_string()),
        root_access_token: variable("root_access_token"),
        sealing_key,
        build: taskhooks_shared::health::Build {
            version: version.to_string(),
            commit: env!("TASKHOOKS_COMMIT").to_string(),
            time: env!("TASKHOOKS_BUILD_TIME").to_string(),
        },
        taskcluster,
        failure_channel,
        pulse: pulse_config(),
        github_webhook_secret: variable("github_webhook_secret"),
        repository_hosts: {
            let mut hosts = taskhooks_shared::repository::RepositoryHosts::default();
            if let Some(list) = variable("repository_hosts") {
                hosts.allowed = list.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect();
            }
            if let Some(api) = variable("github_api_url") {
                hosts.github_api = api;
            }
            hosts.github_token = variable("github_token");
            hosts
        },
        public_url: variable("public_url").map(|u| u.trim_end_matches('/').to_string()),
        metrics_token: variable("metrics_token"),
    })
}

/// Runs `f` with the Queue fires go to: the configured Taskcluster deployment's (signed
/// with the service's credentials, retried), or the embedded queue in `store`, which
/// checks tasks against the roles stored there.
pub fn with_task_queue<R>(
    store: &taskhooks_shared::store::Store<'_>,
    config: &taskhooks_shared::api::ServiceConfig,
    f: impl FnOnce(&dyn taskhooks_shared::fire::TaskQueue) -> R,
) -> Result<R, String> {
    use taskhooks_shared::embedded_queue::EmbeddedQueue;
    use taskhooks_shared::fire::EmbeddedTaskQueue;
    use taskhooks_shared::remote_queue::RemoteTaskQueue;
    use taskhooks_shared::scopes::{Role, Roles};
    if let Some(credentials) = &config.taskcluster {
        return Ok(f(&RemoteTaskQueue::new(&SpinHttp, credentials)));
    }
    let roles = store.roles().map_err(|e| e.to_string())?;
    let roles = Roles::new(roles.into_iter().map(|r| Role { role_id: r.role_id, scopes: r.scopes }).collect());
    Ok(f(&EmbeddedTaskQueue { queue: EmbeddedQueue { kv: store.kv }, roles: &roles }))
}
