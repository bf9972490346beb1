//! The runtime re-exported by another crate: `crate = "trybuild_tests::dbplugin"`.
use trybuild_tests::dbplugin::{ConfigMap, DeleteUserRequest, NewUserRequest, Result};

#[derive(Default)]
struct MyDb;

mod inner {
    pub use trybuild_tests::dbplugin as rt;
}

#[inner::rt::database_plugin(name = "mydb", crate = "crate::inner::rt")]
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
