//! Counters exposed at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::store::SequenceState;

#[derive(Default)]
pub struct Metrics {
    pub messages_stored: AtomicU64,
    pub messages_duplicate: AtomicU64,
    /// Stored messages the gateway sent from its backlog.
    pub messages_replayed: AtomicU64,
    pub readings_stored: AtomicU64,
    pub store_errors: AtomicU64,
    /// The events-and-status consumer is connected and subscribed.
    pub mqtt_events_connected: AtomicBool,
    /// The telemetry consumer is connected and subscribed.
    pub mqtt_telemetry_connected: AtomicBool,
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
