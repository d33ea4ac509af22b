//! What a plugin's init sees: its own paths and config, and the typed values
//! of the plugins initialised before it.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rcontainerd_pkg::errdefs::Error;

use super::{Outcome, PluginStatus};

/// Paths and addresses every plugin's init gets.
#[derive(Debug, Clone)]
pub struct Environment {
    pub root: PathBuf,
    pub state: PathBuf,
    pub grpc_address: String,
    pub ttrpc_address: String,
}

/// The outcome of every plugin, readable once the registry has initialised
/// them all (Introspection lists plugins initialised after it).
#[derive(Clone, Default)]
pub struct StatusBoard(Arc<OnceLock<Vec<PluginStatus>>>);

impl StatusBoard {
    /// Every plugin in init order; empty until initialisation is over.
    pub fn statuses(&self) -> &[PluginStatus] {
        self.0.get().map(Vec::as_slice).unwrap_or_default()
    }

    pub(crate) fn fill(&self, statuses: Vec<PluginStatus>) {
        let _ = self.0.set(statuses);
    }
}

/// A plugin's value, or why there is none.
pub(crate) struct Slot {
    pub plugin_type: String,
    pub outcome: Outcome,
    pub value: Option<Box<dyn Any + Send + Sync>>,
}

/// The plugins initialised so far, by URI.
#[derive(Default)]
pub(crate) struct Live {
    pub slots: BTreeMap<String, Slot>,
    /// Values registered in place of plugins that failed.
    pub stand_ins: BTreeMap<String, Box<dyn Any + Send + Sync>>,
}

impl Live {
    pub fn get<T: Any + Clone>(&self, uri: &str) -> Result<T, Error> {
        let Some(slot) = self.slots.get(uri) else {
            return Err(Error::not_found(format!("plugin {uri} is not registered")));
        };
        match &slot.outcome {
            Outcome::Ok => {}
            Outcome::Skipped(reason) => {
                return Err(Error::unavailable(format!(
                    "plugin {uri} skipped: {reason}"
                )))
            }
            Outcome::Failed(e) => {
                return Err(Error::unavailable(format!(
                    "plugin {uri} failed to load: {}",
                    e.message
                )))
            }
        }
        slot.value
            .as_ref()
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
            .ok_or_else(|| {
                Error::internal(format!(
                    "plugin {uri} does not provide a {}",
                    std::any::type_name::<T>()
                ))
            })
    }

    pub fn all<T: Any + Clone>(&self, plugin_type: &str) -> BTreeMap<String, T> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.plugin_type == plugin_type)
            .filter(|(_, slot)| matches!(slot.outcome, Outcome::Ok))
            .filter_map(|(uri, slot)| {
                let value = slot.value.as_ref()?.downcast_ref::<T>()?.clone();
                let id = uri.strip_prefix(plugin_type)?.strip_prefix('.')?;
                Some((id.to_string(), value))
            })
            .collect()
    }
}

/// The context of one plugin's init.
pub struct InitContext<'a> {
    /// `<type>.<id>`.
    pub uri: &'a str,
    /// `<root>/<uri>`: the plugin's persistent directory (not created).
    pub root: &'a Path,
    /// `<state>/<uri>`: the plugin's runtime directory (not created).
    pub state: &'a Path,
    /// The plugin's defaults with the operator's table laid over them.
    pub config: &'a toml::Table,
    pub env: &'a Environment,
    pub(crate) live: &'a Live,
    pub(crate) board: &'a StatusBoard,
}

impl InitContext<'_> {
    /// The value plugin `uri` provides. A plugin that failed or was skipped
    /// gives Unavailable with its reason.
    pub fn get<T: Any + Clone>(&self, uri: &str) -> Result<T, Error> {
        self.live.get(uri)
    }

    /// The values of every initialised plugin of `plugin_type` that provides
    /// a `T`, by plugin ID.
    pub fn all<T: Any + Clone>(&self, plugin_type: &str) -> BTreeMap<String, T> {
        self.live.all(plugin_type)
    }

    /// Every plugin's outcome, readable once initialisation is over.
    pub fn status_board(&self) -> StatusBoard {
        self.board.clone()
    }
}
