//! `riser-sim`: simulated buildings over Modbus TCP with fault injection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use riser_sim::{Sim, SimOptions};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Simulated high-rise buildings speaking Modbus TCP, with faults injectable over HTTP.
#[derive(Debug, Parser)]
#[command(name = "riser-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve simulated buildings: one Modbus TCP port each, units 1-5, and a control interface.
    Serve(ServeArgs),
    /// Run the whole system in one process: cloud-ingest (embedded broker, SQLite,
    /// dashboard), simulated buildings with faults, and one gateway per building.
    Demo(riser_sim::demo::DemoArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// District CSV to take buildings from.
    #[arg(long, default_value = "data/buildings-liangping.csv")]
    buildings: PathBuf,
    /// How many buildings (the first N of the CSV).
    #[arg(long)]
    count: Option<usize>,
    /// Fault-injection control interface address (HTTP).
    #[arg(long, default_value = "127.0.0.1:9100")]
    control: SocketAddr,
    /// Address the Modbus TCP servers bind to.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    modbus_host: IpAddr,
    /// First Modbus TCP port; building i listens on this + i. Without it the OS picks free ports.
    #[arg(long)]
    modbus_base_port: Option<u16>,
    /// Physics time step, milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut specs = riser_sim::load_csv(&args.buildings)
        .with_context(|| format!("loading buildings from {}", args.buildings.display()))?;
    if let Some(count) = args.count {
        specs.truncate(count);
    }
    let options = SimOptions {
        modbus_host: args.modbus_host,
        modbus_base_port: args.modbus_base_port,
        control_listen: args.control,
        tick: std::time::Duration::from_millis(args.tick_ms),
        ..SimOptions::default()
    };
    let shutdown = CancellationToken::new();
    let sim = Sim::start(specs, options, shutdown.clone())
        .await
        .context("starting the simulator")?;
    for building in &sim.buildings {
        println!(
            "{}  modbus tcp://{} (units 1-5)",
            building.id, building.modbus_addr
        );
    }
    println!("control  http://{}/buildings", sim.control_addr);
    println!("Ctrl-C stops.");

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    shutdown.cancel();
    sim.join().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => riser_sim::demo::run(args).await,
    }
}
