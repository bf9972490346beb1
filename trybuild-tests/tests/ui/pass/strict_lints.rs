//! Generated code adds no warnings to a strict crate.
#![deny(missing_docs, unused_qualifications, dead_code, unreachable_pub, unused_results)]
#![deny(rust_2018_idioms, missing_debug_implementations)]

use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};

/// A plugin.
#[derive(Debug, Default)]
pub struct MyDb;

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
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = MyDb::serve;
}
