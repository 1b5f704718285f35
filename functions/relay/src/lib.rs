//! The Pulse relay: Spin's cron trigger calls `handle-cron-event` every minute; each run
//! syncs every hook's queue and bindings on RabbitMQ and drains the queues into fires
//! (`taskhooks_shared::relay`), talking to RabbitMQ through its management HTTP API.

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "spin-cron",
    path: "../wit",
});

use taskhooks_shared::cron_source::CronSource;
use taskhooks_shared::notify::report_failure;
use taskhooks_shared::platform::SystemClock;
use taskhooks_shared::pulse::RabbitMq;
use taskhooks_shared::relay::{Relay, DEFAULT_BATCH};
use taskhooks_shared::store::Store;
use taskhooks_spin_adapter::{ensure_layout, service_config, with_task_queue, SpinHttp, SpinKeyValue};

/// A run stops draining after this long, so one run ends before the next minute's starts
/// (what is left waits for the next run).
const BUDGET_SECONDS: i64 = 45;

fn run(at: u64) -> Result<(), String> {
    let started = std::time::Instant::now();
    let config = service_config(env!("CARGO_PKG_VERSION"))?;
    let Some(pulse) = &config.pulse else {
        println!("relay: pulse_api_url is not set; nothing to relay at {at}");
        return Ok(());
    };
    let kv = SpinKeyValue::open_default().map_err(|e| e.to_string())?;
    ensure_layout(&kv)?;
    let store = Store { kv: &kv, key: &config.sealing_key };
    let mq = RabbitMq { http: &SpinHttp, config: pulse };
    // Cron projects' jobs bound to exchanges are made from their repositories.
    let source = CronSource::new(&kv, &SpinHttp, &config.repository_hosts, config.tasks_root_url());
    let report = with_task_queue(&store, &config, |queue| {
        let relay = Relay { store: &store, mq: &mq, queue, clock: &SystemClock, batch: DEFAULT_BATCH, source: Some(&source) };
        relay.run(chrono::Duration::seconds(BUDGET_SECONDS))
    })?
    .map_err(|e| format!("relay: {e}"))?;
    if report.busy {
        println!("relay: run at {at}: another relay holds the lease; nothing done");
        return Ok(());
    }
    if let Some(channel) = &config.failure_channel {
        for failure in &report.to_report {
            if let Err(e) = report_failure(&kv, &SpinHttp, channel, failure) {
                eprintln!("relay: hook {}/{}: {e}", failure.hook_group_id, failure.hook_id);
            }
        }
    }
    for error in &report.errors {
        eprintln!("relay: {error}");
    }
    for error in &report.queue_errors {
        eprintln!("relay: the Queue did not take a fire; its message stays queued: {error}");
    }
    println!(
        "relay: run at {at}: queues {} fired {} declined {} failed {} retrying {} discarded {} duplicates {} bound {} unbound {} deleted {} binding errors {} errors {} in {} ms",
        report.queues,
        report.fired,
        report.declined,
        report.failed,
        report.retrying,
        report.discarded,
        report.duplicates,
        report.bound,
        report.unbound,
        report.deleted,
        report.binding_errors,
        report.errors.len(),
        started.elapsed().as_millis()
    );
    Ok(())
}

struct RelayComponent;

impl Guest for RelayComponent {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        run(metadata.timestamp).map_err(Error::Other)
    }
}

export!(RelayComponent);
