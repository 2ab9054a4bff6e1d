//! Riser gateway: polls fire-water field devices over Modbus, writes every
//! reading to an on-disk outbox, and forwards it over MQTT.
//!
//! Data path: [`modbus`] (acquire) → [`acquire`] (events) → [`outbox`] →
//! [`uplink`] → broker.

pub mod acquire;
pub mod clock;
pub mod config;
pub mod installer;
pub mod metrics;
pub mod modbus;
pub mod mqtt_sensors;
pub mod outbox;
pub mod uplink;

pub use config::Config;
pub use outbox::{Outbox, OutboxOptions};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Outbox(#[from] outbox::OutboxError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot listen for metrics on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The outbox settings of a gateway config.
pub fn outbox_options(config: &Config) -> OutboxOptions {
    OutboxOptions {
        gateway: config.id.clone(),
        max_bytes: config.outbox.max_bytes,
        thin_interval: std::time::Duration::from_secs(config.outbox.thin_interval_secs),
        max_readings_per_message: config.max_readings_per_message,
        compress: config.mqtt.compress,
    }
}

/// A running gateway.
pub struct Gateway {
    pub outbox: Outbox,
    /// Where `GET /metrics` is served, if `metrics_listen` is set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Latest values of the wireless sensors.
    pub sensors: mqtt_sensors::SensorHub,
    acquire: JoinHandle<()>,
    uplink: JoinHandle<()>,
    sensor_task: Option<JoinHandle<()>>,
    metrics_task: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Opens the outbox and starts acquisition and uplink; both stop when
    /// `shutdown` is cancelled.
    pub async fn start(
        mut config: Config,
        shutdown: CancellationToken,
    ) -> Result<Self, GatewayError> {
        config.resolve_profiles()?;
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| GatewayError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let outbox =
            Outbox::open(&config.data_dir.join("outbox.db"), outbox_options(&config)).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| GatewayError::Listen { addr, source })?,
            ),
            None => None,
        };
        tracing::info!(gateway_id = %config.id, devices = config.devices.len(), broker = %format!("{}:{}", config.mqtt.host, config.mqtt.port), "gateway started");
        let metrics = metrics::Metrics::default();
        // The first health report goes out on connect, before the first poll.
        let first_look = clock::ClockWatch::from_config(&config.clock).observe(
            riser_contract::unix_ms(time::OffsetDateTime::now_utc()),
            clock::boot_ms(),
            clock::kernel_synced(),
        );
        metrics.record_clock(first_look.trusted, 0);
        let uplink = tokio::spawn(uplink::run(
            config.id.clone(),
            config.mqtt.clone(),
            outbox.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        let sensors = mqtt_sensors::SensorHub::default();
        let sensor_task = config.mqtt_sensors.clone().map(|sensor_config| {
            tokio::spawn(mqtt_sensors::run(
                config.id.clone(),
                sensor_config,
                sensors.clone(),
                shutdown.clone(),
            ))
        });
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let metrics_task = metrics_listener.map(|listener| {
            tokio::spawn(metrics::serve(
                listener,
                metrics.clone(),
                outbox.clone(),
                sensors.clone(),
                shutdown.clone(),
            ))
        });
        let acquire = tokio::spawn(acquire::run(
            config,
            outbox.clone(),
            sensors.clone(),
            metrics,
            shutdown,
        ));
        Ok(Self {
            outbox,
            metrics_addr,
            sensors,
            acquire,
            uplink,
            sensor_task,
            metrics_task,
        })
    }

    /// Waits for every task to finish after shutdown.
    pub async fn join(self) {
        let _ = self.acquire.await;
        let _ = self.uplink.await;
        for task in [self.sensor_task, self.metrics_task].into_iter().flatten() {
            let _ = task.await;
        }
        self.outbox.close().await;
    }
}
