//! The physics of one building: rooftop tank, float valve, water column,
//! jockey pump, pump cabinet and fire-alarm panel. Pure: no I/O, no clock;
//! time moves only through [`BuildingModel::step`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::options::SimOptions;
use crate::spec::BuildingSpec;

/// A fault injected at run time through the control interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Refill valve closed and the tank draining to `to_level_m`
    /// (default: half the dead level), where it stays.
    DrainTank {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_level_m: Option<f64>,
    },
    /// A closed riser valve or a broken pipe: the most unfavourable point
    /// falls to the residual pressure; a jockey pump runs without stopping.
    PressureLoss,
    /// Fire pump tripped: fault bit set, pump not running.
    PumpFault,
    /// Standby (备用) fire pump tripped.
    StandbyPumpFault,
    /// Fire pump cabinet left in manual.
    PumpManual,
    /// Jockey pump tripped: it neither runs nor keeps the pressure.
    JockeyFault,
    /// Fire-alarm panel reports a fault (故障).
    PanelFault,
    /// Fire-alarm panel points disabled (屏蔽).
    PanelDisabled,
    /// Fire alarm (火警); in auto, the panel starts the fire pump.
    FireAlarm,
    /// Mains power lost at the panel.
    PowerFault,
    /// The 4-20 mA loop of one analog-input channel (0-7, unit 5) is broken:
    /// the channel reads 0 µA.
    WireBreak { channel: u8 },
}

/// Channels of the analog-input module (unit 5).
pub const AI_CHANNELS: u8 = 8;

/// A fault that cannot be applied to this building.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("to_level_m must be between 0 and the tank height {tank_height_m} m, not {to_level_m}")]
    LevelOutOfRange { to_level_m: f64, tank_height_m: f64 },
    #[error("channel must be between 0 and {}, not {channel}", AI_CHANNELS - 1)]
    ChannelOutOfRange { channel: u8 },
}

/// The pump control cabinet as its status register shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PumpStatus {
    /// Fire pump running (started by the panel on a fire alarm, in auto).
    pub fire_running: bool,
    /// Fire pump tripped.
    pub fire_fault: bool,
    /// Fire pump cabinet in auto (手动/自动).
    pub fire_auto: bool,
    /// Standby fire pump running: it takes over when the duty pump trips.
    pub standby_running: bool,
    /// Standby fire pump tripped.
    pub standby_fault: bool,
    /// Standby fire pump in auto.
    pub standby_auto: bool,
    /// Jockey pump in auto.
    pub jockey_auto: bool,
    /// The building has a jockey pump.
    pub jockey_present: bool,
    /// Jockey pump running.
    pub jockey_running: bool,
    /// Jockey pump tripped.
    pub jockey_fault: bool,
    /// Jockey pump starts since the simulator started (wraps at 65536).
    pub jockey_starts: u16,
}

/// The fire-alarm control panel's state bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PanelStatus {
    /// 火警.
    pub fire_alarm: bool,
    /// 故障: a panel fault or a mains power fault.
    pub fault: bool,
    /// 监管: riser valve closed (pressure loss) or tank below its dead level.
    pub supervisory: bool,
    /// 屏蔽.
    pub disabled: bool,
    /// Mains power lost (主电故障).
    pub mains_fault: bool,
    /// Never set by the simulator.
    pub backup_fault: bool,
    /// 复位: shown for a few seconds after the panel was reset.
    pub reset: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    drain: f64,
    refill: f64,
    jockey_start: f64,
    jockey_stop: f64,
    leak: f64,
    rise: f64,
    residual: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct ActiveFaults {
    drain_to: Option<f64>,
    pressure_loss: bool,
    pump_fault: bool,
    standby_pump_fault: bool,
    pump_manual: bool,
    jockey_fault: bool,
    panel_fault: bool,
    panel_disabled: bool,
    fire_alarm: bool,
    power_fault: bool,
    /// Bit i set: analog-input channel i has a broken loop.
    wire_breaks: u8,
}

/// The state of one simulated building.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildingModel {
    spec: BuildingSpec,
    rates: Rates,
    level_m: f64,
    pumped_mpa: f64,
    jockey_running: bool,
    jockey_starts: u16,
    faults: ActiveFaults,
    /// Seconds the panel still shows "reset" (复位) after its alarms were cleared.
    reset_for_s: f64,
}

/// How long a fire panel shows "reset" after it was reset.
pub const PANEL_RESET_SECS: f64 = 3.0;

impl BuildingModel {
    /// A building with a full tank, the fire pump in auto and no faults.
    pub fn new(spec: BuildingSpec, options: &SimOptions) -> Self {
        let rates = Rates {
            drain: options.drain_rate_m_per_s,
            refill: options.refill_rate_m_per_s,
            jockey_start: options.jockey_start_mpa,
            jockey_stop: options.jockey_stop_mpa,
            leak: options.leak_mpa_per_s,
            rise: options.jockey_rise_mpa_per_s,
            residual: options.residual_mpa,
        };
        let level_m = spec.normal_level_m();
        let column = spec.column_pressure_mpa(level_m);
        let pumped_mpa = if spec.jockey_pump {
            column.max(rates.jockey_stop)
        } else {
            column
        };
        Self {
            spec,
            rates,
            level_m,
            pumped_mpa,
            jockey_running: false,
            jockey_starts: 0,
            faults: ActiveFaults::default(),
            reset_for_s: 0.0,
        }
    }

    pub fn spec(&self) -> &BuildingSpec {
        &self.spec
    }

    /// Applies a fault; injecting one already active replaces it.
    pub fn inject(&mut self, fault: Fault) -> Result<(), FaultError> {
        let f = &mut self.faults;
        match fault {
            Fault::DrainTank { to_level_m } => {
                let to = to_level_m.unwrap_or(self.spec.tank_dead_level_m * 0.5);
                if !(0.0..=self.spec.tank_height_m).contains(&to) {
                    return Err(FaultError::LevelOutOfRange {
                        to_level_m: to,
                        tank_height_m: self.spec.tank_height_m,
                    });
                }
                f.drain_to = Some(to);
            }
            Fault::PressureLoss => f.pressure_loss = true,
            Fault::PumpFault => f.pump_fault = true,
            Fault::StandbyPumpFault => f.standby_pump_fault = true,
            Fault::PumpManual => f.pump_manual = true,
            Fault::JockeyFault => f.jockey_fault = true,
            Fault::PanelFault => f.panel_fault = true,
            Fault::PanelDisabled => f.panel_disabled = true,
            Fault::FireAlarm => f.fire_alarm = true,
            Fault::PowerFault => f.power_fault = true,
            Fault::WireBreak { channel } => {
                if channel >= AI_CHANNELS {
                    return Err(FaultError::ChannelOutOfRange { channel });
                }
                f.wire_breaks |= 1 << channel;
            }
        }
        Ok(())
    }

    /// Removes every fault; the tank refills and the pressure recovers over
    /// the following steps.
    pub fn clear(&mut self) {
        let f = &self.faults;
        // Clearing a fire, fault or disablement is a panel reset (复位).
        if f.fire_alarm || f.panel_fault || f.panel_disabled || f.power_fault {
            self.reset_for_s = PANEL_RESET_SECS;
        }
        self.faults = ActiveFaults::default();
    }

    /// The active faults, in declaration order.
    pub fn faults(&self) -> Vec<Fault> {
        let f = &self.faults;
        let flags = [
            (f.pressure_loss, Fault::PressureLoss),
            (f.pump_fault, Fault::PumpFault),
            (f.standby_pump_fault, Fault::StandbyPumpFault),
            (f.pump_manual, Fault::PumpManual),
            (f.jockey_fault, Fault::JockeyFault),
            (f.panel_fault, Fault::PanelFault),
            (f.panel_disabled, Fault::PanelDisabled),
            (f.fire_alarm, Fault::FireAlarm),
            (f.power_fault, Fault::PowerFault),
        ];
        let drain = f.drain_to.map(|to| Fault::DrainTank {
            to_level_m: Some(to),
        });
        let breaks = (0..AI_CHANNELS)
            .filter(|channel| self.wire_broken(*channel))
            .map(|channel| Fault::WireBreak { channel });
        drain
            .into_iter()
            .chain(
                flags
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, fault)| fault),
            )
            .chain(breaks)
            .collect()
    }

    /// Whether the loop of analog-input `channel` is broken; `false` for a
    /// channel the module does not have.
    pub fn wire_broken(&self, channel: u8) -> bool {
        channel < AI_CHANNELS && self.faults.wire_breaks & (1 << channel) != 0
    }

    /// Advances the physics by `dt`.
    pub fn step(&mut self, dt: Duration) {
        let dt = dt.as_secs_f64();
        self.reset_for_s = (self.reset_for_s - dt).max(0.0);
        let r = self.rates;
        match self.faults.drain_to {
            Some(to) if self.level_m > to => self.level_m = (self.level_m - r.drain * dt).max(to),
            Some(_) => {}
            None => {
                let normal = self.spec.normal_level_m();
                if self.level_m < normal {
                    self.level_m = (self.level_m + r.refill * dt).min(normal);
                }
            }
        }

        let column = self.column_pressure_mpa();
        let jockey_available = self.spec.jockey_pump
            && !self.faults.jockey_fault
            && self.level_m > self.spec.tank_dead_level_m;
        if self.faults.pressure_loss {
            self.pumped_mpa = r.residual;
            self.set_jockey(jockey_available);
        } else if !jockey_available {
            self.set_jockey(false);
            self.pumped_mpa = (self.pumped_mpa - r.leak * dt).max(column);
        } else if self.jockey_running {
            self.pumped_mpa = (self.pumped_mpa.max(column) + r.rise * dt).min(r.jockey_stop);
            if self.pumped_mpa >= r.jockey_stop {
                self.set_jockey(false);
            }
        } else {
            self.pumped_mpa = (self.pumped_mpa - r.leak * dt).max(column);
            if self.pumped_mpa <= r.jockey_start {
                self.set_jockey(true);
            }
        }
    }

    fn set_jockey(&mut self, running: bool) {
        if running && !self.jockey_running {
            self.jockey_starts = self.jockey_starts.wrapping_add(1);
        }
        self.jockey_running = running;
    }

    /// Water level in the rooftop tank, m.
    pub fn level_m(&self) -> f64 {
        self.level_m
    }

    /// Water stored in the tank, m³.
    pub fn volume_m3(&self) -> f64 {
        self.spec.tank_area_m2 * self.level_m
    }

    /// Water that can be drawn: above the dead level, m³.
    pub fn effective_volume_m3(&self) -> f64 {
        self.spec.tank_area_m2 * (self.level_m - self.spec.tank_dead_level_m).max(0.0)
    }

    /// Static pressure of the water column alone at the most unfavourable point, MPa.
    pub fn column_pressure_mpa(&self) -> f64 {
        self.spec.column_pressure_mpa(self.level_m)
    }

    /// Pressure at the most unfavourable point as its transmitter reads it, MPa.
    pub fn pressure_mpa(&self) -> f64 {
        if self.faults.pressure_loss {
            self.rates.residual
        } else {
            self.column_pressure_mpa().max(self.pumped_mpa)
        }
    }

    pub fn pumps(&self) -> PumpStatus {
        let f = &self.faults;
        let fire_auto = !f.pump_manual;
        PumpStatus {
            fire_running: f.fire_alarm && fire_auto && !f.pump_fault,
            fire_fault: f.pump_fault,
            fire_auto,
            standby_running: f.fire_alarm && fire_auto && f.pump_fault && !f.standby_pump_fault,
            standby_fault: f.standby_pump_fault,
            standby_auto: fire_auto,
            jockey_auto: self.spec.jockey_pump && fire_auto,
            jockey_present: self.spec.jockey_pump,
            jockey_running: self.jockey_running,
            jockey_fault: self.spec.jockey_pump && f.jockey_fault,
            jockey_starts: self.jockey_starts,
        }
    }

    pub fn panel(&self) -> PanelStatus {
        let f = &self.faults;
        PanelStatus {
            fire_alarm: f.fire_alarm,
            fault: f.panel_fault || f.power_fault,
            supervisory: f.pressure_loss || self.level_m < self.spec.tank_dead_level_m,
            disabled: f.panel_disabled,
            mains_fault: f.power_fault,
            backup_fault: false,
            reset: self.reset_for_s > 0.0,
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
