//! The scheduled tick: Spin's cron trigger calls `handle-cron-event` every 15 minutes.

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "spin-cron",
    path: "../wit",
});

use taskhooks_shared::platform::KeyValue;
use taskhooks_shared::store::Store;
use taskhooks_spin_adapter::SpinKeyValue;

const DAY_SECONDS: u64 = 24 * 60 * 60;
const FIRE_RETENTION_DAYS: u64 = 365;

/// Once per UTC day (the first tick of the day), lastFires older than a year go.
fn prune_once_a_day(kv: &SpinKeyValue, now_s: u64) -> Result<(), String> {
    let today = (now_s / DAY_SECONDS).to_string();
    if kv.get("timer/last-prune-day").map_err(|e| e.to_string())?.as_deref() == Some(today.as_bytes()) {
        return Ok(());
    }
    let cutoff_ms = (now_s.saturating_sub(FIRE_RETENTION_DAYS * DAY_SECONDS) * 1000) as i64;
    let pruned = Store::prune_fires(kv, cutoff_ms).map_err(|e| e.to_string())?;
    kv.set("timer/last-prune-day", today.as_bytes()).map_err(|e| e.to_string())?;
    println!("timer: pruned {pruned} fires older than {FIRE_RETENTION_DAYS} days");
    Ok(())
}

struct Timer;

impl Guest for Timer {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let kv = SpinKeyValue::open_default().map_err(|e| Error::Other(e.to_string()))?;
        // Until scheduled hooks exist, a tick only records that it ran.
        kv.set("timer/last-tick", metadata.timestamp.to_string().as_bytes())
            .map_err(|e| Error::Other(e.to_string()))?;
        println!("timer: tick at {}", metadata.timestamp);
        prune_once_a_day(&kv, metadata.timestamp).map_err(Error::Other)
    }
}

export!(Timer);
