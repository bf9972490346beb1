//! A v4 plugin with a typed config, a fallible constructor, every optional method and
//! every argument a v4 plugin takes; run through the generated `dbplugin::v4::Database`.
use std::future::Future;
use std::sync::Mutex;

use dbplugin::time::OffsetDateTime;
use dbplugin::v4::{Database, Statements, StaticUserConfig, UsernameConfig};
use dbplugin::{database_plugin, ConfigMap, Result, Secret};

#[derive(serde::Deserialize, serde::Serialize)]
struct Config {
    connection_url: String,
    #[serde(default)]
    max_open_connections: Option<u32>,
}

struct Pool {
    url: Mutex<Option<String>>,
}

#[database_plugin(version = "1.2.3", crate = "::dbplugin")]
impl Pool {
    #[constructor]
    fn new() -> Result<Self> {
        Ok(Pool { url: Mutex::new(None) })
    }
    async fn type_name(&self) -> Result<&'static str> {
        Ok("pool")
    }
    async fn init(&self, config: Config) -> Result<Config> {
        *self.url.lock().unwrap() = Some(config.connection_url.clone());
        Ok(config)
    }
    async fn create_user(
        &self,
        _statements: Statements,
        names: UsernameConfig,
        _expiration: OffsetDateTime,
    ) -> Result<(String, Secret)> {
        let password = Secret::new(self.generate_credentials().await?);
        Ok((format!("v-{}", names.role_name), password))
    }
    async fn renew_user(
        &self,
        _statements: Statements,
        _username: String,
        _expiration: OffsetDateTime,
    ) -> Result<()> {
        Ok(())
    }
    async fn revoke_user(&self, _statements: Statements, _username: String) -> Result<()> {
        Ok(())
    }
    async fn rotate_root_credentials(&self, _statements: Vec<String>) -> Result<ConfigMap> {
        Ok(ConfigMap::new())
    }
    async fn set_credentials(
        &self,
        _statements: Statements,
        user: StaticUserConfig,
    ) -> Result<(String, Secret)> {
        Ok((user.username, user.password))
    }
    async fn generate_credentials(&self) -> Result<String> {
        Ok("A1a-fixed-password".into())
    }
    async fn close(&self) -> Result<()> {
        self.url.lock().unwrap().take();
        Ok(())
    }
}

async fn exercise() {
    let pool = Pool::new().unwrap();
    assert_eq!(Database::type_name(&pool).await.unwrap(), "pool");
    let mut config = ConfigMap::new();
    config.insert("connection_url".into(), "pool://a".into());
    config.insert("password".into(), "hunter2".into());
    let saved = Database::init(&pool, config, true).await.unwrap();
    assert!(!saved.contains_key("password")); // the typed config, as returned
    let password = Database::generate_credentials(&pool).await.unwrap();
    assert_eq!(password.expose(), "A1a-fixed-password");
    let err = Database::init(&pool, ConfigMap::new(), false).await.unwrap_err();
    assert_eq!(err.to_string(), "`connection_url`: required key is missing");
    Database::close(&pool).await.unwrap();
}

fn main() {
    // Nothing here waits: poll once.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let fut = std::pin::pin!(exercise());
    assert!(fut.poll(&mut cx).is_ready());
    let _: fn() -> std::process::ExitCode = Pool::serve;
}
