#![allow(unused_imports)]
use dbplugin::time::OffsetDateTime;
use dbplugin::v4::{Statements, StaticUserConfig, UsernameConfig};
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result, Secret};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
impl MyDb {
    async fn init(&self, config: ConfigMap) -> Result<ConfigMap> {
        Ok(config)
    }
    async fn create_user(
        &self,
        _statements: Statements,
        names: UsernameConfig,
        _expiration: OffsetDateTime,
    ) -> Result<(String, String)> {
        Ok((format!("v-{}", names.role_name), "A1a-password".into()))
    }
    async fn revoke_user(&self, _statements: Statements, _username: String) -> Result<()> {
        Ok(())
    }
}

fn main() {
    let _ = MyDb::serve;
}
