//! Host side: loading plugin libraries.
//!
//! [`load_library`] validates a file, dlopens it (libraries are never unloaded), reads its
//! plain tag and manifest, refuses what the daemon cannot serve safely, checks the
//! `abi_stable` layout of the generation it was built for, and returns one [`LoadedPlugin`] per
//! registration. Drivers of a loaded plugin implement the same plain traits as in-process ones.

mod elf;
mod error;

use std::path::{Path, PathBuf};

pub use error::{LibraryError, LibraryErrorKind};

use crate::{
    abi::{tag::OpenLibrary, v1::foreign::ModuleV1, v2::foreign::ModuleV2, v3::foreign::ModuleV3},
    manifest::SUPPORTED_ABI_GENERATIONS,
    InitContext, Manifest, PluginError, PluginInstance,
};

/// One plugin registration of a loaded library.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    manifest: Manifest,
    path: PathBuf,
    module: Module,
    index: u32,
}

/// The root module of a library, by ABI generation.
#[derive(Debug, Clone, Copy)]
enum Module {
    V1(ModuleV1),
    V2(ModuleV2),
    V3(ModuleV3),
}

impl LoadedPlugin {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The library file this plugin came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs the plugin's init. Synchronous; call it on a thread that may block. A panic inside
    /// the plugin comes back as an `Internal` error.
    pub fn init(&self, ctx: InitContext) -> Result<PluginInstance, PluginError> {
        match self.module {
            Module::V1(module) => module.init(self.index, ctx),
            Module::V2(module) => module.init(self.index, ctx),
            Module::V3(module) => module.init(self.index, ctx),
        }
    }
}

/// Loads the plugin library at `path`; see the module documentation.
pub fn load_library(path: &Path) -> Result<Vec<LoadedPlugin>, LibraryError> {
    let fail = |kind, reason: String| LibraryError::new(kind, path, None, reason);

    elf::validate(path).map_err(|(kind, reason)| fail(kind, reason))?;
    let library = OpenLibrary::open(path).map_err(|reason| fail(LibraryErrorKind::Open, reason))?;
    let tag = library
        .tag()
        .map_err(|reason| fail(LibraryErrorKind::NotAPlugin, reason))?
        .ok_or_else(|| {
            fail(
                LibraryErrorKind::NotAPlugin,
                "not an rcontainerd plugin library (it exports no plugin tag)".into(),
            )
        })?;
    // No plugin code runs before this check: a panic in a panic=abort library ends the daemon.
    if tag.panic_unwind != 1 {
        return Err(fail(
            LibraryErrorKind::PanicAbort,
            "plugin built with panic=\"abort\"; the daemon requires panic=\"unwind\" so that a \
             panicking plugin cannot take it down (build it with profile panic = \"unwind\")"
                .into(),
        ));
    }
    let plain = library
        .plain_manifest()
        .map_err(|reason| fail(LibraryErrorKind::Manifest, reason))?;
    let named = plain
        .plugins
        .first()
        .map(|p| (p.plugin_type.clone(), p.id.clone()));
    let fail_named = |kind, reason: String| LibraryError::new(kind, path, named.clone(), reason);

    if !SUPPORTED_ABI_GENERATIONS.contains(&tag.abi_generation) {
        let served: Vec<String> = SUPPORTED_ABI_GENERATIONS
            .iter()
            .map(u32::to_string)
            .collect();
        return Err(fail_named(
            LibraryErrorKind::UnsupportedGeneration,
            format!(
                "plugin built for ABI generation {}; this daemon serves generations {}",
                tag.abi_generation,
                served.join(", ")
            ),
        ));
    }
    let incompatible = |reason: String| {
        fail_named(
            LibraryErrorKind::Incompatible,
            format!(
                "incompatible plugin ABI (generation {}): {reason}",
                tag.abi_generation
            ),
        )
    };
    let module = match tag.abi_generation {
        1 => Module::V1(ModuleV1::load(path).map_err(incompatible)?),
        2 => Module::V2(ModuleV2::load(path).map_err(incompatible)?),
        3 => Module::V3(ModuleV3::load(path).map_err(incompatible)?),
        other => unreachable!("generation {other} is listed as supported but not dispatched"),
    };
    let manifests = match module {
        Module::V1(module) => module.manifests(),
        Module::V2(module) => module.manifests(),
        Module::V3(module) => module.manifests(),
    }
    .map_err(|err| fail_named(LibraryErrorKind::Manifest, err.message))?;
    if manifests.is_empty() {
        return Err(fail(
            LibraryErrorKind::Manifest,
            "library exports no plugins".into(),
        ));
    }
    manifests
        .into_iter()
        .enumerate()
        .map(|(index, manifest)| {
            let index = u32::try_from(index).map_err(|_| {
                fail(
                    LibraryErrorKind::Manifest,
                    "library exports too many plugins".into(),
                )
            })?;
            Ok(LoadedPlugin {
                manifest,
                path: path.to_path_buf(),
                module,
                index,
            })
        })
        .collect()
}
