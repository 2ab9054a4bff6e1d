//! One building's units 1-5 on an RTU line: a serial port (in tests one
//! end of a pseudo-terminal pair) or RTU frames over TCP, like a serial
//! device server (DTU) in transparent mode. Same service, same faults, as
//! over Modbus TCP; [`LineTiming`] adds the time the frames would take on
//! a real wire.
//!
//! tokio-modbus's RTU server takes a `SerialStream` and nothing else, so to
//! corrupt answers on the wire ([`crate::CommFault::Garbage`]) the server
//! runs on an internal pseudo-terminal pair and a relay copies its bytes to
//! and from the caller's serial port through the corrupting writer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::server::{rtu, rtu_over_tcp};
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;

use crate::garble::{AfterNoise, Garbling};
use crate::server::BuildingService;
use crate::wire::LineTiming;
use crate::{Error, Sim};

fn check(timing: LineTiming) -> Result<(), Error> {
    if timing.wire_baud == Some(0) {
        return Err(Error::InvalidOptions("wire_baud must be above 0".into()));
    }
    Ok(())
}

fn serve_error(building: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Serve {
        building: building.to_owned(),
        source,
    }
}

/// Serves the units of building `building_id` as RTU slaves on `serial`
/// until `shutdown` is cancelled. Communication faults injected through
/// `sim` apply here as over TCP.
///
/// Runs until `shutdown` and then returns `Ok`; returns an error at once
/// for an unknown building or a `wire_baud` of 0, and when the serial port
/// fails (the master end of a pseudo-terminal pair reports EIO once the
/// other end is closed).
pub async fn serve_rtu(
    sim: Sim,
    building_id: &str,
    serial: SerialStream,
    options: LineTiming,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let world = sim.world();
    let index = world.index_of(building_id)?;
    check(options)?;
    let failed = serve_error(building_id);
    let (device_end, mut relay_end) = SerialStream::pair().map_err(|error| failed(error.into()))?;
    let garble = Arc::new(AtomicBool::new(false));
    let service = BuildingService::new(world, index, options, Arc::clone(&garble));
    let server = rtu::Server::new(device_end);
    let mut line = Garbling::new(serial, garble, AfterNoise::KeepOpen);
    tracing::debug!(building = %building_id, wire_baud = ?options.wire_baud, "serving an RTU line");
    let served = tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        served = server.serve_forever(service) => served,
        relayed = tokio::io::copy_bidirectional(&mut relay_end, &mut line) => relayed.map(drop),
    };
    match served {
        Ok(()) => {
            tracing::debug!(building = %building_id, "RTU line stopped");
            Ok(())
        }
        Err(error) => {
            tracing::warn!(building = %building_id, error = %error, "RTU line failed");
            Err(failed(error))
        }
    }
}

/// Serves the units of building `building_id` as RTU slaves over TCP on
/// `listener` (each connection its own line) until `shutdown` is
/// cancelled. Communication faults injected through `sim` apply here too.
pub async fn serve_rtu_over_tcp(
    sim: Sim,
    building_id: &str,
    listener: TcpListener,
    options: LineTiming,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let world = sim.world();
    let index = world.index_of(building_id)?;
    check(options)?;
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        tracing::debug!(building = %building_id, %peer, "RTU over TCP client connected");
        let garble = Arc::new(AtomicBool::new(false));
        let service = BuildingService::new(Arc::clone(&world), index, options, Arc::clone(&garble));
        let transport = Garbling::new(stream, garble, AfterNoise::KeepOpen);
        std::future::ready(Ok(Some((service, transport))))
    };
    let on_process_error = {
        let building = building_id.to_owned();
        move |error: std::io::Error| {
            tracing::debug!(building = %building, error = %error, "RTU over TCP connection closed with an error");
        }
    };
    rtu_over_tcp::Server::new(listener)
        .serve_until(&on_connected, on_process_error, shutdown.cancelled_owned())
        .await
        .map(drop)
        .map_err(serve_error(building_id))
}
