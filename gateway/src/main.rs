use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use riser_gateway::{Config, Gateway};
use tokio_util::sync::CancellationToken;

/// Riser gateway: polls fire-water devices (Modbus TCP), buffers every
/// reading on disk and forwards it over MQTT.
///
/// Configuration: built-in defaults, then the TOML file, then environment
/// variables `RISER_GATEWAY_<KEY>` (`__` between nested keys, e.g.
/// `RISER_GATEWAY_MQTT__HOST`). Logs go to stderr; set `RUST_LOG` to filter.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Config file (TOML).
    #[arg(short, long, global = true, default_value = "/etc/riser/gateway.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Poll and forward until stopped (the default).
    Run,
    /// Load and validate the config, print it as resolved, and exit.
    CheckConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(Some(&cli.config))
        .with_context(|| format!("config file {}", cli.config.display()))?;
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            let mut shown = config.clone();
            if shown.mqtt.password.is_some() {
                shown.mqtt.password = Some("********".into());
            }
            println!("{}", toml::to_string_pretty(&shown)?);
            Ok(())
        }
        Command::Run => {
            let shutdown = CancellationToken::new();
            let gateway = Gateway::start(config, shutdown.clone()).await?;
            stop_signal().await?;
            shutdown.cancel();
            gateway.join().await;
            Ok(())
        }
    }
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! { r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"), _ = term.recv() => Ok(()) }
}
