//! One Modbus TCP server per building, on tokio-modbus's server stack; the
//! answers come from [`crate::registers::respond`].

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;

use crate::registers;
use crate::world::World;

/// Answers the requests of one connection to one building.
#[derive(Debug, Clone)]
struct BuildingService {
    world: Arc<World>,
    index: usize,
}

impl Service for BuildingService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let model = self.world.lock(self.index);
        let answer = registers::respond(&model, req.slave, &req.request);
        if let Err(exception) = &answer {
            tracing::debug!(
                building = %model.spec().id,
                unit = req.slave,
                request = ?req.request,
                exception = %exception,
                "modbus exception"
            );
        }
        ready(answer)
    }
}

/// Serves building `index` on `listener` until `shutdown` is cancelled.
pub(crate) async fn serve_building(
    listener: TcpListener,
    world: Arc<World>,
    index: usize,
    shutdown: CancellationToken,
) {
    let building = world.lock(index).spec().id.clone();
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        tracing::debug!(building = %building, %peer, "modbus client connected");
        let service = || {
            Ok(Some(BuildingService {
                world: Arc::clone(&world),
                index,
            }))
        };
        ready(accept_tcp_connection(stream, peer, |_| service()))
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
