//! containerd's `proxy_plugins`: each becomes a registration like a loaded
//! library's, of type `io.containerd.snapshotter.v1` or
//! `io.containerd.content.v1`, whose driver is a gRPC client of the service
//! at the configured socket (`rcontainerd-proxy`). Nothing is dialled at
//! start-up: an absent socket does not fail the plugin, only its calls.

use std::collections::BTreeMap;

use rcontainerd_plugin_api::Driver;

use super::{Init, Registration};
use crate::ids::{CONTENT_TYPE, SNAPSHOTTER_TYPE};

/// What a proxy plugin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Snapshot,
    Content,
}

impl Kind {
    /// containerd's `type` values: the short names and the plugin types.
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "snapshot" | SNAPSHOTTER_TYPE => Some(Kind::Snapshot),
            "content" | CONTENT_TYPE => Some(Kind::Content),
            _ => None,
        }
    }

    pub fn plugin_type(self) -> &'static str {
        match self {
            Kind::Snapshot => SNAPSHOTTER_TYPE,
            Kind::Content => CONTENT_TYPE,
        }
    }
}

/// One `[proxy_plugins.<name>]` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The plugin ID: the table's name.
    pub name: String,
    pub kind: Kind,
    /// The service's unix socket (optionally `unix://…`).
    pub address: String,
    /// The `snapshotter` field of snapshot requests: containerd sends the
    /// plugin's name; rcontainerd's `snapshotter` key may name another (the
    /// remote's own name for it, when the remote is a containerd).
    pub snapshotter: String,
}

impl Spec {
    pub fn uri(&self) -> String {
        format!("{}.{}", self.kind.plugin_type(), self.name)
    }
}

/// A registration per proxy, after `taken` (the registrations so far): a
/// proxy whose URI another plugin already has is refused, naming it.
pub fn registrations(specs: &[Spec], taken: &[Registration]) -> Vec<Registration> {
    specs
        .iter()
        .map(|spec| {
            let uri = spec.uri();
            let init = match taken.iter().find(|r| r.uri() == uri) {
                Some(first) => Init::Refused(format!(
                    "proxy plugin {uri}: the URI is already taken by {}",
                    first
                        .library
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "a built-in plugin".to_string())
                )),
                None => Init::Proxy(spec.clone()),
            };
            Registration {
                plugin_type: spec.kind.plugin_type().to_string(),
                id: spec.name.clone(),
                requires: Vec::new(),
                optional: Vec::new(),
                capabilities: Vec::new(),
                default_config: toml::Table::new(),
                library: None,
                init,
            }
        })
        .collect()
}

/// The proxy's driver and exports (containerd exports the `address`).
pub(super) fn driver(
    spec: &Spec,
) -> Result<(Driver, BTreeMap<String, String>), rcontainerd_plugin_api::PluginError> {
    let uri = spec.uri();
    let ns = rcontainerd_proxy::NAMESPACE;
    let driver = match spec.kind {
        Kind::Snapshot => Driver::Snapshotter(rcontainerd_proxy::snapshotter(
            &uri,
            &spec.address,
            &spec.snapshotter,
            ns,
        )?),
        Kind::Content => {
            Driver::Content(rcontainerd_proxy::content_store(&uri, &spec.address, ns)?)
        }
    };
    let exports = BTreeMap::from([("address".to_string(), spec.address.clone())]);
    Ok((driver, exports))
}
