//! Store-and-forward against a real Mosquitto: a gateway killed with -9
//! loses and duplicates nothing it reported written; an uplink outage is
//! backfilled in full, alarms first, flagged replay; a full outbox keeps
//! every alarm and counts what it thinned; a corrupt outbox is set aside.

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use riser_contract::{Event, EventKind, Message, Quality, Reading, Status};
use riser_e2e::{Link, Mosquitto, eventually, init_tracing};
use riser_gateway::config::MqttConfig;
use riser_gateway::metrics::Metrics;
use riser_gateway::{Config, Gateway, Outbox, OutboxOptions};
use riser_ingest::{Ingest, Registry};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

/// Every message under `riser/v1/{gateway}/`, in the order the broker
/// delivers them.
async fn watch(port: u16, gateway: &str) -> mpsc::UnboundedReceiver<Message> {
    let mut options = MqttOptions::new(format!("watch-{gateway}"), "127.0.0.1", port);
    options
        .set_clean_session(false)
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let filter = format!("riser/v1/{gateway}/#");
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    client.try_subscribe(&filter, QoS::AtLeastOnce).unwrap();
                }
                Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    let message = riser_contract::decode(&p.topic, &p.payload)
                        .unwrap_or_else(|e| panic!("undecodable message on {}: {e}", p.topic));
                    if tx.send(message).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    subscribed.await.unwrap();
    rx
}

fn counter_readings(values: std::ops::Range<u64>) -> Vec<Reading> {
    let ts = OffsetDateTime::now_utc();
    values
        .map(|v| Reading {
            point: "load.counter".into(),
            ts,
            value: Some(v as f64),
            unit: None,
            quality: Quality::Good,
            exception: None,
            clock: None,
        })
        .collect()
}

fn alarm(value: f64) -> Event {
    Event {
        kind: EventKind::StateChanged,
        point: "panel.fire_alarm".into(),
        ts: OffsetDateTime::now_utc(),
        value: Some(value),
        quality: Quality::Good,
        clock: None,
    }
}

fn mqtt(port: u16) -> MqttConfig {
    MqttConfig {
        port,
        batch_delay_ms: 0,
        reconnect_delay_ms: 100,
        reconnect_max_delay_ms: 500,
        keep_alive_secs: 5,
        ..MqttConfig::default()
    }
}

/// Messages of the data streams, each (epoch, stream, seq) once.
#[derive(Default)]
struct Received {
    seen: HashSet<(u32, &'static str, u64)>,
    /// In arrival order, without duplicates.
    messages: Vec<Message>,
    statuses: Vec<Status>,
}

impl Received {
    fn push(&mut self, message: Message) {
        let key = match &message {
            Message::Telemetry(t) => (t.epoch, "telemetry", t.seq),
            Message::Events(e) => (e.epoch, "events", e.seq),
            Message::Status(s) => {
                self.statuses.push(s.clone());
                return;
            }
        };
        if self.seen.insert(key) {
            self.messages.push(message);
        }
    }

    fn counter_values(&self) -> Vec<u64> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Message::Telemetry(t) => Some(t.readings.iter()),
                _ => None,
            })
            .flatten()
            .filter_map(|r| r.value.map(|v| v as u64))
            .collect()
    }

    async fn until(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Message>,
        what: &str,
        done: impl Fn(&Self) -> bool,
    ) {
        let wait = async {
            while !done(self) {
                let message = rx.recv().await.expect("watcher running");
                self.push(message);
            }
        };
        if tokio::time::timeout(WAIT, wait).await.is_err() {
            panic!(
                "timed out waiting for {what}; got {} messages, {} readings",
                self.messages.len(),
                self.counter_values().len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uplink_outage_is_backfilled_in_full_alarms_first_and_flagged_replay() {
    init_tracing();
    let broker = Mosquitto::start().await.unwrap();
    let mut rx = watch(broker.port, "gw-bf").await;
    // The gateway reaches the broker over a link that fails; the cloud
    // side stays connected.
    let link = Link::start(([127, 0, 0, 1], broker.port).into())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db"), OutboxOptions::new("gw-bf"))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let uplink = tokio::spawn(riser_gateway::uplink::run(
        "gw-bf".into(),
        mqtt(link.port),
        outbox.clone(),
        Metrics::default(),
        shutdown.clone(),
    ));
    let mut got = Received::default();

    outbox
        .append_readings(counter_readings(0..100), None)
        .await
        .unwrap();
    got.until(&mut rx, "the first readings", |g| {
        g.counter_values().len() == 100
    })
    .await;
    let before = got.messages.len();

    link.cut();
    // An hour of a 100-point gateway's polls (one a minute) and two alarms
    // in the middle of it, while the broker is away.
    for minute in 0..60u64 {
        let first = 100 + minute * 100;
        outbox
            .append_readings(counter_readings(first..first + 100), None)
            .await
            .unwrap();
        if minute == 20 || minute == 40 {
            outbox
                .append_events(vec![alarm((minute == 20) as u8 as f64)])
                .await
                .unwrap();
        }
    }
    link.restore();

    got.until(&mut rx, "every reading", |g| {
        g.counter_values().len() == 6100
    })
    .await;
    let after: Vec<&Message> = got.messages[before..].iter().collect();
    assert!(
        matches!(after[0], Message::Events(e) if e.replay),
        "the first message after the outage is an alarm, flagged replay: {:?}",
        after[0]
    );
    assert!(
        matches!(after[1], Message::Events(e) if e.replay),
        "both alarms overtake the backlog"
    );
    for message in &after[2..] {
        match message {
            Message::Telemetry(t) => assert!(t.replay, "backlog telemetry {} not flagged", t.seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut values = got.counter_values();
    values.sort_unstable();
    assert_eq!(values, (0..6100).collect::<Vec<_>>(), "every reading once");

    shutdown.cancel();
    uplink.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_keeps_every_alarm_and_counts_what_it_thinned() {
    init_tracing();
    let broker = Mosquitto::start().await.unwrap();
    let mut rx = watch(broker.port, "gw-full").await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(
        &dir.path().join("outbox.db"),
        OutboxOptions {
            max_bytes: 256 * 1024,
            ..OutboxOptions::new("gw-full")
        },
    )
    .await
    .unwrap();

    // Offline: two days of 20 points every 30 s, an alarm every 2 hours.
    let start = OffsetDateTime::now_utc() - time::Duration::days(2);
    let mut written = 0u64;
    let mut alarms = 0u64;
    for cycle in 0..5760i64 {
        let ts = start + time::Duration::seconds(30 * cycle);
        let readings: Vec<Reading> = (0..20)
            .map(|p| Reading {
                point: format!("dev.p{p}"),
                ts,
                value: Some((cycle % 13) as f64),
                unit: None,
                quality: Quality::Good,
                exception: None,
                clock: None,
            })
            .collect();
        written += readings.len() as u64;
        outbox.append_readings(readings, None).await.unwrap();
        if cycle % 240 == 0 {
            let mut event = alarm((cycle / 240 % 2) as f64);
            event.ts = ts;
            outbox.append_events(vec![event]).await.unwrap();
            alarms += 1;
        }
    }
    let (health, _) = outbox.health(0).await.unwrap();
    assert!(health.thinned > 0, "nothing thinned: {health:?}");
    assert!(health.bytes <= health.limit_bytes, "{health:?}");

    // Online: everything left goes out.
    let shutdown = CancellationToken::new();
    let uplink = tokio::spawn(riser_gateway::uplink::run(
        "gw-full".into(),
        mqtt(broker.port),
        outbox.clone(),
        Metrics::default(),
        shutdown.clone(),
    ));
    let left = health.readings;
    let mut got = Received::default();
    got.until(&mut rx, "every alarm and every kept reading", |g| {
        let events = g
            .messages
            .iter()
            .filter(|m| matches!(m, Message::Events(_)))
            .count() as u64;
        events == alarms && g.counter_values().len() as u64 == left
    })
    .await;
    assert_eq!(
        left + health.thinned + health.dropped,
        written,
        "kept + thinned + dropped = written"
    );
    // The retained status reports the counts.
    got.until(&mut rx, "a status with health", |g| {
        g.statuses.iter().any(|s| s.health.is_some())
    })
    .await;
    let reported = got.statuses.iter().find_map(|s| s.health.clone()).unwrap();
    assert_eq!(reported.outbox.thinned, health.thinned);
    assert_eq!(reported.outbox.dropped, health.dropped);

    shutdown.cancel();
    uplink.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_outbox_is_set_aside_and_the_gateway_runs() {
    init_tracing();
    let broker = Mosquitto::start().await.unwrap();
    let mut rx = watch(broker.port, "gw-corrupt").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("outbox.db"), vec![0x5Au8; 64 * 1024]).unwrap();

    let config = Config {
        mqtt: mqtt(broker.port),
        ..Config::new("gw-corrupt", dir.path())
    };
    let shutdown = CancellationToken::new();
    let gateway = Gateway::start(config, shutdown.clone())
        .await
        .expect("starts despite the corrupt outbox");
    let mut got = Received::default();
    got.until(&mut rx, "the gateway online", |g| {
        g.statuses.iter().any(|s| s.online)
    })
    .await;
    gateway
        .outbox
        .append_events(vec![alarm(1.0)])
        .await
        .unwrap();
    got.until(&mut rx, "an alarm through the fresh outbox", |g| {
        g.messages
            .iter()
            .any(|m| matches!(m, Message::Events(e) if e.seq == 1))
    })
    .await;
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("outbox.db.corrupt-"))
        .count();
    assert!(aside >= 1, "the corrupt file is kept for inspection");
    shutdown.cancel();
    gateway.join().await;
}

/// The values the cloud stored for `load.counter`, with how often each.
async fn stored_counts(ingest: &Ingest) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for (_, value) in ingest
        .app
        .store
        .history("gw-kill", "load.counter")
        .await
        .unwrap()
    {
        *counts.entry(value.unwrap() as u64).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_during_sustained_writes_delivers_what_it_wrote_exactly_once() {
    init_tracing();
    let broker = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let ingest_config = riser_e2e::ingest_config(&dir.path().join("ingest"), broker.port, "kill");
    let ingest = Ingest::start(
        ingest_config,
        Registry::new(vec![]).unwrap(),
        shutdown.clone(),
    )
    .await
    .unwrap();

    let writer = env!("CARGO_BIN_EXE_riser-load-writer");
    let data_dir = dir.path().join("gateway");
    let spawn = |start: u64, count: u64| {
        tokio::process::Command::new(writer)
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .args(["--port", &broker.port.to_string()])
            .args(["--gateway", "gw-kill"])
            .args(["--start", &start.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--per-write", "50"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    // Kill it at a different moment each round: after 7, 40, 110, 230 and
    // 300 writes have been reported, sending all the while.
    let mut promised: Vec<u64> = Vec::new();
    for (round, kill_after) in [7u64, 40, 110, 230, 300].into_iter().enumerate() {
        let start = round as u64 * 1_000_000 + 1;
        let mut child = spawn(start, u64::MAX / 2);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last = None;
        for _ in 0..kill_after {
            let line = lines.next_line().await.unwrap().expect("writer running");
            last = line
                .strip_prefix("written ")
                .map(|v| v.parse::<u64>().unwrap());
        }
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        promised.extend(start..=last.unwrap());
    }
    // Restarted once more, writing nothing new: it drains what is on disk.
    let mut child = spawn(1, 0);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line == "drained" {
            break;
        }
    }
    let want = promised.len();
    let counts = eventually("every promised reading in the cloud", WAIT, || {
        let ingest = &ingest;
        let promised = &promised;
        async move {
            let counts = stored_counts(ingest).await;
            promised
                .iter()
                .all(|v| counts.contains_key(v))
                .then_some(counts)
        }
    })
    .await;
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
    assert!(
        counts.len() >= want,
        "{} stored, {want} promised",
        counts.len()
    );
    child.start_kill().unwrap();
    shutdown.cancel();
    ingest.join().await;
}
