//! A building served on an RTU line (a pseudo-terminal pair) and over RTU
//! over TCP, read with tokio-modbus's RTU client; communication faults go
//! in through the simulator.

use std::time::Duration;

use riser_sim::{
    BuildingSpec, CommFault, Fault, LineTiming, Sim, SimHandle, SimOptions, serve_rtu,
    serve_rtu_over_tcp,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_modbus::client::{Context, rtu};
use tokio_modbus::prelude::*;
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;

const BUILDING: &str = "R-1";
/// Polls at most this many times, `POLL` apart, before giving up.
const MAX_POLLS: u32 = 500;
const POLL: Duration = Duration::from_millis(10);
/// How long a client waits for a unit that never answers: a bound, not a sleep.
const DEAD_TIMEOUT: Duration = Duration::from_millis(200);
/// A bound on answers that do come: generous, never reached when all is well.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

struct Line {
    sim: SimHandle,
    shutdown: CancellationToken,
    served: JoinHandle<Result<(), riser_sim::Error>>,
}

impl Line {
    async fn stop(self) {
        self.shutdown.cancel();
        self.served.await.unwrap().unwrap();
        self.sim.join().await;
    }
}

/// Building `R-1` (an example building, 2.5 m tank) with a fast drain, its
/// units on a pseudo-terminal; returns the line and the client's end.
async fn serial_line() -> (Line, SerialStream) {
    let shutdown = CancellationToken::new();
    let options = SimOptions {
        tick: Duration::from_millis(10),
        drain_rate_m_per_s: 1.0,
        ..SimOptions::default()
    };
    let specs = vec![BuildingSpec::example(BUILDING)];
    let sim = Sim::start(specs, options, shutdown.clone()).await.unwrap();
    let (client, device) = SerialStream::pair().unwrap();
    let served = tokio::spawn(serve_rtu(
        sim.sim(),
        BUILDING,
        device,
        LineTiming::default(),
        shutdown.clone(),
    ));
    let line = Line {
        sim,
        shutdown,
        served,
    };
    (line, client)
}

async fn read(ctx: &mut Context, unit: u8, addr: u16, count: u16) -> Vec<u16> {
    ctx.set_slave(Slave(unit));
    tokio::time::timeout(ANSWER_TIMEOUT, ctx.read_holding_registers(addr, count))
        .await
        .expect("an answer in time")
        .expect("a readable answer")
        .expect("a value, not an exception")
}

/// The RTU client drops a byte per failed CRC check and gives up with
/// `InvalidData` after 20: an unreadable answer, not a value and not a timeout.
fn assert_failed_crc<T: std::fmt::Debug>(answer: tokio_modbus::Result<T>) {
    match answer {
        Err(tokio_modbus::Error::Transport(error)) => {
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
        }
        other => panic!("not a transport error: {other:?}"),
    }
}

/// Waits until the simulated tank level satisfies `done`, a bounded number of polls.
async fn wait_for_level(sim: &SimHandle, done: impl Fn(f64) -> bool) -> f64 {
    let mut polls = tokio::time::interval(POLL);
    for _ in 0..MAX_POLLS {
        polls.tick().await;
        let level = sim.snapshot(BUILDING).unwrap().level_m;
        if done(level) {
            return level;
        }
    }
    panic!("the tank level never got there");
}

#[tokio::test]
async fn the_rtu_line_answers_the_same_units_as_the_tcp_port() {
    let (line, client) = serial_line().await;
    let mut ctx = rtu::attach_slave(client, Slave(1));
    assert_eq!(
        read(&mut ctx, 1, 0, 7).await,
        vec![1, 3, 1, 3, 2400, 0, 2500]
    );
    assert_eq!(read(&mut ctx, 2, 4, 1).await, vec![82]);
    assert_eq!(read(&mut ctx, 4, 0, 1).await, vec![0]);
    ctx.set_slave(Slave(9));
    let unknown = ctx.read_input_registers(0, 1).await.unwrap();
    assert_eq!(unknown, Err(ExceptionCode::GatewayTargetDevice));
    line.stop().await;
}

#[tokio::test]
async fn the_analog_module_reads_the_tank_level_as_4_to_20_ma() {
    let (line, client) = serial_line().await;
    let mut ctx = rtu::attach_slave(client, Slave(5));
    let spec = BuildingSpec::example(BUILDING);
    let full = read(&mut ctx, 5, 0, 8).await;
    let expected_ma = 4.0 + 16.0 * 2.4 / spec.tank_height_m;
    assert!(
        (f64::from(full[0]) / 1000.0 - expected_ma).abs() < 0.01,
        "{full:?}"
    );
    assert_eq!(&full[2..], &[4000; 6], "spare channels read 4 mA");

    let drain = Fault::DrainTank {
        to_level_m: Some(1.25),
    };
    line.sim.inject(BUILDING, drain).unwrap();
    wait_for_level(&line.sim, |level| (level - 1.25).abs() < 1e-9).await;
    // 4 + 16 × 1.25 / 2.5 = 12 mA.
    assert_eq!(read(&mut ctx, 5, 0, 1).await, vec![12_000]);

    line.sim
        .inject(BUILDING, Fault::WireBreak { channel: 0 })
        .unwrap();
    assert_eq!(
        read(&mut ctx, 5, 0, 2).await[0],
        0,
        "a broken loop reads 0 µA"
    );
    line.stop().await;
}

#[tokio::test]
async fn a_dead_unit_leaves_the_client_to_its_timeout_while_others_answer() {
    let (line, client) = serial_line().await;
    line.sim
        .inject_comm(BUILDING, Some(3), CommFault::Dead)
        .unwrap();
    let mut ctx = rtu::attach_slave(client, Slave(3));
    let waited = tokio::time::timeout(DEAD_TIMEOUT, ctx.read_holding_registers(0, 1)).await;
    assert!(waited.is_err(), "no answer from a dead unit: {waited:?}");

    assert_eq!(read(&mut ctx, 1, 4, 1).await, vec![2400]);
    line.sim.clear_comm(BUILDING).unwrap();
    assert_eq!(read(&mut ctx, 3, 2, 1).await, vec![0], "no jockey pump");
    line.stop().await;
}

#[tokio::test]
async fn an_exception_fault_answers_server_device_failure() {
    let (line, client) = serial_line().await;
    line.sim
        .inject_comm(BUILDING, None, CommFault::Exception { code: 4 })
        .unwrap();
    let mut ctx = rtu::attach_slave(client, Slave(2));
    let answer = ctx.read_holding_registers(4, 1).await.unwrap();
    assert_eq!(answer, Err(ExceptionCode::ServerDeviceFailure));
    line.stop().await;
}

#[tokio::test]
async fn garbage_on_the_line_is_an_error_not_a_value() {
    let (line, client) = serial_line().await;
    line.sim
        .inject_comm(BUILDING, Some(1), CommFault::Garbage)
        .unwrap();
    let mut ctx = rtu::attach_slave(client, Slave(1));
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, ctx.read_holding_registers(4, 1))
        .await
        .expect("noise is reported at once, not left to the timeout");
    assert_failed_crc(answer);
    line.stop().await;
}

#[tokio::test]
async fn a_frozen_unit_keeps_its_level_while_the_tank_drains() {
    let (line, client) = serial_line().await;
    line.sim
        .inject_comm(BUILDING, Some(1), CommFault::Frozen)
        .unwrap();
    let drain = Fault::DrainTank {
        to_level_m: Some(1.0),
    };
    line.sim.inject(BUILDING, drain).unwrap();
    wait_for_level(&line.sim, |level| level < 1.5).await;

    let mut ctx = rtu::attach_slave(client, Slave(1));
    assert_eq!(read(&mut ctx, 1, 4, 1).await, vec![2400], "frozen at full");
    let analog = read(&mut ctx, 5, 0, 1).await[0];
    assert!(analog < 16_000, "the analog module still follows: {analog}");

    line.sim.clear_comm(BUILDING).unwrap();
    let level = read(&mut ctx, 1, 4, 1).await[0];
    assert!(level < 1500, "{level}");
    line.stop().await;
}

#[tokio::test]
async fn rtu_over_tcp_answers_like_a_serial_device_server() {
    let shutdown = CancellationToken::new();
    let specs = vec![BuildingSpec::example(BUILDING)];
    let sim = Sim::start(specs, SimOptions::default(), shutdown.clone())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let timing = LineTiming {
        wire_baud: Some(115_200),
    };
    let served = tokio::spawn(serve_rtu_over_tcp(
        sim.sim(),
        BUILDING,
        listener,
        timing,
        shutdown.clone(),
    ));

    let stream = TcpStream::connect(addr).await.unwrap();
    let mut ctx = rtu::attach_slave(stream, Slave(2));
    assert_eq!(read(&mut ctx, 2, 0, 7).await, vec![2, 3, 2, 3, 82, 0, 1600]);
    sim.inject_comm(BUILDING, Some(2), CommFault::Garbage)
        .unwrap();
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, ctx.read_holding_registers(4, 1))
        .await
        .expect("noise is reported at once");
    assert_failed_crc(answer);

    shutdown.cancel();
    served.await.unwrap().unwrap();
    sim.join().await;
}
