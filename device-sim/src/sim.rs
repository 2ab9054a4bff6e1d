//! Starting and stopping the simulator: listeners, the physics ticker, and
//! in-process control for tests and the demo.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval, interval_at};
use tokio_util::sync::CancellationToken;

use crate::comm::CommFault;
use crate::model::{BuildingModel, Fault};
use crate::options::SimOptions;
use crate::snapshot::BuildingSnapshot;
use crate::spec::BuildingSpec;
use crate::world::World;
use crate::{Error, control, server};

/// In-process control of running simulated buildings; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sim {
    world: Arc<World>,
}

/// One simulated building and where its Modbus TCP server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBuilding {
    /// Building id, as in its spec.
    pub id: String,
    /// Where its Modbus TCP server listens; units 1-5 answer there.
    pub modbus_addr: SocketAddr,
}

/// A running simulator. Dropping it aborts its tasks; cancel the shutdown
/// token and [`SimHandle::join`] to stop it cleanly.
#[derive(Debug)]
pub struct SimHandle {
    /// The buildings, in the order of the specs given to [`Sim::start`].
    pub buildings: Vec<SimBuilding>,
    /// Where the HTTP control interface listens.
    pub control_addr: SocketAddr,
    sim: Sim,
    tasks: JoinSet<()>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn modbus_addr(options: &SimOptions, index: usize) -> Result<SocketAddr, Error> {
    let port = match options.modbus_base_port {
        None => 0,
        Some(base) => u16::try_from(index)
            .ok()
            .and_then(|i| base.checked_add(i))
            .ok_or(Error::PortOverflow { base, index })?,
    };
    Ok(SocketAddr::new(options.modbus_host, port))
}

impl Sim {
    /// Binds one Modbus TCP listener per building on `modbus_host` (the OS
    /// picks the port, or `modbus_base_port + i`), the control interface on
    /// `control_listen`, and starts the physics ticker. Everything stops
    /// when `shutdown` is cancelled.
    pub async fn start(
        specs: Vec<BuildingSpec>,
        options: SimOptions,
        shutdown: CancellationToken,
    ) -> Result<SimHandle, Error> {
        if options.tick.is_zero() {
            return Err(Error::InvalidOptions(
                "tick must be longer than zero".into(),
            ));
        }
        let models = specs
            .into_iter()
            .map(|spec| BuildingModel::new(spec, &options))
            .collect::<Vec<_>>();
        let world = Arc::new(World::new(models)?);

        let mut listeners = Vec::new();
        let mut buildings = Vec::new();
        for index in 0..world.len() {
            let addr = modbus_addr(&options, index)?;
            let listener = bind(addr).await?;
            let modbus_addr = listener
                .local_addr()
                .map_err(|source| Error::Bind { addr, source })?;
            let id = world.id(index);
            buildings.push(SimBuilding { id, modbus_addr });
            listeners.push(listener);
        }
        let control = bind(options.control_listen).await?;
        let control_addr = control.local_addr().map_err(|source| Error::Bind {
            addr: options.control_listen,
            source,
        })?;

        let mut tasks = JoinSet::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            tasks.spawn(server::serve_building(
                listener,
                Arc::clone(&world),
                index,
                shutdown.clone(),
            ));
        }
        tasks.spawn(serve_control(control, Arc::clone(&world), shutdown.clone()));
        let ticks = interval_at(Instant::now() + options.tick, options.tick);
        tasks.spawn(tick(Arc::clone(&world), ticks, shutdown));
        tracing::info!(buildings = buildings.len(), control = %control_addr, "simulator started");

        Ok(SimHandle {
            buildings,
            control_addr,
            sim: Sim { world },
            tasks,
        })
    }

    /// Injects a fault into a building; logged at INFO.
    pub fn inject(&self, building_id: &str, fault: Fault) -> Result<(), Error> {
        self.world.inject(building_id, fault)
    }

    /// Clears every process fault of a building; communication faults stay
    /// until [`Sim::clear_comm`].
    pub fn clear(&self, building_id: &str) -> Result<(), Error> {
        self.world.clear(building_id)
    }

    /// Injects a communication fault into one unit of a building, or into
    /// every unit for `unit: None`; logged at INFO. Applies on every line
    /// the building is served on.
    pub fn inject_comm(
        &self,
        building_id: &str,
        unit: Option<u8>,
        fault: CommFault,
    ) -> Result<(), Error> {
        self.world.inject_comm(building_id, unit, fault)
    }

    /// Clears every communication fault of a building.
    pub fn clear_comm(&self, building_id: &str) -> Result<(), Error> {
        self.world.clear_comm(building_id)
    }

    pub(crate) fn world(&self) -> Arc<World> {
        Arc::clone(&self.world)
    }

    /// A building's state now, or `None` for an unknown id.
    pub fn snapshot(&self, building_id: &str) -> Option<BuildingSnapshot> {
        self.world.snapshot(building_id)
    }

    /// Every building's state now.
    pub fn snapshots(&self) -> Vec<BuildingSnapshot> {
        self.world.snapshots()
    }
}

/// A handle controls the simulator like a [`Sim`]: `inject`, `clear`,
/// `inject_comm`, `clear_comm`, `snapshot`, `snapshots`.
impl std::ops::Deref for SimHandle {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.sim
    }
}

impl SimHandle {
    /// A clonable controller for other tasks.
    pub fn sim(&self) -> Sim {
        self.sim.clone()
    }

    /// Waits for every task to finish; they do once the shutdown token is cancelled.
    pub async fn join(mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(error = %error, "simulator task failed");
            }
        }
    }
}

async fn serve_control(listener: TcpListener, world: Arc<World>, shutdown: CancellationToken) {
    let served = axum::serve(listener, control::router(world))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(error) = served {
        tracing::error!(error = %error, "control interface failed");
    }
}

/// Steps every building by one period per tick of `ticks`; under paused
/// time a test moves the physics on with `tokio::time::advance`.
async fn tick(world: Arc<World>, mut ticks: Interval, shutdown: CancellationToken) {
    let dt = ticks.period();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => world.step_all(dt),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(id: &str) -> BuildingSpec {
        BuildingSpec::example(id)
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticker_drains_a_tank_as_time_advances() {
        let shutdown = CancellationToken::new();
        let sim = Sim::start(
            vec![spec("A"), spec("B")],
            SimOptions::default(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        sim.inject(
            "A",
            Fault::DrainTank {
                to_level_m: Some(1.0),
            },
        )
        .unwrap();
        // Ten seconds of 100 ms ticks, each run by the ticker as it falls due.
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(100)).await;
            tokio::task::yield_now().await;
        }
        let level = sim.snapshot("A").unwrap().level_m;
        assert!((level - 1.9).abs() < 1e-6, "{level}");
        assert!((sim.snapshot("B").unwrap().level_m - 2.4).abs() < 1e-9);
        shutdown.cancel();
        sim.join().await;
    }

    #[tokio::test]
    async fn unknown_buildings_and_duplicate_ids_are_errors() {
        let shutdown = CancellationToken::new();
        let duplicate = Sim::start(
            vec![spec("A"), spec("A")],
            SimOptions::default(),
            shutdown.clone(),
        )
        .await;
        assert!(matches!(duplicate, Err(Error::DuplicateBuilding(id)) if id == "A"));

        let sim = Sim::start(vec![spec("A")], SimOptions::default(), shutdown.clone())
            .await
            .unwrap();
        assert!(matches!(
            sim.inject("Z", Fault::FireAlarm),
            Err(Error::UnknownBuilding(_))
        ));
        assert!(matches!(sim.clear("Z"), Err(Error::UnknownBuilding(_))));
        assert!(sim.snapshot("Z").is_none());
        shutdown.cancel();
        sim.join().await;
    }

    #[test]
    fn base_ports_count_up_and_may_not_overflow() {
        let options = SimOptions {
            modbus_base_port: Some(65_534),
            ..SimOptions::default()
        };
        assert_eq!(modbus_addr(&options, 1).unwrap().port(), 65_535);
        assert!(matches!(
            modbus_addr(&options, 2),
            Err(Error::PortOverflow { .. })
        ));
    }
}
