//! The simulator over real sockets: a tokio-modbus TCP client reads the
//! registers, faults go in over the HTTP control interface.

use std::net::SocketAddr;
use std::time::Duration;

use riser_sim::{BuildingSpec, Sim, SimHandle, SimOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_modbus::client::{Context, tcp};
use tokio_modbus::prelude::*;
use tokio_util::sync::CancellationToken;

/// Polls at most this many times, `POLL` apart, before giving up.
const MAX_POLLS: u32 = 500;
const POLL: Duration = Duration::from_millis(20);

fn spec(id: &str, tank_height_m: f64) -> BuildingSpec {
    BuildingSpec {
        tank_height_m,
        ..BuildingSpec::example(id)
    }
}

async fn start() -> (SimHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let options = SimOptions {
        tick: Duration::from_millis(10),
        ..SimOptions::default()
    };
    let specs = vec![spec("M-1", 2.5), spec("M-2", 3.16)];
    let sim = Sim::start(specs, options, shutdown.clone()).await.unwrap();
    (sim, shutdown)
}

async fn connect(addr: SocketAddr, unit: u8) -> Context {
    tcp::connect_slave(addr, Slave(unit)).await.unwrap()
}

/// A minimal HTTP/1.1 request; returns the status code and the body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn stop(sim: SimHandle, shutdown: CancellationToken) {
    shutdown.cancel();
    sim.join().await;
}

#[tokio::test]
async fn the_level_transmitter_reports_a_full_tank_in_thousandths_of_a_metre() {
    let (sim, shutdown) = start().await;
    let mut first = connect(sim.buildings[0].modbus_addr, 1).await;
    let registers = first.read_holding_registers(0, 7).await.unwrap().unwrap();
    // Address 1, 9600 baud, metres, 3 decimals, 2.400 m, range 0..2.500 m.
    assert_eq!(registers, vec![1, 3, 1, 3, 2400, 0, 2500]);

    let mut second = connect(sim.buildings[1].modbus_addr, 1).await;
    let value = second.read_input_registers(4, 1).await.unwrap().unwrap();
    assert_eq!(value, vec![3060]);
    stop(sim, shutdown).await;
}

#[tokio::test]
async fn a_pressure_loss_injected_over_http_drops_the_pressure_below_0_07_mpa() {
    let (sim, shutdown) = start().await;
    let mut pressure = connect(sim.buildings[0].modbus_addr, 2).await;
    let before = pressure
        .read_holding_registers(4, 1)
        .await
        .unwrap()
        .unwrap()[0];
    assert!(before >= 70, "{before}");

    let (status, body) = http(
        sim.control_addr,
        "POST",
        "/buildings/M-1/faults",
        r#"{"fault":"pressure_loss"}"#,
    )
    .await;
    assert_eq!(status, 204, "{body}");

    let mut polls = tokio::time::interval(POLL);
    let mut after = before;
    for _ in 0..MAX_POLLS {
        polls.tick().await;
        after = pressure
            .read_holding_registers(4, 1)
            .await
            .unwrap()
            .unwrap()[0];
        if after < 70 {
            break;
        }
    }
    assert_eq!(after, 20, "the residual 0.020 MPa");

    let other = connect(sim.buildings[1].modbus_addr, 2)
        .await
        .read_holding_registers(4, 1)
        .await;
    assert!(
        other.unwrap().unwrap()[0] >= 70,
        "the other building keeps its pressure"
    );
    let snapshot = sim.snapshot("M-1").unwrap();
    assert_eq!(snapshot.faults, vec![riser_sim::Fault::PressureLoss]);
    stop(sim, shutdown).await;
}

#[tokio::test]
async fn an_unknown_unit_id_is_answered_with_gateway_target_device() {
    let (sim, shutdown) = start().await;
    let mut ctx = connect(sim.buildings[0].modbus_addr, 9).await;
    let answer = ctx.read_holding_registers(0, 1).await.unwrap();
    assert_eq!(answer, Err(ExceptionCode::GatewayTargetDevice));

    ctx.set_slave(Slave(1));
    let answer = ctx.read_holding_registers(0, 8).await.unwrap();
    assert_eq!(
        answer,
        Err(ExceptionCode::IllegalDataAddress),
        "the connection stays usable"
    );
    stop(sim, shutdown).await;
}

#[tokio::test]
async fn writes_over_modbus_are_refused_as_illegal_function() {
    let (sim, shutdown) = start().await;
    let mut ctx = connect(sim.buildings[0].modbus_addr, 1).await;
    let answer = ctx.write_single_register(4, 0).await.unwrap();
    assert_eq!(answer, Err(ExceptionCode::IllegalFunction));
    assert_eq!(
        ctx.read_holding_registers(4, 1).await.unwrap(),
        Ok(vec![2400])
    );
    stop(sim, shutdown).await;
}

#[tokio::test]
async fn the_control_interface_lists_buildings_and_refuses_unknown_ones() {
    let (sim, shutdown) = start().await;
    let (status, body) = http(sim.control_addr, "GET", "/buildings", "").await;
    assert_eq!(status, 200);
    let list: Vec<riser_sim::BuildingSnapshot> = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = list.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["M-1", "M-2"]);

    let (status, body) = http(
        sim.control_addr,
        "POST",
        "/buildings/NOPE/faults",
        r#"{"fault":"fire_alarm"}"#,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NOPE"), "{body}");
    stop(sim, shutdown).await;
}

#[tokio::test]
async fn after_shutdown_the_modbus_port_is_closed() {
    let (sim, shutdown) = start().await;
    let addr = sim.buildings[0].modbus_addr;
    let mut ctx = connect(addr, 1).await;
    assert!(ctx.read_holding_registers(0, 1).await.unwrap().is_ok());
    stop(sim, shutdown).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn comm_faults_injected_over_http_silence_or_garble_a_unit_over_tcp() {
    let (sim, shutdown) = start().await;
    let addr = sim.buildings[0].modbus_addr;
    let (status, body) = http(
        sim.control_addr,
        "POST",
        "/buildings/M-1/comm",
        r#"{"fault":"dead","unit":3}"#,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let mut pumps = connect(addr, 3).await;
    // A bound on a unit that never answers, not a sleep.
    let waited = tokio::time::timeout(
        Duration::from_millis(200),
        pumps.read_holding_registers(0, 1),
    )
    .await;
    assert!(waited.is_err(), "{waited:?}");

    sim.inject_comm("M-1", Some(1), riser_sim::CommFault::Garbage)
        .unwrap();
    let mut tank = connect(addr, 1).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), tank.read_holding_registers(4, 1))
        .await
        .expect("noise and a closed connection are reported at once");
    assert!(
        matches!(answer, Err(tokio_modbus::Error::Transport(_))),
        "{answer:?}"
    );
    let snapshot = sim.snapshot("M-1").unwrap();
    assert_eq!(snapshot.comm_faults.len(), 2, "{snapshot:?}");

    let (status, _) = http(sim.control_addr, "DELETE", "/buildings/M-1/comm", "").await;
    assert_eq!(status, 204);
    let mut tank = connect(addr, 1).await;
    assert_eq!(
        tank.read_holding_registers(4, 1).await.unwrap(),
        Ok(vec![2400])
    );
    let mut pumps = connect(addr, 3).await;
    assert!(pumps.read_holding_registers(0, 1).await.unwrap().is_ok());
    stop(sim, shutdown).await;
}
