//! Pure register planning and decoding, no I/O.

use riser_contract::Quality;

use crate::config::{DataType, PointConfig, Table, WordOrder};

/// Most registers one FC 03/04 request may read (Modbus application protocol).
pub const MAX_REGISTERS_PER_READ: u16 = 125;
/// Most bits one FC 01/02 request may read.
pub const MAX_BITS_PER_READ: u16 = 2000;
/// Loop currents outside this band mean a broken wire or a failed transmitter.
pub const LOOP_MA_MIN: f64 = 3.8;
pub const LOOP_MA_MAX: f64 = 20.5;

/// One read request: a contiguous run of registers (or bits) of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBlock {
    pub table: Table,
    pub start: u16,
    pub count: u16,
}

/// How long and how sparse a read may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most registers per request (bits: [`MAX_BITS_PER_READ`]).
    pub max_registers: u16,
    /// Unused registers a request may span (for coils and discrete inputs,
    /// 16 bits per register).
    pub max_gap: u16,
}

impl ReadLimits {
    /// Most addresses per read and most unused addresses spanned, for
    /// `table`; a bit costs a sixteenth of a register on the wire.
    fn for_table(self, table: Table) -> (u16, u32) {
        if table.is_bits() {
            (MAX_BITS_PER_READ, u32::from(self.max_gap) * 16)
        } else {
            (self.max_registers, u32::from(self.max_gap))
        }
    }
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_registers: MAX_REGISTERS_PER_READ,
            max_gap: MAX_REGISTERS_PER_READ,
        }
    }
}

/// What a block read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockData {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
}

/// The addresses a point needs: `(table, first, last)` of its value, and its
/// decimals register if any.
fn spans(p: &PointConfig) -> impl Iterator<Item = (Table, u16, u16)> {
    let last = p.register.saturating_add(p.data_type.width() - 1);
    std::iter::once((p.table, p.register, last)).chain(p.decimals_register.map(|d| (p.table, d, d)))
}

/// The fewest reads covering every address the points need, per table: a
/// read grows while it stays within the size limit and the unused gap it
/// would span is at most `max_gap`.
pub fn plan_reads(points: &[PointConfig], limits: ReadLimits) -> Vec<ReadBlock> {
    let mut blocks = Vec::new();
    for table in [
        Table::Holding,
        Table::Input,
        Table::Coil,
        Table::DiscreteInput,
    ] {
        let (max, max_gap) = limits.for_table(table);
        let mut needed: Vec<(u16, u16)> = points
            .iter()
            .flat_map(spans)
            .filter(|(t, _, _)| *t == table)
            .map(|(_, first, last)| (first, last))
            .collect();
        needed.sort_unstable();
        let mut current: Option<(u16, u16)> = None;
        for (first, last) in needed {
            current = match current {
                Some((start, end))
                    if u32::from(last.max(end)) - u32::from(start) < u32::from(max)
                        && u32::from(first) <= u32::from(end) + 1 + max_gap =>
                {
                    Some((start, end.max(last)))
                }
                Some((start, end)) => {
                    blocks.push(ReadBlock {
                        table,
                        start,
                        count: end - start + 1,
                    });
                    Some((first, last))
                }
                None => Some((first, last)),
            };
        }
        if let Some((start, end)) = current {
            blocks.push(ReadBlock {
                table,
                start,
                count: end - start + 1,
            });
        }
    }
    blocks
}

/// The theoretical minimum number of requests for `points`: per table,
/// ⌈span / limit⌉ where span runs from the lowest to the highest address.
pub fn minimum_reads(points: &[PointConfig], limits: ReadLimits) -> usize {
    [
        Table::Holding,
        Table::Input,
        Table::Coil,
        Table::DiscreteInput,
    ]
    .into_iter()
    .map(|table| {
        let (max, _) = limits.for_table(table);
        let (low, high) = points
            .iter()
            .flat_map(spans)
            .filter(|(t, _, _)| *t == table)
            .fold((u32::MAX, 0u32), |(lo, hi), (_, f, l)| {
                (lo.min(f.into()), hi.max(l.into()))
            });
        if low > high {
            0
        } else {
            (high - low + 1).div_ceil(u32::from(max)) as usize
        }
    })
    .sum()
}

fn words(data: &[(ReadBlock, BlockData)], table: Table, address: u16, n: u16) -> Vec<u16> {
    (address..address + n)
        .map(|a| {
            data.iter()
                .find_map(|(b, d)| match d {
                    BlockData::Registers(regs)
                        if b.table == table && a >= b.start && a - b.start < b.count =>
                    {
                        regs.get(usize::from(a - b.start)).copied()
                    }
                    _ => None,
                })
                .expect("plan_reads covers every register a point needs")
        })
        .collect()
}

fn bit(data: &[(ReadBlock, BlockData)], table: Table, address: u16) -> bool {
    data.iter()
        .find_map(|(b, d)| match d {
            BlockData::Bits(bits)
                if b.table == table && address >= b.start && address - b.start < b.count =>
            {
                bits.get(usize::from(address - b.start)).copied()
            }
            _ => None,
        })
        .expect("plan_reads covers every bit a point needs")
}

/// The value's bytes in big-endian order, from its registers as they came off the wire.
fn big_endian(registers: &[u16], order: WordOrder) -> Vec<u8> {
    let wire: Vec<u8> = registers.iter().flat_map(|r| r.to_be_bytes()).collect();
    match (order, wire.as_slice()) {
        (WordOrder::Abcd, _) => wire,
        (WordOrder::Cdab, [a, b, c, d]) => vec![*c, *d, *a, *b],
        (WordOrder::Badc, _) => wire.chunks(2).flat_map(|w| [w[1], w[0]]).collect(),
        (WordOrder::Dcba, _) => wire.into_iter().rev().collect(),
        // One register: a word swap changes nothing.
        (WordOrder::Cdab, _) => wire,
    }
}

fn raw_number(registers: &[u16], data_type: DataType, order: WordOrder) -> f64 {
    let bytes = big_endian(registers, order);
    match data_type {
        DataType::U16 => f64::from(u16::from_be_bytes([bytes[0], bytes[1]])),
        DataType::I16 => f64::from(i16::from_be_bytes([bytes[0], bytes[1]])),
        DataType::U32 => f64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        DataType::I32 => f64::from(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        DataType::F32 => f64::from(f32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
    }
}

/// One decoded point: its engineering value and whether it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    pub value: f64,
    pub quality: Quality,
}

/// The number on the wire: the point's registers read as its data type and
/// byte order (or its bit), before decimals and scaling.
pub fn raw_value(point: &PointConfig, data: &[(ReadBlock, BlockData)]) -> f64 {
    if point.table.is_bits() {
        return f64::from(u8::from(bit(data, point.table, point.register)));
    }
    let registers = words(data, point.table, point.register, point.data_type.width());
    match point.bit {
        Some(b) => f64::from((registers[0] >> b) & 1),
        None => raw_number(&registers, point.data_type, point.order),
    }
}

/// Decodes one point from the blocks `plan_reads` returned: raw value,
/// decimals register, scale and offset, 4-20 mA loop, range check.
pub fn decode_point(point: &PointConfig, data: &[(ReadBlock, BlockData)]) -> Decoded {
    let good = |value| Decoded {
        value,
        quality: Quality::Good,
    };
    let mut value = raw_value(point, data);
    if point.table.is_bits() {
        return good(value);
    }
    if let Some(decimals) = point.decimals_register {
        // Transmitters report 0-3 decimals; a larger number is garbage.
        let decimals = words(data, point.table, decimals, 1)[0];
        if decimals > 3 {
            return Decoded {
                value,
                quality: Quality::SensorFault,
            };
        }
        value /= 10f64.powi(i32::from(decimals));
    }
    value = value * point.scale + point.offset;
    if !value.is_finite() {
        return Decoded {
            value: 0.0,
            quality: Quality::SensorFault,
        };
    }
    if let Some(cl) = point.current_loop {
        let ma = value;
        value = cl.at_4ma + (ma - 4.0) / 16.0 * (cl.at_20ma - cl.at_4ma);
        if !(LOOP_MA_MIN..=LOOP_MA_MAX).contains(&ma) {
            return Decoded {
                value,
                quality: Quality::SensorFault,
            };
        }
    }
    if let Some([low, high]) = point.range
        && !(low..=high).contains(&value)
    {
        return Decoded {
            value,
            quality: Quality::SensorFault,
        };
    }
    good(value)
}

#[cfg(test)]
mod tests;
