//! Typed calls to a plugin, as the host makes them.

use std::time::{Duration, Instant};

use dbplugin_proto::dbplugin::v4 as pb4;
use dbplugin_proto::dbplugin::v5 as pb;
use prost_types::value::Kind;
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

/// `dbplugin.v5.Database` for one multiplex id.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    channel: Channel,
    id: Option<String>,
}

fn request<T>(message: T, id: Option<&str>, timeout: Option<Duration>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(id) = id
        && let Ok(value) = id.parse()
    {
        request.metadata_mut().insert("multiplex_id", value);
    }
    if let Some(t) = timeout {
        request.set_timeout(t);
    }
    request
}

/// Times a call.
pub(crate) async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// The host's deadline for `Type` and `Close`.
const SHORT: Duration = Duration::from_secs(1);
/// Ours for the rest (the host uses the caller's context).
const LONG: Duration = Duration::from_secs(30);

impl Db {
    pub(crate) fn new(channel: Channel, id: Option<String>) -> Self {
        Db { channel, id }
    }

    fn client(&self) -> pb::database_client::DatabaseClient<Channel> {
        pb::database_client::DatabaseClient::new(self.channel.clone())
    }

    fn req<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        request(message, self.id.as_deref(), Some(timeout))
    }

    pub(crate) async fn type_name(&self) -> Result<String, tonic::Status> {
        Ok(self
            .client()
            .r#type(self.req(pb::Empty {}, SHORT))
            .await?
            .into_inner()
            .r#type)
    }

    pub(crate) async fn initialize(
        &self,
        config: &serde_json::Map<String, serde_json::Value>,
        verify_connection: bool,
    ) -> Result<serde_json::Map<String, serde_json::Value>, tonic::Status> {
        let response = self
            .client()
            .initialize(self.req(
                pb::InitializeRequest {
                    config_data: Some(map_to_struct(config)),
                    verify_connection,
                },
                LONG,
            ))
            .await?
            .into_inner();
        Ok(response.config_data.map(struct_to_map).unwrap_or_default())
    }

    pub(crate) async fn new_user(
        &self,
        role: &str,
        password: &str,
        statements: &[String],
        expiration: time::OffsetDateTime,
    ) -> Result<String, tonic::Status> {
        let message = pb::NewUserRequest {
            username_config: Some(pb::UsernameConfig {
                display_name: "token".into(),
                role_name: role.into(),
            }),
            password: password.into(),
            expiration: Some(timestamp(expiration)),
            statements: Some(pb::Statements {
                commands: statements.to_vec(),
            }),
            rollback_statements: Some(pb::Statements::default()),
            ..Default::default()
        };
        Ok(self
            .client()
            .new_user(self.req(message, LONG))
            .await?
            .into_inner()
            .username)
    }

    pub(crate) async fn update_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), tonic::Status> {
        let message = pb::UpdateUserRequest {
            username: username.into(),
            password: Some(pb::ChangePassword {
                new_password: password.into(),
                statements: Some(pb::Statements::default()),
            }),
            ..Default::default()
        };
        self.client().update_user(self.req(message, LONG)).await?;
        Ok(())
    }

    pub(crate) async fn update_expiration(
        &self,
        username: &str,
        expiration: time::OffsetDateTime,
    ) -> Result<(), tonic::Status> {
        let message = pb::UpdateUserRequest {
            username: username.into(),
            expiration: Some(pb::ChangeExpiration {
                new_expiration: Some(timestamp(expiration)),
                statements: Some(pb::Statements::default()),
            }),
            ..Default::default()
        };
        self.client().update_user(self.req(message, LONG)).await?;
        Ok(())
    }

    pub(crate) async fn delete_user(&self, username: &str) -> Result<(), tonic::Status> {
        let message = pb::DeleteUserRequest {
            username: username.into(),
            statements: Some(pb::Statements::default()),
        };
        self.client().delete_user(self.req(message, LONG)).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) -> Result<(), tonic::Status> {
        self.client().close(self.req(pb::Empty {}, SHORT)).await?;
        Ok(())
    }
}

/// `dbplugin.Database` (v4): the calls the CLI needs.
pub(crate) async fn v4_type(channel: &Channel) -> Result<String, tonic::Status> {
    let mut client = pb4::database_client::DatabaseClient::new(channel.clone());
    Ok(client
        .r#type(request(pb4::Empty {}, None, Some(LONG)))
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
        .init(request(
            pb4::InitRequest {
                config: bytes,
                verify_connection,
            },
            None,
            Some(LONG),
        ))
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
        .version(request(dbplugin_proto::logical::Empty {}, None, Some(LONG)))
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
        .multiplexing_support(request(
            mux::MultiplexingSupportRequest {},
            None,
            Some(LONG),
        ))
        .await?
        .into_inner()
        .supported)
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    let nanos = t.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(i64::MAX),
        nanos: i32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
    }
}

/// JSON object → `google.protobuf.Struct`.
pub(crate) fn map_to_struct(
    map: &serde_json::Map<String, serde_json::Value>,
) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

fn json_to_value(v: &serde_json::Value) -> prost_types::Value {
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        J::Object(o) => Kind::StructValue(map_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// `google.protobuf.Struct` → JSON object.
pub(crate) fn struct_to_map(s: prost_types::Struct) -> serde_json::Map<String, serde_json::Value> {
    s.fields
        .into_iter()
        .map(|(k, v)| (k, value_to_json(v)))
        .collect()
}

fn value_to_json(v: prost_types::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v.kind {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::BoolValue(b)) => J::Bool(b),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(n).map_or(J::Null, J::Number),
        Some(Kind::StringValue(s)) => J::String(s),
        Some(Kind::ListValue(l)) => J::Array(l.values.into_iter().map(value_to_json).collect()),
        Some(Kind::StructValue(s)) => J::Object(struct_to_map(s)),
    }
}
