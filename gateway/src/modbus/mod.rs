//! Modbus acquisition: read plans and decoding ([`decode`], pure), dead
//! slave back-off and frozen-value watch ([`health`], pure), and one
//! scheduler per line ([`line`]) that keeps "unreachable", "exception" and
//! "value" apart.

mod decode;
mod health;
mod line;

pub use decode::{
    BlockData, Decoded, ReadBlock, ReadLimits, decode_point, minimum_reads, plan_reads,
};
pub use health::{FreezeWatch, Health, silent_interval};
pub use line::{LinePoller, LineStats, Polled};

use tokio_modbus::ExceptionCode;

/// Why a request did not give values.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    #[error("device unreachable: {0}")]
    Unreachable(String),
    #[error("device answered with exception {0:?}")]
    Exception(ExceptionCode),
}
