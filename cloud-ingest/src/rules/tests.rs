use super::*;
use crate::registry::{PointMap, Tank, Use};
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-22 08:00 UTC);
const SETTINGS: Settings = Settings {
    point_stale_after: Duration::minutes(5),
};

/// A 二类高层住宅 (40 m): 12 m³, 0.07 MPa. Tank 8 m² with 0.2 m dead level.
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
    }
}

fn good(value: f64) -> PointValue {
    PointValue {
        value: Some(value),
        quality: Quality::Good,
        ts: NOW - Duration::seconds(10),
    }
}

fn points(level: PointValue, pressure: PointValue) -> HashMap<String, PointValue> {
    HashMap::from([
        ("tank.level".into(), level),
        ("riser.pressure".into(), pressure),
    ])
}

fn judge(b: &Building, level: PointValue, pressure: PointValue) -> Verdict {
    evaluate(b, &points(level, pressure), Some(true), NOW, &SETTINGS)
}

#[test]
fn full_tank_and_pressure_is_ok() {
    let v = judge(&building(), good(2.3), good(0.08));
    assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
    assert!(v.reasons.is_empty());
}

#[test]
fn tank_below_required_volume_fails_citing_5_2_1() {
    // 8 m² × (1.5 − 0.2) = 10.4 m³ < 12 m³.
    let v = judge(&building(), good(1.5), good(0.08));
    assert_eq!(v.status, Status::Failing);
    let r = &v.reasons[0];
    assert_eq!(r.code, Code::TankVolumeLow);
    assert_eq!(r.value, Some(10.4));
    assert_eq!(r.required, Some(12.0));
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 5.2.1"));
    assert_eq!(r.point.as_deref(), Some("tank.level"));
    let zh = render(r, Lang::Zh);
    assert!(
        zh.contains("10.4 m³") && zh.contains("12 m³") && zh.contains("5.2.1"),
        "{zh}"
    );
}

#[test]
fn required_volume_depends_on_class_and_height() {
    // The same 10.4 m³ is enough for nothing higher than 二类住宅.
    let mut tall = building();
    tall.height_m = 60.0; // 一类高层住宅: 18 m³
    let v = judge(&tall, good(2.3), good(0.08));
    assert_eq!(v.reasons[0].required, Some(18.0), "14.4 m³ < 18 m³");
    let mut low = building();
    low.height_m = 18.0; // 多层住宅 ≤ 21 m: no tank volume required
    assert_eq!(judge(&low, good(0.2), good(0.08)).status, Status::Ok);
}

#[test]
fn static_pressure_below_minimum_fails_citing_5_2_2() {
    let v = judge(&building(), good(2.3), good(0.05));
    assert_eq!(v.status, Status::Failing);
    assert_eq!(v.reasons[0].code, Code::StaticPressureLow);
    assert_eq!(v.reasons[0].required, Some(0.07));
    assert_eq!(v.reasons[0].clause.as_deref(), Some("GB 50974-2014 5.2.2"));
}

#[test]
fn jockey_pump_raises_the_pressure_minimum_to_0_15() {
    let mut b = building();
    b.jockey_pump = true;
    let v = judge(&b, good(2.3), good(0.12));
    assert_eq!(v.status, Status::Failing);
    assert_eq!(v.reasons[0].required, Some(0.15));
}

#[test]
fn sensor_fault_warns_cannot_verify_and_never_fails() {
    let faulty = PointValue {
        value: None,
        quality: Quality::Unreachable,
        ts: NOW,
    };
    let v = judge(&building(), faulty, good(0.08));
    assert_eq!(v.status, Status::Warning);
    assert_eq!(v.reasons[0].code, Code::CannotVerify);
    assert_eq!(v.reasons[0].quality, Some(Quality::Unreachable));
}

#[test]
fn stale_or_missing_points_are_unknown() {
    let old = PointValue {
        ts: NOW - Duration::minutes(6),
        ..good(2.3)
    };
    assert_eq!(judge(&building(), old, good(0.08)).status, Status::Unknown);
    let nothing = evaluate(&building(), &HashMap::new(), None, NOW, &SETTINGS);
    assert_eq!(nothing.status, Status::Unknown);
    assert!(nothing.reasons.iter().all(|r| r.code == Code::NoData));
}

#[test]
fn failing_outranks_unknown_and_offline_gateway_is_unknown() {
    let missing_pressure = HashMap::from([("tank.level".into(), good(0.5))]);
    let v = evaluate(&building(), &missing_pressure, Some(true), NOW, &SETTINGS);
    assert_eq!(v.status, Status::Failing);
    assert_eq!(v.reasons.len(), 2);
    let offline = evaluate(
        &building(),
        &points(good(0.5), good(0.0)),
        Some(false),
        NOW,
        &SETTINGS,
    );
    assert_eq!(offline.status, Status::Unknown);
    assert_eq!(offline.reasons[0].code, Code::GatewayOffline);
}
