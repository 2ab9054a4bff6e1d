//! Wireless sensors over a real Mosquitto: the gateway maps their JSON to
//! points and survives garbage.

use std::sync::atomic::Ordering;
use std::time::Duration;

use riser_contract::Quality;
use riser_e2e::{Mosquitto, eventually};
use riser_gateway::config::{SensorDevice, SensorPoint, SensorsConfig};
use riser_gateway::mqtt_sensors::{self, SensorHub};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "site/nb-0042/up";

fn config(port: u16) -> SensorsConfig {
    SensorsConfig {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        devices: vec![SensorDevice {
            name: "roof_tank_nb".into(),
            topic: TOPIC.into(),
            max_age_secs: 3600,
            points: vec![SensorPoint {
                name: "level".into(),
                pointer: "/data/level_cm".into(),
                unit: Some("m".into()),
                scale: 0.01,
                offset: 0.0,
            }],
        }],
    }
}

/// Publishes with its own connection, driving it until the PUBACK.
async fn publish(port: u16, payload: &[u8]) {
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("nb-0042", "127.0.0.1", port), 8);
    client
        .publish(TOPIC, QoS::AtLeastOnce, true, payload.to_vec())
        .await
        .unwrap();
    loop {
        if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
            eventloop.poll().await.unwrap()
        {
            break;
        }
    }
}

#[tokio::test]
async fn a_wireless_sensor_reading_arrives_as_a_point_and_garbage_is_counted() {
    let broker = Mosquitto::start().await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = SensorHub::default();
    let task = tokio::spawn(mqtt_sensors::run(
        "gw-1".into(),
        config(broker.port),
        hub.clone(),
        shutdown.clone(),
    ));

    publish(broker.port, br#"{"data":{"level_cm":245},"rssi":-87}"#).await;
    let level = eventually("the sensor value", Duration::from_secs(10), || {
        let readings = hub.readings(&config(broker.port), OffsetDateTime::now_utc());
        async move { readings.into_iter().find(|r| r.quality == Quality::Good) }
    })
    .await;
    assert_eq!(
        (level.point.as_str(), level.value),
        ("roof_tank_nb.level", Some(2.45))
    );

    publish(broker.port, b"{\"data\": oops").await;
    eventually("the garbage to be counted", Duration::from_secs(10), || {
        let n = hub.malformed.load(Ordering::Relaxed);
        async move { (n == 1).then_some(()) }
    })
    .await;
    let readings = hub.readings(&config(broker.port), OffsetDateTime::now_utc());
    assert_eq!(readings[0].value, Some(2.45), "the last good value stands");
    assert!(!task.is_finished(), "still subscribed");

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn device_sims_wireless_gauge_reaches_the_gateway_and_its_garbage_is_refused() {
    use riser_sim::wireless::{self, WirelessGauge};
    use riser_sim::{BuildingSpec, CommFault, Sim, SimOptions};

    let broker = Mosquitto::start().await.unwrap();
    let shutdown = CancellationToken::new();
    let sim = Sim::start(
        vec![BuildingSpec::example("W-1")],
        SimOptions::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let topic = "site/W-1/hydrant";
    let config = SensorsConfig {
        devices: vec![SensorDevice {
            name: "hydrant_nb".into(),
            topic: topic.into(),
            max_age_secs: 3600,
            points: vec![SensorPoint {
                name: "pressure".into(),
                pointer: "/data/pressure_kpa".into(),
                unit: Some("MPa".into()),
                scale: 0.001,
                offset: 0.0,
            }],
        }],
        ..config(broker.port)
    };
    let hub = SensorHub::default();
    tokio::spawn(mqtt_sensors::run(
        "gw-W-1".into(),
        config.clone(),
        hub.clone(),
        shutdown.clone(),
    ));
    let gauge = WirelessGauge {
        building_id: "W-1".into(),
        host: "127.0.0.1".into(),
        port: broker.port,
        topic: topic.into(),
        interval: Duration::from_millis(100),
    };
    tokio::spawn(wireless::run(sim.sim(), gauge, shutdown.clone()));

    let expected = (sim.snapshot("W-1").unwrap().pressure_mpa * 1000.0).round() / 1000.0;
    let reading = eventually("the gauge's pressure", Duration::from_secs(10), || {
        let readings = hub.readings(&config, OffsetDateTime::now_utc());
        async move { readings.into_iter().find(|r| r.quality == Quality::Good) }
    })
    .await;
    assert_eq!(reading.value, Some(expected));

    sim.inject_comm("W-1", None, CommFault::Garbage).unwrap();
    eventually("garbage to be refused", Duration::from_secs(10), || {
        let n = hub.malformed.load(Ordering::Relaxed);
        async move { (n >= 1).then_some(()) }
    })
    .await;
    shutdown.cancel();
    sim.join().await;
}
