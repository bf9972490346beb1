//! `dbplugin.v5.Database`: routing by multiplex id, request validation and status codes as
//! the Go SDK's server does them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use dbplugin_proto::dbplugin::v5 as pb;
use time::OffsetDateTime;
use tonic::{Code, Request, Response, Status};

use crate::Secret;
use crate::config::{map_to_struct, struct_to_map};
use crate::database::{
    ChangeExpiration, ChangePassword, ChangePublicKey, CredentialType, Database, DatabaseFactory,
    DeleteUserRequest, InitializeRequest, NewCredential, NewUserRequest, Statements,
    UpdateUserRequest, UsernameMetadata,
};
use crate::toolkit::sanitize::Sanitizer;

use super::{call, secrets};

/// The gRPC metadata key carrying the connection id.
pub(crate) const MULTIPLEX_ID_KEY: &str = "multiplex_id";

/// A plugin instance and what its errors must not contain.
struct Instance<D> {
    db: D,
    /// Shared snapshot: a call takes a reference count, not a copy of the secrets.
    sanitizer: std::sync::RwLock<Arc<Sanitizer>>,
}

impl<D> Instance<D> {
    fn sanitizer(&self) -> Arc<Sanitizer> {
        self.sanitizer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Runs one call of the author's code (see [`call::run`]); an error becomes the status
    /// the host receives: secrets removed, then the Go server's prefix.
    async fn call<T>(
        &self,
        fut: impl Future<Output = crate::Result<T>>,
        deadline: Option<std::time::Duration>,
        request_secrets: &[&Secret],
        prefix: &str,
    ) -> Result<T, Status> {
        let sanitizer = self.sanitizer();
        call::run(fut, deadline, |text| {
            secrets::clean_text(&sanitizer, request_secrets, text)
        })
        .await
        .map_err(|e| secrets::clean(&sanitizer, request_secrets, e).into_status(prefix))
    }
}

/// One instance per multiplex id (or a single one when multiplexing is off).
pub(crate) struct DatabaseService<F: DatabaseFactory> {
    factory: F,
    multiplexed: bool,
    secret_keys: Vec<String>,
    instances: RwLock<HashMap<String, Arc<Instance<F::Database>>>>,
}

impl<F: DatabaseFactory> std::fmt::Debug for DatabaseService<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseService")
            .field("multiplexed", &self.multiplexed)
            .finish_non_exhaustive()
    }
}

fn unknown(message: impl Into<String>) -> Status {
    Status::new(Code::Unknown, message)
}

impl<F: DatabaseFactory> DatabaseService<F> {
    pub(crate) fn new(factory: F, multiplexed: bool, secret_keys: Vec<String>) -> Self {
        DatabaseService {
            factory,
            multiplexed,
            secret_keys,
            instances: RwLock::new(HashMap::new()),
        }
    }

    /// The instance key: the `multiplex_id` when multiplexed and present, else the default.
    fn key<T>(&self, request: &Request<T>) -> Result<String, Status> {
        if !self.multiplexed {
            return Ok(String::new());
        }
        let values: Vec<_> = request
            .metadata()
            .get_all(MULTIPLEX_ID_KEY)
            .iter()
            .collect();
        match values.as_slice() {
            [] => Ok(String::new()),
            [one] => {
                let id = one
                    .to_str()
                    .map_err(|_| unknown("multiplex ID in metadata is not valid ASCII"))?;
                if id.is_empty() {
                    Err(unknown("empty multiplex ID in metadata"))
                } else {
                    Ok(id.to_owned())
                }
            }
            many => Err(unknown(format!(
                "unexpected number of IDs in metadata: ({})",
                many.len()
            ))),
        }
    }

    // A panic never happens while the lock is held (only map operations run under it),
    // but a poisoned map is still consistent, so keep serving.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Instance<F::Database>>>> {
        self.instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Instance<F::Database>>>> {
        self.instances
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get_or_create(&self, key: &str) -> Result<Arc<Instance<F::Database>>, Status> {
        if let Some(db) = self.read().get(key) {
            return Ok(db.clone());
        }
        let mut map = self.lock();
        if let Some(db) = map.get(key) {
            return Ok(db.clone());
        }
        let db = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.factory.create()
        })) {
            Ok(Ok(db)) => Arc::new(Instance {
                db,
                sanitizer: std::sync::RwLock::new(Arc::new(Sanitizer::new())),
            }),
            Ok(Err(e)) => return Err(e.into_status("unable to create database instance")),
            Err(_) => {
                return Err(Status::internal(
                    "unable to create database instance: the plugin's constructor panicked",
                ));
            }
        };
        map.insert(key.to_owned(), db.clone());
        tracing::debug!(multiplex_id = key, "database instance created");
        Ok(db)
    }

    fn get(&self, key: &str) -> Result<Arc<Instance<F::Database>>, Status> {
        if !self.multiplexed {
            return self.get_or_create(key);
        }
        self.read()
            .get(key)
            .cloned()
            .ok_or_else(|| unknown("no database instance found"))
    }

    /// The number of live instances (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn instance_count(&self) -> usize {
        self.read().len()
    }
}

pub(crate) fn timestamp(ts: prost_types::Timestamp, what: &str) -> Result<OffsetDateTime, Status> {
    // The range and rules of Timestamp.CheckValid: 0001-01-01 .. 9999-12-31, nanos in range.
    const MIN: i64 = -62_135_596_800;
    const MAX: i64 = 253_402_300_799;
    let invalid = |why: String| Status::invalid_argument(format!("{what}: {why}"));
    if !(MIN..=MAX).contains(&ts.seconds) {
        return Err(invalid(format!(
            "timestamp ({}, {}) before 0001-01-01 or after 9999-12-31",
            ts.seconds, ts.nanos
        )));
    }
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(invalid(format!(
            "timestamp ({}, {}) has out-of-range nanos",
            ts.seconds, ts.nanos
        )));
    }
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos),
    )
    .map_err(|e| invalid(e.to_string()))
}

/// The zero Go time the host means when it sends no expiration.
fn zero_time() -> OffsetDateTime {
    time::macros::datetime!(0001-01-01 00:00:00 UTC)
}

fn statements(s: Option<pb::Statements>) -> Statements {
    Statements::new(s.map(|s| s.commands).unwrap_or_default())
}

#[tonic::async_trait]
impl<F: DatabaseFactory> pb::database_server::Database for DatabaseService<F> {
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::InitializeResponse>, Status> {
        let key = self.key(&request)?;
        let deadline = call::grpc_timeout(request.metadata());
        let db = self.get_or_create(&key)?;
        let req = request.into_inner();
        let config = struct_to_map(req.config_data);
        // Rebuilt before the call, so a failing Initialize that echoes the new password is
        // cleaned too.
        *db.sanitizer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(secrets::config_sanitizer(&config, &self.secret_keys));
        let response = db
            .call(
                db.db
                    .initialize(InitializeRequest::new(config, req.verify_connection)),
                deadline,
                &[],
                "failed to initialize",
            )
            .await?;
        let config_data = map_to_struct(response.config)
            .map_err(|e| Status::internal(format!("failed to marshal new config to JSON: {e}")))?;
        Ok(Response::new(pb::InitializeResponse {
            config_data: Some(config_data),
        }))
    }

    async fn new_user(
        &self,
        request: Request<pb::NewUserRequest>,
    ) -> Result<Response<pb::NewUserResponse>, Status> {
        let key = self.key(&request)?;
        let deadline = call::grpc_timeout(request.metadata());
        let req = request.into_inner();
        let username_config = req
            .username_config
            .ok_or_else(|| Status::invalid_argument("missing username config"))?;
        let expiration = match req.expiration {
            Some(ts) => timestamp(ts, "unable to parse expiration date")?,
            None => zero_time(),
        };
        let db = self.get(&key)?;
        let password = Secret::from(req.password);
        let credential =
            match CredentialType::from_wire(req.credential_type).map_err(|e| e.into_status(""))? {
                CredentialType::Password => NewCredential::Password(password.clone()),
                CredentialType::RsaPrivateKey => NewCredential::RsaPublicKey(req.public_key),
                CredentialType::ClientCertificate => NewCredential::ClientCertificate {
                    subject: req.subject,
                },
            };
        let request = NewUserRequest {
            username_config: UsernameMetadata {
                display_name: username_config.display_name,
                role_name: username_config.role_name,
            },
            statements: statements(req.statements),
            rollback_statements: statements(req.rollback_statements),
            credential,
            expiration,
        };
        let response = db
            .call(
                db.db.new_user(request),
                deadline,
                &[&password],
                "unable to create new user",
            )
            .await?;
        Ok(Response::new(pb::NewUserResponse {
            username: response.username,
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let key = self.key(&request)?;
        let deadline = call::grpc_timeout(request.metadata());
        let req = request.into_inner();
        if req.username.is_empty() {
            return Err(Status::invalid_argument("no username provided"));
        }
        let password = req
            .password
            .filter(|p| !p.new_password.is_empty())
            .map(|p| ChangePassword {
                new_password: Secret::from(p.new_password),
                statements: statements(p.statements),
            });
        let public_key = req
            .public_key
            .filter(|p| !p.new_public_key.is_empty())
            .map(|p| ChangePublicKey {
                new_public_key: p.new_public_key,
                statements: statements(p.statements),
            });
        let expiration = match req.expiration {
            Some(pb::ChangeExpiration {
                new_expiration: Some(ts),
                statements: s,
            }) => {
                let new_expiration = timestamp(ts, "unable to parse new expiration")?;
                (new_expiration != zero_time()).then(|| ChangeExpiration {
                    new_expiration,
                    statements: statements(s),
                })
            }
            _ => None,
        };
        if password.is_none() && public_key.is_none() && expiration.is_none() {
            return Err(Status::invalid_argument(
                "update user request has no changes",
            ));
        }
        let credential_type =
            CredentialType::from_wire(req.credential_type).map_err(|e| e.into_status(""))?;
        let db = self.get(&key)?;
        let mut request_secrets: Vec<Secret> = Vec::new();
        if let Some(p) = &password {
            request_secrets.push(p.new_password.clone());
        }
        if !req.self_managed_password.is_empty() {
            request_secrets.push(Secret::new(req.self_managed_password.clone()));
        }
        let request = UpdateUserRequest {
            username: req.username,
            credential_type,
            password,
            public_key,
            expiration,
            self_managed_password: Some(req.self_managed_password)
                .filter(|p| !p.is_empty())
                .map(Secret::from),
        };
        let request_secrets: Vec<&Secret> = request_secrets.iter().collect();
        db.call(
            db.db.update_user(request),
            deadline,
            &request_secrets,
            "unable to update user",
        )
        .await?;
        Ok(Response::new(pb::UpdateUserResponse {}))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let key = self.key(&request)?;
        let deadline = call::grpc_timeout(request.metadata());
        let req = request.into_inner();
        if req.username.is_empty() {
            return Err(Status::invalid_argument("no username provided"));
        }
        let db = self.get(&key)?;
        let request = DeleteUserRequest {
            username: req.username,
            statements: statements(req.statements),
        };
        db.call(
            db.db.delete_user(request),
            deadline,
            &[],
            "unable to delete user",
        )
        .await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn r#type(
        &self,
        request: Request<pb::Empty>,
    ) -> Result<Response<pb::TypeResponse>, Status> {
        let key = self.key(&request)?;
        let deadline = call::grpc_timeout(request.metadata());
        let db = self.get_or_create(&key)?;
        let name = db
            .call(db.db.type_name(), deadline, &[], "unable to retrieve type")
            .await?;
        Ok(Response::new(pb::TypeResponse { r#type: name }))
    }

    async fn close(&self, request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        let key = self.key(&request)?;
        let deadline = call::grpc_timeout(request.metadata());
        let db = self.get(&key)?;
        db.call(
            db.db.close(),
            deadline,
            &[],
            "unable to close database plugin",
        )
        .await?;
        let mut map = self.lock();
        if map.get(&key).is_some_and(|d| Arc::ptr_eq(d, &db)) {
            map.remove(&key);
        }
        drop(map);
        tracing::debug!(multiplex_id = key, "database instance closed");
        Ok(Response::new(pb::Empty {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::{InitializeResponse, NewUserResponse};
    use pb::database_server::Database as _;

    #[derive(Default)]
    struct Probe;

    impl Database for Probe {
        async fn type_name(&self) -> crate::Result<String> {
            Ok("probe".into())
        }
        async fn initialize(&self, req: InitializeRequest) -> crate::Result<InitializeResponse> {
            if req.config.contains_key("panic") {
                panic!("boom");
            }
            Ok(InitializeResponse::new(req.config))
        }
        async fn new_user(&self, _: NewUserRequest) -> crate::Result<NewUserResponse> {
            Err(Error::new("nope"))
        }
        async fn update_user(&self, _: UpdateUserRequest) -> crate::Result<()> {
            Ok(())
        }
        async fn delete_user(&self, _: DeleteUserRequest) -> crate::Result<()> {
            Ok(())
        }
    }

    fn with_id<T>(msg: T, id: &str) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert(MULTIPLEX_ID_KEY, id.parse().unwrap());
        r
    }

    fn service() -> DatabaseService<fn() -> Probe> {
        DatabaseService::new(
            Probe::default as fn() -> Probe,
            true,
            vec!["password".into()],
        )
    }

    #[tokio::test]
    async fn new_user_on_unknown_id_is_refused_and_type_creates() {
        let s = service();
        let req = pb::NewUserRequest {
            username_config: Some(Default::default()),
            ..Default::default()
        };
        let err = s.new_user(with_id(req, "a")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unknown);
        assert_eq!(err.message(), "no database instance found");
        s.r#type(with_id(pb::Empty {}, "a")).await.unwrap();
        assert_eq!(s.instance_count(), 1);
    }

    #[tokio::test]
    async fn validation_errors_match_the_go_server() {
        let s = service();
        s.r#type(with_id(pb::Empty {}, "a")).await.unwrap();
        let err = s
            .new_user(with_id(pb::NewUserRequest::default(), "a"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::InvalidArgument, "missing username config")
        );
        let err = s
            .update_user(with_id(pb::UpdateUserRequest::default(), "a"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::InvalidArgument, "no username provided")
        );
        let req = pb::UpdateUserRequest {
            username: "u".into(),
            password: Some(pb::ChangePassword::default()),
            ..Default::default()
        };
        let err = s.update_user(with_id(req, "a")).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::InvalidArgument, "update user request has no changes")
        );
        let req = pb::NewUserRequest {
            username_config: Some(Default::default()),
            credential_type: 9,
            ..Default::default()
        };
        let err = s.new_user(with_id(req, "a")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let req = pb::NewUserRequest {
            username_config: Some(Default::default()),
            expiration: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
            ..Default::default()
        };
        let err = s.new_user(with_id(req, "a")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message()
                .starts_with("unable to parse expiration date: ")
        );
        let req = pb::NewUserRequest {
            username_config: Some(Default::default()),
            ..Default::default()
        };
        let err = s.new_user(with_id(req, "a")).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::Internal, "unable to create new user: nope")
        );
    }

    #[tokio::test]
    async fn metadata_errors_are_unknown() {
        let s = service();
        let mut r = Request::new(pb::Empty {});
        r.metadata_mut()
            .append(MULTIPLEX_ID_KEY, "a".parse().unwrap());
        r.metadata_mut()
            .append(MULTIPLEX_ID_KEY, "b".parse().unwrap());
        let err = s.r#type(r).await.unwrap_err();
        assert_eq!(err.message(), "unexpected number of IDs in metadata: (2)");
        let err = s.r#type(with_id(pb::Empty {}, "")).await.unwrap_err();
        assert_eq!(err.message(), "empty multiplex ID in metadata");
    }

    #[tokio::test]
    async fn panic_is_an_internal_error_and_close_removes_only_that_id() {
        let s = service();
        let mut config = prost_types::Struct::default();
        config
            .fields
            .insert("panic".into(), prost_types::Value::default());
        let req = pb::InitializeRequest {
            config_data: Some(config),
            verify_connection: false,
        };
        let err = s.initialize(with_id(req, "a")).await.unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(err.message().starts_with("failed to initialize: "));
        s.r#type(with_id(pb::Empty {}, "b")).await.unwrap();
        assert_eq!(s.instance_count(), 2);
        s.close(with_id(pb::Empty {}, "a")).await.unwrap();
        assert_eq!(s.instance_count(), 1);
        s.r#type(with_id(pb::Empty {}, "b")).await.unwrap();
    }
}
