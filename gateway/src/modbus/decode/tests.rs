use super::*;
use crate::config::CurrentLoop;

fn point(register: u16) -> PointConfig {
    PointConfig::new(format!("p{register}"), register)
}

fn one_block(points: &[PointConfig], registers: Vec<u16>) -> Vec<(ReadBlock, BlockData)> {
    let blocks = plan_reads(points, ReadLimits::default());
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    vec![(blocks[0], BlockData::Registers(registers))]
}

#[test]
fn nearby_registers_are_read_in_one_request() {
    let mut level = point(4);
    level.decimals_register = Some(3);
    let blocks = plan_reads(&[level, point(0)], ReadLimits::default());
    assert_eq!(
        blocks,
        vec![ReadBlock {
            table: Table::Holding,
            start: 0,
            count: 5
        }]
    );
}

#[test]
fn reads_never_exceed_the_limit_and_tables_stay_apart() {
    let mut input = point(10);
    input.table = Table::Input;
    let points = [point(0), point(124), point(125), input];
    let blocks = plan_reads(&points, ReadLimits::default());
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0].count, 125);
    assert_eq!(blocks[1].start, 125);
    assert_eq!(blocks[2].table, Table::Input);
    assert_eq!(blocks.len(), minimum_reads(&points, ReadLimits::default()));
}

#[test]
fn a_32_bit_value_is_never_split_across_two_reads() {
    let mut wide = point(124);
    wide.data_type = DataType::F32;
    let blocks = plan_reads(&[point(0), wide], ReadLimits::default());
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        blocks[1],
        ReadBlock {
            table: Table::Holding,
            start: 124,
            count: 2
        }
    );
}

#[test]
fn small_devices_and_unmapped_gaps_get_more_reads() {
    let points = [point(0), point(5), point(30)];
    let picky = ReadLimits {
        max_registers: 125,
        max_gap: 0,
    };
    assert_eq!(plan_reads(&points, picky).len(), 3);
    let short = ReadLimits {
        max_registers: 8,
        max_gap: 125,
    };
    assert_eq!(plan_reads(&points, short).len(), 2);
    let gaps_up_to_10 = ReadLimits {
        max_registers: 125,
        max_gap: 10,
    };
    assert_eq!(plan_reads(&points, gaps_up_to_10).len(), 2);
}

#[test]
fn greedy_coalescing_meets_the_theoretical_minimum_on_a_dense_map() {
    let points: Vec<_> = (0..1000).step_by(3).map(point).collect();
    let limits = ReadLimits::default();
    assert_eq!(
        plan_reads(&points, limits).len(),
        minimum_reads(&points, limits)
    );
}

#[test]
fn decimals_register_scales_a_signed_value() {
    let mut level = point(4);
    level.data_type = DataType::I16;
    level.decimals_register = Some(3);
    let data = one_block(std::slice::from_ref(&level), vec![2, 0xFFFF - 149]); // decimals 2, value -150
    assert_eq!(
        decode_point(&level, &data),
        Decoded {
            value: -1.5,
            quality: Quality::Good
        }
    );
}

#[test]
fn garbage_in_the_decimals_register_is_a_sensor_fault() {
    let mut level = point(4);
    level.decimals_register = Some(3);
    let data = one_block(std::slice::from_ref(&level), vec![9, 1234]);
    assert_eq!(decode_point(&level, &data).quality, Quality::SensorFault);
}

#[test]
fn bits_are_read_out_of_a_status_register() {
    let mut fault = point(0);
    fault.bit = Some(1);
    let mut auto = point(0);
    auto.bit = Some(2);
    let data = one_block(&[fault.clone(), auto.clone()], vec![0b010]);
    assert_eq!(decode_point(&fault, &data).value, 1.0);
    assert_eq!(decode_point(&auto, &data).value, 0.0);
}

#[test]
fn every_byte_order_decodes_the_same_f32() {
    // 1.25 = 0x3FA0_0000: bytes A=3F B=A0 C=00 D=00.
    let cases = [
        (WordOrder::Abcd, [0x3FA0, 0x0000]),
        (WordOrder::Cdab, [0x0000, 0x3FA0]),
        (WordOrder::Badc, [0xA03F, 0x0000]),
        (WordOrder::Dcba, [0x0000, 0xA03F]),
    ];
    for (order, registers) in cases {
        let mut p = point(0);
        p.data_type = DataType::F32;
        p.order = order;
        let data = one_block(std::slice::from_ref(&p), registers.to_vec());
        assert_eq!(decode_point(&p, &data).value, 1.25, "{order:?}");
    }
}

#[test]
fn signed_and_unsigned_32_bit_values_keep_their_sign() {
    let mut signed = point(0);
    signed.data_type = DataType::I32;
    signed.order = WordOrder::Cdab;
    let data = one_block(std::slice::from_ref(&signed), vec![0xFFFE, 0xFFFF]); // -2, low word first
    assert_eq!(decode_point(&signed, &data).value, -2.0);
    let mut unsigned = point(0);
    unsigned.data_type = DataType::U32;
    let data = one_block(std::slice::from_ref(&unsigned), vec![0x0001, 0x0000]);
    assert_eq!(decode_point(&unsigned, &data).value, 65536.0);
}

#[test]
fn a_4_20_ma_loop_maps_to_the_engineering_range_and_a_broken_wire_is_a_sensor_fault() {
    // An analog-input module reporting µA; a 0-1.6 MPa transmitter.
    let mut p = point(0);
    p.scale = 0.001;
    p.current_loop = Some(CurrentLoop {
        at_4ma: 0.0,
        at_20ma: 1.6,
    });
    let at =
        |micro_amps: u16| decode_point(&p, &one_block(std::slice::from_ref(&p), vec![micro_amps]));
    assert_eq!(
        at(12_000),
        Decoded {
            value: 0.8,
            quality: Quality::Good
        }
    );
    assert_eq!(at(4_000).value, 0.0);
    assert_eq!(
        at(3_000).quality,
        Quality::SensorFault,
        "wire break: below 3.8 mA"
    );
    assert_eq!(
        at(21_000).quality,
        Quality::SensorFault,
        "short circuit: above 20.5 mA"
    );
}

#[test]
fn a_value_outside_the_transmitter_range_is_a_sensor_fault() {
    let mut p = point(0);
    p.scale = 0.001;
    p.range = Some([0.0, 1.6]);
    let data = one_block(std::slice::from_ref(&p), vec![1_700]);
    assert_eq!(
        decode_point(&p, &data),
        Decoded {
            value: 1.7,
            quality: Quality::SensorFault
        }
    );
}

#[test]
fn coils_and_discrete_inputs_are_planned_as_bits() {
    let mut run = point(3);
    run.table = Table::DiscreteInput;
    let mut alarm = point(1500);
    alarm.table = Table::DiscreteInput;
    let blocks = plan_reads(&[run.clone(), alarm.clone()], ReadLimits::default());
    assert_eq!(
        blocks,
        vec![ReadBlock {
            table: Table::DiscreteInput,
            start: 3,
            count: 1498
        }]
    );
    let mut bits = vec![false; 1498];
    bits[0] = true;
    let data = vec![(blocks[0], BlockData::Bits(bits))];
    assert_eq!(decode_point(&run, &data).value, 1.0);
    assert_eq!(decode_point(&alarm, &data).value, 0.0);
}
