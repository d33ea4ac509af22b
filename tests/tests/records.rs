//! Images, containers and leases over gRPC against the real daemon: containerd's codes and
//! messages, field masks, filters, the `containerd-lease` header on content and snapshots,
//! namespaces that refuse to go while records remain, and records that survive `kill -9`.

use std::collections::HashMap;

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::containers::containers_client::ContainersClient;
use rcontainerd_api::services::containers::{
    container, Container, CreateContainerRequest, DeleteContainerRequest, GetContainerRequest,
    ListContainersRequest, UpdateContainerRequest,
};
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{WriteAction, WriteContentRequest};
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest,
    UpdateImageRequest,
};
use rcontainerd_api::services::leases::leases_client::LeasesClient;
use rcontainerd_api::services::leases::{
    AddResourceRequest, CreateRequest, DeleteRequest, DeleteResourceRequest, ListRequest,
    ListResourcesRequest, Resource,
};
use rcontainerd_api::services::namespaces::{DeleteNamespaceRequest, UpdateNamespaceRequest};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};
use rcontainerd_api::types::Descriptor;
use rcontainerd_tests::{labels, Ctr, Daemon};
use tonic::transport::Channel;
use tonic::{Code, Request};

const NS: &str = "records";
const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

fn target(digest: &str) -> Option<Descriptor> {
    Some(Descriptor {
        media_type: INDEX.into(),
        digest: digest.into(),
        size: 100,
        annotations: HashMap::new(),
    })
}

fn image(name: &str) -> Image {
    Image {
        name: name.into(),
        labels: labels(&[("a", "1")]),
        target: target(DIGEST),
        ..Default::default()
    }
}

fn container(id: &str) -> Container {
    Container {
        id: id.into(),
        image: "docker.io/library/x:1".into(),
        runtime: Some(container::Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: SPEC_URL.into(),
            value: br#"{"ociVersion":"1.0.2"}"#.to_vec(),
        }),
        ..Default::default()
    }
}

fn in_ns<T>(message: T) -> Request<T> {
    namespaced(message, NS)
}

fn leased<T>(message: T, lease: &str) -> Request<T> {
    rcontainerd_api::client::leased(message, NS, lease)
}

fn images(daemon: &Daemon) -> ImagesClient<Channel> {
    ImagesClient::new(daemon.channel())
}

fn containers(daemon: &Daemon) -> ContainersClient<Channel> {
    ContainersClient::new(daemon.channel())
}

fn leases(daemon: &Daemon) -> LeasesClient<Channel> {
    LeasesClient::new(daemon.channel())
}

async fn create_image(daemon: &Daemon, image: Image) -> Result<Image, tonic::Status> {
    images(daemon)
        .create(in_ns(CreateImageRequest {
            image: Some(image),
            source_date_epoch: None,
        }))
        .await
        .map(|r| r.into_inner().image.unwrap())
}

#[tokio::test]
async fn images_are_validated_created_filtered_updated_and_deleted_like_containerd() {
    let daemon = Daemon::start_default().await;
    let created = create_image(&daemon, image("docker.io/library/a:1"))
        .await
        .unwrap();
    assert!(created.created_at.is_some() && created.updated_at.is_some());
    create_image(&daemon, image("b")).await.unwrap();

    let err = create_image(&daemon, image("b")).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::AlreadyExists, "image \"b\": already exists")
    );
    let cases: [(Image, &str); 4] = [
        (
            Image {
                target: target(""),
                ..image("c")
            },
            "Target.Digest \"\" invalid: invalid checksum digest format: invalid argument",
        ),
        (
            Image {
                target: Some(Descriptor {
                    media_type: String::new(),
                    ..target(DIGEST).unwrap()
                }),
                ..image("c")
            },
            "Target.MediaType must be set: invalid argument",
        ),
        (
            Image {
                target: Some(Descriptor {
                    size: 0,
                    ..target(DIGEST).unwrap()
                }),
                ..image("c")
            },
            "Target.Size must be greater than zero: invalid argument",
        ),
        (image(""), "Image.Name required"),
    ];
    for (bad, message) in cases {
        let err = create_image(&daemon, bad).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::InvalidArgument, message)
        );
    }

    // Filters: name, target.digest, labels.
    let list = |filters: &[&str]| {
        let mut client = images(&daemon);
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        async move {
            client
                .list(in_ns(ListImagesRequest { filters }))
                .await
                .map(|r| {
                    r.into_inner()
                        .images
                        .into_iter()
                        .map(|i| i.name)
                        .collect::<Vec<_>>()
                })
        }
    };
    assert_eq!(list(&[]).await.unwrap(), ["b", "docker.io/library/a:1"]);
    assert_eq!(list(&["name==b"]).await.unwrap(), ["b"]);
    assert_eq!(
        list(&[&format!("target.digest=={DIGEST}")])
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(list(&["labels.a==2"]).await.unwrap().is_empty());
    let err = list(&["name=="]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .ends_with("invalid argument: invalid argument"),
        "{err:?}"
    );

    // A masked update changes only what the mask names.
    let updated = images(&daemon)
        .update(in_ns(UpdateImageRequest {
            image: Some(Image {
                name: "b".into(),
                labels: labels(&[("x", "y")]),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels.x".into()],
            }),
            source_date_epoch: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(updated.labels, labels(&[("a", "1"), ("x", "y")]));
    assert_eq!(updated.target, target(DIGEST));

    // Delete, then Get and Delete of the missing one.
    images(&daemon)
        .delete(in_ns(DeleteImageRequest {
            name: "b".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    for err in [
        images(&daemon)
            .get(in_ns(GetImageRequest { name: "b".into() }))
            .await
            .unwrap_err(),
        images(&daemon)
            .delete(in_ns(DeleteImageRequest {
                name: "b".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            (err.code(), err.message()),
            (Code::NotFound, "image \"b\": not found")
        );
    }
}

#[tokio::test]
async fn containers_keep_their_spec_verbatim_and_refuse_immutable_changes() {
    let daemon = Daemon::start_default().await;
    let mut c = container("web");
    c.snapshotter = "overlayfs".into();
    c.snapshot_key = "web".into();
    c.extensions.insert(
        "ext".into(),
        prost_types::Any {
            type_url: "t/e".into(),
            value: vec![0, 255],
        },
    );
    let created = containers(&daemon)
        .create(in_ns(CreateContainerRequest {
            container: Some(c.clone()),
        }))
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap();
    assert_eq!(created.spec, c.spec);
    assert_eq!(created.extensions, c.extensions);
    let got = containers(&daemon)
        .get(in_ns(GetContainerRequest { id: "web".into() }))
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap();
    assert_eq!(got, created);

    let mut moved = c.clone();
    moved.snapshotter = "native".into();
    let err = containers(&daemon)
        .update(in_ns(UpdateContainerRequest {
            container: Some(moved),
            update_mask: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "container.Snapshotter field is immutable: invalid argument"
        )
    );
    let mut no_runtime = container("db");
    no_runtime.runtime = None;
    let err = containers(&daemon)
        .create(in_ns(CreateContainerRequest {
            container: Some(no_runtime),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("container.Runtime.Name must be set"),
        "{err:?}"
    );

    // List and ListStream agree; filters on runtime.name.
    let listed = containers(&daemon)
        .list(in_ns(ListContainersRequest {
            filters: vec!["runtime.name==io.containerd.runc.v2".into()],
        }))
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(listed, std::slice::from_ref(&got));
    let mut stream = containers(&daemon)
        .list_stream(in_ns(ListContainersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        streamed.push(message.container.unwrap());
    }
    assert_eq!(streamed, [got]);

    containers(&daemon)
        .delete(in_ns(DeleteContainerRequest { id: "web".into() }))
        .await
        .unwrap();
    let err = containers(&daemon)
        .get(in_ns(GetContainerRequest { id: "web".into() }))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::NotFound,
            "container \"web\" in namespace \"records\": not found"
        )
    );
}

#[tokio::test]
async fn leases_hold_what_calls_under_their_header_create() {
    let daemon = Daemon::start_default().await;
    // A mount path is a fine lease id (containerd's ctr uses one for images mount).
    let lease_id = "/tmp/mnt/target";
    leases(&daemon)
        .create(in_ns(CreateRequest {
            id: lease_id.into(),
            labels: labels(&[("containerd.io/gc.expire", "2100-01-01T00:00:00Z")]),
        }))
        .await
        .unwrap();
    let generated = leases(&daemon)
        .create(in_ns(CreateRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .lease
        .unwrap();
    assert!(!generated.id.is_empty());

    // A snapshot prepared and committed under the lease, then a blob written under it.
    let mut snapshots = SnapshotsClient::new(daemon.channel());
    snapshots
        .prepare(leased(
            PrepareSnapshotRequest {
                snapshotter: "native".into(),
                key: "active".into(),
                ..Default::default()
            },
            lease_id,
        ))
        .await
        .unwrap();
    snapshots
        .commit(leased(
            CommitSnapshotRequest {
                snapshotter: "native".into(),
                name: "layer".into(),
                key: "active".into(),
                ..Default::default()
            },
            lease_id,
        ))
        .await
        .unwrap();
    snapshots
        .prepare(leased(
            PrepareSnapshotRequest {
                snapshotter: "native".into(),
                key: "gone".into(),
                ..Default::default()
            },
            lease_id,
        ))
        .await
        .unwrap();
    snapshots
        .remove(leased(
            RemoveSnapshotRequest {
                snapshotter: "native".into(),
                key: "gone".into(),
            },
            lease_id,
        ))
        .await
        .unwrap();
    let data = b"leased bytes".to_vec();
    let digest = format!("sha256:{:x}", sha2_digest(&data));
    let write = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: "ingest-1".into(),
        total: data.len() as i64,
        expected: digest.clone(),
        data: data.into(),
        ..Default::default()
    };
    let responses = ContentClient::new(daemon.channel())
        .write(leased(tokio_stream::iter([write]), lease_id))
        .await
        .unwrap()
        .into_inner();
    drop(responses);
    let resources = async || {
        leases(&daemon)
            .list_resources(in_ns(ListResourcesRequest {
                id: lease_id.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .resources
    };
    // Wait for the write stream's commit to land.
    let mut held = resources().await;
    for _ in 0..50 {
        if held.iter().any(|r| r.r#type == "content") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        held = resources().await;
    }
    let resource = |kind: &str, id: &str| Resource {
        id: id.into(),
        r#type: kind.into(),
    };
    assert_eq!(
        held,
        [
            resource("content", &digest),
            resource("snapshots/native", "layer")
        ]
    );

    // Resources by hand; a bad type and a missing lease, in containerd's words.
    leases(&daemon)
        .add_resource(in_ns(AddResourceRequest {
            id: generated.id.clone(),
            resource: Some(resource("ingests", "r1")),
        }))
        .await
        .unwrap();
    let err = leases(&daemon)
        .add_resource(in_ns(AddResourceRequest {
            id: generated.id.clone(),
            resource: Some(resource("images", "x")),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    leases(&daemon)
        .delete_resource(in_ns(DeleteResourceRequest {
            id: generated.id.clone(),
            resource: Some(resource("ingests", "r1")),
        }))
        .await
        .unwrap();

    // A call naming a lease that does not exist changes nothing.
    let err = snapshots
        .prepare(leased(
            PrepareSnapshotRequest {
                snapshotter: "native".into(),
                key: "unleased".into(),
                ..Default::default()
            },
            "no-such-lease",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "lease does not exist: not found")
    );
    let listed = daemon.ctr(
        Ctr::Debian,
        &["-n", NS, "snapshots", "--snapshotter", "native", "ls"],
    );
    assert!(!listed.ok().contains("unleased"), "{}", listed.ok());

    let ids: Vec<String> = leases(&daemon)
        .list(in_ns(ListRequest {
            filters: vec![format!("id=={}", generated.id)],
        }))
        .await
        .unwrap()
        .into_inner()
        .leases
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, std::slice::from_ref(&generated.id));
    leases(&daemon)
        .delete(in_ns(DeleteRequest {
            id: generated.id.clone(),
            sync: false,
        }))
        .await
        .unwrap();
    let err = leases(&daemon)
        .delete(in_ns(DeleteRequest {
            id: generated.id,
            sync: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

fn sha2_digest(data: &[u8]) -> impl std::fmt::LowerHex {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
}

#[tokio::test]
async fn a_namespace_with_records_stays_and_update_creates_a_missing_one() {
    let daemon = Daemon::start_default().await;
    create_image(&daemon, image("i")).await.unwrap();
    containers(&daemon)
        .create(in_ns(CreateContainerRequest {
            container: Some(container("c")),
        }))
        .await
        .unwrap();
    leases(&daemon)
        .create(in_ns(CreateRequest {
            id: "l".into(),
            labels: HashMap::new(),
        }))
        .await
        .unwrap();
    let err = daemon
        .namespaces()
        .delete(DeleteNamespaceRequest { name: NS.into() })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::FailedPrecondition,
            "namespace \"records\" must be empty, but it still has images, containers: failed precondition"
        )
    );
    images(&daemon)
        .delete(in_ns(DeleteImageRequest {
            name: "i".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    containers(&daemon)
        .delete(in_ns(DeleteContainerRequest { id: "c".into() }))
        .await
        .unwrap();
    // A lease alone does not keep the namespace.
    daemon
        .namespaces()
        .delete(DeleteNamespaceRequest { name: NS.into() })
        .await
        .unwrap();

    let created = daemon
        .namespaces()
        .update(UpdateNamespaceRequest {
            namespace: Some(rcontainerd_api::services::namespaces::Namespace {
                name: "fresh".into(),
                labels: labels(&[("k", "v")]),
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels.k".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .namespace
        .unwrap();
    assert_eq!(created.labels, labels(&[("k", "v")]));
    for which in Ctr::BOTH {
        let out = daemon.ctr(which, &["namespaces", "label", "fresh2", "a=b"]);
        out.ok();
        let listed = daemon.ctr(which, &["namespaces", "ls", "-q"]);
        assert!(listed.ok().lines().any(|l| l == "fresh2"), "{which:?}");
    }
}

#[tokio::test]
async fn acknowledged_records_survive_kill_9() {
    let mut daemon = Daemon::start_default().await;
    create_image(&daemon, image("kept")).await.unwrap();
    containers(&daemon)
        .create(in_ns(CreateContainerRequest {
            container: Some(container("kept")),
        }))
        .await
        .unwrap();
    leases(&daemon)
        .create(in_ns(CreateRequest {
            id: "kept".into(),
            labels: HashMap::new(),
        }))
        .await
        .unwrap();
    leases(&daemon)
        .add_resource(in_ns(AddResourceRequest {
            id: "kept".into(),
            resource: Some(Resource {
                id: "r".into(),
                r#type: "ingests".into(),
            }),
        }))
        .await
        .unwrap();
    daemon.kill9();
    daemon.restart().await.unwrap();
    images(&daemon)
        .get(in_ns(GetImageRequest {
            name: "kept".into(),
        }))
        .await
        .unwrap();
    containers(&daemon)
        .get(in_ns(GetContainerRequest { id: "kept".into() }))
        .await
        .unwrap();
    let resources = leases(&daemon)
        .list_resources(in_ns(ListResourcesRequest { id: "kept".into() }))
        .await
        .unwrap()
        .into_inner()
        .resources;
    assert_eq!(resources.len(), 1);
}

#[tokio::test]
async fn bad_input_on_every_new_rpc_is_refused_and_changes_nothing() {
    let daemon = Daemon::start_default().await;
    let big = "v".repeat(5000);
    // No namespace header: FailedPrecondition before any handler runs.
    let err = ImagesClient::new(daemon.channel())
        .list(ListImagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = LeasesClient::new(daemon.channel())
        .create(CreateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Oversized labels, each kind.
    let err = create_image(
        &daemon,
        Image {
            labels: labels(&[("k", &big)]),
            ..image("big")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("image.Labels: label key and value greater than maximum size"),
        "{err:?}"
    );
    let mut c = container("big");
    c.labels = labels(&[("k", &big)]);
    let err = containers(&daemon)
        .create(in_ns(CreateContainerRequest { container: Some(c) }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = leases(&daemon)
        .create(in_ns(CreateRequest {
            id: "big".into(),
            labels: labels(&[("k", &big)]),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Invalid container ids; unknown mask paths; malformed lease resources.
    for id in ["", "Bad Id!", "-x", "a..b"] {
        let err = containers(&daemon)
            .create(in_ns(CreateContainerRequest {
                container: Some(container(id)),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{id:?}");
    }
    create_image(&daemon, image("ok")).await.unwrap();
    let err = images(&daemon)
        .update(in_ns(UpdateImageRequest {
            image: Some(image("ok")),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["created_at".into()],
            }),
            source_date_epoch: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "cannot update \"created_at\" field on image \"ok\": invalid argument"
        )
    );
    leases(&daemon)
        .create(in_ns(CreateRequest {
            id: "l".into(),
            labels: HashMap::new(),
        }))
        .await
        .unwrap();
    let err = leases(&daemon)
        .add_resource(in_ns(AddResourceRequest {
            id: "l".into(),
            resource: Some(Resource {
                id: "not-a-digest".into(),
                r#type: "content".into(),
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // A Write stream under a lease that does not exist: NotFound, no ingest left behind.
    let write = WriteContentRequest {
        action: WriteAction::Write as i32,
        r#ref: "orphan".into(),
        data: b"x".to_vec().into(),
        ..Default::default()
    };
    let mut stream = ContentClient::new(daemon.channel())
        .write(leased(tokio_stream::iter([write]), "no-such-lease"))
        .await
        .unwrap()
        .into_inner();
    let err = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without an error"),
            Err(status) => break status,
        }
    };
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "lease does not exist: not found")
    );
    let active = daemon.ctr(Ctr::Debian, &["-n", NS, "content", "active"]);
    assert!(!active.ok().contains("orphan"), "{}", active.ok());

    // Nothing but the valid records was written.
    let names: Vec<String> = images(&daemon)
        .list(in_ns(ListImagesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .images
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["ok"]);
    assert!(containers(&daemon)
        .list(in_ns(ListContainersRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .containers
        .is_empty());
}

/// Every kind of acknowledged change — create, update, delete — of each record kind is there after
/// `kill -9`.
#[tokio::test]
async fn acknowledged_updates_and_deletions_survive_kill_9() {
    let mut daemon = Daemon::start_default().await;
    create_image(&daemon, image("updated")).await.unwrap();
    create_image(&daemon, image("deleted")).await.unwrap();
    images(&daemon)
        .update(in_ns(UpdateImageRequest {
            image: Some(Image {
                name: "updated".into(),
                labels: labels(&[("new", "1")]),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels".into()],
            }),
            source_date_epoch: None,
        }))
        .await
        .unwrap();
    images(&daemon)
        .delete(in_ns(DeleteImageRequest {
            name: "deleted".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    for id in ["kept", "gone"] {
        containers(&daemon)
            .create(in_ns(CreateContainerRequest {
                container: Some(container(id)),
            }))
            .await
            .unwrap();
    }
    containers(&daemon)
        .update(in_ns(UpdateContainerRequest {
            container: Some(Container {
                labels: labels(&[("x", "y")]),
                ..container("kept")
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels.x".into()],
            }),
        }))
        .await
        .unwrap();
    containers(&daemon)
        .delete(in_ns(DeleteContainerRequest { id: "gone".into() }))
        .await
        .unwrap();
    for id in ["kept", "gone"] {
        leases(&daemon)
            .create(in_ns(CreateRequest {
                id: id.into(),
                labels: HashMap::new(),
            }))
            .await
            .unwrap();
    }
    leases(&daemon)
        .delete(in_ns(DeleteRequest {
            id: "gone".into(),
            sync: false,
        }))
        .await
        .unwrap();
    daemon.kill9();
    daemon.restart().await.unwrap();

    let image = images(&daemon)
        .get(in_ns(GetImageRequest {
            name: "updated".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(image.labels, labels(&[("new", "1")]));
    assert_eq!(
        images(&daemon)
            .get(in_ns(GetImageRequest {
                name: "deleted".into()
            }))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let kept = containers(&daemon)
        .get(in_ns(GetContainerRequest { id: "kept".into() }))
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap();
    assert_eq!(kept.labels.get("x").map(String::as_str), Some("y"));
    assert_eq!(
        containers(&daemon)
            .get(in_ns(GetContainerRequest { id: "gone".into() }))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let ids: Vec<String> = leases(&daemon)
        .list(in_ns(ListRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .leases
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, ["kept"]);
}
