//! `riser-sim demo`: the whole system in one process on loopback —
//! cloud-ingest with its embedded broker and SQLite, simulated buildings of
//! the sample district over Modbus TCP, and one gateway per building.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use riser_gateway::Gateway;
use riser_gateway::config::MqttConfig;
use riser_ingest::{Ingest, Registry};
use tokio_util::sync::CancellationToken;

use crate::{Fault, Sim, SimOptions, site};

/// Marks a data directory as the demo's own, so a new run may wipe it.
const MARKER: &str = ".riser-demo";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// District CSV to take buildings from.
    #[arg(long, default_value = "data/buildings-liangping.csv")]
    pub buildings: PathBuf,
    /// How many buildings (the first N of the CSV).
    #[arg(long, default_value_t = 24)]
    pub count: usize,
    /// Dashboard and API address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Embedded MQTT broker address.
    #[arg(long, default_value = "127.0.0.1:11883")]
    pub mqtt: SocketAddr,
    /// Fault-injection control interface address.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub control: SocketAddr,
    /// Gateway poll interval, milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub poll_interval_ms: u64,
    /// Where the demo keeps its databases; wiped at start (only if an earlier demo made it).
    #[arg(long, default_value = "demo-data")]
    pub data_dir: PathBuf,
}

fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.join(MARKER).exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    } else if dir.exists() && dir.read_dir()?.next().is_some() {
        anyhow::bail!(
            "{} exists and was not made by the demo; choose another --data-dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER),
        "made by riser-sim demo; wiped at its next start\n",
    )?;
    Ok(())
}

/// Demo accounts, one per kind of user: (user name, password, who).
/// Fixed passwords: the demo's store is made afresh each run and serves
/// the loopback address by default.
async fn demo_accounts(app: &riser_ingest::App) -> anyhow::Result<Vec<(String, String, String)>> {
    use riser_ingest::auth::{NewUser, Role, add_user};
    let first = app.registry.buildings().first();
    let district = first.map(|b| b.district.clone());
    let contractor = first.and_then(|b| b.parties.contractor.clone());
    let mut accounts = vec![
        ("admin", Role::Admin, None, "admin".to_owned()),
        ("installer", Role::Installer, None, "installer".to_owned()),
    ];
    if let Some(district) = district {
        accounts.push((
            "fire",
            Role::FireRescue,
            Some(district.clone()),
            format!("消防救援, {district}"),
        ));
    }
    if let Some(contractor) = contractor {
        accounts.push((
            "contractor",
            Role::Contractor,
            Some(contractor.clone()),
            format!("维保单位 {contractor}"),
        ));
    }
    let mut made = Vec::new();
    for (username, role, scope, what) in accounts {
        let password = format!("riser-demo-{username}");
        add_user(
            &app.store,
            &NewUser {
                username: username.into(),
                display_name: None,
                password: password.clone(),
                role,
                scope,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await?;
        made.push((username.to_owned(), password, what));
    }
    Ok(made)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    fresh_dir(&args.data_dir)?;
    let mut specs = crate::load_csv(&args.buildings)?;
    specs.truncate(args.count);
    let all = Registry::load(&args.buildings)?;
    let buildings = specs
        .iter()
        .map(|spec| {
            let mut b = all
                .get(&spec.id)
                .context("building missing from registry")?
                .clone();
            b.jockey_pump = spec.jockey_pump;
            Ok(b)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let registry = Registry::new(buildings)?;

    let shutdown = CancellationToken::new();
    let ingest_config: riser_ingest::Config = toml::from_str(&format!(
        "data_dir = {:?}\nregistry = {:?}\n[http]\nlisten = \"{}\"\n[mqtt]\nembedded_listen = \"{}\"\n",
        args.data_dir.join("ingest"),
        args.buildings,
        args.http,
        args.mqtt
    ))?;
    let ingest = Ingest::start(ingest_config, registry, shutdown.clone()).await?;
    let accounts = demo_accounts(&ingest.app).await?;

    let options = SimOptions {
        control_listen: args.control,
        ..SimOptions::default()
    };
    let sim = Sim::start(specs.clone(), options, shutdown.clone()).await?;
    // Two faults a contractor would be paged for; some tanks of the sample
    // district are too small for their class even when full.
    if let Some(spec) = specs.first() {
        sim.inject(&spec.id, Fault::DrainTank { to_level_m: None })?;
    }
    if let Some(spec) = specs.get(2) {
        sim.inject(&spec.id, Fault::PressureLoss)?;
    }

    let mut gateways = Vec::new();
    for (spec, building) in specs.iter().zip(&sim.buildings) {
        let mqtt = MqttConfig {
            host: args.mqtt.ip().to_string(),
            port: args.mqtt.port(),
            ..MqttConfig::default()
        };
        let config = site::gateway_config(
            spec,
            building.modbus_addr,
            mqtt,
            args.data_dir.join(site::gateway_id(spec)),
            args.poll_interval_ms,
        );
        gateways.push(Gateway::start(config, shutdown.clone()).await?);
    }

    println!(
        "Riser demo: {} buildings, {} gateways",
        specs.len(),
        gateways.len()
    );
    println!("  dashboard      http://{}/", ingest.http_addr);
    for (username, password, what) in &accounts {
        println!("    sign in as {username} / {password}  ({what})");
    }
    println!("  API            http://{}/api/buildings", ingest.http_addr);
    println!(
        "  MQTT broker    {} (mosquitto_sub -p {} -t 'riser/v1/#' -v)",
        ingest.broker_addr,
        args.mqtt.port()
    );
    println!("  fault control  http://{}/buildings", sim.control_addr);
    println!("Ctrl-C stops everything.");

    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    shutdown.cancel();
    for gateway in gateways {
        gateway.join().await;
    }
    ingest.join().await;
    sim.join().await;
    Ok(())
}
