//! Not public API; exempt from semver. What `#[database_plugin]`'s expansion reaches.
//!
//! Generated code names items here only as `<krate>::__private::…`, so a plugin crate needs
//! no dependency besides this one. Every trait here carries a
//! `#[diagnostic::on_unimplemented]` message, because its bound failures are what a plugin
//! author sees when a method has the wrong shape; the macro spans those calls at the
//! author's own tokens.
#![allow(missing_docs, unreachable_pub, missing_debug_implementations)]

use std::fmt;
use std::future::Future;

use serde::de::{
    self, DeserializeOwned, Deserializer, EnumAccess, Expected, IntoDeserializer, Unexpected,
    Visitor,
};
use serde_json::Value;

use crate::{
    ConfigMap, CredentialType, Database, DatabaseFactory, Error, InitializeResponse,
    NewUserResponse, Result, SUPPORTED_CREDENTIAL_TYPES_KEY, Secret,
};

// ---------------------------------------------------------------------------------------
// Futures
// ---------------------------------------------------------------------------------------

/// Requires the author's future to be `Send`. The call is spanned at the author's `fn`, so
/// that is where rustc reports a non-`Send` future; the returned future is `Send` by
/// signature, so the error is reported once.
#[inline(always)]
pub fn assert_send<F: Future + Send>(future: F) -> impl Future<Output = F::Output> + Send {
    future
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

/// The output of an RPC method: `Result<T, E>` with `E: Into<Error>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for a `#[database_plugin]` method",
    label = "expected `dbplugin::Result<…>`",
    note = "RPC methods return `dbplugin::Result<T>`, or `Result<T, E>` where `E: Into<dbplugin::Error>`"
)]
pub trait RpcResult {
    type Ok;
    fn into_rpc(self) -> Result<Self::Ok>;
}

impl<T, E: Into<Error>> RpcResult for ::core::result::Result<T, E> {
    type Ok = T;
    #[inline]
    fn into_rpc(self) -> Result<T> {
        self.map_err(Into::into)
    }
}

/// What `new_user` may return inside its `Result`.
#[diagnostic::on_unimplemented(
    message = "`new_user` cannot return `{Self}`",
    label = "expected `Result<NewUserResponse>` or `Result<String>`",
    note = "return `dbplugin::Result<dbplugin::NewUserResponse>`, or `dbplugin::Result<String>` with the new username"
)]
pub trait NewUserOutput {
    fn into_response(self) -> NewUserResponse;
}

impl NewUserOutput for NewUserResponse {
    #[inline]
    fn into_response(self) -> NewUserResponse {
        self
    }
}

impl NewUserOutput for String {
    #[inline]
    fn into_response(self) -> NewUserResponse {
        NewUserResponse::new(self)
    }
}

/// What `type_name` may return inside its `Result`.
#[diagnostic::on_unimplemented(
    message = "`type_name` cannot return `{Self}`",
    label = "expected `Result<String>` or `Result<&'static str>`"
)]
pub trait TypeNameOutput {
    fn into_name(self) -> String;
}

impl TypeNameOutput for String {
    #[inline]
    fn into_name(self) -> String {
        self
    }
}

impl TypeNameOutput for &'static str {
    #[inline]
    fn into_name(self) -> String {
        self.to_owned()
    }
}

/// What `update_user`, `delete_user` and `close` return inside their `Result`.
#[diagnostic::on_unimplemented(
    message = "this method must return `Result<()>`, not `Result<{Self}>`",
    label = "expected `dbplugin::Result<()>`"
)]
pub trait UnitOutput {
    fn into_unit(self);
}

impl UnitOutput for () {
    #[inline]
    fn into_unit(self) {}
}

// ---------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------

/// What a `#[constructor]` returns: `Self`, or `Result<Self, E>`.
#[diagnostic::on_unimplemented(
    message = "a `#[constructor]` of `{D}` cannot return `{Self}`",
    label = "expected `Self` or `Result<Self, E>`"
)]
pub trait IntoInstance<D> {
    fn into_instance(self) -> Result<D>;
}

impl<D> IntoInstance<D> for D {
    #[inline]
    fn into_instance(self) -> Result<D> {
        Ok(self)
    }
}

impl<D, E: Into<Error>> IntoInstance<D> for ::core::result::Result<D, E> {
    #[inline]
    fn into_instance(self) -> Result<D> {
        self.map_err(Into::into)
    }
}

/// A factory calling a (possibly fallible) constructor.
pub struct Factory<D>(pub fn() -> Result<D>);

impl<D: Database> DatabaseFactory for Factory<D> {
    type Database = D;

    fn create(&self) -> Result<D> {
        (self.0)()
    }
}

/// `Default` as the factory; spanned at the self type, so a missing `Default` is reported
/// there with a fix.
#[diagnostic::on_unimplemented(
    message = "`{Self}` needs `Default` or a `#[constructor]` to make plugin instances",
    label = "`#[database_plugin]` makes one instance per connection with `Default::default()`",
    note = "add `#[derive(Default)]` to `{Self}`, or mark a `fn new() -> Self` in the impl with `#[constructor]`"
)]
pub trait DefaultInstance: Sized {
    fn default_instance() -> Result<Self>;
}

impl<D: Default> DefaultInstance for D {
    #[inline]
    fn default_instance() -> Result<D> {
        Ok(D::default())
    }
}

// ---------------------------------------------------------------------------------------
// Initialize
// ---------------------------------------------------------------------------------------

/// The config parameter of `initialize`: any `serde::Deserialize` type, including
/// [`ConfigMap`] itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as the config of `initialize`",
    label = "the config type must implement `serde::Deserialize`",
    note = "add `#[derive(serde::Deserialize)]` to `{Self}`, or take the raw map as `dbplugin::ConfigMap`"
)]
pub trait InitializeConfig: Sized {
    fn decode(config: ConfigMap) -> Result<Self>;
}

impl<T: DeserializeOwned> InitializeConfig for T {
    fn decode(config: ConfigMap) -> Result<T> {
        decode_config(config)
    }
}

/// What `initialize` may return inside its `Result`: the config to store.
#[diagnostic::on_unimplemented(
    message = "`initialize` cannot return `{Self}`",
    label = "expected `()`, `ConfigMap`, `InitializeResponse`, or a `serde::Serialize` config",
    note = "return `Ok(())` to store the config as received, or the config to store (a `serde::Serialize` type, `dbplugin::ConfigMap` or `dbplugin::InitializeResponse`)"
)]
pub trait StoredConfig {
    /// The response: `received` when `self` serializes to nothing (`()`), else `self`; with
    /// `supported_credential_types` set to `types` (an explicit [`InitializeResponse`]
    /// keeps its own).
    fn into_stored(
        self,
        received: ConfigMap,
        types: &[CredentialType],
    ) -> Result<InitializeResponse>;
}

impl<T: serde::Serialize> StoredConfig for T {
    fn into_stored(
        self,
        received: ConfigMap,
        types: &[CredentialType],
    ) -> Result<InitializeResponse> {
        let map = match serde_json::to_value(&self) {
            Ok(Value::Null) => received,
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::new(
                    "the config returned by `initialize` must serialize to a map",
                ));
            }
            Err(e) => {
                return Err(Error::new(format!(
                    "cannot serialize the config returned by `initialize`: {e}"
                )));
            }
        };
        Ok(InitializeResponse::new(map).with_supported_credential_types(types))
    }
}

impl StoredConfig for InitializeResponse {
    fn into_stored(self, _: ConfigMap, types: &[CredentialType]) -> Result<InitializeResponse> {
        if self.config.contains_key(SUPPORTED_CREDENTIAL_TYPES_KEY) {
            Ok(self)
        } else {
            Ok(self.with_supported_credential_types(types))
        }
    }
}

/// Decodes a config map into `T`. Errors name the key and the expected type and never
/// contain a value. Strings are accepted where a number or boolean is expected (the Vault
/// CLI sends `key=value` pairs as strings), as the Go SDK's weakly typed decoding does.
pub fn decode_config<T: DeserializeOwned>(config: ConfigMap) -> Result<T> {
    serde_path_to_error::deserialize(ValueDe(Value::Object(config))).map_err(|e| {
        let path = e.path().to_string();
        Error::invalid_argument(e.into_inner().render(&path))
    })
}

// ---------------------------------------------------------------------------------------
// A JSON value deserializer whose errors never hold a value
// ---------------------------------------------------------------------------------------

/// Why a config did not decode; holds kinds and names, never values.
#[derive(Debug)]
pub struct ConfigError(Problem);

#[derive(Debug)]
enum Problem {
    Type {
        expected: String,
        got: &'static str,
    },
    Value {
        expected: String,
        got: &'static str,
    },
    Length {
        expected: String,
        got: usize,
    },
    Missing(&'static str),
    UnknownKey {
        key: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        expected: &'static [&'static str],
    },
    Duplicate(&'static str),
    Custom(String),
}

fn unexpected_kind(u: &Unexpected<'_>) -> &'static str {
    match u {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "a list",
        Unexpected::Map => "an object",
        _ => "a value of another type",
    }
}

/// serde's type words in the config's vocabulary.
fn expected_words(exp: &dyn Expected) -> String {
    let raw = exp.to_string();
    match raw.as_str() {
        "u8" => "an integer from 0 to 255".into(),
        "u16" => "an integer from 0 to 65535".into(),
        "u32" | "u64" | "u128" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        "a borrowed string" | "a character" => "a string".into(),
        "option" => "a value or null".into(),
        _ if raw.starts_with("struct ") => "an object".into(),
        _ if raw.starts_with("tuple") => "a list".into(),
        _ => raw,
    }
}

impl ConfigError {
    fn render(self, path: &str) -> String {
        let at = |field: &str| -> String {
            if path == "." || path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            }
        };
        let here = if path.is_empty() { "." } else { path };
        match self.0 {
            Problem::Type { expected, got } => format!("`{here}`: expected {expected}, got {got}"),
            Problem::Value { expected, got } => {
                format!("`{here}`: invalid value ({got}), expected {expected}")
            }
            Problem::Length { expected, got } => {
                format!("`{here}`: expected {expected}, got {got} elements")
            }
            Problem::Missing(field) => format!("`{}`: required key is missing", at(field)),
            Problem::UnknownKey { key, expected } => format!(
                "`{}`: unknown key; expected one of {}",
                at(&key),
                list(expected)
            ),
            Problem::UnknownVariant { expected } => {
                format!(
                    "`{here}`: unknown value; expected one of {}",
                    list(expected)
                )
            }
            Problem::Duplicate(field) => format!("`{}`: duplicate key", at(field)),
            Problem::Custom(msg) => format!("`{here}`: {msg}"),
        }
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "nothing".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only used when a config is decoded outside `decode_config`.
        f.write_str(
            &ConfigError(match &self.0 {
                Problem::Custom(m) => Problem::Custom(m.clone()),
                _ => Problem::Custom("invalid config".into()),
            })
            .render("."),
        )
    }
}

impl std::error::Error for ConfigError {}

impl de::Error for ConfigError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConfigError(Problem::Custom(msg.to_string()))
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ConfigError(Problem::Type {
            expected: expected_words(exp),
            got: unexpected_kind(&unexp),
        })
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ConfigError(Problem::Value {
            expected: expected_words(exp),
            got: unexpected_kind(&unexp),
        })
    }
    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        ConfigError(Problem::Length {
            expected: exp.to_string(),
            got: len,
        })
    }
    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        ConfigError(Problem::UnknownVariant { expected })
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        ConfigError(Problem::UnknownKey {
            key: field.to_owned(),
            expected,
        })
    }
    fn missing_field(field: &'static str) -> Self {
        ConfigError(Problem::Missing(field))
    }
    fn duplicate_field(field: &'static str) -> Self {
        ConfigError(Problem::Duplicate(field))
    }
}

/// A `serde_json::Value` as a deserializer with [`ConfigError`].
struct ValueDe(Value);

impl<'de> IntoDeserializer<'de, ConfigError> for ValueDe {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! weak_number {
    ($($method:ident => $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, ConfigError> {
            match self.0 {
                Value::String(s) => match s.trim().parse::<$ty>() {
                    Ok(n) => ValueDe(serde_json::json!(n)).deserialize_any(visitor),
                    Err(_) => Err(de::Error::invalid_type(Unexpected::Str(&s), &visitor)),
                },
                Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => visitor.visit_i64(i),
                    (_, Some(u), _) => visitor.visit_u64(u),
                    // Nested numbers arrive as doubles; a whole one is an integer.
                    (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        visitor.visit_i64(f as i64)
                    }
                    (_, _, Some(f)) => visitor.visit_f64(f),
                    _ => Err(de::Error::invalid_type(Unexpected::Other("number"), &visitor)),
                },
                other => ValueDe(other).deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDe {
    type Error = ConfigError;

    fn deserialize_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, ConfigError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut seq = de::value::SeqDeserializer::new(items.into_iter().map(ValueDe));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(map) => {
                let mut map =
                    de::value::MapDeserializer::new(map.into_iter().map(|(k, v)| (k, ValueDe(v))));
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    weak_number! {
        deserialize_i8 => i64, deserialize_i16 => i64, deserialize_i32 => i64,
        deserialize_i64 => i64, deserialize_u8 => u64, deserialize_u16 => u64,
        deserialize_u32 => u64, deserialize_u64 => u64, deserialize_f32 => f64,
        deserialize_f64 => f64,
    }

    fn deserialize_bool<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, ConfigError> {
        match self.0 {
            // Go's strconv.ParseBool.
            Value::String(s) => match s.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => visitor.visit_bool(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => visitor.visit_bool(false),
                _ => Err(de::Error::invalid_type(Unexpected::Str(&s), &visitor)),
            },
            other => ValueDe(other).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, ConfigError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(ValueDe(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, ConfigError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, ConfigError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Object(map) if map.len() == 1 => {
                let (variant, value) = map.into_iter().next().expect("one entry");
                visitor.visit_enum(Variant { variant, value })
            }
            other => Err(de::Error::invalid_type(
                Unexpected::Other(kind_of(&other)),
                &visitor,
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// `{"variant": value}` as an enum.
struct Variant {
    variant: String,
    value: Value,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = ConfigError;
    type Variant = VariantValue;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> std::result::Result<(S::Value, VariantValue), ConfigError> {
        let name: de::value::StringDeserializer<ConfigError> = self.variant.into_deserializer();
        Ok((seed.deserialize(name)?, VariantValue(self.value)))
    }
}

struct VariantValue(Value);

impl<'de> de::VariantAccess<'de> for VariantValue {
    type Error = ConfigError;

    fn unit_variant(self) -> std::result::Result<(), ConfigError> {
        de::Deserialize::deserialize(ValueDe(self.0))
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> std::result::Result<S::Value, ConfigError> {
        seed.deserialize(ValueDe(self.0))
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, ConfigError> {
        ValueDe(self.0).deserialize_any(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, ConfigError> {
        ValueDe(self.0).deserialize_any(visitor)
    }
}

// ---------------------------------------------------------------------------------------
// Defaults of optional methods
// ---------------------------------------------------------------------------------------

/// `update_user` when the plugin has none: `Unimplemented`, which the host treats as
/// success when rolling back a static-account rotation.
pub fn update_user_unimplemented() -> Result<()> {
    Err(Error::unimplemented(
        "this plugin does not implement update_user",
    ))
}

// ---------------------------------------------------------------------------------------
// The original (v4) interface
// ---------------------------------------------------------------------------------------

/// What a v4 plugin's expansion names: the v4 trait, server and argument types.
pub mod v4 {
    pub use crate::v4::{Database, Server, Statements, StaticUserConfig, UsernameConfig};
    pub use time::OffsetDateTime;
}

/// The config parameter of a v4 `init`: any `serde::Deserialize` type, including
/// [`ConfigMap`] itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as the config of `init`",
    label = "the config type must implement `serde::Deserialize`",
    note = "add `#[derive(serde::Deserialize)]` to `{Self}`, or take the raw map as `dbplugin::ConfigMap`"
)]
pub trait InitConfig: Sized {
    fn decode(config: ConfigMap) -> Result<Self>;
}

impl<T: DeserializeOwned> InitConfig for T {
    fn decode(config: ConfigMap) -> Result<T> {
        decode_config(config)
    }
}

/// What a v4 `init` may return inside its `Result`: the config to store.
#[diagnostic::on_unimplemented(
    message = "`init` cannot return `{Self}`",
    label = "expected `()`, `ConfigMap`, or a `serde::Serialize` config",
    note = "return `Ok(())` to store the config as received, or the config to store (a `serde::Serialize` type or `dbplugin::ConfigMap`)"
)]
pub trait SavedConfig {
    /// `received` when `self` serializes to nothing (`()`), else `self` as a map.
    fn into_saved(self, received: ConfigMap) -> Result<ConfigMap>;
}

impl<T: serde::Serialize> SavedConfig for T {
    fn into_saved(self, received: ConfigMap) -> Result<ConfigMap> {
        match serde_json::to_value(&self) {
            Ok(Value::Null) => Ok(received),
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(Error::new(
                "the config returned by `init` must serialize to a map",
            )),
            Err(e) => Err(Error::new(format!(
                "cannot serialize the config returned by `init`: {e}"
            ))),
        }
    }
}

/// What a v4 `rotate_root_credentials` returns inside its `Result`: the whole config with
/// the new password.
#[diagnostic::on_unimplemented(
    message = "`rotate_root_credentials` cannot return `{Self}`",
    label = "expected `Result<ConfigMap>`",
    note = "return the whole configuration, with the new root password, as a `dbplugin::ConfigMap`"
)]
pub trait RotatedConfig {
    fn into_config(self) -> ConfigMap;
}

impl RotatedConfig for ConfigMap {
    #[inline]
    fn into_config(self) -> ConfigMap {
        self
    }
}

/// What a v4 `create_user` or `set_credentials` returns inside its `Result`: the username
/// and the password.
#[diagnostic::on_unimplemented(
    message = "this v4 method cannot return `{Self}`",
    label = "expected `Result<(String, Secret)>` or `Result<(String, String)>`",
    note = "return the username and the password: `dbplugin::Result<(String, dbplugin::Secret)>`"
)]
pub trait UserCredentials {
    fn into_credentials(self) -> (String, Secret);
}

impl UserCredentials for (String, Secret) {
    #[inline]
    fn into_credentials(self) -> (String, Secret) {
        self
    }
}

impl UserCredentials for (String, String) {
    #[inline]
    fn into_credentials(self) -> (String, Secret) {
        (self.0, Secret::new(self.1))
    }
}

/// What a v4 `generate_credentials` returns inside its `Result`: the password.
#[diagnostic::on_unimplemented(
    message = "`generate_credentials` cannot return `{Self}`",
    label = "expected `Result<Secret>` or `Result<String>`"
)]
pub trait GeneratedPassword {
    fn into_password(self) -> Secret;
}

impl GeneratedPassword for Secret {
    #[inline]
    fn into_password(self) -> Secret {
        self
    }
}

impl GeneratedPassword for String {
    #[inline]
    fn into_password(self) -> Secret {
        Secret::new(self)
    }
}

/// The v4 server makes its one instance infallibly: a failing constructor ends the
/// process with the message the v5 server sends to the host.
pub fn v4_instance<D>(instance: Result<D>) -> D {
    match instance {
        Ok(d) => d,
        Err(e) => {
            eprintln!("unable to create database instance: {e}");
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Inner {
        port: u16,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Config {
        connection_url: String,
        #[serde(default)]
        max_open_connections: Option<u32>,
        #[serde(default)]
        tls: bool,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        hosts: Vec<String>,
    }

    fn map(v: Value) -> ConfigMap {
        v.as_object().unwrap().clone()
    }

    fn err(v: Value) -> String {
        decode_config::<Config>(map(v)).unwrap_err().to_string()
    }

    #[test]
    fn decodes_and_accepts_strings_for_numbers_and_booleans() {
        let c: Config = decode_config(map(json!({
            "connection_url": "x", "max_open_connections": "7", "tls": "true",
            "inner": {"port": 5432.0}, "extra": 1
        })))
        .unwrap();
        assert_eq!(c.max_open_connections, Some(7));
        assert!(c.tls);
        assert_eq!(c.inner, Some(Inner { port: 5432 }));
    }

    #[test]
    fn errors_name_the_key_and_never_the_value() {
        let e = err(json!({"connection_url": "x", "max_open_connections": "hunter2"}));
        assert_eq!(
            e,
            "`max_open_connections`: expected a non-negative integer, got a string"
        );
        let e = err(json!({"connection_url": 12345}));
        assert_eq!(e, "`connection_url`: expected a string, got a number");
        let e = err(json!({"connection_url": "x", "inner": {"port": 99999}}));
        assert_eq!(
            e,
            "`inner.port`: invalid value (a number), expected an integer from 0 to 65535"
        );
        let e = err(json!({"connection_url": "x", "hosts": ["a", "s3cret", 4]}));
        assert_eq!(e, "`hosts[2]`: expected a string, got a number");
        let e = err(json!({}));
        assert_eq!(e, "`connection_url`: required key is missing");
        let e = err(json!({"connection_url": "x", "inner": {}}));
        assert_eq!(e, "`inner.port`: required key is missing");
    }

    #[test]
    fn the_map_decodes_to_itself() {
        let m = map(json!({"a": 1, "b": 2.5, "c": {"d": 4.0}, "e": null, "f": ["x"]}));
        let back: ConfigMap = decode_config(m.clone()).unwrap();
        assert_eq!(back, m);
        assert!(back["c"]["d"].is_f64());
    }

    #[test]
    fn stored_config_rules() {
        let received = map(json!({"a": 1}));
        let types = [CredentialType::Password];
        let r = ().into_stored(received.clone(), &types).unwrap();
        assert_eq!(r.config["a"], 1);
        assert_eq!(
            r.config[SUPPORTED_CREDENTIAL_TYPES_KEY],
            json!(["password"])
        );
        let r = Inner { port: 1 }
            .into_stored(received.clone(), &types)
            .unwrap();
        assert_eq!(r.config["port"], 1);
        assert!(r.config.get("a").is_none());
        assert!(5u8.into_stored(received.clone(), &types).is_err());
        let explicit = InitializeResponse::new(received.clone())
            .with_supported_credential_types(&[CredentialType::RsaPrivateKey]);
        let r = explicit.into_stored(received, &types).unwrap();
        assert_eq!(
            r.config[SUPPORTED_CREDENTIAL_TYPES_KEY],
            json!(["rsa_private_key"])
        );
    }
}
