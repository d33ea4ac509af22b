//! `ctr namespaces create|ls|label|rm`.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use anyhow::{anyhow, bail};
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::namespaces::namespaces_client::NamespacesClient;
use rcontainerd_api::services::namespaces::{
    CreateNamespaceRequest, DeleteNamespaceRequest, ListNamespacesRequest, Namespace,
    UpdateNamespaceRequest,
};

use crate::cli::{NamespaceWithLabels, NamespacesList, NamespacesRemove};
use crate::errors::RpcError;
use crate::labels::parse_labels;
use crate::log;
use crate::tabwriter::TabWriter;

/// Where cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

const MISSING_NAME: &str = "please specify a namespace";

pub async fn create(channel: NamespacedChannel, args: &NamespaceWithLabels) -> anyhow::Result<()> {
    let name = args.name.as_deref().ok_or_else(|| anyhow!(MISSING_NAME))?;
    let namespace = Namespace {
        name: name.to_owned(),
        labels: parse_labels(&args.labels).into_iter().collect(),
    };
    NamespacesClient::new(channel)
        .create(CreateNamespaceRequest {
            namespace: Some(namespace),
        })
        .await
        .map_err(RpcError::from)?;
    Ok(())
}

pub async fn list(channel: NamespacedChannel, args: &NamespacesList) -> anyhow::Result<String> {
    let namespaces = NamespacesClient::new(channel)
        .list(ListNamespacesRequest::default())
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .namespaces;
    Ok(if args.quiet {
        namespaces
            .iter()
            .map(|ns| format!("{}\n", ns.name))
            .collect()
    } else {
        table(&namespaces)
    })
}

/// Sets each label with its own update (the mask names just that label); an
/// empty value removes the label.
pub async fn label(channel: NamespacedChannel, args: &NamespaceWithLabels) -> anyhow::Result<()> {
    let name = args.name.as_deref().ok_or_else(|| anyhow!(MISSING_NAME))?;
    let mut client = NamespacesClient::new(channel);
    for (key, value) in parse_labels(&args.labels) {
        let request = UpdateNamespaceRequest {
            update_mask: Some(prost_types::FieldMask {
                paths: vec![format!("labels.{key}")],
            }),
            namespace: Some(Namespace {
                name: name.to_owned(),
                labels: HashMap::from([(key, value)]),
            }),
        };
        client.update(request).await.map_err(RpcError::from)?;
    }
    Ok(())
}

/// Removes each namespace, printing the name of each one that is gone
/// (including ones that did not exist); a failure is logged and the rest are
/// still tried, and the first failure decides the result.
pub async fn remove(channel: NamespacedChannel, args: &NamespacesRemove) -> anyhow::Result<()> {
    let mut client = NamespacesClient::new(channel);
    let mut first_failure = None;
    for name in &args.names {
        let outcome = async {
            if args.cgroup {
                remove_cgroup(name).map_err(|err| anyhow!("{err}"))?;
            }
            let request = DeleteNamespaceRequest { name: name.clone() };
            match client.delete(request).await {
                Ok(_) => Ok(()),
                Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
                Err(status) => Err(anyhow!(RpcError::from(status))),
            }
        }
        .await;
        match outcome {
            // Printed as we go, like containerd's ctr.
            Ok(()) => println!("{name}"),
            Err(err) => {
                log::error(&format!("unable to delete {name}"), &err);
                first_failure.get_or_insert_with(|| format!("unable to delete {name}: {err}"));
            }
        }
    }
    match first_failure {
        Some(message) => bail!(message),
        None => Ok(()),
    }
}

/// `NAME LABELS`, labels as sorted `key=value` joined by commas.
pub fn table(namespaces: &[Namespace]) -> String {
    let mut writer = TabWriter::new(1, 8, 1, ' ');
    writer.write_str("NAME\tLABELS\t\n");
    for namespace in namespaces {
        let mut labels: Vec<String> = namespace
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        labels.sort();
        writer.write_str(&format!("{}\t{}\t\n", namespace.name, labels.join(",")));
    }
    writer.finish()
}

/// Removes the cgroup named after the namespace: `/sys/fs/cgroup/<name>` on a
/// unified hierarchy, or that directory under every v1 controller. Cgroups
/// that do not exist are fine.
fn remove_cgroup(name: &str) -> io::Result<()> {
    remove_cgroup_under(Path::new(CGROUP_ROOT), name)
}

fn remove_cgroup_under(root: &Path, name: &str) -> io::Result<()> {
    if root.join("cgroup.controllers").exists() {
        return remove_dir_if_present(&root.join(name));
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        // Controllers mounted under several names appear as symlinks; a
        // cgroup2 mount beside the v1 ones (hybrid mode) is left alone, as
        // containerd's ctr does.
        let hierarchy = entry.path();
        if entry.file_type()?.is_dir() && !hierarchy.join("cgroup.controllers").exists() {
            remove_dir_if_present(&hierarchy.join(name))?;
        }
    }
    Ok(())
}

fn remove_dir_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Output of containerd 1.6.20's `ctr ns ls` for the same namespaces.
    #[test]
    fn table_matches_containerds_layout() {
        let namespaces = [
            namespace("bar", &[]),
            namespace("foo", &[("e", "f"), ("c", "d")]),
            namespace("q", &[("novalue", "true"), ("eq", "a=b"), ("dup", "2")]),
        ];
        let expected = "\
NAME LABELS                    
bar                            
foo  c=d,e=f                   
q    dup=2,eq=a=b,novalue=true 
";
        assert_eq!(table(&namespaces), expected);
        assert_eq!(table(&[]), "NAME LABELS \n");
    }

    #[test]
    fn removes_v1_cgroups_under_every_controller() {
        let root = tempfile::tempdir().unwrap();
        for controller in ["cpu", "memory", "pids"] {
            std::fs::create_dir_all(root.path().join(controller).join("ns1")).unwrap();
        }
        std::fs::create_dir_all(root.path().join("pids").join("other")).unwrap();
        let unified = root.path().join("unified");
        std::fs::create_dir_all(unified.join("ns1")).unwrap();
        std::fs::write(unified.join("cgroup.controllers"), "").unwrap();
        remove_cgroup_under(root.path(), "ns1").unwrap();
        assert!(unified.join("ns1").exists());
        for controller in ["cpu", "memory", "pids"] {
            assert!(!root.path().join(controller).join("ns1").exists());
        }
        assert!(root.path().join("pids").join("other").exists());
        // Nothing left to remove is not an error.
        remove_cgroup_under(root.path(), "ns1").unwrap();
    }

    #[test]
    fn removes_the_unified_cgroup() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory").unwrap();
        std::fs::create_dir(root.path().join("ns1")).unwrap();
        std::fs::create_dir(root.path().join("ns2")).unwrap();
        remove_cgroup_under(root.path(), "ns1").unwrap();
        assert!(!root.path().join("ns1").exists());
        assert!(root.path().join("ns2").exists());
    }

    #[test]
    fn a_cgroup_still_in_use_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "").unwrap();
        std::fs::create_dir_all(root.path().join("ns1").join("child")).unwrap();
        assert!(remove_cgroup_under(root.path(), "ns1").is_err());
    }
}
