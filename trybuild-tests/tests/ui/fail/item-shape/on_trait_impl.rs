#![allow(unused_imports)]
use dbplugin::{database_plugin, Database, DeleteUserRequest, InitializeRequest, InitializeResponse, NewUserRequest, NewUserResponse, Result, UpdateUserRequest};

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb")]
impl Database for MyDb {
    async fn type_name(&self) -> Result<String> {
        Ok("mydb".into())
    }
    async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse> {
        Ok(InitializeResponse::new(req.config))
    }
    async fn new_user(&self, _req: NewUserRequest) -> Result<NewUserResponse> {
        Ok(NewUserResponse::new("u"))
    }
    async fn update_user(&self, _req: UpdateUserRequest) -> Result<()> {
        Ok(())
    }
    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
        Ok(())
    }
}

fn main() {}
