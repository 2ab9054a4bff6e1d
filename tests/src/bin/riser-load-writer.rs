//! A gateway under sustained load, for the kill -9 test and the outbox
//! benchmarks: the real outbox and uplink, fed with readings of one counter
//! point whose values are 1, 2, 3, ... from `--start`. After each write has
//! returned (the readings are on disk) it prints `written {last value}`, so
//! whoever kills it knows what it promised.
//!
//! ```text
//! riser-load-writer --data-dir DIR --port 1883 --start 1 --count 100000 --per-write 100
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use riser_contract::{Quality, Reading};
use riser_gateway::config::MqttConfig;
use riser_gateway::metrics::Metrics;
use riser_gateway::{Outbox, OutboxOptions};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

struct Args {
    data_dir: PathBuf,
    port: u16,
    gateway: String,
    start: u64,
    count: u64,
    per_write: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        data_dir: PathBuf::new(),
        port: 1883,
        gateway: "gw-load".into(),
        start: 1,
        count: u64::MAX,
        per_write: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data-dir" => args.data_dir = value.into(),
            "--port" => args.port = value.parse()?,
            "--gateway" => args.gateway = value,
            "--start" => args.start = value.parse()?,
            "--count" => args.count = value.parse()?,
            "--per-write" => args.per_write = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(
        !args.data_dir.as_os_str().is_empty(),
        "--data-dir is required"
    );
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let outbox = Outbox::open(
        &args.data_dir.join("outbox.db"),
        OutboxOptions::new(args.gateway.clone()),
    )
    .await?;
    let mqtt = MqttConfig {
        port: args.port,
        batch_delay_ms: 0,
        reconnect_delay_ms: 100,
        reconnect_max_delay_ms: 500,
        ..MqttConfig::default()
    };
    let shutdown = CancellationToken::new();
    let uplink = tokio::spawn(riser_gateway::uplink::run(
        args.gateway.clone(),
        mqtt,
        outbox.clone(),
        Metrics::default(),
        shutdown.clone(),
    ));
    let mut stdout = std::io::stdout().lock();
    let end = args.start.saturating_add(args.count);
    let mut next = args.start;
    while next < end {
        let last = (next + args.per_write).min(end);
        let ts = OffsetDateTime::now_utc();
        let readings = (next..last)
            .map(|value| Reading {
                point: "load.counter".into(),
                ts,
                value: Some(value as f64),
                unit: None,
                quality: Quality::Good,
                exception: None,
                clock: None,
            })
            .collect();
        outbox.append_readings(readings, None).await?;
        writeln!(stdout, "written {}", last - 1)?;
        stdout.flush()?;
        next = last;
    }
    writeln!(stdout, "done")?;
    stdout.flush()?;
    // Keep sending until stopped.
    loop {
        if outbox.depth().await? == 0 {
            writeln!(stdout, "drained")?;
            stdout.flush()?;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    uplink.await?;
    Ok(())
}
