//! The MQTT consumers: two connections, so an alarm never waits behind a
//! broker queue full of telemetry backlog. One takes events and status, the
//! other telemetry; each subscribes at QoS 1 with its own persistent session
//! and manual acknowledgements. A message is acknowledged only after it is
//! committed to the store (or refused as invalid), so a crash loses nothing.
//! A commit that fails (database away, a lock conflict with another node)
//! is retried, with growing pauses, until it succeeds or the node stops;
//! unacknowledged, its messages then come back from the broker when the
//! session reconnects.
//!
//! Scale-out: with `mqtt.shared_group` every node subscribes
//! `$share/{group}/riser/v1/+/{stream}`, so the broker hands each message
//! to one node; the store drops the duplicates a crash can cause.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use riser_contract::{ContractError, Message, Stream};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{Backend, Outcome, StoreError};
use crate::{App, judge};

/// Broker address and client identity.
#[derive(Clone)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    /// The configured client id; each consumer derives its own from it.
    pub client_id: String,
    /// The MQTT shared-subscription group this node consumes in, if any.
    pub shared_group: Option<String>,
    /// Telemetry batches stored at once on PostgreSQL (`mqtt.parallel_batches`).
    pub parallel_batches: usize,
    pub credentials: Option<(String, String)>,
}

/// One of the two consumer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// Events and status: few, small and urgent.
    Events,
    /// Telemetry, which after an outage is a backlog of hours.
    Telemetry,
}

impl Consumer {
    pub const ALL: [Consumer; 2] = [Consumer::Events, Consumer::Telemetry];

    pub const fn name(self) -> &'static str {
        match self {
            Consumer::Events => "events",
            Consumer::Telemetry => "telemetry",
        }
    }

    /// The streams it subscribes to.
    pub const fn streams(self) -> &'static [Stream] {
        match self {
            Consumer::Events => &[Stream::Status, Stream::Events],
            Consumer::Telemetry => &[Stream::Telemetry],
        }
    }

    /// Its MQTT client id, which names its persistent session at the broker.
    /// The telemetry consumer keeps the configured id, so it inherits the
    /// session of a node from before the split (and drains what is queued
    /// there); the events consumer appends `-events`.
    pub fn client_id(self, configured: &str) -> String {
        match self {
            Consumer::Events => format!("{configured}-events"),
            Consumer::Telemetry => configured.to_owned(),
        }
    }

    /// Every filter it subscribes to, in the shared group if there is one.
    pub fn filters(self, shared_group: Option<&str>) -> Vec<String> {
        self.streams()
            .iter()
            .map(|s| filter(*s, shared_group))
            .collect()
    }

    /// Filters a session of its client id may hold from an earlier
    /// configuration and must drop: the other consumer's streams; with a
    /// shared group, also the plain filters of its own (they would deliver
    /// every message to this node besides its share).
    pub fn stale_filters(self, shared_group: Option<&str>) -> Vec<String> {
        let others = [Stream::Status, Stream::Events, Stream::Telemetry]
            .into_iter()
            .filter(|s| !self.streams().contains(s));
        let mut stale: Vec<String> = others.clone().map(riser_contract::filter).collect();
        if let Some(group) = shared_group {
            stale.extend(others.map(|s| filter(s, Some(group))));
            stale.extend(self.streams().iter().map(|s| riser_contract::filter(*s)));
        }
        stale
    }

    fn connected(self, metrics: &Metrics) -> &AtomicBool {
        match self {
            Consumer::Events => &metrics.mqtt_events_connected,
            Consumer::Telemetry => &metrics.mqtt_telemetry_connected,
        }
    }
}

/// The subscription filter of one stream of every gateway: shared in
/// `shared_group` (`$share/{group}/riser/v1/+/{stream}`) or plain.
pub fn filter(stream: Stream, shared_group: Option<&str>) -> String {
    match shared_group {
        Some(group) => format!("$share/{group}/{}", riser_contract::filter(stream)),
        None => riser_contract::filter(stream),
    }
}

/// Runs both consumers until `shutdown`.
pub async fn run(app: Arc<App>, connection: Connection, shutdown: CancellationToken) {
    if let Some(group) = &connection.shared_group
        && connection.client_id == crate::config::DEFAULT_CLIENT_ID
    {
        tracing::warn!(
            shared_group = %group,
            client_id = %connection.client_id,
            "shared group with the default client id: give every node its own `mqtt.client_id`, or nodes take each other's session"
        );
    }
    let tasks: Vec<_> = Consumer::ALL
        .into_iter()
        .map(|consumer| {
            tokio::spawn(run_consumer(
                app.clone(),
                consumer,
                connection.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    for task in tasks {
        if let Err(error) = task.await {
            tracing::error!(error = %error, "MQTT consumer task failed");
        }
    }
}

/// Runs one consumer until `shutdown`: one task drives its connection, this
/// one stores.
pub async fn run_consumer(
    app: Arc<App>,
    consumer: Consumer,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let client_id = consumer.client_id(&connection.client_id);
    let mut options = MqttOptions::new(&client_id, &connection.host, connection.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        // A gateway sends up to 256 KiB per message (its default limit).
        .set_max_packet_size(1024 * 1024, 64 * 1024)
        .set_inflight(100);
    if let Some((user, pass)) = &connection.credentials {
        options.set_credentials(user, pass);
    }
    let (client, eventloop) = AsyncClient::new(options, 256);
    // Unbounded, so the driver never stops polling the connection while
    // this task waits to hand it an acknowledgement: a bounded channel here
    // and the client's bounded request queue deadlock under load. What waits
    // in it is bounded by the broker's in-flight window for this client
    // (messages are acknowledged only after their commit).
    // Each publish with the moment it arrived (for the verdict latency).
    let (tx, mut rx) = mpsc::unbounded_channel::<(Publish, Instant)>();

    // Telemetry on PostgreSQL is stored by `parallel_batches` transactions
    // at once (row locks order them, as between two nodes); alarms, and
    // anything on SQLite (one writer), one batch at a time, in order.
    let parallel = match (consumer, app.store.backend()) {
        (Consumer::Telemetry, Backend::Postgres) => connection.parallel_batches,
        _ => 1,
    };
    // The driver outlives `shutdown` a little, to send the last
    // acknowledgements and a clean DISCONNECT.
    let stop_driver = CancellationToken::new();
    let mut driver = tokio::spawn(drive(
        app.clone(),
        consumer,
        client.clone(),
        eventloop,
        tx,
        connection,
        stop_driver.clone(),
    ));

    let mut storing = tokio::task::JoinSet::new();
    loop {
        if storing.len() >= parallel {
            stored(storing.join_next().await);
            continue;
        }
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            done = storing.join_next(), if !storing.is_empty() => {
                stored(done);
                continue;
            }
            publish = rx.recv() => match publish { Some(p) => p, None => break },
        };
        // Whatever else has arrived meanwhile goes in the same commit.
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut received = Vec::with_capacity(MAX_BATCH);
        let mut next = Some(first);
        while let Some((publish, at)) = next {
            batch.push(publish);
            received.push(at);
            next = if batch.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        storing.spawn(store_and_ack(
            app.clone(),
            consumer,
            client.clone(),
            batch,
            received,
            shutdown.clone(),
        ));
    }
    // Batches being stored finish (or, failing, give up at shutdown).
    while let Some(done) = storing.join_next().await {
        stored(Some(done));
    }
    // The acknowledgements queued so far go out before the DISCONNECT; what
    // arrives meanwhile stays unacknowledged and comes back later. A broker
    // that is away gets 2 s.
    if client.try_disconnect().is_err()
        || tokio::time::timeout(Duration::from_secs(2), &mut driver)
            .await
            .is_err()
    {
        stop_driver.cancel();
        let _ = driver.await;
    }
    drop(rx);
    consumer
        .connected(&app.metrics)
        .store(false, Ordering::Relaxed);
}

/// Stores a batch and acknowledges what may be. What could not be stored
/// is tried again (new messages wait at the broker meanwhile); at shutdown
/// it stays unacknowledged, and the broker delivers it again when this
/// session reconnects.
async fn store_and_ack(
    app: Arc<App>,
    consumer: Consumer,
    client: AsyncClient,
    mut batch: Vec<Publish>,
    mut received: Vec<Instant>,
    shutdown: CancellationToken,
) {
    let mut attempt = 0;
    loop {
        let acks = handle_batch(&app, &batch, &received).await;
        let mut kept = acks.iter().map(|ack| !ack);
        received.retain(|_| kept.next().unwrap_or(false));
        let mut failed = Vec::new();
        for (publish, ack) in batch.drain(..).zip(acks) {
            if !ack {
                failed.push(publish);
            } else if let Err(error) = client.ack(&publish).await {
                tracing::warn!(consumer = consumer.name(), error = %error, "cannot acknowledge; the broker will deliver again");
            }
        }
        batch = failed;
        if batch.is_empty() {
            return;
        }
        attempt += 1;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(retry_delay(attempt)) => {}
        }
    }
}

/// Logs a storing task that panicked (its messages stay unacknowledged
/// and come back when the session reconnects).
fn stored(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(error)) = done {
        tracing::error!(error = %error, "storing a batch failed");
    }
}

/// The pause before the `attempt`th retry of a commit: 100 ms, doubling,
/// at most 5 s.
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(100 << attempt.saturating_sub(1).min(6)).min(Duration::from_secs(5))
}

/// Drives one connection: on every CONNACK subscribes to its streams (and
/// drops the filters a session from an earlier configuration may hold,
/// see [`Consumer::stale_filters`]), forwards publishes stamped with their
/// arrival, reconnects (every second) after a loss. Logs a loss once, not
/// every retry.
async fn drive(
    app: Arc<App>,
    consumer: Consumer,
    client: AsyncClient,
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<(Publish, Instant)>,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let broker = format!("{}:{}", connection.host, connection.port);
    let shared_group = connection.shared_group;
    let connected = consumer.connected(&app.metrics);
    let name = consumer.name();
    let mut failures = 0u32;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                tracing::info!(broker = %broker, consumer = name, shared_group = shared_group.as_deref(), "ingest connected to broker");
                let group = shared_group.as_deref();
                let filters = consumer
                    .filters(group)
                    .into_iter()
                    .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(filters) {
                    tracing::error!(consumer = name, error = %e, "cannot subscribe");
                }
                for filter in consumer.stale_filters(group) {
                    if let Err(e) = client.try_unsubscribe(filter) {
                        tracing::warn!(consumer = name, error = %e, "cannot unsubscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReasonCode::Success(_)))
                {
                    connected.store(true, Ordering::Relaxed);
                } else {
                    tracing::error!(consumer = name, codes = ?ack.return_codes, "broker refused a subscription");
                }
            }
            // Sent after the last acknowledgements, when stopping.
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if tx.send((publish, Instant::now())).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => {
                connected.store(false, Ordering::Relaxed);
                if failures == 0 {
                    tracing::warn!(broker = %broker, consumer = name, error = %error, "broker connection lost; reconnecting");
                } else {
                    tracing::debug!(broker = %broker, consumer = name, error = %error, attempt = failures, "broker still unreachable");
                }
                failures += 1;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

fn reject_reason(error: &ContractError) -> &'static str {
    match error {
        ContractError::Topic(_) | ContractError::GatewayId(_) => "topic",
        ContractError::Json { .. } => "json",
        ContractError::Version(_) => "version",
        ContractError::GatewayMismatch { .. } => "gateway_mismatch",
        ContractError::ZeroSequence | ContractError::NonFinite(_) | ContractError::Empty => {
            "invalid"
        }
        ContractError::Inflate(_) | ContractError::TooLarge => "compression",
    }
}

/// Most messages stored in one transaction.
pub const MAX_BATCH: usize = 128;

/// Stores one message; `true` when it may be acknowledged (stored, duplicate
/// or refused as invalid), `false` when the store failed and the broker
/// should deliver it again.
pub async fn handle(app: &App, publish: &Publish) -> bool {
    handle_batch(app, std::slice::from_ref(publish), &[]).await[0]
}

/// Stores messages in one transaction and judges each gateway they came
/// from once; per message whether it may be acknowledged (as [`handle`]).
/// `received` holds when each arrived (or nothing): if the judging changes
/// a verdict, the time from the oldest stored message of the gateways
/// whose buildings changed to the commit of the change goes to the verdict
/// latency histogram (one sample per batch).
pub async fn handle_batch(app: &App, publishes: &[Publish], received: &[Instant]) -> Vec<bool> {
    let mut ack = vec![true; publishes.len()];
    let mut valid = Vec::with_capacity(publishes.len());
    let mut at = Vec::with_capacity(publishes.len());
    for (i, publish) in publishes.iter().enumerate() {
        match riser_contract::decode(&publish.topic, &publish.payload) {
            Ok(mut m) => {
                crate::validate::drop_implausible(app, &publish.topic, &mut m);
                valid.push(m);
                at.push(i);
            }
            Err(error) => {
                app.metrics.reject(reject_reason(&error));
                tracing::warn!(topic = %publish.topic, error = %error, bytes = publish.payload.len(), "message refused");
            }
        }
    }
    if valid.is_empty() {
        return ack;
    }
    let now = OffsetDateTime::now_utc();
    let outcomes = match app.store.ingest_batch(&valid, now).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            app.metrics
                .store_errors
                .fetch_add(valid.len() as u64, Ordering::Relaxed);
            if is_conflict(&error) {
                app.metrics.store_conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(messages = valid.len(), error = %error, "store lost a lock conflict with another writer; retrying");
            } else {
                tracing::error!(messages = valid.len(), error = %error, "cannot store messages; not acknowledged, retrying");
            }
            for i in at {
                ack[i] = false;
            }
            return ack;
        }
    };
    let mut judged: Vec<&str> = Vec::new();
    // Stored messages by gateway, with their arrival when known.
    let mut arrived: Vec<(&str, Instant)> = Vec::new();
    for ((message, outcome), i) in valid.iter().zip(outcomes).zip(&at) {
        if outcome == Outcome::Duplicate {
            app.metrics
                .messages_duplicate
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        app.metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = received.get(*i) {
            arrived.push((message.gateway(), *at));
        }
        let replay = match message {
            Message::Telemetry(t) => {
                app.metrics
                    .readings_stored
                    .fetch_add(t.readings.len() as u64, Ordering::Relaxed);
                // Stored already: a failure here costs InfluxDB this
                // message, not the database; it is logged and counted.
                if let Some(sink) = &app.influx
                    && let Err(error) = sink.enqueue_telemetry(t).await
                {
                    app.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(gateway_id = %t.gateway, seq = t.seq, error = %error, "cannot queue telemetry for InfluxDB");
                }
                t.replay
            }
            Message::Events(e) => e.replay,
            Message::Status(_) => false,
        };
        if replay {
            app.metrics
                .messages_replayed
                .fetch_add(1, Ordering::Relaxed);
        }
        if !judged.contains(&message.gateway()) {
            judged.push(message.gateway());
        }
    }
    if !judged.is_empty() {
        // A judging that loses a lock conflict is tried again at once; the
        // periodic judge is the backstop.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match judge(app, Some(&judged), now).await {
                Ok(changed) => {
                    // The message that waited longest for the change: the
                    // oldest of the gateways whose buildings changed.
                    let oldest = arrived
                        .iter()
                        .filter(|(gw, _)| changed.iter().any(|b| b.gateway == *gw))
                        .map(|(_, at)| *at)
                        .min();
                    if let Some(oldest) = oldest {
                        app.metrics.verdict_latency.observe(oldest.elapsed());
                    }
                }
                Err(error) if is_conflict(&error) && attempts < 3 => {
                    app.metrics.store_conflicts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(gateways = ?judged, error = %error, "judging lost a lock conflict with another writer; retrying");
                    continue;
                }
                Err(error) => {
                    tracing::error!(gateways = ?judged, error = %error, "cannot judge buildings");
                }
            }
            break;
        }
    }
    ack
}

/// A transaction that lost a lock conflict with another writer and may
/// simply be tried again: PostgreSQL's `deadlock_detected` (40P01) or
/// `serialization_failure` (40001).
fn is_conflict(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(sqlx::Error::Database(e))
        if matches!(e.code().as_deref(), Some("40P01" | "40001")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use riser_contract::{Quality, Reading, Telemetry};

    fn publish(topic: &str, payload: Vec<u8>) -> Publish {
        Publish::new(topic, QoS::AtLeastOnce, payload)
    }

    fn telemetry(gateway: &str, seq: u64) -> Vec<u8> {
        riser_contract::encode(&Telemetry::new(
            gateway,
            seq,
            vec![Reading {
                point: "tank.level".into(),
                ts: OffsetDateTime::now_utc(),
                value: Some(2.3),
                unit: Some("m".into()),
                quality: Quality::Good,
                exception: None,
                clock: None,
            }],
        ))
    }

    #[tokio::test]
    async fn bad_messages_are_counted_acknowledged_and_change_nothing() {
        let (_dir, app) = crate::test_app().await;
        let bad = [
            publish("riser/v1/gw-B2/telemetry", b"{not json".to_vec()),
            publish("riser/v1/gw-B2/telemetry", telemetry("gw-B1", 1)),
            publish("riser/v1/gw#/telemetry", telemetry("gw-B2", 1)),
        ];
        for p in &bad {
            assert!(
                handle(&app, p).await,
                "a bad message is acknowledged so it is not redelivered forever"
            );
        }
        assert_eq!(app.metrics.rejected("json"), 1);
        assert_eq!(app.metrics.rejected("gateway_mismatch"), 1);
        assert_eq!(app.metrics.rejected("topic"), 1);
        assert!(
            app.store
                .received_seqs("gw-B2", Stream::Telemetry)
                .await
                .unwrap()
                .is_empty()
        );

        // The next good message is stored as usual.
        assert!(
            handle(
                &app,
                &publish("riser/v1/gw-B2/telemetry", telemetry("gw-B2", 1))
            )
            .await
        );
        assert_eq!(
            app.store
                .received_seqs("gw-B2", Stream::Telemetry)
                .await
                .unwrap(),
            vec![1]
        );
    }

    #[test]
    fn a_shared_group_subscribes_shared_filters_and_drops_the_plain_ones() {
        assert_eq!(
            Consumer::Telemetry.filters(Some("riser")),
            ["$share/riser/riser/v1/+/telemetry"]
        );
        assert_eq!(
            Consumer::Events.filters(None),
            ["riser/v1/+/status", "riser/v1/+/events"]
        );
        assert_eq!(
            Consumer::Telemetry.stale_filters(None),
            ["riser/v1/+/status", "riser/v1/+/events"]
        );
        assert_eq!(
            Consumer::Events.stale_filters(Some("riser")),
            [
                "riser/v1/+/telemetry",
                "$share/riser/riser/v1/+/telemetry",
                "riser/v1/+/status",
                "riser/v1/+/events"
            ]
        );
    }

    #[test]
    fn a_failed_commit_is_retried_sooner_first_then_every_five_seconds() {
        let ms = |a| retry_delay(a).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(6), ms(7), ms(40)],
            [100, 200, 400, 3200, 5000, 5000]
        );
    }

    #[test]
    fn events_and_telemetry_are_consumed_on_two_sessions() {
        assert_eq!(Consumer::Events.streams(), [Stream::Status, Stream::Events]);
        assert_eq!(Consumer::Telemetry.streams(), [Stream::Telemetry]);
        assert_eq!(
            Consumer::Events.client_id("riser-ingest"),
            "riser-ingest-events"
        );
        assert_eq!(
            Consumer::Telemetry.client_id("riser-ingest"),
            "riser-ingest",
            "the session from before the split is drained, not abandoned"
        );
    }

    /// Polls `check` until it holds; gives up after 20 s.
    async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_alarm_is_stored_while_a_telemetry_backlog_waits_at_the_broker() {
        let (_dir, app) = crate::test_app().await;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        crate::broker::start(addr).await.unwrap();
        let connection = Connection {
            host: addr.ip().to_string(),
            port: addr.port(),
            client_id: "ingest-under-test".into(),
            shared_group: None,
            parallel_batches: 2,
            credentials: None,
        };
        let start = |consumer| {
            let stop = CancellationToken::new();
            let task = tokio::spawn(run_consumer(
                app.clone(),
                consumer,
                connection.clone(),
                stop.clone(),
            ));
            (stop, task)
        };
        let (events_stop, events) = start(Consumer::Events);
        let (telemetry_stop, telemetry_task) = start(Consumer::Telemetry);
        eventually("both consumers to subscribe", async || {
            app.metrics.mqtt_connected()
        })
        .await;
        // The telemetry consumer is away (its session stays at the broker)...
        telemetry_stop.cancel();
        telemetry_task.await.unwrap();

        // ...while a gateway sends its backlog, then an alarm.
        let (gateway, mut eventloop) = AsyncClient::new(
            MqttOptions::new("gw-B2", addr.ip().to_string(), addr.port()),
            1024,
        );
        let publisher = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        const BACKLOG: u64 = 300;
        for seq in 1..=BACKLOG {
            gateway
                .publish(
                    "riser/v1/gw-B2/telemetry",
                    QoS::AtLeastOnce,
                    false,
                    telemetry("gw-B2", seq),
                )
                .await
                .unwrap();
        }
        let alarm = riser_contract::Events {
            v: riser_contract::VERSION,
            gateway: "gw-B2".into(),
            epoch: 0,
            seq: 1,
            replay: false,
            events: vec![riser_contract::Event {
                kind: riser_contract::EventKind::StateChanged,
                point: "pumps.fire_fault".into(),
                ts: OffsetDateTime::now_utc(),
                value: Some(1.0),
                quality: Quality::Good,
                clock: None,
            }],
        };
        gateway
            .publish(
                "riser/v1/gw-B2/events",
                QoS::AtLeastOnce,
                false,
                riser_contract::encode(&alarm),
            )
            .await
            .unwrap();

        let received = async |stream| app.store.received_seqs("gw-B2", stream).await.unwrap();
        eventually("the alarm to be stored", async || {
            received(Stream::Events).await == [1]
        })
        .await;
        assert!(
            received(Stream::Telemetry).await.is_empty(),
            "the events consumer takes no telemetry"
        );

        // Back, the telemetry consumer takes the backlog from its session.
        let (telemetry_stop, telemetry_task) = start(Consumer::Telemetry);
        eventually("the backlog to be stored", async || {
            received(Stream::Telemetry).await.len() as u64 == BACKLOG
        })
        .await;
        assert_eq!(received(Stream::Events).await, [1], "nothing twice");

        telemetry_stop.cancel();
        events_stop.cancel();
        telemetry_task.await.unwrap();
        events.await.unwrap();
        publisher.abort();
    }

    #[tokio::test]
    async fn a_redelivered_message_is_stored_once() {
        let (_dir, app) = crate::test_app().await;
        let p = publish("riser/v1/gw-B2/telemetry", telemetry("gw-B2", 7));
        assert!(handle(&app, &p).await);
        assert!(handle(&app, &p).await);
        assert_eq!(app.metrics.messages_stored.load(Ordering::Relaxed), 1);
        assert_eq!(app.metrics.messages_duplicate.load(Ordering::Relaxed), 1);
        assert_eq!(
            app.store
                .history("gw-B2", "tank.level")
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
