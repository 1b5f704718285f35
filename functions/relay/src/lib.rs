//! The Pulse relay: Spin's cron trigger calls `handle-cron-event` every minute; the relay
//! moves messages from RabbitMQ (through its management HTTP API) to hook fires.

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "spin-cron",
    path: "../wit",
});

use taskhooks_spin_adapter::variable;

struct Relay;

impl Guest for Relay {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        match variable("pulse_api_url") {
            None => println!("relay: pulse_api_url is not set; nothing to relay at {}", metadata.timestamp),
            Some(_) => return Err(Error::Other("the Pulse relay is not implemented yet".into())),
        }
        Ok(())
    }
}

export!(Relay);
