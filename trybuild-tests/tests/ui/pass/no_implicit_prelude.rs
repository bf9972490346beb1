//! A plugin in a `#![no_implicit_prelude]` module.

mod plugin {
    #![no_implicit_prelude]

    use ::dbplugin::{ConfigMap, DeleteUserRequest, NewUserRequest, Result};

    #[derive(::core::default::Default)]
    pub struct MyDb;

    #[::dbplugin::database_plugin(name = "mydb", credential_types(password))]
    impl MyDb {
        async fn initialize(&self, _config: ConfigMap) -> Result<()> {
            ::core::result::Result::Ok(())
        }
        async fn new_user(&self, req: NewUserRequest) -> Result<::std::string::String> {
            ::core::result::Result::Ok(req.username_config.role_name)
        }
        async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
            ::core::result::Result::Ok(())
        }
    }
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = plugin::MyDb::serve;
}
