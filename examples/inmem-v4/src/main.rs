//! The original database plugin interface (v4), over a user table in memory.
//!
//! The plugin generates usernames and passwords itself (`CreateUser`), renews, revokes,
//! sets static passwords and rotates the root password. Vault and OpenBao launch v4 plugins
//! without AutoMTLS: the runtime unwraps the host's TLS certificate first (trusting the CA
//! from `VAULT_CACERT` or the `-ca-cert` argument).
//!
//! Configuration: `connection_url` (with `verify_connection`, must start with `inmem://`),
//! `username` and `password` (the root account, needed for rotation), `snapshot_path`
//! (optional JSON dump of the table after every change, passwords as SHA-256 digests).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use dbplugin::time::OffsetDateTime;
use dbplugin::time::format_description::well_known::Rfc3339;
use dbplugin::toolkit::credentials::{UsernameGenerator, generate_password};
use dbplugin::toolkit::statements::Placeholders;
use dbplugin::v4::{Statements, StaticUserConfig, UsernameConfig};
use dbplugin::{ConfigMap, Error, ErrorKind, Result, Secret, database_plugin};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, Serialize)]
struct User {
    credential_type: &'static str,
    password_sha256: String,
    expiration: String,
    statements: Vec<String>,
}

#[derive(Debug, Default)]
struct Table {
    config: ConfigMap,
    users: BTreeMap<String, User>,
}

#[derive(Debug, Default)]
struct InMemoryV4 {
    table: Mutex<Option<Table>>,
}

fn digest(secret: &Secret) -> String {
    Sha256::digest(secret.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fills `{{name}}`, `{{password}}` (recorded as `[password]`) and `{{expiration}}`; a
/// statement starting with `ERROR` fails like a failing SQL statement.
fn run(
    statements: &[String],
    name: &str,
    expiration: Option<OffsetDateTime>,
) -> Result<Vec<String>> {
    let mut fill = Placeholders::new().name(name).password("[password]");
    if let Some(t) = expiration {
        fill = fill.expiration(t);
    }
    statements
        .iter()
        .map(|s| {
            let s = fill.apply(s);
            if s.trim_start().starts_with("ERROR") {
                Err(Error::new(format!("statement failed: {s}")))
            } else {
                Ok(s)
            }
        })
        .collect()
}

impl InMemoryV4 {
    fn table(&self) -> Result<MutexGuard<'_, Option<Table>>> {
        let guard = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(Error::with_kind(
                ErrorKind::FailedPrecondition,
                "plugin not initialized: call Init first",
            ));
        }
        Ok(guard)
    }

    fn save(table: &Table) -> Result<()> {
        let Some(path) = table.config.get("snapshot_path").and_then(|v| v.as_str()) else {
            return Ok(());
        };
        let root = table
            .config
            .get("password")
            .and_then(|v| v.as_str())
            .map(|p| digest(&Secret::new(p)))
            .unwrap_or_default();
        let body = serde_json::json!({ "users": table.users, "root_password_sha256": root });
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&body)?)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::new(format!("cannot write snapshot to {path}: {e}")))
    }
}

fn with_table<T>(guard: &mut Option<Table>, f: impl FnOnce(&mut Table) -> Result<T>) -> Result<T> {
    let table = guard.as_mut().expect("checked by table()");
    let out = f(table)?;
    InMemoryV4::save(table)?;
    Ok(out)
}

/// The original (v4) method set: `#[database_plugin]` serves it on app protocol versions 3
/// and 4. `generate_credentials` is left to the default (the credsutil password).
#[database_plugin(name = "inmem-v4", main)]
impl InMemoryV4 {
    async fn init(&self, config: ConfigMap, verify_connection: bool) -> Result<ConfigMap> {
        if verify_connection
            && let Some(url) = config.get("connection_url").and_then(|v| v.as_str())
            && !url.starts_with("inmem://")
        {
            return Err(Error::new(
                "unable to connect: `connection_url` must start with inmem://",
            ));
        }
        let table = Table {
            config: config.clone(),
            users: BTreeMap::new(),
        };
        Self::save(&table)?;
        *self.table.lock().unwrap_or_else(|e| e.into_inner()) = Some(table);
        Ok(config)
    }

    async fn create_user(
        &self,
        statements: Statements,
        names: UsernameConfig,
        expiration: OffsetDateTime,
    ) -> Result<(String, Secret)> {
        let password = generate_password();
        // credsutil's shape: v-<display>-<role>-<20 random>-<unix seconds>, at most 63 bytes.
        let username = UsernameGenerator::new()
            .display_name(&names.display_name, 8)
            .role_name(&names.role_name, 8)
            .separator("-")
            .max_length(63)
            .generate();
        let mut guard = self.table()?;
        with_table(&mut guard, |t| {
            let ran = run(&statements.creation, &username, Some(expiration))?;
            t.users.insert(
                username.clone(),
                User {
                    credential_type: "password",
                    password_sha256: digest(&password),
                    expiration: expiration.format(&Rfc3339).unwrap_or_default(),
                    statements: ran,
                },
            );
            Ok(())
        })?;
        Ok((username, password))
    }

    async fn renew_user(
        &self,
        statements: Statements,
        username: String,
        expiration: OffsetDateTime,
    ) -> Result<()> {
        let mut guard = self.table()?;
        with_table(&mut guard, |t| {
            let ran = run(&statements.renewal, &username, Some(expiration))?;
            let user = t
                .users
                .get_mut(&username)
                .ok_or_else(|| Error::new(format!("user {username:?} does not exist")))?;
            user.expiration = expiration.format(&Rfc3339).unwrap_or_default();
            user.statements.extend(ran);
            Ok(())
        })
    }

    async fn revoke_user(&self, statements: Statements, username: String) -> Result<()> {
        let mut guard = self.table()?;
        with_table(&mut guard, |t| {
            run(&statements.revocation, &username, None)?;
            t.users.remove(&username);
            Ok(())
        })
    }

    async fn rotate_root_credentials(&self, statements: Vec<String>) -> Result<ConfigMap> {
        let password = generate_password();
        let mut guard = self.table()?;
        with_table(&mut guard, |t| {
            let Some(user) = t
                .config
                .get("username")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
            else {
                return Err(Error::new(
                    "cannot rotate root credentials: `username` is not set",
                ));
            };
            if t.config
                .get("password")
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
            {
                return Err(Error::new(
                    "cannot rotate root credentials: `password` is not set",
                ));
            }
            run(&statements, &user, None)?;
            t.config
                .insert("password".into(), password.expose().to_owned().into());
            Ok(t.config.clone())
        })
    }

    async fn set_credentials(
        &self,
        statements: Statements,
        user: StaticUserConfig,
    ) -> Result<(String, Secret)> {
        let mut guard = self.table()?;
        with_table(&mut guard, |t| {
            let ran = run(&statements.rotation, &user.username, None)?;
            if !t.users.contains_key(&user.username) && !user.create {
                return Err(Error::new(format!(
                    "user {:?} does not exist",
                    user.username
                )));
            }
            let entry = t
                .users
                .entry(user.username.clone())
                .or_insert_with(|| User {
                    credential_type: "password",
                    ..Default::default()
                });
            entry.password_sha256 = digest(&user.password);
            entry.statements.extend(ran);
            Ok(())
        })?;
        Ok((user.username, user.password))
    }

    async fn close(&self) -> Result<()> {
        *self.table.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}
