//! Modbus TCP: garbage on the connection is a transport error, and the next
//! poll reconnects and reads again.

use riser_contract::Quality;
use riser_gateway::config::MqttConfig;
use riser_gateway::modbus::LinePoller;
use riser_sim::{BuildingSpec, CommFault, Sim, SimOptions, site};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn garbage_on_a_tcp_connection_is_counted_and_the_next_poll_reconnects() {
    let shutdown = CancellationToken::new();
    let sim = Sim::start(
        vec![BuildingSpec::example("T-1")],
        SimOptions::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let config = site::gateway_config(
        &BuildingSpec::example("T-1"),
        sim.buildings[0].modbus_addr,
        MqttConfig::default(),
        "unused".into(),
        1000,
    );
    let mut line = LinePoller::new(config.lines[0].clone(), config.devices);
    assert!(line.poll().await.iter().all(|r| r.quality == Quality::Good));

    sim.inject_comm("T-1", Some(1), CommFault::Garbage).unwrap();
    let readings = line.poll().await;
    assert_eq!(
        readings
            .iter()
            .find(|r| r.point == "tank.level")
            .unwrap()
            .quality,
        Quality::Unreachable
    );
    assert!(line.stats().transport_errors >= 1, "{:?}", line.stats());

    sim.clear_comm("T-1").unwrap();
    let readings = line.poll().await;
    assert!(
        readings.iter().all(|r| r.quality == Quality::Good),
        "{readings:?}"
    );
    shutdown.cancel();
    sim.join().await;
}
