//! `ctr snapshots prepare|view|commit|diff|mounts|info|ls|tree|usage|label|rm`.
//!
//! Output goes to a buffer the caller prints even when the command fails
//! half-way, since containerd's ctr prints some lines before it fails.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::anyhow;
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{
    CommitSnapshotRequest, Info, Kind, ListSnapshotsRequest, MountsRequest, PrepareSnapshotRequest,
    RemoveSnapshotRequest, StatSnapshotRequest, UpdateSnapshotRequest, UsageRequest,
    ViewSnapshotRequest,
};
use rcontainerd_api::types::Mount;

use crate::cli::{
    help_of, ObjectWithLabels, SnapshotCommit, SnapshotCreate, SnapshotKey, SnapshotKeys,
    SnapshotMounts, SnapshotUsage, SnapshotsArgs, SnapshotsCommand,
};
use crate::errors::RpcError;
use crate::gojson::{rfc3339_nano, Json};
use crate::labels::{joined, label_update, parse_labels};
use crate::tabwriter::TabWriter;
use crate::units::human_bytes;

/// The snapshotter used when none is named (containerd's default on Linux).
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// The label that keeps what ctr creates from being garbage collected.
const GC_ROOT_LABEL: &str = "containerd.io/gc.root";

type Client = SnapshotsClient<NamespacedChannel>;

/// The help text to print instead of running `command`, when it was given
/// the wrong number of arguments (containerd's ctr then prints its help and
/// succeeds).
pub fn help_instead(command: &SnapshotsCommand) -> Option<String> {
    let (name, wrong) = match command {
        SnapshotsCommand::Prepare(args) => ("prepare", create_arguments_wrong(args)),
        SnapshotsCommand::View(args) => ("view", create_arguments_wrong(args)),
        SnapshotsCommand::Commit(args) => (
            "commit",
            args.name.is_none() || args.key.is_none() || !args.extra.is_empty(),
        ),
        SnapshotsCommand::Mounts(args) => (
            "mounts",
            args.target.is_none() || args.key.is_none() || !args.extra.is_empty(),
        ),
        SnapshotsCommand::Info(args) => ("info", args.key.is_none() || !args.extra.is_empty()),
        _ => return None,
    };
    wrong.then(|| help_of(&["snapshots", name]))
}

fn create_arguments_wrong(args: &SnapshotCreate) -> bool {
    args.key.is_none() || !args.extra.is_empty()
}

/// Runs a snapshots command, writing what it prints to `out`.
pub async fn run(
    channel: NamespacedChannel,
    args: &SnapshotsArgs,
    out: &mut String,
) -> anyhow::Result<()> {
    let snapshotter = snapshotter_name(args.snapshotter.as_deref());
    let mut client = SnapshotsClient::new(channel.clone());
    match &args.command {
        SnapshotsCommand::Diff(diff_args) => {
            super::snapshot_diff::run(channel, snapshotter, diff_args).await
        }
        SnapshotsCommand::Prepare(create) => prepare(&mut client, snapshotter, create, out).await,
        SnapshotsCommand::View(create) => view(&mut client, snapshotter, create, out).await,
        SnapshotsCommand::Commit(commit_args) => {
            commit(&mut client, snapshotter, commit_args).await
        }
        SnapshotsCommand::Mounts(mounts_args) => {
            mounts(&mut client, snapshotter, mounts_args, out).await
        }
        SnapshotsCommand::Info(key) => info(&mut client, snapshotter, key, out).await,
        SnapshotsCommand::List(_) => list(&mut client, snapshotter, out).await,
        SnapshotsCommand::Tree(_) => tree(&mut client, snapshotter, out).await,
        SnapshotsCommand::Usage(usage_args) => {
            usage(&mut client, snapshotter, usage_args, out).await
        }
        SnapshotsCommand::Label(label_args) => {
            label(&mut client, snapshotter, label_args, out).await
        }
        SnapshotsCommand::Delete(keys) => remove(&mut client, snapshotter, keys).await,
    }
}

/// `--snapshotter`/`$CONTAINERD_SNAPSHOTTER`, empty meaning the default.
pub fn snapshotter_name(given: Option<&str>) -> &str {
    match given {
        Some(name) if !name.is_empty() => name,
        _ => DEFAULT_SNAPSHOTTER,
    }
}

fn gc_root_labels() -> HashMap<String, String> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    HashMap::from([(GC_ROOT_LABEL.to_owned(), now)])
}

async fn prepare(
    client: &mut Client,
    snapshotter: &str,
    args: &SnapshotCreate,
    out: &mut String,
) -> anyhow::Result<()> {
    let request = PrepareSnapshotRequest {
        snapshotter: snapshotter.to_owned(),
        key: args.key.clone().unwrap_or_default(),
        parent: args.parent.clone().unwrap_or_default(),
        labels: gc_root_labels(),
    };
    let mounts = client
        .prepare(request)
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .mounts;
    print_created(args, &mounts, out);
    Ok(())
}

/// Views carry no labels, as with containerd's ctr.
async fn view(
    client: &mut Client,
    snapshotter: &str,
    args: &SnapshotCreate,
    out: &mut String,
) -> anyhow::Result<()> {
    let request = ViewSnapshotRequest {
        snapshotter: snapshotter.to_owned(),
        key: args.key.clone().unwrap_or_default(),
        parent: args.parent.clone().unwrap_or_default(),
        labels: HashMap::new(),
    };
    let mounts = client
        .view(request)
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .mounts;
    print_created(args, &mounts, out);
    Ok(())
}

/// Mount commands for `--target`, then the mounts as JSON for `--mounts`.
fn print_created(args: &SnapshotCreate, mounts: &[Mount], out: &mut String) {
    if let Some(target) = args.target.as_deref().filter(|target| !target.is_empty()) {
        out.push_str(&mount_commands(target, mounts));
    }
    if args.mounts {
        out.push_str(&mounts_json(mounts));
        out.push('\n');
    }
}

async fn commit(
    client: &mut Client,
    snapshotter: &str,
    args: &SnapshotCommit,
) -> anyhow::Result<()> {
    let request = CommitSnapshotRequest {
        snapshotter: snapshotter.to_owned(),
        name: args.name.clone().unwrap_or_default(),
        key: args.key.clone().unwrap_or_default(),
        labels: gc_root_labels(),
    };
    client.commit(request).await.map_err(RpcError::from)?;
    Ok(())
}

async fn mounts(
    client: &mut Client,
    snapshotter: &str,
    args: &SnapshotMounts,
    out: &mut String,
) -> anyhow::Result<()> {
    let request = MountsRequest {
        snapshotter: snapshotter.to_owned(),
        key: args.key.clone().unwrap_or_default(),
    };
    let mounts = client
        .mounts(request)
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .mounts;
    out.push_str(&mount_commands(
        args.target.as_deref().unwrap_or_default(),
        &mounts,
    ));
    Ok(())
}

async fn info(
    client: &mut Client,
    snapshotter: &str,
    args: &SnapshotKey,
    out: &mut String,
) -> anyhow::Result<()> {
    let info = stat(client, snapshotter, args.key.as_deref().unwrap_or_default()).await?;
    out.push_str(&info_json(&info));
    out.push('\n');
    Ok(())
}

async fn stat(client: &mut Client, snapshotter: &str, key: &str) -> anyhow::Result<Info> {
    let request = StatSnapshotRequest {
        snapshotter: snapshotter.to_owned(),
        key: key.to_owned(),
    };
    let response = client.stat(request).await.map_err(RpcError::from)?;
    response
        .into_inner()
        .info
        .ok_or_else(|| anyhow!("snapshot {key}: the daemon answered without info"))
}

/// Every snapshot of the snapshotter, in the order the daemon sends them.
async fn walk(client: &mut Client, snapshotter: &str) -> anyhow::Result<Vec<Info>> {
    let request = ListSnapshotsRequest {
        snapshotter: snapshotter.to_owned(),
        filters: Vec::new(),
    };
    let mut stream = client
        .list(request)
        .await
        .map_err(RpcError::from)?
        .into_inner();
    let mut infos = Vec::new();
    while let Some(response) = stream.message().await.map_err(RpcError::from)? {
        infos.extend(response.info);
    }
    Ok(infos)
}

async fn list(client: &mut Client, snapshotter: &str, out: &mut String) -> anyhow::Result<()> {
    let infos = walk(client, snapshotter).await?;
    out.push_str(&list_table(&infos));
    Ok(())
}

/// `KEY PARENT KIND`, one snapshot a row.
pub fn list_table(infos: &[Info]) -> String {
    let mut writer = TabWriter::new(1, 8, 1, ' ');
    writer.write_str("KEY\tPARENT\tKIND\t\n");
    for info in infos {
        writer.write_str(&format!(
            "{}\t{}\t{}\t\n",
            info.name,
            info.parent,
            kind_name(info.kind)
        ));
    }
    writer.finish()
}

async fn tree(client: &mut Client, snapshotter: &str, out: &mut String) -> anyhow::Result<()> {
    let infos = walk(client, snapshotter).await?;
    out.push_str(&tree_text(&infos));
    Ok(())
}

/// One node of the tree: the snapshot's parent (empty for a root or a parent
/// not listed) and its children in the order they were listed.
#[derive(Default)]
struct TreeNode {
    name: String,
    parent: String,
    children: Vec<String>,
}

/// Each root snapshot and, indented below it, its descendants:
/// ` root`, `  \_ child`, `    \_ grandchild`. A parent that was not listed
/// itself still appears, as a root.
pub fn tree_text(infos: &[Info]) -> String {
    let mut nodes: Vec<TreeNode> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut node_at = |nodes: &mut Vec<TreeNode>, name: &str| -> usize {
        *index.entry(name.to_owned()).or_insert_with(|| {
            nodes.push(TreeNode {
                name: name.to_owned(),
                ..TreeNode::default()
            });
            nodes.len() - 1
        })
    };
    for info in infos {
        let at = node_at(&mut nodes, &info.name);
        nodes[at].parent = info.parent.clone();
        if !info.parent.is_empty() {
            let parent_at = node_at(&mut nodes, &info.parent);
            nodes[parent_at].children.push(info.name.clone());
        }
    }
    let by_name: HashMap<&str, &TreeNode> = nodes
        .iter()
        .map(|node| (node.name.as_str(), node))
        .collect();
    let mut out = String::new();
    for node in nodes.iter().filter(|node| node.parent.is_empty()) {
        print_node(node, &by_name, 0, &mut out);
    }
    out
}

fn print_node(node: &TreeNode, by_name: &HashMap<&str, &TreeNode>, level: usize, out: &mut String) {
    let mut prefix = "  ".repeat(level);
    if level > 0 {
        prefix.push_str("\\_");
    }
    let _ = writeln!(out, "{prefix} {}", node.name);
    for child in &node.children {
        if let Some(child) = by_name.get(child.as_str()) {
            print_node(child, by_name, level + 1, out);
        }
    }
}

/// Nothing is printed unless every snapshot's usage could be read.
async fn usage(
    client: &mut Client,
    snapshotter: &str,
    args: &SnapshotUsage,
    out: &mut String,
) -> anyhow::Result<()> {
    let keys = if args.keys.is_empty() {
        walk(client, snapshotter)
            .await?
            .into_iter()
            .map(|info| info.name)
            .collect()
    } else {
        args.keys.clone()
    };
    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        let request = UsageRequest {
            snapshotter: snapshotter.to_owned(),
            key: key.clone(),
        };
        let usage = client
            .usage(request)
            .await
            .map_err(RpcError::from)?
            .into_inner();
        rows.push((key, usage.size, usage.inodes));
    }
    out.push_str(&usage_table(&rows, args.bytes));
    Ok(())
}

/// `KEY SIZE INODES`, sizes in bytes or in binary units.
pub fn usage_table(rows: &[(String, i64, i64)], in_bytes: bool) -> String {
    let mut writer = TabWriter::new(1, 8, 1, ' ');
    writer.write_str("KEY\tSIZE\tINODES\t\n");
    for (key, size, inodes) in rows {
        let size = if in_bytes {
            size.to_string()
        } else {
            human_bytes(*size)
        };
        writer.write_str(&format!("{key}\t{size}\t{inodes}\t\n"));
    }
    writer.finish()
}

/// Sets or clears the given labels in one update (no labels: just reads
/// them) and prints the snapshot's labels afterwards.
async fn label(
    client: &mut Client,
    snapshotter: &str,
    args: &ObjectWithLabels,
    out: &mut String,
) -> anyhow::Result<()> {
    let key = args.object.clone().unwrap_or_default();
    let labels = parse_labels(&args.labels);
    let info = if labels.is_empty() {
        stat(client, snapshotter, &key).await?
    } else {
        let (labels, update_mask) = label_update(labels);
        let request = UpdateSnapshotRequest {
            snapshotter: snapshotter.to_owned(),
            info: Some(Info {
                name: key.clone(),
                labels,
                ..Info::default()
            }),
            update_mask: Some(update_mask),
        };
        client
            .update(request)
            .await
            .map_err(RpcError::from)?
            .into_inner()
            .info
            .ok_or_else(|| anyhow!("snapshot {key}: the daemon answered without info"))?
    };
    out.push_str(&joined(&info.labels));
    out.push('\n');
    Ok(())
}

/// Removes the snapshots in order, stopping at the first failure.
async fn remove(client: &mut Client, snapshotter: &str, args: &SnapshotKeys) -> anyhow::Result<()> {
    for key in &args.keys {
        let request = RemoveSnapshotRequest {
            snapshotter: snapshotter.to_owned(),
            key: key.clone(),
        };
        client
            .remove(request)
            .await
            .map_err(|status| anyhow!("failed to remove {key:?}: {}", RpcError::from(status)))?;
    }
    Ok(())
}

/// Go's name for a snapshot kind.
fn kind_name(kind: i32) -> &'static str {
    match Kind::try_from(kind) {
        Ok(Kind::View) => "View",
        Ok(Kind::Active) => "Active",
        Ok(Kind::Committed) => "Committed",
        _ => "Unknown",
    }
}

/// `mount -t TYPE SOURCE TARGET -o OPTIONS`, one line a mount.
pub fn mount_commands(target: &str, mounts: &[Mount]) -> String {
    mounts
        .iter()
        .map(|mount| {
            format!(
                "mount -t {} {} {target} -o {}\n",
                mount.r#type,
                mount.source,
                mount.options.join(",")
            )
        })
        .collect()
}

/// The mounts as ctr prints them: `Type`, `Source`, `Options` objects.
pub fn mounts_json(mounts: &[Mount]) -> String {
    let value = if mounts.is_empty() {
        Json::Null
    } else {
        Json::Array(
            mounts
                .iter()
                .map(|mount| {
                    Json::Object(vec![
                        ("Type".into(), Json::string(mount.r#type.as_str())),
                        ("Source".into(), Json::string(mount.source.as_str())),
                        ("Options".into(), Json::strings(&mount.options)),
                    ])
                })
                .collect(),
        )
    };
    value.to_indented("    ")
}

/// A snapshot's info as ctr prints it; `Parent` and `Labels` only when set.
pub fn info_json(info: &Info) -> String {
    let mut members = vec![
        ("Kind".to_owned(), Json::string(kind_name(info.kind))),
        ("Name".to_owned(), Json::string(info.name.as_str())),
    ];
    if !info.parent.is_empty() {
        members.push(("Parent".to_owned(), Json::string(info.parent.as_str())));
    }
    if !info.labels.is_empty() {
        members.push(("Labels".to_owned(), Json::sorted_map(&info.labels)));
    }
    members.push((
        "Created".to_owned(),
        Json::String(rfc3339_nano(info.created_at.as_ref())),
    ));
    members.push((
        "Updated".to_owned(),
        Json::String(rfc3339_nano(info.updated_at.as_ref())),
    ));
    Json::Object(members).to_indented("    ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, parent: &str, kind: Kind) -> Info {
        Info {
            name: name.into(),
            parent: parent.into(),
            kind: kind as i32,
            ..Info::default()
        }
    }

    /// containerd 1.6.20's `ctr snapshots ls` for the same snapshots.
    #[test]
    fn list_matches_containerds_layout() {
        let infos = [
            info("b", "c1", Kind::Active),
            info("c", "c1", Kind::Active),
            info("c1", "", Kind::Committed),
            info("v", "c1", Kind::View),
        ];
        let expected = "\
KEY PARENT KIND      
b   c1     Active    
c   c1     Active    
c1         Committed 
v   c1     View      
";
        assert_eq!(list_table(&infos), expected);
        assert_eq!(list_table(&[]), "KEY PARENT KIND \n");
    }

    #[test]
    fn tree_matches_containerds_layout() {
        let infos = [
            info("b", "c1", Kind::Active),
            info("c", "c1", Kind::Active),
            info("c1", "", Kind::Committed),
            info("v", "c1", Kind::View),
        ];
        assert_eq!(tree_text(&infos), " c1\n  \\_ b\n  \\_ c\n  \\_ v\n");
    }

    #[test]
    fn tree_nests_deeper_levels_and_keeps_listing_order() {
        let infos = [
            info("a", "", Kind::Committed),
            info("a1", "a", Kind::Committed),
            info("a1x", "a1", Kind::Active),
            info("z", "", Kind::Active),
            info("a2", "a", Kind::View),
        ];
        let expected = " a\n  \\_ a1\n    \\_ a1x\n  \\_ a2\n z\n";
        assert_eq!(tree_text(&infos), expected);
        // A parent that is not listed is printed as a root of its own.
        let orphan = [info("child", "gone", Kind::Active)];
        assert_eq!(tree_text(&orphan), " gone\n  \\_ child\n");
    }

    #[test]
    fn usage_matches_containerds_layout() {
        let rows = [
            ("b".to_owned(), 4096, 1),
            ("c".to_owned(), 5_124_096, 2),
            ("v".to_owned(), 0, 0),
        ];
        let human = "\
KEY SIZE    INODES 
b   4.0 KiB 1      
c   4.9 MiB 2      
v   0.0 B   0      
";
        assert_eq!(usage_table(&rows, false), human);
        let bytes = "\
KEY SIZE    INODES 
b   4096    1      
c   5124096 2      
v   0       0      
";
        assert_eq!(usage_table(&rows, true), bytes);
    }

    fn mount(kind: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            r#type: kind.into(),
            source: source.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Mount::default()
        }
    }

    #[test]
    fn prints_mount_commands_like_containerds_ctr() {
        let mounts = [mount("bind", "/r/1/fs", &["ro", "rbind"])];
        assert_eq!(
            mount_commands("/mnt/y", &mounts),
            "mount -t bind /r/1/fs /mnt/y -o ro,rbind\n"
        );
        let bare = [mount("tmpfs", "none", &[])];
        assert_eq!(mount_commands("/t", &bare), "mount -t tmpfs none /t -o \n");
    }

    #[test]
    fn prints_mounts_json_like_containerds_ctr() {
        let mounts = [mount("bind", "/r/1/fs", &["ro", "rbind"])];
        let expected = r#"[
    {
        "Type": "bind",
        "Source": "/r/1/fs",
        "Options": [
            "ro",
            "rbind"
        ]
    }
]"#;
        assert_eq!(mounts_json(&mounts), expected);
        assert_eq!(mounts_json(&[]), "null");
        let bare = [mount("tmpfs", "none", &[])];
        assert!(mounts_json(&bare).contains("\"Options\": null"));
    }

    #[test]
    fn prints_info_like_containerds_ctr() {
        let mut committed = info("c1", "", Kind::Committed);
        committed
            .labels
            .insert(GC_ROOT_LABEL.into(), "2026-11-23T22:41:13Z".into());
        committed.created_at = Some(prost_types::Timestamp {
            seconds: 1_795_473_673,
            nanos: 846_192_938,
        });
        committed.updated_at = committed.created_at;
        let expected = r#"{
    "Kind": "Committed",
    "Name": "c1",
    "Labels": {
        "containerd.io/gc.root": "2026-11-23T22:41:13Z"
    },
    "Created": "2026-11-23T22:41:13.846192938Z",
    "Updated": "2026-11-23T22:41:13.846192938Z"
}"#;
        assert_eq!(info_json(&committed), expected);
        let view = info("v", "c1", Kind::View);
        let expected = r#"{
    "Kind": "View",
    "Name": "v",
    "Parent": "c1",
    "Created": "0001-01-01T00:00:00Z",
    "Updated": "0001-01-01T00:00:00Z"
}"#;
        assert_eq!(info_json(&view), expected);
    }

    #[test]
    fn the_default_snapshotter_is_overlayfs() {
        assert_eq!(snapshotter_name(None), "overlayfs");
        assert_eq!(snapshotter_name(Some("")), "overlayfs");
        assert_eq!(snapshotter_name(Some("native")), "native");
    }

    #[test]
    fn wrong_argument_counts_print_help() {
        use crate::cli::Cli;
        use clap::Parser as _;
        let command = |args: &[&str]| {
            let Cli {
                command: crate::cli::Command::Snapshots(snapshots),
                ..
            } = Cli::try_parse_from(args).unwrap()
            else {
                panic!("not snapshots");
            };
            snapshots.command
        };
        for args in [
            &["ctr", "snapshots", "prepare"][..],
            &["ctr", "snapshots", "view", "a", "b", "c"],
            &["ctr", "snapshots", "commit", "x"],
            &["ctr", "snapshots", "mounts"],
            &["ctr", "snapshots", "info"],
        ] {
            assert!(help_instead(&command(args)).is_some(), "{args:?}");
        }
        for args in [
            &["ctr", "snapshots", "prepare", "a", "b"][..],
            &["ctr", "snapshots", "commit", "x", "y"],
            &["ctr", "snapshots", "ls", "extra"],
            &["ctr", "snapshots", "rm"],
        ] {
            assert!(help_instead(&command(args)).is_none(), "{args:?}");
        }
    }
}
