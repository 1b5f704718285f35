//! `taskhooks`: runs the taskhooks Spin application locally, the way `spin up` would, from
//! the same spin.toml and the same .wasm files.

mod apply;
mod checkpointer;
mod guest_stdout;
mod http_server;
mod kv;
mod maintenance;
mod manifest;
mod outbound;
mod routes;
mod runtime;
mod variables;

/// mimalloc rather than glibc's malloc: a request allocates and frees its store, its
/// WASI context, its HTTP request and its key-value rows on whichever worker runs it, and
/// glibc's allocator spent 4.4% of a GET's CPU (its consolidation and free lists).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

const USAGE: &str = "\
taskhooks: run the taskhooks Spin application locally (a spin up work-alike)

USAGE:
    taskhooks up [OPTIONS]
        Serve the HTTP routes and run the cron triggers of spin.toml.
        --listen ADDR               address to listen on (default 127.0.0.1:3000; port 0 picks one)
        --disable-cron              do not run the cron triggers (tests tick them by hand)
    taskhooks cron COMPONENT [--at TIME] [--repeat N [--step SECONDS]] [OPTIONS]
        Run one cron component once, as its trigger would at TIME (RFC 3339 or seconds
        since the epoch; default now), then exit. Exit status 1 if it failed. With
        --repeat, N runs one after another at TIME, TIME+STEP, ... (default step 900 s),
        to replay days of ticks in one process; it stops at the first failed run.
    taskhooks kv upgrade [OPTIONS]
        Upgrade the default key-value store to this version's layout, in place (a store
        written before taskhooks 0.2; safe to interrupt and run again). The components
        refuse a store that needs it.
    taskhooks kv verify [--repair] [OPTIONS]
        Check every index of the store against its records; with --repair, fix what
        differs. Exit status 1 if anything differed (and was not repaired).
    taskhooks apply PATH [--apply | --check]
        Compare the hooks and roles declared in the .yml, .yaml and .json files under PATH
        (a directory, read recursively, or one file) with a Taskcluster deployment (this
        service or upstream's), through its public API, and print the difference: what
        would be created (+), changed (~, with a diff) and removed (-), the last only
        within the prefixes the files' `managed:` lists name. Nothing is changed unless
        --apply is given. The deployment and credentials come from TASKCLUSTER_ROOT_URL,
        TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN (and TASKCLUSTER_CERTIFICATE). The
        OPTIONS below do not apply to it.
        --apply                     make the changes: roles, then hooks; stops at the first
                                    error
        --check                     exit status 1 when there is something to do
        Exit status 2 on any error (a bad file, an API error); nothing is applied if any
        file is bad.

OPTIONS (all):
    -f, --from FILE                 the application manifest (default ./spin.toml)
    --runtime-config-file FILE      Spin runtime configuration (key-value stores)
    --state-dir DIR                 where the default key-value store lives (default .spin
                                    beside the manifest)
    --max-instance-memory BYTES     linear memory of one instance (default 512 MiB; env
                                    SPIN_MAX_INSTANCE_MEMORY, as Spin's flag)
    --max-request-time MS           execution time of one HTTP request (default 10000)
    --max-cron-time MS              execution time of one cron run (default 120000)

Variables come from spin.toml defaults, overridden by SPIN_VARIABLE_<NAME>.";

struct Options {
    command: String,
    component: Option<String>,
    listen: String,
    manifest: PathBuf,
    runtime_config: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    at: Option<String>,
    repeat: u32,
    step: i64,
    disable_cron: bool,
    repair: bool,
    limits: runtime::Limits,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options> {
    let command = args.next().ok_or_else(|| anyhow!("missing command"))?;
    let mut opts = Options {
        command,
        component: None,
        listen: "127.0.0.1:3000".into(),
        manifest: PathBuf::from("spin.toml"),
        runtime_config: None,
        state_dir: None,
        at: None,
        repeat: 1,
        step: 900,
        disable_cron: false,
        repair: false,
        limits: runtime::Limits::default(),
    };
    if let Ok(bytes) = std::env::var("SPIN_MAX_INSTANCE_MEMORY") {
        opts.limits.memory_bytes = bytes.parse().context("SPIN_MAX_INSTANCE_MEMORY must be a number of bytes")?;
    }
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => opts.listen = value("--listen")?,
            "-f" | "--from" => opts.manifest = value("--from")?.into(),
            "--runtime-config-file" => opts.runtime_config = Some(value(&arg)?.into()),
            "--state-dir" => opts.state_dir = Some(value(&arg)?.into()),
            "--at" => opts.at = Some(value("--at")?),
            "--repeat" => opts.repeat = value("--repeat")?.parse().ok().filter(|n| *n > 0).ok_or_else(|| anyhow!("--repeat needs a whole number, at least 1"))?,
            "--step" => opts.step = value("--step")?.parse().ok().filter(|n| *n > 0).ok_or_else(|| anyhow!("--step needs a whole number of seconds"))?,
            "--disable-cron" => opts.disable_cron = true,
            "--repair" => opts.repair = true,
            "--max-instance-memory" => opts.limits.memory_bytes = value(&arg)?.parse().context("--max-instance-memory takes bytes")?,
            "--max-request-time" => opts.limits.request_time = millis(&value(&arg)?)?,
            "--max-cron-time" => opts.limits.cron_time = millis(&value(&arg)?)?,
            "-h" | "--help" => bail!("help"),
            a if !a.starts_with('-') && matches!(opts.command.as_str(), "cron" | "kv") && opts.component.is_none() => {
                opts.component = Some(a.to_string())
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    Ok(opts)
}

fn millis(text: &str) -> Result<std::time::Duration> {
    let ms: u64 = text.parse().with_context(|| format!("`{text}` is not a number of milliseconds"))?;
    Ok(std::time::Duration::from_millis(ms.max(1)))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(secs) = text.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| anyhow!("time out of range"));
    }
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("`{text}` is neither RFC 3339 nor seconds since the epoch"))?
        .with_timezone(&Utc))
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    // `apply` is a Taskcluster API client: none of the Spin options, no runtime.
    if args.peek().map(String::as_str) == Some("apply") {
        std::process::exit(run_apply(args.skip(1)));
    }
    let opts = match parse_args(args) {
        Ok(o) if matches!(o.command.as_str(), "up" | "cron" | "kv") => o,
        Ok(o) if o.command == "help" => {
            println!("{USAGE}");
            return;
        }
        Err(e) if e.to_string() == "help" => {
            println!("{USAGE}");
            return;
        }
        Ok(o) => {
            eprintln!("taskhooks: unknown command `{}`\n\n{USAGE}", o.command);
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("taskhooks: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    // A guest runs up to one epoch tick (10 ms) per poll before it yields. Tokio looks for
    // I/O and timers only every `event_interval` polls (61 by default) while its workers
    // are busy, so with long-running guests a new request would wait ~0.6 s to be
    // accepted; looking at every poll keeps `ping` at its usual latency. New connections
    // are spawned from the accept loop outside the workers, into tokio's global queue,
    // which a busy worker checks only every `global_queue_interval` polls (tuned from
    // short polls at first, ~0.5 s of 10 ms ones): every other poll instead.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(1)
        .global_queue_interval(2)
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(run(opts));
    guest_stdout::flush();
    if let Err(e) = result {
        eprintln!("taskhooks: error: {e:#}");
        std::process::exit(1);
    }
}

fn run_apply(args: impl Iterator<Item = String>) -> i32 {
    let opts = match apply::parse_args(args) {
        Ok(opts) => opts,
        Err(e) if e.to_string() == "help" => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("taskhooks: {e}\n\n{USAGE}");
            return apply::EXIT_ERROR;
        }
    };
    match apply::run(&opts) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("taskhooks: error: {e:#}");
            apply::EXIT_ERROR
        }
    }
}

async fn run(opts: Options) -> Result<()> {
    let (manifest, base_dir) = manifest::Manifest::load(&opts.manifest)?;
    let state_dir = opts.state_dir.clone().unwrap_or_else(|| base_dir.join(".spin"));
    let runtime_config = kv::RuntimeConfig::load(opts.runtime_config.as_deref())?;
    if opts.command == "kv" {
        let stores = kv::KvStores::open(["default".to_string()], &runtime_config, &state_dir, &base_dir)?;
        let store = maintenance::BackendKv(stores.get("default").expect("opened above"));
        return maintenance::run(opts.component.as_deref().unwrap_or_default(), &store, opts.repair);
    }
    let app = Arc::new(runtime::App::load(runtime::AppOptions {
        manifest: &manifest,
        base_dir: &base_dir,
        state_dir: &state_dir,
        runtime_config: &runtime_config,
        limits: opts.limits,
    })?);

    if opts.command == "cron" {
        let id = opts.component.ok_or_else(|| anyhow!("`cron` needs a COMPONENT"))?;
        let at = match &opts.at {
            Some(t) => parse_time(t)?,
            None => Utc::now(),
        };
        for i in 0..opts.repeat {
            let at = at + chrono::Duration::seconds(opts.step * i64::from(i));
            let ts = u64::try_from(at.timestamp()).map_err(|_| anyhow!("time before the epoch"))?;
            app.run_cron(&id, ts).await?;
            eprintln!("taskhooks: cron component `{id}` ran at {}", at.to_rfc3339());
        }
        return Ok(());
    }

    let routes = manifest
        .trigger
        .http
        .iter()
        .map(|t| routes::Route::parse(&t.route, &t.component))
        .collect::<Result<Vec<_>>>()?;
    let mut http_components: Vec<String> = routes.iter().map(|r| r.component.clone()).collect();
    http_components.sort();
    http_components.dedup();
    let router = routes::Router::new(routes.clone())?;
    let trigger = Arc::new(http_server::HttpTrigger::new(app.clone(), router, &http_components)?);

    if !opts.disable_cron {
        for t in &manifest.trigger.cron {
            let schedule = cron::Schedule::from_str(&t.cron_expression).map_err(|e| {
                anyhow!("component `{}`: cron_expression `{}`: {e}", t.component, t.cron_expression)
            })?;
            tokio::spawn(cron_loop(app.clone(), t.component.clone(), schedule));
        }
    }

    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    eprintln!("taskhooks: application `{}`", manifest.application.name);
    println!("Serving http://{addr}");
    println!("Available Routes:");
    for r in &routes {
        println!("  {}: http://{addr}{}", r.component, r.raw);
    }
    for t in manifest.trigger.cron.iter().filter(|_| !opts.disable_cron) {
        println!("  {}: cron `{}`", t.component, t.cron_expression);
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    tokio::select! {
        r = trigger.serve(listener) => r,
        _ = shutdown_signal() => {
            eprintln!("taskhooks: shutting down");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The cron trigger: runs the component at every time its expression names (UTC).
async fn cron_loop(app: Arc<runtime::App>, id: String, schedule: cron::Schedule) {
    for next in schedule.upcoming(Utc) {
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        let app = app.clone();
        let id = id.clone();
        // Each run in its own task, as Spin's cron trigger does: a slow run does not delay
        // the next one.
        tokio::spawn(async move {
            let ts = next.timestamp() as u64;
            if let Err(e) = app.run_cron(&id, ts).await {
                eprintln!("taskhooks: cron component `{id}` at {next}: {e:#}");
            }
        });
    }
}
