//! `containerd.services.introspection.v1.Introspection`: every plugin with
//! its init outcome, and the server's identity.

use crate::errdefs::{Error, Result};
use crate::filters::{Fields, Filter};
use crate::plugin::{Outcome, PluginStatus};
use rcontainerd_api::google::rpc::Status as RpcStatus;
use rcontainerd_api::services::introspection::{
    introspection_server, Plugin, PluginsRequest, PluginsResponse, ServerResponse,
};
use rcontainerd_api::types::Platform;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct IntrospectionService {
    plugins: Arc<Vec<Plugin>>,
    uuid: String,
}

impl IntrospectionService {
    pub fn new(statuses: &[PluginStatus], uuid: String) -> Self {
        IntrospectionService {
            plugins: Arc::new(statuses.iter().map(to_wire).collect()),
            uuid,
        }
    }
}

struct PluginFields<'a>(&'a Plugin);

impl Fields for PluginFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let p = self.0;
        match path.first().map(String::as_str)? {
            "type" => Some(p.r#type.clone()),
            "id" => Some(p.id.clone()),
            "platforms" | "platform" => p
                .platforms
                .first()
                .map(|pl| format!("{}/{}", pl.os, pl.architecture)),
            "capabilities" => path
                .get(1)
                .and_then(|c| p.capabilities.iter().find(|x| *x == c).cloned()),
            _ => None,
        }
    }
}

fn to_wire(s: &PluginStatus) -> Plugin {
    let init_err = match &s.outcome {
        Outcome::Ok => None,
        // containerd reports skips with code Unknown and the skip text.
        Outcome::Skipped(message) => Some(RpcStatus {
            code: tonic::Code::Unknown as i32,
            message: message.clone(),
            details: Vec::new(),
        }),
        Outcome::Failed(e) => {
            let status = e.clone().into_status();
            Some(RpcStatus {
                code: status.code() as i32,
                message: status.message().to_string(),
                details: Vec::new(),
            })
        }
    };
    Plugin {
        r#type: s.plugin_type.clone(),
        id: s.id.clone(),
        requires: s.requires.clone(),
        platforms: s
            .platforms
            .iter()
            .map(|(os, arch)| Platform {
                os: os.clone(),
                architecture: arch.clone(),
                ..Default::default()
            })
            .collect(),
        exports: s.exports.clone().into_iter().collect(),
        capabilities: s.capabilities.clone(),
        init_err,
    }
}

#[tonic::async_trait]
impl introspection_server::Introspection for IntrospectionService {
    async fn plugins(
        &self,
        request: Request<PluginsRequest>,
    ) -> Result<Response<PluginsResponse>, Status> {
        let filter = Filter::parse_all(&request.get_ref().filters).map_err(Error::into_status)?;
        let plugins = self
            .plugins
            .iter()
            .filter(|p| filter.matches(&PluginFields(p)))
            .cloned()
            .collect();
        Ok(Response::new(PluginsResponse { plugins }))
    }

    async fn server(&self, _: Request<()>) -> Result<Response<ServerResponse>, Status> {
        Ok(Response::new(ServerResponse {
            uuid: self.uuid.clone(),
            pid: u64::from(std::process::id()),
            pidns: 0,
            deprecations: Vec::new(),
        }))
    }
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

    #[test]
    fn skip_and_failure_map_to_codes() {
        let mut s = PluginStatus {
            plugin_type: "io.containerd.snapshotter.v1".into(),
            id: "btrfs".into(),
            requires: vec![],
            platforms: vec![("linux".into(), "amd64".into())],
            exports: Default::default(),
            capabilities: vec![],
            library: None,
            outcome: Outcome::Skipped("/x is not a btrfs filesystem: skip plugin".into()),
        };
        let w = to_wire(&s);
        let e = w.init_err.unwrap();
        assert_eq!(e.code, tonic::Code::Unknown as i32);
        assert!(e.message.contains("skip plugin"));
        s.outcome = Outcome::Failed(Error::not_found("no plugins registered for x"));
        let e = to_wire(&s).init_err.unwrap();
        assert_eq!(e.code, tonic::Code::NotFound as i32);
        assert_eq!(e.message, "no plugins registered for x: not found");
    }
}
