//! A typed config with nested types, enums and defaults; the stored config is returned.
use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};

#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Fast,
    Safe,
}

#[derive(serde::Deserialize)]
struct Tls {
    #[serde(default)]
    insecure: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    connection_url: String,
    mode: Mode,
    tls: Option<Tls>,
    #[serde(default)]
    hosts: Vec<String>,
}

#[derive(Default)]
struct MyDb;

#[database_plugin(name = "mydb", credential_types(rsa_private_key))]
impl MyDb {
    async fn initialize(&self, config: Config, _verify_connection: bool) -> Result<ConfigMap> {
        let _ = (config.connection_url, config.tls.map(|t| t.insecure), config.hosts);
        let _ = matches!(config.mode, Mode::Fast | Mode::Safe);
        Ok(ConfigMap::new())
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
