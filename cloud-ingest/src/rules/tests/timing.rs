//! Durations, hysteresis, the tank trend, maintenance and replayed data,
//! with the default settings and the state carried between evaluations.

use super::*;
use crate::registry::Registry;

#[test]
fn a_pressure_dip_shorter_than_its_duration_pages_no_one() {
    let mut run = Run::new(building());
    run.read("riser.pressure", 0.03);
    for _ in 0..5 {
        let v = run.wait(10).verdict();
        assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
        assert!(v.pageable().is_empty());
    }
    run.read("riser.pressure", 0.08);
    for _ in 0..10 {
        assert_eq!(run.wait(10).verdict().status, Status::Ok);
    }
}

#[test]
fn a_pressure_loss_counts_once_it_has_lasted_its_duration() {
    let mut run = Run::new(building());
    run.read("riser.pressure", 0.03);
    let lost_at = run.now;
    assert_eq!(run.verdict().status, Status::Ok);
    assert_eq!(run.wait(59).verdict().status, Status::Ok);
    let v = run.wait(1).verdict();
    assert_eq!(v.status, Status::Failing);
    let r = only(&v, Code::StaticPressureLow);
    assert_eq!(
        r.since,
        Some(lost_at),
        "since the reading that first showed it"
    );
    assert!(r.current);
    assert_eq!(v.pageable().len(), 1);
}

#[test]
fn a_pump_test_in_manual_with_the_pump_running_pages_no_one() {
    let mut run = Run::new(building());
    run.site = Site::with_cabinet_and_panel();
    run.bit("pumps.fire_auto", 0.0)
        .bit("pumps.fire_running", 1.0);
    for _ in 0..8 {
        let v = run.wait(60).verdict();
        assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
    }
    run.bit("pumps.fire_auto", 1.0)
        .bit("pumps.fire_running", 0.0);
    assert_eq!(run.wait(60).verdict().status, Status::Ok);
}

#[test]
fn a_condition_clears_only_after_its_clear_duration_and_is_not_current_meanwhile() {
    let mut run = Run::new(building());
    run.read("tank.level", 1.0).verdict(); // 6.4 m³
    assert_eq!(run.wait(30).verdict().status, Status::Failing);
    run.read("tank.level", 2.3).verdict();
    let v = run.wait(10).verdict();
    assert_eq!(v.status, Status::Failing, "held for its clear-duration");
    let r = only(&v, Code::TankVolumeLow);
    assert!(!r.current);
    assert_eq!(r.value, Some(6.4), "the last value that showed it");
    assert!(render(r, Lang::Zh).ends_with("（最新读数已恢复，待确认）"));
    assert!(
        v.pageable().is_empty(),
        "nothing to page for a clearing condition"
    );
    assert_eq!(run.wait(19).verdict().status, Status::Failing);
    assert_eq!(run.wait(1).verdict().status, Status::Ok);
}

#[test]
fn a_value_inside_the_hysteresis_band_does_not_clear_the_condition() {
    let mut run = Run::new(building());
    run.read("riser.pressure", 0.06).verdict();
    assert_eq!(run.wait(60).verdict().status, Status::Failing);
    // 0.072 is above 0.07 but inside the 0.005 MPa band.
    run.read("riser.pressure", 0.072);
    for _ in 0..10 {
        let v = run.wait(30).verdict();
        assert!(!only(&v, Code::StaticPressureLow).current);
    }
    run.read("riser.pressure", 0.076).verdict();
    assert_eq!(run.wait(29).verdict().status, Status::Failing);
    assert_eq!(run.wait(1).verdict().status, Status::Ok);
}

#[test]
fn a_dip_back_during_the_clear_duration_keeps_the_original_since() {
    let mut run = Run::new(building());
    run.read("tank.level", 1.0).verdict();
    let since = run.now;
    run.wait(30).verdict();
    run.read("tank.level", 2.3).wait(10).verdict();
    let r = run.read("tank.level", 1.0).verdict().reasons[0].clone();
    assert_eq!(
        (r.code, r.current, r.since),
        (Code::TankVolumeLow, true, Some(since))
    );
}

#[test]
fn a_sensor_fault_hides_a_counted_condition_behind_cannot_verify_and_keeps_it() {
    let mut run = Run::new(building());
    run.read("tank.level", 1.0).verdict();
    run.wait(30).verdict();
    run.site = run.site.clone().bad("tank.level", Quality::Unreachable);
    let v = run.wait(10).verdict();
    assert_eq!(
        codes(&v),
        [Code::CannotVerify],
        "never a failing from a bad reading"
    );
    run.read("tank.level", 1.0);
    let v = run.wait(1).verdict();
    assert_eq!(
        v.status,
        Status::Failing,
        "the condition was kept: no new wait"
    );
}

#[test]
fn a_condition_seen_once_then_unverifiable_starts_its_duration_again() {
    let mut run = Run::new(building());
    run.read("riser.pressure", 0.03).verdict();
    run.wait(50).verdict();
    run.site = run.site.clone().bad("riser.pressure", Quality::Exception);
    run.wait(5).verdict();
    run.read("riser.pressure", 0.03).verdict();
    assert_eq!(run.wait(30).verdict().status, Status::Ok);
    assert_eq!(run.wait(30).verdict().status, Status::Failing);
}

#[test]
fn a_low_hydrant_finding_stays_after_the_pump_stops_until_the_next_run() {
    let mut run = Run::new(building());
    run.site = Site::with_cabinet_and_panel();
    run.read("hydrant.pressure", 0.2)
        .bit("pumps.fire_running", 1.0);
    assert_eq!(
        run.verdict().status,
        Status::Ok,
        "the pump is coming up to pressure"
    );
    assert_eq!(run.wait(60).verdict().status, Status::Failing);
    run.bit("pumps.fire_running", 0.0)
        .read("hydrant.pressure", 0.1);
    let v = run.wait(600).verdict();
    let r = only(&v, Code::HydrantPressureLow);
    assert!(!r.current);
    assert_eq!(r.value, Some(0.2));
    assert!(render(r, Lang::En).ends_with("(measured during the last fire-pump run)"));
    // The next run delivers: the finding clears after its clear-duration.
    run.bit("pumps.fire_running", 1.0)
        .read("hydrant.pressure", 0.4);
    assert_eq!(run.verdict().status, Status::Failing);
    assert_eq!(run.wait(59).verdict().status, Status::Failing);
    assert_eq!(run.wait(1).verdict().status, Status::Ok);
}

/// The tank loses `cm_per_hour` for `hours`, read every 5 minutes; the
/// last verdict.
fn draining(run: &mut Run, from_m: f64, cm_per_hour: f64, hours: i64) -> Verdict {
    let mut verdict = run.verdict();
    for step in 1..=hours * 12 {
        let level = from_m - cm_per_hour / 100.0 * step as f64 / 12.0;
        verdict = run.wait(300).read("tank.level", level).verdict();
    }
    verdict
}

#[test]
fn a_steadily_falling_tank_warns_hours_before_it_runs_short() {
    // Floor: 0.2 + 12 / 8 = 1.7 m. From 2.3 m at 5 cm/h: 12 h to go.
    let mut run = Run::new(building());
    let v = draining(&mut run, 2.3, 5.0, 2);
    assert_eq!(v.status, Status::Warning, "{:?}", v.reasons);
    let r = only(&v, Code::TankVolumeFalling);
    let hours = r.hours.unwrap();
    assert!((9.5..=10.5).contains(&hours), "{hours} h");
    assert_eq!((r.value, r.required), (Some(16.0), Some(12.0)));
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 5.2.1"));
    let zh = render(r, Lang::Zh);
    assert!(
        zh.contains(&format!("约 {hours} 小时后低于规范要求的 12 m³")),
        "{zh}"
    );
}

#[test]
fn a_slow_fall_beyond_the_horizon_or_a_steady_tank_warns_no_one() {
    // 1 cm/h: 60 h to go, beyond 24 h.
    let mut slow = Run::new(building());
    assert_eq!(draining(&mut slow, 2.3, 1.0, 3).status, Status::Ok);
    // A float valve topping up: ±1 cm around 2.3 m.
    let mut steady = Run::new(building());
    for step in 0..100 {
        let level = if step % 2 == 0 { 2.29 } else { 2.31 };
        let v = steady.wait(300).read("tank.level", level).verdict();
        assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
    }
}

#[test]
fn a_refill_starts_the_trend_again() {
    let mut run = Run::new(building());
    assert_eq!(draining(&mut run, 2.3, 5.0, 2).status, Status::Warning);
    run.read("tank.level", 2.4);
    let v = run.wait(300).verdict();
    assert!(!only(&v, Code::TankVolumeFalling).current);
    assert_eq!(run.state.level_samples(), 1);
    assert_eq!(run.wait(1800).verdict().status, Status::Ok);
}

#[test]
fn the_level_history_stays_bounded() {
    let mut run = Run::new(building());
    draining(&mut run, 2.45, 0.5, 48);
    assert!(run.state.level_samples() <= state::LEVEL_SAMPLES_MAX);
    let json = serde_json::to_string(&run.state).unwrap();
    assert!(json.len() < 4096, "{} bytes", json.len());
}

#[test]
fn maintenance_mode_flags_the_verdict_and_pages_no_one_until_it_ends() {
    let mut run = Run::new(building());
    run.state.set_maintenance(Some(NOW + Duration::hours(2)));
    run.read("tank.level", 0.5).verdict();
    let v = run.wait(60).verdict();
    assert_eq!(v.status, Status::Failing, "still judged and shown");
    assert_eq!(v.maintenance_until(), Some(NOW + Duration::hours(2)));
    assert_eq!(v.reasons.last().unwrap().code, Code::Maintenance);
    assert!(v.pageable().is_empty());
    let r = v.reasons.last().unwrap();
    assert!(render(r, Lang::Zh).contains("维保模式至 2026-11-22T10:00:00Z"));

    let after = run.wait(2 * 3600).verdict();
    assert_eq!(after.maintenance_until(), None);
    assert_eq!(after.pageable().len(), 1);
    assert_eq!(
        run.state.maintenance_until, None,
        "a past window is forgotten"
    );
}

#[test]
fn an_empty_building_in_maintenance_is_ok_and_says_so() {
    let mut run = Run::new(building());
    run.state.set_maintenance(Some(NOW + Duration::hours(1)));
    let v = run.verdict();
    assert_eq!(v.status, Status::Ok);
    assert_eq!(codes(&v), [Code::Maintenance]);
}

#[test]
fn a_backfilled_condition_carries_when_it_began() {
    // The gateway was offline for three hours; its backlog shows the pump
    // switched to manual at the start of the outage and never back.
    let mut run = Run::new(building());
    run.site = Site::with_cabinet_and_panel();
    let mut offline = run.state.clone();
    let site = run.site.0.clone();
    evaluate(
        &run.building,
        &site,
        Some(false),
        NOW,
        &run.settings,
        &mut offline,
    );
    run.state = offline;
    run.wait(3 * 3600);
    let switched = NOW + Duration::minutes(5);
    run.site = run.site.clone().at("pumps.fire_auto", 0.0, switched);
    let v = run.verdict();
    let r = only(&v, Code::FirePumpManual);
    assert_eq!(r.since, Some(switched), "not the time it arrived");
    assert!(r.current);
    assert_eq!(
        v.pageable().len(),
        1,
        "still true now: page, saying since when"
    );
}

#[test]
fn a_reading_from_the_future_counts_from_now() {
    let mut run = Run::new(building());
    run.site = run
        .site
        .clone()
        .at("riser.pressure", 0.03, NOW + Duration::minutes(1));
    run.verdict();
    assert_eq!(run.wait(59).verdict().status, Status::Ok);
    assert_eq!(run.wait(1).verdict().status, Status::Failing);
}

#[test]
fn the_rule_state_round_trips_through_json() {
    let mut run = Run::new(building());
    run.state.set_maintenance(Some(NOW + Duration::hours(1)));
    run.read("tank.level", 1.0).read("pumps.jockey_starts", 3.0);
    run.wait(10).verdict();
    let json = serde_json::to_string(&run.state).unwrap();
    let back: RuleState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, run.state);
    assert_eq!(
        serde_json::from_str::<RuleState>("{}").unwrap(),
        RuleState::default()
    );
}

#[test]
fn reasons_stored_before_current_existed_read_back_as_current() {
    let old = r#"{"code":"tank_volume_low","point":"tank.level","value":6.4,"required":12.0,"clause":"GB 50974-2014 5.2.1"}"#;
    let r: Reason = serde_json::from_str(old).unwrap();
    assert!(r.current);
}

#[test]
fn every_reason_has_words_in_both_languages() {
    use Code::*;
    let all = [
        TankVolumeLow,
        TankVolumeFalling,
        FirePoolVolumeLow,
        StaticPressureLow,
        SprinklerPressureLow,
        HydrantPressureLow,
        HydrantPressureHigh,
        FirePumpFault,
        FirePumpManual,
        StandbyPumpFault,
        StandbyPumpManual,
        JockeyPumpFault,
        JockeyPumpManual,
        JockeyPumpCycling,
        PanelFault,
        PanelDisabled,
        PanelMainsFault,
        PanelBackupFault,
        FireAlarm,
        CannotVerify,
        NoData,
        PointStale,
        GatewayOffline,
        Maintenance,
    ];
    for code in all {
        let r = Reason {
            value: Some(1.5),
            required: Some(2.5),
            clause: Some("GB 00000-0000 9.9.9".into()),
            hours: Some(3.0),
            ..Reason::new(code, Some("dev.point"))
        };
        let (zh, en) = (render(&r, Lang::Zh), render(&r, Lang::En));
        assert!(
            zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{code:?}: {zh}"
        );
        assert!(en.is_ascii() || en.contains('³'), "{code:?}: {en}");
        let cites = !matches!(
            code,
            CannotVerify | NoData | PointStale | GatewayOffline | Maintenance
        );
        let measured = matches!(
            code,
            TankVolumeLow
                | TankVolumeFalling
                | FirePoolVolumeLow
                | StaticPressureLow
                | SprinklerPressureLow
                | HydrantPressureLow
                | HydrantPressureHigh
                | JockeyPumpCycling
        );
        for text in [&zh, &en] {
            assert!(!cites || text.contains("9.9.9"), "{code:?}: {text}");
            assert!(
                !measured || (text.contains("1.5") && text.contains("2.5")),
                "{code:?}: {text}"
            );
        }
    }
}

#[test]
fn the_simulated_district_loads_and_judges_ok_with_the_default_points() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/buildings-liangping.csv");
    let registry = Registry::load(&path).unwrap();
    let b = registry.get("LP-001").unwrap();
    let v = judge(b, &Site::with_cabinet_and_panel().set("tank.level", 3.0));
    assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
}
