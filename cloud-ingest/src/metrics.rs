//! Counters exposed at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub messages_stored: AtomicU64,
    pub messages_duplicate: AtomicU64,
    pub readings_stored: AtomicU64,
    pub store_errors: AtomicU64,
    pub mqtt_connected: AtomicBool,
    /// Rejected messages by reason.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn reject(&self, reason: &'static str) {
        let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        *rejected.entry(reason).or_default() += 1;
    }

    pub fn rejected(&self, reason: &str) -> u64 {
        let rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        rejected.get(reason).copied().unwrap_or(0)
    }

    /// Renders every metric; `statuses` are building counts per status.
    pub fn render(&self, statuses: &[(&str, usize)]) -> String {
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
            "Messages dropped as duplicates by (gateway, stream, seq).",
            self.messages_duplicate.load(Ordering::Relaxed),
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
            "Messages that could not be stored (not acknowledged; the broker redelivers).",
            self.store_errors.load(Ordering::Relaxed),
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
            "# HELP riser_ingest_mqtt_connected 1 while connected to the broker.\n# TYPE riser_ingest_mqtt_connected gauge\nriser_ingest_mqtt_connected {}",
            u8::from(self.mqtt_connected.load(Ordering::Relaxed))
        );
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
