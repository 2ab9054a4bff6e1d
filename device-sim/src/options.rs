//! How the simulator runs: where it listens and how fast its physics move.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Simulator options; every field has a default (see [`SimOptions::default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Address the Modbus TCP listeners bind to.
    pub modbus_host: IpAddr,
    /// First Modbus TCP port (building i listens on base + i); `None` lets the OS choose.
    pub modbus_base_port: Option<u16>,
    /// Address of the HTTP control interface (port 0 lets the OS choose).
    pub control_listen: SocketAddr,
    /// How fast a drained tank falls, m/s.
    pub drain_rate_m_per_s: f64,
    /// How fast the float valve refills a tank, m/s.
    pub refill_rate_m_per_s: f64,
    /// Pressure at which the jockey pump starts, MPa.
    pub jockey_start_mpa: f64,
    /// Pressure at which the jockey pump stops, MPa (above `jockey_start_mpa`).
    pub jockey_stop_mpa: f64,
    /// How fast pumped pressure leaks away toward the column pressure, MPa/s.
    pub leak_mpa_per_s: f64,
    /// How fast a running jockey pump raises the pressure, MPa/s.
    pub jockey_rise_mpa_per_s: f64,
    /// Pressure left at the most unfavourable point under `pressure_loss`, MPa.
    pub residual_mpa: f64,
    /// Physics time step; the ticker advances every building by this much.
    pub tick: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            modbus_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            modbus_base_port: None,
            control_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            drain_rate_m_per_s: 0.05,
            refill_rate_m_per_s: 0.05,
            jockey_start_mpa: 0.20,
            jockey_stop_mpa: 0.25,
            // A tight system: the jockey pump restores 0.05 MPa about every
            // 17 minutes (a few starts an hour; more is a leak symptom).
            leak_mpa_per_s: 0.00005,
            jockey_rise_mpa_per_s: 0.01,
            residual_mpa: 0.02,
            tick: Duration::from_millis(100),
        }
    }
}
