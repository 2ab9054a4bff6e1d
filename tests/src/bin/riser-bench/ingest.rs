//! cloud-ingest throughput with rules on, and scale-out: the same load
//! into one node, then into `instances` nodes sharing the gateways' messages
//! through an MQTT shared subscription and one PostgreSQL database; plus
//! the verdict latency under that load.
//!
//! Load: telemetry messages of 500 readings from 20 gateways (each the
//! gateway of a registered building), compressed, published at QoS 1 with
//! at most `window` messages per node not yet stored: the backlog at the
//! broker, which sets the latency under full load (Little's law), and
//! keeps the broker's per-client queue (1000 messages by default in
//! Mosquitto) from overflowing and dropping. Meanwhile a 21st gateway flips its building's tank
//! between full and low, one flip at a time, each once the previous one
//! changed the verdict: the nodes' `riser_ingest_verdict_latency_seconds`
//! samples (MQTT receive → verdict change committed) and the bench's own
//! publish → committed time give the verdict latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use riser_contract::{Reading, Stream, Telemetry};
use riser_ingest::{Ingest, Registry};
use riser_sim::{BuildingSpec, site};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::store_forward::{cycle, ms};

/// Load gateways.
const GATEWAYS: u64 = 20;
/// Readings per telemetry message.
const PER_MESSAGE: u64 = 500;
/// The building whose tank the bench flips.
const FLIP: &str = "ING-FLIP";
/// A full and a low tank of [`BuildingSpec::example`].
const FULL: f64 = 2.3;
const LOW: f64 = 1.0;

/// What one run measured.
struct Run {
    nodes: usize,
    /// Telemetry batches each node stored at once (`mqtt.parallel_batches`).
    parallel: usize,
    readings: u64,
    elapsed: Duration,
    /// Messages each node stored.
    per_node: Vec<u64>,
    conflicts: u64,
    store_errors: u64,
    /// MQTT receive → verdict change committed, from the nodes' metrics.
    node_latency: Vec<Duration>,
    /// Flip published → verdict change committed, seen by the bench.
    flip_latency: Vec<Duration>,
    /// Flips that changed no verdict within 10 s.
    flips_lost: u64,
    /// The machine's CPU time in use over the run (all processes), 0-1.
    cpu_busy: f64,
    /// This process's part of it (the nodes and the publisher), 0-1.
    cpu_self: f64,
}

/// `readings` readings into SQLite (one node) or, with `database`, into
/// that PostgreSQL database (emptied before each run): with one node, and
/// with `instances` nodes if more than one, each storing one batch at a
/// time and then `parallel` at once (`mqtt.parallel_batches`; SQLite
/// always stores one). Through the broker on loopback
/// `port`, or one of the bench's own (Mosquitto, in memory, a fresh one per
/// run): a shared broker carries whatever else publishes on `riser/v1/…`.
pub async fn ingest(
    readings: u64,
    database: Option<String>,
    port: Option<u16>,
    instances: usize,
    window: u64,
    parallel: usize,
) -> anyhow::Result<()> {
    if instances == 0 || window == 0 || parallel == 0 {
        bail!("--instances, --window and --parallel must be at least 1");
    }
    if instances > 1 && database.is_none() {
        bail!(
            "--instances {instances} needs --database postgres://…: nodes share one PostgreSQL database"
        );
    }
    let backend = if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let messages = readings / PER_MESSAGE;
    let broker = port.map_or("a Mosquitto of its own per run".to_owned(), |p| {
        format!("broker 127.0.0.1:{p}")
    });
    println!(
        "cloud-ingest, rules on, {backend}, {broker}: {} readings in {messages} messages of {PER_MESSAGE} from {GATEWAYS} gateways, at most {window} messages per node unstored; a 21st gateway flips its tank meanwhile",
        messages * PER_MESSAGE
    );
    let mut runs = Vec::new();
    let nodes = if instances > 1 {
        vec![1, instances]
    } else {
        vec![1]
    };
    let parallels = if database.is_some() && parallel > 1 {
        vec![1, parallel]
    } else {
        vec![1]
    };
    let shapes = parallels
        .iter()
        .flat_map(|p| nodes.iter().map(move |n| (*n, *p)));
    for (nodes, parallel) in shapes {
        // A fresh broker per run, unless one was named.
        let own = match port {
            Some(_) => None,
            None => Some(riser_e2e::Mosquitto::start_in_memory().await?),
        };
        let port = port.or(own.as_ref().map(|m| m.port)).context("a broker")?;
        let run = run(messages, database.as_deref(), port, nodes, parallel, window).await?;
        drop(own);
        runs.push(run);
    }
    println!(
        "{:>6} {:>9} {:>12} {:>8} {:>5} {:>5} {:>22} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8} {:>10}",
        "nodes",
        "parallel",
        "readings/s",
        "seconds",
        "CPU",
        "self",
        "messages per node",
        "node p50",
        "node p99",
        "flip p50",
        "flip p99",
        "flips",
        "changes",
        "conflicts"
    );
    for run in &mut runs {
        let node = latency(&mut run.node_latency);
        let flip = latency(&mut run.flip_latency);
        println!(
            "{:>6} {:>9} {:>12.0} {:>8.2} {:>4.0}% {:>4.0}% {:>22} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8} {:>10}",
            run.nodes,
            run.parallel,
            run.readings as f64 / run.elapsed.as_secs_f64(),
            run.elapsed.as_secs_f64(),
            run.cpu_busy * 100.0,
            run.cpu_self * 100.0,
            run.per_node
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" + "),
            node.0,
            node.1,
            flip.0,
            flip.1,
            run.flip_latency.len(),
            run.node_latency.len(),
            run.conflicts,
        );
        if run.flips_lost > 0 || run.store_errors > 0 {
            println!(
                "       {} flips changed no verdict within 10 s; {} store errors (retried)",
                run.flips_lost, run.store_errors
            );
        }
    }
    let rate = |r: &Run| r.readings as f64 / r.elapsed.as_secs_f64();
    for pair in runs.chunks(2) {
        if let [one, many] = pair
            && many.nodes > 1
        {
            println!(
                "{} nodes ÷ 1 node, {} batch(es) at once each: {:.2}× (target ≥ 1.7× for 2)",
                many.nodes,
                one.parallel,
                rate(many) / rate(one)
            );
        }
    }
    println!(
        "CPU: the whole machine's ({} cores) busy over the run, everything running counts; self: this process's part (nodes, publisher; not PostgreSQL or the broker); latency in ms; node: MQTT receive → verdict change committed (riser_ingest_verdict_latency_seconds, `changes` samples); flip: published → committed",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

/// p50 and p99 in ms, as text.
fn latency(samples: &mut [Duration]) -> (String, String) {
    let mut q = |q| {
        riser_ingest::metrics::quantile(samples, q)
            .map_or("-".to_owned(), |d| format!("{:.1}", ms(d)))
    };
    (q(0.5), q(0.99))
}

fn registry() -> anyhow::Result<Registry> {
    let buildings = (0..GATEWAYS)
        .map(|i| format!("ING-{i:02}"))
        .chain([FLIP.to_owned()])
        .map(|id| site::registry_building(&BuildingSpec::example(&id), "梁平区", "梁山街道"))
        .collect();
    Ok(Registry::new(buildings)?)
}

fn gateway(i: u64) -> String {
    site::gateway_id(&BuildingSpec::example(&format!("ING-{i:02}")))
}

/// Telemetry message `seq` of load gateway `i`, compressed: readings of
/// now, the same values every time, so its building's verdict stays put.
fn load_message(i: u64, seq: u64) -> (String, Vec<u8>) {
    let gateway = gateway(i);
    let ts = OffsetDateTime::now_utc();
    let mut batch = cycle(PER_MESSAGE as usize - 2, 0, ts);
    for (point, value) in [("tank.level", 3.0), ("riser.pressure", 0.1)] {
        batch.push(reading(point, value, ts));
    }
    let payload = riser_contract::compress(&riser_contract::encode(&Telemetry::new(
        &gateway, seq, batch,
    )));
    (riser_contract::topic(&gateway, Stream::Telemetry), payload)
}

fn reading(point: &str, value: f64, ts: OffsetDateTime) -> Reading {
    Reading::good(point, ts, value)
}

/// Flip `seq` of the flipping gateway: low tank on odd numbers.
fn flip_message(seq: u64) -> (String, Vec<u8>) {
    let gateway = site::gateway_id(&BuildingSpec::example(FLIP));
    let ts = OffsetDateTime::now_utc();
    let level = if seq % 2 == 1 { LOW } else { FULL };
    let message = Telemetry::new(
        &gateway,
        seq,
        vec![
            reading("tank.level", level, ts),
            reading("riser.pressure", 0.1, ts),
        ],
    );
    (
        riser_contract::topic(&gateway, Stream::Telemetry),
        riser_contract::encode(&message),
    )
}

/// Sum of a counter over the nodes.
fn total(nodes: &[Ingest], counter: impl Fn(&riser_ingest::metrics::Metrics) -> &AtomicU64) -> u64 {
    nodes
        .iter()
        .map(|n| counter(&n.app.metrics).load(Ordering::Relaxed))
        .sum()
}

fn verdict_changes(nodes: &[Ingest]) -> u64 {
    nodes
        .iter()
        .map(|n| n.app.metrics.verdict_latency.count())
        .sum()
}

/// One run: `nodes` nodes on a fresh store, `messages` load messages.
async fn run(
    messages: u64,
    database: Option<&str>,
    port: u16,
    nodes: usize,
    parallel: usize,
    window: u64,
) -> anyhow::Result<Run> {
    let shutdown = CancellationToken::new();
    let dir = tempfile::tempdir()?;
    if let Some(url) = database {
        reset_postgres(url).await?;
    }
    let pid = std::process::id();
    let mut client_ids = Vec::new();
    let mut ingests = Vec::new();
    for n in 0..nodes {
        let name = format!("bench-{pid}-{nodes}-{n}");
        let mut config = riser_e2e::ingest_config(&dir.path().join(&name), port, &name);
        client_ids.push(config.mqtt.client_id.clone());
        if let Some(url) = database {
            config.database_url = Some(url.to_owned());
            config.mqtt.shared_group = Some(format!("bench-{pid}-{nodes}"));
        }
        // Every change of a condition counts at once: each flip changes a
        // verdict, in the judging after its commit (no periodic judge to
        // take the change first).
        config.rules.tuning = riser_ingest::rules::Tuning::immediate();
        config.rules.evaluate_every_secs = 3600;
        config.mqtt.parallel_batches = parallel;
        ingests.push(Ingest::start(config, registry()?, shutdown.clone()).await?);
    }
    let mut waited = Instant::now();
    while !ingests.iter().all(|i| i.app.metrics.mqtt_connected()) {
        if waited.elapsed() > Duration::from_secs(30) {
            bail!("the nodes did not subscribe within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let publisher = Arc::new(riser_e2e::Publisher::connect(
        port,
        &format!("bench-pub-{pid}-{nodes}"),
    ));

    // Warm-up: one message per gateway (and the first flip), so every
    // building has its first verdict before the clock starts.
    for i in 0..GATEWAYS {
        let (topic, payload) = load_message(i, 1);
        publisher.publish(topic, payload).await?;
    }
    let (topic, payload) = flip_message(1);
    publisher.publish(topic, payload).await?;
    waited = Instant::now();
    while total(&ingests, |m| &m.messages_stored) < GATEWAYS + 1 {
        if waited.elapsed() > Duration::from_secs(60) {
            bail!("the warm-up messages were not stored within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let warm_readings = total(&ingests, |m| &m.readings_stored);
    let warm_samples: Vec<usize> = ingests
        .iter()
        .map(|i| i.app.metrics.verdict_latency.recent().len())
        .collect();
    let ingests = Arc::new(ingests);

    // The load, encoded before the clock starts (the publisher shares the
    // machine with the nodes), then published at most `window` messages
    // per node ahead of the store. Sequence numbers from 2: 1 was the
    // warm-up.
    let load: Vec<_> = (0..messages)
        .map(|m| load_message(m % GATEWAYS, m / GATEWAYS + 2))
        .collect();

    // The flips, one at a time, while the load runs.
    let loading = Arc::new(AtomicBool::new(true));
    let flips_stored = Arc::new(AtomicU64::new(0));
    let flipper = {
        let (publisher, ingests, loading, flips_stored) = (
            publisher.clone(),
            ingests.clone(),
            loading.clone(),
            flips_stored.clone(),
        );
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut lost = 0;
            let mut seq = 1;
            while loading.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                seq += 1;
                let before = verdict_changes(&ingests);
                let (topic, payload) = flip_message(seq);
                let t = Instant::now();
                publisher.publish(topic, payload).await?;
                loop {
                    if verdict_changes(&ingests) > before {
                        latencies.push(t.elapsed());
                        break;
                    }
                    if t.elapsed() > Duration::from_secs(10) {
                        lost += 1;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                flips_stored.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok((latencies, lost))
        })
    };

    let window = window * nodes as u64;
    let cpu_start = cpu_jiffies();
    let self_start = self_jiffies();
    let started = Instant::now();
    let handled = |ingests: &[Ingest]| {
        total(ingests, |m| &m.messages_stored) + total(ingests, |m| &m.messages_duplicate)
    };
    for (m, (topic, payload)) in (0..).zip(load) {
        // Published: the warm-up, then `m` of the load.
        let published = GATEWAYS + 1 + m;
        while published.saturating_sub(handled(&ingests) + flips_stored.load(Ordering::Relaxed))
            >= window
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        publisher.publish(topic, payload).await?;
    }
    let want = messages * PER_MESSAGE;
    loop {
        let stored = total(&ingests, |m| &m.readings_stored)
            - warm_readings
            - 2 * flips_stored.load(Ordering::Relaxed);
        if stored >= want {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("{stored} of {want} readings stored after an hour");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let (cpu_busy, cpu_self) = match (cpu_start, cpu_jiffies(), self_start, self_jiffies()) {
        (Some((busy0, all0)), Some((busy1, all1)), Some(self0), Some(self1)) if all1 > all0 => (
            (busy1 - busy0) as f64 / (all1 - all0) as f64,
            (self1 - self0) as f64 / (all1 - all0) as f64,
        ),
        _ => (f64::NAN, f64::NAN),
    };
    loading.store(false, Ordering::Relaxed);
    let (flip_latency, flips_lost) = flipper.await??;

    let mut node_latency = Vec::new();
    for (ingest, skip) in ingests.iter().zip(warm_samples) {
        node_latency.extend(
            ingest
                .app
                .metrics
                .verdict_latency
                .recent()
                .into_iter()
                .skip(skip),
        );
    }
    let run = Run {
        nodes,
        parallel,
        readings: want,
        elapsed,
        per_node: ingests
            .iter()
            .map(|i| i.app.metrics.messages_stored.load(Ordering::Relaxed))
            .collect(),
        conflicts: total(&ingests, |m| &m.store_conflicts),
        store_errors: total(&ingests, |m| &m.store_errors),
        node_latency,
        flip_latency,
        flips_lost,
        cpu_busy,
        cpu_self,
    };
    drop(publisher);
    shutdown.cancel();
    let ingests = Arc::try_unwrap(ingests)
        .map_err(|_| anyhow::anyhow!("the flipper still holds the nodes"))?;
    for ingest in ingests {
        ingest.join().await;
    }
    // Leave no session behind at the broker: it would queue every later
    // message of these topics for nobody.
    for id in client_ids {
        for consumer in riser_ingest::consume::Consumer::ALL {
            forget_session(port, &consumer.client_id(&id)).await?;
        }
    }
    Ok(run)
}

/// Busy and total CPU time of the machine so far (jiffies, `/proc/stat`).
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let idle = fields.get(3)? + fields.get(4)?;
    let all: u64 = fields.iter().take(8).sum();
    Some((all - idle, all))
}

/// CPU time of this process so far (jiffies, `/proc/self/stat`).
fn self_jiffies() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Ends the persistent session of `client_id` at the broker: connects with
/// a clean session and disconnects.
async fn forget_session(port: u16, client_id: &str) -> anyhow::Result<()> {
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_clean_session(true);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    let forget = async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    client.disconnect().await?;
                }
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return Ok(()),
                Ok(_) => {}
                Err(error) => return Err(anyhow::Error::from(error)),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), forget)
        .await
        .with_context(|| format!("ending the session of {client_id}"))?
}

/// Empties the benchmark's PostgreSQL database.
pub(crate) async fn reset_postgres(url: &str) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("PostgreSQL database {url}"))?;
    conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .await?;
    conn.close().await?;
    Ok(())
}
