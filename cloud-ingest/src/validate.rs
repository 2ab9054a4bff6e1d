//! Sanity checks on what a well-formed message carries, after the wire
//! contract accepted it (topic, version, gateway identity, sequence,
//! finite numbers): a reading or event whose point name, unit, value or
//! time cannot be right is dropped from its message, logged and counted;
//! the rest of the message is stored as usual, and the message itself still
//! counts as received (its sequence number leaves no gap).
//!
//! Times: a gateway time too far in the future is not dropped but placed at
//! the arrival (`store::place`); a time before [`OLDEST`] on a reading the
//! gateway did not flag `unsynced` is a clock that was never set, and one
//! older than [`MAX_AGE`] lies beyond anything an outbox can hold back.

use riser_contract::{ClockFlag, Message};
use time::{Duration, OffsetDateTime, macros::datetime};

/// Longest point name accepted, in bytes.
pub const MAX_POINT_BYTES: usize = 128;

/// Longest unit accepted, in bytes.
pub const MAX_UNIT_BYTES: usize = 16;

/// Largest magnitude a reading may have: no level, pressure, state or
/// counter comes near it; beyond it a register was decoded wrongly.
pub const MAX_MAGNITUDE: f64 = 1e9;

/// No reading is older than this (Riser did not exist before).
pub const OLDEST: OffsetDateTime = datetime!(2020-01-01 00:00 UTC);

/// A reading older than this at arrival is refused: a gateway's outbox
/// holds days, not a year.
pub const MAX_AGE: Duration = Duration::days(400);

/// Why a reading or event was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Point name empty, too long or with control characters.
    Point,
    /// Unit too long or with control characters.
    Unit,
    /// Magnitude beyond [`MAX_MAGNITUDE`].
    Value,
    /// Time before [`OLDEST`] or older than [`MAX_AGE`] at arrival.
    Time,
}

impl Dropped {
    pub const ALL: [Dropped; 4] = [Dropped::Point, Dropped::Unit, Dropped::Value, Dropped::Time];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dropped::Point => "point",
            Dropped::Unit => "unit",
            Dropped::Value => "value",
            Dropped::Time => "time",
        }
    }
}

/// Removes from `message` every reading and event that cannot be right at
/// `arrival`; returns what was removed (reason, point), in order.
pub fn sanitize(message: &mut Message, arrival: OffsetDateTime) -> Vec<(Dropped, String)> {
    let mut dropped = Vec::new();
    match message {
        Message::Telemetry(m) => m.readings.retain(|r| {
            let why = check_point(&r.point)
                .or_else(|| r.unit.as_deref().and_then(check_unit))
                .or_else(|| check_value(r.value))
                .or_else(|| check_time(r.ts, r.clock, arrival));
            keep(why, &r.point, &mut dropped)
        }),
        Message::Events(m) => m.events.retain(|e| {
            let why = check_point(&e.point)
                .or_else(|| check_value(e.value))
                .or_else(|| check_time(e.ts, e.clock, arrival));
            keep(why, &e.point, &mut dropped)
        }),
        Message::Status(_) => {}
    }
    dropped
}

/// [`sanitize`] at the current time, with the dropped logged (one line per
/// message) and counted in `riser_ingest_dropped_total{reason}`.
pub fn drop_implausible(app: &crate::App, topic: &str, message: &mut Message) {
    let dropped = sanitize(message, OffsetDateTime::now_utc());
    if dropped.is_empty() {
        return;
    }
    for (why, _) in &dropped {
        app.metrics.drop_item(*why);
    }
    tracing::warn!(topic = %topic, dropped = ?dropped, "implausible readings or events dropped; the rest of the message is stored");
}

fn keep(why: Option<Dropped>, point: &str, dropped: &mut Vec<(Dropped, String)>) -> bool {
    match why {
        Some(why) => {
            // A name too long to log whole is cut (on a char boundary).
            let mut end = point.len().min(MAX_POINT_BYTES);
            while !point.is_char_boundary(end) {
                end -= 1;
            }
            dropped.push((why, point[..end].to_owned()));
            false
        }
        None => true,
    }
}

fn check_point(point: &str) -> Option<Dropped> {
    (point.is_empty() || point.len() > MAX_POINT_BYTES || point.chars().any(char::is_control))
        .then_some(Dropped::Point)
}

fn check_unit(unit: &str) -> Option<Dropped> {
    (unit.len() > MAX_UNIT_BYTES || unit.chars().any(char::is_control)).then_some(Dropped::Unit)
}

fn check_value(value: Option<f64>) -> Option<Dropped> {
    value
        .is_some_and(|v| v.abs() > MAX_MAGNITUDE)
        .then_some(Dropped::Value)
}

fn check_time(
    ts: OffsetDateTime,
    clock: Option<ClockFlag>,
    arrival: OffsetDateTime,
) -> Option<Dropped> {
    // An unsynced time is replaced by the arrival time when stored.
    if clock == Some(ClockFlag::Unsynced) {
        return None;
    }
    (ts < OLDEST || arrival - ts > MAX_AGE).then_some(Dropped::Time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use riser_contract::{Event, EventKind, Events, Quality, Reading, Telemetry};

    const NOW: OffsetDateTime = datetime!(2026-11-23 08:00 UTC);

    fn reading(point: &str, value: f64, ts: OffsetDateTime) -> Reading {
        Reading {
            point: point.into(),
            ts,
            value: Some(value),
            unit: Some("m".into()),
            quality: Quality::Good,
            exception: None,
            clock: None,
        }
    }

    #[test]
    fn implausible_readings_are_dropped_and_the_rest_kept() {
        let mut message = Message::Telemetry(Telemetry::new(
            "gw-1",
            1,
            vec![
                reading("tank.level", 2.3, NOW),
                reading("", 1.0, NOW),
                reading("bad\u{7}bell", 1.0, NOW),
                reading(&"x".repeat(200), 1.0, NOW),
                Reading {
                    unit: Some("m".repeat(40)),
                    ..reading("riser.pressure", 0.3, NOW)
                },
                reading("riser.pressure", 3.0e12, NOW),
                reading("riser.pressure", 0.31, datetime!(1970-01-01 00:00 UTC)),
                reading("riser.pressure", 0.32, NOW - Duration::days(500)),
                reading("riser.pressure", 0.33, NOW - Duration::days(3)),
            ],
        ));
        let dropped = sanitize(&mut message, NOW);
        let reasons: Vec<_> = dropped.iter().map(|(why, _)| *why).collect();
        assert_eq!(
            reasons,
            [
                Dropped::Point,
                Dropped::Point,
                Dropped::Point,
                Dropped::Unit,
                Dropped::Value,
                Dropped::Time,
                Dropped::Time
            ]
        );
        assert_eq!(dropped[2].1.len(), MAX_POINT_BYTES, "a long name is cut");
        let Message::Telemetry(t) = message else {
            unreachable!()
        };
        let kept: Vec<_> = t.readings.iter().map(|r| r.value).collect();
        assert_eq!(kept, [Some(2.3), Some(0.33)], "a 3-day backlog is fine");
    }

    #[tokio::test]
    async fn a_message_with_an_implausible_reading_stores_the_rest_and_counts_it() {
        let (_dir, app) = crate::test_app().await;
        let now = OffsetDateTime::now_utc();
        let payload = riser_contract::encode(&Telemetry::new(
            "gw-B2",
            1,
            vec![
                reading("tank.level", 2.3, now),
                reading("riser.pressure", 7.0e15, now),
            ],
        ));
        let publish = rumqttc::Publish::new(
            "riser/v1/gw-B2/telemetry",
            rumqttc::QoS::AtLeastOnce,
            payload,
        );
        assert!(crate::consume::handle(&app, &publish).await);
        assert_eq!(app.metrics.dropped(Dropped::Value), 1);
        let stored = app.store.latest("gw-B2").await.unwrap();
        let points: Vec<_> = stored.iter().map(|l| l.point.as_str()).collect();
        assert_eq!(points, ["tank.level"]);
        assert_eq!(
            app.store
                .received_seqs("gw-B2", riser_contract::Stream::Telemetry)
                .await
                .unwrap(),
            [1],
            "the message counts as received: no gap"
        );
    }

    #[test]
    fn an_unsynced_clock_is_not_a_bad_time() {
        let mut message = Message::Telemetry(Telemetry::new(
            "gw-1",
            1,
            vec![Reading {
                clock: Some(ClockFlag::Unsynced),
                ..reading("tank.level", 2.3, datetime!(1970-01-01 00:00 UTC))
            }],
        ));
        assert!(sanitize(&mut message, NOW).is_empty());
    }

    #[test]
    fn events_are_checked_too() {
        let event = |value| Event {
            kind: EventKind::StateChanged,
            point: "pumps.fire_fault".into(),
            ts: NOW,
            value: Some(value),
            quality: Quality::Good,
            clock: None,
        };
        let mut message = Message::Events(Events {
            v: riser_contract::VERSION,
            gateway: "gw-1".into(),
            epoch: 0,
            seq: 1,
            replay: false,
            events: vec![event(1.0), event(-5e10)],
        });
        assert_eq!(
            sanitize(&mut message, NOW),
            [(Dropped::Value, "pumps.fire_fault".to_owned())]
        );
    }
}
