//! How a simulated building is wired up: the gateway config that reads its
//! devices (the register map in [`crate::registers`]) and the registry entry
//! cloud-ingest judges it by. Used by the demo and the end-to-end tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use riser_gateway::config::{ChannelConfig, DeviceConfig, LineConfig, MqttConfig};
use riser_ingest::registry::{Building, PointMap, Tank, Use as RegistryUse};

use crate::{BuildingSpec, Use};

/// The one line of a simulated building: its Modbus TCP port, units 1-4
/// behind it like RS-485 slaves behind a serial device server.
const LINE: &str = "modbus";

/// The gateway id of a simulated building.
pub fn gateway_id(spec: &BuildingSpec) -> String {
    format!("gw-{}", spec.id)
}

fn device(name: &str, unit: u8, profile: &str) -> DeviceConfig {
    DeviceConfig {
        profile: Some(profile.into()),
        ..DeviceConfig::new(name, LINE, unit)
    }
}

/// The gateway config polling one simulated building at `modbus`, built
/// from the gateway's device profiles, so the demo proves they match the
/// simulated devices.
pub fn gateway_config(
    spec: &BuildingSpec,
    modbus: SocketAddr,
    mqtt: MqttConfig,
    data_dir: PathBuf,
    poll_interval_ms: u64,
) -> riser_gateway::Config {
    let mut tank = device("tank", 1, "qdy30a-level");
    tank.channels.insert(
        "level".into(),
        ChannelConfig {
            range: Some([0.0, spec.tank_height_m]),
            ..ChannelConfig::default()
        },
    );
    let mut config = riser_gateway::Config {
        poll_interval_ms,
        mqtt,
        lines: vec![LineConfig::tcp(LINE, modbus.to_string())],
        devices: vec![
            tank,
            device("riser", 2, "ptmb-pressure"),
            device("pumps", 3, "pump-cabinet"),
            device("panel", 4, "fire-panel-modbus"),
        ],
        ..riser_gateway::Config::new(gateway_id(spec), data_dir)
    };
    config
        .resolve_profiles()
        .expect("the built-in profiles name these channels");
    config
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
        parties: Default::default(),
        address: None,
    }
}
