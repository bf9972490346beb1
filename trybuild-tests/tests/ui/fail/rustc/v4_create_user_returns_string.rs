#![allow(unused_imports)]
use dbplugin::time::OffsetDateTime;
use dbplugin::v4::{Statements, StaticUserConfig, UsernameConfig};
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result, Secret};

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
    ) -> Result<String> {
        Ok(format!("v-{}", names.role_name))
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
}

fn main() {
    let _ = MyDb::serve;
}
