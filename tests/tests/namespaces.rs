//! Namespaces through both ctrs and over gRPC: create with labels, ls, label, remove, and the error
//! codes containerd returns.

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::containers::containers_client::ContainersClient;
use rcontainerd_api::services::containers::ListContainersRequest;
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::ListImagesRequest;
use rcontainerd_api::services::namespaces::{
    CreateNamespaceRequest, DeleteNamespaceRequest, GetNamespaceRequest, ListNamespacesRequest,
    Namespace, UpdateNamespaceRequest,
};
use rcontainerd_tests::{labels, Ctr, Daemon};
use tonic::Code;

fn namespace(name: &str, pairs: &[(&str, &str)]) -> Namespace {
    Namespace {
        name: name.to_owned(),
        labels: labels(pairs),
    }
}

fn create(name: &str, pairs: &[(&str, &str)]) -> CreateNamespaceRequest {
    CreateNamespaceRequest {
        namespace: Some(namespace(name, pairs)),
    }
}

/// The `ctr namespaces ls` row for `name`: (name, labels column).
fn ls_row(stdout: &str, name: &str) -> Option<(String, String)> {
    stdout.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let first = cols.next()?;
        (first == name).then(|| (first.to_owned(), cols.next().unwrap_or("").to_owned()))
    })
}

#[tokio::test]
async fn each_ctr_creates_lists_labels_and_removes_a_namespace() {
    let daemon = Daemon::start_default().await;
    for which in Ctr::BOTH {
        let name = format!("ns-{}", format!("{which:?}").to_lowercase());

        daemon
            .ctr(
                which,
                &["namespaces", "create", &name, "team=infra", "tier=gold"],
            )
            .ok();
        let ls = daemon.ctr(which, &["namespaces", "ls"]);
        let header: Vec<&str> = ls.ok().lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["NAME", "LABELS"], "{which:?}:\n{}", ls.stdout);
        assert_eq!(
            ls_row(&ls.stdout, &name),
            Some((name.clone(), "team=infra,tier=gold".to_owned())),
            "{which:?}:\n{}",
            ls.stdout
        );

        let quiet = daemon.ctr(which, &["namespaces", "ls", "-q"]);
        assert!(
            quiet.ok().lines().any(|l| l == name),
            "{which:?}:\n{}",
            quiet.stdout
        );

        // Empty value removes a label; a new key is added.
        daemon
            .ctr(which, &["namespaces", "label", &name, "team=", "zone=b"])
            .ok();
        let ls = daemon.ctr(which, &["namespaces", "ls"]);
        assert_eq!(
            ls_row(ls.ok(), &name),
            Some((name.clone(), "tier=gold,zone=b".to_owned())),
            "{which:?}:\n{}",
            ls.stdout
        );

        let rm = daemon.ctr(which, &["namespaces", "remove", &name]);
        assert_eq!(rm.ok().trim(), name, "{which:?}: remove prints the name");
        let ls = daemon.ctr(which, &["namespaces", "ls"]);
        assert_eq!(ls_row(ls.ok(), &name), None, "{which:?}:\n{}", ls.stdout);
    }
}

#[tokio::test]
async fn our_ctr_prints_the_same_namespace_listing_as_debian_ctr() {
    let daemon = Daemon::start_default().await;
    daemon
        .ctr(
            Ctr::Debian,
            &["namespaces", "create", "alpha", "a=1", "b=2"],
        )
        .ok();
    daemon
        .ctr(Ctr::Ours, &["namespaces", "create", "beta-longer-name"])
        .ok();
    for args in [
        &["namespaces", "ls"][..],
        &["namespaces", "ls", "-q"],
        &["ns", "list"],
    ] {
        let theirs = daemon.ctr(Ctr::Debian, args);
        let ours = daemon.ctr(Ctr::Ours, args);
        assert_eq!(ours.ok(), theirs.ok(), "ctr {args:?}");
    }
}

#[tokio::test]
async fn ctr_errors_end_with_the_code_suffix() {
    let daemon = Daemon::start_default().await;
    daemon
        .ctr(Ctr::Debian, &["namespaces", "create", "dup"])
        .ok();
    for which in Ctr::BOTH {
        let dup = daemon.ctr(which, &["namespaces", "create", "dup"]);
        let stderr = dup.failed();
        assert!(
            stderr.trim_end().ends_with(": already exists"),
            "{which:?}: {stderr}"
        );
        assert!(stderr.contains("dup"), "{which:?}: {stderr}");

        // ctr treats NotFound on remove as done: it prints the name and succeeds.
        let ghost = daemon.ctr(which, &["namespaces", "remove", "ghost"]);
        assert_eq!(ghost.ok().trim(), "ghost", "{which:?}");

        let bad = daemon.ctr(which, &["namespaces", "create", "Bad Name!"]);
        let stderr = bad.failed();
        assert!(
            stderr.trim_end().ends_with(": invalid argument"),
            "{which:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn grpc_create_get_list_update_delete() {
    let daemon = Daemon::start_default().await;
    let mut client = daemon.namespaces();
    let created = client
        .create(create("web", &[("owner", "alice")]))
        .await
        .unwrap()
        .into_inner()
        .namespace
        .unwrap();
    assert_eq!(created, namespace("web", &[("owner", "alice")]));

    let got = client
        .get(GetNamespaceRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner()
        .namespace
        .unwrap();
    assert_eq!(got, created);

    let listed = client
        .list(ListNamespacesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .namespaces;
    assert!(listed.contains(&created), "{listed:?}");

    // With a mask, only the named label changes.
    let updated = client
        .update(UpdateNamespaceRequest {
            namespace: Some(namespace("web", &[("env", "prod"), ("owner", "ignored")])),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels.env".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .namespace
        .unwrap();
    assert_eq!(
        updated.labels,
        labels(&[("owner", "alice"), ("env", "prod")])
    );

    // Without a mask, the labels are replaced.
    let replaced = client
        .update(UpdateNamespaceRequest {
            namespace: Some(namespace("web", &[("only", "this")])),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .namespace
        .unwrap();
    assert_eq!(replaced, namespace("web", &[("only", "this")]));

    client
        .delete(DeleteNamespaceRequest { name: "web".into() })
        .await
        .unwrap();
    let status = client
        .get(GetNamespaceRequest { name: "web".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn namespaces_calls_need_no_namespace_header() {
    // The Namespaces service is not namespaced: no `containerd-namespace` header, and it works.
    let daemon = Daemon::start_default().await;
    let mut client = daemon.namespaces();
    client.create(create("plain", &[])).await.unwrap();
    client.list(ListNamespacesRequest::default()).await.unwrap();
}

/// Namespaced services check the header before anything else, even those not implemented yet.
#[tokio::test]
async fn namespaced_calls_without_the_header_are_failed_precondition() {
    let daemon = Daemon::start_default().await;
    let mut containers = ContainersClient::new(daemon.channel());
    let mut images = ImagesClient::new(daemon.channel());

    let status = containers
        .list(ListContainersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("namespace is required"),
        "{status:?}"
    );
    let status = images.list(ListImagesRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("namespace is required"),
        "{status:?}"
    );

    let status = containers
        .list(namespaced(ListContainersRequest::default(), "Bad.Name!"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // With a valid header the call gets past the check.
    containers
        .list(namespaced(ListContainersRequest::default(), "default"))
        .await
        .expect("a valid namespace header");
}

#[tokio::test]
async fn invalid_names_are_invalid_argument() {
    let daemon = Daemon::start_default().await;
    let mut client = daemon.namespaces();
    let too_long = "a".repeat(77);
    for bad in [
        "",
        "Bad Name!",
        "-lead",
        "trail-",
        "a..b",
        "a/b",
        too_long.as_str(),
    ] {
        let status = client.create(create(bad, &[])).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
    }
    // The longest valid identifier and the separators are accepted.
    let longest = "a".repeat(76);
    for good in [longest.as_str(), "a.b", "a-b", "a_b", "A9"] {
        client
            .create(create(good, &[]))
            .await
            .unwrap_or_else(|s| panic!("{good:?}: {s:?}"));
    }
}

#[tokio::test]
async fn duplicate_create_is_already_exists() {
    let daemon = Daemon::start_default().await;
    let mut client = daemon.namespaces();
    client.create(create("twice", &[])).await.unwrap();
    let status = client.create(create("twice", &[])).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("twice"), "{status:?}");
}

#[tokio::test]
async fn unknown_namespaces_are_not_found() {
    let daemon = Daemon::start_default().await;
    let mut client = daemon.namespaces();
    let status = client
        .delete(DeleteNamespaceRequest {
            name: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = client
        .get(GetNamespaceRequest {
            name: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}
