//! The MQTT consumers: two connections, so an alarm never waits behind a
//! broker queue full of telemetry backlog. One takes events and status, the
//! other telemetry; each subscribes at QoS 1 with its own persistent session
//! and manual acknowledgements. A message is acknowledged only after it is
//! committed to the store (or refused as invalid), so a crash loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use riser_contract::{ContractError, Message, Stream};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::Outcome;
use crate::{App, judge};

/// Broker address and client identity.
#[derive(Clone)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    /// The configured client id; each consumer derives its own from it.
    pub client_id: String,
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

    fn connected(self, metrics: &Metrics) -> &AtomicBool {
        match self {
            Consumer::Events => &metrics.mqtt_events_connected,
            Consumer::Telemetry => &metrics.mqtt_telemetry_connected,
        }
    }
}

/// Runs both consumers until `shutdown`.
pub async fn run(app: Arc<App>, connection: Connection, shutdown: CancellationToken) {
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Publish>();

    let driver = tokio::spawn(drive(
        app.clone(),
        consumer,
        client.clone(),
        eventloop,
        tx,
        format!("{}:{}", connection.host, connection.port),
        shutdown.clone(),
    ));

    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            publish = rx.recv() => match publish { Some(p) => p, None => break },
        };
        // Whatever else has arrived meanwhile goes in the same commit.
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let acks = handle_batch(&app, &batch).await;
        for (publish, ack) in batch.drain(..).zip(acks) {
            if ack && let Err(error) = client.ack(&publish).await {
                tracing::warn!(consumer = consumer.name(), error = %error, "cannot acknowledge; the broker will deliver again");
            }
        }
    }
    // The driver may be waiting to hand over a publish: let it go.
    drop(rx);
    let _ = driver.await;
    consumer
        .connected(&app.metrics)
        .store(false, Ordering::Relaxed);
}

/// Drives one connection: on every CONNACK subscribes to its streams (and
/// drops the others, which a session from before the split may hold),
/// forwards publishes, reconnects (every second) after a loss. Logs a loss
/// once, not every retry.
async fn drive(
    app: Arc<App>,
    consumer: Consumer,
    client: AsyncClient,
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<Publish>,
    broker: String,
    shutdown: CancellationToken,
) {
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
                tracing::info!(broker = %broker, consumer = name, "ingest connected to broker");
                let filters = consumer
                    .streams()
                    .iter()
                    .map(|s| SubscribeFilter::new(riser_contract::filter(*s), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(filters) {
                    tracing::error!(consumer = name, error = %e, "cannot subscribe");
                }
                let others = [Stream::Status, Stream::Events, Stream::Telemetry]
                    .into_iter()
                    .filter(|s| !consumer.streams().contains(s));
                for stream in others {
                    if let Err(e) = client.try_unsubscribe(riser_contract::filter(stream)) {
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
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if tx.send(publish).is_err() {
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
    handle_batch(app, std::slice::from_ref(publish)).await[0]
}

/// Stores messages in one transaction and judges each gateway they came
/// from once; per message whether it may be acknowledged (as [`handle`]).
pub async fn handle_batch(app: &App, publishes: &[Publish]) -> Vec<bool> {
    let mut ack = vec![true; publishes.len()];
    let mut valid = Vec::with_capacity(publishes.len());
    let mut at = Vec::with_capacity(publishes.len());
    for (i, publish) in publishes.iter().enumerate() {
        match riser_contract::decode(&publish.topic, &publish.payload) {
            Ok(m) => {
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
            tracing::error!(messages = valid.len(), error = %error, "cannot store messages; not acknowledged");
            for i in at {
                ack[i] = false;
            }
            return ack;
        }
    };
    let mut judged: Vec<&str> = Vec::new();
    for (message, outcome) in valid.iter().zip(outcomes) {
        if outcome == Outcome::Duplicate {
            app.metrics
                .messages_duplicate
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        app.metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
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
    if !judged.is_empty()
        && let Err(error) = judge(app, Some(&judged), now).await
    {
        tracing::error!(gateways = ?judged, error = %error, "cannot judge buildings");
    }
    ack
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
