//! `containerd.services.introspection.v1.Introspection`: every plugin with
//! its init outcome, and the server's identity.

use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use rcontainerd_api::google::rpc::Status as RpcStatus;
use rcontainerd_api::services::introspection::{
    introspection_server, Plugin, PluginsRequest, PluginsResponse, ServerResponse,
};
use rcontainerd_api::types::Platform;
use rcontainerd_core::ids::{INTROSPECTION_SERVICE, SERVICE_TYPE};
use rcontainerd_core::introspection::load_or_create_uuid;
use rcontainerd_core::registry::{LiveExports, Outcome, PluginStatus};
use rcontainerd_core::registry::{Registration, StatusBoard};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::{Fields, Filter};
use std::sync::{Arc, OnceLock};
use tonic::{Request, Response, Status};

pub struct IntrospectionService {
    board: StatusBoard,
    /// The plugins on the wire, built on first use: the board is complete
    /// only once every plugin has been initialised. Live exports (an
    /// isolated driver's state) are read again at every call.
    plugins: OnceLock<Vec<(Plugin, Option<LiveExports>)>>,
    uuid: String,
}

impl IntrospectionService {
    pub fn new(board: StatusBoard, uuid: String) -> Self {
        IntrospectionService {
            board,
            plugins: OnceLock::new(),
            uuid,
        }
    }

    fn plugins(&self) -> Vec<Plugin> {
        let cached = self.plugins.get_or_init(|| {
            self.board
                .statuses()
                .iter()
                .map(|s| (to_wire(s), s.live.clone()))
                .collect()
        });
        cached
            .iter()
            .map(|(plugin, live)| {
                let mut plugin = plugin.clone();
                if let Some(live) = live {
                    plugin.exports.extend(live.read());
                }
                plugin
            })
            .collect()
    }
}

/// `io.containerd.grpc.v1.introspection`: the registry's status board and
/// the server UUID, kept under this plugin's root as containerd keeps it.
pub fn registration() -> Registration {
    service::registration::<introspection_server::IntrospectionServer<IntrospectionService>>(
        "introspection",
        &[SERVICE_TYPE],
        |ctx| {
            let board = ctx.get::<StatusBoard>(INTROSPECTION_SERVICE)?;
            let uuid = load_or_create_uuid(ctx.root)?;
            Ok(service::provide(IntrospectionGrpc(Arc::new(
                IntrospectionService::new(board, uuid),
            ))))
        },
    )
}

struct IntrospectionGrpc(Arc<IntrospectionService>);

impl GrpcService for IntrospectionGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add(introspection_server::IntrospectionServer::from_arc(
            self.0.clone(),
        ));
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
            .plugins()
            .into_iter()
            .filter(|p| filter.matches(&PluginFields(p)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
            live: None,
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
