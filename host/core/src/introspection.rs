//! What Introspection reports: every plugin's outcome (the registry's
//! status board, provided by the introspection service plugin) and the
//! server's identity, a UUID kept across restarts.

use std::io::Write;
use std::path::Path;

use rcontainerd_pkg::errdefs::{Error, Result};

use crate::ids::SERVICE_TYPE;
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn registration() -> Registration {
    Registration::builtin(SERVICE_TYPE, "introspection-service", &[], init)
}

fn init(ctx: &InitContext<'_>) -> std::result::Result<Instance, InitError> {
    Ok(Instance::of(ctx.status_board()))
}

/// Reads `<root>/uuid`, creating it durably (write, fsync, rename, fsync
/// dir) the first time, so the server keeps its identity across restarts.
pub fn load_or_create_uuid(root: &Path) -> Result<String> {
    let io = |what: &str, e: std::io::Error| {
        Error::internal(format!("server uuid {}: {what}: {e}", root.display()))
    };
    std::fs::create_dir_all(root).map_err(|e| io("create dir", e))?;
    let path = root.join("uuid");
    match std::fs::read_to_string(&path) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => return Ok(s.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "server uuid file is corrupt; replacing it")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("read", e)),
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let tmp = root.join("uuid.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(uuid.as_bytes()).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
    std::fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync dir", e))?;
    Ok(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_uuid(dir.path()).unwrap();
        let b = load_or_create_uuid(dir.path()).unwrap();
        assert_eq!(a, b);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
