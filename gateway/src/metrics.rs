//! Prometheus metrics of the gateway on a local port (`metrics_listen`):
//! per line requests, timeouts, exceptions, transport errors and skipped
//! polls, requests in the last cycle, outbox depth and refused sensor
//! payloads. A minimal HTTP/1.1 responder: `GET /metrics` only.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::modbus::LineStats;
use crate::mqtt_sensors::SensorHub;
use crate::outbox::Outbox;

/// Outbox gauges read at scrape time; `None` when the database did not answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxGauges {
    pub depth: Option<u64>,
    pub dead_letters: Option<u64>,
}

/// Name, type, help and value of one per-line series.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&LineStats) -> u64,
);

/// What the acquisition loop reports after each cycle; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    lines: Arc<Mutex<BTreeMap<String, LineStats>>>,
}

impl Metrics {
    pub fn record_line(&self, line: &str, stats: &LineStats) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.insert(line.to_owned(), stats.clone());
    }

    /// The Prometheus text for these line stats and gauges. Pure.
    pub fn render(&self, outbox: OutboxGauges, sensor_payloads_refused: u64) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let series: [Series; 6] = [
            (
                "riser_gateway_modbus_requests_total",
                "counter",
                "Modbus requests sent.",
                |s| s.requests,
            ),
            (
                "riser_gateway_modbus_requests_last_cycle",
                "gauge",
                "Modbus requests in the last poll cycle.",
                |s| s.last_cycle_requests,
            ),
            (
                "riser_gateway_modbus_timeouts_total",
                "counter",
                "Requests without an answer in time.",
                |s| s.timeouts,
            ),
            (
                "riser_gateway_modbus_exceptions_total",
                "counter",
                "Answers that were Modbus exceptions.",
                |s| s.exceptions,
            ),
            (
                "riser_gateway_modbus_transport_errors_total",
                "counter",
                "Connection failures, garbage and CRC errors.",
                |s| s.transport_errors,
            ),
            (
                "riser_gateway_modbus_skipped_total",
                "counter",
                "Device polls skipped while a dead device backs off.",
                |s| s.skipped,
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (line, stats) in lines.iter() {
                let _ = writeln!(out, "{name}{{line=\"{line}\"}} {}", get(stats));
            }
        }
        if let Some(depth) = outbox.depth {
            let _ = writeln!(
                out,
                "# HELP riser_gateway_outbox_depth Messages waiting for their PUBACK.\n# TYPE riser_gateway_outbox_depth gauge\nriser_gateway_outbox_depth {depth}"
            );
        }
        if let Some(dead) = outbox.dead_letters {
            let _ = writeln!(
                out,
                "# HELP riser_gateway_outbox_dead_letters Messages too large for the broker, set aside.\n# TYPE riser_gateway_outbox_dead_letters gauge\nriser_gateway_outbox_dead_letters {dead}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP riser_gateway_sensor_payloads_refused_total Wireless sensor payloads refused.\n# TYPE riser_gateway_sensor_payloads_refused_total counter\nriser_gateway_sensor_payloads_refused_total {sensor_payloads_refused}"
        );
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    outbox: Outbox,
    sensors: SensorHub,
    shutdown: CancellationToken,
) {
    loop {
        let (mut stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(error = %error, "metrics listener");
                    continue;
                }
            },
        };
        let mut request = [0u8; 1024];
        let n = match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read(&mut request),
        )
        .await
        {
            Ok(Ok(n)) => n,
            _ => continue,
        };
        let response = if request[..n].starts_with(b"GET /metrics ") {
            let gauges = OutboxGauges {
                depth: outbox.depth().await.ok(),
                dead_letters: outbox.dead_letters().await.ok(),
            };
            let body = metrics.render(gauges, sensors.malformed.load(Ordering::Relaxed));
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
        };
        let _ = stream.write_all(response.as_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_stats_render_as_labelled_prometheus_series() {
        let metrics = Metrics::default();
        let stats = LineStats {
            requests: 40,
            last_cycle_requests: 4,
            timeouts: 2,
            ..LineStats::default()
        };
        metrics.record_line("rs485-1", &stats);
        let text = metrics.render(
            OutboxGauges {
                depth: Some(7),
                dead_letters: Some(0),
            },
            1,
        );
        assert!(
            text.contains("riser_gateway_modbus_requests_last_cycle{line=\"rs485-1\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE riser_gateway_modbus_timeouts_total counter"),
            "{text}"
        );
        assert!(text.contains("riser_gateway_outbox_depth 7"), "{text}");
        assert!(
            text.contains("riser_gateway_sensor_payloads_refused_total 1"),
            "{text}"
        );
    }
}
