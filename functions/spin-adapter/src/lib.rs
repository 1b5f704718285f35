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

/// Outbound HTTP through Spin (`allowed_outbound_hosts` decides where it may go).
pub struct SpinHttp;

impl taskhooks_shared::remote_queue::HttpClient for SpinHttp {
    fn send(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        use spin_sdk::http::{Method, Request, Response};
        let method = match method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_string()),
        };
        let mut builder = Request::builder();
        builder.method(method).uri(url);
        for (k, v) in headers {
            builder.header(k.as_str(), v.as_str());
        }
        builder.body(body.to_vec());
        let response: Response = spin_sdk::http::run(spin_sdk::http::send(builder.build())).map_err(|e| e.to_string())?;
        Ok((*response.status(), response.body().to_vec()))
    }

    fn sleep(&self, d: std::time::Duration) {
        std::thread::sleep(d);
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
    use taskhooks_shared::remote_queue::TaskclusterCredentials;
    use taskhooks_shared::sealed::SealingKey;
    let key = variable("secrets_key").ok_or("the `secrets_key` variable is not set")?;
    let sealing_key = SealingKey::from_base64(&key).map_err(|e| format!("`secrets_key`: {e}"))?;
    let taskcluster = match (variable("taskcluster_root_url"), variable("taskcluster_client_id"), variable("taskcluster_access_token")) {
        (None, _, _) => None,
        (Some(root_url), Some(client_id), Some(access_token)) => Some(TaskclusterCredentials { root_url, client_id, access_token }),
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
        version: version.to_string(),
        taskcluster,
        failure_channel,
        pulse: pulse_config(),
        github_webhook_secret: variable("github_webhook_secret"),
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
        return Ok(f(&RemoteTaskQueue {
            http: &SpinHttp,
            credentials,
            attempts: RemoteTaskQueue::DEFAULT_ATTEMPTS,
            first_backoff: RemoteTaskQueue::DEFAULT_BACKOFF,
        }));
    }
    let roles = store.roles().map_err(|e| e.to_string())?;
    let roles = Roles::new(roles.into_iter().map(|r| Role { role_id: r.role_id, scopes: r.scopes }).collect());
    Ok(f(&EmbeddedTaskQueue { queue: EmbeddedQueue { kv: store.kv }, roles: &roles }))
}
