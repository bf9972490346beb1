//! Every optional method, a constructor, and every argument.
use std::sync::Mutex;

use dbplugin::{
    database_plugin, DeleteUserRequest, InitializeResponse, NewUserRequest, NewUserResponse,
    Result, UpdateUserRequest,
};

#[derive(serde::Deserialize, serde::Serialize)]
struct Config {
    connection_url: String,
    #[serde(default)]
    max_open_connections: Option<u32>,
}

struct Pool {
    url: Mutex<Option<String>>,
}

#[database_plugin(
    version = "v2.0.0-rc.1",
    credential_types(password, rsa_private_key, client_certificate),
    multiplexing = false,
    crate = "::dbplugin",
)]
impl Pool {
    /// The constructor.
    #[constructor]
    fn new() -> Self {
        Pool { url: Mutex::new(None) }
    }

    async fn type_name(&self) -> Result<String> {
        Ok("pool".to_owned())
    }

    async fn initialize(&self, config: Config, verify_connection: bool) -> Result<Config> {
        let _ = verify_connection;
        *self.url.lock().unwrap() = Some(config.connection_url.clone());
        Ok(config)
    }

    #[allow(clippy::unused_async)]
    async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
        Ok(NewUserResponse::new(req.username_config.role_name))
    }

    async fn update_user(&self, _req: UpdateUserRequest) -> Result<()> {
        Ok(())
    }

    async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.url.lock().unwrap().take();
        Ok(())
    }

    const MAX: usize = 3;
}

#[allow(dead_code)]
fn explicit_response() -> InitializeResponse {
    InitializeResponse::default()
}

#[allow(dead_code)]
fn uses_const() -> usize {
    Pool::MAX
}

fn main() {
    // Compiled, not run: serving needs a host. (`main` is exercised by examples/inmem.)
    let _: fn() -> std::process::ExitCode = Pool::serve;
}
