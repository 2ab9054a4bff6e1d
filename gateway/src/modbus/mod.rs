//! Modbus TCP acquisition: read plans (pure), decoding (pure) and the device
//! poller that keeps "unreachable", "exception" and "value" apart.

mod decode;

pub use decode::{ReadBlock, decode_points, plan_reads};

use std::time::Duration;

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

/// Polls one device; owns its connection and reconnects after a failure.
pub struct DevicePoller {
    device: DeviceConfig,
    blocks: Vec<ReadBlock>,
    context: Option<Context>,
}

impl DevicePoller {
    pub fn new(device: DeviceConfig) -> Self {
        let blocks = plan_reads(&device.points);
        Self {
            device,
            blocks,
            context: None,
        }
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
            Ok(data) => decode_points(&device.points, &data)
                .into_iter()
                .zip(&device.points)
                .map(|(value, point)| Reading {
                    point: format!("{}.{}", device.name, point.name),
                    ts,
                    value: Some(value),
                    unit: point.unit.clone(),
                    quality: Quality::Good,
                    exception: None,
                })
                .collect(),
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
    async fn read_blocks(&mut self) -> Result<Vec<(ReadBlock, Vec<u16>)>, PollError> {
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
                match block.table {
                    Table::Holding => {
                        context
                            .read_holding_registers(block.start, block.count)
                            .await
                    }
                    Table::Input => context.read_input_registers(block.start, block.count).await,
                }
            };
            // tokio-modbus has no timeout of its own: a silent device would hang.
            let registers = tokio::time::timeout(timeout, request)
                .await
                .map_err(|_| PollError::Unreachable(format!("no answer within {timeout:?}")))?
                .map_err(|e| PollError::Unreachable(e.to_string()))?
                .map_err(PollError::Exception)?;
            if registers.len() != usize::from(block.count) {
                return Err(PollError::Unreachable(format!(
                    "asked for {} registers, got {}",
                    block.count,
                    registers.len()
                )));
            }
            out.push((*block, registers));
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
