//! A constructor returning `Result<Self, E>` with a foreign error type.
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};

struct MyDb {
    home: String,
}

#[database_plugin(name = "mydb")]
impl MyDb {
    #[constructor]
    fn from_env() -> std::result::Result<Self, std::env::VarError> {
        Ok(MyDb { home: std::env::var("HOME")? })
    }
    async fn initialize(&self, _config: ConfigMap) -> Result<()> {
        Ok(())
    }
    async fn new_user(&self, _req: NewUserRequest) -> Result<String> {
        Ok(self.home.clone())
    }
    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
        Ok(())
    }
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = || MyDb::server().multiplexing(true).serve();
}
