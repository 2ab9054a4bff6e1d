use super::*;

const STEP: Duration = Duration::from_millis(100);

/// [`BuildingSpec::example`], with or without a jockey pump.
fn spec(jockey_pump: bool) -> BuildingSpec {
    BuildingSpec {
        jockey_pump,
        ..BuildingSpec::example("T-1")
    }
}

/// Ten times the default leak, so a jockey cycle takes 100 s, not 1 000.
fn options() -> SimOptions {
    SimOptions {
        leak_mpa_per_s: 0.0005,
        ..SimOptions::default()
    }
}

fn model(jockey_pump: bool) -> BuildingModel {
    BuildingModel::new(spec(jockey_pump), &options())
}

fn run(model: &mut BuildingModel, seconds: u32) {
    for _ in 0..seconds * 10 {
        model.step(STEP);
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn a_new_building_is_full_in_auto_and_without_faults() {
    let m = model(false);
    assert!(close(m.level_m(), 2.4));
    assert!(close(m.volume_m3(), 19.2));
    assert!(close(m.effective_volume_m3(), 17.6));
    assert!(close(m.pressure_mpa(), 0.0098 * 8.4));
    assert!(m.faults().is_empty());
    let pumps = m.pumps();
    assert!(pumps.fire_auto && !pumps.fire_running && !pumps.fire_fault && !pumps.jockey_present);
    assert_eq!(m.panel(), PanelStatus::default());
}

#[test]
fn draining_stops_at_half_the_dead_level_by_default() {
    let mut m = model(false);
    m.inject(Fault::DrainTank { to_level_m: None }).unwrap();
    run(&mut m, 10);
    assert!(close(m.level_m(), 1.9), "{}", m.level_m());
    run(&mut m, 100);
    assert!(close(m.level_m(), 0.1));
    assert!(
        m.panel().supervisory,
        "a tank below its dead level is supervisory"
    );
    assert!(close(m.effective_volume_m3(), 0.0));
}

#[test]
fn draining_to_a_given_level_stays_there() {
    let mut m = model(false);
    m.inject(Fault::DrainTank {
        to_level_m: Some(1.0),
    })
    .unwrap();
    run(&mut m, 60);
    assert!(close(m.level_m(), 1.0));
    assert_eq!(
        m.faults(),
        vec![Fault::DrainTank {
            to_level_m: Some(1.0)
        }]
    );
}

#[test]
fn a_drain_level_outside_the_tank_is_refused() {
    let mut m = model(false);
    for bad in [-0.1, 2.6, f64::NAN] {
        let refused = m.inject(Fault::DrainTank {
            to_level_m: Some(bad),
        });
        assert!(
            matches!(refused, Err(FaultError::LevelOutOfRange { .. })),
            "{bad}"
        );
    }
    assert!(m.faults().is_empty());
}

#[test]
fn broken_loops_are_kept_per_channel_and_listed_after_the_other_faults() {
    let mut m = model(false);
    m.inject(Fault::WireBreak { channel: 6 }).unwrap();
    m.inject(Fault::FireAlarm).unwrap();
    m.inject(Fault::WireBreak { channel: 1 }).unwrap();
    assert!(m.wire_broken(1) && m.wire_broken(6) && !m.wire_broken(0));
    assert_eq!(
        m.faults(),
        vec![
            Fault::FireAlarm,
            Fault::WireBreak { channel: 1 },
            Fault::WireBreak { channel: 6 },
        ]
    );
    assert_eq!(
        m.inject(Fault::WireBreak { channel: 8 }),
        Err(FaultError::ChannelOutOfRange { channel: 8 })
    );
    assert!(!m.wire_broken(8));
    m.clear();
    assert!(!m.wire_broken(1));
    let json: Fault = serde_json::from_str(r#"{"fault":"wire_break","channel":0}"#).unwrap();
    assert_eq!(json, Fault::WireBreak { channel: 0 });
}

#[test]
fn clearing_refills_the_tank_to_the_normal_level() {
    let mut m = model(false);
    m.inject(Fault::DrainTank {
        to_level_m: Some(1.4),
    })
    .unwrap();
    run(&mut m, 30);
    m.clear();
    run(&mut m, 10);
    assert!(close(m.level_m(), 1.9), "{}", m.level_m());
    run(&mut m, 60);
    assert!(close(m.level_m(), 2.4));
    assert!(m.faults().is_empty());
}

#[test]
fn without_a_jockey_pump_pressure_follows_the_column() {
    let mut m = model(false);
    m.inject(Fault::DrainTank {
        to_level_m: Some(1.0),
    })
    .unwrap();
    run(&mut m, 60);
    assert!(close(m.pressure_mpa(), 0.0098 * 7.0));
}

#[test]
fn a_jockey_pump_keeps_the_pressure_between_start_and_stop() {
    let mut m = model(true);
    assert!(close(m.pressure_mpa(), 0.25));
    let mut lowest = f64::MAX;
    let mut highest = 0.0_f64;
    for _ in 0..10 * 600 {
        m.step(STEP);
        lowest = lowest.min(m.pressure_mpa());
        highest = highest.max(m.pressure_mpa());
    }
    assert!(
        lowest > 0.199 && highest <= 0.25 + 1e-9,
        "{lowest}..{highest}"
    );
    // 0.05 MPa leaks in 100 s and is pumped back in 5 s: five cycles in 10 min.
    assert_eq!(m.pumps().jockey_starts, 5);
}

#[test]
fn a_running_jockey_pump_shows_in_the_cabinet_bits() {
    let mut m = model(true);
    run(&mut m, 101);
    let pumps = m.pumps();
    assert!(pumps.jockey_present && pumps.jockey_running, "{pumps:?}");
    assert_eq!(pumps.jockey_starts, 1);
}

#[test]
fn a_faulted_jockey_pump_lets_the_pressure_decay_to_the_column() {
    let mut m = model(true);
    m.inject(Fault::JockeyFault).unwrap();
    run(&mut m, 400);
    assert!(close(m.pressure_mpa(), m.column_pressure_mpa()));
    let pumps = m.pumps();
    assert!(pumps.jockey_fault && !pumps.jockey_running && pumps.jockey_starts == 0);
}

#[test]
fn a_tank_below_its_dead_level_stops_the_jockey_pump() {
    let mut m = model(true);
    m.inject(Fault::DrainTank { to_level_m: None }).unwrap();
    run(&mut m, 600);
    assert!(!m.pumps().jockey_running);
    assert!(
        close(m.pressure_mpa(), 0.0098 * 6.1),
        "{}",
        m.pressure_mpa()
    );
}

#[test]
fn pressure_loss_drops_to_the_residual_and_runs_the_jockey_pump_continuously() {
    let mut m = model(true);
    m.inject(Fault::PressureLoss).unwrap();
    run(&mut m, 60);
    assert!(close(m.pressure_mpa(), 0.02));
    assert!(m.pumps().jockey_running);
    assert_eq!(m.pumps().jockey_starts, 1);
    assert!(m.panel().supervisory);
    assert!(close(m.level_m(), 2.4), "the tank is not affected");
}

#[test]
fn pressure_recovers_after_clearing_a_pressure_loss() {
    let mut m = model(true);
    m.inject(Fault::PressureLoss).unwrap();
    run(&mut m, 5);
    m.clear();
    m.step(STEP);
    assert!(m.pressure_mpa() >= m.column_pressure_mpa());
    run(&mut m, 20);
    let recovered = m.pressure_mpa();
    assert!((0.24..=0.25).contains(&recovered), "{recovered}");
    assert!(!m.pumps().jockey_running);

    let mut plain = model(false);
    plain.inject(Fault::PressureLoss).unwrap();
    plain.step(STEP);
    plain.clear();
    plain.step(STEP);
    assert!(close(plain.pressure_mpa(), plain.column_pressure_mpa()));
}

#[test]
fn the_jockey_start_counter_wraps() {
    let mut m = model(true);
    m.jockey_starts = u16::MAX;
    run(&mut m, 101);
    assert_eq!(m.pumps().jockey_starts, 0);
}

#[test]
fn pump_faults_set_the_cabinet_bits() {
    let mut m = model(false);
    m.inject(Fault::FireAlarm).unwrap();
    assert!(m.pumps().fire_running, "the panel starts the pump in auto");
    m.inject(Fault::PumpFault).unwrap();
    let pumps = m.pumps();
    assert!(pumps.fire_fault && !pumps.fire_running);

    let mut manual = model(false);
    manual.inject(Fault::PumpManual).unwrap();
    manual.inject(Fault::FireAlarm).unwrap();
    let pumps = manual.pumps();
    assert!(!pumps.fire_auto && !pumps.fire_running);
}

#[test]
fn panel_faults_set_the_panel_bits() {
    let mut m = model(false);
    for fault in [
        Fault::PanelFault,
        Fault::PanelDisabled,
        Fault::FireAlarm,
        Fault::PowerFault,
    ] {
        m.inject(fault).unwrap();
    }
    let panel = m.panel();
    assert!(panel.fire_alarm && panel.fault && panel.disabled && panel.mains_fault);
    assert!(!panel.supervisory && !panel.backup_fault);
    m.clear();
    assert_eq!(
        m.panel(),
        PanelStatus {
            reset: true,
            ..PanelStatus::default()
        },
        "clearing the alarms is a reset, shown for a moment"
    );
    m.step(Duration::from_secs_f64(crate::model::PANEL_RESET_SECS));
    assert_eq!(m.panel(), PanelStatus::default());
}

#[test]
fn faults_read_from_json_as_the_control_interface_sends_them() {
    let drain: Fault = serde_json::from_str(r#"{"fault":"drain_tank","to_level_m":0.3}"#).unwrap();
    assert_eq!(
        drain,
        Fault::DrainTank {
            to_level_m: Some(0.3)
        }
    );
    let default: Fault = serde_json::from_str(r#"{"fault":"drain_tank"}"#).unwrap();
    assert_eq!(default, Fault::DrainTank { to_level_m: None });
    let loss: Fault = serde_json::from_str(r#"{"fault":"pressure_loss"}"#).unwrap();
    assert_eq!(loss, Fault::PressureLoss);
    assert!(serde_json::from_str::<Fault>(r#"{"fault":"drain_tank","to_level":0.3}"#).is_err());
    assert!(serde_json::from_str::<Fault>(r#"{"fault":"flood"}"#).is_err());
}

#[test]
fn the_standby_pump_takes_over_when_the_duty_pump_trips_in_a_fire() {
    let mut m = model(true);
    m.inject(Fault::FireAlarm).unwrap();
    assert!(m.pumps().fire_running && !m.pumps().standby_running);
    m.inject(Fault::PumpFault).unwrap();
    let p = m.pumps();
    assert!(!p.fire_running && p.standby_running && p.standby_auto && p.jockey_auto);
    m.inject(Fault::StandbyPumpFault).unwrap();
    assert!(!m.pumps().standby_running && m.pumps().standby_fault);
    m.inject(Fault::PumpManual).unwrap();
    assert!(!m.pumps().standby_auto && !m.pumps().jockey_auto);
}
