//! Wireless sensors on a site MQTT broker.

use serde::{Deserialize, Serialize};

/// The site broker the wireless sensors publish to, and the sensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorsConfig {
    /// Site broker host.
    #[serde(default = "default_host")]
    pub host: String,
    /// Site broker port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User name, if the site broker requires one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, if the site broker requires one.
    #[serde(default)]
    pub password: Option<String>,
    /// The sensors.
    #[serde(default)]
    pub devices: Vec<SensorDevice>,
}

/// One wireless sensor: a topic it publishes JSON on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorDevice {
    /// Device name; the first part of its point names.
    pub name: String,
    /// The exact topic the sensor publishes on.
    pub topic: String,
    /// Its values turn `stale` when it has not reported for this long
    /// (NB-IoT sensors commonly report hourly or less often).
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Fields of the payload taken as points.
    pub points: Vec<SensorPoint>,
}

/// One field of a sensor's JSON payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorPoint {
    /// Point name within the sensor.
    pub name: String,
    /// JSON pointer (RFC 6901) to the field, e.g. `/data/level`.
    pub pointer: String,
    /// Engineering unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Multiplier: value = field × scale + offset.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Added after `scale`.
    #[serde(default)]
    pub offset: f64,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    1883
}
fn default_max_age_secs() -> u64 {
    2 * 3600
}
fn default_scale() -> f64 {
    1.0
}
