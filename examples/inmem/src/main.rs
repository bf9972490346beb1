//! The smallest complete database plugin: its "database" is a map of users in memory.
//!
//! Every RPC is implemented for real against that map, so the plugin behaves like a
//! database plugin end to end (users are created, changed and removed, statements are
//! "executed"), and it is the default plugin of the demo and the conformance tests.
//!
//! Configuration keys:
//! - `connection_url` (optional): with `verify_connection`, must start with `inmem://`.
//! - `snapshot_path` (optional): after every change, the user table is written there as
//!   JSON (passwords as SHA-256 digests), so tests can see the effect of each call.
//!
//! Statements: each command has `{{name}}`/`{{username}}`, `{{expiration}}` and
//! `{{password}}` (recorded as `[password]`) filled in and is recorded with the user; a
//! command starting with `ERROR` fails, as a failing SQL statement would.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dbplugin::time::OffsetDateTime;
use dbplugin::toolkit::credentials::{base62_random, truncate_part};
use dbplugin::toolkit::statements::Placeholders;
use dbplugin::tracing::warn;
use dbplugin::{
    DeleteUserRequest, Error, NewCredential, NewUserRequest, Result, Secret, UpdateUserRequest,
    database_plugin,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One user of the in-memory database.
#[derive(Debug, Clone, Serialize)]
struct User {
    credential_type: &'static str,
    password_sha256: String,
    public_key: String,
    subject: String,
    expiration: String,
    statements: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    initialized: bool,
    snapshot_path: Option<String>,
    users: BTreeMap<String, User>,
}

/// The configuration keys the plugin reads; the others are stored as received.
#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    connection_url: Option<String>,
    #[serde(default)]
    snapshot_path: Option<String>,
}

/// The plugin: one per configured connection.
#[derive(Debug, Default)]
struct InMemory {
    state: Mutex<State>,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&dbplugin::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// "Executes" statements as a database would: the database sees the real password (and,
/// like a real one, quotes the failing statement in its error, which the runtime's
/// sanitizer then scrubs); what is recorded with the user has `[password]` instead.
/// A statement starting with `ERROR` fails. Returns the recorded statements.
fn execute(
    commands: &[String],
    username: &str,
    password: Option<&Secret>,
    expiration: Option<OffsetDateTime>,
) -> Result<Vec<String>> {
    let mut seen = Placeholders::new().name(username);
    let mut recorded = Placeholders::new().name(username).password("[password]");
    if let Some(p) = password {
        seen = seen.password(p.clone());
    }
    if let Some(t) = expiration {
        seen = seen.expiration(t);
        recorded = recorded.expiration(t);
    }
    let mut ran = Vec::with_capacity(commands.len());
    for command in commands {
        let text = seen.apply(command);
        if text.trim_start().starts_with("ERROR") {
            return Err(Error::new(format!("statement failed: {text}")));
        }
        ran.push(recorded.apply(command));
    }
    Ok(ran)
}

impl InMemory {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn initialized(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        let state = self.state();
        if !state.initialized {
            return Err(Error::with_kind(
                dbplugin::ErrorKind::FailedPrecondition,
                "plugin not initialized: call Initialize first",
            ));
        }
        Ok(state)
    }
}

impl State {
    fn save(&self) -> Result<()> {
        let Some(path) = &self.snapshot_path else {
            return Ok(());
        };
        let body = serde_json::json!({ "users": self.users });
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&body)?)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::new(format!("cannot write snapshot to {path}: {e}")))
    }
}

#[database_plugin(
    name = "inmem",
    credential_types(password, rsa_private_key, client_certificate),
    main
)]
impl InMemory {
    async fn initialize(&self, config: Config, verify_connection: bool) -> Result<()> {
        if verify_connection
            && let Some(url) = &config.connection_url
            && !url.starts_with("inmem://")
        {
            // Like a driver, name the address it could not reach (the runtime removes any
            // credentials in it from the error).
            return Err(Error::with_kind(
                dbplugin::ErrorKind::Unavailable,
                format!("unable to connect to {url}: `connection_url` must start with inmem://"),
            ));
        }
        let mut state = self.state();
        *state = State {
            initialized: true,
            snapshot_path: config.snapshot_path,
            users: BTreeMap::new(),
        };
        state.save()
    }

    async fn new_user(&self, req: NewUserRequest) -> Result<String> {
        let username = format!(
            "v-{}-{}-{}",
            truncate_part(&req.username_config.display_name, 8),
            truncate_part(&req.username_config.role_name, 8),
            base62_random(10)
        );
        let mut state = self.initialized()?;
        let password = match &req.credential {
            NewCredential::Password(p) => Some(p),
            _ => None,
        };
        let statements = execute(
            &req.statements.commands,
            &username,
            password,
            Some(req.expiration),
        )?;
        let mut user = User {
            credential_type: req.credential.credential_type().as_str(),
            password_sha256: String::new(),
            public_key: String::new(),
            subject: String::new(),
            expiration: rfc3339(req.expiration),
            statements,
        };
        match &req.credential {
            NewCredential::Password(p) => user.password_sha256 = sha256_hex(p.expose().as_bytes()),
            NewCredential::RsaPublicKey(pem) => {
                user.public_key = String::from_utf8_lossy(pem).into_owned();
            }
            NewCredential::ClientCertificate { subject } => user.subject = subject.clone(),
            _ => return Err(Error::unimplemented("unsupported credential type")),
        }
        state.users.insert(username.clone(), user);
        state.save()?;
        Ok(username)
    }

    async fn update_user(&self, req: UpdateUserRequest) -> Result<()> {
        let mut state = self.initialized()?;
        let Some(mut user) = state.users.get(&req.username).cloned() else {
            return Err(Error::new(format!(
                "user {:?} does not exist",
                req.username
            )));
        };
        if let Some(change) = &req.password {
            user.statements.extend(execute(
                &change.statements.commands,
                &req.username,
                Some(&change.new_password),
                None,
            )?);
            user.password_sha256 = sha256_hex(change.new_password.expose().as_bytes());
        }
        if let Some(change) = &req.public_key {
            user.statements.extend(execute(
                &change.statements.commands,
                &req.username,
                None,
                None,
            )?);
            user.public_key = String::from_utf8_lossy(&change.new_public_key).into_owned();
        }
        if let Some(change) = &req.expiration {
            user.statements.extend(execute(
                &change.statements.commands,
                &req.username,
                None,
                Some(change.new_expiration),
            )?);
            user.expiration = rfc3339(change.new_expiration);
        }
        state.users.insert(req.username, user);
        state.save()
    }

    async fn delete_user(&self, req: DeleteUserRequest) -> Result<()> {
        let mut state = self.initialized()?;
        execute(&req.statements.commands, &req.username, None, None)?;
        if state.users.remove(&req.username).is_none() {
            warn!(username = %req.username, "user does not exist; nothing to delete");
            return Ok(());
        }
        state.save()
    }

    async fn close(&self) -> Result<()> {
        self.state().initialized = false;
        Ok(())
    }
}
