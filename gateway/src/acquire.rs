//! The acquisition loop: poll every device each cycle, turn state changes
//! into events, and write both to the outbox before anything is sent.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use riser_contract::{Event, EventKind, Events, Quality, Reading, Stream, Telemetry, VERSION};
use time::OffsetDateTime;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
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
            });
        }
    }
    events
}

/// `{device}.{point}` of every point configured with `event = true`.
pub fn event_points(config: &Config) -> HashSet<String> {
    config
        .devices
        .iter()
        .flat_map(|d| {
            d.points
                .iter()
                .filter(|p| p.event)
                .map(move |p| format!("{}.{}", d.name, p.name))
        })
        .collect()
}

/// Polls until `shutdown`. An outbox write failure is logged at ERROR (the
/// reading is lost) and the loop goes on.
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
        if readings.is_empty() {
            continue;
        }
        let events = detect_events(&mut last, &readings, &event_points);
        // Alarm and fault states travel on the event stream, once per change;
        // telemetry carries the analogue values.
        readings.retain(|r| !event_points.contains(&r.point));
        if let Err(error) = record(
            &config.id,
            &outbox,
            events,
            readings,
            config.max_readings_per_message,
        )
        .await
        {
            tracing::error!(gateway_id = %config.id, error = %error, "cannot write readings to the outbox; this cycle is lost");
        }
    }
}

async fn record(
    gateway: &str,
    outbox: &Outbox,
    events: Vec<Event>,
    readings: Vec<Reading>,
    per_message: usize,
) -> Result<(), OutboxError> {
    if !events.is_empty() {
        outbox
            .append(Stream::Events, |seq| {
                riser_contract::encode(&Events {
                    v: VERSION,
                    gateway: gateway.to_owned(),
                    seq,
                    events,
                })
            })
            .await?;
    }
    for chunk in readings.chunks(per_message.max(1)) {
        outbox
            .append(Stream::Telemetry, |seq| {
                riser_contract::encode(&Telemetry {
                    v: VERSION,
                    gateway: gateway.to_owned(),
                    seq,
                    readings: chunk.to_vec(),
                })
            })
            .await?;
    }
    Ok(())
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

    #[tokio::test]
    async fn a_large_cycle_is_split_into_messages_of_at_most_n_readings() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
        let readings: Vec<_> = (0..5)
            .map(|i| reading(&format!("p.{i}"), Some(1.0), Quality::Good))
            .collect();
        record("gw-1", &outbox, vec![], readings, 2).await.unwrap();
        let sent = outbox.next(10, &HashSet::new()).await.unwrap();
        let sizes: Vec<usize> = sent
            .iter()
            .map(|e| {
                serde_json::from_slice::<Telemetry>(&e.payload)
                    .unwrap()
                    .readings
                    .len()
            })
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(sent.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    }
}
