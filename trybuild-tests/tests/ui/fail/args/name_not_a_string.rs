#![allow(unused_imports)]
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = mydb)]
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
}

fn main() {
    let _ = MyDb::serve;
}
