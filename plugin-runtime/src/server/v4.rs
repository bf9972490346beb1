//! `dbplugin.Database` (protocol v4): JSON config bytes, one instance, errors as the Go
//! server returns them (plain errors, i.e. gRPC `Unknown`, unless the plugin chose a kind).

use std::future::Future;
use std::sync::Arc;

use dbplugin_proto::dbplugin::v4 as pb;
use time::OffsetDateTime;
use tonic::{Code, Request, Response, Status};

use crate::toolkit::sanitize::Sanitizer;
use crate::v4::{Database, Statements, StaticUserConfig, UsernameConfig};
use crate::{ConfigMap, Error, ErrorKind, Secret};

/// The instance behind the v4 service.
pub(crate) struct DatabaseService<D> {
    db: D,
    secret_keys: Vec<String>,
    /// Shared snapshot: a call takes a reference count, not a copy of the secrets.
    sanitizer: std::sync::RwLock<Arc<Sanitizer>>,
}

impl<D> std::fmt::Debug for DatabaseService<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseService")
    }
}

impl<D: Database> DatabaseService<D> {
    pub(crate) fn new(db: D, secret_keys: Vec<String>) -> Self {
        DatabaseService {
            db,
            secret_keys,
            sanitizer: std::sync::RwLock::new(Arc::new(Sanitizer::new())),
        }
    }

    /// The status for a plugin error: secrets removed (the config's and the request's).
    fn fail(&self, err: Error, request_secrets: &[&Secret]) -> Status {
        let sanitizer = self
            .sanitizer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        status(super::secrets::clean(&sanitizer, request_secrets, err))
    }

    /// Runs one call of the author's code: panics contained, their message logged without
    /// the config's secrets.
    async fn guarded<T>(&self, fut: impl Future<Output = crate::Result<T>>) -> crate::Result<T> {
        let sanitizer = self
            .sanitizer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        super::call::run(fut, None, |text| {
            super::secrets::clean_text(&sanitizer, &[], text)
        })
        .await
    }

    fn set_config(&self, config: &ConfigMap) {
        *self
            .sanitizer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(super::secrets::config_sanitizer(config, &self.secret_keys));
    }
}

/// The v4 Go server returns the plugin's error as is: gRPC `Unknown` with its text.
fn status(e: Error) -> Status {
    let code = match e.kind() {
        ErrorKind::Internal => Code::Unknown,
        other => other.code(),
    };
    Status::new(code, e.to_string())
}

fn statements(s: Option<pb::Statements>) -> Statements {
    let s = s.unwrap_or_default();
    // Old hosts sent single strings in the deprecated fields; use them when the lists are
    // empty, as the SDK's compatibility helper does.
    #[allow(deprecated)]
    let pick = |list: Vec<String>, single: String| {
        if list.is_empty() && !single.is_empty() {
            vec![single]
        } else {
            list
        }
    };
    #[allow(deprecated)]
    Statements {
        creation: pick(s.creation, s.creation_statements),
        revocation: pick(s.revocation, s.revocation_statements),
        rollback: pick(s.rollback, s.rollback_statements),
        renewal: pick(s.renewal, s.renew_statements),
        rotation: s.rotation,
    }
}

fn expiration(ts: Option<prost_types::Timestamp>) -> Result<OffsetDateTime, Status> {
    // The Go server calls CheckValid on the timestamp: it is required.
    let ts = ts.ok_or_else(|| Status::invalid_argument("invalid nil Timestamp"))?;
    crate::server::v5::timestamp(ts, "invalid expiration")
}

fn config_from_json(bytes: &[u8]) -> Result<ConfigMap, Status> {
    if bytes.is_empty() {
        return Ok(ConfigMap::new());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Status::invalid_argument(format!(
            "config: expected a JSON object, could not decode it at line {} column {}",
            e.line(),
            e.column()
        ))
    })
}

fn config_to_json(config: &ConfigMap) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(config).map_err(|e| Status::internal(format!("config: {e}")))
}

#[tonic::async_trait]
impl<D: Database> pb::database_server::Database for DatabaseService<D> {
    async fn r#type(&self, _: Request<pb::Empty>) -> Result<Response<pb::TypeResponse>, Status> {
        let name = self
            .guarded(self.db.type_name())
            .await
            .map_err(|e| self.fail(e, &[]))?;
        Ok(Response::new(pb::TypeResponse { r#type: name }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let req = request.into_inner();
        let expiration = expiration(req.expiration)?;
        let names = req.username_config.unwrap_or_default();
        let username_config = UsernameConfig {
            display_name: names.display_name,
            role_name: names.role_name,
        };
        let (username, password) = self
            .guarded(
                self.db
                    .create_user(statements(req.statements), username_config, expiration),
            )
            .await
            .map_err(|e| self.fail(e, &[]))?;
        Ok(Response::new(pb::CreateUserResponse {
            username,
            password: password.expose().to_owned(),
        }))
    }

    async fn renew_user(
        &self,
        request: Request<pb::RenewUserRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let req = request.into_inner();
        let expiration = expiration(req.expiration)?;
        self.guarded(
            self.db
                .renew_user(statements(req.statements), req.username, expiration),
        )
        .await
        .map_err(|e| self.fail(e, &[]))?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn revoke_user(
        &self,
        request: Request<pb::RevokeUserRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let req = request.into_inner();
        self.guarded(
            self.db
                .revoke_user(statements(req.statements), req.username),
        )
        .await
        .map_err(|e| self.fail(e, &[]))?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn rotate_root_credentials(
        &self,
        request: Request<pb::RotateRootCredentialsRequest>,
    ) -> Result<Response<pb::RotateRootCredentialsResponse>, Status> {
        let req = request.into_inner();
        let config = self
            .guarded(self.db.rotate_root_credentials(req.statements))
            .await
            .map_err(|e| self.fail(e, &[]))?;
        // Errors after a rotation must hide the new root password as well as the old one.
        self.set_config(&config);
        Ok(Response::new(pb::RotateRootCredentialsResponse {
            config: config_to_json(&config)?,
        }))
    }

    async fn init(
        &self,
        request: Request<pb::InitRequest>,
    ) -> Result<Response<pb::InitResponse>, Status> {
        let req = request.into_inner();
        let config = config_from_json(&req.config)?;
        self.set_config(&config);
        let saved = self
            .guarded(self.db.init(config, req.verify_connection))
            .await
            .map_err(|e| self.fail(e, &[]))?;
        Ok(Response::new(pb::InitResponse {
            config: config_to_json(&saved)?,
        }))
    }

    async fn close(&self, _: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        // The Go server ignores the plugin's Close error and always answers Empty.
        if let Err(e) = self.guarded(self.db.close()).await {
            let e = self.fail(e, &[]);
            tracing::warn!(error = %e.message(), "closing the database failed");
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn set_credentials(
        &self,
        request: Request<pb::SetCredentialsRequest>,
    ) -> Result<Response<pb::SetCredentialsResponse>, Status> {
        let req = request.into_inner();
        let user = req.static_user_config.unwrap_or_default();
        let new_password = Secret::from(user.password);
        let static_user = StaticUserConfig {
            username: user.username,
            password: new_password.clone(),
            create: user.create,
        };
        let (username, password) = self
            .guarded(
                self.db
                    .set_credentials(statements(req.statements), static_user),
            )
            .await
            .map_err(|e| self.fail(e, &[&new_password]))?;
        Ok(Response::new(pb::SetCredentialsResponse {
            username,
            password: password.expose().to_owned(),
        }))
    }

    async fn generate_credentials(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::GenerateCredentialsResponse>, Status> {
        let password = self
            .guarded(self.db.generate_credentials())
            .await
            .map_err(|e| self.fail(e, &[]))?;
        Ok(Response::new(pb::GenerateCredentialsResponse {
            password: password.expose().to_owned(),
        }))
    }

    #[allow(deprecated)]
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let req = request.into_inner();
        let config = config_from_json(&req.config)?;
        self.set_config(&config);
        self.guarded(self.db.init(config, req.verify_connection))
            .await
            .map_err(|e| self.fail(e, &[]))?;
        Ok(Response::new(pb::Empty {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecated_single_statements_fill_empty_lists() {
        #[allow(deprecated)]
        let s = statements(Some(pb::Statements {
            creation_statements: "CREATE".into(),
            revocation: vec!["DROP".into()],
            revocation_statements: "ignored".into(),
            ..Default::default()
        }));
        assert_eq!(s.creation, vec!["CREATE".to_string()]);
        assert_eq!(s.revocation, vec!["DROP".to_string()]);
    }
}
