//! Running a shim binary: its name from the runtime name, `start` (which leaves a shim serving
//! ttrpc and prints its address) and `delete` (the clean-up of a shim that died).
//!
//! The protocol is containerd's: flags before the action word, the bundle as the working
//! directory, `TTRPC_ADDRESS` naming where the shim forwards its events, the runtime options
//! (a protobuf `Any`) on stdin — which must reach EOF —, and `<bundle>/log`, a FIFO the
//! daemon holds open *before* the shim starts (without it the shim dies at once).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use prost::Message;
use rcontainerd_plugin_api::{runtime::AnyValue, ErrorKind, PluginError, Result};
use serde::Deserialize;

use crate::bundle::Bundle;

/// The type of the runc shim's options (`io.containerd.runc.*` runtimes), without the
/// `type.googleapis.com/` prefix a client may put before it.
pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";

/// What every invocation shares.
#[derive(Debug, Clone)]
pub struct ShimEnv {
    /// The daemon's gRPC socket: part of the shim's socket name, so two daemons never share.
    pub grpc_address: String,
    /// Where shims forward their events.
    pub ttrpc_address: String,
}

/// `io.containerd.runc.v2` → `containerd-shim-runc-v2`, looked up on PATH and next to the
/// daemon; an absolute path is used as it is.
pub fn resolve(runtime: &str) -> Result<PathBuf> {
    if runtime.is_empty() {
        return Err(PluginError::invalid_argument("no runtime name"));
    }
    let path = Path::new(runtime);
    if path.is_absolute() {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(PluginError::not_found(format!("runtime {runtime}")))
        };
    }
    let parts: Vec<&str> = runtime.split('.').collect();
    if parts.len() < 2 {
        return Err(PluginError::invalid_argument(format!(
            "invalid runtime name {runtime}, correct runtime name should be either format like `io.containerd.runc.v1` or a full path to the binary"
        )));
    }
    let name = format!(
        "containerd-shim-{}-{}",
        parts[parts.len() - 2],
        parts[parts.len() - 1]
    );
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    dirs.into_iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            PluginError::not_found(format!(
                "runtime {runtime:?} binary not installed {name:?}: file does not exist"
            ))
        })
}

fn command(binary: &Path, env: &ShimEnv, bundle: &Bundle, action: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut cmd = Command::new(binary);
    cmd.arg("-namespace")
        .arg(&bundle.namespace)
        .arg("-address")
        .arg(&env.grpc_address)
        .arg("-publish-binary")
        .arg(exe)
        .arg("-id")
        .arg(&bundle.id)
        .args(action)
        .current_dir(&bundle.path)
        .env("TTRPC_ADDRESS", &env.ttrpc_address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a signal to the daemon's group does not reach the shims.
        .process_group(0);
    cmd
}

/// Runs the command with `input` on stdin (then EOF); its stdout on success (a shim logs to
/// stderr, which only goes into the error).
fn run(mut cmd: Command, input: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut child = cmd
        .spawn()
        .map_err(|e| PluginError::io(format!("{what}: spawn {:?}", cmd.get_program()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A shim that exits early closes its end; its status then says why.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| PluginError::io(format!("{what}: wait"), e))?;
    if !out.status.success() {
        let mut combined = out.stdout;
        combined.extend_from_slice(&out.stderr);
        return Err(PluginError::new(
            ErrorKind::Unknown,
            format!(
                "{what}: {}: {}",
                String::from_utf8_lossy(&combined).trim(),
                out.status
            ),
        ));
    }
    Ok(out.stdout)
}

fn encode_any(options: Option<&AnyValue>) -> Vec<u8> {
    options
        .map(|o| {
            prost_types::Any {
                type_url: o.type_url.clone(),
                value: o.value.clone(),
            }
            .encode_to_vec()
        })
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct Bootstrap {
    address: String,
    #[serde(default)]
    protocol: String,
}

/// The address a shim's `start` printed: a plain `unix://…` (1.6) or a JSON bootstrap
/// `{"version":…,"address":…,"protocol":…}` (1.7 and later).
pub fn parse_address(output: &[u8]) -> Result<String> {
    let text = String::from_utf8_lossy(output);
    let text = text.trim();
    if text.starts_with('{') {
        let boot: Bootstrap = serde_json::from_str(text).map_err(|e| {
            PluginError::new(
                ErrorKind::Unknown,
                format!("shim start: unreadable bootstrap {text:?}: {e}"),
            )
        })?;
        if !boot.protocol.is_empty() && boot.protocol != "ttrpc" {
            return Err(PluginError::not_implemented(format!(
                "shim speaks {}; only ttrpc is supported",
                boot.protocol
            )));
        }
        return Ok(boot.address);
    }
    // Only the last line: a shim may log before it prints the address.
    let address = text.lines().last().unwrap_or_default().trim();
    if address.is_empty() {
        return Err(PluginError::new(
            ErrorKind::Unknown,
            "shim start printed no address",
        ));
    }
    Ok(address.to_string())
}

/// `<binary> … start`: returns the shim's ttrpc address.
pub fn start(
    binary: &Path,
    env: &ShimEnv,
    bundle: &Bundle,
    options: Option<&AnyValue>,
) -> Result<String> {
    let out = run(
        command(binary, env, bundle, &["start"]),
        &encode_any(options),
        "start shim",
    )?;
    parse_address(&out)
}

/// `<binary> … -bundle B delete`: cleans up after a shim that died (kills what is left,
/// unmounts the rootfs) and answers how the task ended.
pub fn delete(
    binary: &Path,
    env: &ShimEnv,
    bundle: &Bundle,
) -> Result<rcontainerd_plugin_api::runtime::Exit> {
    let bundle_path = bundle.path.to_string_lossy().into_owned();
    let out = run(
        command(binary, env, bundle, &["-bundle", &bundle_path, "delete"]),
        &[],
        "shim delete",
    )?;
    let resp =
        rcontainerd_api::ttrpc::task::DeleteResponse::decode(out.as_slice()).map_err(|e| {
            PluginError::new(
                ErrorKind::Unknown,
                format!("shim delete: unreadable answer: {e}"),
            )
        })?;
    Ok(rcontainerd_plugin_api::runtime::Exit {
        pid: resp.pid,
        exit_status: resp.exit_status,
        exited_at: crate::time::nanos(resp.exited_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_plain_and_bootstrapped() {
        assert_eq!(
            parse_address(b"unix:///run/containerd/s/ab\n").unwrap(),
            "unix:///run/containerd/s/ab"
        );
        assert_eq!(
            parse_address(br#"{"version":3,"address":"unix:///s/x","protocol":"ttrpc"}"#).unwrap(),
            "unix:///s/x"
        );
        let grpc = parse_address(br#"{"version":3,"address":"unix:///s/x","protocol":"grpc"}"#);
        assert_eq!(
            grpc.unwrap_err().kind,
            rcontainerd_plugin_api::ErrorKind::NotImplemented
        );
        assert!(parse_address(b"  \n").is_err());
    }

    #[test]
    fn runtime_names_map_to_shim_binaries() {
        let err = resolve("io.containerd.nosuch.v9").unwrap_err();
        assert!(
            err.message.contains("containerd-shim-nosuch-v9"),
            "{}",
            err.message
        );
        assert_eq!(
            resolve("").unwrap_err().kind,
            rcontainerd_plugin_api::ErrorKind::InvalidArgument
        );
        assert!(resolve("runc").is_err());
    }
}
