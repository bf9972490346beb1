//! The expansion must not depend on what `Result`, `Option`, `Box`, `Ok`, `Send`, `String`,
//! `Status` or `Future` mean at the call site.
#![allow(dead_code)]

use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest};

type Result<T> = core::result::Result<T, dbplugin::Error>;
struct Option;
struct Box;
struct String;
struct Send;
struct Future;
struct Default;
enum Shadow {
    Ok,
    Err,
    Some,
    None,
}
use Shadow::*;

mod status {
    pub struct Status;
    pub struct Code;
}
use status::*;

#[derive(core::default::Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
impl MyDb {
    async fn initialize(&self, _config: ConfigMap) -> Result<()> {
        core::result::Result::Ok(())
    }
    async fn new_user(&self, req: NewUserRequest) -> Result<std::string::String> {
        core::result::Result::Ok(req.username_config.role_name)
    }
    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
        core::result::Result::Ok(())
    }
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _ = (Ok, Err, Some, None, Status, Code);
    let _: fn() -> std::process::ExitCode = MyDb::serve;
}
