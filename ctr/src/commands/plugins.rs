//! `ctr plugins ls`: the daemon's plugins as a table, ids only, or in detail.

use std::collections::BTreeSet;

use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::introspection::introspection_client::IntrospectionClient;
use rcontainerd_api::services::introspection::{Plugin, PluginsRequest};
use rcontainerd_api::types::Platform;

use crate::cli::PluginsList;
use crate::errors::{code_name, RpcError};
use crate::tabwriter::TabWriter;

/// The text whose presence in an init error marks a plugin as skipped.
const SKIP_MARKER: &str = "skip plugin";

pub async fn list(channel: NamespacedChannel, options: &PluginsList) -> anyhow::Result<String> {
    let request = PluginsRequest {
        filters: options.filters.clone(),
    };
    let plugins = IntrospectionClient::new(channel)
        .plugins(request)
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .plugins;
    Ok(if options.quiet {
        ids(&plugins)
    } else if options.detailed {
        detailed(&plugins)
    } else {
        table(&plugins)
    })
}

fn ids(plugins: &[Plugin]) -> String {
    plugins
        .iter()
        .map(|plugin| format!("{}\n", plugin.id))
        .collect()
}

/// `TYPE ID PLATFORMS STATUS`, one plugin a row.
pub fn table(plugins: &[Plugin]) -> String {
    let mut writer = TabWriter::new(4, 8, 4, ' ');
    writer.write_str("TYPE\tID\tPLATFORMS\tSTATUS\t\n");
    for plugin in plugins {
        writer.write_str(&format!(
            "{}\t{}\t{}\t{}\t\n",
            plugin.r#type,
            plugin.id,
            platform_list(&plugin.platforms),
            status(plugin)
        ));
    }
    writer.finish()
}

/// One block of `Field: value` lines per plugin, blocks separated by a line
/// of blank cells, laid out by the same tab writer as the table.
pub fn detailed(plugins: &[Plugin]) -> String {
    let mut writer = TabWriter::new(4, 8, 4, ' ');
    for (index, plugin) in plugins.iter().enumerate() {
        if index > 0 {
            writer.write_str("\t\t\t\n");
        }
        writer.write_str(&format!("Type:\t {}\n", plugin.r#type));
        writer.write_str(&format!("ID:\t {}\n", plugin.id));
        if !plugin.requires.is_empty() {
            writer.write_str("Requires:\t\n");
            for required in &plugin.requires {
                writer.write_str(&format!("\t {required}\n"));
            }
        }
        if !plugin.platforms.is_empty() {
            writer.write_str(&format!(
                "Platforms:\t {}\n",
                platform_list(&plugin.platforms)
            ));
        }
        if !plugin.exports.is_empty() {
            writer.write_str("Exports:\t\n");
            let mut exports: Vec<_> = plugin.exports.iter().collect();
            exports.sort();
            for (key, value) in exports {
                writer.write_str(&format!("\t {key} \t {value}\n"));
            }
        }
        if !plugin.capabilities.is_empty() {
            writer.write_str(&format!(
                "Capabilities:\t {}\n",
                plugin.capabilities.join(",")
            ));
        }
        if let Some(error) = &plugin.init_err {
            writer.write_str("Error:\t\n");
            writer.write_str(&format!("\t Code:\t {}\n", code_name(error.code)));
            writer.write_str(&format!("\t Message:\t {}\n", error.message));
        }
    }
    writer.finish()
}

/// `ok`, `skip` (the init error says "skip plugin") or `error`.
fn status(plugin: &Plugin) -> &'static str {
    match &plugin.init_err {
        None => "ok",
        Some(error) if error.message.contains(SKIP_MARKER) => "skip",
        Some(_) => "error",
    }
}

/// The distinct platforms, sorted and comma-separated; `-` for none.
fn platform_list(platforms: &[Platform]) -> String {
    let names: BTreeSet<String> = platforms.iter().map(platform_name).collect();
    if names.is_empty() {
        return "-".to_owned();
    }
    names.into_iter().collect::<Vec<_>>().join(",")
}

/// `os/architecture[/variant]`, or `unknown` without an OS.
fn platform_name(platform: &Platform) -> String {
    if platform.os.is_empty() {
        return "unknown".to_owned();
    }
    [&platform.os, &platform.architecture, &platform.variant]
        .into_iter()
        .filter(|part| !part.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcontainerd_api::google::rpc::Status;

    fn linux_amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            ..Default::default()
        }
    }

    fn plugin(kind: &str, id: &str) -> Plugin {
        Plugin {
            r#type: kind.into(),
            id: id.into(),
            ..Default::default()
        }
    }

    fn failed(mut plugin: Plugin, message: &str) -> Plugin {
        plugin.init_err = Some(Status {
            code: 2,
            message: message.into(),
            details: Vec::new(),
        });
        plugin
    }

    /// The first plugins of a real containerd 1.6.20, as `ctr plugins ls`
    /// printed them (trailing spaces included).
    #[test]
    fn table_matches_containerds_layout() {
        let mut aufs = plugin("io.containerd.snapshotter.v1", "aufs");
        aufs.platforms = vec![linux_amd64()];
        let mut devmapper = plugin("io.containerd.snapshotter.v1", "devmapper");
        devmapper.platforms = vec![linux_amd64()];
        let plugins = [
            plugin("io.containerd.content.v1", "content"),
            failed(aufs, "aufs is not supported: skip plugin"),
            failed(devmapper, "devmapper not configured"),
            plugin("io.containerd.service.v1", "introspection-service"),
        ];
        let expected = "\
TYPE                            ID                       PLATFORMS      STATUS    
io.containerd.content.v1        content                  -              ok        
io.containerd.snapshotter.v1    aufs                     linux/amd64    skip      
io.containerd.snapshotter.v1    devmapper                linux/amd64    error     
io.containerd.service.v1        introspection-service    -              ok        
";
        assert_eq!(table(&plugins), expected);
    }

    #[test]
    fn an_empty_table_keeps_its_header() {
        assert_eq!(table(&[]), "TYPE    ID    PLATFORMS    STATUS    \n");
    }

    /// Real `ctr plugins ls -d` output for three plugins of containerd 1.6.20.
    #[test]
    fn detailed_matches_containerds_layout() {
        let mut content = plugin("io.containerd.content.v1", "content");
        content.exports.insert(
            "root".into(),
            "/tmp/refctr/root/io.containerd.content.v1.content".into(),
        );
        let mut devmapper = plugin("io.containerd.snapshotter.v1", "devmapper");
        devmapper.platforms = vec![linux_amd64()];
        let devmapper = failed(devmapper, "devmapper not configured");
        let mut native = plugin("io.containerd.snapshotter.v1", "native");
        native.platforms = vec![linux_amd64()];
        let mut bolt = plugin("io.containerd.metadata.v1", "bolt");
        bolt.requires = vec![
            "io.containerd.content.v1".into(),
            "io.containerd.snapshotter.v1".into(),
        ];
        bolt.exports.insert("policy".into(), "shared".into());
        bolt.exports.insert(
            "path".into(),
            "/tmp/refctr/root/io.containerd.metadata.v1.bolt/meta.db".into(),
        );
        let expected = "\
Type:          io.containerd.content.v1
ID:            content
Exports:      
               root      /tmp/refctr/root/io.containerd.content.v1.content
                            
Type:          io.containerd.snapshotter.v1
ID:            devmapper
Platforms:     linux/amd64
Error:        
               Code:        Unknown
               Message:     devmapper not configured
                               
Type:          io.containerd.snapshotter.v1
ID:            native
Platforms:     linux/amd64
                      
Type:          io.containerd.metadata.v1
ID:            bolt
Requires:     
               io.containerd.content.v1
               io.containerd.snapshotter.v1
Exports:      
               path        /tmp/refctr/root/io.containerd.metadata.v1.bolt/meta.db
               policy      shared
";
        assert_eq!(detailed(&[content, devmapper, native, bolt]), expected);
    }

    /// "Capabilities:" is the widest label, so when any plugin has
    /// capabilities every line's first column widens (one tab-writer block).
    #[test]
    fn capabilities_widen_the_whole_detailed_listing() {
        let mut first = plugin("io.containerd.snapshotter.v1", "native");
        first.platforms = vec![linux_amd64()];
        let mut second = plugin("io.containerd.grpc.v1", "x");
        second.capabilities = vec!["a".into(), "b".into()];
        let expected = "\
Type:             io.containerd.snapshotter.v1
ID:               native
Platforms:        linux/amd64
                         
Type:             io.containerd.grpc.v1
ID:               x
Capabilities:     a,b
";
        assert_eq!(detailed(&[first, second]), expected);
    }

    #[test]
    fn quiet_prints_ids_only() {
        let plugins = [plugin("t", "a"), plugin("t", "b")];
        assert_eq!(ids(&plugins), "a\nb\n");
    }

    #[test]
    fn platforms_are_distinct_sorted_and_joined() {
        let arm = Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: "v7".into(),
            ..Default::default()
        };
        let unknown = Platform::default();
        let list = platform_list(&[arm.clone(), linux_amd64(), arm, unknown]);
        assert_eq!(list, "linux/amd64,linux/arm/v7,unknown");
    }
}
