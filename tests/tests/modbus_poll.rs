//! The gateway's line scheduler against device-sim over real Modbus TCP:
//! values, exceptions and unreachable devices stay apart, and a dead line
//! is skipped instead of retried every cycle.

use std::net::SocketAddr;

use riser_contract::{Quality, Reading};
use riser_gateway::config::{LineConfig, MqttConfig};
use riser_gateway::modbus::LinePoller;
use riser_sim::{BuildingSpec, Fault, Sim, SimHandle, SimOptions, site};
use tokio_util::sync::CancellationToken;

async fn sim() -> (SimHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let sim = Sim::start(
        vec![BuildingSpec::example("P-1")],
        SimOptions::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    (sim, shutdown)
}

/// The gateway config the demo uses for a simulated building at `modbus`.
fn site_config(modbus: SocketAddr) -> riser_gateway::Config {
    site::gateway_config(
        &BuildingSpec::example("P-1"),
        modbus,
        MqttConfig::default(),
        "unused".into(),
        1000,
    )
}

/// The line and devices the demo's gateway uses for a simulated building.
fn poller(modbus: SocketAddr) -> LinePoller {
    let config = site_config(modbus);
    LinePoller::new(config.lines[0].clone(), config.devices)
}

fn find<'a>(readings: &'a [Reading], point: &str) -> &'a Reading {
    readings
        .iter()
        .find(|r| r.point == point)
        .unwrap_or_else(|| panic!("no {point}"))
}

#[tokio::test]
async fn a_cycle_reads_scaled_values_and_status_bits_in_one_request_per_device() {
    let (sim, shutdown) = sim().await;
    sim.inject("P-1", Fault::PumpFault).unwrap();
    let mut line = poller(sim.buildings[0].modbus_addr);
    let readings = line.poll().await;

    let level = find(&readings, "tank.level");
    assert_eq!(
        (level.value, level.quality),
        (Some(2.4), Quality::Good),
        "3 decimals from register 3"
    );
    assert_eq!(level.unit.as_deref(), Some("m"));
    assert_eq!(find(&readings, "pumps.fire_fault").value, Some(1.0));
    assert_eq!(find(&readings, "pumps.fire_running").value, Some(0.0));
    assert_eq!(find(&readings, "pumps.fire_auto").value, Some(1.0));
    assert_eq!(
        line.stats().last_cycle_requests,
        4,
        "four devices, one coalesced read each"
    );
    assert_eq!(line.requests_per_cycle(), 4);
    shutdown.cancel();
    sim.join().await;
}

#[tokio::test]
async fn a_refused_request_is_an_exception_not_a_value_and_the_others_still_read() {
    let (sim, shutdown) = sim().await;
    let config = site_config(sim.buildings[0].modbus_addr);
    let mut devices = config.devices;
    devices[0].unit = 9; // nobody answers for unit 9 behind this serial server
    let mut line = LinePoller::new(config.lines[0].clone(), devices);
    let readings = line.poll().await;
    let tank = find(&readings, "tank.level");
    assert_eq!(
        (tank.quality, tank.exception, tank.value),
        (Quality::Exception, Some(0x0B), None)
    );
    assert_eq!(find(&readings, "riser.pressure").quality, Quality::Good);
    assert_eq!(line.stats().exceptions, 1);
    shutdown.cancel();
    sim.join().await;
}

#[tokio::test]
async fn a_line_nobody_answers_on_is_unreachable_then_skipped_until_the_back_off_ends() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut line_config = LineConfig::tcp("dead", closed.to_string());
    line_config.fail_cycles = 2;
    let config = site_config(closed);
    let devices: Vec<_> = config
        .devices
        .into_iter()
        .map(|mut d| {
            d.line = "dead".into();
            d
        })
        .collect();
    let mut line = LinePoller::new(line_config, devices);
    for _ in 0..2 {
        let readings = line.poll().await;
        assert!(
            readings
                .iter()
                .all(|r| r.quality == Quality::Unreachable && r.value.is_none())
        );
    }
    let attempts = line.stats().transport_errors;
    let readings = line.poll().await;
    assert!(readings.iter().all(|r| r.quality == Quality::Unreachable));
    assert_eq!(
        line.stats().transport_errors,
        attempts,
        "backing off: nothing was sent"
    );
    assert_eq!(line.stats().skipped, 4);
}

#[tokio::test]
async fn the_installer_check_reads_every_configured_point_once_in_config_order() {
    let (sim, shutdown) = sim().await;
    sim.inject("P-1", Fault::PressureLoss).unwrap();
    // Let the physics apply the fault before reading.
    let snapshot = riser_e2e::eventually(
        "pressure to fall",
        std::time::Duration::from_secs(10),
        || {
            let s = sim.snapshot("P-1");
            async move { s.filter(|s| s.pressure_mpa < 0.05) }
        },
    )
    .await;
    let config = site_config(sim.buildings[0].modbus_addr);
    let rows = riser_gateway::installer::check(&config).await;
    let points: usize = config.devices.iter().map(|d| d.points.len()).sum();
    assert_eq!(rows.len(), points);
    assert_eq!(rows[0].polled.reading.point, "tank.level");
    assert_eq!(
        rows[0].polled.raw,
        Some(2400.0),
        "raw register before the 3 decimals"
    );
    let pressure = &rows[1].polled.reading;
    assert_eq!(
        pressure.value,
        Some((snapshot.pressure_mpa * 1000.0).round() / 1000.0)
    );
    let table = riser_gateway::installer::render(&rows);
    assert!(
        table.lines().nth(2).unwrap().contains("0..1.6 ok"),
        "{table}"
    );
    shutdown.cancel();
    sim.join().await;
}

#[tokio::test]
async fn the_gateway_serves_requests_per_cycle_as_a_prometheus_metric() {
    let (sim, shutdown) = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = site_config(sim.buildings[0].modbus_addr);
    config.data_dir = dir.path().to_owned();
    config.poll_interval_ms = 100;
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    config.mqtt.port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = riser_gateway::Gateway::start(config, shutdown.clone())
        .await
        .unwrap();
    let addr = gateway.metrics_addr.unwrap();
    let text = riser_e2e::eventually(
        "a polled cycle in the metrics",
        std::time::Duration::from_secs(10),
        || async move {
            let (_, text) = riser_e2e::get_text(addr, "/metrics").await.ok()?;
            text.contains("riser_gateway_modbus_requests_last_cycle{line=\"modbus\"} 4")
                .then_some(text)
        },
    )
    .await;
    assert!(text.contains("riser_gateway_outbox_depth "), "{text}");
    let (status, _) = riser_e2e::get_text(addr, "/nope").await.unwrap();
    assert_eq!(status, 404);
    shutdown.cancel();
    gateway.join().await;
    sim.join().await;
}

#[tokio::test]
async fn a_fire_alarm_and_the_panel_reset_become_one_event_each() {
    use riser_gateway::acquire::{LastSeen, detect_events};
    let (sim, shutdown) = sim().await;
    let config = site_config(sim.buildings[0].modbus_addr);
    let event_points = riser_gateway::acquire::event_points(&config);
    let mut line = LinePoller::new(config.lines[0].clone(), config.devices.clone());
    let mut last = LastSeen::new();
    detect_events(&mut last, &line.poll().await, &event_points); // initial states

    sim.inject("P-1", Fault::FireAlarm).unwrap();
    let changed = |events: Vec<riser_contract::Event>| -> Vec<(String, Option<f64>)> {
        events.into_iter().map(|e| (e.point, e.value)).collect()
    };
    let on_alarm = changed(detect_events(&mut last, &line.poll().await, &event_points));
    assert!(
        on_alarm.contains(&("panel.fire_alarm".into(), Some(1.0))),
        "{on_alarm:?}"
    );
    assert!(
        changed(detect_events(&mut last, &line.poll().await, &event_points)).is_empty(),
        "sent once, not every poll"
    );

    sim.clear("P-1").unwrap();
    let on_reset = changed(detect_events(&mut last, &line.poll().await, &event_points));
    assert!(
        on_reset.contains(&("panel.fire_alarm".into(), Some(0.0))),
        "{on_reset:?}"
    );
    assert!(
        on_reset.contains(&("panel.reset".into(), Some(1.0))),
        "{on_reset:?}"
    );
    shutdown.cancel();
    sim.join().await;
}
