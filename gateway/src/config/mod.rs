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
    /// Most readings in one telemetry message; buffered readings are
    /// batched into messages of up to this many (each with its own sequence
    /// number).
    #[serde(default = "default_max_readings_per_message")]
    pub max_readings_per_message: usize,
    /// The on-disk buffer.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// Report-by-exception.
    #[serde(default)]
    pub report: ReportConfig,
    /// When the wall clock is trusted.
    #[serde(default)]
    pub clock: ClockConfig,
    /// Communication lines: an RS-485 port, a Modbus TCP endpoint or a
    /// serial device server. Each line has one request outstanding at a time.
    #[serde(default)]
    pub lines: Vec<LineConfig>,
    /// Field devices polled every cycle, each on a line.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    /// Address for Prometheus metrics (`GET /metrics`), e.g.
    /// `127.0.0.1:9108`; none when unset.
    #[serde(default)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Wireless sensors on a site MQTT broker.
    #[serde(default)]
    pub mqtt_sensors: Option<SensorsConfig>,
    /// A directory of site-specific device profiles (`*.toml`), added to
    /// the built-in library.
    #[serde(default)]
    pub profiles_dir: Option<PathBuf>,
}

mod modbus;
mod profiles;
mod sensors;

pub use modbus::*;
pub use profiles::{ChannelConfig, Profile, Profiles};
pub use sensors::{SensorDevice, SensorPoint, SensorsConfig};

/// The on-disk buffer (`outbox.db` in `data_dir`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Bytes of database pages the buffer may use. Beyond it the oldest
    /// routine readings are thinned, then dropped (counted); events never.
    #[serde(default = "default_outbox_max_bytes")]
    pub max_bytes: u64,
    /// Thinning keeps one reading per point (and quality) per this many
    /// seconds.
    #[serde(default = "default_thin_interval_secs")]
    pub thin_interval_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_bytes: default_outbox_max_bytes(),
            thin_interval_secs: default_thin_interval_secs(),
        }
    }
}

fn default_outbox_max_bytes() -> u64 {
    512 * 1024 * 1024
}
fn default_thin_interval_secs() -> u64 {
    300
}

/// Report-by-exception: an analogue reading is sent when it moved more than
/// its point's `deadband` since the last one sent, when its quality
/// changed, or when `max_interval_secs` passed (a heartbeat, so a steady
/// value is never mistaken for a dead one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Longest time between two readings of a point sent, seconds; 0 sends
    /// every reading of every poll.
    #[serde(default = "default_report_max_interval_secs")]
    pub max_interval_secs: u64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            max_interval_secs: default_report_max_interval_secs(),
        }
    }
}

/// A minute: Riser's promise is a check every minute, and cloud-ingest
/// calls a point `unknown` after `rules.point_stale_after_secs` (300)
/// without one.
fn default_report_max_interval_secs() -> u64 {
    60
}

/// When the wall clock can be trusted: after it passes the build time and,
/// with `require_sync`, once the kernel reports time synchronisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// Also wait for the kernel to report the clock synchronised (NTP,
    /// chrony, systemd-timesyncd).
    #[serde(default)]
    pub require_sync: bool,
    /// A difference between wall-clock and boot-clock progress beyond this
    /// between two polls is a clock jump, milliseconds.
    #[serde(default = "default_jump_tolerance_ms")]
    pub jump_tolerance_ms: u64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            require_sync: false,
            jump_tolerance_ms: default_jump_tolerance_ms(),
        }
    }
}

fn default_jump_tolerance_ms() -> u64 {
    2_000
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
    /// Largest MQTT packet sent or accepted, bytes (the broker's limit must
    /// be at least this).
    #[serde(default = "default_max_packet_bytes")]
    pub max_packet_bytes: usize,
    /// Wait before reconnecting after the connection is lost, milliseconds.
    #[serde(default = "default_reconnect_delay_ms")]
    pub reconnect_delay_ms: u64,
    /// Longest wait between reconnection attempts while the broker stays
    /// away (the wait doubles from `reconnect_delay_ms`), milliseconds.
    #[serde(default = "default_reconnect_max_delay_ms")]
    pub reconnect_max_delay_ms: u64,
    /// zlib-compress telemetry (a few bytes per reading on a metered link).
    #[serde(default = "default_true")]
    pub compress: bool,
    /// Hold live telemetry up to this long to send several polls in one
    /// message, milliseconds; events never wait. 0 sends each poll at once.
    #[serde(default = "default_batch_delay_ms")]
    pub batch_delay_ms: u64,
    /// Seconds between two health reports on the retained status topic.
    #[serde(default = "default_health_interval_secs")]
    pub health_interval_secs: u64,
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
            max_packet_bytes: default_max_packet_bytes(),
            reconnect_delay_ms: default_reconnect_delay_ms(),
            reconnect_max_delay_ms: default_reconnect_max_delay_ms(),
            compress: true,
            batch_delay_ms: default_batch_delay_ms(),
            health_interval_secs: default_health_interval_secs(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_batch_delay_ms() -> u64 {
    5_000
}
fn default_health_interval_secs() -> u64 {
    60
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
fn default_max_packet_bytes() -> usize {
    256 * 1024
}
fn default_max_readings_per_message() -> usize {
    500
}
fn default_reconnect_delay_ms() -> u64 {
    1_000
}
fn default_reconnect_max_delay_ms() -> u64 {
    10_000
}

impl Config {
    /// A gateway with no lines or devices and every option at its default.
    pub fn new(id: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            data_dir: data_dir.into(),
            poll_interval_ms: default_poll_interval_ms(),
            mqtt: MqttConfig::default(),
            max_readings_per_message: default_max_readings_per_message(),
            outbox: OutboxConfig::default(),
            report: ReportConfig::default(),
            clock: ClockConfig::default(),
            lines: Vec::new(),
            devices: Vec::new(),
            metrics_listen: None,
            mqtt_sensors: None,
            profiles_dir: None,
        }
    }

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
        let mut config: Config = builder
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        config.resolve_profiles()?;
        config.validate()?;
        Ok(config)
    }

    /// Replaces every device's `profile` and `channels` by the points they
    /// stand for (see [`Profiles::resolve`]). Idempotent.
    pub fn resolve_profiles(&mut self) -> Result<(), ConfigError> {
        if self.devices.iter().all(|d| d.profile.is_none()) {
            return Ok(());
        }
        let profiles = match &self.profiles_dir {
            Some(dir) => Profiles::with_dir(dir).map_err(ConfigError::Invalid)?,
            None => Profiles::builtin(),
        };
        for (i, device) in self.devices.iter_mut().enumerate() {
            profiles.resolve(device).map_err(|e| {
                ConfigError::Invalid(format!("devices[{i}] (`{}`): {e}", device.name))
            })?;
        }
        Ok(())
    }

    /// Checks what serde cannot: identity, names, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        for (i, sensor) in self
            .mqtt_sensors
            .iter()
            .flat_map(|s| &s.devices)
            .enumerate()
        {
            let at = format!("mqtt_sensors.devices[{i}] (`{}`)", sensor.name);
            if sensor.topic.is_empty() || sensor.topic.contains(['+', '#']) {
                return invalid(format!(
                    "{at}: topic must be an exact topic, without wildcards"
                ));
            }
            if let Some(p) = sensor
                .points
                .iter()
                .find(|p| !p.pointer.is_empty() && !p.pointer.starts_with('/'))
            {
                return invalid(format!(
                    "{at}: point `{}`: pointer must start with `/` (RFC 6901)",
                    p.name
                ));
            }
            if self.devices.iter().any(|d| d.name == sensor.name) {
                return invalid(format!("{at}: name is also a Modbus device's"));
            }
        }
        if let Err(e) = riser_contract::validate_gateway_id(&self.id) {
            return invalid(format!("key `id`: {e}"));
        }
        if self.poll_interval_ms < 100 {
            return invalid("key `poll_interval_ms`: must be at least 100".into());
        }
        if self.max_readings_per_message == 0 {
            return invalid("key `max_readings_per_message`: must be at least 1".into());
        }
        if self.mqtt.max_packet_bytes < 4096 {
            return invalid("key `mqtt.max_packet_bytes`: must be at least 4096".into());
        }
        if self.mqtt.max_inflight < 2 {
            return invalid("key `mqtt.max_inflight`: must be at least 2".into());
        }
        if self.outbox.max_bytes < 64 * 1024 {
            return invalid("key `outbox.max_bytes`: must be at least 65536".into());
        }
        if self.outbox.thin_interval_secs == 0 {
            return invalid("key `outbox.thin_interval_secs`: must be at least 1".into());
        }
        if self.mqtt.health_interval_secs == 0 {
            return invalid("key `mqtt.health_interval_secs`: must be at least 1".into());
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
            if device.points.is_empty() {
                return invalid(format!(
                    "{at}: no points: name a `profile` or list `points`"
                ));
            }
            let (max_registers_per_read, _) = device.read_limits();
            if !(1..=125).contains(&max_registers_per_read) {
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
                if point.data_type.width() > max_registers_per_read {
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
mod tests;
