//! The smallest complete plugin.
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
impl MyDb {
    async fn initialize(&self, _config: ConfigMap, _verify_connection: bool) -> Result<()> {
        Ok(())
    }
    async fn new_user(&self, req: NewUserRequest) -> Result<String> {
        Ok(format!("v-{}", req.username_config.role_name))
    }
    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
        Ok(())
    }
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = MyDb::serve;
}
