//! The register map of a simulated building: five devices on one RS-485
//! line (behind a serial device server over TCP, or on an RTU line), each at
//! its own unit id. Every table is read-only and answers both FC 03
//! (holding) and FC 04 (input).
//!
//! | unit | device | registers |
//! |---|---|---|
//! | 1 | tank level transmitter (QDY30A layout) | 0 address, 1 baud code, 2 unit (1 = m), 3 decimals (3), 4 value (i16), 5 range zero, 6 range full |
//! | 2 | pressure transmitter at the most unfavourable point (PTMB layout) | as unit 1; unit 2 = MPa, range 0..1.600 |
//! | 3 | pump control cabinet | 0 status bits, 1 jockey starts, 2 jockey present |
//! | 4 | fire-alarm control panel | 0 status bits |
//! | 5 | 8-channel 4-20 mA analog-input module | 0-7 channel current, µA (u16); 0 = broken loop |
//!
//! The analog-input module's channel 0 carries the tank level (4-20 mA over
//! 0..tank height), channel 1 the pressure at the most unfavourable point
//! (4-20 mA over 0..1.6 MPa); channels 2-7 are spare and read 4 mA.

use tokio_modbus::{ExceptionCode, Request, Response};

use crate::model::{AI_CHANNELS, BuildingModel};

/// Rooftop tank level transmitter.
pub const TANK_UNIT: u8 = 1;
/// Pressure transmitter at the most unfavourable point.
pub const PRESSURE_UNIT: u8 = 2;
/// Pump control cabinet.
pub const PUMP_UNIT: u8 = 3;
/// Fire-alarm control panel.
pub const PANEL_UNIT: u8 = 4;
/// 8-channel 4-20 mA analog-input module.
pub const AI_UNIT: u8 = 5;
/// Every unit on a building's line.
pub const UNITS: [u8; 5] = [TANK_UNIT, PRESSURE_UNIT, PUMP_UNIT, PANEL_UNIT, AI_UNIT];

/// Analog-input channel of the tank level.
pub const AI_LEVEL_CHANNEL: u8 = 0;
/// Analog-input channel of the pressure at the most unfavourable point.
pub const AI_PRESSURE_CHANNEL: u8 = 1;
/// Loop current at the bottom of a transmitter's range, µA.
pub const LOOP_ZERO_UA: u16 = 4000;
/// Loop current at the top of a transmitter's range, µA.
pub const LOOP_FULL_UA: u16 = 20_000;

/// Most registers one read may ask for (Modbus application protocol 6.3).
pub const MAX_READ_QUANTITY: u16 = 125;

/// Transmitter register: baud code 3 = 9600.
const BAUD_9600: u16 = 3;
/// Transmitter register: unit code 1 = m.
const UNIT_M: u16 = 1;
/// Transmitter register: unit code 2 = MPa.
const UNIT_MPA: u16 = 2;
/// Decimals of both transmitters: values are thousandths.
const DECIMALS: u16 = 3;
const SCALE: f64 = 1000.0;
/// Full scale of the pressure transmitter, MPa.
const PRESSURE_RANGE_MPA: f64 = 1.6;

/// A reading as a signed 16-bit register, saturating at the i16 range.
fn i16_register(value: f64) -> u16 {
    let clamped = value
        .round()
        .clamp(f64::from(i16::MIN), f64::from(i16::MAX));
    // Two's complement of the i16 in a u16 register.
    (clamped as i16) as u16
}

fn bits(flags: &[bool]) -> u16 {
    flags
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .fold(0, |acc, (bit, _)| acc | (1 << bit))
}

/// A 4-20 mA transmitter's loop current for `value` over `0..full_scale`,
/// in µA; values outside the range saturate at 4 and 20 mA.
pub fn loop_current_ua(value: f64, full_scale: f64) -> u16 {
    let ratio = if full_scale > 0.0 {
        (value / full_scale).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let span = f64::from(LOOP_FULL_UA - LOOP_ZERO_UA);
    // Between 4000 and 20 000 by construction.
    LOOP_ZERO_UA + (span * ratio).round() as u16
}

fn analog_inputs(model: &BuildingModel) -> Vec<u16> {
    let level = loop_current_ua(model.level_m(), model.spec().tank_height_m);
    let pressure = loop_current_ua(model.pressure_mpa(), PRESSURE_RANGE_MPA);
    (0..AI_CHANNELS)
        .map(|channel| match channel {
            _ if model.wire_broken(channel) => 0,
            AI_LEVEL_CHANNEL => level,
            AI_PRESSURE_CHANNEL => pressure,
            _ => LOOP_ZERO_UA,
        })
        .collect()
}

fn transmitter(unit: u8, unit_code: u16, value: f64, range_full: f64) -> Vec<u16> {
    vec![
        u16::from(unit),
        BAUD_9600,
        unit_code,
        DECIMALS,
        i16_register(value * SCALE),
        0,
        i16_register(range_full * SCALE),
    ]
}

/// Every register of one device, or `None` if no device answers at `unit`.
fn device_registers(model: &BuildingModel, unit: u8) -> Option<Vec<u16>> {
    match unit {
        TANK_UNIT => {
            let full = model.spec().tank_height_m;
            Some(transmitter(unit, UNIT_M, model.level_m(), full))
        }
        PRESSURE_UNIT => Some(transmitter(
            unit,
            UNIT_MPA,
            model.pressure_mpa(),
            PRESSURE_RANGE_MPA,
        )),
        PUMP_UNIT => {
            let p = model.pumps();
            let status = bits(&[
                p.fire_running,
                p.fire_fault,
                p.fire_auto,
                p.jockey_running,
                p.jockey_fault,
                p.standby_running,
                p.standby_fault,
                p.standby_auto,
                p.jockey_auto,
            ]);
            Some(vec![status, p.jockey_starts, u16::from(p.jockey_present)])
        }
        PANEL_UNIT => {
            let p = model.panel();
            Some(vec![bits(&[
                p.fire_alarm,
                p.fault,
                p.supervisory,
                p.disabled,
                p.mains_fault,
                p.backup_fault,
                p.reset,
            ])])
        }
        AI_UNIT => Some(analog_inputs(model)),
        _ => None,
    }
}

/// Reads `count` registers from `addr` of the device at `unit`.
///
/// An unknown unit is `GatewayTargetDevice` (the device server finds no one
/// on the line), a quantity of 0 or above 125 `IllegalDataValue`, and a
/// range outside the device's table `IllegalDataAddress`.
pub fn read_registers(
    model: &BuildingModel,
    unit: u8,
    addr: u16,
    count: u16,
) -> Result<Vec<u16>, ExceptionCode> {
    let table = device_registers(model, unit).ok_or(ExceptionCode::GatewayTargetDevice)?;
    if count == 0 || count > MAX_READ_QUANTITY {
        return Err(ExceptionCode::IllegalDataValue);
    }
    let start = usize::from(addr);
    let end = start + usize::from(count);
    table
        .get(start..end)
        .map(<[u16]>::to_vec)
        .ok_or(ExceptionCode::IllegalDataAddress)
}

/// Answers one Modbus request: reads of holding or input registers; any
/// other function, writes included, is `IllegalFunction`.
pub fn respond(
    model: &BuildingModel,
    unit: u8,
    request: &Request<'_>,
) -> Result<Response, ExceptionCode> {
    if device_registers(model, unit).is_none() {
        return Err(ExceptionCode::GatewayTargetDevice);
    }
    match *request {
        Request::ReadHoldingRegisters(addr, count) => {
            read_registers(model, unit, addr, count).map(Response::ReadHoldingRegisters)
        }
        Request::ReadInputRegisters(addr, count) => {
            read_registers(model, unit, addr, count).map(Response::ReadInputRegisters)
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::model::Fault;
    use crate::options::SimOptions;
    use crate::spec::BuildingSpec;

    fn model(jockey_pump: bool) -> BuildingModel {
        let spec = BuildingSpec {
            jockey_pump,
            ..BuildingSpec::example("R-1")
        };
        BuildingModel::new(spec, &SimOptions::default())
    }

    #[test]
    fn the_level_transmitter_reports_millimetres_with_three_decimals() {
        let registers = read_registers(&model(false), TANK_UNIT, 0, 7).unwrap();
        assert_eq!(registers, vec![1, 3, 1, 3, 2400, 0, 2500]);
    }

    #[test]
    fn the_pressure_transmitter_reports_thousandths_of_an_mpa() {
        // 0.0098 × 8.4 = 0.08232 MPa.
        let registers = read_registers(&model(false), PRESSURE_UNIT, 0, 7).unwrap();
        assert_eq!(registers, vec![2, 3, 2, 3, 82, 0, 1600]);
    }

    #[test]
    fn draining_the_tank_lowers_the_level_register() {
        let mut m = model(false);
        m.inject(Fault::DrainTank {
            to_level_m: Some(1.25),
        })
        .unwrap();
        for _ in 0..1000 {
            m.step(std::time::Duration::from_millis(100));
        }
        assert_eq!(read_registers(&m, TANK_UNIT, 4, 1).unwrap(), vec![1250]);
    }

    #[test]
    fn negative_values_are_encoded_as_twos_complement_and_saturate() {
        assert_eq!(i16_register(-1.0), 0xFFFF);
        assert_eq!(i16_register(-1234.4), (-1234_i16) as u16);
        assert_eq!(i16_register(40_000.0), 0x7FFF);
        assert_eq!(i16_register(-40_000.0), 0x8000);
    }

    #[test]
    fn the_pump_cabinet_packs_its_bits_and_counts_jockey_starts() {
        let mut m = model(true);
        assert_eq!(
            read_registers(&m, PUMP_UNIT, 0, 3).unwrap(),
            // duty, standby and jockey pumps in auto
            vec![0b1_1000_0100, 0, 1]
        );
        m.inject(Fault::PumpFault).unwrap();
        m.inject(Fault::PumpManual).unwrap();
        m.inject(Fault::PressureLoss).unwrap();
        m.step(std::time::Duration::from_millis(100));
        assert_eq!(
            read_registers(&m, PUMP_UNIT, 0, 3).unwrap(),
            vec![0b0_1010, 1, 1]
        );
    }

    #[test]
    fn the_panel_packs_alarm_fault_supervisory_disabled_and_power_bits() {
        let mut m = model(false);
        m.inject(Fault::FireAlarm).unwrap();
        m.inject(Fault::PanelDisabled).unwrap();
        m.inject(Fault::PowerFault).unwrap();
        // Fire alarm, fault (from mains), disabled, mains fault.
        assert_eq!(
            read_registers(&m, PANEL_UNIT, 0, 1).unwrap(),
            vec![0b01_1011]
        );
    }

    #[test]
    fn the_analog_module_carries_level_and_pressure_as_4_to_20_ma() {
        let registers = read_registers(&model(false), AI_UNIT, 0, 8).unwrap();
        // 4 + 16 × 2.4 / 2.5 = 19.36 mA; 4 + 16 × 0.08232 / 1.6 = 4.8232 mA.
        assert_eq!(
            registers,
            vec![19_360, 4823, 4000, 4000, 4000, 4000, 4000, 4000]
        );
        let input = respond(&model(false), AI_UNIT, &Request::ReadInputRegisters(0, 8));
        assert_eq!(input, Ok(Response::ReadInputRegisters(registers)));
    }

    #[test]
    fn a_broken_loop_reads_zero_microamps_on_its_channel_only() {
        let mut m = model(false);
        m.inject(Fault::WireBreak { channel: 0 }).unwrap();
        m.inject(Fault::WireBreak { channel: 7 }).unwrap();
        let registers = read_registers(&m, AI_UNIT, 0, 8).unwrap();
        assert_eq!(registers, vec![0, 4823, 4000, 4000, 4000, 4000, 4000, 0]);
        m.clear();
        assert_eq!(read_registers(&m, AI_UNIT, 0, 1).unwrap(), vec![19_360]);
    }

    #[test]
    fn loop_currents_saturate_at_4_and_20_ma() {
        assert_eq!(loop_current_ua(-1.0, 2.5), 4000);
        assert_eq!(loop_current_ua(1.25, 2.5), 12_000);
        assert_eq!(loop_current_ua(3.0, 2.5), 20_000);
        assert_eq!(loop_current_ua(1.0, 0.0), 4000);
    }

    #[test]
    fn reads_past_a_device_table_are_illegal_addresses() {
        let m = model(false);
        assert_eq!(
            read_registers(&m, TANK_UNIT, 0, 8),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            read_registers(&m, TANK_UNIT, 7, 1),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            read_registers(&m, PANEL_UNIT, 1, 1),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            read_registers(&m, AI_UNIT, 4, 5),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            read_registers(&m, PUMP_UNIT, u16::MAX, 125),
            Err(ExceptionCode::IllegalDataAddress)
        );
    }

    #[test]
    fn a_quantity_of_zero_or_above_125_is_an_illegal_value() {
        let m = model(false);
        assert_eq!(
            read_registers(&m, TANK_UNIT, 0, 0),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            read_registers(&m, TANK_UNIT, 0, 126),
            Err(ExceptionCode::IllegalDataValue)
        );
    }

    #[test]
    fn an_unknown_unit_is_a_gateway_target_failure() {
        let m = model(false);
        for unit in [0, 6, 247, 255] {
            assert_eq!(
                read_registers(&m, unit, 0, 1),
                Err(ExceptionCode::GatewayTargetDevice)
            );
        }
    }

    #[test]
    fn input_registers_mirror_holding_registers_and_writes_are_refused() {
        let m = model(false);
        let input = respond(&m, TANK_UNIT, &Request::ReadInputRegisters(0, 7)).unwrap();
        assert_eq!(
            input,
            Response::ReadInputRegisters(vec![1, 3, 1, 3, 2400, 0, 2500])
        );
        let write = Request::WriteSingleRegister(4, 0);
        assert_eq!(
            respond(&m, TANK_UNIT, &write),
            Err(ExceptionCode::IllegalFunction)
        );
        let writes = Request::WriteMultipleRegisters(0, Cow::Owned(vec![1, 2]));
        assert_eq!(
            respond(&m, PUMP_UNIT, &writes),
            Err(ExceptionCode::IllegalFunction)
        );
        assert_eq!(
            respond(&m, 9, &write),
            Err(ExceptionCode::GatewayTargetDevice)
        );
    }
}
