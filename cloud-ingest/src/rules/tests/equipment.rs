//! Pump cabinet and fire alarm panel.

use super::*;

fn cabinet() -> Site {
    Site::with_cabinet_and_panel()
}

fn with_jockey() -> Building {
    let mut b = building();
    b.jockey_pump = true;
    b
}

#[test]
fn a_pump_left_in_manual_fails_the_building() {
    let mut run = Run::new(building());
    run.site = cabinet();
    run.bit("pumps.fire_auto", 0.0);
    assert_eq!(
        run.wait(9 * 60).verdict().status,
        Status::Ok,
        "a test in manual"
    );
    let v = run.wait(60).verdict();
    assert_eq!(v.status, Status::Failing);
    let r = only(&v, Code::FirePumpManual);
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 11.0.1"));
    assert_eq!(r.point.as_deref(), Some("pumps.fire_auto"));
    assert_eq!(r.since, Some(NOW));
    assert!(render(r, Lang::Zh).contains("自动启泵状态"));
}

#[test]
fn a_manual_bit_also_puts_the_pump_in_manual() {
    let mut b = building();
    b.points.fire_pump_auto = String::new();
    b.points.fire_pump_manual = "cab.manual".into();
    let v = judge(&b, &cabinet().set("cab.manual", 1.0));
    assert_eq!(
        only(&v, Code::FirePumpManual).point.as_deref(),
        Some("cab.manual")
    );
    assert_eq!(
        judge(&b, &cabinet().set("cab.manual", 0.0)).status,
        Status::Ok
    );
}

#[test]
fn a_tripped_duty_pump_fails_citing_the_fire_protection_law() {
    let v = judge(&building(), &cabinet().set("pumps.fire_fault", 1.0));
    assert_eq!(v.status, Status::Failing);
    let r = only(&v, Code::FirePumpFault);
    assert_eq!(r.clause.as_deref(), Some("消防法 第十六条"));
    assert!(render(r, Lang::Zh).contains("《消防法》第十六条"));
    assert!(render(r, Lang::En).contains("Fire Protection Law of the PRC, art. 16"));
}

#[test]
fn a_tripped_or_manual_standby_pump_warns() {
    let v = judge(&building(), &cabinet().set("pumps.standby_fault", 1.0));
    assert_eq!(
        (v.status, codes(&v)),
        (Status::Warning, vec![Code::StandbyPumpFault])
    );
    let v = judge(&building(), &cabinet().set("pumps.standby_auto", 0.0));
    assert_eq!(
        (v.status, codes(&v)),
        (Status::Warning, vec![Code::StandbyPumpManual])
    );
}

#[test]
fn jockey_pump_rules_apply_only_where_the_building_has_one() {
    // The simulated cabinet reads jockey_auto 0 where there is no jockey pump.
    assert_eq!(judge(&building(), &cabinet()).status, Status::Ok);
    let v = judge(&with_jockey(), &cabinet().set("riser.pressure", 0.2));
    assert_eq!(codes(&v), [Code::JockeyPumpManual]);
    let v = judge(
        &with_jockey(),
        &cabinet()
            .set("riser.pressure", 0.2)
            .set("pumps.jockey_auto", 1.0)
            .set("pumps.jockey_fault", 1.0),
    );
    assert_eq!(
        (v.status, codes(&v)),
        (Status::Warning, vec![Code::JockeyPumpFault])
    );
}

#[test]
fn a_jockey_pump_starting_more_than_15_times_an_hour_warns_of_a_leak() {
    let mut run = Run::new(with_jockey());
    run.read("riser.pressure", 0.2)
        .read("pumps.jockey_starts", 100.0);
    // One start every 5 minutes: 12 an hour, fine.
    for n in 1..=12 {
        let v = run
            .wait(300)
            .read("pumps.jockey_starts", 100.0 + n as f64)
            .verdict();
        assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
    }
    // Then one every 2 minutes: the count over the last hour passes 15.
    let mut n = 112.0;
    let v = loop {
        n += 1.0;
        let v = run.wait(120).read("pumps.jockey_starts", n).verdict();
        if v.status != Status::Ok {
            break v;
        }
        assert!(n < 130.0, "never warned");
    };
    let r = only(&v, Code::JockeyPumpCycling);
    assert_eq!(v.status, Status::Warning);
    assert_eq!(r.required, Some(15.0));
    assert!(r.value.unwrap() > 15.0 && r.value.unwrap() <= 17.0, "{r:?}");
    assert_eq!(r.clause.as_deref(), Some("GB 50974-2014 5.3.4"));
    assert!(render(r, Lang::Zh).contains("泄漏"));
}

#[test]
fn a_restarted_jockey_counter_is_not_taken_for_starts() {
    let mut run = Run::new(with_jockey());
    run.read("riser.pressure", 0.2)
        .read("pumps.jockey_starts", 60_000.0);
    run.wait(60).read("pumps.jockey_starts", 3.0);
    let v = run.wait(60).read("pumps.jockey_starts", 5.0).verdict();
    assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
}

#[test]
fn panel_faults_disabling_and_power_failures_warn_citing_their_clauses() {
    let cases = [
        ("panel.fault", Code::PanelFault, "消防法 第十六条"),
        ("panel.disabled", Code::PanelDisabled, "消防法 第二十八条"),
        (
            "panel.mains_fault",
            Code::PanelMainsFault,
            "GB 50116-2013 10.1.1",
        ),
        (
            "panel.backup_fault",
            Code::PanelBackupFault,
            "GB 50116-2013 10.1.1",
        ),
    ];
    for (point, code, clause) in cases {
        let v = judge(&building(), &cabinet().set(point, 1.0));
        assert_eq!(v.status, Status::Warning, "{point}");
        let r = only(&v, code);
        assert_eq!(r.clause.as_deref(), Some(clause));
        assert_eq!(r.point.as_deref(), Some(point));
    }
    let r = Reason::new(Code::PanelDisabled, Some("panel.disabled"));
    assert!(render(&r, Lang::Zh).contains("屏蔽"));
}

#[test]
fn a_fire_alarm_shows_at_once_as_a_warning() {
    let mut run = Run::new(building());
    run.site = cabinet();
    run.bit("panel.fire_alarm", 1.0);
    let v = run.verdict();
    assert_eq!(
        v.status,
        Status::Warning,
        "no duration under default settings"
    );
    let r = only(&v, Code::FireAlarm);
    assert!(render(r, Lang::Zh).contains("119"));
    run.bit("panel.fire_alarm", 0.0);
    assert_eq!(
        run.wait(1).verdict().status,
        Status::Ok,
        "gone at the reset"
    );
}

#[test]
fn a_bit_reading_anything_but_0_or_1_cannot_be_verified() {
    let v = judge(&building(), &cabinet().set("pumps.fire_fault", 2.0));
    assert_eq!(v.status, Status::Warning);
    assert_eq!(
        only(&v, Code::CannotVerify).point.as_deref(),
        Some("pumps.fire_fault")
    );
    let v = judge(
        &building(),
        &cabinet().bad("pumps.fire_auto", Quality::Unreachable),
    );
    assert_eq!(codes(&v), [Code::CannotVerify]);
}

#[test]
fn state_bits_are_not_aged_like_analogue_points() {
    // A pump tripped two days ago and nothing changed since: still tripped.
    let site = cabinet().at("pumps.fire_fault", 1.0, NOW - Duration::days(2));
    let v = judge(&building(), &site);
    assert_eq!(codes(&v), [Code::FirePumpFault]);
    assert_eq!(v.reasons[0].since, Some(NOW - Duration::days(2)));
}

#[test]
fn a_building_whose_cabinet_and_panel_never_reported_is_judged_on_its_water_alone() {
    let v = judge(&building(), &Site::healthy());
    assert_eq!(v.status, Status::Ok, "{:?}", v.reasons);
}

#[test]
fn an_unmapped_point_is_never_judged() {
    let mut b = building();
    b.points.panel_fault = String::new();
    let v = judge(&b, &cabinet().set("panel.fault", 1.0));
    assert_eq!(v.status, Status::Ok);
}
