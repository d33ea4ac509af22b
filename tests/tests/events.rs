//! Events against the real daemon: every mutation announced with containerd's topic, namespace,
//! type URL and payload; Subscribe filters; Publish, Forward and Subscribe refusing bad input with
//! containerd's codes and messages; a subscriber that falls behind cut off with the count it
//! missed while publishers carry on; a daemon without the exchange still serving; and `ctr events`
//! of both ctrs printing the same lines for the same mutations.
//!
//! The daemons run without the garbage collector: the blobs and snapshots here are held by
//! nothing, and a collection between a write and its deletion would change which events occur.

use std::collections::HashMap;
use std::time::Duration;

use prost::{Message, Name};
use rcontainerd_api::client::namespaced;
use rcontainerd_api::events as ev;
use rcontainerd_api::services::containers::containers_client::ContainersClient;
use rcontainerd_api::services::containers::{
    container, Container, CreateContainerRequest, DeleteContainerRequest, UpdateContainerRequest,
};
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{DeleteContentRequest, WriteAction, WriteContentRequest};
use rcontainerd_api::services::events::events_client::EventsClient;
use rcontainerd_api::services::events::{ForwardRequest, PublishRequest, SubscribeRequest};
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::{
    self as image_events, CreateImageRequest, DeleteImageRequest, Image, UpdateImageRequest,
};
use rcontainerd_api::services::namespaces::{
    CreateNamespaceRequest, DeleteNamespaceRequest, Namespace, UpdateNamespaceRequest,
};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};
use rcontainerd_api::types::{Descriptor, Envelope};
use rcontainerd_tests::{labels, within, Ctr, Daemon, DaemonOptions};
use tonic::{Code, Request, Streaming};

const NS: &str = "evns";
const SNAPSHOTTER: &str = "native";
const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const STEP: Duration = Duration::from_secs(20);

fn in_ns<T>(message: T) -> Request<T> {
    namespaced(message, NS)
}

fn events(daemon: &Daemon) -> EventsClient<tonic::transport::Channel> {
    EventsClient::new(daemon.channel())
}

async fn subscribe(daemon: &Daemon, filters: &[&str]) -> Streaming<Envelope> {
    let filters = filters.iter().map(|f| f.to_string()).collect();
    events(daemon)
        .subscribe(SubscribeRequest { filters })
        .await
        .unwrap_or_else(|s| panic!("Subscribe: {s}"))
        .into_inner()
}

async fn next(stream: &mut Streaming<Envelope>) -> Envelope {
    within(STEP, "the next event", stream.message())
        .await
        .unwrap_or_else(|s| panic!("event stream failed: {s}"))
        .expect("event stream ended")
}

/// The next envelope: its namespace, topic and event decoded as `M`, whose bare protobuf name
/// must be the type URL.
async fn expect<M: Message + Name + Default>(
    stream: &mut Streaming<Envelope>,
) -> (String, String, M) {
    let envelope = next(stream).await;
    let event = envelope.event.expect("an event in the envelope");
    assert_eq!(event.type_url, M::full_name(), "topic {}", envelope.topic);
    let decoded = M::decode(event.value.as_slice()).expect("decodable event");
    assert!(envelope.timestamp.is_some());
    (envelope.namespace, envelope.topic, decoded)
}

fn ns(name: &str, pairs: &[(&str, &str)]) -> Option<Namespace> {
    Some(Namespace {
        name: name.into(),
        labels: labels(pairs),
    })
}

fn image(name: &str) -> Image {
    Image {
        name: name.into(),
        labels: labels(&[("a", "1")]),
        target: Some(Descriptor {
            media_type: INDEX.into(),
            digest: DIGEST.into(),
            size: 100,
            annotations: HashMap::new(),
        }),
        ..Default::default()
    }
}

fn runc_options() -> prost_types::Any {
    prost_types::Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: vec![0x0a, 0x01, 0x78],
    }
}

fn container(id: &str) -> Container {
    Container {
        id: id.into(),
        image: "docker.io/library/x:1".into(),
        runtime: Some(container::Runtime {
            name: "io.containerd.runc.v2".into(),
            options: Some(runc_options()),
        }),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: br#"{"ociVersion":"1.0.2"}"#.to_vec(),
        }),
        ..Default::default()
    }
}

async fn write_blob(daemon: &Daemon, data: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(data));
    let write = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: "blob-1".into(),
        total: data.len() as i64,
        expected: digest.clone(),
        data: data.to_vec().into(),
        ..Default::default()
    };
    let mut responses = ContentClient::new(daemon.channel())
        .write(in_ns(tokio_stream::iter([write])))
        .await
        .unwrap()
        .into_inner();
    while within(STEP, "a Write stream", responses.message())
        .await
        .unwrap()
        .is_some()
    {}
    digest
}

fn labels_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    labels(pairs)
}

/// `message` in an `Any` under its bare name, as containerd packs events.
fn pack<M: Message + Name>(message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: M::full_name(),
        value: message.encode_to_vec(),
    }
}

#[tokio::test]
async fn every_mutation_is_announced_with_containerds_topic_namespace_and_payload() {
    let daemon = Daemon::start_without_gc().await;
    let mut all = subscribe(&daemon, &[]).await;
    let mut namespaces = daemon.namespaces();

    // Namespaces: in the caller's namespace, with the request's labels.
    namespaces
        .create(namespaced(
            CreateNamespaceRequest {
                namespace: ns(NS, &[("a", "1")]),
            },
            "default",
        ))
        .await
        .unwrap();
    let (ns_, topic, e) = expect::<ev::NamespaceCreate>(&mut all).await;
    assert_eq!(
        (ns_.as_str(), topic.as_str()),
        ("default", "/namespaces/create")
    );
    assert_eq!((e.name.as_str(), e.labels), (NS, labels_of(&[("a", "1")])));

    namespaces
        .update(namespaced(
            UpdateNamespaceRequest {
                namespace: ns(NS, &[("b", "2")]),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["labels.b".into()],
                }),
            },
            "default",
        ))
        .await
        .unwrap();
    let (ns_, topic, e) = expect::<ev::NamespaceUpdate>(&mut all).await;
    assert_eq!(
        (ns_.as_str(), topic.as_str()),
        ("default", "/namespaces/update")
    );
    // The request's labels, not the stored set (containerd's choice).
    assert_eq!((e.name.as_str(), e.labels), (NS, labels_of(&[("b", "2")])));

    // A caller without a namespace: the event is in the namespace it made.
    namespaces
        .create(CreateNamespaceRequest {
            namespace: ns("bare", &[]),
        })
        .await
        .unwrap();
    let (ns_, topic, e) = expect::<ev::NamespaceCreate>(&mut all).await;
    assert_eq!(
        (ns_.as_str(), topic.as_str(), e.name.as_str()),
        ("bare", "/namespaces/create", "bare")
    );

    // Snapshots: prepare, commit, remove, as containerd 1.6 (no snapshotter name); view is not
    // announced.
    let mut snapshots = SnapshotsClient::new(daemon.channel());
    let prepare = |key: &str, parent: &str| PrepareSnapshotRequest {
        snapshotter: SNAPSHOTTER.into(),
        key: key.into(),
        parent: parent.into(),
        labels: HashMap::new(),
    };
    snapshots.prepare(in_ns(prepare("k1", ""))).await.unwrap();
    let (ns_, topic, e) = expect::<ev::SnapshotPrepare>(&mut all).await;
    assert_eq!((ns_.as_str(), topic.as_str()), (NS, "/snapshot/prepare"));
    assert_eq!(
        e,
        ev::SnapshotPrepare {
            key: "k1".into(),
            ..Default::default()
        }
    );
    snapshots
        .commit(in_ns(CommitSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            name: "n1".into(),
            key: "k1".into(),
            labels: HashMap::new(),
        }))
        .await
        .unwrap();
    let (_, topic, e) = expect::<ev::SnapshotCommit>(&mut all).await;
    assert_eq!(topic, "/snapshot/commit");
    assert_eq!((e.key.as_str(), e.name.as_str()), ("k1", "n1"));
    snapshots.prepare(in_ns(prepare("k2", "n1"))).await.unwrap();
    let (_, _, e) = expect::<ev::SnapshotPrepare>(&mut all).await;
    assert_eq!((e.key.as_str(), e.parent.as_str()), ("k2", "n1"));
    // A failed call announces nothing: the next event is the next success.
    let status = snapshots
        .prepare(in_ns(prepare("k2", "n1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    for key in ["k2", "n1"] {
        snapshots
            .remove(in_ns(RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
            }))
            .await
            .unwrap();
        let (ns_, topic, e) = expect::<ev::SnapshotRemove>(&mut all).await;
        assert_eq!((ns_.as_str(), topic.as_str()), (NS, "/snapshot/remove"));
        assert_eq!(e.key, key);
    }

    // Content: delete is announced, the commit is not.
    let digest = write_blob(&daemon, b"announced bytes").await;
    ContentClient::new(daemon.channel())
        .delete(in_ns(DeleteContentRequest {
            digest: digest.clone(),
        }))
        .await
        .unwrap();
    let (ns_, topic, e) = expect::<ev::ContentDelete>(&mut all).await;
    assert_eq!((ns_.as_str(), topic.as_str()), (NS, "/content/delete"));
    assert_eq!(e.digest, digest);

    // Images: the stored name and labels; the type URL is in the images service's package.
    let mut images = ImagesClient::new(daemon.channel());
    images
        .create(in_ns(CreateImageRequest {
            image: Some(image("img")),
            source_date_epoch: None,
        }))
        .await
        .unwrap();
    let (ns_, topic, e) = expect::<image_events::ImageCreate>(&mut all).await;
    assert_eq!((ns_.as_str(), topic.as_str()), (NS, "/images/create"));
    assert_eq!(
        (e.name.as_str(), e.labels),
        ("img", labels_of(&[("a", "1")]))
    );
    let status = images
        .create(in_ns(CreateImageRequest {
            image: Some(image("img")),
            source_date_epoch: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    images
        .update(in_ns(UpdateImageRequest {
            image: Some(Image {
                labels: labels(&[("b", "2")]),
                ..image("img")
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels.b".into()],
            }),
            source_date_epoch: None,
        }))
        .await
        .unwrap();
    let (_, topic, e) = expect::<image_events::ImageUpdate>(&mut all).await;
    assert_eq!(topic, "/images/update");
    assert_eq!(e.labels, labels_of(&[("a", "1"), ("b", "2")]));
    images
        .delete(in_ns(DeleteImageRequest {
            name: "img".into(),
            sync: false,
            target: None,
        }))
        .await
        .unwrap();
    let (_, topic, e) = expect::<image_events::ImageDelete>(&mut all).await;
    assert_eq!((topic.as_str(), e.name.as_str()), ("/images/delete", "img"));

    // Containers: id, image, runtime with its options; then the stored update.
    let mut containers = ContainersClient::new(daemon.channel());
    containers
        .create(in_ns(CreateContainerRequest {
            container: Some(container("c1")),
        }))
        .await
        .unwrap();
    let (ns_, topic, e) = expect::<ev::ContainerCreate>(&mut all).await;
    assert_eq!((ns_.as_str(), topic.as_str()), (NS, "/containers/create"));
    assert_eq!(
        e,
        ev::ContainerCreate {
            id: "c1".into(),
            image: "docker.io/library/x:1".into(),
            runtime: Some(ev::container_create::Runtime {
                name: "io.containerd.runc.v2".into(),
                options: Some(runc_options()),
            }),
        }
    );
    containers
        .update(in_ns(UpdateContainerRequest {
            container: Some(Container {
                labels: labels(&[("x", "y")]),
                snapshot_key: "ignored".into(),
                ..container("c1")
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels.x".into()],
            }),
        }))
        .await
        .unwrap();
    let (_, topic, e) = expect::<ev::ContainerUpdate>(&mut all).await;
    assert_eq!(topic, "/containers/update");
    assert_eq!(
        e,
        ev::ContainerUpdate {
            id: "c1".into(),
            image: "docker.io/library/x:1".into(),
            labels: labels_of(&[("x", "y")]),
            snapshot_key: String::new(),
        }
    );
    containers
        .delete(in_ns(DeleteContainerRequest { id: "c1".into() }))
        .await
        .unwrap();
    let (_, topic, e) = expect::<ev::ContainerDelete>(&mut all).await;
    assert_eq!(
        (topic.as_str(), e.id.as_str()),
        ("/containers/delete", "c1")
    );

    // A namespace's deletion is announced in that namespace.
    namespaces
        .delete(namespaced(
            DeleteNamespaceRequest {
                name: "bare".into(),
            },
            "default",
        ))
        .await
        .unwrap();
    let (ns_, topic, e) = expect::<ev::NamespaceDelete>(&mut all).await;
    assert_eq!(
        (ns_.as_str(), topic.as_str(), e.name.as_str()),
        ("bare", "/namespaces/delete", "bare")
    );
}

/// What a subscriber with `filters` (plus the end marker) got for a fixed sequence of publishes.
#[tokio::test]
async fn subscribers_get_what_their_filters_select() {
    let daemon = Daemon::start_without_gc().await;
    const END: &str = r#"topic=="/test/end""#;
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![],
            vec!["/a/one", "/b/two", "/a/three", "/images/create"],
        ),
        (vec![r#"topic=="/b/two""#], vec!["/b/two"]),
        (vec!["topic~=^/a/"], vec!["/a/one", "/a/three"]),
        (vec!["namespace==other"], vec!["/a/three"]),
        (
            vec!["namespace==other", r#"topic=="/b/two""#],
            vec!["/b/two", "/a/three"],
        ),
        (vec![r#"namespace==default,topic~=^/a/"#], vec!["/a/one"]),
        (vec!["event.name==web"], vec!["/b/two", "/images/create"]),
        (vec!["event.labels.tier==front"], vec!["/images/create"]),
        (vec!["event.name"], vec!["/b/two", "/images/create"]),
    ];
    let mut streams = Vec::new();
    for (filters, _) in &cases {
        let mut with_end = filters.clone();
        if !with_end.is_empty() {
            with_end.push(END);
        }
        streams.push(subscribe(&daemon, &with_end).await);
    }
    let publish = |ns: &'static str, topic: &'static str, event: Option<prost_types::Any>| {
        let mut client = events(&daemon);
        async move {
            client
                .publish(namespaced(
                    PublishRequest {
                        topic: topic.into(),
                        event,
                    },
                    ns,
                ))
                .await
                .unwrap_or_else(|s| panic!("Publish {topic}: {s}"));
        }
    };
    let deleted = ev::NamespaceDelete { name: "web".into() };
    let created = image_events::ImageCreate {
        name: "web".into(),
        labels: labels(&[("tier", "front")]),
    };
    publish("default", "/a/one", None).await;
    publish("default", "/b/two", Some(pack(&deleted))).await;
    publish("other", "/a/three", None).await;
    publish("default", "/images/create", Some(pack(&created))).await;
    publish("default", "/test/end", None).await;

    for ((filters, expected), stream) in cases.iter().zip(streams.iter_mut()) {
        let mut got = Vec::new();
        loop {
            let envelope = next(stream).await;
            if envelope.topic == "/test/end" {
                break;
            }
            got.push(envelope.topic);
        }
        assert_eq!(&got, expected, "filters {filters:?}");
    }
}

#[tokio::test]
async fn publish_forward_and_subscribe_refuse_bad_input_like_containerd() {
    let daemon = Daemon::start_without_gc().await;
    let mut client = events(&daemon);
    let publish = |topic: &str| PublishRequest {
        topic: topic.into(),
        event: Some(prost_types::Any {
            type_url: "x.Y".into(),
            value: vec![],
        }),
    };

    let s = client.publish(publish("/a")).await.unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (
            Code::FailedPrecondition,
            "failed publishing event: namespace is required: failed precondition"
        )
    );
    let s = client
        .publish(namespaced(publish("/a"), "-bad"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(
        s.message(),
        "failed publishing event: namespace validation: identifier \"-bad\" must match \
         ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$: invalid argument"
    );
    let bad_topics = [
        (
            "",
            "envelope topic \"\": must not be empty: invalid argument",
        ),
        (
            "a/b",
            "envelope topic \"a/b\": must start with '/': invalid argument",
        ),
        (
            "/",
            "envelope topic \"/\": must have at least one component: invalid argument",
        ),
        (
            "/a//b",
            "envelope topic \"/a//b\": failed validation on component \"\": identifier must not \
             be empty: invalid argument",
        ),
    ];
    for (topic, message) in bad_topics {
        let s = client
            .publish(namespaced(publish(topic), "default"))
            .await
            .unwrap_err();
        assert_eq!((s.code(), s.message()), (Code::InvalidArgument, message));
    }

    let now = prost_types::Timestamp::from(std::time::SystemTime::now());
    let envelope =
        |namespace: &str, topic: &str, timestamp: Option<prost_types::Timestamp>| ForwardRequest {
            envelope: Some(Envelope {
                timestamp,
                namespace: namespace.into(),
                topic: topic.into(),
                event: None,
            }),
        };
    let forward_cases = [
        (
            envelope("", "/a", Some(now)),
            "event envelope has invalid namespace: identifier must not be empty: invalid argument",
        ),
        (
            envelope("ns", "a", Some(now)),
            "envelope topic \"a\": must start with '/': invalid argument",
        ),
        (
            envelope("ns", "/a", None),
            "timestamp must be set on forwarded event: invalid argument",
        ),
        (
            ForwardRequest { envelope: None },
            "event envelope has invalid namespace: identifier must not be empty: invalid argument",
        ),
    ];
    for (request, message) in forward_cases {
        let s = client.forward(request).await.unwrap_err();
        assert_eq!((s.code(), s.message()), (Code::InvalidArgument, message));
    }

    // Valid ones are delivered: Publish stamped now in the caller's namespace, Forward as given.
    let mut stream = subscribe(&daemon, &[]).await;
    client
        .publish(namespaced(publish("/custom/thing"), "default"))
        .await
        .unwrap();
    let got = next(&mut stream).await;
    assert_eq!(
        (got.namespace.as_str(), got.topic.as_str()),
        ("default", "/custom/thing")
    );
    assert_eq!(got.event.unwrap().type_url, "x.Y");
    let at = prost_types::Timestamp {
        seconds: 1_600_000_000,
        nanos: 7,
    };
    client
        .forward(envelope("elsewhere", "/relayed", Some(at)))
        .await
        .unwrap();
    let got = next(&mut stream).await;
    assert_eq!(
        got,
        envelope("elsewhere", "/relayed", Some(at))
            .envelope
            .unwrap()
    );

    // A filter that does not parse: containerd's words, unclassified.
    let s = events(&daemon)
        .subscribe(SubscribeRequest {
            filters: vec!["topic==".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (
            Code::Unknown,
            "subscription error: failed parsing subscription filters: filters: parse error: \
             [topic==]: expected value or quoted: invalid argument"
        )
    );
}

/// A subscriber that stops reading is cut off once its buffer (1024 envelopes beyond what the
/// connection holds) is full: it gets what was buffered, then ResourceExhausted with the count it
/// missed. Publishes never wait for it, and a subscriber that keeps up gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_cut_off_and_publishers_carry_on() {
    const FLOOD: usize = 3000;
    // Large events, so the connection's flow-control window holds few of them.
    let payload = vec![7u8; 16 * 1024];
    let daemon = Daemon::start_without_gc().await;
    // On a connection of its own, whose windows the unread stream fills alone.
    let own = rcontainerd_api::client::connect(daemon.socket(), STEP)
        .await
        .unwrap();
    let mut slow = EventsClient::new(own)
        .subscribe(SubscribeRequest {
            filters: vec![r#"topic=="/test/flood""#.into()],
        })
        .await
        .unwrap()
        .into_inner();
    let fast = subscribe(&daemon, &[r#"topic=="/test/flood""#]).await;
    let reader = tokio::spawn(async move {
        let mut fast = fast;
        let mut count = 0;
        while count < FLOOD {
            let envelope = within(STEP, "the fast subscriber's next event", fast.message())
                .await
                .unwrap_or_else(|s| panic!("the fast subscriber was cut off: {s}"))
                .expect("stream open");
            assert_eq!(envelope.topic, "/test/flood");
            count += 1;
        }
        count
    });

    let mut client = events(&daemon);
    let publishes = async {
        for i in 0..FLOOD {
            client
                .publish(namespaced(
                    PublishRequest {
                        topic: "/test/flood".into(),
                        event: Some(prost_types::Any {
                            type_url: format!("test.Flood{i}"),
                            value: payload.clone(),
                        }),
                    },
                    "default",
                ))
                .await
                .unwrap_or_else(|s| panic!("publish {i}: {s}"));
        }
    };
    within(
        Duration::from_secs(120),
        "publishing past a stalled subscriber",
        publishes,
    )
    .await;
    assert_eq!(reader.await.unwrap(), FLOOD);

    let mut received = 0;
    let status = loop {
        match within(STEP, "the slow subscriber's stream", slow.message()).await {
            Ok(Some(envelope)) => {
                // In order, without gaps, up to where it was cut off.
                assert_eq!(
                    envelope.event.unwrap().type_url,
                    format!("test.Flood{received}")
                );
                received += 1;
            }
            Ok(None) => panic!("the stream ended without an error after {received} events"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let dropped = FLOOD - received;
    assert!(received >= 1024 && dropped > 0, "received {received}");
    assert_eq!(
        status.message(),
        format!(
            "events: subscriber fell behind, {dropped} events dropped \
             (more than 1024 events were waiting for it)"
        )
    );
}

#[tokio::test]
async fn without_the_exchange_services_work_and_events_is_unavailable() {
    let daemon = Daemon::start(DaemonOptions::new().disable("io.containerd.event.v1.exchange"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    daemon
        .namespaces()
        .create(CreateNamespaceRequest {
            namespace: ns(NS, &[]),
        })
        .await
        .unwrap();
    SnapshotsClient::new(daemon.channel())
        .prepare(in_ns(PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: "k".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    ImagesClient::new(daemon.channel())
        .create(in_ns(CreateImageRequest {
            image: Some(image("img")),
            source_date_epoch: None,
        }))
        .await
        .unwrap();
    let s = events(&daemon)
        .subscribe(SubscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (
            Code::Unavailable,
            "no plugins registered for io.containerd.event.v1: unavailable"
        )
    );
    let plugins = daemon.plugins(&[]).await;
    let status = |uri: &str| {
        rcontainerd_tests::find_plugin(&plugins, uri)
            .unwrap_or_else(|| panic!("{uri} not listed"))
            .init_err
            .is_none()
    };
    assert!(status("io.containerd.grpc.v1.snapshots"));
    assert!(status("io.containerd.grpc.v1.namespaces"));
    assert!(!status("io.containerd.grpc.v1.events"));
}

/// Replaces each line's timestamp (the first three words: date, time, zone offset and `UTC`
/// are four) with `T`.
fn neutral(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            let rest: Vec<&str> = line.splitn(5, ' ').collect();
            assert_eq!(rest.len(), 5, "not an event line: {line:?}");
            assert_eq!((rest[2], rest[3]), ("+0000", "UTC"), "{line:?}");
            format!("T {}", rest[4])
        })
        .collect()
}

/// `ctr events` of Debian's ctr and ours, running side by side while Debian's ctr (and gRPC, for
/// what ctr cannot create) changes things: the same lines, and the lines containerd prints.
#[tokio::test]
async fn both_ctrs_print_the_same_events() {
    let daemon = Daemon::start_without_gc().await;
    let watchers: Vec<_> = Ctr::BOTH
        .iter()
        .map(|&which| daemon.spawn_ctr(which, &["events"]))
        .collect();
    // Each has subscribed once it prints a marker published after it started.
    let mut marker = 0;
    let marked = |stdout: &str| stdout.contains(" /test/ready ");
    while !watchers.iter().all(|w| marked(&w.stdout())) {
        marker += 1;
        assert!(marker < 500, "the ctrs never subscribed");
        events(&daemon)
            .publish(namespaced(
                PublishRequest {
                    topic: "/test/ready".into(),
                    event: None,
                },
                "default",
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let ctr = |args: &[&str]| {
        daemon.ctr(Ctr::Debian, args).ok();
    };
    ctr(&["namespaces", "create", NS, "a=1", "b=<&>"]);
    ctr(&["namespaces", "label", NS, "a=3"]);
    ctr(&[
        "-n",
        NS,
        "snapshots",
        "--snapshotter",
        SNAPSHOTTER,
        "prepare",
        "k1",
    ]);
    ctr(&[
        "-n",
        NS,
        "snapshots",
        "--snapshotter",
        SNAPSHOTTER,
        "commit",
        "n1",
        "k1",
    ]);
    ctr(&[
        "-n",
        NS,
        "snapshots",
        "--snapshotter",
        SNAPSHOTTER,
        "rm",
        "n1",
    ]);
    let digest = write_blob(&daemon, b"bytes for ctr").await;
    ctr(&["-n", NS, "content", "rm", &digest]);
    ImagesClient::new(daemon.channel())
        .create(in_ns(CreateImageRequest {
            image: Some(image("docker.io/library/img:1")),
            source_date_epoch: None,
        }))
        .await
        .unwrap();
    ctr(&[
        "-n",
        NS,
        "images",
        "label",
        "docker.io/library/img:1",
        "z=9",
    ]);
    ctr(&["-n", NS, "images", "rm", "docker.io/library/img:1"]);
    ContainersClient::new(daemon.channel())
        .create(in_ns(CreateContainerRequest {
            container: Some(container("c1")),
        }))
        .await
        .unwrap();
    ctr(&["-n", NS, "containers", "label", "c1", "x=y"]);
    ctr(&["-n", NS, "containers", "rm", "c1"]);
    // An event type containerd 1.6 does not know: warned about and skipped.
    events(&daemon)
        .publish(namespaced(
            PublishRequest {
                topic: "/test/unknown".into(),
                event: Some(prost_types::Any {
                    type_url: "example.Unknown".into(),
                    value: vec![],
                }),
            },
            "default",
        ))
        .await
        .unwrap();
    ctr(&["namespaces", "rm", NS]);

    let expected = [
        r#"T default /namespaces/create {"name":"evns","labels":{"a":"1","b":"\u003c\u0026\u003e"}}"#,
        r#"T default /namespaces/update {"name":"evns","labels":{"a":"3"}}"#,
        r#"T evns /snapshot/prepare {"key":"k1"}"#,
        r#"T evns /snapshot/commit {"key":"k1","name":"n1"}"#,
        r#"T evns /snapshot/remove {"key":"n1"}"#,
        &format!(r#"T evns /content/delete {{"digest":"{digest}"}}"#),
        r#"T evns /images/create {"name":"docker.io/library/img:1","labels":{"a":"1"}}"#,
        r#"T evns /images/update {"name":"docker.io/library/img:1","labels":{"a":"1","z":"9"}}"#,
        r#"T evns /images/delete {"name":"docker.io/library/img:1"}"#,
        r#"T evns /containers/create {"id":"c1","image":"docker.io/library/x:1","runtime":{"name":"io.containerd.runc.v2","options":{"type_url":"containerd.runc.v1.Options","value":"CgF4"}}}"#,
        r#"T evns /containers/update {"id":"c1","image":"docker.io/library/x:1","labels":{"x":"y"}}"#,
        r#"T evns /containers/delete {"id":"c1"}"#,
        r#"T evns /namespaces/delete {"name":"evns"}"#,
    ];
    let done = |stdout: &str| stdout.contains(" /namespaces/delete ");
    let mut outputs = Vec::new();
    for watcher in watchers {
        watcher.wait_for_stdout(STEP, "/namespaces/delete line", done);
        // Killed, as a user stops it: nothing more is printed.
        outputs.push(watcher.kill());
    }
    for out in &outputs {
        let lines: Vec<String> = neutral(&out.stdout)
            .into_iter()
            .filter(|l| !l.starts_with("T default /test/ready "))
            .collect();
        assert_eq!(lines, expected, "{:?} ctr:\n{}", out.which, out.stdout);
        let warnings: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            warnings.len(),
            1,
            "{:?} ctr stderr:\n{}",
            out.which,
            out.stderr
        );
        assert!(
            warnings[0].ends_with(
                " level=warning msg=\"cannot unmarshal an event from Any\" \
                 error=\"type with url example.Unknown: not found\""
            ),
            "{:?}: {}",
            out.which,
            warnings[0]
        );
    }
    // Each watcher may have seen one ready marker or more (they are published until both
    // answer), so only what follows them is compared.
    let without_markers = |out: &str| -> Vec<String> {
        neutral(out)
            .into_iter()
            .filter(|l| !l.starts_with("T default /test/ready "))
            .collect()
    };
    assert_eq!(
        without_markers(&outputs[0].stdout),
        without_markers(&outputs[1].stdout)
    );
}

/// Errors end `ctr events` the same way in both ctrs: unclassified, exit 1.
#[tokio::test]
async fn both_ctrs_report_a_bad_filter_and_a_timeout_alike() {
    let daemon = Daemon::start_without_gc().await;
    for which in Ctr::BOTH {
        let out = daemon.ctr(which, &["events", "topic==/a/b"]);
        assert_eq!(
            out.failed(),
            "ctr: rpc error: code = Unknown desc = subscription error: failed parsing \
             subscription filters: filters: parse error: [topic== >|/|< a/b]: invalid quote \
             encountered: invalid argument\n",
            "{which:?}"
        );
        let out = daemon.ctr(which, &["--timeout", "300ms", "events"]);
        assert_eq!(
            out.failed(),
            "ctr: rpc error: code = DeadlineExceeded desc = context deadline exceeded\n",
            "{which:?}"
        );
    }
}
