//! The gateway's Modbus poller against device-sim over real TCP: the three
//! outcomes of a poll (value, exception, unreachable) stay apart.

use std::net::SocketAddr;

use riser_contract::Quality;
use riser_gateway::config::{DeviceConfig, MqttConfig};
use riser_gateway::modbus::DevicePoller;
use riser_sim::{BuildingSpec, Fault, Sim, SimOptions, site};
use tokio_util::sync::CancellationToken;

fn devices(modbus: SocketAddr) -> Vec<DeviceConfig> {
    let spec = BuildingSpec::example("P-1");
    site::gateway_config(&spec, modbus, MqttConfig::default(), "unused".into(), 1000).devices
}

fn device(devices: &[DeviceConfig], name: &str) -> DeviceConfig {
    devices.iter().find(|d| d.name == name).unwrap().clone()
}

#[tokio::test]
async fn a_poll_reads_scaled_values_and_status_bits() {
    let shutdown = CancellationToken::new();
    let sim = Sim::start(
        vec![BuildingSpec::example("P-1")],
        SimOptions::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let devices = devices(sim.buildings[0].modbus_addr);
    sim.inject("P-1", Fault::PumpFault).unwrap();

    let tank = DevicePoller::new(device(&devices, "tank")).poll().await;
    assert_eq!(tank[0].point, "tank.level");
    assert_eq!(tank[0].quality, Quality::Good);
    assert_eq!(
        tank[0].value,
        Some(2.4),
        "normal level, 3 decimals from register 3"
    );
    assert_eq!(tank[0].unit.as_deref(), Some("m"));

    let pumps = DevicePoller::new(device(&devices, "pumps")).poll().await;
    let value = |name: &str| pumps.iter().find(|r| r.point == name).unwrap().value;
    assert_eq!(value("pumps.fire_fault"), Some(1.0));
    assert_eq!(value("pumps.fire_running"), Some(0.0));
    assert_eq!(value("pumps.fire_auto"), Some(1.0));

    shutdown.cancel();
    sim.join().await;
}

#[tokio::test]
async fn a_refused_request_is_an_exception_not_a_value() {
    let shutdown = CancellationToken::new();
    let sim = Sim::start(
        vec![BuildingSpec::example("P-1")],
        SimOptions::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let mut absent = device(&devices(sim.buildings[0].modbus_addr), "tank");
    absent.unit = 9; // nobody answers for unit 9 behind this serial server
    let readings = DevicePoller::new(absent).poll().await;
    assert_eq!(readings[0].quality, Quality::Exception);
    assert_eq!(
        readings[0].exception,
        Some(0x0B),
        "gateway target device failed to respond"
    );
    assert_eq!(readings[0].value, None);
    shutdown.cancel();
    sim.join().await;
}

#[tokio::test]
async fn a_silent_port_is_unreachable_and_the_next_poll_reconnects() {
    let shutdown = CancellationToken::new();
    let sim = Sim::start(
        vec![BuildingSpec::example("P-1")],
        SimOptions::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let addr = sim.buildings[0].modbus_addr;
    let mut wrong = device(&devices(addr), "tank");
    // A port nobody listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    wrong.address = closed.to_string();
    let mut poller = DevicePoller::new(wrong.clone());
    let readings = poller.poll().await;
    assert_eq!(readings[0].quality, Quality::Unreachable);
    assert_eq!(readings[0].value, None);

    // The same device config pointed back at the server reads again.
    wrong.address = addr.to_string();
    let readings = DevicePoller::new(wrong).poll().await;
    assert_eq!(readings[0].quality, Quality::Good);
    shutdown.cancel();
    sim.join().await;
}
