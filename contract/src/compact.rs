//! The telemetry payload on the wire: a table of the batch's points, a base
//! time, and one short array per reading, so a batch costs a few bytes per
//! reading instead of repeating names, units and timestamps.
//!
//! ```json
//! {"v":1,"gateway":"gw-1","epoch":7,"seq":5,"replay":true,"t0":1795334400000,
//!  "p":["tank.level","riser.pressure"],"u":["m","MPa"],
//!  "r":[[0,0,2.95],[1,0,0.105],[1,60000,null,"unreachable"],[0,60000,2.94,"good",{"clock":"restamped"}]]}
//! ```
//!
//! A reading is `[point index, ms after t0, value or null]`, then the quality
//! when it is not `good` (or when extras follow), then an object of extras
//! (`exception`, `clock`) when there are any. Receivers also accept the
//! verbose form, a `readings` array of [`Reading`] objects.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::{ClockFlag, Quality, Reading, Telemetry};

/// Milliseconds since the Unix epoch.
pub fn unix_ms(ts: OffsetDateTime) -> i64 {
    (ts.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The instant `ms` milliseconds after the Unix epoch, if representable.
pub fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

#[derive(Serialize, Deserialize, Default, PartialEq)]
struct Extras {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exception: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clock: Option<ClockFlag>,
}

impl Extras {
    fn is_empty(&self) -> bool {
        self.exception.is_none() && self.clock.is_none()
    }
}

struct CompactOut {
    point: usize,
    dt: i64,
    value: Option<f64>,
    quality: Quality,
    extras: Extras,
}

impl Serialize for CompactOut {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extras = !self.extras.is_empty();
        let quality = extras || self.quality != Quality::Good;
        let len = 3 + usize::from(quality) + usize::from(extras);
        let mut seq = serializer.serialize_seq(Some(len))?;
        seq.serialize_element(&self.point)?;
        seq.serialize_element(&self.dt)?;
        seq.serialize_element(&self.value)?;
        if quality {
            seq.serialize_element(&self.quality)?;
        }
        if extras {
            seq.serialize_element(&self.extras)?;
        }
        seq.end()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u16,
    gateway: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    epoch: u32,
    seq: u64,
    #[serde(skip_serializing_if = "is_false")]
    replay: bool,
    t0: i64,
    p: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    u: Vec<Option<&'a str>>,
    r: Vec<CompactOut>,
}

impl Serialize for Telemetry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t0 = self
            .readings
            .iter()
            .map(|r| unix_ms(r.ts))
            .min()
            .unwrap_or(0);
        let mut index: HashMap<(&str, Option<&str>), usize> = HashMap::new();
        let mut points = Vec::new();
        let mut units = Vec::new();
        let mut rows = Vec::with_capacity(self.readings.len());
        for r in &self.readings {
            let key = (r.point.as_str(), r.unit.as_deref());
            let point = *index.entry(key).or_insert_with(|| {
                points.push(key.0);
                units.push(key.1);
                points.len() - 1
            });
            rows.push(CompactOut {
                point,
                dt: unix_ms(r.ts) - t0,
                value: r.value,
                quality: r.quality,
                extras: Extras {
                    exception: r.exception,
                    clock: r.clock,
                },
            });
        }
        if units.iter().all(Option::is_none) {
            units.clear();
        }
        WireOut {
            v: self.v,
            gateway: &self.gateway,
            epoch: self.epoch,
            seq: self.seq,
            replay: self.replay,
            t0,
            p: points,
            u: units,
            r: rows,
        }
        .serialize(serializer)
    }
}

struct CompactIn {
    point: usize,
    dt: i64,
    value: Option<f64>,
    quality: Quality,
    extras: Extras,
}

impl<'de> Deserialize<'de> for CompactIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArrayVisitor;
        impl<'de> Visitor<'de> for ArrayVisitor {
            type Value = CompactIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reading array [point, dt_ms, value, quality?, extras?]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CompactIn, A::Error> {
                let point = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let dt = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                let quality = seq.next_element()?.unwrap_or(Quality::Good);
                let extras = seq.next_element()?.unwrap_or_default();
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(6, &self));
                }
                Ok(CompactIn {
                    point,
                    dt,
                    value,
                    quality,
                    extras,
                })
            }
        }
        deserializer.deserialize_seq(ArrayVisitor)
    }
}

/// Either form of a telemetry payload, as received.
#[derive(Deserialize)]
pub(crate) struct WireIn {
    v: u16,
    gateway: String,
    #[serde(default)]
    epoch: u32,
    seq: u64,
    #[serde(default)]
    replay: bool,
    #[serde(default)]
    readings: Option<Vec<Reading>>,
    #[serde(default)]
    t0: Option<i64>,
    #[serde(default)]
    p: Vec<String>,
    #[serde(default)]
    u: Vec<Option<String>>,
    #[serde(default)]
    r: Vec<CompactIn>,
}

impl TryFrom<WireIn> for Telemetry {
    type Error = String;

    fn try_from(wire: WireIn) -> Result<Self, String> {
        let readings = match (wire.readings, wire.t0) {
            (Some(readings), None) => readings,
            (None, Some(t0)) => {
                if !wire.u.is_empty() && wire.u.len() != wire.p.len() {
                    return Err(format!(
                        "`u` has {} units for {} points",
                        wire.u.len(),
                        wire.p.len()
                    ));
                }
                let mut readings = Vec::with_capacity(wire.r.len());
                for (i, row) in wire.r.into_iter().enumerate() {
                    let point = wire.p.get(row.point).ok_or_else(|| {
                        format!("reading {i} names point {} of {}", row.point, wire.p.len())
                    })?;
                    let ts = t0
                        .checked_add(row.dt)
                        .and_then(from_unix_ms)
                        .ok_or_else(|| format!("reading {i} has a time out of range"))?;
                    readings.push(Reading {
                        point: point.clone(),
                        ts,
                        value: row.value,
                        unit: wire.u.get(row.point).cloned().flatten(),
                        quality: row.quality,
                        exception: row.extras.exception,
                        clock: row.extras.clock,
                    });
                }
                readings
            }
            _ => return Err("expected either `readings` or `t0`, `p` and `r`".to_owned()),
        };
        Ok(Telemetry {
            v: wire.v,
            gateway: wire.gateway,
            epoch: wire.epoch,
            seq: wire.seq,
            replay: wire.replay,
            readings,
        })
    }
}
