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
    /// Alerts to the responsible parties; absent: none are sent (hazard
    /// items are still opened and shown).
    #[serde(default)]
    pub notify: Option<crate::notify::NotifyConfig>,
    /// Sign-in: sessions, anonymous access, sign-in limits.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
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
    /// With `shared_group`, every node needs its own (e.g.
    /// `riser-ingest-1`, `riser-ingest-2`): two nodes on one id take each
    /// other's session away.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Several cloud-ingest nodes on one broker and one PostgreSQL
    /// database share the gateways' messages: each node subscribes
    /// `$share/{shared_group}/riser/v1/+/{stream}` and the broker hands
    /// each message to one node of the group (MQTT shared subscriptions:
    /// Mosquitto 2, EMQX). A message that reaches two nodes after a crash
    /// is stored once (duplicates are dropped by gateway, stream, epoch
    /// and sequence number). Mosquitto 2 shares round robin among every
    /// member that has a session, connected or not: a stopped node's share
    /// waits in its session until it connects again (restart it; see
    /// `max_queued_messages` in mosquitto.conf). Needs a PostgreSQL
    /// `database_url` shared by the nodes. A name without `/`, `+` or `#`.
    /// Unset: this node takes every message itself.
    #[serde(default)]
    pub shared_group: Option<String>,
    /// Telemetry batches this node stores at once on PostgreSQL (1-8):
    /// while one commits, the next is written, so one node keeps the
    /// database busy. Row locks order them, as between two nodes. On
    /// SQLite (one writer) and for events and status, always 1.
    #[serde(default = "default_parallel_batches")]
    pub parallel_batches: usize,
    /// User name, if the broker requires one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, if the broker requires one.
    #[serde(default)]
    pub password: Option<String>,
}

fn default_parallel_batches() -> usize {
    2
}

impl MqttConfig {
    /// The checks [`Config::load`] makes on `[mqtt]`, as the message of
    /// [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), String> {
        if let Some(broker) = &self.broker
            && !broker.contains(':')
        {
            return Err(format!("key `mqtt.broker`: `{broker}` is not host:port"));
        }
        if let Some(group) = &self.shared_group
            && (group.is_empty() || group.contains(['/', '+', '#']))
        {
            return Err(format!(
                "key `mqtt.shared_group`: `{group}` must be a non-empty name without `/`, `+` or `#`"
            ));
        }
        if !(1..=8).contains(&self.parallel_batches) {
            return Err(format!(
                "key `mqtt.parallel_batches`: {} is not between 1 and 8",
                self.parallel_batches
            ));
        }
        Ok(())
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: None,
            embedded_listen: default_embedded_listen(),
            client_id: default_client_id(),
            shared_group: None,
            parallel_batches: default_parallel_batches(),
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
    /// A gateway nothing has arrived from for this many seconds is offline
    /// (its buildings `unknown`), even without its last-will. At most 7200:
    /// GB 50440 wants the link checked at least every 2 h.
    #[serde(default = "default_gateway_silent_after_secs")]
    pub gateway_silent_after_secs: u64,
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
            gateway_silent_after_secs: default_gateway_silent_after_secs(),
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
/// The client id when none is configured.
pub const DEFAULT_CLIENT_ID: &str = "riser-ingest";

fn default_client_id() -> String {
    DEFAULT_CLIENT_ID.into()
}
fn default_point_stale_after_secs() -> u64 {
    300
}
fn default_evaluate_every_secs() -> u64 {
    10
}
fn default_gateway_silent_after_secs() -> u64 {
    600
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
        if !(1..=7200).contains(&config.rules.gateway_silent_after_secs) {
            return Err(ConfigError::Invalid(
                "key `rules.gateway_silent_after_secs`: must be 1 to 7200 (GB 50440: a link check at least every 2 h)".into(),
            ));
        }
        config.mqtt.validate().map_err(ConfigError::Invalid)?;
        if config.mqtt.shared_group.is_some()
            && config
                .database_url
                .as_deref()
                .and_then(crate::store::Backend::of)
                != Some(crate::store::Backend::Postgres)
        {
            return Err(ConfigError::Invalid(
                "key `mqtt.shared_group`: nodes that share the messages must share one PostgreSQL database (`database_url = \"postgres://…\"`), not each its own SQLite".into(),
            ));
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
        config.hazards.validate().map_err(ConfigError::Invalid)?;
        config.history.validate().map_err(ConfigError::Invalid)?;
        config.auth.validate().map_err(ConfigError::Invalid)?;
        if let Some(notify) = &config.notify {
            notify.validate().map_err(ConfigError::Invalid)?;
            crate::notify::channel::Channels::new(&notify.channels)
                .map_err(|e| ConfigError::Invalid(format!("key `notify.channels`: {e}")))?;
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
    fn a_shared_group_must_be_a_plain_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.toml");
        let load = |group: &str| {
            std::fs::write(
                &path,
                format!("registry = \"b.csv\"\ndatabase_url = \"postgres://riser@db/riser\"\n[mqtt]\nclient_id = \"riser-ingest-2\"\nshared_group = \"{group}\"\n"),
            )
            .unwrap();
            Config::load(Some(&path))
        };
        assert_eq!(
            load("riser").unwrap().mqtt.shared_group.as_deref(),
            Some("riser")
        );
        for bad in ["", "a/b", "a+", "#"] {
            let err = load(bad).unwrap_err().to_string();
            assert!(err.contains("mqtt.shared_group"), "{bad}: {err}");
        }
        std::fs::write(
            &path,
            "registry = \"b.csv\"\n[mqtt]\nshared_group = \"riser\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("PostgreSQL"),
            "one SQLite per node is refused: {err}"
        );
    }

    #[test]
    fn parallel_batches_are_between_one_and_eight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.toml");
        let load = |n: usize| {
            std::fs::write(
                &path,
                format!("registry = \"b.csv\"\n[mqtt]\nparallel_batches = {n}\n"),
            )
            .unwrap();
            Config::load(Some(&path))
        };
        assert_eq!(load(4).unwrap().mqtt.parallel_batches, 4);
        for bad in [0, 9] {
            let err = load(bad).unwrap_err().to_string();
            assert!(err.contains("mqtt.parallel_batches"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_notify_section_loads_its_parties_routing_and_channels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.toml");
        let text = r#"registry = "b.csv"
[notify]
reopen_quiet_minutes = 10
[notify.routing]
unacknowledged = ["management_unit", "building_manager"]
[[notify.party]]
name = "安泰维保"
targets = [{ kind = "wecom", url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" },
           { kind = "email", to = "duty@antai.example" }]
[[notify.fire_rescue]]
district = "梁平区"
name = "梁平区消防救援大队"
targets = [{ kind = "dingtalk", url = "https://oapi.dingtalk.com/robot/send?access_token=t", secret = "SEC1" }]
"#;
        std::fs::write(&path, text).unwrap();
        let notify = Config::load(Some(&path)).unwrap().notify.unwrap();
        assert_eq!(notify.reopen_quiet_minutes, 10);
        assert_eq!(notify.party[0].targets.len(), 2);
        assert_eq!(notify.fire_rescue[0].district, "梁平区");
        assert_eq!(
            notify.routing.unacknowledged,
            [
                crate::notify::route::Role::ManagementUnit,
                crate::notify::route::Role::BuildingManager
            ]
        );
        assert_eq!(
            notify.routing.overdue,
            [crate::notify::route::Role::FireRescue]
        );

        std::fs::write(&path, text.replace("kind = \"email\"", "kind = \"fax\"")).unwrap();
        assert!(
            Config::load(Some(&path)).is_err(),
            "an unknown channel is refused"
        );
        for (bad, key) in [
            ("poll_ms = 0", "notify.poll_ms"),
            (
                "public_url = \"https://riser.example.cn\"",
                "notify.link_secret",
            ),
            (
                "public_url = \"https://r.example\"\nlink_secret = \"short\"",
                "notify.link_secret",
            ),
            (
                "public_url = \"riser.example.cn\"\nlink_secret = \"0123456789abcdef0123456789abcdef\"",
                "notify.public_url",
            ),
        ] {
            std::fs::write(&path, format!("registry = \"b.csv\"\n[notify]\n{bad}\n")).unwrap();
            let err = Config::load(Some(&path)).unwrap_err().to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
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
