//! Compiles containerd's v1 service protos into tonic/prost code, and the
//! messages of the ttrpc services a shim speaks into prost code.
//!
//! The `.proto` files are containerd's (Apache-2.0) and are not part of this
//! repository. They are read from packages that ship them, located in cargo's
//! registry or through `cargo metadata`:
//! - the v1 services (wire-identical to containerd 1.6), the ttrpc events
//!   service and the runc options from the `containerd-client` crate's
//!   `vendor/` directory; `RCONTAINERD_PROTO_DIR` points at any other copy laid
//!   out the same way (`github.com/containerd/containerd/api/...`);
//! - the task shim service `containerd.task.v2` from `containerd-shim-protos`
//!   0.11 (the last release before v3); `RCONTAINERD_SHIM_PROTO_DIR` points at
//!   any other copy laid out the same way.
//!
//! The shim proto imports `types/mount.proto` relative to the api directory
//! while the v1 protos import the same file by its full path; one protoc run
//! would see two files defining `containerd.types.Mount`. So the ttrpc protos
//! are a second run whose `containerd.types`/`containerd.v1.types` resolve to
//! the modules of the first (`extern_path`), and build.rs writes the module
//! tree of both runs itself.

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const CLIENT_PACKAGE: &str = "containerd-client";
const CLIENT_VERSION: &str = "0.9.0";
const SHIM_PACKAGE: &str = "containerd-shim-protos";
const SHIM_VERSION: &str = "0.11.0";

/// Where containerd's protos sit inside a vendor directory.
const API_DIR: &str = "github.com/containerd/containerd/api";

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

/// ttrpc services (messages only: their clients and servers are written by
/// hand over the ttrpc crate), from the `containerd-client` vendor copy.
const TTRPC_PROTOS: &[&str] = &[
    "services/ttrpc/events/v1/events.proto",
    "types/runc/options/oci.proto",
];

/// The task shim service, from the `containerd-shim-protos` vendor copy.
const SHIM_PROTO: &str = "runtime/task/v2/shim.proto";

/// The packages the ttrpc run must generate; the others it sees are the first
/// run's (extern) or prost-types'.
const TTRPC_PACKAGES: &[&str] = &[
    "containerd.services.events.ttrpc.v1",
    "containerd.runc.v1",
    "containerd.task.v2",
];

fn main() {
    println!("cargo:rerun-if-env-changed=RCONTAINERD_PROTO_DIR");
    println!("cargo:rerun-if-env-changed=RCONTAINERD_SHIM_PROTO_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let include = proto_root("RCONTAINERD_PROTO_DIR", CLIENT_PACKAGE, CLIENT_VERSION);
    let shim_include = proto_root("RCONTAINERD_SHIM_PROTO_DIR", SHIM_PACKAGE, SHIM_VERSION);
    let api = include.join(API_DIR);
    let shim_api = shim_include.join(API_DIR);
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| api.join(p)).collect();
    let mut ttrpc_files: Vec<PathBuf> = TTRPC_PROTOS.iter().map(|p| api.join(p)).collect();
    ttrpc_files.push(shim_api.join(SHIM_PROTO));
    for f in files.iter().chain(&ttrpc_files) {
        assert!(f.is_file(), "missing proto {}", f.display());
    }

    // protoc from the vendored binary unless the caller chose one.
    if env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
        // SAFETY: the build script has not spawned any threads yet.
        unsafe { env::set_var("PROTOC", protoc) };
    }

    // Each run writes into a directory of its own, emptied first, so that the
    // module tree lists exactly what this build generated.
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let grpc_out = fresh_dir(&out.join("grpc"));
    let ttrpc_out = fresh_dir(&out.join("ttrpc"));

    let mut config = tonic_prost_build::Config::new();
    config.protoc_arg("--experimental_allow_proto3_optional");
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .out_dir(&grpc_out)
        // Blob payloads as `bytes::Bytes`: decoded as a view of the receive
        // buffer instead of a copy of every MiB.
        .bytes(".containerd.services.content.v1.WriteContentRequest.data")
        .bytes(".containerd.services.content.v1.ReadContentResponse.data")
        .compile_with_config(config, &files, std::slice::from_ref(&include))
        .expect("compiling containerd protos");

    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .out_dir(&ttrpc_out)
        .extern_path(".containerd.types", "crate::containerd::types")
        .extern_path(".containerd.v1.types", "crate::containerd::v1::types")
        .compile_with_config(config, &ttrpc_files, &[shim_api, include])
        .expect("compiling containerd ttrpc protos");

    // Both runs' packages in one tree; a package generated twice (the ttrpc
    // run emitting `containerd.types` again) fails the build there.
    let mut modules = generated(&out, "grpc");
    let ttrpc = generated(&out, "ttrpc");
    for package in TTRPC_PACKAGES {
        assert!(
            ttrpc.iter().any(|(p, _)| p == package),
            "protoc generated no {package}"
        );
    }
    modules.extend(ttrpc);
    std::fs::write(out.join("containerd_api.rs"), module_tree(modules))
        .expect("writing containerd_api.rs");
}

fn fresh_dir(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("creating an output directory");
    dir.to_path_buf()
}

/// The packages a run wrote to `out/subdir` (a `<package>.rs` file each), and
/// their files' paths relative to `out`.
fn generated(out: &Path, subdir: &str) -> Vec<(String, String)> {
    std::fs::read_dir(out.join(subdir))
        .expect("reading generated code")
        .map(|e| e.expect("reading generated code").file_name())
        .filter_map(|name| {
            let name = name.to_str()?;
            let package = name.strip_suffix(".rs")?.to_string();
            Some((package, format!("{subdir}/{name}")))
        })
        .collect()
}

/// Nested `pub mod` blocks, one per package segment, that include each
/// package's file (prost's include file does the same for a single run).
fn module_tree(mut modules: Vec<(String, String)>) -> String {
    modules.sort();
    let mut out = String::from("// @generated by build.rs\n");
    let mut open: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for (package, file) in modules {
        assert!(
            seen.insert(package.clone()),
            "package {package} generated twice"
        );
        let parts: Vec<String> = package.split('.').map(module_ident).collect();
        let common = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        while open.len() > common {
            open.pop();
            let _ = writeln!(out, "{}}}", "    ".repeat(open.len()));
        }
        for part in &parts[common..] {
            let _ = writeln!(out, "{}pub mod {part} {{", "    ".repeat(open.len()));
            open.push(part.clone());
        }
        let _ = writeln!(
            out,
            "{}include!(concat!(env!(\"OUT_DIR\"), \"/{file}\"));",
            "    ".repeat(open.len()),
        );
    }
    while !open.is_empty() {
        open.pop();
        let _ = writeln!(out, "{}}}", "    ".repeat(open.len()));
    }
    out
}

/// A package segment as a module name: containerd's are plain lowercase
/// words, which prost keeps as they are.
fn module_ident(segment: &str) -> String {
    assert!(
        segment
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "package segment {segment:?} needs prost's identifier rules"
    );
    segment.to_string()
}

/// Finds the directory that holds `github.com/containerd/containerd/api`.
fn proto_root(env_var: &str, package: &str, version: &str) -> PathBuf {
    if let Some(dir) = env::var_os(env_var) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = registry_copy(package, version) {
        return dir;
    }
    if let Some(dir) = metadata_copy(package, version) {
        return dir;
    }
    panic!(
        "cannot find containerd's protos: run `cargo fetch` (downloads {package} {version}) \
         or set {env_var}"
    );
}

fn registry_copy(package: &str, version: &str) -> Option<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let src = home.join("registry/src");
    for index in std::fs::read_dir(src).ok()?.flatten() {
        let vendor = index.path().join(format!("{package}-{version}/vendor"));
        if vendor.join(API_DIR).is_dir() {
            return Some(vendor);
        }
    }
    None
}

fn metadata_copy(package: &str, version: &str) -> Option<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(&env::var("CARGO_MANIFEST_DIR").ok()?).join("Cargo.toml");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    json["packages"].as_array()?.iter().find_map(|p| {
        if p["name"] == package && p["version"] == version {
            let manifest = PathBuf::from(p["manifest_path"].as_str()?);
            Some(manifest.parent()?.join("vendor"))
        } else {
            None
        }
    })
}
