//! Gateway configuration: built-in defaults, then a TOML file, then
//! `RISER_GATEWAY_*` environment variables (`__` separates nested keys, e.g.
//! `RISER_GATEWAY_MQTT__HOST=broker.example`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable prefix for overrides.
pub const ENV_PREFIX: &str = "RISER_GATEWAY";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Load(#[from] config::ConfigError),
    #[error("invalid gateway config: {0}")]
    Invalid(String),
}

/// One gateway: its identity, where it keeps its buffer, its uplink and the
/// devices it polls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Gateway id: 1-64 characters of `[A-Za-z0-9_-]`. It is the MQTT client id
    /// and the topic prefix `riser/v1/{id}/`.
    pub id: String,
    /// Directory for the outbox database (`outbox.db`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Time between two poll cycles, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// The MQTT uplink.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// Communication lines: an RS-485 port, a Modbus TCP endpoint or a
    /// serial device server. Each line has one request outstanding at a time.
    #[serde(default)]
    pub lines: Vec<LineConfig>,
    /// Field devices polled every cycle, each on a line.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
}

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

/// MQTT broker connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    #[serde(default = "default_mqtt_host")]
    pub host: String,
    /// Broker TCP port.
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// User name, if the broker requires one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, if the broker requires one.
    #[serde(default)]
    pub password: Option<String>,
    /// MQTT keep-alive, seconds; the broker publishes the last-will after 1.5 × this.
    #[serde(default = "default_keep_alive_secs")]
    pub keep_alive_secs: u64,
    /// Messages sent but not yet acknowledged (PUBACK) at most.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: u16,
    /// Wait before reconnecting after the connection is lost, milliseconds.
    #[serde(default = "default_reconnect_delay_ms")]
    pub reconnect_delay_ms: u64,
    /// Longest wait between reconnection attempts while the broker stays
    /// away (the wait doubles from `reconnect_delay_ms`), milliseconds.
    #[serde(default = "default_reconnect_max_delay_ms")]
    pub reconnect_max_delay_ms: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: default_mqtt_host(),
            port: default_mqtt_port(),
            username: None,
            password: None,
            keep_alive_secs: default_keep_alive_secs(),
            max_inflight: default_max_inflight(),
            reconnect_delay_ms: default_reconnect_delay_ms(),
            reconnect_max_delay_ms: default_reconnect_max_delay_ms(),
        }
    }
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
    /// Most registers one request may read (1-125); lower it for devices
    /// that refuse long reads.
    #[serde(default = "default_max_registers_per_read")]
    pub max_registers_per_read: u16,
    /// Unused registers a read may span to save a request; set 0 for
    /// devices that answer an exception for unmapped addresses.
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,
    /// The points read from this device.
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
            max_registers_per_read: default_max_registers_per_read(),
            max_gap: default_max_gap(),
            points: Vec::new(),
        }
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
            frozen_after_secs: None,
            unit: None,
            event: false,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/riser")
}
fn default_poll_interval_ms() -> u64 {
    5_000
}
fn default_mqtt_host() -> String {
    "127.0.0.1".into()
}
fn default_mqtt_port() -> u16 {
    1883
}
fn default_keep_alive_secs() -> u64 {
    30
}
fn default_max_inflight() -> u16 {
    32
}
fn default_reconnect_delay_ms() -> u64 {
    1_000
}
fn default_reconnect_max_delay_ms() -> u64 {
    10_000
}
fn default_baud() -> u32 {
    9600
}
fn default_stop_bits() -> u8 {
    1
}
fn default_retries() -> u8 {
    1
}
fn default_fail_cycles() -> u32 {
    3
}
fn default_backoff_secs() -> u64 {
    60
}
fn default_unit() -> u8 {
    1
}
fn default_timeout_ms() -> u64 {
    1_000
}
fn default_max_registers_per_read() -> u16 {
    125
}
fn default_max_gap() -> u16 {
    125
}
fn default_scale() -> f64 {
    1.0
}

impl Config {
    /// Loads defaults, then `path` (if given), then the environment, and
    /// validates the result.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let config: Config = builder
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: identity, names, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if let Err(e) = riser_contract::validate_gateway_id(&self.id) {
            return invalid(format!("key `id`: {e}"));
        }
        if self.poll_interval_ms < 100 {
            return invalid("key `poll_interval_ms`: must be at least 100".into());
        }
        if self.mqtt.max_inflight < 2 {
            return invalid("key `mqtt.max_inflight`: must be at least 2".into());
        }
        let mut lines = HashSet::new();
        for (i, line) in self.lines.iter().enumerate() {
            let at = format!("lines[{i}] (`{}`)", line.name);
            if !lines.insert(line.name.as_str()) {
                return invalid(format!("{at}: duplicate line name"));
            }
            match line.transport {
                Transport::Tcp | Transport::RtuOverTcp
                    if !line.address.as_deref().is_some_and(|a| a.contains(':')) =>
                {
                    return invalid(format!(
                        "{at}: `address = \"host:port\"` is required for this transport"
                    ));
                }
                Transport::Rtu if line.path.is_none() => {
                    return invalid(format!(
                        "{at}: `path` (the serial device) is required for rtu"
                    ));
                }
                _ => {}
            }
            if line.baud == 0 || !(1..=2).contains(&line.stop_bits) {
                return invalid(format!("{at}: baud must be positive and stop_bits 1 or 2"));
            }
            if line.timeout_ms == 0 {
                return invalid(format!("{at}: timeout_ms must be positive"));
            }
        }
        let mut devices = HashSet::new();
        for (i, device) in self.devices.iter().enumerate() {
            let at = format!("devices[{i}] (`{}`)", device.name);
            if device.name.is_empty() || device.name.contains(['.', '/', '+', '#']) {
                return invalid(format!("{at}: name must be non-empty without . / + #"));
            }
            if !devices.insert(&device.name) {
                return invalid(format!("{at}: duplicate device name"));
            }
            if !lines.contains(device.line.as_str()) {
                return invalid(format!("{at}: line `{}` is not among `lines`", device.line));
            }
            if !(1..=125).contains(&device.max_registers_per_read) {
                return invalid(format!("{at}: max_registers_per_read must be 1-125"));
            }
            let mut points = HashSet::new();
            for point in &device.points {
                if point.name.is_empty() || point.name.contains(['/', '+', '#']) {
                    return invalid(format!("{at}: point name `{}` is invalid", point.name));
                }
                if !points.insert(&point.name) {
                    return invalid(format!("{at}: duplicate point `{}`", point.name));
                }
                let bad = |what: &str| invalid(format!("{at}: point `{}`: {what}", point.name));
                if point.bit.is_some_and(|b| b > 15) {
                    return bad("bit must be 0-15");
                }
                if point.bit.is_some() && point.data_type.width() != 1 {
                    return bad("bit needs a 16-bit data_type");
                }
                if point.table.is_bits()
                    && (point.data_type != DataType::U16
                        || point.bit.is_some()
                        || point.decimals_register.is_some())
                {
                    return bad(
                        "coils and discrete inputs are single bits: no data_type, bit or decimals_register",
                    );
                }
                if point.data_type.width() > device.max_registers_per_read {
                    return bad("data_type is wider than max_registers_per_read");
                }
                if let Some([low, high]) = point.range
                    && (low.is_nan() || high.is_nan() || low >= high)
                {
                    return bad("range must be [low, high] with low < high");
                }
                if !point.scale.is_finite() || point.scale == 0.0 {
                    return invalid(format!(
                        "{at}: point `{}`: scale must be a non-zero number",
                        point.name
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn file_values_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"
            id = "gw-LP-001"
            poll_interval_ms = 2000
            [mqtt]
            port = 11883
            [[lines]]
            name = "rs485"
            transport = "rtu"
            path = "/dev/ttyS1"
            [[devices]]
            name = "tank"
            line = "rs485"
            [[devices.points]]
            name = "level"
            register = 4
            data_type = "i16"
            decimals_register = 3
            unit = "m"
            "#,
        );
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.poll_interval_ms, 2000);
        assert_eq!(config.mqtt.port, 11883);
        assert_eq!(config.mqtt.host, "127.0.0.1");
        assert_eq!(config.devices[0].unit, 1);
        assert_eq!(config.lines[0].baud, 9600);
        assert_eq!(config.lines[0].retries, 1);
        assert_eq!(config.devices[0].points[0].data_type, DataType::I16);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "id = \"gw-1\"\npoll_intervall_ms = 5\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("poll_intervall_ms"), "{err}");
    }

    #[test]
    fn a_device_on_an_unknown_line_or_a_line_without_its_address_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = "id = \"gw-1\"\n[[devices]]\nname = \"tank\"\nline = \"nope\"\npoints = []\n";
        let err = Config::load(Some(&write(&dir, orphan)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line `nope`"), "{err}");
        let rtu = "id = \"gw-1\"\n[[lines]]\nname = \"a\"\ntransport = \"rtu\"\n";
        let err = Config::load(Some(&write(&dir, rtu)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`path`"), "{err}");
    }

    #[test]
    fn invalid_gateway_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "id = \"gw/1\"\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("key `id`"), "{err}");
    }

    #[test]
    fn the_example_config_in_deploy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/gateway.toml");
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.devices.len(), 4);
        assert!(
            config.devices[2]
                .points
                .iter()
                .any(|p| p.name == "fire_fault" && p.event)
        );
    }
}
