//! How a simulated building is wired up: the gateway config that reads its
//! devices (the register map in [`crate::registers`]) and the registry entry
//! cloud-ingest judges it by. Used by the demo and the end-to-end tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use riser_gateway::config::{DataType, DeviceConfig, LineConfig, MqttConfig, PointConfig};
use riser_ingest::registry::{Building, PointMap, Tank, Use as RegistryUse};

use crate::{BuildingSpec, Use};

/// The one line of a simulated building: its Modbus TCP port, units 1-4
/// behind it like RS-485 slaves behind a serial device server.
const LINE: &str = "modbus";

/// The gateway id of a simulated building.
pub fn gateway_id(spec: &BuildingSpec) -> String {
    format!("gw-{}", spec.id)
}

fn point(name: &str, register: u16) -> PointConfig {
    PointConfig::new(name, register)
}

/// A QDY30A/PTMB-style RS-485 transmitter: value in register 4, decimals in 3.
fn transmitter(name: &str, unit_id: u8, unit: &str, range: [f64; 2]) -> DeviceConfig {
    DeviceConfig {
        points: vec![PointConfig {
            data_type: DataType::I16,
            decimals_register: Some(3),
            unit: Some(unit.into()),
            range: Some(range),
            ..point(name_of_value(name), 4)
        }],
        ..DeviceConfig::new(name, LINE, unit_id)
    }
}

fn name_of_value(device: &str) -> &'static str {
    if device == "tank" {
        "level"
    } else {
        "pressure"
    }
}

fn status_bits(name: &str, unit_id: u8, bits: &[(&str, u8)]) -> DeviceConfig {
    DeviceConfig {
        points: bits
            .iter()
            .map(|&(n, bit)| PointConfig {
                bit: Some(bit),
                event: true,
                ..point(n, 0)
            })
            .collect(),
        ..DeviceConfig::new(name, LINE, unit_id)
    }
}

/// The gateway config polling one simulated building at `modbus`.
pub fn gateway_config(
    spec: &BuildingSpec,
    modbus: SocketAddr,
    mqtt: MqttConfig,
    data_dir: PathBuf,
    poll_interval_ms: u64,
) -> riser_gateway::Config {
    let mut pumps = status_bits(
        "pumps",
        3,
        &[
            ("fire_running", 0),
            ("fire_fault", 1),
            ("fire_auto", 2),
            ("jockey_running", 3),
            ("jockey_fault", 4),
        ],
    );
    pumps.points.push(point("jockey_starts", 1));
    riser_gateway::Config {
        id: gateway_id(spec),
        data_dir,
        poll_interval_ms,
        mqtt,
        lines: vec![LineConfig::tcp(LINE, modbus.to_string())],
        devices: vec![
            transmitter("tank", 1, "m", [0.0, spec.tank_height_m]),
            transmitter("riser", 2, "MPa", [0.0, 1.6]),
            pumps,
            status_bits(
                "panel",
                4,
                &[
                    ("fire_alarm", 0),
                    ("fault", 1),
                    ("supervisory", 2),
                    ("disabled", 3),
                    ("mains_fault", 4),
                    ("backup_fault", 5),
                ],
            ),
        ],
    }
}

/// The registry entry cloud-ingest judges a simulated building by.
pub fn registry_building(spec: &BuildingSpec, district: &str, town: &str) -> Building {
    Building {
        id: spec.id.clone(),
        name: spec.name.clone(),
        district: district.into(),
        town: town.into(),
        community: String::new(),
        use_: match spec.use_ {
            Use::Residential => RegistryUse::Residential,
            Use::Public => RegistryUse::Public,
        },
        height_m: spec.height_m,
        storeys: spec.storeys,
        commercial_floor_over_1000m2: spec.commercial_floor_over_1000m2,
        class: None,
        tank: Tank {
            area_m2: spec.tank_area_m2,
            height_m: spec.tank_height_m,
            dead_level_m: spec.tank_dead_level_m,
        },
        jockey_pump: spec.jockey_pump,
        gateway: gateway_id(spec),
        points: PointMap::default(),
    }
}
