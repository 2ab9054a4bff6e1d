//! cloud-ingest configuration: built-in defaults, then a TOML file, then
//! `RISER_INGEST_*` environment variables (`__` between nested keys, e.g.
//! `RISER_INGEST_HTTP__LISTEN=0.0.0.0:8080`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "RISER_INGEST";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Load(#[from] config::ConfigError),
    #[error("invalid ingest config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database (`ingest.db`) and other local state.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The database: `postgres://user:password@host/db` for PostgreSQL, or
    /// `sqlite://path?mode=rwc`; unset: SQLite at `{data_dir}/ingest.db`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Building registry: a `.toml` file of `[[building]]` tables or a `.csv`
    /// file shaped like `data/buildings-liangping.csv`.
    pub registry: PathBuf,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub rules: RulesConfig,
    /// Telemetry to InfluxDB 2 as well, through a durable local backlog;
    /// absent: none.
    #[serde(default)]
    pub influx: Option<crate::influx::InfluxConfig>,
    /// Hazard items: deadlines per severity and escalation timers.
    #[serde(default)]
    pub hazards: crate::hazards::HazardsConfig,
    /// How long raw readings and per-minute history are kept.
    #[serde(default)]
    pub history: crate::store::HistoryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the API and dashboard listen on.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_http_listen(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// External broker `host:port`. When absent, an embedded broker is
    /// started on `embedded_listen`.
    #[serde(default)]
    pub broker: Option<String>,
    /// Where the embedded broker listens (not 1883, which a system broker may hold).
    #[serde(default = "default_embedded_listen")]
    pub embedded_listen: SocketAddr,
    /// MQTT client id of the telemetry consumer; the events-and-status
    /// consumer connects as `{client_id}-events`. Both keep a persistent
    /// session: the broker keeps what arrives while this node is down.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// User name, if the broker requires one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, if the broker requires one.
    #[serde(default)]
    pub password: Option<String>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: None,
            embedded_listen: default_embedded_listen(),
            client_id: default_client_id(),
            username: None,
            password: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// A point not updated for this many seconds makes its building `unknown`.
    #[serde(default = "default_point_stale_after_secs")]
    pub point_stale_after_secs: u64,
    /// Every building is re-judged this often (seconds), so silence is noticed.
    #[serde(default = "default_evaluate_every_secs")]
    pub evaluate_every_secs: u64,
    /// How long each condition must last before it counts and stay clear
    /// before it clears, and the rules' other numbers (`[rules.tuning]`;
    /// every key has a default, see `rules::Tuning`).
    #[serde(default)]
    pub tuning: crate::rules::Tuning,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            point_stale_after_secs: default_point_stale_after_secs(),
            evaluate_every_secs: default_evaluate_every_secs(),
            tuning: crate::rules::Tuning::default(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/riser")
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_embedded_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 11883))
}
fn default_client_id() -> String {
    "riser-ingest".into()
}
fn default_point_stale_after_secs() -> u64 {
    300
}
fn default_evaluate_every_secs() -> u64 {
    10
}

impl Config {
    /// Loads defaults, then `path`, then the environment, and validates.
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
        if config.rules.evaluate_every_secs == 0 {
            return Err(ConfigError::Invalid(
                "key `rules.evaluate_every_secs`: must be positive".into(),
            ));
        }
        if let Some(broker) = &config.mqtt.broker
            && !broker.contains(':')
        {
            return Err(ConfigError::Invalid(format!(
                "key `mqtt.broker`: `{broker}` is not host:port"
            )));
        }
        if let Some(url) = &config.database_url
            && crate::store::Backend::of(url).is_none()
        {
            return Err(ConfigError::Invalid(
                "key `database_url`: must start with sqlite:// or postgres://".into(),
            ));
        }
        if let Some(influx) = &config.influx {
            influx
                .validate()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_file_gets_an_embedded_broker_and_loopback_http() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.toml");
        std::fs::write(&path, "registry = \"buildings.csv\"\n").unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert!(config.mqtt.broker.is_none());
        assert_eq!(config.mqtt.embedded_listen.port(), 11883);
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn a_rule_duration_and_the_database_can_be_set_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.toml");
        std::fs::write(
            &path,
            "registry = \"b.csv\"\ndatabase_url = \"postgres://riser@db/riser\"\n[rules.tuning]\ntank_low = { for_secs = 5, clear_secs = 7 }\n",
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(
            (
                config.rules.tuning.tank_low.for_secs,
                config.rules.tuning.tank_low.clear_secs
            ),
            (5, 7)
        );
        std::fs::write(
            &path,
            "registry = \"b.csv\"\ndatabase_url = \"mysql://x\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
    }

    #[test]
    fn a_missing_registry_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.toml");
        std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("registry"), "{err}");
    }

    #[test]
    fn the_example_config_in_deploy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/ingest.toml");
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(
            config.registry,
            PathBuf::from("data/buildings-liangping.csv")
        );
    }
}
