//! The Modbus service of one building on tokio-modbus's server stack, and
//! its Modbus TCP server. The answers come from [`crate::registers`]
//! through [`crate::comm::CommFaults::reply`]; the service only carries
//! out the decision: silence, a delay, line time, corrupted bytes.

use std::future::{Future, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::Server;
use tokio_modbus::{ExceptionCode, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;

use crate::garble::{AfterNoise, Garbling};
use crate::wire::{LineTiming, rtu_exception_wire_time, rtu_wire_time};
use crate::world::World;

type Answer = Result<Option<Response>, ExceptionCode>;

/// Answers the requests of one connection (or one serial line) to one building.
#[derive(Debug, Clone)]
pub(crate) struct BuildingService {
    world: Arc<World>,
    index: usize,
    timing: LineTiming,
    /// Shared with the connection's [`Garbling`] writer.
    garble: Arc<AtomicBool>,
}

impl BuildingService {
    pub(crate) fn new(
        world: Arc<World>,
        index: usize,
        timing: LineTiming,
        garble: Arc<AtomicBool>,
    ) -> Self {
        Self {
            world,
            index,
            timing,
            garble,
        }
    }
}

impl Service for BuildingService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let (building, reply) = {
            let building = self.world.lock(self.index);
            let reply = building
                .comm
                .reply(&building.model, req.slave, &req.request);
            (building.model.spec().id.clone(), reply)
        };
        self.garble.store(reply.garble, Ordering::SeqCst);
        let line_time = match (self.timing.wire_baud, &reply.answer) {
            (Some(baud), Some(Ok(response))) => rtu_wire_time(&req.request, response, baud),
            (Some(baud), Some(Err(_))) => rtu_exception_wire_time(&req.request, baud),
            (None, _) | (_, None) => Duration::ZERO,
        };
        match &reply.answer {
            None => tracing::debug!(building = %building, unit = req.slave, "dead unit: no answer"),
            Some(Err(exception)) => tracing::debug!(
                building = %building,
                unit = req.slave,
                request = ?req.request,
                exception = %exception,
                "modbus exception"
            ),
            Some(Ok(_)) => {}
        }
        let delay = reply.delay + line_time;
        let answer = reply.answer;
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            answer.transpose()
        })
    }
}

/// Serves building `index` over Modbus TCP on `listener` until `shutdown`
/// is cancelled.
pub(crate) async fn serve_building(
    listener: TcpListener,
    world: Arc<World>,
    index: usize,
    shutdown: CancellationToken,
) {
    let building = world.id(index);
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        tracing::debug!(building = %building, %peer, "modbus client connected");
        let garble = Arc::new(AtomicBool::new(false));
        let service = BuildingService::new(
            Arc::clone(&world),
            index,
            LineTiming::default(),
            Arc::clone(&garble),
        );
        let transport = Garbling::new(stream, garble, AfterNoise::Close);
        ready(Ok(Some((service, transport))))
    };
    let on_process_error = {
        let building = building.clone();
        move |error: std::io::Error| {
            tracing::debug!(building = %building, error = %error, "modbus connection closed with an error");
        }
    };
    let served = Server::new(listener)
        .serve_until(&on_connected, on_process_error, shutdown.cancelled_owned())
        .await;
    match served {
        Ok(_) => tracing::debug!(building = %building, "modbus server stopped"),
        Err(error) => tracing::error!(building = %building, error = %error, "modbus server failed"),
    }
}

#[cfg(test)]
mod tests {
    use tokio_modbus::Request;

    use super::*;
    use crate::comm::CommFault;
    use crate::model::BuildingModel;
    use crate::options::SimOptions;
    use crate::registers::{PUMP_UNIT, TANK_UNIT};
    use crate::spec::BuildingSpec;
    use crate::wire::rtu_wire_time;

    fn service(wire_baud: Option<u32>) -> (Arc<World>, BuildingService, Arc<AtomicBool>) {
        let model = BuildingModel::new(BuildingSpec::example("S-1"), &SimOptions::default());
        let world = Arc::new(World::new(vec![model]).unwrap());
        let garble = Arc::new(AtomicBool::new(false));
        let timing = LineTiming { wire_baud };
        let service = BuildingService::new(Arc::clone(&world), 0, timing, Arc::clone(&garble));
        (world, service, garble)
    }

    fn read(slave: u8) -> SlaveRequest<'static> {
        SlaveRequest {
            slave,
            request: Request::ReadHoldingRegisters(4, 1),
        }
    }

    /// Lets `answer` run until it would wait for the clock.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_held_for_the_wire_time_of_request_and_response() {
        let (_, service, _) = service(Some(9600));
        let wire = rtu_wire_time(
            &Request::ReadHoldingRegisters(4, 1),
            &Response::ReadHoldingRegisters(vec![0]),
            9600,
        );
        let answer = tokio::spawn(service.call(read(TANK_UNIT)));
        settle().await;
        tokio::time::advance(wire - Duration::from_micros(1)).await;
        settle().await;
        assert!(!answer.is_finished(), "answered before the line time");
        tokio::time::advance(Duration::from_micros(1)).await;
        let answer = answer.await.unwrap();
        assert_eq!(answer, Ok(Some(Response::ReadHoldingRegisters(vec![2400]))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_unit_answers_after_its_delay() {
        let (world, service, _) = service(None);
        let slow = CommFault::Slow { delay_ms: 500 };
        world.inject_comm("S-1", Some(TANK_UNIT), slow).unwrap();
        let answer = tokio::spawn(service.call(read(TANK_UNIT)));
        settle().await;
        tokio::time::advance(Duration::from_millis(499)).await;
        settle().await;
        assert!(!answer.is_finished());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(answer.await.unwrap().unwrap().is_some());
    }

    #[tokio::test]
    async fn a_dead_unit_is_answered_with_nothing_at_once() {
        let (world, service, _) = service(Some(9600));
        world
            .inject_comm("S-1", Some(PUMP_UNIT), CommFault::Dead)
            .unwrap();
        assert_eq!(service.call(read(PUMP_UNIT)).await, Ok(None));
    }

    #[tokio::test]
    async fn the_garbage_flag_follows_the_unit_of_each_request() {
        let (world, service, garble) = service(None);
        world
            .inject_comm("S-1", Some(TANK_UNIT), CommFault::Garbage)
            .unwrap();
        assert!(service.call(read(TANK_UNIT)).await.is_ok());
        assert!(garble.load(Ordering::SeqCst));
        // An exception: the pump cabinet has no register 4.
        assert!(service.call(read(PUMP_UNIT)).await.is_err());
        assert!(!garble.load(Ordering::SeqCst));
    }
}
