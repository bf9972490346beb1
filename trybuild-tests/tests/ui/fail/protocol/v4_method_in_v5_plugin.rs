#![allow(unused_imports)]
use dbplugin::time::OffsetDateTime;
use dbplugin::v4::{Statements, StaticUserConfig, UsernameConfig};
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result, Secret};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
impl MyDb {
    async fn initialize(&self, _config: ConfigMap) -> Result<()> {
        Ok(())
    }
    async fn new_user(&self, req: NewUserRequest) -> Result<String> {
        Ok(req.username_config.role_name)
    }
    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
        Ok(())
    }
    async fn revoke_user(&self, _statements: Statements, _username: String) -> Result<()> {
        Ok(())
    }
}

fn main() {
    let _ = MyDb::serve;
}
