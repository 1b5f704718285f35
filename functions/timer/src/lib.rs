//! The scheduled tick: Spin's cron trigger calls `handle-cron-event` every 15 minutes, and
//! each call fires every hook that came due since (`taskhooks_shared::scheduler`). The
//! first tick of each UTC day also prunes lastFires older than a year (and old Pulse
//! message markers) and repairs the schedule and binding indexes.

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "spin-cron",
    path: "../wit",
});

use taskhooks_shared::embedded_queue::EmbeddedQueue;
use taskhooks_shared::notify::report_failure;
use taskhooks_shared::relay::{prune_seen, rebuild_binding_index};
use taskhooks_shared::scheduler::{rebuild_index, tick};
use taskhooks_shared::store::Store;
use taskhooks_spin_adapter::{service_config, with_task_queue, SpinHttp, SpinKeyValue};

const DAY_SECONDS: u64 = 24 * 60 * 60;
const FIRE_RETENTION_DAYS: u64 = 365;

/// Once per UTC day (the first tick of the day): lastFires older than a year go, and the
/// schedule index is rebuilt from the hooks.
fn daily(store: &Store<'_>, now_s: u64) -> Result<(), String> {
    let today = (now_s / DAY_SECONDS).to_string();
    if store.kv.get("timer/last-daily").map_err(|e| e.to_string())?.as_deref() == Some(today.as_bytes()) {
        return Ok(());
    }
    let cutoff_ms = (now_s.saturating_sub(FIRE_RETENTION_DAYS * DAY_SECONDS) * 1000) as i64;
    let pruned = Store::prune_fires(store.kv, cutoff_ms).map_err(|e| e.to_string())?;
    let indexed = rebuild_index(store).map_err(|e| e.to_string())?;
    let bindings = rebuild_binding_index(store).map_err(|e| e.to_string())?;
    let now = chrono::DateTime::from_timestamp(now_s as i64, 0).ok_or("tick time out of range")?;
    let seen = prune_seen(store.kv, now).map_err(|e| e.to_string())?;
    let expired = EmbeddedQueue { kv: store.kv }.prune_expired(now).map_err(|e| e.to_string())?;
    store.kv.set("timer/last-daily", today.as_bytes()).map_err(|e| e.to_string())?;
    println!(
        "timer: pruned {pruned} fires older than {FIRE_RETENTION_DAYS} days, {expired} expired tasks and {seen} Pulse message markers; re-indexed {indexed} scheduled hooks and {bindings} bound hooks"
    );
    Ok(())
}

fn run(now_s: u64) -> Result<(), String> {
    let started = std::time::Instant::now();
    let kv = SpinKeyValue::open_default().map_err(|e| e.to_string())?;
    let config = service_config(env!("CARGO_PKG_VERSION"))?;
    let store = Store { kv: &kv, key: &config.sealing_key };
    let now = chrono::DateTime::from_timestamp(now_s as i64, 0).ok_or("tick time out of range")?;
    let report = with_task_queue(&store, &config, |queue| tick(&store, queue, now))?.map_err(|e| e.to_string())?;
    if let Some(channel) = &config.failure_channel {
        for failure in &report.to_report {
            if let Err(e) = report_failure(&kv, &SpinHttp, channel, failure) {
                eprintln!("timer: hook {}/{}: {e}", failure.hook_group_id, failure.hook_id);
            }
        }
    }
    println!(
        "timer: tick at {now_s}: due {} fired {} declined {} failed {} in {} ms",
        report.due,
        report.fired,
        report.declined,
        report.failed,
        started.elapsed().as_millis()
    );
    daily(&store, now_s)
}

struct Timer;

impl Guest for Timer {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        run(metadata.timestamp).map_err(Error::Other)
    }
}

export!(Timer);
