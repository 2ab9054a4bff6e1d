//! Modbus TCP acquisition: read plans (pure), decoding (pure) and the device
//! poller that keeps "unreachable", "exception" and "value" apart.

mod decode;

pub use decode::{
    BlockData, Decoded, ReadBlock, ReadLimits, decode_point, minimum_reads, plan_reads,
};

use std::time::{Duration, Instant};

use riser_contract::{Quality, Reading};
use time::OffsetDateTime;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::{SlaveContext, tcp};
use tokio_modbus::{ExceptionCode, Slave};

use crate::config::{DeviceConfig, Table};

/// Why a device poll did not give values.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("device unreachable: {0}")]
    Unreachable(String),
    #[error("device answered with exception {0:?}")]
    Exception(ExceptionCode),
}

/// Notices a value that stopped changing: a frozen transmitter or a stuck
/// converter looks live otherwise.
#[derive(Debug, Default, Clone)]
pub struct FreezeWatch {
    last: Option<(f64, Instant)>,
}

impl FreezeWatch {
    /// Records `value` seen at `now`; `true` if it has not changed for longer than `limit`.
    pub fn is_frozen(&mut self, value: f64, now: Instant, limit: Duration) -> bool {
        match self.last {
            Some((v, since)) if v == value => now.duration_since(since) > limit,
            _ => {
                self.last = Some((value, now));
                false
            }
        }
    }
}

/// Polls one device; owns its connection and reconnects after a failure.
pub struct DevicePoller {
    device: DeviceConfig,
    blocks: Vec<ReadBlock>,
    context: Option<Context>,
    freeze: Vec<FreezeWatch>,
}

impl DevicePoller {
    pub fn new(device: DeviceConfig) -> Self {
        let limits = ReadLimits {
            max_registers: device.max_registers_per_read,
            max_gap: device.max_gap,
        };
        let blocks = plan_reads(&device.points, limits);
        let freeze = vec![FreezeWatch::default(); device.points.len()];
        Self {
            device,
            blocks,
            context: None,
            freeze,
        }
    }

    /// Read requests per poll of this device.
    pub fn requests_per_poll(&self) -> usize {
        self.blocks.len()
    }

    pub fn name(&self) -> &str {
        &self.device.name
    }

    /// Reads every point of the device once. A point gets a value with
    /// quality `good`, or no value and the quality saying why.
    pub async fn poll(&mut self) -> Vec<Reading> {
        let ts = OffsetDateTime::now_utc();
        let outcome = self.read_blocks().await;
        let device = &self.device;
        match outcome {
            Ok(data) => {
                let now = Instant::now();
                device
                    .points
                    .iter()
                    .zip(&mut self.freeze)
                    .map(|(point, freeze)| {
                        let Decoded { value, mut quality } = decode_point(point, &data);
                        if let Some(secs) = point.frozen_after_secs
                            && freeze.is_frozen(value, now, Duration::from_secs(secs))
                            && quality == Quality::Good
                        {
                            quality = Quality::Stale;
                        }
                        Reading {
                            point: format!("{}.{}", device.name, point.name),
                            ts,
                            value: Some(value),
                            unit: point.unit.clone(),
                            quality,
                            exception: None,
                        }
                    })
                    .collect()
            }
            Err(error) => {
                let (quality, exception) = match &error {
                    PollError::Unreachable(_) => {
                        // Drop the connection: the next cycle reconnects.
                        self.context = None;
                        (Quality::Unreachable, None)
                    }
                    PollError::Exception(code) => (Quality::Exception, Some(u8::from(*code))),
                };
                tracing::warn!(device = %device.name, address = %device.address, error = %error, "device poll failed");
                device
                    .points
                    .iter()
                    .map(|point| Reading {
                        point: format!("{}.{}", device.name, point.name),
                        ts,
                        value: None,
                        unit: point.unit.clone(),
                        quality,
                        exception,
                    })
                    .collect()
            }
        }
    }

    /// Reads every planned block; returns the registers per block.
    async fn read_blocks(&mut self) -> Result<Vec<(ReadBlock, BlockData)>, PollError> {
        let timeout = Duration::from_millis(self.device.timeout_ms);
        if self.context.is_none() {
            self.context = Some(connect(&self.device, timeout).await?);
        }
        let Some(context) = self.context.as_mut() else {
            unreachable!("connected above");
        };
        let mut out = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let request = async {
                let (start, count) = (block.start, block.count);
                Ok(match block.table {
                    Table::Holding => context
                        .read_holding_registers(start, count)
                        .await?
                        .map(BlockData::Registers),
                    Table::Input => context
                        .read_input_registers(start, count)
                        .await?
                        .map(BlockData::Registers),
                    Table::Coil => context.read_coils(start, count).await?.map(BlockData::Bits),
                    Table::DiscreteInput => context
                        .read_discrete_inputs(start, count)
                        .await?
                        .map(BlockData::Bits),
                })
            };
            // tokio-modbus has no timeout of its own: a silent device would hang.
            let data = tokio::time::timeout(timeout, request)
                .await
                .map_err(|_| PollError::Unreachable(format!("no answer within {timeout:?}")))?
                .map_err(|e: tokio_modbus::Error| PollError::Unreachable(e.to_string()))?
                .map_err(PollError::Exception)?;
            let got = match &data {
                BlockData::Registers(r) => r.len(),
                // Bits come padded to whole bytes.
                BlockData::Bits(b) => b.len().min(usize::from(block.count)),
            };
            if got != usize::from(block.count) {
                return Err(PollError::Unreachable(format!(
                    "asked for {} values, got {got}",
                    block.count
                )));
            }
            out.push((*block, data));
        }
        Ok(out)
    }
}

async fn connect(device: &DeviceConfig, timeout: Duration) -> Result<Context, PollError> {
    let addr = tokio::time::timeout(timeout, tokio::net::lookup_host(&device.address))
        .await
        .map_err(|_| PollError::Unreachable("address lookup timed out".into()))?
        .map_err(|e| PollError::Unreachable(format!("address lookup: {e}")))?
        .next()
        .ok_or_else(|| PollError::Unreachable("address resolves to nothing".into()))?;
    let mut context = tokio::time::timeout(timeout, tcp::connect(addr))
        .await
        .map_err(|_| PollError::Unreachable(format!("connect timed out after {timeout:?}")))?
        .map_err(|e| PollError::Unreachable(format!("connect: {e}")))?;
    context.set_slave(Slave(device.unit));
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_unchanged_for_too_long_is_frozen_and_a_change_thaws_it() {
        let limit = Duration::from_secs(600);
        let t0 = Instant::now();
        let mut watch = FreezeWatch::default();
        assert!(!watch.is_frozen(2.4, t0, limit));
        assert!(!watch.is_frozen(2.4, t0 + Duration::from_secs(600), limit));
        assert!(watch.is_frozen(2.4, t0 + Duration::from_secs(601), limit));
        assert!(!watch.is_frozen(2.3, t0 + Duration::from_secs(602), limit));
        assert!(!watch.is_frozen(2.3, t0 + Duration::from_secs(1000), limit));
    }
}
