//! The gateway's uplink against a real Mosquitto: a message the broker can
//! never take is set aside instead of blocking everything behind it.

use std::time::Duration;

use riser_contract::Stream;
use riser_e2e::{Mosquitto, eventually};
use riser_gateway::Outbox;
use riser_gateway::config::MqttConfig;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_oversized_message_is_set_aside_and_the_queue_behind_it_still_flows() {
    let broker = Mosquitto::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
    outbox
        .append(Stream::Telemetry, |_| vec![b'x'; 8192])
        .await
        .unwrap();
    outbox
        .append(Stream::Telemetry, |_| b"{}".to_vec())
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
