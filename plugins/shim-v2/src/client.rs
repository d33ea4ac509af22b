//! The shim's task service (`containerd.task.v2.Task`) over ttrpc, with errors in the driver's
//! classes: a shim answers with gRPC codes, which keep their meaning here, and its messages
//! pass through unchanged, as containerd passes them.

use std::time::Duration;

use rcontainerd_api::ttrpc::task as shim;
use rcontainerd_plugin_api::{ErrorKind, PluginError, Result};
use rcontainerd_ttrpc::{Client, Error as TtrpcError};

const SERVICE: &str = shim::SERVICE;
/// The metadata key a Go shim reads the namespace from.
const NAMESPACE_KEY: &str = "containerd-namespace-ttrpc";

/// One connected shim.
#[derive(Clone)]
pub struct ShimClient {
    client: Client,
    namespace: String,
}

pub fn driver_error(what: &str, e: TtrpcError) -> PluginError {
    match e {
        TtrpcError::Status { code, message } => {
            let kind = match code {
                3 => ErrorKind::InvalidArgument,
                5 => ErrorKind::NotFound,
                6 => ErrorKind::AlreadyExists,
                9 => ErrorKind::FailedPrecondition,
                12 => ErrorKind::NotImplemented,
                14 => ErrorKind::Unavailable,
                _ => ErrorKind::Unknown,
            };
            PluginError::new(kind, message)
        }
        TtrpcError::Closed => PluginError::unavailable(format!("{what}: ttrpc: closed")),
        other => PluginError::unavailable(format!("{what}: {other}")),
    }
}

macro_rules! calls {
    ($($name:ident($req:ty) -> $resp:ty = $method:literal;)*) => {
        $(
            pub async fn $name(&self, request: $req) -> Result<$resp> {
                self.call($method, &request, None).await
            }
        )*
    };
}

impl ShimClient {
    pub async fn connect(address: &str, namespace: &str) -> Result<ShimClient> {
        let client = Client::connect(address)
            .await
            .map_err(|e| driver_error(&format!("connect to shim at {address}"), e))?;
        Ok(ShimClient {
            client,
            namespace: namespace.to_string(),
        })
    }

    async fn call<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let metadata = [(NAMESPACE_KEY, self.namespace.as_str())];
        self.client
            .call(SERVICE, method, request, &metadata, timeout)
            .await
            .map_err(|e| driver_error(method, e))
    }

    /// Resolves when the shim's connection is gone (the shim exited or died).
    pub async fn closed(&self) {
        self.client.closed().await
    }

    calls! {
        state(shim::StateRequest) -> shim::StateResponse = "State";
        create(shim::CreateTaskRequest) -> shim::CreateTaskResponse = "Create";
        start(shim::StartRequest) -> shim::StartResponse = "Start";
        delete(shim::DeleteRequest) -> shim::DeleteResponse = "Delete";
        pids(shim::PidsRequest) -> shim::PidsResponse = "Pids";
        pause(shim::PauseRequest) -> () = "Pause";
        resume(shim::ResumeRequest) -> () = "Resume";
        kill(shim::KillRequest) -> () = "Kill";
        exec(shim::ExecProcessRequest) -> () = "Exec";
        resize_pty(shim::ResizePtyRequest) -> () = "ResizePty";
        close_io(shim::CloseIoRequest) -> () = "CloseIO";
        update(shim::UpdateTaskRequest) -> () = "Update";
        wait(shim::WaitRequest) -> shim::WaitResponse = "Wait";
        stats(shim::StatsRequest) -> shim::StatsResponse = "Stats";
        connect_task(shim::ConnectRequest) -> shim::ConnectResponse = "Connect";
    }

    /// Shutdown: the shim exits once it has no tasks; its connection closing is the answer
    /// (a closed connection is success here).
    pub async fn shutdown(&self, id: &str) -> Result<()> {
        let request = shim::ShutdownRequest {
            id: id.to_string(),
            now: false,
        };
        match self
            .call::<_, ()>("Shutdown", &request, Some(Duration::from_secs(10)))
            .await
        {
            Err(e) if e.kind == ErrorKind::Unavailable => Ok(()),
            other => other,
        }
    }
}
