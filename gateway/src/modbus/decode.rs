//! Pure register planning and decoding, no I/O.

use crate::config::{DataType, PointConfig, Table};

/// Most registers one FC 03/04 request may read (Modbus application protocol).
pub const MAX_REGISTERS_PER_READ: u16 = 125;

/// One read request: a contiguous run of registers of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBlock {
    pub table: Table,
    pub start: u16,
    pub count: u16,
}

/// The fewest reads covering every register the points need (values and
/// decimals registers), per table, each at most 125 registers.
pub fn plan_reads(points: &[PointConfig]) -> Vec<ReadBlock> {
    let mut blocks = Vec::new();
    for table in [Table::Holding, Table::Input] {
        let mut registers: Vec<u16> = points
            .iter()
            .filter(|p| p.table == table)
            .flat_map(|p| std::iter::once(p.register).chain(p.decimals_register))
            .collect();
        registers.sort_unstable();
        registers.dedup();
        let mut iter = registers.into_iter();
        let Some(first) = iter.next() else { continue };
        let mut block = ReadBlock {
            table,
            start: first,
            count: 1,
        };
        for register in iter {
            if u32::from(register) - u32::from(block.start) < u32::from(MAX_REGISTERS_PER_READ) {
                block.count = register - block.start + 1;
            } else {
                blocks.push(block);
                block = ReadBlock {
                    table,
                    start: register,
                    count: 1,
                };
            }
        }
        blocks.push(block);
    }
    blocks
}

fn register(data: &[(ReadBlock, Vec<u16>)], table: Table, address: u16) -> u16 {
    data.iter()
        .find(|(b, _)| b.table == table && address >= b.start && address - b.start < b.count)
        .map(|(b, regs)| regs[usize::from(address - b.start)])
        .expect("plan_reads covers every register a point needs")
}

/// Engineering values of `points`, in order, from the blocks `plan_reads`
/// returned for them.
pub fn decode_points(points: &[PointConfig], data: &[(ReadBlock, Vec<u16>)]) -> Vec<f64> {
    points
        .iter()
        .map(|point| {
            let raw = register(data, point.table, point.register);
            let mut value = match (point.bit, point.data_type) {
                (Some(bit), _) => f64::from((raw >> bit) & 1),
                (None, DataType::U16) => f64::from(raw),
                (None, DataType::I16) => f64::from(raw as i16),
            };
            if let Some(decimals) = point.decimals_register {
                // Transmitters report 0-3 decimals; clamp so a garbage
                // register cannot turn a level into 1e-65535.
                let decimals = register(data, point.table, decimals).min(3);
                value /= 10f64.powi(i32::from(decimals));
            }
            value * point.scale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(register: u16) -> PointConfig {
        PointConfig {
            name: format!("p{register}"),
            register,
            table: Table::Holding,
            data_type: DataType::U16,
            bit: None,
            decimals_register: None,
            scale: 1.0,
            unit: None,
            event: false,
        }
    }

    #[test]
    fn nearby_registers_are_read_in_one_request() {
        let mut level = point(4);
        level.decimals_register = Some(3);
        let blocks = plan_reads(&[level, point(0)]);
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
    fn reads_never_exceed_125_registers_and_tables_stay_apart() {
        let mut input = point(10);
        input.table = Table::Input;
        let blocks = plan_reads(&[point(0), point(124), point(125), input]);
        assert_eq!(blocks.len(), 3);
        assert!(blocks.iter().all(|b| b.count <= MAX_REGISTERS_PER_READ));
        assert_eq!(blocks[0].count, 125);
        assert_eq!(blocks[1].start, 125);
        assert_eq!(blocks[2].table, Table::Input);
    }

    #[test]
    fn decimals_register_scales_a_signed_value() {
        let mut level = point(4);
        level.data_type = DataType::I16;
        level.decimals_register = Some(3);
        let blocks = plan_reads(std::slice::from_ref(&level));
        let registers = vec![2, 0xFFFF - 149]; // decimals 2, value -150
        let data = vec![(blocks[0], registers)];
        assert_eq!(decode_points(&[level], &data), vec![-1.5]);
    }

    #[test]
    fn bits_are_read_out_of_a_status_register() {
        let mut fault = point(0);
        fault.bit = Some(1);
        let mut auto = point(0);
        auto.bit = Some(2);
        let blocks = plan_reads(&[fault.clone(), auto.clone()]);
        let data = vec![(blocks[0], vec![0b010])];
        assert_eq!(decode_points(&[fault, auto], &data), vec![1.0, 0.0]);
    }
}
