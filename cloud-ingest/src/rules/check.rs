//! The rules themselves, one method per clause: read the point, compare
//! with what the clause requires, and let the [`RuleState`] decide whether
//! the condition has lasted long enough to count.

use std::collections::{HashMap, HashSet};

use riser_contract::Quality;
use time::OffsetDateTime;

use super::code::{
    CLAUSE_ALARM_POWER, CLAUSE_FACILITIES_INTACT, CLAUSE_FIRE_ALARM, CLAUSE_FIRE_POOL_VOLUME,
    CLAUSE_HYDRANT_PRESSURE, CLAUSE_JOCKEY_STARTS, CLAUSE_NO_DISABLING, CLAUSE_PUMP_AUTO,
    CLAUSE_STATIC_PRESSURE, CLAUSE_TANK_VOLUME, HYDRANT_MAX_MPA, SPRINKLER_MIN_MPA,
    required_hydrant_pressure_mpa, required_static_pressure_mpa, required_tank_volume_m3,
};
use super::settings::{Hold, Settings};
use super::state::{RuleState, Seen, hours_until};
use super::{Code, PointValue, Reason, round};
use crate::registry::Building;

/// Runs every rule that applies to `building`.
pub(super) fn all(
    building: &Building,
    points: &HashMap<String, PointValue>,
    now: OffsetDateTime,
    settings: &Settings,
    state: &mut RuleState,
) -> Vec<Reason> {
    let mut judge = Judge {
        points,
        now,
        settings,
        state,
        looked_at: HashSet::new(),
        reasons: Vec::new(),
    };
    judge.tank(building);
    judge.fire_pool(building);
    judge.static_pressure(building);
    judge.sprinkler(building);
    judge.hydrant(building);
    judge.pumps(building);
    judge.panel(building);
    let Judge {
        looked_at, reasons, ..
    } = judge;
    state.retain_conditions(|key| looked_at.contains(key));
    reasons
}

/// A point as the rules can use it.
enum Read {
    /// A good, fresh, plausible value and the time it was read.
    Value(f64, OffsetDateTime),
    /// Not usable; the reason (no data, stale, cannot verify) is recorded.
    Problem,
    /// Not monitored: unmapped, or an optional point never reported.
    Absent,
}

/// What a point is expected to read.
#[derive(Clone, Copy)]
enum Kind {
    /// An analogue value within `[min, max]`; aged by `point_stale_after`.
    Analog { min: f64, max: f64 },
    /// A state bit, 0 or 1; sent only on change, so never aged.
    Bit,
}

fn below(value: f64, minimum: f64, band: f64) -> Seen {
    if value < minimum {
        Seen::Violated
    } else if value < minimum + band {
        Seen::Marginal
    } else {
        Seen::Clear
    }
}

fn above(value: f64, maximum: f64, band: f64) -> Seen {
    if value > maximum {
        Seen::Violated
    } else if value > maximum - band {
        Seen::Marginal
    } else {
        Seen::Clear
    }
}

fn key(code: Code, point: &str) -> String {
    let code = serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{code}:{point}")
}

struct Judge<'a> {
    points: &'a HashMap<String, PointValue>,
    now: OffsetDateTime,
    settings: &'a Settings,
    state: &'a mut RuleState,
    /// Condition keys looked at; the others are forgotten afterwards.
    looked_at: HashSet<String>,
    reasons: Vec<Reason>,
}

impl Judge<'_> {
    fn push(&mut self, reason: Reason) {
        if !self
            .reasons
            .iter()
            .any(|r| r.code == reason.code && r.point == reason.point)
        {
            self.reasons.push(reason);
        }
    }

    /// Reads `point`. `expected`: a point that never reported is `no_data`
    /// rather than not installed.
    fn read(&mut self, point: &str, expected: bool, kind: Kind) -> Read {
        if point.is_empty() {
            return Read::Absent;
        }
        let Some(pv) = self.points.get(point) else {
            if expected {
                self.push(Reason::new(Code::NoData, Some(point)));
                return Read::Problem;
            }
            return Read::Absent;
        };
        if matches!(kind, Kind::Analog { .. }) && self.now - pv.ts > self.settings.point_stale_after
        {
            self.push(Reason {
                since: Some(pv.ts),
                ..Reason::new(Code::PointStale, Some(point))
            });
            return Read::Problem;
        }
        let plausible = |v: f64| match kind {
            Kind::Analog { min, max } => v.is_finite() && (min..=max).contains(&v),
            Kind::Bit => v == 0.0 || v == 1.0,
        };
        let problem = match (pv.quality, pv.value) {
            (Quality::Good, Some(v)) if plausible(v) => None,
            (Quality::Good, Some(v)) => Some((None, Some(v))),
            (quality, _) => Some((Some(quality), None)),
        };
        let key = key(Code::CannotVerify, point);
        self.looked_at.insert(key.clone());
        let seen = if problem.is_some() {
            Seen::Violated
        } else {
            Seen::Clear
        };
        let shown = self
            .state
            .observe(&key, seen, pv.ts, None, self.now, Hold::ZERO);
        match (problem, pv.value) {
            (None, Some(v)) => Read::Value(v, pv.ts.min(self.now)),
            (Some((quality, value)), _) => {
                self.push(Reason {
                    quality,
                    value,
                    since: shown.map(|s| s.since),
                    ..Reason::new(Code::CannotVerify, Some(point))
                });
                Read::Problem
            }
            (None, None) => unreachable!("a good reading without a value is a problem"),
        }
    }

    fn analog(&mut self, point: &str, expected: bool, min: f64, max: f64) -> Read {
        self.read(point, expected, Kind::Analog { min, max })
    }

    fn pressure(&mut self, point: &str, expected: bool) -> Read {
        let [min, max] = self.settings.tuning.pressure_plausible_mpa;
        self.analog(point, expected, min, max)
    }

    fn bit(&mut self, point: &str) -> Read {
        self.read(point, false, Kind::Bit)
    }

    /// Moves the condition `template.code` at `point` on; shows it if it
    /// counts, with `value` as measured.
    fn condition(
        &mut self,
        template: Reason,
        point: &str,
        seen: Seen,
        at: OffsetDateTime,
        value: Option<f64>,
        hold: Hold,
    ) -> Option<bool> {
        let key = key(template.code, point);
        self.looked_at.insert(key.clone());
        let shown = self.state.observe(&key, seen, at, value, self.now, hold)?;
        self.push(Reason {
            point: Some(point.to_owned()),
            value: shown.value,
            since: Some(shown.since),
            current: shown.current,
            ..template
        });
        Some(shown.current)
    }

    /// Marks a condition whose reading is unusable: a counted one is kept.
    fn unknown(&mut self, code: Code, point: &str) {
        let key = key(code, point);
        self.looked_at.insert(key.clone());
        self.state
            .observe(&key, Seen::Unknown, self.now, None, self.now, Hold::ZERO);
    }

    /// Rooftop tank: effective volume = area × (level − dead level) against
    /// 5.2.1, and the level's trend towards it.
    fn tank(&mut self, b: &Building) {
        let Some(required) = required_tank_volume_m3(b.class(), b.height_m) else {
            return;
        };
        let settings = self.settings;
        let tuning = &settings.tuning;
        let tank = &b.tank;
        let point = b.points.tank_level.as_str();
        let margin = tuning.level_plausible_margin_m;
        let (level, at) = match self.analog(point, true, -margin, tank.height_m + margin) {
            Read::Value(level, at) => (level, at),
            Read::Problem => {
                self.unknown(Code::TankVolumeLow, point);
                self.unknown(Code::TankVolumeFalling, point);
                return;
            }
            Read::Absent => return,
        };
        let volume = tank.area_m2 * (level - tank.dead_level_m).max(0.0);
        let template = Reason {
            required: Some(required),
            clause: Some(CLAUSE_TANK_VOLUME.into()),
            ..Reason::new(Code::TankVolumeLow, None)
        };
        let seen = below(volume, required, tuning.tank_band_m3);
        let low = self.condition(
            template.clone(),
            point,
            seen,
            at,
            Some(round(volume, 1)),
            tuning.tank_low,
        );

        self.state.push_level(at, level, tuning);
        let floor_m = tank.dead_level_m + required / tank.area_m2;
        let hours = match self.state.level_slope(tuning) {
            Some(slope) if volume >= required => hours_until(level, floor_m, slope),
            _ => None,
        };
        let horizon_h = tuning.trend_horizon_secs as f64 / 3600.0;
        let projected = hours.filter(|h| *h <= horizon_h);
        let seen = match projected {
            Some(_) if low.is_none() => Seen::Violated,
            _ => Seen::Clear,
        };
        let falling = Reason {
            code: Code::TankVolumeFalling,
            hours: projected.map(|h| round(h, 1)),
            ..template
        };
        self.condition(
            falling,
            point,
            seen,
            at,
            Some(round(volume, 1)),
            tuning.trend,
        );
    }

    /// Fire pool against the volume its design requires.
    fn fire_pool(&mut self, b: &Building) {
        let Some(pool) = &b.points.fire_pool else {
            return;
        };
        let tuning = &self.settings.tuning;
        let (margin, band, hold) = (
            tuning.level_plausible_margin_m,
            tuning.pool_band_m3,
            tuning.pool_low,
        );
        let point = pool.level.as_str();
        match self.analog(point, true, -margin, pool.height_m + margin) {
            Read::Value(level, at) => {
                let volume = pool.area_m2 * (level - pool.dead_level_m).max(0.0);
                let template = Reason {
                    required: Some(pool.required_volume_m3),
                    clause: Some(CLAUSE_FIRE_POOL_VOLUME.into()),
                    ..Reason::new(Code::FirePoolVolumeLow, None)
                };
                let seen = below(volume, pool.required_volume_m3, band);
                self.condition(template, point, seen, at, Some(round(volume, 1)), hold);
            }
            Read::Problem => self.unknown(Code::FirePoolVolumeLow, point),
            Read::Absent => {}
        }
    }

    /// A pressure that must stay at or above `required` (5.2.2).
    fn minimum_pressure(
        &mut self,
        code: Code,
        point: &str,
        expected: bool,
        required: f64,
        hold: Hold,
    ) {
        let band = self.settings.tuning.pressure_band_mpa;
        match self.pressure(point, expected) {
            Read::Value(p, at) => {
                let template = Reason {
                    required: Some(required),
                    clause: Some(CLAUSE_STATIC_PRESSURE.into()),
                    ..Reason::new(code, None)
                };
                let seen = below(p, required, band);
                self.condition(template, point, seen, at, Some(round(p, 3)), hold);
            }
            Read::Problem => self.unknown(code, point),
            Read::Absent => {}
        }
    }

    /// Static pressure at the most unfavourable point.
    fn static_pressure(&mut self, b: &Building) {
        let required = required_static_pressure_mpa(b.class(), b.height_m, b.jockey_pump);
        let hold = self.settings.tuning.static_pressure_low;
        let point = b.points.static_pressure.clone();
        self.minimum_pressure(Code::StaticPressureLow, &point, true, required, hold);
    }

    /// Sprinkler main, where the building has the point.
    fn sprinkler(&mut self, b: &Building) {
        let hold = self.settings.tuning.sprinkler_pressure_low;
        let point = b.points.sprinkler_pressure.clone();
        self.minimum_pressure(
            Code::SprinklerPressureLow,
            &point,
            false,
            SPRINKLER_MIN_MPA,
            hold,
        );
    }

    /// Whether a fire pump (duty or standby) runs: `Some(Some(time))` of
    /// the reading showing it running, `Some(None)` if none runs (or the
    /// building has no such bits), `None` if a bit cannot be read.
    fn pump_running(&mut self, b: &Building) -> Option<Option<OffsetDateTime>> {
        let mut unknown = false;
        for point in [&b.points.fire_pump_running, &b.points.standby_pump_running] {
            match self.bit(point) {
                Read::Value(1.0, at) => return Some(Some(at)),
                Read::Value(..) => {}
                Read::Problem => unknown = true,
                Read::Absent => {}
            }
        }
        (!unknown).then_some(None)
    }

    /// Hydrant outlet against 7.4.12's dynamic pressure bounds, tested
    /// while a fire pump runs (or always, if so tuned).
    fn hydrant(&mut self, b: &Building) {
        let point = b.points.hydrant_pressure.clone();
        let tuning = &self.settings.tuning;
        let (band, hold, always) = (
            tuning.hydrant_band_mpa,
            tuning.hydrant_pressure,
            tuning.hydrant_always_dynamic,
        );
        let (p, at) = match self.pressure(&point, false) {
            Read::Value(p, at) => (p, at),
            Read::Problem => {
                self.unknown(Code::HydrantPressureLow, &point);
                self.unknown(Code::HydrantPressureHigh, &point);
                return;
            }
            Read::Absent => return,
        };
        let running = if always {
            Some(Some(at))
        } else {
            self.pump_running(b)
        };
        let minimum = required_hydrant_pressure_mpa(b.class());
        let (low, high, at) = match running {
            Some(Some(started)) => (
                below(p, minimum, band),
                above(p, HYDRANT_MAX_MPA, band),
                at.max(started),
            ),
            Some(None) => (Seen::Untestable, Seen::Untestable, at),
            None => (Seen::Unknown, Seen::Unknown, at),
        };
        let clause = Some(CLAUSE_HYDRANT_PRESSURE.to_owned());
        let value = Some(round(p, 3));
        let template = Reason {
            required: Some(minimum),
            clause: clause.clone(),
            ..Reason::new(Code::HydrantPressureLow, None)
        };
        self.condition(template, &point, low, at, value, hold);
        let template = Reason {
            required: Some(HYDRANT_MAX_MPA),
            clause,
            ..Reason::new(Code::HydrantPressureHigh, None)
        };
        self.condition(template, &point, high, at, value, hold);
    }

    /// A state bit whose `1` is the condition.
    fn bit_condition(&mut self, code: Code, point: &str, clause: &str, hold: Hold) {
        match self.bit(point) {
            Read::Value(v, at) => {
                let seen = if v == 1.0 {
                    Seen::Violated
                } else {
                    Seen::Clear
                };
                let template = Reason {
                    clause: Some(clause.to_owned()),
                    ..Reason::new(code, None)
                };
                self.condition(template, point, seen, at, None, hold);
            }
            Read::Problem => self.unknown(code, point),
            Read::Absent => {}
        }
    }

    /// A pump out of auto: its auto bit reads 0 or its manual bit 1.
    fn manual(&mut self, code: Code, auto: &str, manual: &str) {
        let hold = self.settings.tuning.pump_manual;
        let point = if auto.is_empty() { manual } else { auto };
        let mut seen: Option<(Seen, OffsetDateTime)> = None;
        let mut unknown = false;
        for (bit, manual_when) in [(auto, 0.0), (manual, 1.0)] {
            match self.bit(bit) {
                Read::Value(v, at) if v == manual_when => {
                    seen = Some((Seen::Violated, at));
                    break;
                }
                Read::Value(_, at) => seen = seen.or(Some((Seen::Clear, at))),
                Read::Problem => unknown = true,
                Read::Absent => {}
            }
        }
        let template = Reason {
            clause: Some(CLAUSE_PUMP_AUTO.into()),
            ..Reason::new(code, None)
        };
        match seen {
            Some((Seen::Violated, at)) => {
                self.condition(template, point, Seen::Violated, at, None, hold);
            }
            _ if unknown => self.unknown(code, point),
            Some((seen, at)) => {
                self.condition(template, point, seen, at, None, hold);
            }
            None => {}
        }
    }

    /// Duty and standby fire pumps; the jockey pump where the building has one.
    fn pumps(&mut self, b: &Building) {
        let p = &b.points;
        let tuning = &self.settings.tuning;
        let (fault, cycling) = (tuning.pump_fault, tuning.jockey_cycling);
        let intact = CLAUSE_FACILITIES_INTACT;
        self.bit_condition(Code::FirePumpFault, &p.fire_pump_fault, intact, fault);
        self.manual(Code::FirePumpManual, &p.fire_pump_auto, &p.fire_pump_manual);
        self.bit_condition(Code::StandbyPumpFault, &p.standby_pump_fault, intact, fault);
        self.manual(
            Code::StandbyPumpManual,
            &p.standby_pump_auto,
            &p.standby_pump_manual,
        );
        if !b.jockey_pump {
            return;
        }
        self.bit_condition(Code::JockeyPumpFault, &p.jockey_pump_fault, intact, fault);
        self.manual(
            Code::JockeyPumpManual,
            &p.jockey_pump_auto,
            &p.jockey_pump_manual,
        );
        let point = p.jockey_pump_starts.as_str();
        match self.analog(point, false, 0.0, f64::MAX) {
            Read::Value(count, at) => {
                let tuning = &self.settings.tuning;
                let starts = self.state.push_jockey_count(at, count, tuning);
                let limit = f64::from(tuning.jockey_max_starts_per_hour)
                    * tuning.jockey_window_secs as f64
                    / 3600.0;
                let seen = if starts > limit {
                    Seen::Violated
                } else {
                    Seen::Clear
                };
                let template = Reason {
                    required: Some(round(limit, 1)),
                    clause: Some(CLAUSE_JOCKEY_STARTS.into()),
                    ..Reason::new(Code::JockeyPumpCycling, None)
                };
                self.condition(template, point, seen, at, Some(starts), cycling);
            }
            Read::Problem => self.unknown(Code::JockeyPumpCycling, point),
            Read::Absent => {}
        }
    }

    /// The fire alarm panel's state bits.
    fn panel(&mut self, b: &Building) {
        let p = &b.points;
        let t = &self.settings.tuning;
        let bits = [
            (
                Code::FireAlarm,
                &p.panel_fire_alarm,
                CLAUSE_FIRE_ALARM,
                t.fire_alarm,
            ),
            (
                Code::PanelFault,
                &p.panel_fault,
                CLAUSE_FACILITIES_INTACT,
                t.panel_fault,
            ),
            (
                Code::PanelDisabled,
                &p.panel_disabled,
                CLAUSE_NO_DISABLING,
                t.panel_fault,
            ),
            (
                Code::PanelMainsFault,
                &p.panel_mains_fault,
                CLAUSE_ALARM_POWER,
                t.panel_power,
            ),
            (
                Code::PanelBackupFault,
                &p.panel_backup_fault,
                CLAUSE_ALARM_POWER,
                t.panel_power,
            ),
        ];
        for (code, point, clause, hold) in bits {
            self.bit_condition(code, point, clause, hold);
        }
    }
}
