//! go-plugin's own services, the multiplexing probe and the version probe.

use std::pin::Pin;

use dbplugin_proto::logical::{self, plugin_version_server::PluginVersion};
use dbplugin_proto::plugin::{
    self, grpc_broker_server::GrpcBroker, grpc_controller_server::GrpcController,
    grpc_stdio_server::GrpcStdio,
};
use dbplugin_proto::pluginutil::multiplexing::{
    self as mux, plugin_multiplexing_server::PluginMultiplexing,
};
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Signals the server to stop; cloned into every service that must end with it.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    pub(crate) fn new() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    pub(crate) fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once [`Shutdown::trigger`] was called.
    pub(crate) fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

/// A stream that sends nothing and ends when `until` resolves.
fn silent_until<T: Send + 'static>(
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> BoxStream<T> {
    Box::pin(futures_util::stream::once(until).filter_map(|()| async { None }))
}

/// `plugin.GRPCController`: `Shutdown` replies, then stops the server.
#[derive(Debug)]
pub(crate) struct Controller {
    pub(crate) shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<plugin::Empty>) -> Result<Response<plugin::Empty>, Status> {
        tracing::debug!("shutdown requested by the host");
        self.shutdown.trigger();
        Ok(Response::new(plugin::Empty {}))
    }
}

/// `plugin.GRPCStdio`: the host opens it once; Vault discards what it carries, so logs go to
/// stderr and this stream stays open and silent until the host cancels it or we stop.
#[derive(Debug)]
pub(crate) struct Stdio {
    pub(crate) shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<plugin::StdioData>;

    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(silent_until(self.shutdown.wait())))
    }
}

/// `plugin.GRPCBroker`: database plugins broker no connections; the stream is accepted and
/// read until the host closes it.
#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = BoxStream<plugin::ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<plugin::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut incoming = request.into_inner();
        let stop = self.shutdown.wait();
        let drained = async move {
            tokio::select! {
                () = stop => {}
                () = async { while let Some(Ok(_)) = incoming.next().await {} } => {}
            }
        };
        Ok(Response::new(silent_until(drained)))
    }
}

/// `pluginutil.multiplexing.PluginMultiplexing`: registered only when multiplexing is on.
#[derive(Debug)]
pub(crate) struct Multiplexing;

#[tonic::async_trait]
impl PluginMultiplexing for Multiplexing {
    async fn multiplexing_support(
        &self,
        _: Request<mux::MultiplexingSupportRequest>,
    ) -> Result<Response<mux::MultiplexingSupportResponse>, Status> {
        Ok(Response::new(mux::MultiplexingSupportResponse {
            supported: true,
        }))
    }
}

/// `logical.PluginVersion`: answered from the served configuration, without an instance.
#[derive(Debug)]
pub(crate) struct Version {
    pub(crate) version: String,
}

#[tonic::async_trait]
impl PluginVersion for Version {
    async fn version(
        &self,
        _: Request<logical::Empty>,
    ) -> Result<Response<logical::VersionReply>, Status> {
        Ok(Response::new(logical::VersionReply {
            plugin_version: self.version.clone(),
        }))
    }
}
