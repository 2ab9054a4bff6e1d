//! The MQTT consumer: subscribes at QoS 1 with a persistent session and
//! manual acknowledgements; a message is acknowledged only after it is
//! committed to the store (or refused as invalid), so a crash loses nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use riser_contract::{ContractError, Message, Stream};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::Outcome;
use crate::{App, judge};

/// Broker address and client identity.
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
}

/// Runs until `shutdown`: one task drives the connection, this one stores.
pub async fn run(app: Arc<App>, connection: Connection, shutdown: CancellationToken) {
    let mut options = MqttOptions::new(&connection.client_id, &connection.host, connection.port);
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
    let (tx, mut rx) = mpsc::channel::<Publish>(256);

    let driver = tokio::spawn(drive(
        app.clone(),
        client.clone(),
        eventloop,
        tx,
        connection,
        shutdown.clone(),
    ));

    loop {
        let publish = tokio::select! {
            () = shutdown.cancelled() => break,
            publish = rx.recv() => match publish { Some(p) => p, None => break },
        };
        if handle(&app, &publish).await {
            let _ = client.ack(&publish).await;
        }
    }
    let _ = driver.await;
}

/// Drives the connection: subscribes on every CONNACK, forwards publishes,
/// reconnects (every second) after a loss. Logs a loss once, not every retry.
async fn drive(
    app: Arc<App>,
    client: AsyncClient,
    mut eventloop: EventLoop,
    tx: mpsc::Sender<Publish>,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let broker = format!("{}:{}", connection.host, connection.port);
    let mut failures = 0u32;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                app.metrics.mqtt_connected.store(true, Ordering::Relaxed);
                tracing::info!(broker = %broker, "ingest connected to broker");
                for stream in [Stream::Status, Stream::Events, Stream::Telemetry] {
                    let filter = riser_contract::filter(stream);
                    if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::error!(error = %e, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if tx.send(publish).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => {
                app.metrics.mqtt_connected.store(false, Ordering::Relaxed);
                if failures == 0 {
                    tracing::warn!(broker = %broker, error = %error, "broker connection lost; reconnecting");
                } else {
                    tracing::debug!(broker = %broker, error = %error, attempt = failures, "broker still unreachable");
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
    }
}

/// Stores one message; `true` when it may be acknowledged (stored, duplicate
/// or refused as invalid), `false` when the store failed and the broker
/// should deliver it again.
pub async fn handle(app: &App, publish: &Publish) -> bool {
    let message = match riser_contract::decode(&publish.topic, &publish.payload) {
        Ok(m) => m,
        Err(error) => {
            app.metrics.reject(reject_reason(&error));
            tracing::warn!(topic = %publish.topic, error = %error, bytes = publish.payload.len(), "message refused");
            return true;
        }
    };
    let now = OffsetDateTime::now_utc();
    match app.store.ingest(&message, now).await {
        Ok(Outcome::Duplicate) => {
            app.metrics
                .messages_duplicate
                .fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(Outcome::Stored) => {
            app.metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
            if let Message::Telemetry(t) = &message {
                app.metrics
                    .readings_stored
                    .fetch_add(t.readings.len() as u64, Ordering::Relaxed);
            }
            if let Err(error) = judge(app, Some(message.gateway()), now).await {
                tracing::error!(gateway_id = %message.gateway(), error = %error, "cannot judge buildings");
            }
            true
        }
        Err(error) => {
            app.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(gateway_id = %message.gateway(), error = %error, "cannot store message; not acknowledged");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riser_contract::{Quality, Reading, Telemetry, VERSION};

    fn publish(topic: &str, payload: Vec<u8>) -> Publish {
        Publish::new(topic, QoS::AtLeastOnce, payload)
    }

    fn telemetry(gateway: &str, seq: u64) -> Vec<u8> {
        riser_contract::encode(&Telemetry {
            v: VERSION,
            gateway: gateway.into(),
            seq,
            readings: vec![Reading {
                point: "tank.level".into(),
                ts: OffsetDateTime::now_utc(),
                value: Some(2.3),
                unit: Some("m".into()),
                quality: Quality::Good,
                exception: None,
            }],
        })
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
