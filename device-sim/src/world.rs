//! The models of all simulated buildings, shared by the ticker, the Modbus
//! servers and the control interface. One lock per building: a Modbus read
//! of one building never waits for another. No lock is held across an await.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::Error;
use crate::model::{BuildingModel, Fault};
use crate::snapshot::BuildingSnapshot;

#[derive(Debug)]
pub(crate) struct World {
    buildings: Vec<Mutex<BuildingModel>>,
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
            buildings: models.into_iter().map(Mutex::new).collect(),
            index,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.buildings.len()
    }

    /// The model at `index`. A panic elsewhere while holding the lock leaves
    /// a model that is still consistent (every update is a plain assignment).
    pub(crate) fn lock(&self, index: usize) -> MutexGuard<'_, BuildingModel> {
        self.buildings[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_id(&self, id: &str) -> Result<MutexGuard<'_, BuildingModel>, Error> {
        let index = self
            .index
            .get(id)
            .ok_or_else(|| Error::UnknownBuilding(id.to_owned()))?;
        Ok(self.lock(*index))
    }

    pub(crate) fn step_all(&self, dt: Duration) {
        for i in 0..self.buildings.len() {
            self.lock(i).step(dt);
        }
    }

    pub(crate) fn inject(&self, id: &str, fault: Fault) -> Result<(), Error> {
        self.lock_id(id)?
            .inject(fault.clone())
            .map_err(|source| Error::Fault {
                building: id.to_owned(),
                source,
            })?;
        tracing::info!(building = %id, fault = ?fault, "fault injected");
        Ok(())
    }

    pub(crate) fn clear(&self, id: &str) -> Result<(), Error> {
        self.lock_id(id)?.clear();
        tracing::info!(building = %id, "faults cleared");
        Ok(())
    }

    pub(crate) fn snapshot(&self, id: &str) -> Option<BuildingSnapshot> {
        self.lock_id(id)
            .ok()
            .map(|model| BuildingSnapshot::from(&*model))
    }

    pub(crate) fn snapshots(&self) -> Vec<BuildingSnapshot> {
        (0..self.buildings.len())
            .map(|i| BuildingSnapshot::from(&*self.lock(i)))
            .collect()
    }
}
