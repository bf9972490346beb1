//! A database plugin with a typed configuration: `#[database_plugin]` decodes the
//! operator's config into [`Config`] before `initialize` runs, and refuses a wrong-typed
//! key with an error naming the key and the expected type, never the value.
//!
//! Its "database" keeps only the names of the users it created, in memory.
#![warn(clippy::pedantic)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use dbplugin::{
    DeleteUserRequest, Error, NewUserRequest, Result, UpdateUserRequest, database_plugin,
};
use serde::Deserialize;

/// The configuration keys this plugin reads. Other keys (`username`, `password`, ...) are
/// ignored here and stored as received.
#[derive(Debug, Deserialize)]
struct Config {
    /// Required: where the database is; must start with `typed://`.
    connection_url: String,
    /// Optional: the most users this connection may hold (default 100).
    #[serde(default = "default_max_users")]
    max_users: u32,
    /// Optional: a prefix for generated usernames (default `v`).
    #[serde(default)]
    username_prefix: Option<String>,
}

fn default_max_users() -> u32 {
    100
}

#[derive(Debug, Default)]
struct State {
    config: Option<Config>,
    users: BTreeSet<String>,
}

/// The plugin: one instance per configured connection.
#[derive(Debug, Default)]
struct TypedConfig {
    state: Mutex<State>,
}

impl TypedConfig {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[database_plugin(name = "typed-config", main)]
impl TypedConfig {
    async fn initialize(&self, config: Config, verify_connection: bool) -> Result<()> {
        if verify_connection && !config.connection_url.starts_with("typed://") {
            return Err(Error::invalid_argument(
                "`connection_url` must start with typed://",
            ));
        }
        self.state().config = Some(config);
        Ok(())
    }

    async fn new_user(&self, req: NewUserRequest) -> Result<String> {
        let mut state = self.state();
        let Some(config) = &state.config else {
            return Err(Error::with_kind(
                dbplugin::ErrorKind::FailedPrecondition,
                "plugin not initialized",
            ));
        };
        if state.users.len() >= config.max_users as usize {
            return Err(Error::new(format!(
                "`max_users` ({}) reached",
                config.max_users
            )));
        }
        let prefix = config.username_prefix.as_deref().unwrap_or("v");
        let name = format!(
            "{prefix}-{}-{}",
            req.username_config.role_name,
            state.users.len()
        );
        state.users.insert(name.clone());
        Ok(name)
    }

    async fn update_user(&self, req: UpdateUserRequest) -> Result<()> {
        if self.state().users.contains(&req.username) {
            Ok(())
        } else {
            Err(Error::new(format!(
                "user {:?} does not exist",
                req.username
            )))
        }
    }

    async fn delete_user(&self, req: DeleteUserRequest) -> Result<()> {
        self.state().users.remove(&req.username);
        Ok(())
    }
}
