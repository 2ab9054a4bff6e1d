//! `riser-bench`: the acquisition benchmarks of the gateway, printing figures.
//!
//! ```text
//! riser-bench coalescing            requests per poll cycle ÷ theoretical minimum
//! riser-bench rtu [--cycles N]      RTU poll-cycle time ÷ wire minimum at 9600 baud (pty + device-sim wire pacing)
//! riser-bench outbox-write [--readings N] [--writers W] [--per-write K]
//!                                   durable (synchronous=FULL) writes into the outbox, readings/s, group commit
//! riser-bench outbox-drain [--readings N] [--port P]
//!                                   a backlog drained to Mosquitto at P (default 1883): readings/s, bytes per reading on the wire
//! riser-bench alarm-latency [--backlog N] [--alarms A] [--poll-ms MS] [--port P]
//!                                   fire alarm at a simulated panel → stored by cloud-ingest, while N readings drain
//! riser-bench ingest [--readings N] [--database postgres://…] [--port P] [--instances N] [--window W] [--parallel B]
//!                                   readings/s stored by cloud-ingest with rules on (SQLite, or the given PostgreSQL database,
//!                                   emptied first) and the verdict latency under that load; with --instances N > 1 (PostgreSQL),
//!                                   the same with one node and with N nodes in an MQTT shared subscription, side by side;
//!                                   on PostgreSQL each shape first storing one batch at a time per node, then B at once
//!                                   (mqtt.parallel_batches, default 2); the publisher keeps at most W messages per node
//!                                   unstored (default 64); through a
//!                                   Mosquitto of its own (in memory, fresh per run) unless --port names a broker
//! riser-bench alerts [--latency N] [--outage N] [--contractors C] [--database postgres://…]
//!                                   low tank published → the contractor's webhook received, N items one at a time (p50/p99);
//!                                   then N buildings failing at once among C contractors: messages per recipient after
//!                                   the rate limit, digests, time to drain
//! riser-bench dashboard [--buildings N] [--requests R] [--database postgres://…]
//!                                   the dashboard's reads (overview/building list as admin and as a scoped user, a
//!                                   building, hazards, statistics) over HTTP with N buildings seeded: p50/p99/max
//! riser-bench footprint [--points FILE] [--seconds S] [--external-sim]
//!                                   RSS and CPU of a riser-gateway process polling ~100 devices / ~1000 points at 1 s;
//!                                   --external-sim polls a `riser-sim serve` already running on the points' ports
//!                                   (so a peer gateway can poll the same devices in the same run)
//! ```
//! Build with `cargo build --release --bins`; run
//! `target/release/riser-bench …` from the repository root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use riser_gateway::config::{DeviceConfig, LineConfig, MqttConfig, PointConfig, Table};
use riser_gateway::modbus::{LinePoller, ReadLimits, minimum_reads, silent_interval};
use riser_sim::{BuildingSpec, LineTiming, Sim, SimOptions, site};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// One point of the footprint bench (shared with the ThingsBoard peer's config generator).
#[derive(Debug, Deserialize)]
struct BenchPoint {
    port: u16,
    unit: u8,
    table: Table,
    register: u16,
    bit: Option<u8>,
    name: String,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

mod alerts;
mod dashboard;
mod ingest;
mod store_forward;

fn num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(match arg(args, name) {
        Some(v) => v.parse().with_context(|| format!("{name} {v}"))?,
        None => default,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Warnings and errors of the parts under test to stderr; RUST_LOG filters.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("outbox-write") => {
            store_forward::write(
                num(&args, "--readings", 1_000_000)?,
                num(&args, "--writers", 8)?,
                num(&args, "--per-write", 100)?,
            )
            .await
        }
        Some("outbox-drain") => {
            store_forward::drain(
                num(&args, "--readings", 1_000_000)?,
                num(&args, "--port", 1883)?,
            )
            .await
        }
        Some("ingest") => {
            ingest::ingest(
                num(&args, "--readings", 1_000_000)?,
                arg(&args, "--database"),
                arg(&args, "--port")
                    .map(|p| p.parse().with_context(|| format!("--port {p}")))
                    .transpose()?,
                num(&args, "--instances", 1)?,
                num(&args, "--window", 64)?,
                num(&args, "--parallel", 2)?,
            )
            .await
        }
        Some("alerts") => {
            alerts::alerts(
                num(&args, "--latency", 200)?,
                num(&args, "--outage", 1000)?,
                num(&args, "--contractors", 10)?,
                arg(&args, "--database"),
            )
            .await
        }
        Some("dashboard") => {
            dashboard::dashboard(
                num(&args, "--buildings", 10_000)?,
                num(&args, "--requests", 200)?,
                arg(&args, "--database"),
            )
            .await
        }
        Some("alarm-latency") => {
            store_forward::alarm_latency(
                num(&args, "--backlog", 1_000_000)?,
                num(&args, "--alarms", 40)?,
                num(&args, "--poll-ms", 1000)?,
                num(&args, "--port", 1883)?,
            )
            .await
        }
        Some("coalescing") => coalescing().await,
        Some("rtu") => rtu(arg(&args, "--cycles").map_or(Ok(20), |c| c.parse())?).await,
        Some("footprint") => {
            let points = PathBuf::from(
                arg(&args, "--points").unwrap_or_else(|| "bench/thingsboard/points.json".into()),
            );
            let seconds = arg(&args, "--seconds").map_or(Ok(60), |s| s.parse())?;
            footprint(&points, seconds, args.iter().any(|a| a == "--external-sim")).await
        }
        _ => bail!(
            "usage: riser-bench coalescing | rtu [--cycles N] | footprint [--points FILE] [--seconds S] | outbox-write [--readings N] [--writers W] [--per-write K] | outbox-drain [--readings N] [--port P] | alarm-latency [--backlog N] [--alarms A] [--poll-ms MS] [--port P] | ingest [--readings N] [--database URL] [--port P] [--instances N] [--window W] [--parallel B] | alerts [--latency N] [--outage N] [--contractors C] [--database URL] | dashboard [--buildings N] [--requests R] [--database URL]"
        ),
    }
}

/// Every device's register map of 20 simulated buildings, as the demo reads
/// them: requests actually sent in one cycle against ⌈span/125⌉ per device
/// and function code.
async fn coalescing() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let specs: Vec<_> = (0..20)
        .map(|i| BuildingSpec::example(&format!("B-{i:02}")))
        .collect();
    let sim = Sim::start(specs.clone(), SimOptions::default(), shutdown.clone()).await?;
    let (mut sent, mut minimum, mut points) = (0u64, 0usize, 0usize);
    for (spec, building) in specs.iter().zip(&sim.buildings) {
        let config = site::gateway_config(
            spec,
            building.modbus_addr,
            MqttConfig::default(),
            "unused".into(),
            1000,
        );
        for device in &config.devices {
            let (max_registers, max_gap) = device.read_limits();
            minimum += minimum_reads(
                &device.points,
                ReadLimits {
                    max_registers,
                    max_gap,
                },
            );
            points += device.points.len();
        }
        let mut line = LinePoller::new(config.lines[0].clone(), config.devices);
        line.poll().await;
        sent += line.stats().last_cycle_requests;
    }
    println!(
        "coalescing: {points} points on {} devices",
        sim.buildings.len() * 4
    );
    println!("  requests per poll cycle      {sent}");
    println!("  theoretical minimum          {minimum}");
    println!(
        "  ratio                        {:.2}",
        sent as f64 / minimum as f64
    );
    shutdown.cancel();
    sim.join().await;
    Ok(())
}

/// One building on an RTU line at 9600 baud (socat pty; device-sim holds
/// each answer for the wire time of request and answer): mean poll-cycle
/// time against Σ (13 + 2N) × 11 / baud + 2 × t3.5 over the cycle's requests.
async fn rtu(cycles: u32) -> anyhow::Result<()> {
    const BAUD: u32 = 9600;
    let rig = riser_e2e::RtuRig::start(
        "RTU-B",
        BAUD,
        LineTiming {
            wire_baud: Some(BAUD),
        },
    )
    .await?;
    // The wire minimum of one cycle, from the planned reads.
    let t35 = silent_interval(BAUD).as_secs_f64();
    let mut minimum = 0.0;
    for device in &rig.devices {
        let (max_registers, max_gap) = device.read_limits();
        for block in riser_gateway::modbus::plan_reads(
            &device.points,
            ReadLimits {
                max_registers,
                max_gap,
            },
        ) {
            minimum +=
                f64::from(13 + 2 * u32::from(block.count)) * 11.0 / f64::from(BAUD) + 2.0 * t35;
        }
    }
    let mut line = LinePoller::new(rig.line.clone(), rig.devices.clone());
    line.poll().await; // open the port, warm up
    let started = Instant::now();
    for _ in 0..cycles {
        let readings = line.poll().await;
        if readings
            .iter()
            .any(|r| r.quality != riser_contract::Quality::Good)
        {
            bail!("a point did not read good: {readings:?}");
        }
    }
    let cycle = started.elapsed().as_secs_f64() / f64::from(cycles);
    println!(
        "rtu: {} requests per cycle at {BAUD} baud, {cycles} cycles",
        line.stats().last_cycle_requests
    );
    println!("  measured cycle time          {:.1} ms", cycle * 1000.0);
    println!("  wire minimum                 {:.1} ms", minimum * 1000.0);
    println!("  ratio                        {:.3}", cycle / minimum);
    rig.stop().await;
    Ok(())
}

/// The gateway as its own release process polling the simulated devices in
/// `points` every second (publishing to the local Mosquitto); its RSS and
/// CPU after a 30 s warm-up.
async fn footprint(points_file: &Path, seconds: u64, external_sim: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(points_file)
        .with_context(|| format!("{}", points_file.display()))?;
    let points: Vec<BenchPoint> = serde_json::from_str(&text)?;
    let ports: std::collections::BTreeSet<u16> = points.iter().map(|p| p.port).collect();
    let base = *ports.first().context("no points")?;
    let shutdown = CancellationToken::new();
    let specs: Vec<_> = (0..ports.len())
        .map(|i| BuildingSpec::example(&format!("F-{i:03}")))
        .collect();
    let options = SimOptions {
        modbus_base_port: Some(base),
        ..SimOptions::default()
    };
    let sim = if external_sim {
        None
    } else {
        Some(Sim::start(specs, options, shutdown.clone()).await?)
    };

    let mut devices: BTreeMap<(u16, u8), DeviceConfig> = BTreeMap::new();
    for p in &points {
        let device = devices.entry((p.port, p.unit)).or_insert_with(|| {
            DeviceConfig::new(
                format!("p{}u{}", p.port, p.unit),
                format!("tcp{}", p.port),
                p.unit,
            )
        });
        device.points.push(PointConfig {
            table: p.table,
            bit: p.bit,
            ..PointConfig::new(p.name.clone(), p.register)
        });
    }
    let dir = tempfile::tempdir()?;
    let config = riser_gateway::Config {
        poll_interval_ms: 1000,
        lines: ports
            .iter()
            .map(|port| LineConfig::tcp(format!("tcp{port}"), format!("127.0.0.1:{port}")))
            .collect(),
        devices: devices.into_values().collect(),
        metrics_listen: Some(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            riser_e2e::free_port(),
        ))),
        ..riser_gateway::Config::new("gw-bench", dir.path().join("data"))
    };
    let metrics_addr = config.metrics_listen.context("metrics address")?;
    let device_count = config.devices.len();
    let config_path = dir.path().join("gateway.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    let exe = std::env::current_exe()?.with_file_name("riser-gateway");
    let mut child = std::process::Command::new(&exe)
        .args(["--config", &config_path.to_string_lossy(), "run"])
        .env("RUST_LOG", "warn")
        .spawn()
        .with_context(|| {
            format!(
                "{} (build it with cargo build --release --bins)",
                exe.display()
            )
        })?;
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (rss_kb, cpu) = measure(pid, Duration::from_secs(seconds)).await?;
    println!(
        "footprint: riser-gateway polling {device_count} devices / {} points every 1 s over Modbus TCP",
        points.len()
    );
    println!(
        "  RSS max                      {:.1} MB",
        rss_kb as f64 / 1024.0
    );
    println!("  CPU                          {cpu:.2} % of one core over {seconds} s");
    // Proof it kept up: what it asked per cycle and what waits unsent.
    let (_, metrics) = riser_e2e::get_text(metrics_addr, "/metrics").await?;
    let sum = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    println!(
        "  Modbus requests last cycle   {}",
        sum("riser_gateway_modbus_requests_last_cycle{")
    );
    println!(
        "  outbox depth at the end      {}",
        sum("riser_gateway_outbox_depth ")
    );
    let _ = child.kill();
    let _ = child.wait();
    shutdown.cancel();
    if let Some(sim) = sim {
        sim.join().await;
    }
    Ok(())
}

/// Max VmRSS (kB) and CPU % of one core of `pid` over `window`, sampled every second.
async fn measure(pid: u32, window: Duration) -> anyhow::Result<(u64, f64)> {
    let ticks = 100.0; // USER_HZ on Linux
    let cpu_ticks = || -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("stat")?
            .1
            .split_whitespace()
            .collect();
        Ok(fields[11].parse::<f64>()? + fields[12].parse::<f64>()?)
    };
    let rss = || -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("VmRSS")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("VmRSS value")?
            .parse()?)
    };
    let start_cpu = cpu_ticks()?;
    let started = Instant::now();
    let mut max_rss = rss()?;
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        max_rss = max_rss.max(rss()?);
    }
    let cpu = (cpu_ticks()? - start_cpu) / ticks / started.elapsed().as_secs_f64() * 100.0;
    Ok((max_rss, cpu))
}
