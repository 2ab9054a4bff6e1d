//! What the control interface shows of a building: its physical state, the
//! bits its devices report and the faults in force, process and
//! communication.

use serde::{Deserialize, Serialize};

use crate::comm::UnitCommFault;
use crate::model::{BuildingModel, Fault, PanelStatus, PumpStatus};

/// A building's state at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildingSnapshot {
    /// Building id.
    pub id: String,
    /// Building name.
    pub name: String,
    /// Tank water level, m.
    pub level_m: f64,
    /// Water stored in the tank, m³.
    pub volume_m3: f64,
    /// Water above the dead level, m³.
    pub effective_volume_m3: f64,
    /// Pressure at the most unfavourable point, MPa.
    pub pressure_mpa: f64,
    /// The pump cabinet's bits and jockey start count.
    pub pumps: PumpStatus,
    /// The fire-alarm panel's bits.
    pub panel: PanelStatus,
    /// Faults in force.
    pub faults: Vec<Fault>,
    /// Communication faults in force, the one for every unit first.
    #[serde(default)]
    pub comm_faults: Vec<UnitCommFault>,
}

/// The model alone knows no communication faults: `comm_faults` is empty.
impl From<&BuildingModel> for BuildingSnapshot {
    fn from(model: &BuildingModel) -> Self {
        Self {
            id: model.spec().id.clone(),
            name: model.spec().name.clone(),
            level_m: model.level_m(),
            volume_m3: model.volume_m3(),
            effective_volume_m3: model.effective_volume_m3(),
            pressure_mpa: model.pressure_mpa(),
            pumps: model.pumps(),
            panel: model.panel(),
            faults: model.faults(),
            comm_faults: Vec::new(),
        }
    }
}
