//! What the rules remember about a building between two evaluations: which
//! conditions are pending or counted and since when, a short history of the
//! tank level (for the trend) and of the jockey pump's start counter, and
//! the maintenance window. Pure data, serializable, bounded in size
//! (a few kilobytes at most), so the store can keep it as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::settings::{Hold, Tuning};

/// Most tank level samples kept for the trend.
pub const LEVEL_SAMPLES_MAX: usize = 120;

/// Most jockey start-counter samples kept.
pub const COUNTER_SAMPLES_MAX: usize = 64;

/// A building's rule state. `Default` is a building never judged; a state
/// that cannot be read back (an older format) is best replaced by the
/// default: conditions then wait out their duration again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleState {
    /// Maintenance mode (维保模式) until this time: the verdict is still
    /// judged and shown, flagged so that alerting pages no one. Cleared
    /// by the first evaluation after it.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub maintenance_until: Option<OffsetDateTime>,
    /// Pending and counted conditions by key (`code:point`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    conditions: BTreeMap<String, Condition>,
    /// Tank level samples, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tank_levels: Vec<Sample>,
    /// Jockey pump start-counter samples, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    jockey_starts: Vec<Sample>,
}

/// One condition seen true: pending until it has held for its duration,
/// then counted until it has been clear for its clear-duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Condition {
    /// First seen true (the reading's time).
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
    /// Held for its duration: shown on the verdict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    counted: bool,
    /// First seen clear again (the reading's time).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    clear_since: Option<OffsetDateTime>,
    /// The last value that showed the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
}

/// `(unix seconds, value)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Sample(i64, f64);

/// What one evaluation saw of a condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Seen {
    /// The condition is true.
    Violated,
    /// Not true, but inside the hysteresis band: a counted condition stays.
    Marginal,
    /// Not true and beyond the band.
    Clear,
    /// The reading cannot be trusted: a counted condition is kept but not
    /// shown (the reason is the sensor), a pending one starts over.
    Unknown,
    /// The condition cannot be tested now (the hydrant outlet while no
    /// fire pump runs): a counted condition is kept and shown as the last
    /// finding, a pending one starts over.
    Untestable,
}

/// A counted condition to show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shown {
    pub since: OffsetDateTime,
    /// The latest reading still shows the condition.
    pub current: bool,
    /// The last value that showed the condition.
    pub value: Option<f64>,
}

impl RuleState {
    /// Puts the building in maintenance mode until `until` (`None` ends it).
    pub fn set_maintenance(&mut self, until: Option<OffsetDateTime>) {
        self.maintenance_until = until;
    }

    /// The end of maintenance if it is on at `now`; forgets a past one.
    pub(crate) fn maintenance(&mut self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self.maintenance_until {
            Some(until) if now < until => Some(until),
            Some(_) => {
                self.maintenance_until = None;
                None
            }
            None => None,
        }
    }

    /// Moves condition `key` on by what was seen in a reading taken `at`;
    /// returns it if it counts.
    pub(crate) fn observe(
        &mut self,
        key: &str,
        seen: Seen,
        at: OffsetDateTime,
        value: Option<f64>,
        now: OffsetDateTime,
        hold: Hold,
    ) -> Option<Shown> {
        let at = at.min(now);
        let Some(c) = self.conditions.get_mut(key) else {
            if seen != Seen::Violated {
                return None;
            }
            self.conditions.insert(
                key.to_owned(),
                Condition {
                    since: at,
                    counted: false,
                    clear_since: None,
                    value,
                },
            );
            return self.observe(key, seen, at, value, now, hold);
        };
        let shown = |c: &Condition, current| Shown {
            since: c.since,
            current,
            value: c.value,
        };
        match seen {
            Seen::Violated => {
                c.clear_since = None;
                c.value = value;
                if !c.counted && now - c.since >= hold.on() {
                    c.counted = true;
                }
                c.counted.then(|| shown(c, true))
            }
            _ if !c.counted => {
                self.conditions.remove(key);
                None
            }
            Seen::Marginal => {
                c.clear_since = None;
                Some(shown(c, false))
            }
            Seen::Clear => {
                let clear_since = *c.clear_since.get_or_insert(at);
                if now - clear_since >= hold.off() {
                    self.conditions.remove(key);
                    None
                } else {
                    Some(shown(c, false))
                }
            }
            Seen::Unknown => None,
            Seen::Untestable => Some(shown(c, false)),
        }
    }

    /// Forgets conditions no rule looked at in the last evaluation (a
    /// point unmapped, a rule no longer applying).
    pub(crate) fn retain_conditions(&mut self, keep: impl Fn(&str) -> bool) {
        self.conditions.retain(|key, _| keep(key));
    }

    /// Adds a tank level reading; a rise beyond `trend_refill_m` over the
    /// lowest kept sample is a refill and starts the history again.
    pub(crate) fn push_level(&mut self, at: OffsetDateTime, level_m: f64, tuning: &Tuning) {
        let t = at.unix_timestamp();
        if self.tank_levels.last().is_some_and(|last| t <= last.0) {
            return;
        }
        let lowest = self
            .tank_levels
            .iter()
            .map(|s| s.1)
            .fold(f64::INFINITY, f64::min);
        if level_m > lowest + tuning.trend_refill_m {
            self.tank_levels.clear();
        }
        let window = tuning.trend_window_secs.min(i64::MAX as u64) as i64;
        let spacing = window / LEVEL_SAMPLES_MAX as i64;
        if self
            .tank_levels
            .last()
            .is_some_and(|last| t - last.0 < spacing)
        {
            return;
        }
        self.tank_levels.push(Sample(t, level_m));
        let oldest = t.saturating_sub(window);
        self.tank_levels.retain(|s| s.0 >= oldest);
        let excess = self.tank_levels.len().saturating_sub(LEVEL_SAMPLES_MAX);
        self.tank_levels.drain(..excess);
    }

    /// The tank level's least-squares slope in m/s, if the kept samples
    /// span `trend_min_span_secs` and fall by more than `trend_min_drop_m`.
    pub(crate) fn level_slope(&self, tuning: &Tuning) -> Option<f64> {
        let samples = &self.tank_levels;
        let (first, last) = (samples.first()?, samples.last()?);
        let span = (last.0 - first.0) as f64;
        if samples.len() < 3 || span < tuning.trend_min_span_secs as f64 {
            return None;
        }
        let n = samples.len() as f64;
        let t0 = first.0;
        let mean_t = samples.iter().map(|s| (s.0 - t0) as f64).sum::<f64>() / n;
        let mean_v = samples.iter().map(|s| s.1).sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for s in samples {
            let dt = (s.0 - t0) as f64 - mean_t;
            num += dt * (s.1 - mean_v);
            den += dt * dt;
        }
        let slope = num / den;
        (slope.is_finite() && -slope * span > tuning.trend_min_drop_m).then_some(slope)
    }

    /// Adds a jockey start-counter reading and returns the starts counted
    /// within the window before it (from the oldest sample inside the
    /// window, so never more than really happened). A counter that went
    /// down restarted (or wrapped): counting starts again.
    pub(crate) fn push_jockey_count(
        &mut self,
        at: OffsetDateTime,
        count: f64,
        tuning: &Tuning,
    ) -> f64 {
        let t = at.unix_timestamp();
        let window = tuning.jockey_window_secs.min(i64::MAX as u64) as i64;
        if self.jockey_starts.last().is_some_and(|last| count < last.1) {
            self.jockey_starts.clear();
        }
        let spacing = window / (COUNTER_SAMPLES_MAX as i64 - 4);
        if self
            .jockey_starts
            .last()
            .is_none_or(|last| t - last.0 >= spacing.max(1))
        {
            self.jockey_starts.push(Sample(t, count));
        }
        let oldest = t.saturating_sub(window);
        self.jockey_starts.retain(|s| s.0 >= oldest);
        let excess = self.jockey_starts.len().saturating_sub(COUNTER_SAMPLES_MAX);
        self.jockey_starts.drain(..excess);
        self.jockey_starts
            .first()
            .map_or(0.0, |first| (count - first.1).max(0.0))
    }

    #[cfg(test)]
    pub(crate) fn level_samples(&self) -> usize {
        self.tank_levels.len()
    }
}

/// Hours until a level falling at `slope` (m/s) reaches `floor_m`.
pub(crate) fn hours_until(level_m: f64, floor_m: f64, slope: f64) -> Option<f64> {
    (slope < 0.0 && level_m > floor_m).then(|| (level_m - floor_m) / -slope / 3600.0)
}
