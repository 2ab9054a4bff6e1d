//! Counters exposed at `/metrics` in the Prometheus text format.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::store::SequenceState;

#[derive(Default)]
pub struct Metrics {
    pub messages_stored: AtomicU64,
    pub messages_duplicate: AtomicU64,
    /// Stored messages the gateway sent from its backlog.
    pub messages_replayed: AtomicU64,
    pub readings_stored: AtomicU64,
    pub store_errors: AtomicU64,
    /// Commits that lost a lock conflict with another writer (PostgreSQL
    /// deadlock or serialization failure, e.g. between two nodes); their
    /// messages are retried, and counted in `store_errors` too.
    pub store_conflicts: AtomicU64,
    /// From a message's arrival from the broker to the commit of the
    /// verdict change it caused.
    pub verdict_latency: Histogram,
    /// The events-and-status consumer is connected and subscribed.
    pub mqtt_events_connected: AtomicBool,
    /// The telemetry consumer is connected and subscribed.
    pub mqtt_telemetry_connected: AtomicBool,
    /// Rejected messages by reason.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Readings and events dropped from accepted messages, by
    /// `validate::Dropped` (in `Dropped::ALL` order).
    dropped: [AtomicU64; 4],
}

impl Metrics {
    pub fn reject(&self, reason: &'static str) {
        let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        *rejected.entry(reason).or_default() += 1;
    }

    pub fn drop_item(&self, why: crate::validate::Dropped) {
        self.dropped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, why: crate::validate::Dropped) -> u64 {
        self.dropped[why as usize].load(Ordering::Relaxed)
    }

    pub fn rejected(&self, reason: &str) -> u64 {
        let rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        rejected.get(reason).copied().unwrap_or(0)
    }

    /// Both consumer connections are up.
    pub fn mqtt_connected(&self) -> bool {
        self.mqtt_events_connected.load(Ordering::Relaxed)
            && self.mqtt_telemetry_connected.load(Ordering::Relaxed)
    }

    /// Renders every metric; `statuses` are building counts per status,
    /// `sequences` every sequence space in the store.
    pub fn render(&self, statuses: &[(&str, usize)], sequences: &[SequenceState]) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "riser_ingest_messages_stored_total",
            "Messages stored (new sequence numbers).",
            self.messages_stored.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "riser_ingest_messages_duplicate_total",
            "Messages dropped as duplicates by (gateway, stream, epoch, seq).",
            self.messages_duplicate.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "riser_ingest_messages_replayed_total",
            "Messages stored that the gateway sent from its backlog after an outage.",
            self.messages_replayed.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "riser_ingest_readings_stored_total",
            "Readings stored.",
            self.readings_stored.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "riser_ingest_store_errors_total",
            "Messages that could not be stored, per attempt (not acknowledged; retried until stored).",
            self.store_errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "riser_ingest_store_conflicts_total",
            "Commits that lost a lock conflict with another writer (deadlock, serialization failure) and were retried.",
            self.store_conflicts.load(Ordering::Relaxed),
        );
        self.verdict_latency.render(
            &mut out,
            "riser_ingest_verdict_latency_seconds",
            "From a message's arrival from the broker to the commit of the verdict change it caused (changes by the periodic judge not included).",
        );
        let _ = writeln!(
            out,
            "# HELP riser_ingest_messages_rejected_total Messages refused as invalid, by reason.\n# TYPE riser_ingest_messages_rejected_total counter"
        );
        for (reason, n) in self
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "riser_ingest_messages_rejected_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP riser_ingest_dropped_total Readings and events dropped from accepted messages as implausible, by reason.\n# TYPE riser_ingest_dropped_total counter"
        );
        for why in crate::validate::Dropped::ALL {
            let _ = writeln!(
                out,
                "riser_ingest_dropped_total{{reason=\"{}\"}} {}",
                why.as_str(),
                self.dropped(why)
            );
        }
        let mut missing: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for s in sequences {
            *missing
                .entry((s.gateway.as_str(), s.stream.as_str()))
                .or_default() += s.missing();
        }
        let _ = writeln!(
            out,
            "# HELP riser_ingest_sequence_missing Messages below the highest sequence number not (yet) received, all gateways, streams and epochs.\n# TYPE riser_ingest_sequence_missing gauge\nriser_ingest_sequence_missing {}",
            missing.values().sum::<u64>()
        );
        let _ = writeln!(
            out,
            "# HELP riser_ingest_gateway_sequence_missing Messages not (yet) received, by gateway and stream (all epochs).\n# TYPE riser_ingest_gateway_sequence_missing gauge"
        );
        for ((gateway, stream), n) in &missing {
            // Gateway ids are [A-Za-z0-9_-]: nothing to escape.
            let _ = writeln!(
                out,
                "riser_ingest_gateway_sequence_missing{{gateway=\"{gateway}\",stream=\"{stream}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP riser_ingest_mqtt_connected 1 while both consumer connections are connected to the broker.\n# TYPE riser_ingest_mqtt_connected gauge\nriser_ingest_mqtt_connected {}",
            u8::from(self.mqtt_connected())
        );
        let _ = writeln!(
            out,
            "# HELP riser_ingest_mqtt_consumer_connected 1 while the consumer (events: events and status; telemetry) is connected and subscribed.\n# TYPE riser_ingest_mqtt_consumer_connected gauge"
        );
        for (consumer, up) in [
            ("events", &self.mqtt_events_connected),
            ("telemetry", &self.mqtt_telemetry_connected),
        ] {
            let _ = writeln!(
                out,
                "riser_ingest_mqtt_consumer_connected{{consumer=\"{consumer}\"}} {}",
                u8::from(up.load(Ordering::Relaxed))
            );
        }
        let _ = writeln!(
            out,
            "# HELP riser_buildings Buildings by fire-water status.\n# TYPE riser_buildings gauge"
        );
        for (status, n) in statuses {
            let _ = writeln!(out, "riser_buildings{{status=\"{status}\"}} {n}");
        }
        out
    }
}

/// Upper bounds of [`Histogram`]'s buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How many of the latest samples [`Histogram::quantile`] looks at.
const RECENT: usize = 4096;

/// A Prometheus histogram of durations over [`LATENCY_BUCKETS`], and the
/// latest samples for exact quantiles (benchmarks, tests).
#[derive(Default)]
pub struct Histogram {
    /// Samples at or below each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    recent: Mutex<VecDeque<Duration>>,
}

impl Histogram {
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| secs <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(value);
    }

    /// Samples observed.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The latest samples (at most 4096), oldest first.
    pub fn recent(&self) -> Vec<Duration> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().copied().collect()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {count}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
}

/// The `q` quantile (0 to 1) of `samples` (nearest rank), if any.
pub fn quantile(samples: &mut [Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_latency_renders_as_a_cumulative_prometheus_histogram() {
        let metrics = Metrics::default();
        for ms in [3, 40, 40, 700, 400_000] {
            metrics.verdict_latency.observe(Duration::from_millis(ms));
        }
        let text = metrics.render(&[], &[]);
        for line in [
            "# TYPE riser_ingest_verdict_latency_seconds histogram",
            "riser_ingest_verdict_latency_seconds_bucket{le=\"0.005\"} 1",
            "riser_ingest_verdict_latency_seconds_bucket{le=\"0.05\"} 3",
            "riser_ingest_verdict_latency_seconds_bucket{le=\"1\"} 4",
            "riser_ingest_verdict_latency_seconds_bucket{le=\"300\"} 4",
            "riser_ingest_verdict_latency_seconds_bucket{le=\"+Inf\"} 5",
            "riser_ingest_verdict_latency_seconds_sum 400.783",
            "riser_ingest_verdict_latency_seconds_count 5",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        let mut recent = metrics.verdict_latency.recent();
        assert_eq!(quantile(&mut recent, 0.5), Some(Duration::from_millis(40)));
        assert_eq!(
            quantile(&mut recent, 0.99),
            Some(Duration::from_millis(400_000))
        );
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
