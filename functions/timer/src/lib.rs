//! The scheduled tick: Spin's cron trigger calls `handle-cron-event` every 15 minutes.

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "spin-cron",
    path: "../wit",
});

use taskhooks_shared::platform::KeyValue;
use taskhooks_spin_adapter::SpinKeyValue;

struct Timer;

impl Guest for Timer {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let kv = SpinKeyValue::open_default().map_err(|e| Error::Other(e.to_string()))?;
        // Until scheduled hooks exist, a tick only records that it ran.
        kv.set("timer/last-tick", metadata.timestamp.to_string().as_bytes())
            .map_err(|e| Error::Other(e.to_string()))?;
        println!("timer: tick at {}", metadata.timestamp);
        Ok(())
    }
}

export!(Timer);
