//! `initialize` returning the map to store, `new_user` returning `NewUserResponse`.
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, NewUserResponse, Result};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
impl MyDb {
    async fn initialize(&self, config: ConfigMap) -> Result<ConfigMap> {
        Ok(config)
    }
    async fn new_user(&self, _req: NewUserRequest) -> Result<NewUserResponse> {
        Ok(NewUserResponse::new("u"))
    }
    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
        Ok(())
    }
}

fn main() {
    // Compiled, not run: serving needs a host. (`main` is exercised by examples/inmem.)
    let _: fn() -> std::process::ExitCode = MyDb::serve;
}
