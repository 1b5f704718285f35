//! `.cron.yml` files, as a repository serves them: any text. A file that parses gives every
//! job a `when` that either resolved or names its error; the next slot of a resolved one
//! is a slot (a multiple of 15 minutes) after the start that the job is due in.
#![no_main]

use chrono::Timelike;
use libfuzzer_sys::fuzz_target;
use taskhooks_shared::cron_yml::{next_slot, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(jobs) = parse(text, "mozilla-central") else { return };
    let start = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    for job in jobs.values() {
        let Ok(when) = &job.when else { continue };
        if let Some(next) = next_slot(when, start) {
            assert!(next > start && next.minute() % 15 == 0 && next.second() == 0, "{next}");
            assert!(when.iter().any(|s| taskhooks_shared::cron_yml::matches(s, next)), "{next} matches no entry of {when:?}");
        }
    }
});
