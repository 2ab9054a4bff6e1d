//! Building verdicts: pure functions from a building's latest readings and
//! its [`RuleState`] to `ok | warning | failing | unknown` with the reasons,
//! each citing its clause. No I/O, no clock: the caller passes `now`.
//!
//! # The rules
//! | code | status | clause | condition |
//! |---|---|---|---|
//! | `tank_volume_low` | failing | GB 50974-2014 5.2.1 | rooftop tank effective volume below the class's minimum |
//! | `tank_volume_falling` | warning | 5.2.1 | the level trend crosses that minimum within the horizon (24 h) |
//! | `fire_pool_volume_low` | failing | GB 50974-2014 4.3.2 | fire pool below its design volume |
//! | `static_pressure_low` | failing | GB 50974-2014 5.2.2 | most unfavourable point below 0.07/0.10/0.15 MPa |
//! | `sprinkler_pressure_low` | failing | 5.2.2 | sprinkler main below 0.10 MPa |
//! | `hydrant_pressure_low` | failing | GB 50974-2014 7.4.12 | hydrant outlet below 0.35 MPa (0.25 multi-storey) while a fire pump runs |
//! | `hydrant_pressure_high` | warning | 7.4.12 | hydrant outlet above 0.50 MPa while a fire pump runs |
//! | `fire_pump_fault` | failing | 消防法 第十六条 | duty fire pump tripped |
//! | `fire_pump_manual` | failing | GB 50974-2014 11.0.1 | duty fire pump not in auto |
//! | `standby_pump_fault`, `standby_pump_manual` | warning | 第十六条, 11.0.1 | the standby pump: the duty pump still works |
//! | `jockey_pump_fault`, `jockey_pump_manual` | warning | 第十六条, 11.0.1 | where the building has a jockey pump |
//! | `jockey_pump_cycling` | warning | GB 50974-2014 5.3.4 | more than 15 starts an hour: a leak |
//! | `panel_fault`, `panel_disabled` | warning | 第十六条, 第二十八条 | the alarm panel in fault or with points disabled (屏蔽) |
//! | `panel_mains_fault`, `panel_backup_fault` | warning | GB 50116-2013 10.1.1 | panel on failed mains or backup power |
//! | `fire_alarm` | warning | GB 26875.1-2011 4.1.2.1 | a fire alarm (shown at once) |
//! | `cannot_verify` | warning | | a reading the gateway marked bad, or outside its plausible range |
//! | `no_data`, `point_stale`, `gateway_offline` | unknown | | |
//! | `maintenance` | ok | | maintenance mode: page no one |
//!
//! `failing` means the water would not get up as the code requires: no
//! water, no pressure, or the pump that delivers it will not start. Panel
//! conditions and a fire alarm are `warning`: the alarm system is degraded
//! or reports, but the water supply itself is intact (the fire pumps also
//! start from their own pressure switches, GB 50974-2014 11.0.4), and fire
//! alarms reach the monitoring centre through the transmission device
//! within 10 s, not through these rules.
//!
//! # Durations, hysteresis and what the caller must do
//! Each condition must hold for its [`Hold::for_secs`] (from the time of the
//! reading that first showed it) before it counts, and it stops counting
//! only after [`Hold::clear_secs`] beyond its hysteresis band
//! ([`Tuning`]). Meanwhile the reason stays with `current: false`.
//!
//! For alerting: page only for [`Verdict::pageable`] — reasons that are
//! `current` (the latest reading still shows them), not in maintenance.
//! Judge with `now` = the wall clock, never a replayed reading's time.
//! After a gateway's outage its backfilled readings do not make the latest
//! values older (the store keeps the newest), so a condition that began and
//! ended inside the backlog never reaches a verdict: it belongs in history
//! and reports, not in a page. A condition that is still true carries
//! `since`, the time of the reading that first showed it, which may lie
//! inside the outage: say "since 03:12" in the page rather than "now".
//! Keep the [`RuleState`] between evaluations (persist it as JSON); a lost
//! state only means conditions wait out their duration again.

mod check;
mod code;
mod message;
mod settings;
mod state;

pub use code::{
    BuildingClass, CLAUSE_ALARM_POWER, CLAUSE_FACILITIES_INTACT, CLAUSE_FIRE_ALARM,
    CLAUSE_FIRE_POOL_VOLUME, CLAUSE_HYDRANT_PRESSURE, CLAUSE_JOCKEY_STARTS, CLAUSE_NO_DISABLING,
    CLAUSE_PUMP_AUTO, CLAUSE_STATIC_PRESSURE, CLAUSE_TANK_VOLUME, HYDRANT_MAX_MPA,
    HYDRANT_REDUCER_MPA, JOCKEY_MAX_STARTS_PER_HOUR, SPRINKLER_MIN_MPA,
    required_hydrant_pressure_mpa, required_static_pressure_mpa, required_tank_volume_m3,
};
pub use message::{Lang, render};
pub use settings::{Hold, Settings, Tuning};
pub use state::RuleState;

use std::collections::HashMap;

use riser_contract::Quality;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::registry::Building;

/// A building's fire-water status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// Tank effective volume below 5.2.1.
    TankVolumeLow,
    /// The tank level's trend reaches the 5.2.1 volume within the horizon.
    TankVolumeFalling,
    /// Fire pool effective volume below its design volume.
    FirePoolVolumeLow,
    /// Static pressure at the most unfavourable point below 5.2.2.
    StaticPressureLow,
    /// Sprinkler main below 0.10 MPa (5.2.2).
    SprinklerPressureLow,
    /// Hydrant outlet below 7.4.12's minimum while a fire pump runs.
    HydrantPressureLow,
    /// Hydrant outlet above 0.50 MPa while a fire pump runs.
    HydrantPressureHigh,
    /// Duty fire pump tripped.
    FirePumpFault,
    /// Duty fire pump not in auto.
    FirePumpManual,
    /// Standby fire pump tripped.
    StandbyPumpFault,
    /// Standby fire pump not in auto.
    StandbyPumpManual,
    /// Jockey pump tripped.
    JockeyPumpFault,
    /// Jockey pump not in auto.
    JockeyPumpManual,
    /// Jockey pump starting too often (a leak).
    JockeyPumpCycling,
    /// Fire alarm panel in fault.
    PanelFault,
    /// Panel points disabled (屏蔽).
    PanelDisabled,
    /// Panel mains power failed.
    PanelMainsFault,
    /// Panel backup power failed.
    PanelBackupFault,
    /// A fire alarm (火警).
    FireAlarm,
    /// The point's reading is not trustworthy (quality from the gateway,
    /// or a value outside what the point can plausibly read).
    CannotVerify,
    /// The point has never reported.
    NoData,
    /// The point has not reported for longer than allowed.
    PointStale,
    /// The gateway said it is offline (or its last-will did).
    GatewayOffline,
    /// Maintenance mode until `until`: shown, never paged.
    Maintenance,
}

impl Code {
    pub fn status(self) -> Status {
        use Code::*;
        match self {
            TankVolumeLow | FirePoolVolumeLow | StaticPressureLow | SprinklerPressureLow
            | HydrantPressureLow | FirePumpFault | FirePumpManual => Status::Failing,
            TankVolumeFalling | HydrantPressureHigh | StandbyPumpFault | StandbyPumpManual
            | JockeyPumpFault | JockeyPumpManual | JockeyPumpCycling | PanelFault
            | PanelDisabled | PanelMainsFault | PanelBackupFault | FireAlarm | CannotVerify => {
                Status::Warning
            }
            NoData | PointStale | GatewayOffline => Status::Unknown,
            Maintenance => Status::Ok,
        }
    }
}

fn yes() -> bool {
    true
}

/// Why a building is not `ok`. `message` is filled in per language when served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: Code,
    /// The gateway point, e.g. `tank.level`.
    pub point: Option<String>,
    /// The measured (derived) value: m³ for volumes, MPa for pressures,
    /// starts for the jockey pump.
    pub value: Option<f64>,
    /// What the clause requires, same unit as `value` (a minimum, or a
    /// maximum for `hydrant_pressure_high` and `jockey_pump_cycling`).
    pub required: Option<f64>,
    pub clause: Option<String>,
    /// Quality of the reading, for `cannot_verify` (absent when the value
    /// itself is implausible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// When the condition began: the time of the reading that first showed
    /// it; for `point_stale`, the time of the last reading.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub since: Option<OffsetDateTime>,
    /// The latest reading still shows the condition. `false` while a
    /// condition that went away waits out its clear-duration, or, for the
    /// hydrant outlet, when it was found during the last pump run.
    #[serde(default = "yes")]
    pub current: bool,
    /// `tank_volume_falling`: hours until the projected crossing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<f64>,
    /// `maintenance`: when it ends.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub until: Option<OffsetDateTime>,
}

impl Reason {
    pub fn new(code: Code, point: Option<&str>) -> Self {
        Self {
            code,
            point: point.map(str::to_owned),
            value: None,
            required: None,
            clause: None,
            quality: None,
            since: None,
            current: true,
            hours: None,
            until: None,
        }
    }
}

/// The latest reading of one point as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PointValue {
    pub value: Option<f64>,
    pub quality: Quality,
    pub ts: OffsetDateTime,
}

/// A building's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    /// Failing first, then warning, unknown; a `maintenance` reason last.
    pub reasons: Vec<Reason>,
}

impl Verdict {
    /// The end of maintenance mode, if the building is in it (then no
    /// reason is to be paged).
    pub fn maintenance_until(&self) -> Option<OffsetDateTime> {
        self.reasons
            .iter()
            .find(|r| r.code == Code::Maintenance)
            .and_then(|r| r.until)
    }

    /// The reasons alerting may page for: current, not `ok`-level, none in
    /// maintenance mode.
    pub fn pageable(&self) -> Vec<&Reason> {
        if self.maintenance_until().is_some() {
            return Vec::new();
        }
        self.reasons
            .iter()
            .filter(|r| r.current && r.code.status() != Status::Ok)
            .collect()
    }
}

/// What the cloud knows of a building's gateway link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// From its last status message (`Some(false)` after it said it went
    /// offline or its last-will arrived); `None` if it never sent one.
    pub online: Option<bool>,
    /// When anything from it last arrived.
    pub last_seen: Option<OffsetDateTime>,
}

impl From<Option<bool>> for Link {
    fn from(online: Option<bool>) -> Self {
        Self {
            online,
            last_seen: None,
        }
    }
}

impl Link {
    /// `Some(since)` when the gateway counts as offline at `now`: it said
    /// so, or nothing has arrived from it for `silent_after` (`since` is
    /// then the last arrival; unknown for a last-will without a time).
    fn offline(
        &self,
        now: OffsetDateTime,
        silent_after: time::Duration,
    ) -> Option<Option<OffsetDateTime>> {
        let silent = self.last_seen.is_some_and(|t| now - t > silent_after);
        (self.online == Some(false) || silent).then_some(self.last_seen)
    }
}

/// Judges one building from the latest values of its gateway's points and
/// what the rules remember of it (`state`, updated in place). A gateway
/// that is offline ([`Link`]) makes the building `unknown`; the state then
/// stays as it was.
pub fn evaluate(
    building: &Building,
    points: &HashMap<String, PointValue>,
    link: impl Into<Link>,
    now: OffsetDateTime,
    settings: &Settings,
    state: &mut RuleState,
) -> Verdict {
    let maintenance = state.maintenance(now);
    let mut reasons = if let Some(since) = link.into().offline(now, settings.gateway_silent_after) {
        vec![Reason {
            since,
            ..Reason::new(Code::GatewayOffline, None)
        }]
    } else {
        check::all(building, points, now, settings, state)
    };
    reasons.sort_by_key(|r| r.code.status());
    if let Some(until) = maintenance {
        reasons.push(Reason {
            until: Some(until),
            ..Reason::new(Code::Maintenance, None)
        });
    }
    let status = reasons
        .iter()
        .map(|r| r.code.status())
        .min()
        .unwrap_or(Status::Ok);
    Verdict { status, reasons }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests;
