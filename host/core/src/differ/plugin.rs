//! The differ plugins: `io.containerd.differ.v1.walking`, and the diff service plugin that
//! orders the differs (config `default`, containerd's key and default) for the gRPC edge and
//! runs early unpack (config `early_unpack`, ours, on by default; see `early`).

use std::sync::Arc;

use rcontainerd_pkg::errdefs::Error;

use super::early::EarlyUnpack;
use super::walking::Walking;
use super::{Differ, Differs};
use crate::content::ContentStore;
use crate::ids::{CONTENT_SERVICE, DIFFER_TYPE, METADATA_TYPE, SERVICE_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn walking() -> Registration {
    Registration::builtin(DIFFER_TYPE, "walking", &[METADATA_TYPE], |ctx| {
        let differ: Arc<dyn Differ> = Arc::new(Walking::new(ctx.state)?);
        Ok(Instance::of(differ))
    })
}

/// After the content service plugin (listed before it among the built-ins): a Diff writes its
/// layer into that store.
pub fn service() -> Registration {
    let mut config = toml::Table::new();
    config.insert(
        "default".to_string(),
        toml::Value::Array(vec![toml::Value::String("walking".to_string())]),
    );
    config.insert("early_unpack".to_string(), toml::Value::Boolean(true));
    Registration::builtin(SERVICE_TYPE, "diff-service", &[DIFFER_TYPE], service_init)
        .with_config(config)
}

fn service_init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    let content = ctx.get::<Arc<ContentStore>>(CONTENT_SERVICE)?;
    let names: Vec<String> = match ctx.config.get("default") {
        Some(toml::Value::Array(names)) => names
            .iter()
            .map(|n| {
                n.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid_argument("default: differ names must be strings"))
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
        Some(_) => {
            return Err(Error::invalid_argument("default: a list of differ names").into());
        }
    };
    let mut available = ctx.all::<Arc<dyn Differ>>(DIFFER_TYPE);
    let mut ordered = Vec::new();
    for name in names {
        let Some(differ) = available.remove(&name) else {
            return Err(Error::not_found(format!("differ {name:?} not loaded")).into());
        };
        ordered.push((name, differ));
    }
    let wanted = match ctx.config.get("early_unpack") {
        Some(toml::Value::Boolean(on)) => *on,
        _ => return Err(Error::invalid_argument("early_unpack: true or false").into()),
    };
    let dir = ctx.root.join("early-unpack");
    // Only the walking differ uses stagings; on an SELinux host a staged file would keep the
    // label of where it was staged.
    let usable = ordered.iter().any(|(name, _)| name == "walking") && !selinux_enabled();
    let early = if wanted && usable {
        Some(EarlyUnpack::new(&dir).map_err(|e| {
            Error::internal(format!("early_unpack: preparing {}: {e}", dir.display()))
        })?)
    } else {
        // What a run with early unpack left.
        EarlyUnpack::clear(&dir).map_err(|e| {
            Error::internal(format!("early_unpack: removing {}: {e}", dir.display()))
        })?;
        None
    };
    Ok(Instance::of(Arc::new(Differs::new(
        content, ordered, early,
    ))))
}

/// Whether the kernel enforces or audits SELinux (its file system is mounted).
fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}
