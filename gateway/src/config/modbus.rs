//! Lines, devices and points: what the gateway reads over Modbus.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::profiles::ChannelConfig;

/// How a line carries Modbus frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Modbus TCP (MBAP header) to `address`.
    Tcp,
    /// Modbus RTU over the serial port `path` (RS-485).
    Rtu,
    /// Modbus RTU frames over TCP to `address` (serial device server, DTU).
    RtuOverTcp,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

/// One communication line and how it is paced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// Line name; devices name the line they are on.
    pub name: String,
    /// `tcp`, `rtu` or `rtu_over_tcp`.
    pub transport: Transport,
    /// `host:port`, for `tcp` and `rtu_over_tcp`.
    #[serde(default)]
    pub address: Option<String>,
    /// Serial device, for `rtu`, e.g. `/dev/ttyS1`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Serial speed, bits per second (`rtu`; also paces `rtu_over_tcp`).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Serial parity (`rtu`); 8 data bits always.
    #[serde(default)]
    pub parity: Parity,
    /// Serial stop bits, 1 or 2 (`rtu`).
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Per-request timeout, milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Further attempts after a request times out or fails on the wire.
    #[serde(default = "default_retries")]
    pub retries: u8,
    /// Extra silence after each answer before the next request, milliseconds,
    /// for slow RS-485 converters; on top of the 3.5-character gap.
    #[serde(default)]
    pub turnaround_ms: u64,
    /// A device unreachable this many cycles in a row is skipped ...
    #[serde(default = "default_fail_cycles")]
    pub fail_cycles: u32,
    /// ... for this many seconds, then probed again, so it never stalls the
    /// other devices on the line.
    #[serde(default = "default_backoff_secs")]
    pub backoff_secs: u64,
}

/// A Modbus device (one unit id) on a line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Device name; the first part of every point name (`{device}.{point}`).
    pub name: String,
    /// The line the device is on.
    pub line: String,
    /// Modbus unit id (slave address).
    #[serde(default = "default_unit")]
    pub unit: u8,
    /// A device profile from the library (`gateway/profiles/`, or the
    /// site's `profiles_dir`): its register map, so only the channels need
    /// naming here.
    #[serde(default)]
    pub profile: Option<String>,
    /// With a profile: the channels in use and what each measures, e.g.
    /// `ch1 = { name = "roof_tank_level", unit = "m", current_loop = { at_4ma = 0.0, at_20ma = 5.0 } }`.
    /// Without any, every channel of the profile is read.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Most registers one request may read (1-125; default the profile's,
    /// else 125); lower it for devices that refuse long reads.
    #[serde(default)]
    pub max_registers_per_read: Option<u16>,
    /// Unused registers a read may span to save a request (default the
    /// profile's, else 125); 0 for devices that answer an exception for
    /// unmapped addresses.
    #[serde(default)]
    pub max_gap: Option<u16>,
    /// Points read from this device, after the profile's.
    #[serde(default)]
    pub points: Vec<PointConfig>,
}

/// Which Modbus register table a point lives in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Holding registers, function code 03.
    #[default]
    Holding,
    /// Input registers, function code 04.
    Input,
    /// Coils, function code 01 (one bit each).
    Coil,
    /// Discrete inputs, function code 02 (one bit each).
    DiscreteInput,
}

impl Table {
    /// Coils and discrete inputs hold bits, not 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }
}

/// How a point's registers are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    #[default]
    U16,
    I16,
    /// Two registers.
    U32,
    /// Two registers.
    I32,
    /// Two registers, IEEE 754.
    F32,
}

impl DataType {
    /// Registers the value takes.
    pub fn width(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
        }
    }
}

/// Byte order of a value on the wire, naming the bytes of the big-endian
/// value `ABCD`: `abcd` is Modbus's own big-endian, `cdab` swaps the words,
/// `badc` swaps the bytes in each word, `dcba` is little-endian.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    #[default]
    Abcd,
    Cdab,
    Badc,
    Dcba,
}

/// A 4-20 mA current loop: the engineering values at 4 mA and at 20 mA.
/// The point's value after `scale`/`offset` must be the current in mA.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentLoop {
    /// Engineering value at 4 mA.
    pub at_4ma: f64,
    /// Engineering value at 20 mA.
    pub at_20ma: f64,
}

/// One value read from a device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointConfig {
    /// Point name within the device, e.g. `level`.
    pub name: String,
    /// Register address (0-based, as on the wire).
    pub register: u16,
    /// Register table.
    #[serde(default)]
    pub table: Table,
    /// How the register is interpreted.
    #[serde(default)]
    pub data_type: DataType,
    /// Byte order of the value (see `WordOrder`).
    #[serde(default)]
    pub order: WordOrder,
    /// Read one bit (0-15) of the register as 0/1 instead of the whole value.
    #[serde(default)]
    pub bit: Option<u8>,
    /// Register holding the number of decimals (0-3) of this value, as on
    /// common RS-485 level and pressure transmitters: value = raw / 10^decimals.
    #[serde(default)]
    pub decimals_register: Option<u16>,
    /// Multiplier applied after decimals: value = raw × scale + offset.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Added after `scale`.
    #[serde(default)]
    pub offset: f64,
    /// Treat the value as a 4-20 mA loop current and map it to this range;
    /// below 3.8 mA or above 20.5 mA the reading is a `sensor_fault`.
    #[serde(default)]
    pub current_loop: Option<CurrentLoop>,
    /// The transmitter's measuring range `[low, high]`; a value outside it
    /// is a `sensor_fault`.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// Report-by-exception: a new value is sent only when it differs from
    /// the last one sent by more than this (engineering units), or when its
    /// quality changes, or at the heartbeat (`report.max_interval_secs`).
    /// 0 (the default) sends every change.
    #[serde(default)]
    pub deadband: f64,
    /// A value unchanged for this many seconds is `stale` (a frozen
    /// transmitter looks live otherwise). Leave unset for states that rarely change.
    #[serde(default)]
    pub frozen_after_secs: Option<u64>,
    /// Engineering unit reported with the value, e.g. `m` or `MPa`.
    #[serde(default)]
    pub unit: Option<String>,
    /// Send an event (priority stream) whenever this value changes; for
    /// alarm and fault states.
    #[serde(default)]
    pub event: bool,
}

impl LineConfig {
    /// A Modbus TCP line to `address` with every option at its default.
    pub fn tcp(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            transport: Transport::Tcp,
            address: Some(address.into()),
            path: None,
            baud: default_baud(),
            parity: Parity::None,
            stop_bits: default_stop_bits(),
            timeout_ms: default_timeout_ms(),
            retries: default_retries(),
            turnaround_ms: 0,
            fail_cycles: default_fail_cycles(),
            backoff_secs: default_backoff_secs(),
        }
    }
}

impl DeviceConfig {
    /// A device with no points and every option at its default.
    pub fn new(name: impl Into<String>, line: impl Into<String>, unit: u8) -> Self {
        Self {
            name: name.into(),
            line: line.into(),
            unit,
            profile: None,
            channels: BTreeMap::new(),
            max_registers_per_read: None,
            max_gap: None,
            points: Vec::new(),
        }
    }

    /// Most registers per read and most unused registers spanned.
    pub fn read_limits(&self) -> (u16, u16) {
        (
            self.max_registers_per_read
                .unwrap_or(default_max_registers_per_read()),
            self.max_gap.unwrap_or(default_max_gap()),
        )
    }
}

impl PointConfig {
    /// A `u16` holding-register point with every option at its default.
    pub fn new(name: impl Into<String>, register: u16) -> Self {
        Self {
            name: name.into(),
            register,
            table: Table::default(),
            data_type: DataType::default(),
            order: WordOrder::default(),
            bit: None,
            decimals_register: None,
            scale: default_scale(),
            offset: 0.0,
            current_loop: None,
            range: None,
            deadband: 0.0,
            frozen_after_secs: None,
            unit: None,
            event: false,
        }
    }
}

pub(super) fn default_baud() -> u32 {
    9600
}
pub(super) fn default_stop_bits() -> u8 {
    1
}
pub(super) fn default_retries() -> u8 {
    1
}
pub(super) fn default_fail_cycles() -> u32 {
    3
}
pub(super) fn default_backoff_secs() -> u64 {
    60
}
pub(super) fn default_unit() -> u8 {
    1
}
pub(super) fn default_timeout_ms() -> u64 {
    1_000
}
pub(super) fn default_max_registers_per_read() -> u16 {
    125
}
pub(super) fn default_max_gap() -> u16 {
    125
}
pub(super) fn default_scale() -> f64 {
    1.0
}
