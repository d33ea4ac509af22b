//! content-local's driver exported through ABI generation 1, whose writers report no running
//! digest: the daemon must hash what passes through for it, save that state and resume from it.
//! Same plugin URI as content-local (`io.containerd.content.v1.content`), so it takes that
//! library's place in a plugin directory.

use rcontainerd_plugin_api::export_plugin_v1;
use rcontainerd_plugin_content_local::LocalContentPlugin;

export_plugin_v1!(LocalContentPlugin);
