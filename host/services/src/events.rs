//! `containerd.services.events.v1.Events` over the exchange
//! (`host/core/src/events.rs`), and the [`Publisher`] through which the other
//! services announce each successful mutation.
//!
//! Events are containerd's: the topic (`/namespaces/create`, …) and the
//! message from containerd's `events/*.proto`, packed in an `Any` whose type
//! URL is the bare message name (`containerd.events.NamespaceCreate`), as
//! containerd's `typeurl` writes it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::{Message, Name};
use prost_types::Any;
use rcontainerd_api::events as ev;
use rcontainerd_api::services::events::{
    events_server, ForwardRequest, PublishRequest, SubscribeRequest,
};
use rcontainerd_api::services::images as image_events;
use rcontainerd_api::types;
use rcontainerd_core::events::{go_zero_time, Envelope, Exchange, Subscription};
use rcontainerd_core::ids::{EVENT_TYPE, EXCHANGE};
use rcontainerd_core::registry::{InitContext, Registration};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::Filter;
use tokio_stream::Stream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::convert::timestamp;
use crate::namespace;
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;

/// `message` in an `Any` named the way containerd names event types: the
/// message's full protobuf name, with no `type.googleapis.com/` prefix.
pub fn pack<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::full_name(),
        value: message.encode_to_vec(),
    }
}

/// Where a service announces its mutations: the daemon's exchange, or
/// nowhere when the exchange plugin is disabled — the service then works
/// the same, unheard.
#[derive(Clone, Default)]
pub struct Publisher(Option<Arc<Exchange>>);

impl Publisher {
    pub fn new(exchange: Arc<Exchange>) -> Self {
        Publisher(Some(exchange))
    }

    /// The exchange the registry provides, if its plugin is loaded. For a
    /// registration made `.with_optional(&[EVENT_TYPE])`.
    pub fn from_context(ctx: &InitContext<'_>) -> Self {
        match ctx.get::<Arc<Exchange>>(EXCHANGE) {
            Ok(exchange) => Publisher::new(exchange),
            Err(e) => {
                tracing::info!(plugin = ctx.uri, reason = %e.message, "publishing no events");
                Publisher(None)
            }
        }
    }

    /// Publishes `event` on `topic` for `namespace`. Never waits and never
    /// fails the call that made the change: the topics are ours and valid.
    pub fn publish<M: Message + Name>(&self, namespace: &str, topic: &str, event: &M) {
        let Some(exchange) = &self.0 else { return };
        if let Err(e) = exchange.publish(namespace, topic, Some(pack(event))) {
            tracing::warn!(topic, ns = namespace, error = %e.message, "event not published");
        }
    }
}

/// A registration for a gRPC service that publishes: it comes after the
/// exchange when there is one, and works without.
pub fn publishing(registration: Registration) -> Registration {
    registration.with_optional(&[EVENT_TYPE])
}

/// The envelope as the wire carries it.
fn to_wire(envelope: &Envelope) -> types::Envelope {
    types::Envelope {
        timestamp: Some(timestamp(envelope.timestamp)),
        namespace: envelope.namespace.clone(),
        topic: envelope.topic.clone(),
        event: envelope.event.clone(),
    }
}

/// A wire timestamp as a time; missing is Go's zero time, as containerd's
/// gogo types read it.
pub(crate) fn from_wire_time(ts: Option<prost_types::Timestamp>) -> SystemTime {
    let Some(ts) = ts else {
        return go_zero_time();
    };
    let nanos = Duration::from_nanos(ts.nanos.clamp(0, 999_999_999) as u64);
    let time = if ts.seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(ts.seconds.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(ts.seconds.unsigned_abs()))
    };
    // Out of the host's range: as good as unset.
    time.and_then(|t| t.checked_add(nanos))
        .unwrap_or_else(go_zero_time)
}

/// `event.<path>` of the events containerd 1.6 knows, with its generated
/// field names: string fields when set, `labels.<key>`, `runtime.name`,
/// `io.<field>`.
pub fn event_field(event: &Any, path: &[String]) -> Option<String> {
    fn decode<M: Message + Name + Default>(event: &Any) -> Option<M> {
        if event.type_url == M::full_name() {
            M::decode(event.value.as_slice()).ok()
        } else {
            None
        }
    }
    fn text(s: &str) -> Option<String> {
        (!s.is_empty()).then(|| s.to_string())
    }
    fn label(
        labels: &std::collections::HashMap<String, String>,
        rest: &[String],
    ) -> Option<String> {
        labels.get(&rest.join(".")).cloned()
    }
    let (first, rest) = path.split_first()?;
    let first = first.as_str();

    if let Some(e) = decode::<ev::ContainerCreate>(event) {
        return match first {
            "id" => text(&e.id),
            "image" => text(&e.image),
            "runtime" => match rest.first()?.as_str() {
                "name" => text(&e.runtime?.name),
                _ => None,
            },
            _ => None,
        };
    }
    if let Some(e) = decode::<ev::ContainerUpdate>(event) {
        return match first {
            "id" => text(&e.id),
            "image" => text(&e.image),
            "labels" => label(&e.labels, rest),
            "snapshot_key" => text(&e.snapshot_key),
            _ => None,
        };
    }
    if let Some(e) = decode::<ev::ContainerDelete>(event) {
        return (first == "id").then(|| text(&e.id)).flatten();
    }
    if let Some(e) = decode::<ev::ContentDelete>(event) {
        return (first == "digest").then(|| text(&e.digest)).flatten();
    }
    if let Some(e) = decode::<image_events::ImageCreate>(event) {
        return named(first, &e.name, &e.labels, rest);
    }
    if let Some(e) = decode::<image_events::ImageUpdate>(event) {
        return named(first, &e.name, &e.labels, rest);
    }
    if let Some(e) = decode::<image_events::ImageDelete>(event) {
        return (first == "name").then(|| text(&e.name)).flatten();
    }
    if let Some(e) = decode::<ev::NamespaceCreate>(event) {
        return named(first, &e.name, &e.labels, rest);
    }
    if let Some(e) = decode::<ev::NamespaceUpdate>(event) {
        return named(first, &e.name, &e.labels, rest);
    }
    if let Some(e) = decode::<ev::NamespaceDelete>(event) {
        return (first == "name").then(|| text(&e.name)).flatten();
    }
    if let Some(e) = decode::<ev::SnapshotPrepare>(event) {
        return match first {
            "key" => text(&e.key),
            "parent" => text(&e.parent),
            _ => None,
        };
    }
    if let Some(e) = decode::<ev::SnapshotCommit>(event) {
        return match first {
            "key" => text(&e.key),
            "name" => text(&e.name),
            _ => None,
        };
    }
    if let Some(e) = decode::<ev::SnapshotRemove>(event) {
        return (first == "key").then(|| text(&e.key)).flatten();
    }
    if let Some(e) = decode::<ev::TaskCreate>(event) {
        return match first {
            "container_id" => text(&e.container_id),
            "bundle" => text(&e.bundle),
            "checkpoint" => text(&e.checkpoint),
            "io" => {
                let io = e.io?;
                match rest.first()?.as_str() {
                    "stdin" => text(&io.stdin),
                    "stdout" => text(&io.stdout),
                    "stderr" => text(&io.stderr),
                    "terminal" => Some(io.terminal.to_string()),
                    _ => None,
                }
            }
            _ => None,
        };
    }
    if let Some(e) = decode::<ev::TaskDelete>(event) {
        return container_and(first, &e.container_id, "id", &e.id);
    }
    if let Some(e) = decode::<ev::TaskExit>(event) {
        return container_and(first, &e.container_id, "id", &e.id);
    }
    if let Some(e) = decode::<ev::TaskExecAdded>(event) {
        return container_and(first, &e.container_id, "exec_id", &e.exec_id);
    }
    if let Some(e) = decode::<ev::TaskExecStarted>(event) {
        return container_and(first, &e.container_id, "exec_id", &e.exec_id);
    }
    if let Some(e) = decode::<ev::TaskCheckpointed>(event) {
        return container_and(first, &e.container_id, "checkpoint", &e.checkpoint);
    }
    let container_id = decode::<ev::TaskStart>(event)
        .map(|e| e.container_id)
        .or_else(|| decode::<ev::TaskOom>(event).map(|e| e.container_id))
        .or_else(|| decode::<ev::TaskPaused>(event).map(|e| e.container_id))
        .or_else(|| decode::<ev::TaskResumed>(event).map(|e| e.container_id))?;
    (first == "container_id")
        .then(|| text(&container_id))
        .flatten()
}

fn named(
    first: &str,
    name: &str,
    labels: &std::collections::HashMap<String, String>,
    rest: &[String],
) -> Option<String> {
    match first {
        "name" => (!name.is_empty()).then(|| name.to_string()),
        "labels" => labels.get(&rest.join(".")).cloned(),
        _ => None,
    }
}

fn container_and(first: &str, container_id: &str, other: &str, value: &str) -> Option<String> {
    let value = match first {
        "container_id" => container_id,
        f if f == other => value,
        _ => return None,
    };
    (!value.is_empty()).then(|| value.to_string())
}

pub struct EventsService {
    exchange: Arc<Exchange>,
}

impl EventsService {
    pub fn new(exchange: Arc<Exchange>) -> Self {
        EventsService { exchange }
    }
}

/// A subscription as a gRPC response stream: envelopes, then — for a
/// subscriber that fell behind — ResourceExhausted with the count missed.
struct EnvelopeStream(Subscription);

impl Stream for EnvelopeStream {
    type Item = Result<types::Envelope, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next(cx).map(|next| {
            next.map(|item| match item {
                Ok(envelope) => Ok(to_wire(&envelope)),
                Err(lagged) => Err(Status::resource_exhausted(lagged.to_string())),
            })
        })
    }
}

#[tonic::async_trait]
impl events_server::Events for EventsService {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<()>, Status> {
        // containerd's Publish takes the namespace from the header; the
        // service sits outside the namespace interceptor, as containerd's
        // does, so Forward and Subscribe need none.
        let ns = namespace::from_metadata(request.metadata())
            .map_err(|e| e.context("failed publishing event").into_status())?;
        let r = request.into_inner();
        self.exchange
            .publish(&ns, &r.topic, r.event)
            .map_err(IntoStatus::into_status)?;
        Ok(Response::new(()))
    }

    async fn forward(&self, request: Request<ForwardRequest>) -> Result<Response<()>, Status> {
        let envelope = request.into_inner().envelope.unwrap_or_default();
        self.exchange
            .forward(Envelope {
                timestamp: from_wire_time(envelope.timestamp),
                namespace: envelope.namespace,
                topic: envelope.topic,
                event: envelope.event,
            })
            .map_err(IntoStatus::into_status)?;
        Ok(Response::new(()))
    }

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<BoxStream<types::Envelope>>, Status> {
        let filters = request.into_inner().filters;
        // containerd wraps the parse error twice and sends it unclassified.
        let filter = Filter::parse_all(&filters).map_err(|e| {
            Error::unknown(format!(
                "subscription error: failed parsing subscription filters: {}",
                e.wire_message()
            ))
            .into_status()
        })?;
        let subscription = self.exchange.subscribe(filter, Some(event_field));
        Ok(Response::new(Box::pin(EnvelopeStream(subscription))))
    }
}

/// `io.containerd.grpc.v1.events`: needs the exchange (without it, the
/// service answers Unavailable with the reason).
pub fn registration() -> Registration {
    service::registration::<events_server::EventsServer<EventsService>>(
        "events",
        &[EVENT_TYPE],
        |ctx| {
            let exchange = ctx.get::<Arc<Exchange>>(EXCHANGE)?;
            Ok(service::provide(EventsGrpc(exchange)))
        },
    )
}

struct EventsGrpc(Arc<Exchange>);

impl GrpcService for EventsGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        // Not namespaced: a subscriber sees every namespace unless it
        // filters, and Forward names its own.
        routes.add(events_server::EventsServer::new(EventsService::new(
            self.0.clone(),
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn events_are_packed_under_their_bare_names() {
        let any = pack(&ev::NamespaceCreate {
            name: "a".into(),
            labels: HashMap::new(),
        });
        assert_eq!(any.type_url, "containerd.events.NamespaceCreate");
        let any = pack(&image_events::ImageDelete { name: "i".into() });
        assert_eq!(any.type_url, "containerd.services.images.v1.ImageDelete");
        assert_eq!(
            ev::NamespaceCreate::decode(
                pack(&ev::NamespaceCreate {
                    name: "x".into(),
                    labels: HashMap::new()
                })
                .value
                .as_slice()
            )
            .unwrap()
            .name,
            "x"
        );
    }

    #[test]
    fn event_fields_follow_containerds_generated_names() {
        let create = pack(&ev::ContainerCreate {
            id: "c".into(),
            image: "img".into(),
            runtime: Some(ev::container_create::Runtime {
                name: "io.containerd.runc.v2".into(),
                options: None,
            }),
        });
        assert_eq!(event_field(&create, &path("id")), Some("c".into()));
        assert_eq!(
            event_field(&create, &path("runtime.name")),
            Some("io.containerd.runc.v2".into())
        );
        assert_eq!(event_field(&create, &path("runtime")), None);
        assert_eq!(event_field(&create, &path("labels.a")), None);

        let update = pack(&image_events::ImageUpdate {
            name: "n".into(),
            labels: [("a.b".to_string(), "x".to_string())].into(),
        });
        assert_eq!(event_field(&update, &path("labels.a.b")), Some("x".into()));
        assert_eq!(event_field(&update, &path("name")), Some("n".into()));

        let prepare = pack(&ev::SnapshotPrepare {
            key: "k".into(),
            parent: String::new(),
            snapshotter: String::new(),
        });
        assert_eq!(event_field(&prepare, &path("key")), Some("k".into()));
        // Unset strings are absent, as in containerd.
        assert_eq!(event_field(&prepare, &path("parent")), None);

        let exit = pack(&ev::TaskOom {
            container_id: "c1".into(),
        });
        assert_eq!(event_field(&exit, &path("container_id")), Some("c1".into()));

        let unknown = Any {
            type_url: "x.Unknown".into(),
            value: vec![],
        };
        assert_eq!(event_field(&unknown, &path("name")), None);
    }

    #[test]
    fn a_missing_forward_timestamp_is_gos_zero_time() {
        assert_eq!(from_wire_time(None), go_zero_time());
        assert_eq!(
            from_wire_time(Some(prost_types::Timestamp {
                seconds: -62_135_596_800,
                nanos: 0
            })),
            go_zero_time()
        );
        assert_eq!(
            from_wire_time(Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 5
            })),
            UNIX_EPOCH + Duration::from_nanos(5)
        );
        assert_eq!(
            from_wire_time(Some(prost_types::Timestamp {
                seconds: -1,
                nanos: 250_000_000
            })),
            UNIX_EPOCH - Duration::from_millis(750)
        );
    }
}
