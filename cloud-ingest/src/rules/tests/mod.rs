//! Clause by clause, class by class; then durations, hysteresis, trend,
//! maintenance and replay with the rule state carried between evaluations.

use super::*;
use crate::registry::{PointMap, Tank, Use};
use time::Duration;
use time::macros::datetime;

mod equipment;
mod timing;
mod water;

const NOW: OffsetDateTime = datetime!(2026-11-22 08:00 UTC);

/// Every condition counts at once: for thresholds.
fn immediate() -> Settings {
    Settings {
        tuning: Tuning::immediate(),
        ..Settings::default()
    }
}

/// A 二类高层住宅 (40 m): 12 m³, 0.07 MPa. Tank 8 m² × 2.5 m with 0.2 m
/// dead level.
fn building() -> Building {
    Building {
        id: "B1".into(),
        name: "测试1栋".into(),
        district: "梁平区".into(),
        town: "梁山街道".into(),
        community: "西平社区".into(),
        use_: Use::Residential,
        height_m: 40.0,
        storeys: 13,
        commercial_floor_over_1000m2: false,
        class: None,
        tank: Tank {
            area_m2: 8.0,
            height_m: 2.5,
            dead_level_m: 0.2,
        },
        jockey_pump: false,
        gateway: "gw-B1".into(),
        points: PointMap::default(),
        parties: Default::default(),
        address: None,
    }
}

fn reading(value: f64, ts: OffsetDateTime) -> PointValue {
    PointValue {
        value: Some(value),
        quality: Quality::Good,
        ts,
    }
}

/// The latest values of a gateway's points: a full tank and 0.08 MPa unless
/// told otherwise.
#[derive(Clone)]
struct Site(HashMap<String, PointValue>);

impl Site {
    fn healthy() -> Self {
        Self(HashMap::new())
            .set("tank.level", 2.3)
            .set("riser.pressure", 0.08)
    }

    /// The simulated pump cabinet and panel at rest: pumps in auto.
    fn with_cabinet_and_panel() -> Self {
        let mut site = Self::healthy();
        for bit in [
            "pumps.fire_running",
            "pumps.fire_fault",
            "pumps.standby_running",
            "pumps.standby_fault",
            "pumps.jockey_fault",
            "panel.fire_alarm",
            "panel.fault",
            "panel.disabled",
            "panel.mains_fault",
            "panel.backup_fault",
        ] {
            site = site.set(bit, 0.0);
        }
        site.set("pumps.fire_auto", 1.0)
            .set("pumps.standby_auto", 1.0)
            .set("pumps.jockey_auto", 0.0)
    }

    /// `point` reads `value`, 10 s before [`NOW`].
    fn set(self, point: &str, value: f64) -> Self {
        self.at(point, value, NOW - Duration::seconds(10))
    }

    fn at(mut self, point: &str, value: f64, ts: OffsetDateTime) -> Self {
        self.0.insert(point.into(), reading(value, ts));
        self
    }

    fn bad(mut self, point: &str, quality: Quality) -> Self {
        self.0.insert(
            point.into(),
            PointValue {
                value: None,
                quality,
                ts: NOW - Duration::seconds(10),
            },
        );
        self
    }

    fn without(mut self, point: &str) -> Self {
        self.0.remove(point);
        self
    }
}

/// One evaluation from a fresh state, every condition counting at once.
fn judge(b: &Building, site: &Site) -> Verdict {
    evaluate(
        b,
        &site.0,
        Some(true),
        NOW,
        &immediate(),
        &mut RuleState::default(),
    )
}

fn codes(v: &Verdict) -> Vec<Code> {
    v.reasons.iter().map(|r| r.code).collect()
}

fn only(v: &Verdict, code: Code) -> &Reason {
    let found: Vec<_> = v.reasons.iter().filter(|r| r.code == code).collect();
    assert_eq!(found.len(), 1, "{code:?} in {:?}", v.reasons);
    found[0]
}

/// A building judged over time with its state kept, as `judge` in lib.rs
/// does: analogue points are re-sent at every step (the gateway's
/// heartbeat), state bits only when they change.
struct Run {
    building: Building,
    settings: Settings,
    state: RuleState,
    site: Site,
    analog: std::collections::HashSet<String>,
    now: OffsetDateTime,
}

impl Run {
    fn new(building: Building) -> Self {
        let mut run = Self {
            building,
            settings: Settings::default(),
            state: RuleState::default(),
            site: Site(HashMap::new()),
            analog: Default::default(),
            now: NOW,
        };
        run.read("tank.level", 2.3).read("riser.pressure", 0.08);
        run
    }

    /// Analogue `point` reads `value` now.
    fn read(&mut self, point: &str, value: f64) -> &mut Self {
        self.analog.insert(point.into());
        self.site.0.insert(point.into(), reading(value, self.now));
        self
    }

    /// State bit `point` changed to `value` now.
    fn bit(&mut self, point: &str, value: f64) -> &mut Self {
        self.site.0.insert(point.into(), reading(value, self.now));
        self
    }

    /// `secs` pass; the analogue points are re-sent.
    fn wait(&mut self, secs: i64) -> &mut Self {
        self.now += Duration::seconds(secs);
        for (point, pv) in &mut self.site.0 {
            if self.analog.contains(point) {
                pv.ts = self.now;
            }
        }
        self
    }

    fn verdict(&mut self) -> Verdict {
        evaluate(
            &self.building,
            &self.site.0,
            Some(true),
            self.now,
            &self.settings,
            &mut self.state,
        )
    }
}
