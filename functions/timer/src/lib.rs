//! The scheduled tick: Spin's cron trigger calls `handle-cron-event` every 15 minutes, and
//! each call reads every cron project's `.cron.yml` and fires every hook that came due
//! since (`taskhooks_shared::cron_tick`, `taskhooks_shared::scheduler`). The first tick
//! of each UTC day also prunes what expired (`taskhooks_shared::daily`).

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "spin-cron",
    path: "../wit",
});

use taskhooks_shared::daily::run_once_a_day;
use taskhooks_shared::notify::report_failure;
use taskhooks_shared::cron_tick;
use taskhooks_shared::store::Store;
use taskhooks_spin_adapter::{ensure_layout, service_config, with_task_queue, SpinHttp, SpinKeyValue};

/// Once per UTC day (the first tick of the day): what expired goes (`daily`).
fn daily(store: &Store<'_>, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let started = std::time::Instant::now();
    if let Some(r) = run_once_a_day(store, now).map_err(|e| e.to_string())? {
        println!(
            "timer: daily pass: {} expiry buckets, {} entries: pruned {} fires older than a year, {} expired tasks and {} Pulse message markers in {} ms",
            r.days,
            r.entries,
            r.fires,
            r.tasks,
            r.markers,
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

fn run(now_s: u64) -> Result<(), String> {
    let started = std::time::Instant::now();
    let kv = SpinKeyValue::open_default().map_err(|e| e.to_string())?;
    ensure_layout(&kv)?;
    let config = service_config(env!("CARGO_PKG_VERSION"))?;
    let store = Store { kv: &kv, key: &config.sealing_key };
    let now = chrono::DateTime::from_timestamp(now_s as i64, 0).ok_or("tick time out of range")?;
    // The build's first run, for `ping`'s uptime, by the wall clock (a tick may be run
    // for another time by hand).
    if let Err(e) = taskhooks_shared::health::note_start(&kv, &config.build, chrono::Utc::now()) {
        eprintln!("timer: noting this build's start: {e}");
    }
    let tick = with_task_queue(&store, &config, |queue| cron_tick::run(&store, queue, &SpinHttp, &config.repository_hosts, config.tasks_root_url(), now))?
        .map_err(|e| e.to_string())?;
    let report = &tick.fires;
    if let Some(channel) = &config.failure_channel {
        for failure in &report.to_report {
            if let Err(e) = report_failure(&kv, &SpinHttp, channel, failure) {
                eprintln!("timer: hook {}/{}: {e}", failure.hook_group_id, failure.hook_id);
            }
        }
    }
    for (project, error) in &tick.sync.failed {
        eprintln!("timer: cron project {project}: {error}");
    }
    let changed = |f: fn(&taskhooks_shared::cron_hooks::SyncReport) -> usize| tick.sync.synced.iter().map(|(_, r)| f(r)).sum::<usize>();
    println!(
        "timer: tick at {now_s}: due {} fired {} declined {} failed {} retrying {}; cron projects {} read, {} failed, job hooks created {} updated {} removed {}; in {} ms",
        report.due,
        report.fired,
        report.declined,
        report.failed,
        report.retrying,
        tick.sync.synced.len(),
        tick.sync.failed.len(),
        changed(|r| r.created.len()),
        changed(|r| r.updated.len()),
        changed(|r| r.removed.len()),
        started.elapsed().as_millis()
    );
    daily(&store, now)
}

struct Timer;

impl Guest for Timer {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        run(metadata.timestamp).map_err(Error::Other)
    }
}

export!(Timer);
