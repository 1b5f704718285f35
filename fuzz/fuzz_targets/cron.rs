//! Schedules: any string as a cron entry; a schedule that parses must give fire times that
//! strictly increase.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskhooks_shared::schedule::Schedule;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let entries: Vec<&str> = text.split('\n').take(4).collect();
    if let Ok(schedule) = Schedule::parse(&entries) {
        let start = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let fires = schedule.next_fires(start, 5);
        assert!(fires.windows(2).all(|w| w[0] < w[1]), "{entries:?}: {fires:?}");
        assert!(fires.iter().all(|t| *t > start));
    }
});
