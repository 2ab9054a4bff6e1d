use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use riser_ingest::{Config, Ingest, Registry};
use tokio_util::sync::CancellationToken;

/// Riser cloud-ingest: consumes gateway messages (MQTT), stores them
/// (SQLite by default, PostgreSQL with `database_url = "postgres://…"`;
/// telemetry also to InfluxDB 2 with `[influx]`), judges every building's
/// fire water against GB 50974 and serves the API and dashboard.
///
/// With no `mqtt.broker` configured it runs an embedded MQTT broker on
/// `mqtt.embedded_listen` (default 127.0.0.1:11883).
///
/// Configuration: built-in defaults, then the TOML file, then environment
/// variables `RISER_INGEST_<KEY>` (`__` between nested keys, e.g.
/// `RISER_INGEST_HTTP__LISTEN`). Logs go to stderr; set `RUST_LOG` to filter.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Config file (TOML).
    #[arg(short, long, default_value = "/etc/riser/ingest.toml")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(Some(&cli.config))
        .with_context(|| format!("config file {}", cli.config.display()))?;
    let registry = Registry::load(&config.registry)?;
    let shutdown = CancellationToken::new();
    let ingest = Ingest::start(config, registry, shutdown.clone()).await?;
    println!("Riser dashboard: http://{}/", ingest.http_addr);
    stop_signal().await?;
    shutdown.cancel();
    ingest.join().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! { r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"), _ = term.recv() => Ok(()) }
}
