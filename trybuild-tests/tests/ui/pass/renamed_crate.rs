//! The runtime under another name: `crate = "..."`.
extern crate dbplugin as renamed_runtime;

use renamed_runtime::{ConfigMap, DeleteUserRequest, NewUserRequest, Result};

#[derive(Default)]
struct MyDb;

#[renamed_runtime::database_plugin(name = "mydb", crate = "::renamed_runtime")]
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
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = MyDb::serve;
}
