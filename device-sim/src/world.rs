//! The models of all simulated buildings and their communication faults,
//! shared by the ticker, the Modbus servers and the control interface. One
//! lock per building: a Modbus read of one building never waits for
//! another. No lock is held across an await.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::Error;
use crate::comm::{CommFault, CommFaults};
use crate::model::{BuildingModel, Fault};
use crate::snapshot::BuildingSnapshot;

/// One building: its physics and the state of its line.
#[derive(Debug)]
pub(crate) struct Building {
    pub(crate) model: BuildingModel,
    pub(crate) comm: CommFaults,
}

impl Building {
    fn snapshot(&self) -> BuildingSnapshot {
        BuildingSnapshot {
            comm_faults: self.comm.list(),
            ..BuildingSnapshot::from(&self.model)
        }
    }
}

#[derive(Debug)]
pub(crate) struct World {
    buildings: Vec<Mutex<Building>>,
    index: HashMap<String, usize>,
}

impl World {
    pub(crate) fn new(models: Vec<BuildingModel>) -> Result<Self, Error> {
        let mut index = HashMap::with_capacity(models.len());
        for (i, model) in models.iter().enumerate() {
            if index.insert(model.spec().id.clone(), i).is_some() {
                return Err(Error::DuplicateBuilding(model.spec().id.clone()));
            }
        }
        Ok(Self {
            buildings: models
                .into_iter()
                .map(|model| {
                    Mutex::new(Building {
                        model,
                        comm: CommFaults::default(),
                    })
                })
                .collect(),
            index,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.buildings.len()
    }

    /// The building at `index`. A panic elsewhere while holding the lock
    /// leaves a building that is still consistent (every update is a plain
    /// assignment).
    pub(crate) fn lock(&self, index: usize) -> MutexGuard<'_, Building> {
        self.buildings[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The index of building `id`.
    pub(crate) fn index_of(&self, id: &str) -> Result<usize, Error> {
        self.index
            .get(id)
            .copied()
            .ok_or_else(|| Error::UnknownBuilding(id.to_owned()))
    }

    /// The id of the building at `index`.
    pub(crate) fn id(&self, index: usize) -> String {
        self.lock(index).model.spec().id.clone()
    }

    fn lock_id(&self, id: &str) -> Result<MutexGuard<'_, Building>, Error> {
        Ok(self.lock(self.index_of(id)?))
    }

    pub(crate) fn step_all(&self, dt: Duration) {
        for i in 0..self.buildings.len() {
            self.lock(i).model.step(dt);
        }
    }

    pub(crate) fn inject(&self, id: &str, fault: Fault) -> Result<(), Error> {
        self.lock_id(id)?
            .model
            .inject(fault.clone())
            .map_err(|source| Error::Fault {
                building: id.to_owned(),
                source,
            })?;
        tracing::info!(building = %id, fault = ?fault, "fault injected");
        Ok(())
    }

    pub(crate) fn clear(&self, id: &str) -> Result<(), Error> {
        self.lock_id(id)?.model.clear();
        tracing::info!(building = %id, "faults cleared");
        Ok(())
    }

    pub(crate) fn inject_comm(
        &self,
        id: &str,
        unit: Option<u8>,
        fault: CommFault,
    ) -> Result<(), Error> {
        let mut building = self.lock_id(id)?;
        let Building { model, comm } = &mut *building;
        comm.inject(unit, fault.clone(), model)
            .map_err(|source| Error::CommFault {
                building: id.to_owned(),
                source,
            })?;
        tracing::info!(building = %id, unit = ?unit, fault = ?fault, "communication fault injected");
        Ok(())
    }

    pub(crate) fn clear_comm(&self, id: &str) -> Result<(), Error> {
        self.lock_id(id)?.comm.clear();
        tracing::info!(building = %id, "communication faults cleared");
        Ok(())
    }

    pub(crate) fn snapshot(&self, id: &str) -> Option<BuildingSnapshot> {
        self.lock_id(id).ok().map(|building| building.snapshot())
    }

    pub(crate) fn snapshots(&self) -> Vec<BuildingSnapshot> {
        (0..self.buildings.len())
            .map(|i| self.lock(i).snapshot())
            .collect()
    }
}
