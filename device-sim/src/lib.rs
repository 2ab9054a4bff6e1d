//! Simulated high-rise buildings for Riser: each speaks real Modbus
//! (tokio-modbus's server) with a rooftop tank level transmitter, a pressure
//! transmitter at the most unfavourable point, a pump cabinet, a
//! fire-alarm panel and an 8-channel 4-20 mA analog-input module as units
//! 1-5 behind one Modbus TCP port ([`Sim::start`]), and on request on an
//! RTU serial line ([`serve_rtu`]) or RTU over TCP
//! ([`serve_rtu_over_tcp`]). Faults are injected at run time over a small
//! HTTP control interface or in process: process faults ([`Fault`]: a
//! drained tank, a broken 4-20 mA loop ...) change what the devices
//! measure; communication faults ([`CommFault`]: dead, slow, exception,
//! garbage, frozen) change how a unit answers.
//!
//! The HTTP control interface:
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/buildings` | every building's snapshot |
//! | GET | `/buildings/{id}` | one snapshot, with its faults and communication faults |
//! | POST | `/buildings/{id}/faults` | inject a process fault, e.g. `{"fault":"drain_tank","to_level_m":0.3}` or `{"fault":"wire_break","channel":0}` → 204 |
//! | DELETE | `/buildings/{id}/faults` | clear all process faults → 204 |
//! | POST | `/buildings/{id}/comm` | inject a communication fault, e.g. `{"fault":"dead","unit":3}`, `{"fault":"slow","delay_ms":800}`, `{"fault":"exception","code":4,"unit":2}`, `{"fault":"garbage"}`, `{"fault":"frozen","unit":1}`; without `unit` it applies to every unit → 204 |
//! | DELETE | `/buildings/{id}/comm` | clear all communication faults → 204 |
//!
//! An unknown building is a 404, a malformed body a 400 or 422, all with
//! `{"error": "..."}`.
//!
//! `Garbage` corrupts the bytes on the wire: on RTU (serial or over TCP)
//! the answer is replaced by line noise that fails every CRC check, so
//! tokio-modbus's RTU client reports an `InvalidData` error; on Modbus TCP
//! the noise is followed by closing the connection, so the client sees an
//! invalid frame or an early end of stream and must reconnect.
//!
//! - [`spec`]: building specs and the district CSV
//! - [`model`]: the physics, pure and stepped by the caller
//! - [`registers`]: the register map, pure
//! - `comm`, `wire`, `garble`: communication faults, RTU line time (pure)
//!   and the byte-corrupting writer
//! - `server`, `rtu`, `control`, `sim`: the Modbus servers, the HTTP
//!   control interface and the runtime that ties them to a ticker

use std::net::SocketAddr;

mod comm;
mod control;
pub mod demo;
mod garble;
pub mod model;
mod options;
pub mod registers;
mod rtu;
mod server;
mod sim;
pub mod site;
mod snapshot;
pub mod spec;
mod wire;
pub mod wireless;
mod world;

pub use comm::{CommFault, CommFaultError, UnitCommFault};
pub use model::{BuildingModel, Fault, FaultError, PanelStatus, PumpStatus};
pub use options::SimOptions;
pub use rtu::{serve_rtu, serve_rtu_over_tcp};
pub use sim::{Sim, SimBuilding, SimHandle};
pub use snapshot::BuildingSnapshot;
pub use spec::{
    BuildingSpec, SpecError, Use, load_csv, min_static_pressure_mpa, needs_jockey_pump,
};
pub use wire::{LineTiming, rtu_wire_time};

/// Errors of the running simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("no building {0:?}")]
    UnknownBuilding(String),
    #[error("building {0:?} appears twice")]
    DuplicateBuilding(String),
    #[error("building {building}: {source}")]
    Fault {
        building: String,
        source: FaultError,
    },
    #[error("building {building}: {source}")]
    CommFault {
        building: String,
        source: CommFaultError,
    },
    #[error("building {building}: serving its line failed: {source}")]
    Serve {
        building: String,
        source: std::io::Error,
    },
    #[error("invalid simulator options: {0}")]
    InvalidOptions(String),
    #[error("modbus base port {base} + building {index} is past 65535")]
    PortOverflow { base: u16, index: usize },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
