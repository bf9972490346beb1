//! Methods may return `Result<T, E>` for any `E: Into<dbplugin::Error>`.
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest};

#[derive(Debug)]
struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyError {}

#[derive(Default)]
struct MyDb;

#[database_plugin]
impl MyDb {
    async fn initialize(&self, _config: ConfigMap) -> Result<(), MyError> {
        Ok(())
    }
    async fn new_user(&self, _req: NewUserRequest) -> Result<String, std::io::Error> {
        Err(std::io::Error::other("no"))
    }
    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<(), dbplugin::Error> {
        Err(MyError.into())
    }
    async fn type_name(&self) -> Result<&'static str, MyError> {
        Ok("mydb")
    }
}

fn main() {
    // Compiled, not run: serving needs a host.
    let _: fn() -> std::process::ExitCode = MyDb::serve;
}
