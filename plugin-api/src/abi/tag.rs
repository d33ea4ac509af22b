//! The plain symbols every plugin library exports, whatever its ABI generation. Their shape is
//! frozen forever; they are read with `libloading` before `abi_stable` checks anything:
//!
//! - `rcontainerd_plugin_tag`: a [`PluginTag`] static — pure data, so the host learns the
//!   generation and panic strategy without running any plugin code;
//! - `rcontainerd_plugin_manifest_json`: `extern "C" fn() -> *const c_char`, a NUL-terminated
//!   JSON document naming the library's plugins ([`PlainManifest`]); it never unwinds.

use std::{
    ffi::{c_char, CStr, CString},
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
    sync::OnceLock,
};

use serde::{Deserialize, Serialize};

/// Name of the [`PluginTag`] static.
pub const TAG_SYMBOL: &str = "rcontainerd_plugin_tag";
/// Name of the plain manifest function.
pub const MANIFEST_JSON_SYMBOL: &str = "rcontainerd_plugin_manifest_json";
/// First bytes of every [`PluginTag`].
pub const TAG_MAGIC: [u8; 8] = *b"RCTDPLUG";

/// Fixed-layout facts about a plugin library.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginTag {
    pub magic: [u8; 8],
    /// Version of this struct's layout; 1.
    pub tag_version: u32,
    pub abi_generation: u32,
    /// 1 when the library was built with `panic = "unwind"`.
    pub panic_unwind: u32,
    pub reserved: u32,
}

impl PluginTag {
    pub const fn new(abi_generation: u32, panic_unwind: bool) -> Self {
        PluginTag {
            magic: TAG_MAGIC,
            tag_version: 1,
            abi_generation,
            panic_unwind: panic_unwind as u32,
            reserved: 0,
        }
    }
}

/// The JSON document behind `rcontainerd_plugin_manifest_json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainManifest {
    #[serde(default)]
    pub plugins: Vec<PlainPlugin>,
    /// Set when the plugin could not describe itself (its `manifest()` panicked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One registration in a [`PlainManifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainPlugin {
    #[serde(rename = "type")]
    pub plugin_type: String,
    pub id: String,
    pub version: String,
}

/// Plugin side: builds the JSON once and returns a pointer that stays valid for the life of the
/// library. Never unwinds.
pub fn plain_manifest_json(describe: fn() -> Vec<PlainPlugin>) -> *const c_char {
    static JSON: OnceLock<CString> = OnceLock::new();
    JSON.get_or_init(|| {
        let manifest = match catch_unwind(AssertUnwindSafe(describe)) {
            Ok(plugins) => PlainManifest {
                plugins,
                error: None,
            },
            Err(payload) => PlainManifest {
                plugins: Vec::new(),
                error: Some(format!(
                    "manifest panicked: {}",
                    super::shared::panic_message(payload.as_ref())
                )),
            },
        };
        let text = serde_json::to_string(&manifest).unwrap_or_default();
        CString::new(text).unwrap_or_default()
    })
    .as_ptr()
}

/// A plugin library opened by the host. Never unloaded: code and statics of a plugin may be
/// referenced for the life of the process.
pub(crate) struct OpenLibrary {
    library: &'static libloading::Library,
}

impl OpenLibrary {
    /// dlopens `path`, which must already have passed ELF validation (a truncated file can
    /// crash inside the dynamic loader).
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        // SAFETY: loading a library runs its initialisers. The caller validated the file's
        // structure; plugin libraries built with the export macro have no custom initialisers.
        let library = unsafe { libloading::Library::new(path) }.map_err(|err| one_line(&err))?;
        Ok(OpenLibrary {
            library: Box::leak(Box::new(library)),
        })
    }

    /// The library's tag, or `None` when it does not export one (not an rcontainerd plugin).
    pub(crate) fn tag(&self) -> Result<Option<PluginTag>, String> {
        // SAFETY: the symbol, when present, is a `PluginTag` static (the export macro declares
        // it with exactly this type). We copy it out instead of keeping a reference; the magic
        // and layout version are checked before any other field is trusted.
        let tag = unsafe {
            match self.library.get::<*const PluginTag>(TAG_SYMBOL.as_bytes()) {
                Ok(symbol) => std::ptr::read_unaligned(*symbol),
                Err(_) => return Ok(None),
            }
        };
        if tag.magic != TAG_MAGIC {
            return Err(format!(
                "symbol {TAG_SYMBOL} does not carry the rcontainerd tag"
            ));
        }
        if tag.tag_version != 1 {
            return Err(format!(
                "plugin tag layout version {} is not supported",
                tag.tag_version
            ));
        }
        Ok(Some(tag))
    }

    /// Calls the plain manifest function. Only called for libraries built with
    /// `panic = "unwind"` (the plugin side catches panics, which needs unwinding).
    pub(crate) fn plain_manifest(&self) -> Result<PlainManifest, String> {
        // SAFETY: the export macro declares the symbol as `extern "C" fn() -> *const c_char`
        // returning a NUL-terminated string owned by the library, which is never unloaded.
        let text = unsafe {
            let function = self
                .library
                .get::<extern "C" fn() -> *const c_char>(MANIFEST_JSON_SYMBOL.as_bytes())
                .map_err(|_| format!("library exports no {MANIFEST_JSON_SYMBOL}"))?;
            let pointer = function();
            if pointer.is_null() {
                return Err(format!("{MANIFEST_JSON_SYMBOL} returned nothing"));
            }
            CStr::from_ptr(pointer).to_string_lossy().into_owned()
        };
        let manifest: PlainManifest = serde_json::from_str(&text)
            .map_err(|err| format!("{MANIFEST_JSON_SYMBOL} returned invalid JSON: {err}"))?;
        if let Some(error) = &manifest.error {
            return Err(error.clone());
        }
        Ok(manifest)
    }
}

/// Reduces a loader error (which can be a many-kilobyte layout dump) to one line: its
/// `Error:` lines, or else its first line.
pub(crate) fn one_line(err: &dyn std::fmt::Display) -> String {
    const MAX: usize = 400;
    let text = err.to_string();
    let errors: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("Error:"))
        .map(|line| line.trim_start_matches("Error:").trim())
        .filter(|line| !line.is_empty())
        .collect();
    let mut line = if errors.is_empty() {
        text.lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("unknown error")
            .to_string()
    } else {
        let mut unique: Vec<&str> = Vec::new();
        for error in errors {
            if !unique.contains(&error) {
                unique.push(error);
            }
        }
        unique.join("; ")
    };
    if line.len() > MAX {
        let mut cut = MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_keeps_only_error_lines() {
        let dump = "Compatibility errors:\n  Layout: {\n     huge dump\n  }\n  Error: mismatched field name\n  Error: mismatched field name\n  Error:too few fields\n";
        assert_eq!(one_line(&dump), "mismatched field name; too few fields");
    }

    #[test]
    fn one_line_falls_back_to_the_first_line_and_bounds_length() {
        assert_eq!(one_line(&"\n  open failed\nmore"), "open failed");
        let long = "x".repeat(5000);
        assert!(one_line(&long).len() < 410);
    }

    #[test]
    fn plain_manifest_round_trips() {
        let manifest = PlainManifest {
            plugins: vec![PlainPlugin {
                plugin_type: "io.containerd.snapshotter.v1".into(),
                id: "native".into(),
                version: "0.1.0".into(),
            }],
            error: None,
        };
        let text = serde_json::to_string(&manifest).unwrap();
        assert!(
            text.contains("\"type\":\"io.containerd.snapshotter.v1\""),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<PlainManifest>(&text).unwrap(),
            manifest
        );
    }
}
