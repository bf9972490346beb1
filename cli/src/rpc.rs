//! What the runtime's test host (`dbplugin::testkit`) does not offer: the host catalog's
//! multiplex ids, v4 (`dbplugin.Database`) calls, and the version and multiplexing probes
//! on a bare channel, for `check`, which dials its own lenient channel and tells
//! `UNIMPLEMENTED` apart (`PluginProcess::multiplexing_supported` reads it as `false`).

use std::time::{Duration, Instant};

use dbplugin_proto::dbplugin::v4 as pb4;
use tonic::transport::Channel;

/// A fresh 10-character base62 multiplex id, as the host's catalog makes them.
pub(crate) fn multiplex_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random password of the host's usual shape (never printed).
pub(crate) fn password() -> String {
    format!("A1a-{}", multiplex_id())
}

/// A request without a multiplex id, bounded by [`LONG`].
fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(LONG);
    request
}

/// Times a call.
pub(crate) async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// Our deadline for a call (the host uses the caller's context).
const LONG: Duration = Duration::from_secs(30);

/// `dbplugin.Database` (v4): the calls the CLI needs.
pub(crate) async fn v4_type(channel: &Channel) -> Result<String, tonic::Status> {
    let mut client = pb4::database_client::DatabaseClient::new(channel.clone());
    Ok(client
        .r#type(request(pb4::Empty {}))
        .await?
        .into_inner()
        .r#type)
}

/// v4 `Init` with a JSON config; returns the config to store.
pub(crate) async fn v4_init(
    channel: &Channel,
    config: &serde_json::Map<String, serde_json::Value>,
    verify_connection: bool,
) -> Result<serde_json::Map<String, serde_json::Value>, tonic::Status> {
    let mut client = pb4::database_client::DatabaseClient::new(channel.clone());
    let bytes = serde_json::to_vec(config).map_err(|e| tonic::Status::internal(e.to_string()))?;
    let response = client
        .init(request(pb4::InitRequest {
            config: bytes,
            verify_connection,
        }))
        .await?
        .into_inner();
    serde_json::from_slice(&response.config).map_err(|e| {
        tonic::Status::internal(format!(
            "Init returned a config that is not a JSON object: {e}"
        ))
    })
}

/// `logical.PluginVersion/Version` without a multiplex id (the registration probe).
pub(crate) async fn version(channel: &Channel) -> Result<String, tonic::Status> {
    let mut client =
        dbplugin_proto::logical::plugin_version_client::PluginVersionClient::new(channel.clone());
    Ok(client
        .version(request(dbplugin_proto::logical::Empty {}))
        .await?
        .into_inner()
        .plugin_version)
}

/// `MultiplexingSupport`; `Unimplemented` is returned as the error.
pub(crate) async fn multiplexing(channel: &Channel) -> Result<bool, tonic::Status> {
    use dbplugin_proto::pluginutil::multiplexing as mux;
    let mut client =
        mux::plugin_multiplexing_client::PluginMultiplexingClient::new(channel.clone());
    Ok(client
        .multiplexing_support(request(mux::MultiplexingSupportRequest {}))
        .await?
        .into_inner()
        .supported)
}
