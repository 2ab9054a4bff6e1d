//! The gateway's uplink against a real Mosquitto: a message the broker can
//! never take is set aside instead of blocking everything behind it.

use std::time::Duration;

use riser_contract::{Event, EventKind, Quality};
use riser_e2e::{Mosquitto, eventually};
use riser_gateway::config::MqttConfig;
use riser_gateway::metrics::Metrics;
use riser_gateway::{Outbox, OutboxOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_oversized_message_is_set_aside_and_the_queue_behind_it_still_flows() {
    let broker = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db"), OutboxOptions::new("gw-1"))
        .await
        .unwrap();
    let event = |point: String| Event {
        kind: EventKind::StateChanged,
        point,
        ts: time::OffsetDateTime::now_utc(),
        value: Some(1.0),
        quality: Quality::Good,
        clock: None,
    };
    outbox
        .append_events(vec![event("x".repeat(8192))])
        .await
        .unwrap();
    outbox
        .append_events(vec![event("panel.fire_alarm".into())])
        .await
        .unwrap();

    let config = MqttConfig {
        port: broker.port,
        max_packet_bytes: 4096,
        ..MqttConfig::default()
    };
    let shutdown = CancellationToken::new();
    let uplink = tokio::spawn(riser_gateway::uplink::run(
        "gw-1".into(),
        config,
        outbox.clone(),
        Metrics::default(),
        shutdown.clone(),
    ));
    let drained = outbox.clone();
    eventually(
        "the small message to be acknowledged",
        Duration::from_secs(10),
        || {
            let outbox = drained.clone();
            async move { (outbox.depth().await.ok()? == 0).then_some(()) }
        },
    )
    .await;
    assert_eq!(outbox.dead_letters().await.unwrap(), 1);
    shutdown.cancel();
    uplink.await.unwrap();
}
