//! Tank, pool, static, sprinkler and hydrant pressures; sensor faults.

use super::*;
use crate::registry::FirePool;

#[test]
fn a_full_tank_and_standing_pressure_is_ok() {
    let v = judge(&building(), &Site::with_cabinet_and_panel());
    assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
    assert!(v.reasons.is_empty());
}

#[test]
fn a_tank_below_its_required_volume_fails_citing_5_2_1() {
    // 8 m² × (1.5 − 0.2) = 10.4 m³ < 12 m³.
    let v = judge(&building(), &Site::healthy().set("tank.level", 1.5));
    assert_eq!(v.status, Status::Failing);
    let r = only(&v, Code::TankVolumeLow);
    assert_eq!(r.value, Some(10.4));
    assert_eq!(r.required, Some(12.0));
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 5.2.1"));
    assert_eq!(r.point.as_deref(), Some("tank.level"));
    assert!(r.current);
    let zh = render(r, Lang::Zh);
    assert!(
        zh.contains("10.4 m³") && zh.contains("12 m³") && zh.contains("5.2.1"),
        "{zh}"
    );
    let en = render(r, Lang::En);
    assert!(en.contains("10.4 m³") && en.contains("refill"), "{en}");
}

/// A nearly empty 8 m² tank, so every class's minimum shows as `required`.
fn required_volume(use_: Use, height_m: f64, commercial: bool) -> Option<f64> {
    let mut b = building();
    (b.use_, b.height_m, b.commercial_floor_over_1000m2) = (use_, height_m, commercial);
    let v = judge(
        &b,
        &Site::healthy()
            .set("tank.level", 0.3)
            .set("riser.pressure", 0.2),
    );
    v.reasons
        .iter()
        .find(|r| r.code == Code::TankVolumeLow)
        .and_then(|r| r.required)
}

#[test]
fn the_tank_minimum_follows_5_2_1_class_by_class_and_height() {
    use Use::*;
    let cases = [
        (Residential, 40.0, false, Some(12.0), "二类高层住宅"),
        (Residential, 54.0, false, Some(12.0), "二类高层住宅 at 54 m"),
        (Residential, 60.0, false, Some(18.0), "一类高层住宅"),
        (
            Residential,
            101.0,
            false,
            Some(36.0),
            "一类高层住宅 > 100 m",
        ),
        (Residential, 24.0, false, Some(6.0), "多层住宅 > 21 m"),
        (Residential, 18.0, false, None, "多层住宅 ≤ 21 m"),
        (Public, 20.0, false, Some(18.0), "多层公共建筑"),
        (Public, 40.0, false, Some(18.0), "二类高层公共建筑"),
        (
            Public,
            30.0,
            true,
            Some(36.0),
            "一类高层公共建筑 by its commerce",
        ),
        (Public, 60.0, false, Some(36.0), "一类高层公共建筑 > 50 m"),
        (Public, 120.0, false, Some(50.0), "一类高层公共建筑 > 100 m"),
        (
            Public,
            160.0,
            false,
            Some(100.0),
            "一类高层公共建筑 > 150 m",
        ),
    ];
    for (use_, height, commercial, expected, what) in cases {
        assert_eq!(
            required_volume(use_, height, commercial),
            expected,
            "{what}"
        );
    }
}

#[test]
fn a_multi_storey_home_up_to_21_m_needs_no_tank_volume() {
    let mut low = building();
    low.height_m = 18.0;
    let v = judge(&low, &Site::healthy().set("tank.level", 0.0));
    assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
}

#[test]
fn static_pressure_below_the_minimum_fails_citing_5_2_2() {
    let v = judge(&building(), &Site::healthy().set("riser.pressure", 0.05));
    assert_eq!(v.status, Status::Failing);
    let r = only(&v, Code::StaticPressureLow);
    assert_eq!((r.value, r.required), (Some(0.05), Some(0.07)));
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 5.2.2"));
    assert!(render(r, Lang::Zh).contains("0.05 MPa"));
}

#[test]
fn the_static_pressure_minimum_follows_5_2_2_class_by_class() {
    let cases = [
        (Use::Residential, 40.0, false, 0.07, "二类高层住宅"),
        (Use::Residential, 90.0, false, 0.07, "一类高层住宅"),
        (Use::Public, 40.0, false, 0.07, "二类高层公共建筑"),
        (Use::Public, 80.0, false, 0.10, "一类高层公共建筑"),
        (Use::Public, 120.0, false, 0.15, "一类高层公共建筑 > 100 m"),
        (
            Use::Residential,
            40.0,
            true,
            0.15,
            "a jockey pump keeps the pressure",
        ),
    ];
    for (use_, height, jockey, expected, what) in cases {
        let mut b = building();
        (b.use_, b.height_m, b.jockey_pump) = (use_, height, jockey);
        let v = judge(
            &b,
            &Site::healthy()
                .set("riser.pressure", 0.0)
                .set("tank.level", 2.5),
        );
        assert_eq!(
            only(&v, Code::StaticPressureLow).required,
            Some(expected),
            "{what}"
        );
    }
}

fn with_pool() -> Building {
    let mut b = building();
    b.points.fire_pool = Some(FirePool {
        level: "pool.level".into(),
        area_m2: 60.0,
        height_m: 4.0,
        dead_level_m: 0.3,
        required_volume_m3: 180.0,
    });
    b
}

#[test]
fn a_fire_pool_below_its_design_volume_fails() {
    // 60 m² × (3.0 − 0.3) = 162 m³ < 180 m³.
    let v = judge(&with_pool(), &Site::healthy().set("pool.level", 3.0));
    assert_eq!(v.status, Status::Failing);
    let r = only(&v, Code::FirePoolVolumeLow);
    assert_eq!((r.value, r.required), (Some(162.0), Some(180.0)));
    assert_eq!(r.clause.as_deref(), Some(CLAUSE_FIRE_POOL_VOLUME));
    assert!(render(r, Lang::Zh).contains("消防水池有效容积 162 m³"));
    let full = judge(&with_pool(), &Site::healthy().set("pool.level", 3.8));
    assert_eq!(full.status, Status::Ok, "{:?}", full.reasons);
}

#[test]
fn a_fire_pool_on_record_that_never_reported_is_unknown() {
    let v = judge(&with_pool(), &Site::healthy());
    assert_eq!(v.status, Status::Unknown);
    assert_eq!(only(&v, Code::NoData).point.as_deref(), Some("pool.level"));
}

#[test]
fn a_sprinkler_main_below_0_10_fails_where_the_building_has_the_point() {
    let v = judge(
        &building(),
        &Site::healthy().set("sprinkler.pressure", 0.08),
    );
    let r = only(&v, Code::SprinklerPressureLow);
    assert_eq!((r.value, r.required), (Some(0.08), Some(0.10)));
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 5.2.2"));
    assert_eq!(v.status, Status::Failing);
    let fine = judge(
        &building(),
        &Site::healthy().set("sprinkler.pressure", 0.12),
    );
    assert_eq!(fine.status, Status::Ok);
    let none = judge(&building(), &Site::healthy());
    assert_eq!(
        none.status,
        Status::Ok,
        "no sprinkler point, no sprinkler rule"
    );
}

#[test]
fn the_hydrant_outlet_is_held_to_7_4_12_only_while_a_fire_pump_runs() {
    let at_rest = Site::with_cabinet_and_panel().set("hydrant.pressure", 0.10);
    assert_eq!(judge(&building(), &at_rest).status, Status::Ok);

    let running = at_rest.clone().set("pumps.fire_running", 1.0);
    let v = judge(&building(), &running.clone().set("hydrant.pressure", 0.30));
    assert_eq!(v.status, Status::Failing);
    let r = only(&v, Code::HydrantPressureLow);
    assert_eq!((r.value, r.required), (Some(0.3), Some(0.35)));
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 7.4.12"));
    let fine = judge(&building(), &running.clone().set("hydrant.pressure", 0.40));
    assert_eq!(fine.status, Status::Ok, "{:?}", fine.reasons);

    let standby = at_rest.set("pumps.standby_running", 1.0);
    let v = judge(&building(), &standby.set("hydrant.pressure", 0.30));
    assert_eq!(
        codes(&v),
        [Code::HydrantPressureLow],
        "the standby pump counts too"
    );
}

#[test]
fn a_multi_storey_building_needs_0_25_at_the_hydrant_outlet() {
    let mut low = building();
    low.height_m = 20.0;
    let running = Site::with_cabinet_and_panel().set("pumps.fire_running", 1.0);
    let ok = judge(&low, &running.clone().set("hydrant.pressure", 0.30));
    assert_eq!(ok.status, Status::Ok, "{:?}", ok.reasons);
    let v = judge(&low, &running.set("hydrant.pressure", 0.20));
    assert_eq!(only(&v, Code::HydrantPressureLow).required, Some(0.25));
}

#[test]
fn a_hydrant_outlet_above_0_50_warns_and_mentions_the_reducer_above_0_70() {
    let running = Site::with_cabinet_and_panel().set("pumps.fire_running", 1.0);
    let v = judge(&building(), &running.set("hydrant.pressure", 0.62));
    assert_eq!(v.status, Status::Warning);
    let r = only(&v, Code::HydrantPressureHigh);
    assert_eq!((r.value, r.required), (Some(0.62), Some(0.5)));
    assert!(render(r, Lang::Zh).contains("0.7 MPa 须设减压装置"));
}

#[test]
fn a_permanently_pressurised_system_can_have_its_outlet_judged_always() {
    let mut settings = immediate();
    settings.tuning.hydrant_always_dynamic = true;
    let site = Site::healthy().set("hydrant.pressure", 0.30);
    let v = evaluate(
        &building(),
        &site.0,
        Some(true),
        NOW,
        &settings,
        &mut RuleState::default(),
    );
    assert_eq!(codes(&v), [Code::HydrantPressureLow]);
}

#[test]
fn a_sensor_fault_warns_cannot_verify_and_never_fails() {
    for quality in [
        Quality::Unreachable,
        Quality::Exception,
        Quality::SensorFault,
        Quality::Stale,
    ] {
        let v = judge(&building(), &Site::healthy().bad("tank.level", quality));
        assert_eq!(v.status, Status::Warning, "{quality:?}");
        let r = only(&v, Code::CannotVerify);
        assert_eq!(r.quality, Some(quality));
        assert_eq!(r.since, Some(NOW - Duration::seconds(10)));
        assert!(render(r, Lang::Zh).starts_with("无法核实"));
    }
}

#[test]
fn a_value_outside_the_plausible_range_warns_cannot_verify_and_never_fails() {
    let cases = [
        ("tank.level", -1.0),
        ("tank.level", 9.0), // a 2.5 m tank
        ("riser.pressure", -0.5),
        ("riser.pressure", 7.0),
        ("riser.pressure", f64::NAN),
    ];
    for (point, value) in cases {
        let v = judge(&building(), &Site::healthy().set(point, value));
        assert_eq!(v.status, Status::Warning, "{point} = {value}");
        let r = only(&v, Code::CannotVerify);
        assert_eq!(r.quality, None);
        assert!(render(r, Lang::En).contains("plausibly"), "{r:?}");
    }
}

#[test]
fn stale_or_missing_required_points_are_unknown_with_the_reason() {
    let old = NOW - Duration::minutes(6);
    let v = judge(&building(), &Site::healthy().at("tank.level", 2.3, old));
    assert_eq!(v.status, Status::Unknown);
    let r = only(&v, Code::PointStale);
    assert_eq!(r.since, Some(old));
    assert!(render(r, Lang::En).contains("not updated since 2026-11-22T07:54:00Z"));

    let nothing = judge(&building(), &Site(HashMap::new()));
    assert_eq!(nothing.status, Status::Unknown);
    assert_eq!(codes(&nothing), [Code::NoData, Code::NoData]);
}

#[test]
fn a_stale_optional_analogue_point_is_unknown_too() {
    let old = NOW - Duration::minutes(6);
    let v = judge(
        &building(),
        &Site::healthy().at("sprinkler.pressure", 0.2, old),
    );
    assert_eq!(codes(&v), [Code::PointStale]);
}

#[test]
fn failing_comes_before_warning_and_unknown() {
    let site = Site::healthy()
        .set("tank.level", 0.5)
        .without("riser.pressure")
        .set("panel.fault", 1.0);
    let v = judge(&building(), &site);
    assert_eq!(v.status, Status::Failing);
    assert_eq!(
        codes(&v),
        [Code::TankVolumeLow, Code::PanelFault, Code::NoData]
    );
}

#[test]
fn an_offline_gateway_is_unknown_and_leaves_the_state_alone() {
    let mut state = RuleState::default();
    let site = Site::healthy().set("tank.level", 0.5);
    let settings = Settings::default();
    evaluate(&building(), &site.0, Some(true), NOW, &settings, &mut state);
    let before = state.clone();
    let v = evaluate(
        &building(),
        &site.0,
        Some(false),
        NOW,
        &settings,
        &mut state,
    );
    assert_eq!(v.status, Status::Unknown);
    assert_eq!(codes(&v), [Code::GatewayOffline]);
    assert_eq!(state, before);
}

#[test]
fn a_gateway_silent_past_its_patrol_interval_is_offline_since_its_last_message() {
    let settings = Settings::default();
    let site = Site::with_cabinet_and_panel();
    let link = |ago: i64| Link {
        online: Some(true),
        last_seen: Some(NOW - Duration::seconds(ago)),
    };
    let quiet = settings.gateway_silent_after.whole_seconds();
    let judged = |ago| {
        evaluate(
            &building(),
            &site.0,
            link(ago),
            NOW,
            &settings,
            &mut RuleState::default(),
        )
    };
    assert_eq!(judged(quiet - 1).status, Status::Ok);
    let v = judged(quiet + 1);
    assert_eq!(v.status, Status::Unknown);
    let reason = only(&v, Code::GatewayOffline);
    assert_eq!(reason.since, Some(NOW - Duration::seconds(quiet + 1)));
    assert!(
        render(reason, Lang::Zh).contains("起无消息"),
        "{}",
        render(reason, Lang::Zh)
    );
}
