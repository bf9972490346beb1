//! The smallest complete plugin of the original (v4) interface.
use dbplugin::time::OffsetDateTime;
use dbplugin::v4::{Statements, UsernameConfig};
use dbplugin::{database_plugin, ConfigMap, Error, Result};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
impl MyDb {
    async fn init(&self, _config: ConfigMap, _verify_connection: bool) -> Result<()> {
        Ok(())
    }
    async fn create_user(
        &self,
        _statements: Statements,
        names: UsernameConfig,
        _expiration: OffsetDateTime,
    ) -> Result<(String, String)> {
        Ok((format!("v-{}", names.role_name), "A1a-password".into()))
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
        Err(Error::unimplemented("root rotation is not supported"))
    }
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = MyDb::serve;
    let _ = || MyDb::server().unwrap_tls(dbplugin::v4::UnwrapTlsConfig::default()).serve();
    fn is_v4<D: dbplugin::v4::Database>() {}
    is_v4::<MyDb>();
}
