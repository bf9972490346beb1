//! A Redis / Valkey database plugin (protocol v5): users are ACL users (Redis 6 or later).
//!
//! It behaves like OpenBao's `valkey` plugin: NewUser runs `ACL SETUSER <name> ON >password`
//! followed by the rules from the creation statements (default `["~*", "+@read"]`),
//! UpdateUser resets the password (expiration changes are accepted and ignored: ACL users do
//! not expire), DeleteUser runs `ACL DELUSER`. One process serves many connections
//! (multiplexing); each keeps one multiplexed connection to its server.

mod keys;

use std::time::Duration;

use dbplugin::toolkit::connection::{weak_bool, weak_int, weak_string};
use dbplugin::toolkit::credentials::{CaseOp, UsernameGenerator};
use dbplugin::tracing::{debug, warn};
use dbplugin::{
    ConfigMap, Database, DeleteUserRequest, Error, ErrorKind, InitializeRequest,
    InitializeResponse, NewCredential, NewUserRequest, NewUserResponse, Result, UpdateUserRequest,
};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};
use tokio::sync::Mutex;

/// The rules a user gets when the role has no creation statements.
const DEFAULT_RULES: &str = r#"["~*", "+@read"]"#;

/// Parts of the username taken from the display and role names (as the valkey plugin does).
const NAME_PART_LENGTH: i64 = 64;

struct Connected {
    client: Client,
    conn: Option<MultiplexedConnection>,
}

/// The plugin: one per configured connection (multiplex id).
#[derive(Default)]
struct Redis {
    state: Mutex<Option<Connected>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").finish_non_exhaustive()
    }
}

fn get<'a>(config: &'a ConfigMap, key: &str) -> Option<&'a serde_json::Value> {
    config.get(key)
}

/// Decodes the connection settings; the errors are the valkey plugin's.
fn client_from(config: &ConfigMap) -> Result<Client> {
    let host = weak_string("host", get(config, "host"))?;
    let port = weak_int("port", get(config, "port"))?;
    let username = weak_string("username", get(config, "username"))?;
    let password = weak_string("password", get(config, "password"))?;
    let tls = weak_bool("tls", get(config, "tls"))?;
    if host.is_empty() {
        return Err(Error::invalid_argument("host cannot be empty"));
    }
    if port == 0 {
        return Err(Error::invalid_argument("port cannot be empty"));
    }
    let port = u16::try_from(port)
        .map_err(|_| Error::invalid_argument(format!("port {port} is out of range")))?;
    if username.is_empty() {
        return Err(Error::invalid_argument("username cannot be empty"));
    }
    if password.is_empty() {
        return Err(Error::invalid_argument("password cannot be empty"));
    }
    if tls {
        return Err(Error::invalid_argument(
            "tls is not supported by this plugin: it connects without TLS",
        ));
    }
    let info = ConnectionInfo {
        addr: ConnectionAddr::Tcp(host, port),
        redis: RedisConnectionInfo {
            username: Some(username),
            password: Some(password),
            ..Default::default()
        },
    };
    Client::open(info)
        .map_err(|e| Error::invalid_argument(format!("invalid connection settings: {e}")))
}

async fn connect(client: &Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(10))
        .set_response_timeout(Duration::from_secs(20));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// The ACL rules of the creation statements: the first statement as a JSON list of rules,
/// else every statement is one rule.
fn acl_rules(commands: &[String]) -> Vec<String> {
    let mut statements: Vec<String> = commands
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if statements.is_empty() {
        statements.push(DEFAULT_RULES.to_owned());
    }
    match serde_json::from_str::<Vec<String>>(&statements[0]) {
        Ok(rules) => rules,
        Err(_) => {
            warn!("creation statements are not a JSON list; applying each as one ACL rule");
            statements
        }
    }
}

impl Redis {
    /// The connection, made on first use and kept.
    async fn connection(&self) -> Result<MultiplexedConnection> {
        let mut guard = self.state.lock().await;
        let Some(state) = guard.as_mut() else {
            return Err(Error::with_kind(
                ErrorKind::FailedPrecondition,
                "connection has not been initialized",
            ));
        };
        if let Some(conn) = &state.conn {
            return Ok(conn.clone());
        }
        let conn = connect(&state.client)
            .await
            .map_err(|e| Error::new(format!("failed to get connection: {e}")))?;
        state.conn = Some(conn.clone());
        Ok(conn)
    }
}

impl Database for Redis {
    async fn type_name(&self) -> Result<String> {
        Ok("redis".into())
    }

    async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse> {
        for key in req.config.keys() {
            if !keys::CONFIG_KEYS.contains(&key.as_str()) {
                warn!(key = %key, "ignoring unknown configuration key");
            }
        }
        let client = client_from(&req.config)?;
        let conn = if req.verify_connection {
            let mut conn = connect(&client)
                .await
                .map_err(|e| Error::new(format!("error verifying connection: {e}")))?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| Error::new(format!("error verifying connection: {e}")))?;
            Some(conn)
        } else {
            None
        };
        *self.state.lock().await = Some(Connected { client, conn });
        debug!("redis connection initialized");
        Ok(InitializeResponse::new(req.config))
    }

    async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
        let NewCredential::Password(password) = &req.credential else {
            return Err(Error::invalid_argument(format!(
                "unsupported credential type {:?}: this plugin supports passwords only",
                req.credential.credential_type().as_str()
            )));
        };
        let username = UsernameGenerator::new()
            .display_name(&req.username_config.display_name, NAME_PART_LENGTH)
            .role_name(&req.username_config.role_name, NAME_PART_LENGTH)
            .case(CaseOp::Uppercase)
            .generate();
        let mut conn = self.connection().await?;
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER")
            .arg(&username)
            .arg("ON")
            .arg(format!(">{}", password.expose()));
        for rule in acl_rules(&req.statements.commands) {
            cmd.arg(rule);
        }
        cmd.query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::new(e.to_string()))?;
        Ok(NewUserResponse::new(username))
    }

    async fn update_user(&self, req: UpdateUserRequest) -> Result<()> {
        let Some(change) = &req.password else {
            return Ok(());
        };
        let mut conn = self.connection().await?;
        let user: Option<redis::Value> = redis::cmd("ACL")
            .arg("GETUSER")
            .arg(&req.username)
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::new(format!("valkey error returned: {e}")))?;
        if matches!(user, None | Some(redis::Value::Nil)) {
            return Err(Error::new(format!(
                "changeUserPassword for user {} failed: user not found",
                req.username
            )));
        }
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&req.username)
            .arg("RESETPASS")
            .arg(format!(">{}", change.new_password.expose()))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::new(e.to_string()))
    }

    async fn delete_user(&self, req: DeleteUserRequest) -> Result<()> {
        let mut conn = self.connection().await?;
        redis::cmd("ACL")
            .arg("DELUSER")
            .arg(&req.username)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| Error::new(e.to_string()))
    }

    async fn close(&self) -> Result<()> {
        *self.state.lock().await = None;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    dbplugin::Server::new(Redis::default)
        .version(env!("CARGO_PKG_VERSION"))
        .serve()
}
