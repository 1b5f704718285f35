//! The wasmtime side: one engine, one linker with WASI p2, wasi-http and the Spin
//! interfaces, and per component an `InstancePre` so each request or tick gets a fresh,
//! cheaply created instance (as Spin does).

use crate::kv::{CasOp, KvBackend, KvStores};
use crate::manifest::Manifest;
use crate::outbound::OutboundPolicy;
use crate::variables::{AppVariables, ComponentVariables};
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "taskhooks:host/spin-platform",
        imports: { default: trappable },
        with: {
            "fermyon:spin/key-value.store": crate::runtime::KvHandle,
            "wasi:keyvalue/store.bucket": crate::runtime::BucketHandle,
            "wasi:keyvalue/atomics.cas": crate::runtime::CasHandle,
        },
    });
}

pub mod cron_bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin-cron/spin-cron",
        exports: { default: async },
    });
}

use bindings::fermyon::spin::{key_value, variables};
use bindings::wasi::keyvalue::{atomics, batch, store as wasi_store};

/// An open key-value store, as handed to a guest.
pub struct KvHandle(Arc<dyn KvBackend>);

/// The same stores through `wasi:keyvalue` (Spin 3 serves both interfaces on one data set).
pub struct BucketHandle(Arc<dyn KvBackend>);

/// A compare-and-swap in progress: the key, and the backend's state for it.
pub struct CasHandle {
    backend: Arc<dyn KvBackend>,
    key: String,
    op: Box<dyn CasOp>,
}

/// Spin's cap on any buffered read result (`spin_world::MAX_HOST_BUFFERED_BYTES`): a
/// larger answer is an error, as under `spin up`.
const MAX_HOST_BUFFERED_BYTES: usize = 128 << 20;

fn over_cap(bytes: usize) -> Option<String> {
    (bytes > MAX_HOST_BUFFERED_BYTES).then(|| format!("query result exceeds limit of {MAX_HOST_BUFFERED_BYTES} bytes"))
}

/// How often the engine's epoch advances: the granularity of the execution-time limit.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// What one instance may use. Spin 3 itself limits neither execution time nor (unless
/// `--max-instance-memory` is given) memory; the host limits both so that one request
/// cannot starve the others (see the README's *Limits*).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory of one instance, in bytes (`--max-instance-memory`, as Spin's flag).
    pub memory_bytes: usize,
    /// Execution time of one HTTP request (`--max-request-time`).
    pub request_time: std::time::Duration,
    /// Execution time of one cron run (`--max-cron-time`).
    pub cron_time: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            request_time: std::time::Duration::from_secs(10),
            cron_time: std::time::Duration::from_secs(120),
        }
    }
}

/// Why the host stopped an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// It executed for longer than this.
    Time(std::time::Duration),
    /// It wanted more linear memory than this many bytes.
    Memory(usize),
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitExceeded::Time(t) => write!(f, "it executed for more than {} ms, the limit of one run", t.as_millis()),
            LimitExceeded::Memory(b) => write!(f, "it needed more than {} MiB of memory, the limit of one instance", b >> 20),
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// What stopped an instance, if a limit did: written by its limiter or its epoch
/// callback, read by whoever ran it.
pub type LimitRecord = Arc<std::sync::Mutex<Option<LimitExceeded>>>;

/// The memory cap of one instance. Growth past it traps the instance (rather than failing
/// the `memory.grow`, which a Rust guest turns into an abort that says nothing).
struct MemoryCap {
    bytes: usize,
    record: LimitRecord,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.bytes {
            let exceeded = LimitExceeded::Memory(self.bytes);
            *self.record.lock().unwrap_or_else(|e| e.into_inner()) = Some(exceeded);
            return Err(exceeded.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// What one component may see and do, fixed at start-up.
pub struct ComponentEnv {
    pub id: String,
    variables: ComponentVariables,
    stores: HashMap<String, Arc<dyn KvBackend>>,
    outbound: Arc<OutboundPolicy>,
}

/// The `T` of `Store<T>`: per instance state.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    env: Arc<ComponentEnv>,
    memory: MemoryCap,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Enforces `allowed_outbound_hosts` before any outbound request leaves the host.
struct OutboundHooks {
    component: String,
    policy: Arc<OutboundPolicy>,
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
        if !self.policy.allows(&scheme, &host, port) {
            eprintln!(
                "taskhooks: component `{}` denied outbound request to {scheme}://{host}:{port} \
                 (not in allowed_outbound_hosts)",
                self.component
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let defaults = wasmtime_wasi_http::default_hooks();
        defaults.send_request(request, options, fut)
    }
}

impl key_value::Host for HostState {}

impl key_value::HostStore for HostState {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<KvHandle>, key_value::Error>> {
        match self.env.stores.get(&label) {
            Some(store) => Ok(Ok(self.table.push(KvHandle(store.clone()))?)),
            None => Ok(Err(key_value::Error::AccessDenied)),
        }
    }

    fn get(&mut self, h: Resource<KvHandle>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        Ok(self.table.get(&h)?.0.get(&key).map_err(kv_error))
    }

    fn set(&mut self, h: Resource<KvHandle>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), key_value::Error>> {
        Ok(self.table.get(&h)?.0.set(&key, &value).map_err(kv_error))
    }

    fn delete(&mut self, h: Resource<KvHandle>, key: String) -> wasmtime::Result<Result<(), key_value::Error>> {
        Ok(self.table.get(&h)?.0.delete(&key).map_err(kv_error))
    }

    fn exists(&mut self, h: Resource<KvHandle>, key: String) -> wasmtime::Result<Result<bool, key_value::Error>> {
        Ok(self.table.get(&h)?.0.exists(&key).map_err(kv_error))
    }

    fn get_keys(&mut self, h: Resource<KvHandle>) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        Ok(self.table.get(&h)?.0.keys().map_err(kv_error))
    }

    fn drop(&mut self, h: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

fn wasi_error(e: anyhow::Error) -> wasi_store::Error {
    eprintln!("taskhooks: key-value error: {e:#}");
    wasi_store::Error::Other(e.to_string())
}

fn capped_value(v: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, wasi_store::Error> {
    match over_cap(v.as_ref().map_or(0, Vec::len)) {
        Some(msg) => Err(wasi_store::Error::Other(msg)),
        None => Ok(v),
    }
}

impl wasi_store::Host for HostState {
    fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<BucketHandle>, wasi_store::Error>> {
        match self.env.stores.get(&identifier) {
            Some(store) => Ok(Ok(self.table.push(BucketHandle(store.clone()))?)),
            None => Ok(Err(wasi_store::Error::AccessDenied)),
        }
    }
}

impl wasi_store::HostBucket for HostState {
    fn get(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.get(&key).map_err(wasi_error).and_then(capped_value))
    }
    fn set(&mut self, b: Resource<BucketHandle>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.set(&key, &value).map_err(wasi_error))
    }
    fn delete(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<(), wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.delete(&key).map_err(wasi_error))
    }
    fn exists(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<bool, wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.exists(&key).map_err(wasi_error))
    }
    /// As Spin: every key at once; a cursor is an error.
    fn list_keys(&mut self, b: Resource<BucketHandle>, cursor: Option<String>) -> wasmtime::Result<Result<wasi_store::KeyResponse, wasi_store::Error>> {
        if cursor.is_some() {
            return Ok(Err(wasi_store::Error::Other("list_keys: cursor not supported".into())));
        }
        Ok(self.table.get(&b)?.0.keys().map_err(wasi_error).and_then(|keys| {
            match over_cap(keys.iter().map(|k| k.len() + std::mem::size_of::<String>()).sum()) {
                Some(msg) => Err(wasi_store::Error::Other(msg)),
                None => Ok(wasi_store::KeyResponse { keys, cursor: None }),
            }
        }))
    }
    fn drop(&mut self, b: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    fn get_many(&mut self, b: Resource<BucketHandle>, keys: Vec<String>) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.get_many(&keys).map_err(wasi_error).and_then(|found| {
            let bytes = found.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum();
            match over_cap(bytes) {
                Some(msg) => Err(wasi_store::Error::Other(msg)),
                None => Ok(found),
            }
        }))
    }
    fn set_many(&mut self, b: Resource<BucketHandle>, entries: Vec<(String, Vec<u8>)>) -> wasmtime::Result<Result<(), wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.set_many(&entries).map_err(wasi_error))
    }
    fn delete_many(&mut self, b: Resource<BucketHandle>, keys: Vec<String>) -> wasmtime::Result<Result<(), wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.delete_many(&keys).map_err(wasi_error))
    }
}

impl atomics::Host for HostState {
    fn increment(&mut self, b: Resource<BucketHandle>, key: String, delta: i64) -> wasmtime::Result<Result<i64, wasi_store::Error>> {
        Ok(self.table.get(&b)?.0.increment(&key, delta).map_err(wasi_error))
    }

    /// As Spin: a failed swap hands back a fresh compare-and-swap on the same key whose
    /// `current` has already been read.
    fn swap(&mut self, c: Resource<CasHandle>, value: Vec<u8>) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let mut cas = self.table.delete(c)?;
        match cas.op.swap(&value) {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                let retry = cas.backend.new_cas(&cas.key).and_then(|mut op| op.current().map(|_| op));
                match retry {
                    Ok(op) => {
                        let handle = self.table.push(CasHandle { backend: cas.backend, key: cas.key, op })?;
                        Ok(Err(atomics::CasError::CasFailed(handle)))
                    }
                    Err(e) => Ok(Err(atomics::CasError::StoreError(wasi_error(e)))),
                }
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(wasi_error(e)))),
        }
    }
}

impl atomics::HostCas for HostState {
    fn new(&mut self, b: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<Resource<CasHandle>, wasi_store::Error>> {
        let backend = self.table.get(&b)?.0.clone();
        match backend.new_cas(&key) {
            Ok(op) => Ok(Ok(self.table.push(CasHandle { backend, key, op })?)),
            Err(e) => Ok(Err(wasi_error(e))),
        }
    }
    fn current(&mut self, c: Resource<CasHandle>) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_store::Error>> {
        Ok(self.table.get_mut(&c)?.op.current().map_err(wasi_error).and_then(capped_value))
    }
    fn drop(&mut self, c: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

fn kv_error(e: anyhow::Error) -> key_value::Error {
    eprintln!("taskhooks: key-value error: {e:#}");
    key_value::Error::Other(e.to_string())
}

impl variables::Host for HostState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        if crate::manifest::check_variable_name(&name).is_err() {
            return Ok(Err(variables::Error::InvalidName(name)));
        }
        Ok(match self.env.variables.get(&name) {
            Some(v) => Ok(v.to_string()),
            None => Err(variables::Error::Undefined(format!("no variable for {name:?}"))),
        })
    }
}

impl cron_bindings::fermyon::spin_cron::cron_types::Host for HostState {}

/// A loaded component, ready to instantiate.
pub struct LoadedComponent {
    pub env: Arc<ComponentEnv>,
    pub pre: InstancePre<HostState>,
}

impl LoadedComponent {
    /// A store for one instance, limited to `limits`' memory and `time` of execution;
    /// `record` says which limit stopped it, if one did.
    pub fn new_store(&self, engine: &Engine, limits: &Limits, time: std::time::Duration, record: &LimitRecord) -> Store<HostState> {
        let wasi = WasiCtx::builder().stdout(crate::guest_stdout::GuestStdout).inherit_stderr().build();
        let mut store = Store::new(
            engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                http: WasiHttpCtx::new(),
                hooks: OutboundHooks {
                    component: self.env.id.clone(),
                    policy: self.env.outbound.clone(),
                },
                env: self.env.clone(),
                memory: MemoryCap { bytes: limits.memory_bytes, record: record.clone() },
            },
        );
        store.limiter(|s| &mut s.memory);
        // Execution time in epoch ticks: the callback runs when a tick passes while the
        // guest executes (time spent awaiting I/O counts at most one tick per wait). Each
        // tick yields to the executor, so a long run never holds a worker thread from the
        // other requests.
        let budget = (time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let mut ticks = 0u64;
        let record = record.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            ticks += 1;
            if ticks > budget {
                let exceeded = LimitExceeded::Time(time);
                *record.lock().unwrap_or_else(|e| e.into_inner()) = Some(exceeded);
                return Err(exceeded.into());
            }
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });
        store
    }
}

/// The pooling allocator's limits: at most `MAX_INSTANCES` instances live at once (the
/// host's concurrency), each memory up to `memory_bytes` (the limiter refuses growth past
/// it first, with its own error), with the per-component counts `spin up` allows.
fn instance_pool(memory_bytes: usize) -> wasmtime::PoolingAllocationConfig {
    const MAX_INSTANCES: u32 = 1000;
    const MB: usize = 1 << 20;
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(2 * MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .total_core_instances(4 * MAX_INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(memory_bytes.max(64 * MB).next_power_of_two())
        // Pages a returned instance keeps mapped: the next one's first touches of its
        // heap and stack then fault nothing in.
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2)
        // Where Linux has PAGEMAP_SCAN (6.7 and later), a returned instance's memory is
        // reset page by page, only the pages the request wrote; without it the whole
        // kept-resident range (2 MB: the stack, the data, the heap's start) is copied
        // back or zeroed on every request. Measured: a GET's CPU 0.63 -> 0.48 ms.
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// The application: every component of spin.toml compiled and linked.
pub struct App {
    pub engine: Engine,
    pub components: HashMap<String, LoadedComponent>,
    pub limits: Limits,
}

pub struct AppOptions<'a> {
    pub manifest: &'a Manifest,
    pub base_dir: &'a Path,
    pub state_dir: &'a Path,
    pub runtime_config: &'a crate::kv::RuntimeConfig,
    pub limits: Limits,
}

impl App {
    pub fn load(opts: AppOptions<'_>) -> Result<App> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // `TASKHOOKS_PERF_MAP=1` writes /tmp/perf-<pid>.map so `perf report` names guest
        // functions (for profiling load runs; needs a component built without `strip`).
        if std::env::var_os("TASKHOOKS_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // Compiled components are cached on disk (~/.cache/wasmtime), so a restart of the
        // host skips Cranelift entirely for unchanged .wasm files.
        match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => eprintln!("taskhooks: compilation cache disabled: {e}"),
        }
        // Instances come from a pool reserved once, their linear memories restored from
        // copy-on-write images of the component's initial memory: a fresh instance per
        // request (Spin's semantics) without mapping and zeroing its memory each time.
        // Sized as `spin up` sizes its pool; where the address space cannot hold it, the
        // on-demand allocator.
        let mut pooled = config.clone();
        pooled.memory_init_cow(true).allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(instance_pool(opts.limits.memory_bytes)));
        let engine = match Engine::new(&pooled) {
            Ok(engine) => engine,
            Err(e) => {
                eprintln!("taskhooks: the instance pool cannot be reserved here ({e}); allocating instances on demand");
                Engine::new(&config).map_err(|e| anyhow!(e))?
            }
        };
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match ticker.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })
            .context("starting the epoch thread")?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!(e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow!(e))?;
        key_value::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(|e| anyhow!(e))?;
        variables::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(|e| anyhow!(e))?;
        wasi_store::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(|e| anyhow!(e))?;
        atomics::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(|e| anyhow!(e))?;
        batch::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(|e| anyhow!(e))?;
        cron_bindings::fermyon::spin_cron::cron_types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| anyhow!(e))?;

        let app_vars = AppVariables::resolve(&opts.manifest.variables, &|k| std::env::var(k).ok())?;
        let labels = opts
            .manifest
            .component
            .values()
            .flat_map(|c| c.key_value_stores.iter().cloned());
        let stores = KvStores::open(labels, opts.runtime_config, opts.state_dir, opts.base_dir)?;

        let mut components = HashMap::new();
        for (id, decl) in &opts.manifest.component {
            let variables = ComponentVariables::for_component(opts.manifest, &app_vars, id)?;
            let outbound_entries = decl
                .allowed_outbound_hosts
                .iter()
                .map(|e| app_vars.expand(e))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("component `{id}`: allowed_outbound_hosts"))?;
            let outbound = Arc::new(
                OutboundPolicy::parse(&outbound_entries)
                    .with_context(|| format!("component `{id}`"))?,
            );
            let component_stores = decl
                .key_value_stores
                .iter()
                .map(|l| (l.clone(), stores.get(l).expect("opened above")))
                .collect();
            let path = opts.base_dir.join(&decl.source);
            let component = Component::from_file(&engine, &path)
                .map_err(|e| anyhow!(e))
                .with_context(|| {
                    format!("loading component `{id}` from {} (built yet?)", path.display())
                })?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| anyhow!(e))
                .with_context(|| format!("linking component `{id}`"))?;
            let env = Arc::new(ComponentEnv {
                id: id.clone(),
                variables,
                stores: component_stores,
                outbound,
            });
            components.insert(id.clone(), LoadedComponent { env, pre });
        }
        Ok(App { engine, components, limits: opts.limits })
    }

    pub fn component(&self, id: &str) -> Result<&LoadedComponent> {
        self.components.get(id).ok_or_else(|| anyhow!("no component `{id}` in spin.toml"))
    }

    /// Runs a cron component's `handle-cron-event` once, as the cron trigger does at
    /// `timestamp` (seconds since the epoch).
    pub async fn run_cron(&self, id: &str, timestamp: u64) -> Result<()> {
        let component = self.component(id)?;
        let pre = cron_bindings::SpinCronPre::new(component.pre.clone())
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("component `{id}` does not export handle-cron-event"))?;
        let record = LimitRecord::default();
        let mut store = component.new_store(&self.engine, &self.limits, self.limits.cron_time, &record);
        let result = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let meta = cron_bindings::fermyon::spin_cron::cron_types::Metadata { timestamp };
            instance.call_handle_cron_event(&mut store, meta).await
        }
        .await;
        if let Some(exceeded) = *record.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(anyhow!("component `{id}` was stopped: {exceeded}"));
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(cron_bindings::fermyon::spin_cron::cron_types::Error::Other(msg))) => {
                Err(anyhow!("component `{id}` failed: {msg}"))
            }
            Err(trap) => Err(anyhow!(trap).context(format!("component `{id}` trapped"))),
        }
    }
}
