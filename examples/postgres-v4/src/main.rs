//! PostgreSQL with the original database plugin interface (v4): the plugin makes up
//! usernames and passwords itself. Vault and OpenBao launch v4 plugins over the TLS-unwrap
//! bootstrap, which `dbplugin::v4::Server` handles.
//!
//! One connection (no pool), no TLS; statements as in the built-in plugin: split on `;`,
//! with `{{name}}`, `{{username}}`, `{{password}}` and `{{expiration}}` filled in.

mod keys;

use std::str::FromStr;

use dbplugin::time::OffsetDateTime;
use dbplugin::toolkit::connection::{ConnectionConfig, UrlEscaping};
use dbplugin::toolkit::credentials::UsernameGenerator;
use dbplugin::toolkit::statements::{
    self, POSTGRES_DEFAULT_RENEW, POSTGRES_DEFAULT_ROTATE, Placeholders, quote_identifier,
};
use dbplugin::v4::{Database, Statements, StaticUserConfig, UsernameConfig};
use dbplugin::{ConfigMap, Error, ErrorKind, Result, Secret};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

#[derive(Default)]
struct State {
    config: ConfigMap,
    url: Secret,
    client: Option<Client>,
}

/// The plugin.
#[derive(Default)]
struct PostgresV4 {
    state: Mutex<Option<State>>,
}

impl std::fmt::Debug for PostgresV4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresV4").finish_non_exhaustive()
    }
}

/// A server error as pgx words it (`ERROR: … (SQLSTATE …)`), else the error and its causes.
fn text(e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        return Error::new(format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ));
    }
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg = format!("{msg}: {c}");
        cause = c.source();
    }
    Error::new(msg)
}

async fn connect(url: &Secret) -> Result<Client> {
    let mut config = tokio_postgres::Config::from_str(url.expose())
        .map_err(|e| Error::invalid_argument(format!("unable to parse connection url: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("vault");
    }
    let (client, connection) = config.connect(NoTls).await.map_err(text)?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs every statement of `commands` (or `default` when there are none) in one transaction.
async fn run(
    client: &mut Client,
    commands: &[String],
    default: &str,
    fill: &Placeholders,
) -> Result<()> {
    let default = [default.to_owned()];
    let commands = if commands.is_empty() {
        &default[..]
    } else {
        commands
    };
    let tx = client.transaction().await.map_err(text)?;
    for command in commands {
        for query in statements::split(command) {
            tx.batch_execute(&fill.apply(&query)).await.map_err(text)?;
        }
    }
    tx.commit().await.map_err(text)
}

impl PostgresV4 {
    /// Runs `f` with the connection, connecting first if needed.
    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&mut Client, &mut ConfigMap) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.state.lock().await;
        let state = guard.as_mut().ok_or_else(|| {
            Error::with_kind(
                ErrorKind::FailedPrecondition,
                "plugin not initialized: call Init first",
            )
        })?;
        if state.client.as_ref().is_none_or(Client::is_closed) {
            state.client = Some(connect(&state.url).await?);
        }
        let client = state.client.as_mut().expect("connected above");
        f(client, &mut state.config).await
    }
}

impl Database for PostgresV4 {
    async fn type_name(&self) -> Result<String> {
        Ok("postgres".into())
    }

    async fn init(&self, config: ConfigMap, verify_connection: bool) -> Result<ConfigMap> {
        let url = ConnectionConfig::from_config(&config)?.render_url(UrlEscaping::Both)?;
        let client = if verify_connection {
            let client = connect(&url)
                .await
                .map_err(|e| e.context("error verifying connection"))?;
            Some(client)
        } else {
            None
        };
        *self.state.lock().await = Some(State {
            config: config.clone(),
            url,
            client,
        });
        Ok(config)
    }

    async fn create_user(
        &self,
        statements: Statements,
        names: UsernameConfig,
        expiration: OffsetDateTime,
    ) -> Result<(String, Secret)> {
        if statements.creation.is_empty() {
            return Err(Error::new("empty creation statements"));
        }
        let username = UsernameGenerator::new()
            .display_name(&names.display_name, 8)
            .role_name(&names.role_name, 8)
            .separator("-")
            .max_length(63)
            .generate();
        let password = self.generate_credentials().await?;
        let fill = Placeholders::new()
            .name(&username)
            .password(password.clone())
            .expiration(expiration);
        self.with_client(async |c, _| run(c, &statements.creation, "", &fill).await)
            .await?;
        Ok((username, password))
    }

    async fn renew_user(
        &self,
        statements: Statements,
        username: String,
        expiration: OffsetDateTime,
    ) -> Result<()> {
        let fill = Placeholders::new().name(&username).expiration(expiration);
        self.with_client(async |c, _| {
            run(c, &statements.renewal, POSTGRES_DEFAULT_RENEW, &fill).await
        })
        .await
    }

    async fn revoke_user(&self, statements: Statements, username: String) -> Result<()> {
        self.with_client(async |c, _| {
            if !statements.revocation.is_empty() {
                return run(c, &statements.revocation, "", &Placeholders::new().name(&username)).await;
            }
            let exists: bool = c
                .query_one("SELECT exists (SELECT 1 FROM pg_roles WHERE rolname=$1)", &[&username])
                .await
                .map_err(text)?
                .get(0);
            if !exists {
                return Ok(());
            }
            // What the role owns goes to us, its privileges go away, then the role.
            let user = quote_identifier(&username);
            let drop = format!("REASSIGN OWNED BY {user} TO CURRENT_USER; DROP OWNED BY {user}; DROP ROLE IF EXISTS {user}");
            run(c, &[drop], "", &Placeholders::new()).await
        })
        .await
    }

    async fn rotate_root_credentials(&self, statements: Vec<String>) -> Result<ConfigMap> {
        let password = self.generate_credentials().await?;
        let config = self
            .with_client(async |c, config| {
                let mut settings = ConnectionConfig::from_config(config)?;
                if settings.username.is_empty() || settings.password.is_empty() {
                    return Err(Error::new("username and password are required to rotate"));
                }
                let fill = Placeholders::new()
                    .name(&settings.username)
                    .password(password.clone());
                run(c, &statements, POSTGRES_DEFAULT_ROTATE, &fill).await?;
                config.insert("password".into(), password.expose().into());
                settings.password = password.clone();
                Ok((config.clone(), settings.render_url(UrlEscaping::Both)?))
            })
            .await?;
        if let Some(state) = self.state.lock().await.as_mut() {
            state.url = config.1; // reconnects use the new password
        }
        Ok(config.0)
    }

    async fn set_credentials(
        &self,
        statements: Statements,
        user: StaticUserConfig,
    ) -> Result<(String, Secret)> {
        if statements.rotation.is_empty() {
            return Err(Error::new("empty rotation statements"));
        }
        let fill = Placeholders::new()
            .name(&user.username)
            .password(user.password.clone());
        self.with_client(async |c, _| run(c, &statements.rotation, "", &fill).await)
            .await?;
        Ok((user.username, user.password))
    }

    async fn close(&self) -> Result<()> {
        *self.state.lock().await = None;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    dbplugin::v4::Server::new(PostgresV4::default)
        .version(env!("CARGO_PKG_VERSION"))
        .serve()
}
