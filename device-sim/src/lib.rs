//! Simulated high-rise buildings for Riser: each speaks real Modbus TCP
//! (tokio-modbus's server) with a rooftop tank level transmitter, a pressure
//! transmitter at the most unfavourable point, a pump cabinet and a
//! fire-alarm panel behind one port; faults are injected at run time over
//! a small HTTP control interface or in process.
//!
//! - [`spec`]: building specs and the district CSV
//! - [`model`]: the physics, pure and stepped by the caller
//! - [`registers`]: the register map, pure
//! - `server`, `control`, `sim`: the Modbus servers, the HTTP control
//!   interface and the runtime that ties them to a ticker

use std::net::SocketAddr;

mod control;
pub mod demo;
pub mod model;
mod options;
pub mod registers;
mod server;
mod sim;
pub mod site;
mod snapshot;
pub mod spec;
mod world;

pub use model::{BuildingModel, Fault, FaultError, PanelStatus, PumpStatus};
pub use options::SimOptions;
pub use sim::{Sim, SimBuilding, SimHandle};
pub use snapshot::BuildingSnapshot;
pub use spec::{
    BuildingSpec, SpecError, Use, load_csv, min_static_pressure_mpa, needs_jockey_pump,
};

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
