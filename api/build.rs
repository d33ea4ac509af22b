//! Compiles containerd's v1 service protos into tonic/prost code.
//!
//! The `.proto` files are containerd's (Apache-2.0) and are not part of this
//! repository. They are read from a package that ships them: by default the
//! `containerd-client` crate's package source (its `vendor/` directory, v1
//! services are wire-identical to containerd 1.6), located in cargo's
//! registry or through `cargo metadata`. `RCONTAINERD_PROTO_DIR` points at any
//! other copy laid out the same way (`github.com/containerd/containerd/api/...`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const CLIENT_PACKAGE: &str = "containerd-client";
const CLIENT_VERSION: &str = "0.9.0";

/// The v1 surface containerd 1.6 serves, plus the types and events they use.
const PROTOS: &[&str] = &[
    "types/descriptor.proto",
    "types/mount.proto",
    "types/platform.proto",
    "types/metrics.proto",
    "types/event.proto",
    "types/introspection.proto",
    "types/task/task.proto",
    "services/version/v1/version.proto",
    "services/introspection/v1/introspection.proto",
    "services/namespaces/v1/namespace.proto",
    "services/containers/v1/containers.proto",
    "services/images/v1/images.proto",
    "services/content/v1/content.proto",
    "services/snapshots/v1/snapshots.proto",
    "services/leases/v1/leases.proto",
    "services/diff/v1/diff.proto",
    "services/events/v1/events.proto",
    "services/tasks/v1/tasks.proto",
    "events/container.proto",
    "events/content.proto",
    "events/image.proto",
    "events/namespace.proto",
    "events/snapshot.proto",
    "events/task.proto",
];

fn main() {
    println!("cargo:rerun-if-env-changed=RCONTAINERD_PROTO_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let include = proto_root();
    let api = include.join("github.com/containerd/containerd/api");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| api.join(p)).collect();
    for f in &files {
        assert!(f.is_file(), "missing proto {}", f.display());
    }

    // protoc from the vendored binary unless the caller chose one.
    if env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
        // SAFETY: the build script has not spawned any threads yet.
        unsafe { env::set_var("PROTOC", protoc) };
    }

    let mut config = tonic_prost_build::Config::new();
    config.protoc_arg("--experimental_allow_proto3_optional");
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        // Blob payloads as `bytes::Bytes`: decoded as a view of the receive
        // buffer instead of a copy of every MiB.
        .bytes(".containerd.services.content.v1.WriteContentRequest.data")
        .bytes(".containerd.services.content.v1.ReadContentResponse.data")
        .include_file("containerd_api.rs")
        .compile_with_config(config, &files, &[include])
        .expect("compiling containerd protos");
}

/// Finds the directory that holds `github.com/containerd/containerd/api`.
fn proto_root() -> PathBuf {
    if let Some(dir) = env::var_os("RCONTAINERD_PROTO_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = registry_copy() {
        return dir;
    }
    if let Some(dir) = metadata_copy() {
        return dir;
    }
    panic!(
        "cannot find containerd's protos: run `cargo fetch` (downloads {CLIENT_PACKAGE} {CLIENT_VERSION}) \
         or set RCONTAINERD_PROTO_DIR"
    );
}

fn registry_copy() -> Option<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let src = home.join("registry/src");
    for index in std::fs::read_dir(src).ok()?.flatten() {
        let vendor = index
            .path()
            .join(format!("{CLIENT_PACKAGE}-{CLIENT_VERSION}/vendor"));
        if vendor.join("github.com/containerd/containerd/api").is_dir() {
            return Some(vendor);
        }
    }
    None
}

fn metadata_copy() -> Option<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(&env::var("CARGO_MANIFEST_DIR").ok()?).join("Cargo.toml");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    json["packages"].as_array()?.iter().find_map(|p| {
        if p["name"] == CLIENT_PACKAGE && p["version"] == CLIENT_VERSION {
            let manifest = PathBuf::from(p["manifest_path"].as_str()?);
            Some(manifest.parent()?.join("vendor"))
        } else {
            None
        }
    })
}
