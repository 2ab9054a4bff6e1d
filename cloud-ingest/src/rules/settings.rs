//! Tunables of the rules: how long a condition must last before it counts
//! and how long it must be gone before it clears, hysteresis bands, the
//! jockey pump's start limit and the tank trend's horizon.
//!
//! The durations are this project's own judgement (no standard gives them):
//! long enough that a pump test, a pressure transient or a sloshing level
//! pages no one, short enough that a real fault shows within minutes.
//! Planned work (a hydrant flow test that draws the tank down) belongs in
//! maintenance mode, not in longer durations.

use serde::{Deserialize, Serialize};
use time::Duration;

use super::code::JOCKEY_MAX_STARTS_PER_HOUR;

/// Everything [`super::evaluate`] is tuned by.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// An analogue point older than this makes its building `unknown`.
    /// State bits (pumps, panel) travel only when they change and are not
    /// aged; the gateway's online status covers them.
    pub point_stale_after: Duration,
    /// A gateway nothing has arrived from for this long is offline, even
    /// without its last-will (a dead link the broker has not noticed, a
    /// gateway whose uplink hangs). GB 50440 wants the link checked at
    /// least every 2 h; gateways report every minute.
    pub gateway_silent_after: Duration,
    pub tuning: Tuning,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            point_stale_after: Duration::minutes(5),
            gateway_silent_after: Duration::minutes(10),
            tuning: Tuning::default(),
        }
    }
}

/// How long a condition must hold before it counts (`for_secs`) and how
/// long it must be clear before it stops counting (`clear_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// Seconds the condition must last before the building shows it.
    pub for_secs: u64,
    /// Seconds the condition must be gone (beyond the hysteresis band,
    /// where there is one) before the building stops showing it.
    pub clear_secs: u64,
}

impl Hold {
    pub const ZERO: Hold = Hold::secs(0, 0);

    pub const fn secs(for_secs: u64, clear_secs: u64) -> Self {
        Self {
            for_secs,
            clear_secs,
        }
    }

    pub(crate) fn on(self) -> Duration {
        Duration::seconds(self.for_secs.min(i64::MAX as u64) as i64)
    }

    pub(crate) fn off(self) -> Duration {
        Duration::seconds(self.clear_secs.min(i64::MAX as u64) as i64)
    }
}

/// Durations, bands and limits of every rule. Meant for a `[rules.tuning]`
/// table of the ingest config; every key has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tuning {
    /// Rooftop tank below its 5.2.1 volume.
    pub tank_low: Hold,
    /// The tank clears only above the required volume plus this, m³.
    pub tank_band_m3: f64,
    /// Fire pool below its required volume.
    pub pool_low: Hold,
    /// The pool clears only above the required volume plus this, m³.
    pub pool_band_m3: f64,
    /// Static pressure at the most unfavourable point below 5.2.2.
    pub static_pressure_low: Hold,
    /// Sprinkler main below 0.10 MPa.
    pub sprinkler_pressure_low: Hold,
    /// Static and sprinkler pressure clear only this far above the minimum,
    /// MPa (half a metre of water; the gateway's deadband is 0.002 MPa).
    pub pressure_band_mpa: f64,
    /// Hydrant outlet outside 7.4.12 while a fire pump runs; the pump needs
    /// `for_secs` to bring the pressure up.
    pub hydrant_pressure: Hold,
    /// Hydrant outlet bounds clear only this far inside them, MPa.
    pub hydrant_band_mpa: f64,
    /// Judge the hydrant outlet against 7.4.12 at all times, not only while
    /// a fire pump runs (a permanently pressurised system).
    pub hydrant_always_dynamic: bool,
    /// A pump's fault bit (duty, standby, jockey).
    pub pump_fault: Hold,
    /// A pump out of auto: long enough for a test in manual.
    pub pump_manual: Hold,
    /// Jockey pump starts within `jockey_window_secs` above which it is
    /// cycling, a leak symptom (GB 50974-2014 5.3.4: 15 an hour).
    pub jockey_max_starts_per_hour: u32,
    /// The window the jockey pump's starts are counted over, seconds.
    pub jockey_window_secs: u64,
    /// Jockey pump cycling; the window already smooths it.
    pub jockey_cycling: Hold,
    /// Panel in fault or disabled (屏蔽).
    pub panel_fault: Hold,
    /// Panel on failed mains or backup power: a brief grid dip is not one.
    pub panel_power: Hold,
    /// Fire alarm: shown at once, gone at the reset.
    pub fire_alarm: Hold,
    /// Tank level samples kept for the trend, seconds back.
    pub trend_window_secs: u64,
    /// The trend needs samples spanning at least this, seconds.
    pub trend_min_span_secs: u64,
    /// Warn when the tank is projected to fall below its required volume
    /// within this, seconds.
    pub trend_horizon_secs: u64,
    /// The fitted fall over the samples must exceed this, m (sensor noise).
    pub trend_min_drop_m: f64,
    /// A level this far above the lowest kept sample is a refill: the
    /// trend starts again, m.
    pub trend_refill_m: f64,
    /// The projected-empty warning.
    pub trend: Hold,
    /// Plausible pressure readings, MPa: outside is a sensor fault.
    pub pressure_plausible_mpa: [f64; 2],
    /// A level more than this below the bottom or above the top of its
    /// tank or pool is a sensor fault, m.
    pub level_plausible_margin_m: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            tank_low: Hold::secs(30, 30),
            tank_band_m3: 0.5,
            pool_low: Hold::secs(60, 60),
            pool_band_m3: 1.0,
            static_pressure_low: Hold::secs(60, 30),
            sprinkler_pressure_low: Hold::secs(60, 30),
            pressure_band_mpa: 0.005,
            hydrant_pressure: Hold::secs(60, 60),
            hydrant_band_mpa: 0.02,
            hydrant_always_dynamic: false,
            pump_fault: Hold::secs(30, 30),
            pump_manual: Hold::secs(600, 60),
            jockey_max_starts_per_hour: JOCKEY_MAX_STARTS_PER_HOUR,
            jockey_window_secs: 3600,
            jockey_cycling: Hold::secs(0, 600),
            panel_fault: Hold::secs(60, 60),
            panel_power: Hold::secs(120, 60),
            fire_alarm: Hold::ZERO,
            trend_window_secs: 6 * 3600,
            trend_min_span_secs: 3600,
            trend_horizon_secs: 24 * 3600,
            trend_min_drop_m: 0.03,
            trend_refill_m: 0.05,
            trend: Hold::secs(0, 1800),
            pressure_plausible_mpa: [-0.05, 2.5],
            level_plausible_margin_m: 0.1,
        }
    }
}

impl Tuning {
    /// Every condition counts at once and clears at once (unit tests of
    /// thresholds and API tests that judge a single reading).
    pub fn immediate() -> Self {
        Self {
            tank_low: Hold::ZERO,
            pool_low: Hold::ZERO,
            static_pressure_low: Hold::ZERO,
            sprinkler_pressure_low: Hold::ZERO,
            hydrant_pressure: Hold::ZERO,
            pump_fault: Hold::ZERO,
            pump_manual: Hold::ZERO,
            jockey_cycling: Hold::ZERO,
            panel_fault: Hold::ZERO,
            panel_power: Hold::ZERO,
            fire_alarm: Hold::ZERO,
            trend: Hold::ZERO,
            ..Self::default()
        }
    }
}
