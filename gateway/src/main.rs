use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use riser_contract::Quality;
use riser_gateway::config::{
    DataType, LineConfig, Parity, PointConfig, Table, Transport, WordOrder,
};
use riser_gateway::{Config, Gateway, installer};
use tokio_util::sync::CancellationToken;

/// Riser gateway: polls fire-water devices over Modbus (TCP, RTU, RTU over
/// TCP), buffers every reading on disk and forwards it over MQTT.
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
    /// Read every configured point once and print a table: point, raw,
    /// value, unit, quality, range check. Exits 1 if any point is not good.
    Check,
    /// Read one device live, without a config file, and print what it says.
    Probe(ProbeArgs),
    /// List the built-in device profiles and their channels.
    Profiles,
}

#[derive(clap::Args)]
struct ProbeArgs {
    /// Modbus TCP server `host:port`.
    #[arg(long, group = "transport")]
    tcp: Option<String>,
    /// Serial port for Modbus RTU, e.g. /dev/ttyUSB0.
    #[arg(long, group = "transport")]
    rtu: Option<PathBuf>,
    /// Serial device server `host:port` carrying RTU frames.
    #[arg(long, group = "transport")]
    rtu_over_tcp: Option<String>,
    /// Serial speed.
    #[arg(long, default_value_t = 9600)]
    baud: u32,
    /// Serial parity: none, even, odd.
    #[arg(long, default_value = "none")]
    parity: String,
    /// Serial stop bits.
    #[arg(long, default_value_t = 1)]
    stop_bits: u8,
    /// Request timeout, milliseconds.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Modbus unit id (slave address).
    #[arg(long, default_value_t = 1)]
    unit: u8,
    /// holding, input, coil or discrete_input.
    #[arg(long, default_value = "holding")]
    table: String,
    /// First register (0-based, as on the wire).
    #[arg(long)]
    register: u16,
    /// How many consecutive values to read.
    #[arg(long, default_value_t = 1)]
    count: u16,
    /// u16, i16, u32, i32 or f32.
    #[arg(long = "type", default_value = "u16")]
    data_type: String,
    /// Byte order of 32-bit values: abcd, cdab, badc, dcba.
    #[arg(long, default_value = "abcd")]
    order: String,
    /// Register holding the number of decimals (RS-485 transmitters).
    #[arg(long)]
    decimals_register: Option<u16>,
    /// Multiplier after decimals.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

/// Parses a snake_case config word with the config's own serde names.
fn word<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .with_context(|| format!("--{what} `{value}` is not one of the accepted values"))
}

impl ProbeArgs {
    fn line(&self) -> anyhow::Result<LineConfig> {
        let (transport, address, path) = match (&self.tcp, &self.rtu, &self.rtu_over_tcp) {
            (Some(a), None, None) => (Transport::Tcp, Some(a.clone()), None),
            (None, Some(p), None) => (Transport::Rtu, None, Some(p.clone())),
            (None, None, Some(a)) => (Transport::RtuOverTcp, Some(a.clone()), None),
            _ => anyhow::bail!("give exactly one of --tcp, --rtu, --rtu-over-tcp"),
        };
        Ok(LineConfig {
            transport,
            address,
            path,
            baud: self.baud,
            parity: word::<Parity>("parity", &self.parity)?,
            stop_bits: self.stop_bits,
            timeout_ms: self.timeout_ms,
            retries: 0,
            ..LineConfig::tcp("probe", "")
        })
    }

    fn point(&self) -> anyhow::Result<PointConfig> {
        Ok(PointConfig {
            table: word::<Table>("table", &self.table)?,
            data_type: word::<DataType>("type", &self.data_type)?,
            order: word::<WordOrder>("order", &self.order)?,
            decimals_register: self.decimals_register,
            scale: self.scale,
            ..PointConfig::new("probe", self.register)
        })
    }
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! { r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"), _ = term.recv() => Ok(()) }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let load = || {
        Config::load(Some(&cli.config))
            .with_context(|| format!("config file {}", cli.config.display()))
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Profiles => {
            for profile in riser_gateway::config::Profiles::builtin().iter() {
                let channels: Vec<&str> = profile.points.iter().map(|p| p.name.as_str()).collect();
                println!(
                    "{}\n  {}\n  channels: {}\n",
                    profile.name,
                    profile.description,
                    channels.join(", ")
                );
            }
            Ok(())
        }
        Command::Probe(args) => {
            let rows = installer::probe(args.line()?, args.unit, args.point()?, args.count).await;
            print!("{}", installer::render(&rows));
            ok_or_exit(&rows)
        }
        Command::Check => {
            let rows = installer::check(&load()?).await;
            print!("{}", installer::render(&rows));
            ok_or_exit(&rows)
        }
        Command::CheckConfig => {
            let mut shown = load()?;
            if shown.mqtt.password.is_some() {
                shown.mqtt.password = Some("********".into());
            }
            println!("{}", toml::to_string_pretty(&shown)?);
            Ok(())
        }
        Command::Run => {
            let shutdown = CancellationToken::new();
            let gateway = Gateway::start(load()?, shutdown.clone()).await?;
            stop_signal().await?;
            shutdown.cancel();
            gateway.join().await;
            Ok(())
        }
    }
}

/// Exit status 1 when any point did not read `good`, for scripts.
fn ok_or_exit(rows: &[installer::Row]) -> anyhow::Result<()> {
    let bad = rows
        .iter()
        .filter(|r| r.polled.reading.quality != Quality::Good)
        .count();
    if bad > 0 {
        eprintln!("{bad} of {} points did not read good", rows.len());
        std::process::exit(1);
    }
    Ok(())
}
