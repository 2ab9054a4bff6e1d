//! Building verdicts: pure functions from a building's latest readings to
//! `ok | warning | failing | unknown` with the reasons, each citing its clause.

mod code;
mod message;

pub use code::{
    BuildingClass, CLAUSE_STATIC_PRESSURE, CLAUSE_TANK_VOLUME, required_static_pressure_mpa,
    required_tank_volume_m3,
};
pub use message::{Lang, render};

use std::collections::HashMap;

use riser_contract::Quality;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::registry::Building;

/// A building's fire-water status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ranked: failing first, then warning, unknown, ok.
    Failing,
    Warning,
    Unknown,
    Ok,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Failing => "failing",
            Status::Warning => "warning",
            Status::Unknown => "unknown",
            Status::Ok => "ok",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Failing,
            Status::Warning,
            Status::Unknown,
            Status::Ok,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// What a reason is about; decides its status and its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// Tank effective volume below 5.2.1.
    TankVolumeLow,
    /// Static pressure at the most unfavourable point below 5.2.2.
    StaticPressureLow,
    /// The point's reading is not trustworthy (quality from the gateway).
    CannotVerify,
    /// The point has never reported.
    NoData,
    /// The point has not reported for longer than allowed.
    PointStale,
    /// The gateway said it is offline (or its last-will did).
    GatewayOffline,
}

impl Code {
    pub fn status(self) -> Status {
        match self {
            Code::TankVolumeLow | Code::StaticPressureLow => Status::Failing,
            Code::CannotVerify => Status::Warning,
            Code::NoData | Code::PointStale | Code::GatewayOffline => Status::Unknown,
        }
    }
}

/// Why a building is not `ok`. `message` is filled in per language when served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: Code,
    /// The gateway point, e.g. `tank.level`.
    pub point: Option<String>,
    /// The measured (derived) value: m³ for volume, MPa for pressure.
    pub value: Option<f64>,
    /// What the clause requires, same unit as `value`.
    pub required: Option<f64>,
    pub clause: Option<String>,
    /// Quality of the reading, for `cannot_verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Time of the last reading, for `point_stale`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub since: Option<OffsetDateTime>,
}

/// The latest reading of one point as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PointValue {
    pub value: Option<f64>,
    pub quality: Quality,
    pub ts: OffsetDateTime,
}

/// Tunables of the rules.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A point older than this makes the building `unknown`.
    pub point_stale_after: Duration,
}

/// A building's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub reasons: Vec<Reason>,
}

fn reason(code: Code, point: &str) -> Reason {
    Reason {
        code,
        point: Some(point.to_owned()),
        value: None,
        required: None,
        clause: None,
        quality: None,
        since: None,
    }
}

/// Judges one building from the latest values of its gateway's points.
/// `gateway_online` is `Some(false)` once the gateway said it went offline.
pub fn evaluate(
    building: &Building,
    points: &HashMap<String, PointValue>,
    gateway_online: Option<bool>,
    now: OffsetDateTime,
    settings: &Settings,
) -> Verdict {
    if gateway_online == Some(false) {
        let mut r = reason(Code::GatewayOffline, &building.gateway);
        r.point = None;
        return Verdict {
            status: Status::Unknown,
            reasons: vec![r],
        };
    }
    let class = building.class();
    let mut reasons = Vec::new();

    // Rooftop tank: effective volume = area × (level − dead level).
    if let Some(required) = required_tank_volume_m3(class, building.height_m) {
        let point = &building.points.tank_level;
        match usable(points.get(point), point, now, settings) {
            Ok(level) => {
                let tank = &building.tank;
                let volume = tank.area_m2 * (level - tank.dead_level_m).max(0.0);
                if volume < required {
                    reasons.push(Reason {
                        value: Some(round(volume, 1)),
                        required: Some(required),
                        clause: Some(CLAUSE_TANK_VOLUME.into()),
                        ..reason(Code::TankVolumeLow, point)
                    });
                }
            }
            Err(r) => reasons.push(r),
        }
    }

    // Static pressure at the most unfavourable point.
    let required = required_static_pressure_mpa(class, building.height_m, building.jockey_pump);
    let point = &building.points.static_pressure;
    match usable(points.get(point), point, now, settings) {
        Ok(pressure) if pressure < required => reasons.push(Reason {
            value: Some(round(pressure, 3)),
            required: Some(required),
            clause: Some(CLAUSE_STATIC_PRESSURE.into()),
            ..reason(Code::StaticPressureLow, point)
        }),
        Ok(_) => {}
        Err(r) => reasons.push(r),
    }

    let status = reasons
        .iter()
        .map(|r| r.code.status())
        .min()
        .unwrap_or(Status::Ok);
    Verdict { status, reasons }
}

/// A good, fresh value, or the reason it cannot be used.
fn usable(
    value: Option<&PointValue>,
    point: &str,
    now: OffsetDateTime,
    settings: &Settings,
) -> Result<f64, Reason> {
    let Some(pv) = value else {
        return Err(reason(Code::NoData, point));
    };
    if now - pv.ts > settings.point_stale_after {
        return Err(Reason {
            since: Some(pv.ts),
            ..reason(Code::PointStale, point)
        });
    }
    match (pv.quality, pv.value) {
        (Quality::Good, Some(v)) => Ok(v),
        (quality, _) => Err(Reason {
            quality: Some(quality),
            ..reason(Code::CannotVerify, point)
        }),
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests;
