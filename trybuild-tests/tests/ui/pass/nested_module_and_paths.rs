//! The self type named by a path, and request types by full paths.
mod db {
    #[derive(Default)]
    pub struct MyDb;
}

#[dbplugin::database_plugin(name = "mydb")]
impl db::MyDb {
    async fn initialize(&self, _config: dbplugin::ConfigMap) -> dbplugin::Result<()> {
        Ok(())
    }
    async fn new_user(&self, req: dbplugin::NewUserRequest) -> dbplugin::Result<String> {
        Ok(req.username_config.role_name)
    }
    async fn delete_user(&self, _req: dbplugin::DeleteUserRequest) -> dbplugin::Result<()> {
        Ok(())
    }
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = db::MyDb::serve;
}
