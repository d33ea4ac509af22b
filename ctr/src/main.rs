//! ctr: command-line client for rcontainerd, with the commands, flags, output
//! and exit codes of containerd's ctr 1.6 (for the commands it implements), so
//! it drives containerd as well.

mod cio;
mod cli;
mod commands;
mod console;
mod errors;
mod fetch;
mod gojson;
mod image_content;
mod labels;
mod log;
mod metrics;
mod oci;
mod spec;
mod tabwriter;
mod units;
mod unpack;

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser as _;
use rcontainerd_api::client::{self, Headers, NamespacedChannel, DEFAULT_CONNECT_TIMEOUT};

use crate::cli::{
    Cli, Command, ContainersCommand, GlobalOptions, ImagesCommand, LeasesCommand,
    NamespacesCommand, PluginsCommand, TasksCommand,
};
use crate::errors::{ExitStatus, RpcError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// Help and version requests succeed; usage mistakes exit 1, as with
/// containerd's ctr (clap would exit 2).
fn usage(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        // A command group given without its command: help on stdout, like
        // containerd's ctr (clap would write it to stderr).
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            print!("{}", err.render());
            ExitCode::SUCCESS
        }
        _ => {
            let _ = err.print();
            ExitCode::FAILURE
        }
    }
}

/// Reports `err` the way containerd's ctr does: `ctr: <message>`, exit 1;
/// a process's exit status is passed on silently.
fn fail(err: &anyhow::Error) -> ExitCode {
    let _ = std::io::stdout().flush();
    if let Some(ExitStatus(code)) = err.downcast_ref::<ExitStatus>() {
        return ExitCode::from((code & 0xff) as u8);
    }
    eprintln!("ctr: {err:#}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match &cli.command {
        Command::Version => {
            print!("{}", commands::version::client_section());
            let channel = dial(global).await?;
            within_timeout(global, commands::version::server_section(channel)).await
        }
        Command::Plugins(PluginsCommand::List(options)) => {
            let channel = dial(global).await?;
            let text = within_timeout(global, commands::plugins::list(channel, options)).await?;
            print!("{text}");
            Ok(())
        }
        Command::Namespaces(command) => {
            let channel = dial(global).await?;
            match command {
                NamespacesCommand::Create(args) => {
                    within_timeout(global, commands::namespaces::create(channel, args)).await
                }
                NamespacesCommand::List(args) => {
                    let text =
                        within_timeout(global, commands::namespaces::list(channel, args)).await?;
                    print!("{text}");
                    Ok(())
                }
                NamespacesCommand::Label(args) => {
                    within_timeout(global, commands::namespaces::label(channel, args)).await
                }
                NamespacesCommand::Remove(args) => {
                    within_timeout(global, commands::namespaces::remove(channel, args)).await
                }
            }
        }
        Command::Snapshots(args) => {
            if let Some(help) = commands::snapshots::help_instead(&args.command) {
                print!("{help}");
                return Ok(());
            }
            let channel = dial(global).await?;
            let mut out = String::new();
            let result =
                within_timeout(global, commands::snapshots::run(channel, args, &mut out)).await;
            print!("{out}");
            result
        }
        Command::Images(command) => {
            commands::image_import::check_before_dial(command)?;
            if let ImagesCommand::Pull(args) = command {
                commands::image_pull::check_before_dial(args)?;
            }
            let channel = dial(global).await?;
            use commands::images;
            match command {
                ImagesCommand::List(args) => {
                    print!(
                        "{}",
                        within_timeout(global, images::list(channel, args)).await?
                    );
                    Ok(())
                }
                ImagesCommand::Check(args) => {
                    let mut out = String::new();
                    let result =
                        within_timeout(global, images::check(channel, args, &mut out)).await;
                    print!("{out}");
                    result
                }
                ImagesCommand::Remove(args) => {
                    within_timeout(global, images::remove(channel, args)).await
                }
                ImagesCommand::Tag(args) => {
                    within_timeout(global, images::tag(channel, args)).await
                }
                ImagesCommand::Label(args) => {
                    within_timeout(global, images::label(channel, args)).await
                }
                ImagesCommand::Import(args) => {
                    within_timeout(
                        global,
                        commands::image_import::run(channel, &global.namespace, args),
                    )
                    .await
                }
                ImagesCommand::Export(args) => {
                    within_timeout(global, commands::image_export::run(channel, args)).await
                }
                ImagesCommand::Mount(args) => {
                    within_timeout(
                        global,
                        commands::image_mount::mount(channel, &global.namespace, args),
                    )
                    .await
                }
                ImagesCommand::Unmount(args) => {
                    within_timeout(
                        global,
                        commands::image_mount::unmount(channel, &global.namespace, args),
                    )
                    .await
                }
                ImagesCommand::Pull(args) => {
                    within_timeout(
                        global,
                        commands::image_pull::run(channel, &global.namespace, global.debug, args),
                    )
                    .await
                }
            }
        }
        Command::Containers(command) => {
            if let ContainersCommand::Create(args) = command {
                commands::container_create::check_arguments(
                    &args.flags,
                    &args.args,
                    ": invalid argument",
                )?;
            }
            let channel = dial(global).await?;
            use commands::containers;
            match command {
                ContainersCommand::Create(args) => {
                    let new = commands::container_create::NewContainer {
                        flags: &args.flags,
                        positional: &args.args,
                        extras: Default::default(),
                    };
                    within_timeout(
                        global,
                        commands::container_create::create(channel, &global.namespace, &new),
                    )
                    .await
                }
                ContainersCommand::List(args) => {
                    print!(
                        "{}",
                        within_timeout(global, containers::list(channel, args)).await?
                    );
                    Ok(())
                }
                ContainersCommand::Info(args) => {
                    print!(
                        "{}",
                        within_timeout(global, containers::info(channel, args)).await?
                    );
                    Ok(())
                }
                ContainersCommand::Delete(args) => {
                    within_timeout(global, containers::delete(channel, args)).await
                }
                ContainersCommand::Label(args) => {
                    within_timeout(global, containers::label(channel, args)).await
                }
            }
        }
        Command::Leases(command) => {
            let channel = dial(global).await?;
            use commands::leases;
            match command {
                LeasesCommand::List(args) => {
                    print!(
                        "{}",
                        within_timeout(global, leases::list(channel, args)).await?
                    );
                    Ok(())
                }
                LeasesCommand::Create(args) => {
                    within_timeout(global, leases::create(channel, args)).await
                }
                LeasesCommand::Delete(args) => {
                    within_timeout(global, leases::delete(channel, args)).await
                }
            }
        }
        Command::Events(args) => {
            let channel = dial(global).await?;
            let events = commands::events::run(channel, &args.filters);
            if global.timeout.is_zero() {
                return events.await;
            }
            // The stream ends at the deadline, in grpc-go's words.
            match tokio::time::timeout(global.timeout, events).await {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!(
                    "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
                )),
            }
        }
        Command::Run(args) => {
            commands::run::check_arguments(args)?;
            let channel = dial(global).await?;
            within_timeout(global, commands::run::run(channel, &global.namespace, args)).await
        }
        Command::Tasks(command) => run_tasks(global, command).await,
        Command::Content(command) => {
            commands::content::check_before_dial(command)?;
            let channel = dial(global).await?;
            if let cli::ContentCommand::Fetch(args) = command {
                return within_timeout(
                    global,
                    commands::image_pull::fetch_content(channel, global.debug, args),
                )
                .await;
            }
            let mut out = String::new();
            let result =
                within_timeout(global, commands::content::run(channel, command, &mut out)).await;
            print!("{out}");
            result
        }
    }
}

async fn run_tasks(global: &GlobalOptions, command: &TasksCommand) -> anyhow::Result<()> {
    use commands::tasks;
    if let TasksCommand::Exec(args) = command {
        if args.exec_id.is_none() {
            // urfave/cli's check of a required flag: the help, then the failure.
            print!("{}", cli::help_of(&["tasks", "exec"]));
            anyhow::bail!("Required flag \"exec-id\" not set");
        }
    }
    let channel = dial(global).await?;
    match command {
        TasksCommand::List(args) => {
            print!(
                "{}",
                within_timeout(global, tasks::list(channel, args)).await?
            );
            Ok(())
        }
        TasksCommand::Ps(args) => {
            print!(
                "{}",
                within_timeout(global, tasks::ps(channel, args)).await?
            );
            Ok(())
        }
        TasksCommand::Metrics(args) => {
            print!(
                "{}",
                within_timeout(global, tasks::metrics(channel, args)).await?
            );
            Ok(())
        }
        TasksCommand::Kill(args) => within_timeout(global, tasks::kill(channel, args)).await,
        TasksCommand::Delete(args) => within_timeout(global, tasks::delete(channel, args)).await,
        TasksCommand::Pause(args) => {
            within_timeout(global, tasks::pause(channel, args, false)).await
        }
        TasksCommand::Resume(args) => {
            within_timeout(global, tasks::pause(channel, args, true)).await
        }
        TasksCommand::Start(args) => within_timeout(global, tasks::start(channel, args)).await,
        TasksCommand::Exec(args) => within_timeout(global, tasks::exec(channel, args)).await,
        TasksCommand::Attach(args) => within_timeout(global, tasks::attach(channel, args)).await,
    }
}

async fn dial(global: &GlobalOptions) -> anyhow::Result<NamespacedChannel> {
    let timeout = if global.connect_timeout.is_zero() {
        DEFAULT_CONNECT_TIMEOUT
    } else {
        global.connect_timeout
    };
    if global.debug {
        log::debug(&format!("dialling {}", global.address));
    }
    let channel = client::connect(&global.address, timeout).await?;
    // A namespace that cannot be a header value is sent as no header: the
    // daemon then rejects the call like one without a namespace.
    let headers = Headers::new()
        .namespace(&global.namespace)
        .unwrap_or_default();
    Ok(headers.intercept(channel))
}

/// Runs a command's calls under `--timeout` (none when it is zero).
async fn within_timeout<T>(
    global: &GlobalOptions,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    if global.timeout.is_zero() {
        return work.await;
    }
    match tokio::time::timeout(global.timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(RpcError::deadline_exceeded().into()),
    }
}
