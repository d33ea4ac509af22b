//! The daemon's ttrpc endpoint (`[ttrpc] address`, by default `<grpc address>.ttrpc`): where
//! shims forward their events (`containerd.services.events.ttrpc.v1.Events/Forward`, the
//! address they get in `TTRPC_ADDRESS`). A forwarded envelope goes onto the event exchange
//! unchanged — topic, namespace and the event's bare type URL — and a `/tasks/exit` also into
//! the tasks' exit table, which answers `Tasks.Wait`.

use std::sync::Arc;

use rcontainerd_api::ttrpc::events::{ForwardRequest, SERVICE};
use rcontainerd_core::events::{Envelope, Exchange};
use rcontainerd_core::ids::{EXCHANGE, TASKS_SERVICE};
use rcontainerd_core::registry::Registry;
use rcontainerd_core::tasks::Tasks;
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_ttrpc::{Server, Status};
use tokio::net::UnixListener;

use crate::events::from_wire_time;
use crate::status::IntoStatus;
use crate::tasks::decode_exit;

fn ttrpc_status(e: Error) -> Status {
    let status = e.into_status();
    Status::new(status.code() as i32, status.message())
}

/// Where forwarded events go.
#[derive(Clone)]
struct Sink {
    exchange: Arc<Exchange>,
    tasks: Option<Arc<Tasks>>,
}

impl Sink {
    fn forward(&self, request: ForwardRequest) -> Result<()> {
        let envelope = request.envelope.unwrap_or_default();
        let exit = envelope
            .event
            .as_ref()
            .and_then(|e| decode_exit(&envelope.namespace, &envelope.topic, e));
        let envelope = Envelope {
            timestamp: from_wire_time(envelope.timestamp),
            namespace: envelope.namespace,
            topic: envelope.topic,
            event: envelope.event,
        };
        match &self.tasks {
            Some(tasks) => tasks.receive(envelope, exit),
            None => self.exchange.forward(envelope),
        }
    }
}

/// Serves the ttrpc endpoint on `listener` until `shutdown` resolves. Without the event
/// exchange there is nothing to serve and it returns at once.
pub async fn serve(
    registry: &Registry,
    listener: UnixListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let Ok(exchange) = registry.get::<Arc<Exchange>>(EXCHANGE) else {
        return Ok(());
    };
    let sink = Sink {
        exchange,
        tasks: registry.get::<Arc<Tasks>>(TASKS_SERVICE).ok(),
    };
    let mut server = Server::new();
    server.register_message(SERVICE, "Forward", move |request: ForwardRequest, _| {
        let sink = sink.clone();
        async move { sink.forward(request).map_err(ttrpc_status) }
    });
    server
        .serve(listener, shutdown)
        .await
        .map_err(|e| Error::internal(format!("ttrpc server: {e}")))
}
