//! Gateway health: what the acquisition loop saw (per line and per device),
//! the clock, and the outbox, assembled into the [`Health`] sent on the
//! retained status topic and served as Prometheus metrics on a local port
//! (`metrics_listen`). A minimal HTTP/1.1 responder: `GET /metrics` only.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use riser_contract::{ClockHealth, DeviceHealth, Health, Quality, Reading};
use time::OffsetDateTime;

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
#[derive(Clone)]
pub struct Metrics {
    lines: Arc<Mutex<BTreeMap<String, LineStats>>>,
    devices: Arc<Mutex<BTreeMap<String, DeviceHealth>>>,
    clock: Arc<Mutex<(bool, u64)>>,
    write_errors: Arc<AtomicU64>,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            lines: Arc::default(),
            devices: Arc::default(),
            clock: Arc::default(),
            write_errors: Arc::default(),
            started: Instant::now(),
        }
    }
}

/// How bad a quality is, for a device's worst point.
fn severity(q: Quality) -> u8 {
    match q {
        Quality::Good => 0,
        Quality::Stale => 1,
        Quality::SensorFault => 2,
        Quality::Exception => 3,
        Quality::Unreachable => 4,
    }
}

impl Metrics {
    pub fn record_line(&self, line: &str, stats: &LineStats) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.insert(line.to_owned(), stats.clone());
    }

    /// Counts one poll per device in `readings` (`{device}.{point}`), an
    /// error when any of its points was unreachable or an exception, and
    /// keeps its worst quality.
    pub fn record_devices(&self, readings: &[Reading]) {
        let mut worst: BTreeMap<&str, Quality> = BTreeMap::new();
        for r in readings {
            let device = r.point.split_once('.').map_or(r.point.as_str(), |(d, _)| d);
            let q = worst.entry(device).or_insert(Quality::Good);
            if severity(r.quality) > severity(*q) {
                *q = r.quality;
            }
        }
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        for (device, quality) in worst {
            let health = devices.entry(device.to_owned()).or_default();
            health.polls += 1;
            if matches!(quality, Quality::Unreachable | Quality::Exception) {
                health.errors += 1;
            }
            health.quality = Some(quality);
        }
    }

    pub fn record_clock(&self, trusted: bool, jumps: u64) {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = (trusted, jumps);
    }

    pub fn record_write_error(&self) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The health report: this process, its devices, clock and outbox.
    pub async fn health(&self, outbox: &Outbox) -> Health {
        let (clock_trusted, jumps) = *self.clock.lock().unwrap_or_else(|e| e.into_inner());
        let now_ms = riser_contract::unix_ms(OffsetDateTime::now_utc());
        let (outbox_health, held) = match outbox.health(now_ms).await {
            Ok(h) => h,
            Err(error) => {
                tracing::warn!(error = %error, "cannot read outbox health");
                Default::default()
            }
        };
        Health {
            uptime_secs: self.started.elapsed().as_secs(),
            outbox: outbox_health,
            devices: self
                .devices
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            disk_free_bytes: outbox.path().parent().and_then(disk_free),
            clock: ClockHealth {
                trusted: clock_trusted,
                jumps,
                held,
            },
        }
    }

    /// The Prometheus text for these line stats, this health and gauges. Pure.
    pub fn render(
        &self,
        health: &Health,
        outbox: OutboxGauges,
        sensor_payloads_refused: u64,
    ) -> String {
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
        let o = &health.outbox;
        let gauges: [(&str, &str, &str, u64); 13] = [
            (
                "riser_gateway_uptime_seconds",
                "gauge",
                "Seconds since the gateway started.",
                health.uptime_secs,
            ),
            (
                "riser_gateway_outbox_readings",
                "gauge",
                "Readings buffered, not yet acknowledged by the broker.",
                o.readings,
            ),
            (
                "riser_gateway_outbox_events",
                "gauge",
                "Event messages buffered, not yet acknowledged.",
                o.events,
            ),
            (
                "riser_gateway_outbox_oldest_age_seconds",
                "gauge",
                "Age of the oldest buffered reading or event.",
                o.oldest_age_secs.unwrap_or(0),
            ),
            (
                "riser_gateway_outbox_bytes",
                "gauge",
                "Bytes of outbox database pages in use.",
                o.bytes,
            ),
            (
                "riser_gateway_outbox_limit_bytes",
                "gauge",
                "Configured outbox size limit.",
                o.limit_bytes,
            ),
            (
                "riser_gateway_outbox_thinned_total",
                "counter",
                "Routine readings thinned out at the size limit.",
                o.thinned,
            ),
            (
                "riser_gateway_outbox_dropped_total",
                "counter",
                "Routine readings dropped at the size limit.",
                o.dropped,
            ),
            (
                "riser_gateway_outbox_write_errors_total",
                "counter",
                "Poll cycles that could not be written.",
                self.write_errors.load(Ordering::Relaxed),
            ),
            (
                "riser_gateway_disk_free_bytes",
                "gauge",
                "Free space where the outbox lives.",
                health.disk_free_bytes.unwrap_or(0),
            ),
            (
                "riser_gateway_clock_trusted",
                "gauge",
                "1 when the wall clock is trusted.",
                u64::from(health.clock.trusted),
            ),
            (
                "riser_gateway_clock_jumps_total",
                "counter",
                "Wall-clock jumps seen.",
                health.clock.jumps,
            ),
            (
                "riser_gateway_clock_held_readings",
                "gauge",
                "Readings held until the clock is trusted.",
                health.clock.held,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        type DeviceSeries = (&'static str, &'static str, fn(&DeviceHealth) -> u64);
        let devices: [DeviceSeries; 2] = [
            (
                "riser_gateway_device_polls_total",
                "Polls of the device.",
                |d| d.polls,
            ),
            (
                "riser_gateway_device_errors_total",
                "Polls where the device was unreachable or answered an exception.",
                |d| d.errors,
            ),
        ];
        for (name, help, get) in devices {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (device, d) in &health.devices {
                let _ = writeln!(out, "{name}{{device=\"{device}\"}} {}", get(d));
            }
        }
        out
    }
}

/// Free bytes on the file system holding `dir`.
pub fn disk_free(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes one struct into valid memory; `path` is a
    // NUL-terminated string that outlives the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
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
            let health = metrics.health(&outbox).await;
            let body = metrics.render(&health, gauges, sensors.malformed.load(Ordering::Relaxed));
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
        metrics.record_devices(&[Reading {
            point: "tank.level".into(),
            ts: OffsetDateTime::UNIX_EPOCH,
            value: None,
            unit: None,
            quality: Quality::Unreachable,
            exception: None,
            clock: None,
        }]);
        let mut health = Health::default();
        health.outbox.thinned = 12;
        health.devices = metrics.devices.lock().unwrap().clone();
        let text = metrics.render(
            &health,
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
            text.contains("riser_gateway_outbox_thinned_total 12"),
            "{text}"
        );
        assert!(
            text.contains("riser_gateway_device_errors_total{device=\"tank\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("riser_gateway_sensor_payloads_refused_total 1"),
            "{text}"
        );
    }
}
