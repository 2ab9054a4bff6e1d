//! One scheduler per line: one request outstanding at a time, the RTU
//! silent interval and turnaround between frames, retries, reconnects, and
//! dead slaves skipped so they never stall the others.

use std::time::Duration;

use riser_contract::{Quality, Reading};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_modbus::Slave;
use tokio_modbus::client::{Context, Reader, rtu, tcp};
use tokio_modbus::prelude::SlaveContext;

use super::PollError;
use super::decode::{
    BlockData, Decoded, ReadBlock, ReadLimits, decode_point, plan_reads, raw_value,
};
use super::health::{FreezeWatch, Health, silent_interval};
use crate::config::{DeviceConfig, LineConfig, Parity, Table, Transport};

/// What a line did, for metrics and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Requests sent, all cycles.
    pub requests: u64,
    /// Requests sent in the last cycle.
    pub last_cycle_requests: u64,
    /// Requests without an answer in time.
    pub timeouts: u64,
    /// Answers that were Modbus exceptions.
    pub exceptions: u64,
    /// Connection failures and unreadable answers (garbage, CRC errors).
    pub transport_errors: u64,
    /// Device polls skipped while a dead device backs off.
    pub skipped: u64,
}

/// A reading with the number that came off the wire, for installer tools.
#[derive(Debug, Clone, PartialEq)]
pub struct Polled {
    pub reading: Reading,
    /// The point's registers as its data type, before decimals and scaling;
    /// `None` when the device gave nothing.
    pub raw: Option<f64>,
}

struct DeviceState {
    device: DeviceConfig,
    blocks: Vec<ReadBlock>,
    freeze: Vec<FreezeWatch>,
    health: Health,
}

/// Polls every device of one line, one request at a time.
pub struct LinePoller {
    config: LineConfig,
    devices: Vec<DeviceState>,
    context: Option<Context>,
    /// When the line last fell silent (end of the last answer or timeout).
    quiet_since: Option<Instant>,
    stats: LineStats,
}

impl LinePoller {
    pub fn new(config: LineConfig, devices: Vec<DeviceConfig>) -> Self {
        let devices = devices
            .into_iter()
            .map(|device| {
                let (max_registers, max_gap) = device.read_limits();
                let limits = ReadLimits {
                    max_registers,
                    max_gap,
                };
                DeviceState {
                    blocks: plan_reads(&device.points, limits),
                    freeze: vec![FreezeWatch::default(); device.points.len()],
                    health: Health::default(),
                    device,
                }
            })
            .collect();
        Self {
            config,
            devices,
            context: None,
            quiet_since: None,
            stats: LineStats::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn stats(&self) -> &LineStats {
        &self.stats
    }

    /// Read requests one full cycle of this line sends when every device answers.
    pub fn requests_per_cycle(&self) -> usize {
        self.devices.iter().map(|d| d.blocks.len()).sum()
    }

    /// Reads every device once, in order. A device backing off is not asked
    /// and reports `unreachable`.
    pub async fn poll(&mut self) -> Vec<Reading> {
        self.poll_raw()
            .await
            .into_iter()
            .map(|p| p.reading)
            .collect()
    }

    /// As [`LinePoller::poll`], with each point's raw number.
    pub async fn poll_raw(&mut self) -> Vec<Polled> {
        let before = self.stats.requests;
        let mut readings = Vec::new();
        for index in 0..self.devices.len() {
            let now = Instant::now();
            if !self.devices[index].health.due(now) {
                self.stats.skipped += 1;
                let error = PollError::Unreachable("skipped while backing off".into());
                readings.extend(failed(&self.devices[index].device, &error));
                continue;
            }
            let outcome = self.read_device(index).await;
            let reachable = !matches!(outcome, Err(PollError::Unreachable(_)));
            let (fail_cycles, backoff) = (
                self.config.fail_cycles,
                Duration::from_secs(self.config.backoff_secs),
            );
            let state = &mut self.devices[index];
            if state
                .health
                .record(reachable, Instant::now(), fail_cycles, backoff)
            {
                tracing::warn!(line = %self.config.name, device = %state.device.name, backoff_secs = backoff.as_secs(), "device unreachable for {fail_cycles} cycles; skipping it for a while");
            }
            match outcome {
                Ok(data) => readings.extend(decoded(state, &data)),
                Err(error) => {
                    tracing::debug!(line = %self.config.name, device = %state.device.name, error = %error, "device poll failed");
                    readings.extend(failed(&state.device, &error));
                }
            }
        }
        self.stats.last_cycle_requests = self.stats.requests - before;
        readings
    }

    async fn read_device(
        &mut self,
        index: usize,
    ) -> Result<Vec<(ReadBlock, BlockData)>, PollError> {
        let unit = self.devices[index].device.unit;
        let blocks = self.devices[index].blocks.clone();
        let mut out = Vec::with_capacity(blocks.len());
        for block in blocks {
            out.push((block, self.request(unit, block).await?));
        }
        Ok(out)
    }

    /// One read with the line's pacing, timeout and retries.
    async fn request(&mut self, unit: u8, block: ReadBlock) -> Result<BlockData, PollError> {
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let mut last_error = PollError::Unreachable("no attempt".into());
        for _attempt in 0..=self.config.retries {
            if self.context.is_none() {
                match connect(&self.config, timeout).await {
                    Ok(context) => self.context = Some(context),
                    Err(error) => {
                        // Nothing listens: no point retrying at once.
                        self.stats.transport_errors += 1;
                        return Err(error);
                    }
                }
            }
            if let Some(at) = self.next_frame_at() {
                tokio::time::sleep_until(at).await;
            }
            let Some(context) = self.context.as_mut() else {
                unreachable!("connected above");
            };
            context.set_slave(Slave(unit));
            self.stats.requests += 1;
            let answer = tokio::time::timeout(timeout, read(context, block)).await;
            self.quiet_since = Some(Instant::now());
            match answer {
                Ok(Ok(Ok(data))) if len(&data) >= usize::from(block.count) => return Ok(data),
                Ok(Ok(Ok(data))) => {
                    self.stats.transport_errors += 1;
                    last_error = PollError::Unreachable(format!(
                        "asked for {} values, got {}",
                        block.count,
                        len(&data)
                    ));
                }
                Ok(Ok(Err(code))) => {
                    self.stats.exceptions += 1;
                    return Err(PollError::Exception(code));
                }
                Ok(Err(error)) => {
                    self.stats.transport_errors += 1;
                    last_error = PollError::Unreachable(error.to_string());
                    self.context = None;
                }
                Err(_) => {
                    self.stats.timeouts += 1;
                    last_error = PollError::Unreachable(format!("no answer within {timeout:?}"));
                    // A late answer would be read as the next one: start clean.
                    self.context = None;
                }
            }
        }
        Err(last_error)
    }

    /// When the next frame may go: the silent interval (RTU framing) plus
    /// the configured turnaround after the line fell quiet.
    fn next_frame_at(&self) -> Option<Instant> {
        let mut gap = Duration::from_millis(self.config.turnaround_ms);
        if self.config.transport != Transport::Tcp {
            gap += silent_interval(self.config.baud);
        }
        self.quiet_since.map(|since| since + gap)
    }
}

fn len(data: &BlockData) -> usize {
    match data {
        BlockData::Registers(r) => r.len(),
        BlockData::Bits(b) => b.len(),
    }
}

async fn read(context: &mut Context, block: ReadBlock) -> tokio_modbus::Result<BlockData> {
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
}

async fn connect(config: &LineConfig, timeout: Duration) -> Result<Context, PollError> {
    let unreachable = |what: String| PollError::Unreachable(what);
    match config.transport {
        Transport::Tcp | Transport::RtuOverTcp => {
            let address = config.address.as_deref().unwrap_or_default();
            let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address))
                .await
                .map_err(|_| {
                    unreachable(format!("connect to {address} timed out after {timeout:?}"))
                })?
                .map_err(|e| unreachable(format!("connect to {address}: {e}")))?;
            let _ = stream.set_nodelay(true);
            Ok(if config.transport == Transport::Tcp {
                tcp::attach(stream)
            } else {
                rtu::attach(stream)
            })
        }
        Transport::Rtu => {
            let path = config.path.as_deref().unwrap_or(std::path::Path::new(""));
            let parity = match config.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            };
            let stop_bits = if config.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            };
            let port = tokio_serial::SerialStream::open(
                &tokio_serial::new(path.to_string_lossy(), config.baud)
                    .data_bits(tokio_serial::DataBits::Eight)
                    .parity(parity)
                    .stop_bits(stop_bits),
            )
            .map_err(|e| unreachable(format!("open {}: {e}", path.display())))?;
            Ok(rtu::attach(port))
        }
    }
}

fn decoded(state: &mut DeviceState, data: &[(ReadBlock, BlockData)]) -> Vec<Polled> {
    let ts = OffsetDateTime::now_utc();
    let now = Instant::now();
    let device = &state.device;
    device
        .points
        .iter()
        .zip(&mut state.freeze)
        .map(|(point, freeze)| {
            let Decoded { value, mut quality } = decode_point(point, data);
            if let Some(secs) = point.frozen_after_secs
                && freeze.is_frozen(value, now, Duration::from_secs(secs))
                && quality == Quality::Good
            {
                quality = Quality::Stale;
            }
            let reading = Reading {
                point: format!("{}.{}", device.name, point.name),
                ts,
                value: Some(value),
                unit: point.unit.clone(),
                quality,
                exception: None,
                clock: None,
            };
            Polled {
                reading,
                raw: Some(raw_value(point, data)),
            }
        })
        .collect()
}

fn failed(device: &DeviceConfig, error: &PollError) -> Vec<Polled> {
    let ts = OffsetDateTime::now_utc();
    let (quality, exception) = match error {
        PollError::Unreachable(_) => (Quality::Unreachable, None),
        PollError::Exception(code) => (Quality::Exception, Some(u8::from(*code))),
    };
    device
        .points
        .iter()
        .map(|point| Polled {
            reading: Reading {
                point: format!("{}.{}", device.name, point.name),
                ts,
                value: None,
                unit: point.unit.clone(),
                quality,
                exception,
                clock: None,
            },
            raw: None,
        })
        .collect()
}
