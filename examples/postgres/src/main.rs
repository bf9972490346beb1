//! A PostgreSQL database plugin (protocol v5): the built-in `postgresql-database-plugin`'s
//! behaviour on tokio-postgres with a deadpool connection pool.
//!
//! Configuration keys: see [`keys::CONFIG_KEYS`] and the README. Statements follow the
//! built-in plugin: `{{name}}`/`{{username}}`, `{{password}}` and `{{expiration}}` are filled
//! in, one role statement may hold several SQL statements separated by `;` (or be a JSON
//! list, or base64), and a statement containing `END` (a `DO` block) runs unsplit.
//!
//! Differences from the built-in plugin: rollback statements run after a failed creation
//! (the built-in ignores them); the default revocation also reassigns and drops what the
//! role owns; connections are made without TLS (`sslmode=disable` or `prefer`).

mod keys;

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dbplugin::toolkit::connection::{ConnectionConfig, UrlEscaping};
use dbplugin::toolkit::sanitize::Sanitizer;
use dbplugin::toolkit::statements::{
    self, POSTGRES_DEFAULT_RENEW, POSTGRES_DEFAULT_ROTATE, Placeholders, quote_identifier,
};
use dbplugin::toolkit::template::{POSTGRES_DEFAULT, Template};
use dbplugin::tracing::{debug, warn};
use dbplugin::{
    ChangeExpiration, ChangePassword, Database, DeleteUserRequest, Error, ErrorKind,
    InitializeRequest, InitializeResponse, NewCredential, NewUserRequest, NewUserResponse, Result,
    Secret, UpdateUserRequest, UsernameMetadata,
};
use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

/// How passwords are put into statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordAuthentication {
    /// As received; the server hashes it (per its `password_encryption`).
    Password,
    /// Hashed here into a SCRAM-SHA-256 verifier; the password never reaches the server.
    ScramSha256,
}

/// One initialized connection.
struct Connection {
    pool: Pool,
    username_template: Template,
    password_authentication: PasswordAuthentication,
}

/// The plugin: one per configured connection (multiplex id).
#[derive(Default)]
struct Postgres {
    conn: RwLock<Option<Arc<Connection>>>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

/// go-multierror's text for a list of errors.
fn multierror(errors: Vec<String>) -> Option<Error> {
    if errors.is_empty() {
        return None;
    }
    let head = if errors.len() == 1 {
        "1 error occurred:".to_owned()
    } else {
        format!("{} errors occurred:", errors.len())
    };
    let items: Vec<String> = errors.iter().map(|e| format!("\t* {e}")).collect();
    Some(Error::new(format!("{head}\n{}\n\n", items.join("\n"))))
}

/// A config value read as `strutil.GetString` does: absent → empty, a string, else an error.
fn config_string(req: &InitializeRequest, key: &str) -> Result<String> {
    match req.config.get(key) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Error::invalid_argument(format!(
            "failed to retrieve {key}: expected a string, got {}",
            match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Array(_) => "a list",
                _ => "an object",
            }
        ))),
    }
}

fn parse_password_authentication(raw: &str) -> Result<PasswordAuthentication> {
    match raw {
        "" | "password" => Ok(PasswordAuthentication::Password),
        "scram-sha-256" => Ok(PasswordAuthentication::ScramSha256),
        other => Err(Error::invalid_argument(format!(
            "'{other}' is not a valid password authentication type"
        ))),
    }
}

/// The `tokio_postgres::Config` for the rendered `connection_url` (a URL or `key=value`
/// pairs), with connutil's session settings: `TimeZone=UTC` and `application_name=vault`.
fn pg_config(url: &Secret) -> Result<tokio_postgres::Config> {
    let mut pg = tokio_postgres::Config::from_str(url.expose()).map_err(|e| {
        // tokio-postgres does not echo the input, but only the kind of failure is useful.
        Error::invalid_argument(format!("unable to parse connection url: {e}"))
    })?;
    if pg.get_application_name().is_none() {
        pg.application_name("vault");
    }
    let options = match pg.get_options() {
        Some(o) if !o.is_empty() => format!("{o} -c TimeZone=UTC"),
        _ => "-c TimeZone=UTC".to_owned(),
    };
    pg.options(&options);
    if matches!(pg.get_ssl_mode(), SslMode::Require) {
        return Err(Error::invalid_argument(
            "sslmode=require is not supported: this plugin connects without TLS (use sslmode=disable or prefer)",
        ));
    }
    Ok(pg)
}

/// An error's text as the Go driver (pgx) words server errors, `ERROR: … (SQLSTATE …)`,
/// else the error and its causes.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(db) = err.downcast_ref::<tokio_postgres::error::DbError>() {
            return format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
        }
        cur = err.source();
    }
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let more = err.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cur = err.source();
    }
    text
}

fn db_err(context: &str, e: impl std::error::Error + 'static) -> Error {
    let text = error_text(&e);
    if context.is_empty() {
        Error::new(text)
    } else {
        Error::new(format!("{context}: {text}"))
    }
}

impl Postgres {
    fn connection(&self) -> Result<Arc<Connection>> {
        self.conn
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::with_kind(
                    ErrorKind::FailedPrecondition,
                    "connection has not been initialized",
                )
            })
    }

    async fn change_password(
        &self,
        conn: &Connection,
        username: &str,
        change: &ChangePassword,
    ) -> Result<()> {
        let password = &change.new_password;
        if password.is_empty() {
            return Err(Error::new("missing password"));
        }
        let value = conn.password_value(password);
        let fill = Placeholders::new().name(username).password(value.clone());
        let commands = with_default(&change.statements.commands, POSTGRES_DEFAULT_ROTATE);
        let mut client = conn
            .pool
            .get()
            .await
            .map_err(|e| db_err("unable to get connection", e))?;
        client
            .query_one(
                "SELECT exists (SELECT rolname FROM pg_roles WHERE rolname=$1);",
                &[&username],
            )
            .await
            .map_err(|e| db_err("user does not appear to exist", e))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("unable to start transaction", e))?;
        for command in &commands {
            for query in statements::split(command) {
                tx.batch_execute(&fill.apply(&query))
                    .await
                    .map_err(|e| db_err("failed to execute query", e))?;
            }
        }
        tx.commit().await.map_err(|e| db_err("", e))
    }

    async fn change_expiration(
        &self,
        conn: &Connection,
        username: &str,
        change: &ChangeExpiration,
    ) -> Result<()> {
        let fill = Placeholders::new()
            .name(username)
            .expiration(change.new_expiration);
        let commands = with_default(&change.statements.commands, POSTGRES_DEFAULT_RENEW);
        let mut client = conn.pool.get().await.map_err(|e| db_err("", e))?;
        let tx = client.transaction().await.map_err(|e| db_err("", e))?;
        for command in &commands {
            for query in statements::split(command) {
                tx.batch_execute(&fill.apply(&query))
                    .await
                    .map_err(|e| db_err("", e))?;
            }
        }
        tx.commit().await.map_err(|e| db_err("", e))
    }

    /// The built-in plugin's revocation when the role has no revocation statements: revoke
    /// what can be found, hand over and drop what the role owns, drop the role.
    async fn default_delete(&self, conn: &Connection, username: &str) -> Result<()> {
        let client = conn.pool.get().await.map_err(|e| db_err("", e))?;
        let exists: bool = client
            .query_one(
                "SELECT exists (SELECT rolname FROM pg_roles WHERE rolname=$1);",
                &[&username],
            )
            .await
            .map_err(|e| db_err("", e))?
            .get(0);
        if !exists {
            return Ok(());
        }
        let user = quote_identifier(username);
        let mut revocations = Vec::new();
        // Not in a transaction: a failure must not stop the other revocations.
        let schemas = client
            .query(
                "SELECT DISTINCT table_schema FROM information_schema.role_column_grants WHERE grantee=$1;",
                &[&username],
            )
            .await
            .map_err(|e| db_err("", e))?;
        for row in schemas {
            let schema = quote_identifier(row.get::<_, &str>(0));
            revocations.push(format!(
                "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {schema} FROM {user};"
            ));
            revocations.push(format!("REVOKE USAGE ON SCHEMA {schema} FROM {user};"));
        }
        revocations.push(format!(
            "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM {user};"
        ));
        revocations.push(format!(
            "REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM {user};"
        ));
        revocations.push(format!("REVOKE USAGE ON SCHEMA public FROM {user};"));
        let dbname: Option<String> = client
            .query_one("SELECT current_database();", &[])
            .await
            .map_err(|e| db_err("", e))?
            .get(0);
        if let Some(dbname) = dbname {
            revocations.push(format!(
                "REVOKE CONNECT ON DATABASE {} FROM {user};",
                quote_identifier(&dbname)
            ));
        }
        revocations.push(format!("REASSIGN OWNED BY {user} TO CURRENT_USER;"));
        revocations.push(format!("DROP OWNED BY {user};"));
        let mut last_error = None;
        for query in &revocations {
            if let Err(e) = client.batch_execute(query).await {
                last_error = Some(e);
            }
        }
        if let Some(e) = last_error {
            return Err(db_err("could not perform all revocation statements", e));
        }
        client
            .batch_execute(&format!("DROP ROLE IF EXISTS {user};"))
            .await
            .map_err(|e| db_err("", e))
    }

    async fn custom_delete(
        &self,
        conn: &Connection,
        username: &str,
        commands: &[String],
    ) -> Result<()> {
        let fill = Placeholders::new().name(username);
        let mut client = conn.pool.get().await.map_err(|e| db_err("", e))?;
        let tx = client.transaction().await.map_err(|e| db_err("", e))?;
        for command in commands {
            for query in statements::split_postgres(command) {
                tx.batch_execute(&fill.apply(&query))
                    .await
                    .map_err(|e| db_err("", e))?;
            }
        }
        tx.commit().await.map_err(|e| db_err("", e))
    }
}

impl Connection {
    /// The value of `{{password}}`: the password, or its SCRAM-SHA-256 verifier.
    fn password_value(&self, password: &Secret) -> Secret {
        match self.password_authentication {
            PasswordAuthentication::Password => password.clone(),
            PasswordAuthentication::ScramSha256 => Secret::new(
                postgres_protocol::password::scram_sha_256(password.expose().as_bytes()),
            ),
        }
    }
}

fn with_default(commands: &[String], default: &str) -> Vec<String> {
    if commands.is_empty() {
        vec![default.to_owned()]
    } else {
        commands.to_vec()
    }
}

impl Database for Postgres {
    async fn type_name(&self) -> Result<String> {
        Ok("pgx".into())
    }

    async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse> {
        let settings = ConnectionConfig::from_config(&req.config)?;
        for key in req.config.keys() {
            if !keys::CONFIG_KEYS.contains(&key.as_str()) {
                warn!(key = %key, "ignoring unknown configuration key");
            }
        }

        let mut template = config_string(&req, "username_template")?;
        if template.is_empty() {
            template = POSTGRES_DEFAULT.to_owned();
        }
        let username_template = Template::parse(&template).map_err(|e| {
            Error::invalid_argument(format!("unable to initialize username template: {e}"))
        })?;
        username_template
            .render(&UsernameMetadata::default())
            .map_err(|e| Error::invalid_argument(format!("invalid username template: {e}")))?;
        let password_authentication =
            parse_password_authentication(&config_string(&req, "password_authentication")?)?;

        let url = settings.render_url(UrlEscaping::Both)?;
        let pg = pg_config(&url)?;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let mut builder = Pool::builder(manager)
            .max_size(usize::try_from(settings.max_open_connections.max(1)).unwrap_or(4))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(30)));
        let lifetime = settings.max_connection_lifetime;
        if lifetime.is_positive() {
            let lifetime = Duration::try_from(lifetime).unwrap_or(Duration::MAX);
            builder = builder.pre_recycle(Hook::sync_fn(move |_, metrics| {
                if metrics.age() > lifetime {
                    Err(HookError::message("max_connection_lifetime reached"))
                } else {
                    Ok(())
                }
            }));
        }
        let pool = builder
            .build()
            .map_err(|e| Error::new(format!("unable to build the connection pool: {e}")))?;

        if req.verify_connection {
            let client = pool
                .get()
                .await
                .map_err(|e| db_err("error verifying connection", e))?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| db_err("error verifying connection", e))?;
        }

        let conn = Arc::new(Connection {
            pool,
            username_template,
            password_authentication,
        });
        let old = self
            .conn
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(conn);
        if let Some(old) = old {
            old.pool.close();
        }
        debug!(
            max_open_connections = settings.max_open_connections,
            "postgres connection initialized"
        );
        Ok(InitializeResponse::new(req.config))
    }

    async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
        if req.statements.is_empty() {
            return Err(Error::new("empty creation statements"));
        }
        let NewCredential::Password(password) = &req.credential else {
            return Err(Error::invalid_argument(format!(
                "unsupported credential type {:?}: this plugin supports passwords only",
                req.credential.credential_type().as_str()
            )));
        };
        let conn = self.connection()?;
        let username = conn
            .username_template
            .render(&req.username_config)
            .map_err(|e| Error::new(e.to_string()))?;
        let value = conn.password_value(password);
        let sanitizer = Sanitizer::new()
            .password(password.clone())
            .password(value.clone());
        let fill = Placeholders::new()
            .name(&username)
            .password(value)
            .expiration(req.expiration);

        let mut client = conn
            .pool
            .get()
            .await
            .map_err(|e| db_err("unable to get connection", e))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("unable to start transaction", e))?;
        let mut failure = None;
        'run: for command in &req.statements.commands {
            for query in statements::split_postgres(command) {
                if let Err(e) = tx.batch_execute(&fill.apply(&query)).await {
                    failure = Some(db_err("failed to execute query", e));
                    break 'run;
                }
            }
        }
        if failure.is_none() {
            match tx.commit().await {
                Ok(()) => return Ok(NewUserResponse::new(username)),
                Err(e) => failure = Some(db_err("", e)),
            }
        } else {
            let _ = tx.rollback().await;
        }

        // The transaction is gone; the rollback statements undo what it could not.
        let undo = Placeholders::new().name(&username);
        for command in &req.rollback_statements.commands {
            for query in statements::split_postgres(command) {
                if let Err(e) = client.batch_execute(&undo.apply(&query)).await {
                    warn!(error = %sanitizer.sanitize(&e.to_string()), "rollback statement failed");
                }
            }
        }
        let err = failure.unwrap_or_else(|| Error::new("unable to create user"));
        Err(sanitizer.sanitize_error(err))
    }

    async fn update_user(&self, req: UpdateUserRequest) -> Result<()> {
        if req.username.is_empty() {
            return Err(Error::new("missing username"));
        }
        if req.password.is_none() && req.expiration.is_none() {
            return Err(Error::new("no changes requested"));
        }
        let conn = self.connection()?;
        let mut errors = Vec::new();
        if let Some(change) = &req.password {
            let sanitizer = Sanitizer::new().password(change.new_password.clone());
            if let Err(e) = self.change_password(&conn, &req.username, change).await {
                errors.push(sanitizer.sanitize(e.message()).into_owned());
            }
        }
        if let Some(change) = &req.expiration
            && let Err(e) = self.change_expiration(&conn, &req.username, change).await
        {
            errors.push(e.message().to_owned());
        }
        match multierror(errors) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn delete_user(&self, req: DeleteUserRequest) -> Result<()> {
        let conn = self.connection()?;
        if req.statements.is_empty() {
            self.default_delete(&conn, &req.username).await
        } else {
            self.custom_delete(&conn, &req.username, &req.statements.commands)
                .await
        }
    }

    async fn close(&self) -> Result<()> {
        if let Some(conn) = self.conn.write().unwrap_or_else(|e| e.into_inner()).take() {
            conn.pool.close();
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    dbplugin::Server::new(Postgres::default)
        .version(env!("CARGO_PKG_VERSION"))
        .serve()
}
