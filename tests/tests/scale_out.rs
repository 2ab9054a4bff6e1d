//! Two cloud-ingest nodes share one Mosquitto and one PostgreSQL database
//! through an MQTT shared subscription (`mqtt.shared_group`): every message
//! is stored once, both nodes do part of the work, and the buildings'
//! verdicts end as one judge would leave them. Needs PostgreSQL
//! (`scripts/test` starts it; `RISER_TEST_DATABASE_URL` names another).

use std::sync::atomic::Ordering;
use std::time::Duration;

use riser_contract::{Event, EventKind, Events, Quality, Reading, Stream, Telemetry};
use riser_e2e::{Mosquitto, PgDatabase, Publisher, eventually, init_tracing};
use riser_ingest::rules::Code;
use riser_ingest::{Ingest, Registry};
use riser_sim::{BuildingSpec, site};
use sqlx::PgConnection;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const GATEWAYS: usize = 10;
/// Telemetry messages per gateway.
const TELEMETRY: u64 = 50;
/// Event messages per gateway (one every fifth telemetry message).
const EVENTS: u64 = TELEMETRY / 5;
const WAIT: Duration = Duration::from_secs(60);

/// A full tank of [`BuildingSpec::example`] and a low one (it fails 5.2.1).
const FULL: f64 = 2.3;
const LOW: f64 = 1.0;

fn specs() -> Vec<BuildingSpec> {
    (0..GATEWAYS)
        .map(|g| BuildingSpec::example(&format!("SO-{g:02}")))
        .collect()
}

fn gateway(g: usize) -> String {
    site::gateway_id(&specs()[g])
}

/// Gateway `g`'s tank level in its telemetry message `seq`: full and low
/// by turns, ending full for even gateways and low for odd ones.
fn level(g: usize, seq: u64) -> f64 {
    if (seq as usize + g).is_multiple_of(2) {
        FULL
    } else {
        LOW
    }
}

/// Gateway `g`'s pump fault in its event message `seq`.
fn fault(g: usize, seq: u64) -> f64 {
    f64::from(u8::from((seq as usize + g).is_multiple_of(3)))
}

/// The messages of gateway `g` with telemetry sequence numbers in `seqs`
/// (and the event messages due with them), as (topic, payload), stamped
/// from `t0` on, one second apart.
fn messages(
    g: usize,
    seqs: std::ops::RangeInclusive<u64>,
    t0: OffsetDateTime,
) -> Vec<(String, Vec<u8>)> {
    let gw = gateway(g);
    let mut out = Vec::new();
    for seq in seqs {
        let ts = t0 + time::Duration::seconds(seq as i64);
        let reading = |point: &str, value| Reading::good(point, ts, value);
        let telemetry = Telemetry::new(
            &gw,
            seq,
            vec![
                reading("tank.level", level(g, seq)),
                reading("riser.pressure", 0.08),
            ],
        );
        out.push((
            riser_contract::topic(&gw, Stream::Telemetry),
            riser_contract::encode(&telemetry),
        ));
        if seq.is_multiple_of(5) {
            let events = Events {
                v: riser_contract::VERSION,
                gateway: gw.clone(),
                epoch: 0,
                seq: seq / 5,
                replay: false,
                events: vec![Event {
                    kind: EventKind::StateChanged,
                    point: "pumps.fire_fault".into(),
                    ts,
                    value: Some(fault(g, seq / 5)),
                    quality: Quality::Good,
                    clock: None,
                }],
            };
            out.push((
                riser_contract::topic(&gw, Stream::Events),
                riser_contract::encode(&events),
            ));
        }
    }
    out
}

/// Every gateway's messages with telemetry numbers in `seqs`, gateways
/// taking turns, as gateways publishing side by side would.
fn all_messages(seqs: std::ops::RangeInclusive<u64>, t0: OffsetDateTime) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for seq in seqs {
        for g in 0..GATEWAYS {
            out.extend(messages(g, seq..=seq, t0));
        }
    }
    out
}

/// One cloud-ingest node in the shared group.
struct Node {
    ingest: Ingest,
    shutdown: CancellationToken,
}

impl Node {
    /// Starts node `n` (client id `riser-ingest-scale-{n}`) and waits until
    /// both its consumers are subscribed.
    async fn start(n: usize, broker: u16, database: &str, dir: &std::path::Path) -> Self {
        let registry = Registry::new(
            specs()
                .iter()
                .map(|s| site::registry_building(s, "梁平区", "梁山街道"))
                .collect(),
        )
        .unwrap();
        let mut config = riser_e2e::ingest_config(
            &dir.join(format!("node-{n}")),
            broker,
            &format!("scale-{n}"),
        );
        config.database_url = Some(database.to_owned());
        config.mqtt.shared_group = Some("riser".into());
        config.rules.tuning = riser_ingest::rules::Tuning::immediate();
        // Only the judging after each commit counts: a periodic judge would
        // mend what those leave inconsistent.
        config.rules.evaluate_every_secs = 3600;
        let shutdown = CancellationToken::new();
        let ingest = Ingest::start(config, registry, shutdown.clone())
            .await
            .unwrap();
        let app = ingest.app.clone();
        eventually(&format!("node {n} to subscribe"), WAIT, || {
            let connected = app.metrics.mqtt_connected();
            async move { connected.then_some(()) }
        })
        .await;
        Self { ingest, shutdown }
    }

    fn stored(&self) -> u64 {
        self.ingest
            .app
            .metrics
            .messages_stored
            .load(Ordering::Relaxed)
    }

    /// Stops it; returns how many messages it stored.
    async fn stop(self) -> u64 {
        self.shutdown.cancel();
        let app = self.ingest.app.clone();
        self.ingest.join().await;
        app.metrics.messages_stored.load(Ordering::Relaxed)
    }
}

async fn count(db: &mut PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// Waits until the database holds `messages` numbered messages.
async fn wait_until_received(db: &PgDatabase, messages: u64) {
    eventually(
        &format!("{messages} messages in the database"),
        WAIT,
        || async move {
            let mut conn = db.connect().await.ok()?;
            let n = count(&mut conn, "SELECT count(*) FROM received").await;
            (n as u64 >= messages).then_some(())
        },
    )
    .await;
}

/// Every message of [`all_messages`] up to `TELEMETRY` stored exactly
/// once; each gateway's latest values are its last message's; the stored
/// verdicts are what a fresh judge computes from them.
async fn assert_stored_once_and_consistent(db: &PgDatabase, judge_with: &Ingest) {
    let mut conn = db.connect().await.unwrap();
    let gateways = GATEWAYS as i64;
    let telemetry = gateways * TELEMETRY as i64;
    let events = gateways * EVENTS as i64;
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM received").await,
        telemetry + events
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM readings").await,
        telemetry * 2,
        "two readings per telemetry message, none twice"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY gateway, epoch, seq, point HAVING count(*) > 1) AS twice"
        )
        .await,
        0
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM events").await,
        events
    );
    let spaces: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT gateway, stream, highest, received FROM sequences ORDER BY 1, 2")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(spaces.len(), GATEWAYS * 2, "{spaces:?}");
    for (gw, stream, highest, received) in &spaces {
        let want = if stream == "telemetry" {
            TELEMETRY
        } else {
            EVENTS
        } as i64;
        assert_eq!((*highest, *received), (want, want), "{gw} {stream}");
    }

    // The newest value wins whichever node committed last.
    let store = &judge_with.app.store;
    for g in 0..GATEWAYS {
        let latest = store.latest(&gateway(g)).await.unwrap();
        let value = |point: &str| {
            latest
                .iter()
                .find(|l| l.point == point)
                .and_then(|l| l.value.value)
        };
        assert_eq!(
            value("tank.level"),
            Some(level(g, TELEMETRY)),
            "gateway {g}"
        );
        assert_eq!(
            value("pumps.fire_fault"),
            Some(fault(g, EVENTS)),
            "gateway {g}"
        );
    }

    // The verdicts the nodes left are what one judge computes now.
    let verdicts = store.verdicts().await.unwrap();
    let changed = riser_ingest::judge(&judge_with.app, None, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        changed.is_empty(),
        "a fresh judge changed {changed:?}; stored: {verdicts:?}"
    );
    for (g, spec) in specs().iter().enumerate() {
        let verdict = &verdicts[&spec.id];
        let tank_low = verdict
            .reasons
            .iter()
            .any(|r| r.code == Code::TankVolumeLow);
        assert_eq!(
            tank_low,
            level(g, TELEMETRY) == LOW,
            "{}: {verdict:?}",
            spec.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_in_a_shared_group_store_every_message_once_and_agree_on_verdicts() {
    init_tracing();
    let db = PgDatabase::create("scale_out")
        .await
        .expect("a PostgreSQL database for this test");
    let mosquitto = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(1, mosquitto.port, &db.url, dir.path()).await;
    let b = Node::start(2, mosquitto.port, &db.url, dir.path()).await;

    let publisher = Publisher::connect(mosquitto.port, "gateways");
    let t0 = OffsetDateTime::now_utc() - time::Duration::seconds(120);
    let sent = all_messages(1..=TELEMETRY, t0);
    for (topic, payload) in sent.clone() {
        publisher.publish(topic, payload).await.unwrap();
    }
    wait_until_received(&db, sent.len() as u64).await;

    let (by_a, by_b) = (a.stored(), b.stored());
    assert!(
        by_a > 0 && by_b > 0,
        "both nodes stored messages: {by_a} and {by_b}"
    );
    assert_eq!(
        by_a + by_b,
        sent.len() as u64,
        "each message stored by one node"
    );
    assert_stored_once_and_consistent(&db, &a.ingest).await;

    a.stop().await;
    b.stop().await;
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_mid_run_loses_nothing_and_its_share_is_stored_once_after_its_restart() {
    init_tracing();
    let db = PgDatabase::create("scale_out")
        .await
        .expect("a PostgreSQL database for this test");
    let mosquitto = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(1, mosquitto.port, &db.url, dir.path()).await;
    let b = Node::start(2, mosquitto.port, &db.url, dir.path()).await;

    let t0 = OffsetDateTime::now_utc() - time::Duration::seconds(120);
    let sent = all_messages(1..=TELEMETRY, t0);
    let total = sent.len() as u64;
    let publisher = std::sync::Arc::new(Publisher::connect(mosquitto.port, "gateways"));
    let publishing = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            for (topic, payload) in sent {
                publisher.publish(topic, payload).await.unwrap();
                // A pace a few gateways might keep, so the stop below falls
                // in the middle of the run.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // Node B stops while the gateways publish...
    eventually("node B to store a first part", WAIT, || {
        let stored = b.stored();
        async move { (stored >= 20).then_some(()) }
    })
    .await;
    let first_b = b.stop().await;
    let a_at_stop = a.stored();
    assert!(
        !publishing.is_finished(),
        "node B stopped before the gateways were done"
    );
    // ...node A goes on with its share.
    eventually("node A to go on storing", WAIT, || {
        let stored = a.stored();
        async move { (stored > a_at_stop + 20).then_some(()) }
    })
    .await;
    publishing.await.unwrap();
    eventually("the broker to acknowledge every message", WAIT, || {
        let acked = publisher.acked();
        async move { (acked == total).then_some(()) }
    })
    .await;

    // Mosquitto kept B's share in B's session: back, B stores it.
    let b = Node::start(2, mosquitto.port, &db.url, dir.path()).await;
    wait_until_received(&db, total).await;
    // (Mosquitto 2.0 shares round robin among sessions, connected or not:
    // A took exactly every other message here, B the rest after its return.)
    assert!(b.stored() > 0, "B's share waited for it at the broker");
    let stored = a.stored() + first_b + b.stored();
    assert_eq!(stored, total, "each message stored by one node, once");
    assert_stored_once_and_consistent(&db, &a.ingest).await;

    a.stop().await;
    b.stop().await;
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_whose_commit_fails_stay_unacknowledged_and_are_stored_once_when_it_succeeds() {
    init_tracing();
    let db = PgDatabase::create("scale_out")
        .await
        .expect("a PostgreSQL database for this test");
    let mosquitto = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(1, mosquitto.port, &db.url, dir.path()).await;
    let b = Node::start(2, mosquitto.port, &db.url, dir.path()).await;

    // Telemetry cannot be committed while its table is away.
    let mut admin = db.connect().await.unwrap();
    sqlx::query("ALTER TABLE readings RENAME TO readings_away")
        .execute(&mut admin)
        .await
        .unwrap();
    let publisher = Publisher::connect(mosquitto.port, "gateways");
    let t0 = OffsetDateTime::now_utc() - time::Duration::seconds(120);
    let sent = all_messages(1..=TELEMETRY, t0);
    for (topic, payload) in sent.clone() {
        publisher.publish(topic, payload).await.unwrap();
    }
    let errors = |node: &Node| node.ingest.app.metrics.store_errors.load(Ordering::Relaxed);
    eventually("both nodes to fail a commit", WAIT, || {
        let failed = errors(&a) > 0 && errors(&b) > 0;
        async move { failed.then_some(()) }
    })
    .await;

    // Back: the retried messages are stored, once.
    sqlx::query("ALTER TABLE readings_away RENAME TO readings")
        .execute(&mut admin)
        .await
        .unwrap();
    wait_until_received(&db, sent.len() as u64).await;
    assert_eq!(a.stored() + b.stored(), sent.len() as u64);
    assert_stored_once_and_consistent(&db, &a.ingest).await;

    drop(admin);
    a.stop().await;
    b.stop().await;
    db.drop_database().await.unwrap();
}
