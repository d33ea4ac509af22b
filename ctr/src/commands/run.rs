//! `ctr run`: `containers create` and `tasks start` in one, as containerd
//! 1.6's ctr runs them — the container made by the same code (with `run`'s
//! resource and runc flags), its task created with ctr's stdio, waited for,
//! started and followed; ctr exits with the task's status. With `--rm` the
//! container and its snapshot go afterwards, whatever happened.

use anyhow::bail;
use rcontainerd_api::client::NamespacedChannel;

use crate::cio::TaskIo;
use crate::cli::Run;
use crate::commands::container_create::{self, NewContainer, RunExtras};
use crate::commands::containers;
use crate::commands::tasks::{self, Started};
use crate::errors::ExitStatus;

/// The checks containerd's ctr makes before it dials.
pub fn check_arguments(args: &Run) -> anyhow::Result<()> {
    container_create::check_arguments(&args.flags, &args.args, "")?;
    if args.rm && args.detach {
        bail!("flags --detach and --rm cannot be specified together");
    }
    not_supported(args)
}

/// Flags accepted for compatibility whose effect is not implemented.
fn not_supported(args: &Run) -> anyhow::Result<()> {
    let unsupported = [
        (args.cni, "--cni"),
        (
            args.platform.as_deref().is_some_and(|p| !p.is_empty()),
            "--platform",
        ),
        (
            args.uidmap.as_deref().is_some_and(|m| !m.is_empty()),
            "--uidmap",
        ),
        (
            args.gidmap.as_deref().is_some_and(|m| !m.is_empty()),
            "--gidmap",
        ),
    ];
    for (set, flag) in unsupported {
        if set {
            bail!("{flag} is not supported by this ctr's run yet: not implemented");
        }
    }
    Ok(())
}

pub async fn run(channel: NamespacedChannel, namespace: &str, args: &Run) -> anyhow::Result<()> {
    let id = container_create::container_id(&args.flags, &args.args).to_string();
    let new = NewContainer {
        flags: &args.flags,
        positional: &args.args,
        extras: RunExtras {
            cpus: args.cpus,
            cpu_shares: args.cpu_shares,
            cgroup: args.cgroup.clone(),
            runc_binary: args.runc_binary.clone().unwrap_or_default(),
            runc_root: args.runc_root.clone().unwrap_or_default(),
            runc_systemd_cgroup: args.runc_systemd_cgroup,
        },
    };
    container_create::create(channel.clone(), namespace, &new).await?;
    let result = run_task(&channel, &id, args).await;
    if args.rm && !args.detach {
        // As ctr's deferred `container.Delete(WithSnapshotCleanup)`: its
        // failure (a task still there) is not reported.
        let _ = containers::delete_one(channel.clone(), &id, true).await;
    }
    match result? {
        0 => Ok(()),
        code => Err(ExitStatus(code).into()),
    }
}

/// The task: created, started and (unless `-d`) followed to its end.
async fn run_task(channel: &NamespacedChannel, id: &str, args: &Run) -> anyhow::Result<u32> {
    let container = containers::get(channel.clone(), id).await?;
    let console = if args.flags.tty {
        Some(tasks::raw_console()?)
    } else {
        None
    };
    let streams = tasks::streams(console.as_ref(), args.null_io, args.log_uri.as_deref())?;
    let mut io = TaskIo::create(args.fifo_dir.as_deref(), id, streams)?;
    let pid = match tasks::create_task(channel, &container, &io, args.flags.no_pivot).await {
        Ok(pid) => pid,
        Err(err) => {
            io.remove();
            return Err(err);
        }
    };
    let followed = tasks::start_and_follow(
        Started {
            channel,
            id,
            exec_id: "",
            pid,
            detach: args.detach,
            pid_file: args.flags.pid_file.as_deref(),
            console: console.as_ref(),
        },
        io,
    )
    .await;
    if followed.is_err() && !args.detach {
        tasks::delete_after_failure(channel, id, pid).await;
    }
    followed
}
