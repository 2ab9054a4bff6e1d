//! The acquisition loop: poll every device each cycle, turn state changes
//! into events, and write both to the outbox before anything is sent.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use riser_contract::{ClockFlag, Event, EventKind, Quality, Reading};
use time::OffsetDateTime;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::clock::{self, ClockWatch};
use crate::config::{Config, PointConfig};
use crate::metrics::Metrics;
use crate::modbus::LinePoller;
use crate::mqtt_sensors::SensorHub;
use crate::outbox::{Outbox, OutboxError};

/// Last seen value and quality of each point.
pub type LastSeen = HashMap<String, (Option<f64>, Quality)>;

/// Events for what changed since `last`: every change of quality, and every
/// change of value of the points in `event_points` (alarm and fault states).
/// Updates `last`. Pure: no I/O, no clock.
pub fn detect_events(
    last: &mut LastSeen,
    readings: &[Reading],
    event_points: &HashSet<String>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for reading in readings {
        let previous = last.insert(reading.point.clone(), (reading.value, reading.quality));
        let quality_changed = previous.is_none_or(|(_, q)| q != reading.quality);
        let value_changed = previous.is_none_or(|(v, _)| v != reading.value);
        let kind = if event_points.contains(&reading.point)
            && reading.quality == Quality::Good
            && value_changed
        {
            Some(EventKind::StateChanged)
        } else if quality_changed && (previous.is_some() || reading.quality != Quality::Good) {
            Some(EventKind::QualityChanged)
        } else {
            None
        };
        if let Some(kind) = kind {
            events.push(Event {
                kind,
                point: reading.point.clone(),
                ts: reading.ts,
                value: reading.value,
                quality: reading.quality,
                clock: reading.clock,
            });
        }
    }
    events
}

/// Every configured point with its `{device}.{point}` name.
fn points(config: &Config) -> impl Iterator<Item = (String, &PointConfig)> {
    config.devices.iter().flat_map(|d| {
        d.points
            .iter()
            .map(move |p| (format!("{}.{}", d.name, p.name), p))
    })
}

/// `{device}.{point}` of every point configured with `event = true`.
pub fn event_points(config: &Config) -> HashSet<String> {
    points(config)
        .filter(|(_, p)| p.event)
        .map(|(name, _)| name)
        .collect()
}

/// Report-by-exception for analogue points: a reading goes out when its
/// value moved more than the point's deadband since the last one sent, when
/// its quality or presence changed, or when `max_interval_ms` passed since
/// the last one sent (the heartbeat). Pure: times come from the readings.
#[derive(Debug, Default)]
pub struct Reporter {
    /// 0: every reading goes out.
    max_interval_ms: i64,
    deadbands: HashMap<String, f64>,
    sent: HashMap<String, (Option<f64>, Quality, i64)>,
}

impl Reporter {
    pub fn new(max_interval: Duration, deadbands: HashMap<String, f64>) -> Self {
        Self {
            max_interval_ms: max_interval.as_millis() as i64,
            deadbands,
            sent: HashMap::new(),
        }
    }

    /// The readings of one poll worth sending.
    pub fn filter(&mut self, readings: Vec<Reading>) -> Vec<Reading> {
        if self.max_interval_ms == 0 {
            return readings;
        }
        readings
            .into_iter()
            .filter(|r| {
                let ts = riser_contract::unix_ms(r.ts);
                let deadband = self.deadbands.get(&r.point).copied().unwrap_or(0.0);
                let send = match self.sent.get(&r.point) {
                    None => true,
                    Some((value, quality, at)) => {
                        *quality != r.quality
                            || ts - at >= self.max_interval_ms
                            || ts < *at
                            || match (value, r.value) {
                                (Some(a), Some(b)) => (a - b).abs() > deadband,
                                (None, None) => false,
                                _ => true,
                            }
                    }
                };
                if send {
                    self.sent.insert(r.point.clone(), (r.value, r.quality, ts));
                }
                send
            })
            .collect()
    }
}

/// Per-point deadbands of the configured devices.
fn deadbands(config: &Config) -> HashMap<String, f64> {
    points(config).map(|(name, p)| (name, p.deadband)).collect()
}

/// Polls until `shutdown`. An outbox write failure is logged at ERROR and
/// the cycle's events are kept in memory and retried with the next cycle;
/// the loop goes on.
pub async fn run(
    config: Config,
    outbox: Outbox,
    sensors: SensorHub,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let event_points = event_points(&config);
    let mut lines: Vec<LinePoller> = config
        .lines
        .iter()
        .map(|line| {
            let devices = config
                .devices
                .iter()
                .filter(|d| d.line == line.name)
                .cloned()
                .collect();
            LinePoller::new(line.clone(), devices)
        })
        .collect();
    let mut last = LastSeen::new();
    let mut reporter = Reporter::new(
        Duration::from_secs(config.report.max_interval_secs),
        deadbands(&config),
    );
    let mut clock = ClockWatch::from_config(&config.clock);
    let boot_id = clock::boot_id();
    let mut unwritten_events: Vec<Event> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(config.poll_interval_ms));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Lines run side by side; on each line one request at a time.
        let mut readings: Vec<Reading> = join_all(lines.iter_mut().map(LinePoller::poll))
            .await
            .into_iter()
            .flatten()
            .collect();
        for line in &lines {
            metrics.record_line(line.name(), line.stats());
        }
        if let Some(sensor_config) = &config.mqtt_sensors {
            readings.extend(sensors.readings(sensor_config, OffsetDateTime::now_utc()));
        }
        metrics.record_devices(&readings);

        let wall = OffsetDateTime::now_utc();
        let boot = clock::boot_ms();
        let seen = clock.observe(riser_contract::unix_ms(wall), boot, clock::kernel_synced());
        metrics.record_clock(seen.trusted, clock.jumps);
        if seen.became_trusted {
            match outbox
                .restamp(&boot_id, riser_contract::unix_ms(wall), boot)
                .await
            {
                Ok(0) => tracing::info!(gateway_id = %config.id, "clock trusted"),
                Ok(n) => {
                    tracing::info!(gateway_id = %config.id, restamped = n, "clock trusted; held readings restamped")
                }
                Err(error) => {
                    tracing::error!(gateway_id = %config.id, error = %error, "cannot restamp held readings")
                }
            }
        }
        if let Some(jump_ms) = seen.jump_ms {
            tracing::warn!(gateway_id = %config.id, jump_ms, "wall clock jumped; this cycle's readings are flagged");
        }
        if readings.is_empty() && unwritten_events.is_empty() {
            continue;
        }
        let mut events = detect_events(&mut last, &readings, &event_points);
        // Alarm and fault states travel on the event stream, once per change;
        // telemetry carries the analogue values.
        readings.retain(|r| !event_points.contains(&r.point));
        let mut readings = reporter.filter(readings);
        let flag = if !seen.trusted {
            Some(ClockFlag::Unsynced)
        } else if seen.jump_ms.is_some() {
            Some(ClockFlag::Jumped)
        } else {
            None
        };
        // An alarm is never held back for the clock: it goes at once,
        // flagged, and the cloud uses its arrival time.
        for event in &mut events {
            event.clock = flag.or(event.clock);
        }
        let held = if seen.trusted {
            for reading in &mut readings {
                reading.clock = flag.or(reading.clock);
            }
            None
        } else {
            // Held until the clock is trusted, on the boot clock.
            for reading in &mut readings {
                let age = riser_contract::unix_ms(wall) - riser_contract::unix_ms(reading.ts);
                reading.ts = riser_contract::from_unix_ms(boot - age.max(0)).unwrap_or(reading.ts);
            }
            Some(boot_id.clone())
        };
        unwritten_events.extend(events);
        if let Err(error) = record(&outbox, &mut unwritten_events, readings, held).await {
            metrics.record_write_error();
            tracing::error!(gateway_id = %config.id, error = %error, events_kept = unwritten_events.len(), "cannot write to the outbox; events kept in memory for the next cycle, readings of this cycle lost");
        }
    }
}

/// Writes the events (emptying `events` once they are on disk) and the
/// readings; events and readings are written side by side so they share a
/// commit.
pub(crate) async fn record(
    outbox: &Outbox,
    events: &mut Vec<Event>,
    readings: Vec<Reading>,
    held: Option<String>,
) -> Result<(), OutboxError> {
    let write_events = async {
        if events.is_empty() {
            Ok(0)
        } else {
            outbox.append_events(events.clone()).await
        }
    };
    let (events_written, readings_written) =
        futures::join!(write_events, outbox.append_readings(readings, held));
    events_written?;
    events.clear();
    readings_written
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn reading(point: &str, value: Option<f64>, quality: Quality) -> Reading {
        Reading {
            point: point.into(),
            ts: datetime!(2026-11-22 08:00 UTC),
            value,
            unit: None,
            quality,
            exception: None,
            clock: None,
        }
    }

    #[test]
    fn alarm_states_raise_events_on_change_only() {
        let alarms = HashSet::from(["pumps.fire_fault".to_owned()]);
        let mut last = LastSeen::new();
        let first = detect_events(
            &mut last,
            &[reading("pumps.fire_fault", Some(0.0), Quality::Good)],
            &alarms,
        );
        assert_eq!(first.len(), 1, "the initial state is reported");
        let same = detect_events(
            &mut last,
            &[reading("pumps.fire_fault", Some(0.0), Quality::Good)],
            &alarms,
        );
        assert!(same.is_empty());
        let fault = detect_events(
            &mut last,
            &[reading("pumps.fire_fault", Some(1.0), Quality::Good)],
            &alarms,
        );
        assert_eq!(fault[0].kind, EventKind::StateChanged);
        assert_eq!(fault[0].value, Some(1.0));
    }

    #[test]
    fn analogue_values_raise_events_only_when_quality_changes() {
        let none = HashSet::new();
        let mut last = LastSeen::new();
        assert!(
            detect_events(
                &mut last,
                &[reading("tank.level", Some(2.9), Quality::Good)],
                &none
            )
            .is_empty()
        );
        assert!(
            detect_events(
                &mut last,
                &[reading("tank.level", Some(2.8), Quality::Good)],
                &none
            )
            .is_empty()
        );
        let lost = detect_events(
            &mut last,
            &[reading("tank.level", None, Quality::Unreachable)],
            &none,
        );
        assert_eq!(lost[0].kind, EventKind::QualityChanged);
        assert_eq!(lost[0].quality, Quality::Unreachable);
        let back = detect_events(
            &mut last,
            &[reading("tank.level", Some(2.8), Quality::Good)],
            &none,
        );
        assert_eq!(back[0].quality, Quality::Good);
    }

    fn at(point: &str, secs: i64, value: f64) -> Reading {
        Reading {
            ts: datetime!(2026-11-22 08:00 UTC) + time::Duration::seconds(secs),
            ..reading(point, Some(value), Quality::Good)
        }
    }

    #[test]
    fn steady_values_are_sent_only_as_heartbeats() {
        let mut reporter = Reporter::new(Duration::from_secs(300), HashMap::new());
        let sent: Vec<i64> = (0..=11)
            .filter(|i| {
                !reporter
                    .filter(vec![at("tank.level", i * 60, 3.0)])
                    .is_empty()
            })
            .map(|i| i * 60)
            .collect();
        assert_eq!(sent, [0, 300, 600]);
    }

    #[test]
    fn a_move_beyond_the_deadband_is_sent_at_once_and_drift_within_it_is_not() {
        let deadbands = HashMap::from([("tank.level".to_owned(), 0.01)]);
        let mut reporter = Reporter::new(Duration::from_secs(300), deadbands);
        let values = [3.0, 3.005, 3.009, 3.02, 3.015, 2.5];
        let sent: Vec<f64> = values
            .iter()
            .enumerate()
            .flat_map(|(i, v)| reporter.filter(vec![at("tank.level", i as i64, *v)]))
            .filter_map(|r| r.value)
            .collect();
        assert_eq!(sent, [3.0, 3.02, 2.5]);
    }

    #[test]
    fn a_quality_change_is_sent_even_without_a_value_change() {
        let mut reporter = Reporter::new(Duration::from_secs(300), HashMap::new());
        assert_eq!(reporter.filter(vec![at("p.x", 0, 1.0)]).len(), 1);
        let mut stale = at("p.x", 1, 1.0);
        stale.quality = Quality::Stale;
        assert_eq!(reporter.filter(vec![stale]).len(), 1);
        let lost = Reading {
            value: None,
            quality: Quality::Unreachable,
            ..at("p.x", 2, 0.0)
        };
        assert_eq!(reporter.filter(vec![lost.clone()]).len(), 1);
        assert!(
            reporter
                .filter(vec![Reading {
                    ts: lost.ts + time::Duration::seconds(1),
                    ..lost
                }])
                .is_empty()
        );
    }

    #[test]
    fn with_no_heartbeat_interval_every_reading_is_sent() {
        let mut reporter = Reporter::new(Duration::ZERO, HashMap::new());
        assert_eq!(
            reporter
                .filter(vec![at("p.x", 0, 1.0), at("p.x", 1, 1.0)])
                .len(),
            2
        );
    }
}
