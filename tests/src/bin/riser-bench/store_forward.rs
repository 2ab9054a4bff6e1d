//! Store-and-forward benchmarks: durable writes into the outbox, draining it
//! to a real Mosquitto, bytes per reading on the wire, and the latency of a
//! fire alarm while a large backlog drains.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use riser_contract::{Quality, Reading, Telemetry};
use riser_e2e::Link;
use riser_gateway::config::MqttConfig;
use riser_gateway::metrics::Metrics;
use riser_gateway::{Gateway, Outbox, OutboxOptions};
use riser_sim::{BuildingSpec, Fault, Sim, SimOptions, site};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Readings of one poll cycle of `points` points at `ts`: levels and
/// pressures that wander a little from cycle to cycle, as real ones do.
pub(crate) fn cycle(points: usize, cycle: u64, ts: OffsetDateTime) -> Vec<Reading> {
    (0..points)
        .map(|p| {
            // A cheap deterministic wobble of a few millimetres / kPa.
            let wobble = ((cycle * 7919 + p as u64 * 104_729) % 11) as f64 / 1000.0;
            let (value, unit) = if p % 2 == 0 {
                (2.5 + wobble, "m")
            } else {
                (0.35 + wobble / 10.0, "MPa")
            };
            Reading {
                point: format!("dev{:02}.p{}", p / 10, p % 10),
                ts,
                value: Some((value * 1000.0).round() / 1000.0),
                unit: Some(unit.into()),
                quality: Quality::Good,
                exception: None,
                clock: None,
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Durable writes (`synchronous=FULL`, group commit): `writers` tasks, as
/// lines of a gateway, each writing poll cycles of `per_write` readings and
/// waiting for each to be on disk.
pub async fn write(readings: u64, writers: usize, per_write: usize) -> anyhow::Result<()> {
    println!("outbox durable write: {readings} readings, cycles of {per_write}, synchronous=FULL");
    println!(
        "{:>8} {:>14} {:>10} {:>12} {:>12}",
        "writers", "readings/s", "commits", "p50 ms", "p99 ms"
    );
    for writers in [1, writers] {
        let dir = tempfile::tempdir()?;
        let outbox = Outbox::open(
            &dir.path().join("outbox.db"),
            OutboxOptions::new("gw-bench"),
        )
        .await?;
        let per_writer = readings / writers as u64 / per_write as u64;
        let started = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_writer as usize);
                    let ts = OffsetDateTime::now_utc();
                    for c in 0..per_writer {
                        let batch = cycle(per_write, c * writers as u64 + w as u64, ts);
                        let t = Instant::now();
                        outbox.append_readings(batch, None).await?;
                        latencies.push(t.elapsed());
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        let written = per_writer * writers as u64 * per_write as u64;
        // One staged row per commit of readings; nothing is sealed here.
        let commits = outbox.depth().await?;
        println!(
            "{:>8} {:>14.0} {:>10} {:>12.2} {:>12.2}",
            writers,
            written as f64 / elapsed.as_secs_f64(),
            commits,
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
        );
        outbox.close().await;
    }
    Ok(())
}

/// Fills an outbox with `readings` readings of a 100-point gateway polled
/// every second (cycles of 100), written 100 cycles per commit.
async fn prefill(outbox: &Outbox, readings: u64, start: OffsetDateTime) -> anyhow::Result<()> {
    let cycles = readings / 100;
    let mut c = 0;
    while c < cycles {
        let mut batch = Vec::with_capacity(100 * 100);
        for _ in 0..100.min(cycles - c) {
            batch.extend(cycle(100, c, start + time::Duration::seconds(c as i64)));
            c += 1;
        }
        outbox.append_readings(batch, None).await?;
    }
    Ok(())
}

/// Drains a backlog of `readings` to the broker at `port` through a
/// counting link; prints readings/s and bytes per reading on the wire.
pub async fn drain(readings: u64, port: u16) -> anyhow::Result<()> {
    println!(
        "outbox drain to Mosquitto 127.0.0.1:{port}: {readings} readings of a 100-point gateway (1 s polls), QoS 1"
    );
    println!(
        "{:>12} {:>10} {:>14} {:>10} {:>16} {:>14}",
        "encoding", "messages", "readings/s", "seconds", "wire B/reading", "wire MB"
    );
    for compress in [true, false] {
        let dir = tempfile::tempdir()?;
        let options = OutboxOptions {
            compress,
            ..OutboxOptions::new("gw-bench")
        };
        let outbox = Outbox::open(&dir.path().join("outbox.db"), options).await?;
        prefill(
            &outbox,
            readings,
            OffsetDateTime::now_utc() - time::Duration::days(1),
        )
        .await?;
        let link = Link::start(([127, 0, 0, 1], port).into()).await?;
        let shutdown = CancellationToken::new();
        let mqtt = MqttConfig {
            port: link.port,
            batch_delay_ms: 0,
            ..MqttConfig::default()
        };
        let started = Instant::now();
        let uplink = tokio::spawn(riser_gateway::uplink::run(
            "gw-bench".into(),
            mqtt,
            outbox.clone(),
            Metrics::default(),
            shutdown.clone(),
        ));
        while outbox.depth().await? > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed();
        let messages = outbox.last_seq(riser_contract::Stream::Telemetry).await?;
        shutdown.cancel();
        uplink.await?;
        while link.counts().open.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let up = link.counts().bytes_up.load(Ordering::SeqCst);
        println!(
            "{:>12} {:>10} {:>14.0} {:>10.2} {:>16.2} {:>14.1}",
            if compress { "compact+zlib" } else { "compact" },
            messages,
            readings as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            up as f64 / readings as f64,
            up as f64 / 1e6,
        );
        outbox.close().await;
    }
    // The contract's verbose form of the same 500 readings, for comparison.
    let batch: Vec<Reading> = (0..5)
        .flat_map(|c| cycle(100, c, OffsetDateTime::now_utc()))
        .collect();
    let verbose = serde_json::to_vec(&serde_json::json!({
        "v": 1, "gateway": "gw-bench", "seq": 1, "readings": batch,
    }))?;
    let compact = riser_contract::encode(&Telemetry::new("gw-bench", 1, batch));
    println!(
        "payload only, 500 readings: verbose JSON {:.1} B/reading, compact {:.1}, compact+zlib {:.1}",
        verbose.len() as f64 / 500.0,
        compact.len() as f64 / 500.0,
        riser_contract::compress(&compact).len() as f64 / 500.0,
    );
    Ok(())
}

/// Fire alarms at a simulated panel → stored by cloud-ingest, while the
/// gateway drains a backlog of `backlog` readings through the same broker.
pub async fn alarm_latency(
    backlog: u64,
    alarms: usize,
    poll_ms: u64,
    port: u16,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let dir = tempfile::tempdir()?;
    let spec = BuildingSpec::example("LAT-1");
    let sim = Sim::start(vec![spec.clone()], SimOptions::default(), shutdown.clone()).await?;
    let registry =
        riser_ingest::Registry::new(vec![site::registry_building(&spec, "梁平区", "梁山街道")])?;
    let ingest_config = riser_e2e::ingest_config(
        &dir.path().join("ingest"),
        port,
        &format!("bench-{}", std::process::id()),
    );
    let ingest = riser_ingest::Ingest::start(ingest_config, registry, shutdown.clone()).await?;

    let mqtt = MqttConfig {
        port,
        ..MqttConfig::default()
    };
    let config = site::gateway_config(
        &spec,
        sim.buildings[0].modbus_addr,
        mqtt,
        dir.path().join("gateway"),
        poll_ms,
    );
    let gateway_id = config.id.clone();
    // The backlog: a day's outage of a 100-point gateway, already on disk.
    {
        std::fs::create_dir_all(&config.data_dir)?;
        let outbox = Outbox::open(
            &config.data_dir.join("outbox.db"),
            riser_gateway::outbox_options(&config),
        )
        .await?;
        prefill(
            &outbox,
            backlog,
            OffsetDateTime::now_utc() - time::Duration::days(1),
        )
        .await?;
        outbox.close().await;
    }
    println!(
        "fire alarm at a simulated panel → stored by cloud-ingest; poll period {poll_ms} ms; backlog {backlog} readings draining through Mosquitto 127.0.0.1:{port}"
    );
    let gateway = Gateway::start(config, shutdown.clone()).await?;
    let store = ingest.app.store.clone();
    let alarm_value = || {
        let store = store.clone();
        let gateway_id = gateway_id.clone();
        async move {
            store
                .latest(&gateway_id)
                .await
                .ok()?
                .into_iter()
                .find(|l| l.point == "panel.fire_alarm")
                .and_then(|l| l.value.value)
        }
    };
    // The initial state first.
    while alarm_value().await.is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = Vec::new();
    let mut depth_at_first = None;
    let mut depth_at_last = 0;
    let mut jitter = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..alarms {
        // Wait a varying part of a poll period so the alarm falls anywhere in it.
        jitter ^= jitter << 13;
        jitter ^= jitter >> 7;
        jitter ^= jitter << 17;
        tokio::time::sleep(Duration::from_millis(300 + jitter % poll_ms.max(1))).await;
        let raise = i % 2 == 0;
        let want = if raise { 1.0 } else { 0.0 };
        let depth = gateway.outbox.depth().await?;
        depth_at_first.get_or_insert(depth);
        depth_at_last = depth;
        let t = Instant::now();
        if raise {
            sim.inject("LAT-1", Fault::FireAlarm)?;
        } else {
            sim.clear("LAT-1")?;
        }
        while alarm_value().await != Some(want) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(t.elapsed());
        eprintln!(
            "alarm edge {i}: {} ms; gateway outbox entries {depth}; cloud-ingest has stored {} readings",
            t.elapsed().as_millis(),
            ingest.app.metrics.readings_stored.load(Ordering::Relaxed)
        );
    }
    latencies.sort_unstable();
    let (health, _) = gateway
        .outbox
        .health(riser_contract::unix_ms(OffsetDateTime::now_utc()))
        .await?;
    println!(
        "{} alarm edges: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target: p99 ≤ poll period + 1 s = {} ms)",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        poll_ms + 1000
    );
    println!(
        "all, ms: {:?}",
        latencies.iter().map(|l| l.as_millis()).collect::<Vec<_>>()
    );
    println!(
        "gateway outbox entries during the measurement: {} at the first alarm, {} at the last; {} readings still buffered at the end",
        depth_at_first.unwrap_or(0),
        depth_at_last,
        health.readings
    );
    let stored = ingest.app.metrics.readings_stored.load(Ordering::Relaxed);
    println!(
        "cloud-ingest had stored {stored} of the {backlog} backlog readings by the last alarm"
    );
    shutdown.cancel();
    gateway.join().await;
    ingest.join().await;
    sim.join().await;
    Ok(())
}
