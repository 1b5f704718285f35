//! Metrics, kept in the key-value store (components are stateless) and served in the
//! Prometheus text format at `GET /metrics`.
//!
//! Every series is a set of [`SHARDS`] counters, `metric/<series>/<shard>`, each updated with
//! the store's atomic `increment`; a request picks one shard, so concurrent requests
//! mostly add to different keys. The series that exist are listed in `index/metrics`,
//! written only when an `increment` finds its counter new (it answers the delta itself),
//! so an update costs one key-value operation and a scrape reads the index and then
//! exactly the series' counters.
//!
//! A histogram is a counter per bucket (not cumulative; summed when served) and a sum in
//! microseconds; its count is the sum of its buckets.

use crate::cas;
use crate::layout;
use crate::platform::KeyValue;
use crate::store::StorageError;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

/// Counters per series.
pub const SHARDS: u64 = 8;

/// Latency buckets (seconds), Prometheus's defaults trimmed to what a fire takes.
pub const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

/// What each metric is, for the `# HELP` and `# TYPE` lines.
const HELP: [(&str, &str, &str); 8] = [
    ("taskhooks_hook_fires_total", "counter", "Fires by firedBy and result (created, declined, failed); upstream's fire.<firedBy>.all is their sum."),
    ("taskhooks_trigger_schema_rejections_total", "counter", "Payloads a hook's triggerSchema refused, by firedBy (pulseMessage: upstream's fire.pulseMessage.triggerSchemaInvalid)."),
    ("taskhooks_render_seconds", "histogram", "Time to render a hook's task (JSON-e, or a cron job's .taskcluster.yml)."),
    ("taskhooks_create_task_seconds", "histogram", "Time of createTask, embedded or remote, retries included."),
    ("taskhooks_api_requests_total", "counter", "API requests by method name and HTTP status."),
    ("taskhooks_runs_total", "counter", "Runs of the timer's tick and of the Pulse relay, by component and outcome."),
    ("taskhooks_run_seconds", "histogram", "Duration of a tick or a relay run, by component."),
    ("taskhooks_run_items_total", "counter", "What runs handled, by component and kind (due, fired, failed, messages, ...)."),
];

/// One series: a metric's name and its labels (`fired_by="schedule",result="created"`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
}

impl Series {
    pub fn new(name: &'static str, labels: &[(&'static str, &str)]) -> Self {
        Series { name, labels: labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect() }
    }

    fn label_text(&self, extra: Option<(&str, &str)>) -> String {
        let mut parts: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        if let Some((k, v)) = extra {
            parts.push(format!("{k}=\"{v}\""));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", parts.join(","))
        }
    }

    /// Its id in the store: `name{labels}`.
    fn id(&self, part: &str) -> String {
        format!("{}{}:{part}", self.name, self.label_text(None))
    }
}

/// Prometheus's label-value escaping.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Whether metrics are kept (`metrics` variable; on unless `off`). Process-wide: a
/// component instance serves one request or run, and sets it first.
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

pub fn set_enabled(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The metrics of one request or run: updates go to one shard.
pub struct Recorder<'a> {
    kv: &'a dyn KeyValue,
    shard: u64,
}

/// The bucket a duration falls in, as its `le` label.
fn bucket_of(d: Duration) -> String {
    let s = d.as_secs_f64();
    BUCKETS.iter().position(|b| s <= *b).map_or_else(|| "+Inf".to_string(), |i| BUCKETS[i].to_string())
}

/// The series that holds a fire's result and both its latency buckets in one counter
/// (`taskhooks_fire{fired_by,result}:r=<le>;c=<le>`, `none` for a step not taken): a fire
/// costs three key-value operations (this and the two sums) instead of five. The
/// exposition sums it into `taskhooks_hook_fires_total` and the two histograms' buckets.
const FIRE: &str = "taskhooks_fire";

/// A fire's metrics: its result, and how long rendering and createTask took.
#[derive(Debug, Clone, PartialEq)]
pub struct FireMetric {
    pub fired_by: &'static str,
    pub result: &'static str,
    pub render: Option<Duration>,
    pub create: Option<Duration>,
}

/// Writes a fire's metrics.
pub fn fire(kv: &dyn KeyValue, fire: &FireMetric) {
    fire_and_request(kv, fire, None);
}

/// Writes a fire's metrics, and with `request` (the API method that fired, and its answer's
/// status) that request's count in the same counter: a trigger's request costs no
/// counter of its own (`;m=<method>;s=<status>`, spread into
/// `taskhooks_api_requests_total` when served).
fn fire_and_request(kv: &dyn KeyValue, fire: &FireMetric, request: Option<(&str, u16)>) {
    if !enabled() {
        return;
    }
    let r = Recorder::new(kv);
    let le = |d: Option<Duration>| d.map_or_else(|| "none".to_string(), bucket_of);
    let (render, create) = (fire.render, fire.create);
    let mut part = format!("r={};c={}", le(render), le(create));
    if let Some((method, status)) = request {
        let _ = write!(part, ";m={method};s={status}");
    }
    let id = Series::new(FIRE, &[("fired_by", fire.fired_by), ("result", fire.result)]).id(&part);
    let sums = [("taskhooks_render_seconds", render), ("taskhooks_create_task_seconds", create)];
    let writes = std::iter::once((id, 1)).chain(sums.iter().filter_map(|(name, d)| {
        d.map(|d| (Series::new(name, &[]).id("sum_us"), i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
    }));
    for (id, delta) in writes {
        if let Err(e) = r.add_to(&id, delta) {
            eprintln!("metrics: {FIRE}: {e}");
            return;
        }
    }
}

/// A payload refused by a hook's `triggerSchema`.
pub fn trigger_schema_rejection(kv: &dyn KeyValue, fired_by: &str) {
    if enabled() {
        Recorder::new(kv).count(&Series::new("taskhooks_trigger_schema_rejections_total", &[("fired_by", fired_by)]), 1);
    }
}

/// An API request's answer, and the fire it made, if any (one counter for both).
pub fn request(kv: &dyn KeyValue, method: &str, status: u16, fired: Option<&FireMetric>) {
    match fired {
        Some(fire) => fire_and_request(kv, fire, Some((method, status))),
        None if enabled() => {
            Recorder::new(kv).count(&Series::new("taskhooks_api_requests_total", &[("method", method), ("status", &status.to_string())]), 1);
        }
        None => {}
    }
}

/// A tick or relay run: its outcome, duration and what it handled.
pub fn run(kv: &dyn KeyValue, component: &str, ok: bool, took: Duration, items: &[(&str, usize)]) {
    if !enabled() {
        return;
    }
    let r = Recorder::new(kv);
    r.count(&Series::new("taskhooks_runs_total", &[("component", component), ("outcome", if ok { "ok" } else { "error" })]), 1);
    r.observe(&Series::new("taskhooks_run_seconds", &[("component", component)]), took);
    for (kind, n) in items.iter().filter(|(_, n)| *n > 0) {
        r.count(&Series::new("taskhooks_run_items_total", &[("component", component), ("kind", kind)]), i64::try_from(*n).unwrap_or(i64::MAX));
    }
}

impl<'a> Recorder<'a> {
    pub fn new(kv: &'a dyn KeyValue) -> Self {
        let mut b = [0u8; 8];
        // Any spread will do; without randomness, shard 0.
        let _ = getrandom::fill(&mut b);
        Recorder { kv, shard: u64::from_le_bytes(b) % SHARDS }
    }

    fn add_to(&self, id: &str, delta: i64) -> Result<(), StorageError> {
        let n = self.kv.increment(&layout::metric(id, self.shard), delta)?;
        // New here: the series is listed (once per shard in its lifetime).
        if n == delta {
            cas::update_json(self.kv, layout::METRICS_INDEX, |index: &mut BTreeSet<String>| index.insert(id.to_string()))?;
        }
        Ok(())
    }

    /// Adds to a counter. A failure is logged, never passed on: a metric does not fail a
    /// fire or a request.
    pub fn count(&self, series: &Series, delta: i64) {
        if let Err(e) = self.add_to(&series.id("total"), delta) {
            eprintln!("metrics: {}: {e}", series.name);
        }
    }

    /// Observes a duration in a histogram.
    pub fn observe(&self, series: &Series, d: Duration) {
        let bucket = bucket_of(d);
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        for (part, delta) in [(format!("le={bucket}"), 1), ("sum_us".to_string(), micros)] {
            if let Err(e) = self.add_to(&series.id(&part), delta) {
                eprintln!("metrics: {}: {e}", series.name);
                return;
            }
        }
    }
}

/// Every series' value, summed over shards: `id -> value`.
fn read_all(kv: &dyn KeyValue) -> Result<BTreeMap<String, i64>, StorageError> {
    let index: BTreeSet<String> = cas::read_json(kv, layout::METRICS_INDEX)?;
    let ids: Vec<&String> = index.iter().collect();
    let keys: Vec<String> = ids.iter().flat_map(|id| (0..SHARDS).map(move |s| layout::metric(id, s))).collect();
    let mut out = BTreeMap::new();
    for (chunk_ids, chunk) in ids.chunks(100).zip(keys.chunks(100 * SHARDS as usize)) {
        let values = cas::get_many(kv, chunk)?;
        for (i, id) in chunk_ids.iter().enumerate() {
            let total = values[i * SHARDS as usize..(i + 1) * SHARDS as usize].iter().flatten().filter_map(|b| cas::counter_value(b)).sum();
            out.insert((*id).clone(), total);
        }
    }
    Ok(out)
}

/// The combined fire series spread into what they count (see [`FIRE`]).
fn spread_fires(values: BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (id, v) in values {
        let Some(rest) = id.strip_prefix(FIRE).filter(|r| r.starts_with('{')) else {
            *out.entry(id).or_default() += v;
            continue;
        };
        let Some((labels, part)) = rest.rsplit_once(':') else { continue };
        *out.entry(format!("taskhooks_hook_fires_total{labels}:total")).or_default() += v;
        let field = |key: &str| part.split(';').find_map(|p| p.strip_prefix(key));
        if let (Some(method), Some(status)) = (field("m="), field("s=")) {
            let series = Series::new("taskhooks_api_requests_total", &[("method", method), ("status", status)]);
            *out.entry(series.id("total")).or_default() += v;
        }
        for (key, name) in [("r=", "taskhooks_render_seconds"), ("c=", "taskhooks_create_task_seconds")] {
            if let Some(le) = part.split(';').find_map(|p| p.strip_prefix(key)).filter(|le| *le != "none") {
                *out.entry(format!("{name}:le={le}")).or_default() += v;
            }
        }
    }
    out
}

/// The Prometheus text exposition (version 0.0.4) of every series.
pub fn exposition(kv: &dyn KeyValue) -> Result<String, StorageError> {
    let values = spread_fires(read_all(kv)?);
    // id = `name{labels}:part`; group by name.
    let mut by_name: BTreeMap<&str, Vec<(&str, &str, i64)>> = BTreeMap::new();
    for (id, v) in &values {
        let Some((series, part)) = id.rsplit_once(':') else { continue };
        let name_end = series.find('{').unwrap_or(series.len());
        by_name.entry(&series[..name_end]).or_default().push((&series[name_end..], part, *v));
    }
    let mut out = String::new();
    for (name, kind, help) in HELP {
        let Some(rows) = by_name.get(name) else { continue };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if kind == "counter" {
            for (labels, _, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
            continue;
        }
        // Histograms: per label set, cumulative buckets, then sum and count.
        let mut sets: BTreeMap<&str, (BTreeMap<String, i64>, i64)> = BTreeMap::new();
        for (labels, part, v) in rows {
            let entry = sets.entry(labels).or_default();
            match part.strip_prefix("le=") {
                Some(le) => *entry.0.entry(le.to_string()).or_default() += v,
                None => entry.1 += v,
            }
        }
        for (labels, (buckets, sum_us)) in sets {
            let with = |le: &str| {
                let inner = labels.trim_start_matches('{').trim_end_matches('}');
                if inner.is_empty() { format!("{{le=\"{le}\"}}") } else { format!("{{{inner},le=\"{le}\"}}") }
            };
            let mut cumulative = 0;
            for b in BUCKETS {
                cumulative += buckets.get(&b.to_string()).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}_bucket{} {cumulative}", with(&b.to_string()));
            }
            cumulative += buckets.get("+Inf").copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{} {cumulative}", with("+Inf"));
            let _ = writeln!(out, "{name}_sum{labels} {}", sum_us as f64 / 1e6);
            let _ = writeln!(out, "{name}_count{labels} {cumulative}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;

    #[test]
    fn counters_and_histograms_add_up_over_shards_and_read_as_prometheus_text() {
        let kv = MemoryStore::default();
        let created = Series::new("taskhooks_hook_fires_total", &[("fired_by", "schedule"), ("result", "created")]);
        for i in 0..20u64 {
            // Each recorder its own shard, as concurrent requests would.
            let r = Recorder { kv: &kv, shard: i % SHARDS };
            r.count(&created, 1);
            r.observe(&Series::new("taskhooks_render_seconds", &[]), Duration::from_micros(700 + i * 1000));
        }
        Recorder::new(&kv).count(&Series::new("taskhooks_api_requests_total", &[("method", "hook"), ("status", "404")]), 3);
        // A fire's one combined counter spreads into its result and both histograms.
        let created = FireMetric { fired_by: "triggerHook", result: "created", render: Some(Duration::from_micros(300)), create: Some(Duration::from_millis(30)) };
        fire(&kv, &created);
        fire(&kv, &FireMetric { result: "failed", create: None, ..created.clone() });
        // A trigger request's count rides on its fire's counter, and is served as its own.
        request(&kv, "triggerHook", 200, Some(&FireMetric { render: None, create: Some(Duration::from_millis(3)), ..created.clone() }));
        request(&kv, "triggerHook", 200, None);
        let text = exposition(&kv).unwrap();
        assert!(text.contains("taskhooks_hook_fires_total{fired_by=\"schedule\",result=\"created\"} 20\n"), "{text}");
        assert!(text.contains("taskhooks_api_requests_total{method=\"hook\",status=\"404\"} 3\n"), "{text}");
        assert!(text.contains("taskhooks_hook_fires_total{fired_by=\"triggerHook\",result=\"created\"} 2\n"), "{text}");
        assert!(text.contains("taskhooks_api_requests_total{method=\"triggerHook\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("taskhooks_hook_fires_total{fired_by=\"triggerHook\",result=\"failed\"} 1\n"), "{text}");
        assert!(text.contains("taskhooks_create_task_seconds_bucket{le=\"0.0025\"} 0\n") && text.contains("taskhooks_create_task_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("taskhooks_create_task_seconds_bucket{le=\"0.025\"} 1\n") && text.contains("taskhooks_create_task_seconds_bucket{le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("taskhooks_create_task_seconds_count 2\n") && text.contains("taskhooks_create_task_seconds_sum 0.033\n"), "{text}");
        assert!(!text.contains("taskhooks_fire{"), "the combined series is not served as such");
        assert!(text.contains("# TYPE taskhooks_render_seconds histogram\n"));
        // 0.7 ms, 1.7 ms, ..., 19.7 ms: 1 at <=1 ms, 2 more at <=2.5 ms, 2 at <=5 ms, 5 at <=10 ms, 10 at <=25 ms.
        // Plus the two fires' 0.3 ms renders.
        for (le, n) in [("0.0005", 2), ("0.001", 3), ("0.0025", 4), ("0.005", 7), ("0.01", 12), ("0.025", 22), ("+Inf", 22)] {
            assert!(text.contains(&format!("taskhooks_render_seconds_bucket{{le=\"{le}\"}} {n}\n")), "{le}: {text}");
        }
        assert!(text.contains("taskhooks_render_seconds_count 22\n"));
        let sum: f64 = text.lines().find(|l| l.starts_with("taskhooks_render_seconds_sum")).unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        assert!((sum - 0.0006 - (0..20).map(|i| 0.0007 + i as f64 * 0.001).sum::<f64>()).abs() < 1e-9, "{sum}");
        // The index lists each counter once, however many shards it has: two counters, the
        // five buckets used and the histogram's sum, then the three fires' combined counters
        // (one with its request), createTask's sum, and the request counted alone.
        let index: BTreeSet<String> = cas::read_json(&kv, layout::METRICS_INDEX).unwrap();
        assert_eq!(index.len(), 2 + 5 + 1 + 3 + 1 + 1, "{index:?}");
    }

    #[test]
    fn label_values_are_escaped() {
        let s = Series::new("taskhooks_runs_total", &[("component", "a\"b\\c\nd")]);
        assert_eq!(s.label_text(None), "{component=\"a\\\"b\\\\c\\nd\"}");
    }
}
