//! `vault-dbplugin`: run, check and register HashiCorp Vault / OpenBao database plugins.
//!
//! - `demo`: a full credential lifecycle against the in-memory example (or any plugin),
//!   launched exactly as Vault launches it, with a readable transcript.
//! - `check PATH`: a conformance report for any database plugin binary, Rust or Go.
//! - `register PATH --name N`: the binary's SHA-256 and the exact `vault`/`bao` commands.
//! - `oci PATH --name N`: an OCI image layout of the binary (no container engine needed),
//!   the commands to push it and OpenBao's `plugin` stanza.
//!
//! See the crate's README for examples.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod demo;
mod launch;
mod locate;
mod oci;
mod register;
mod rpc;
mod ui;

/// Run, check and register HashiCorp Vault / OpenBao database plugins.
#[derive(Debug, Parser)]
#[command(name = "vault-dbplugin", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Launch a plugin as Vault does and run a full credential lifecycle
    /// (Type, Initialize, NewUser, UpdateUser, DeleteUser, Version, Close, Shutdown).
    Demo {
        /// The plugin binary (default: the in-memory example, found next to this
        /// executable or built with cargo).
        #[arg(long, value_name = "PATH")]
        plugin: Option<PathBuf>,
        /// The connection config as a JSON object (default for the in-memory example:
        /// {"connection_url":"inmem://demo"}, else {}).
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
        /// A creation statement for NewUser (repeatable; default: a PostgreSQL CREATE ROLE).
        #[arg(long = "statement", value_name = "SQL")]
        statements: Vec<String>,
        /// The role name used for the generated username.
        #[arg(long, default_value = "demo")]
        role: String,
        /// Arguments passed to the plugin (what `-args` registers).
        #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
        args: Vec<String>,
        /// Print the transcript as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that a plugin binary (Rust or Go) follows the runtime protocol.
    Check {
        /// The plugin binary.
        path: PathBuf,
        /// The config for checks that initialize the plugin (verify_connection=false).
        #[arg(long, value_name = "JSON", default_value = "{}")]
        config: String,
        /// Arguments passed to the plugin.
        #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
        args: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the SHA-256 and the exact `vault`/`bao` commands to register a plugin.
    Register {
        /// The plugin binary.
        path: PathBuf,
        /// The name to register the plugin under.
        #[arg(long)]
        name: String,
        /// The version to register (default: what the plugin's version RPC reports).
        #[arg(long, value_name = "vX.Y.Z")]
        version: Option<String>,
        /// Arguments the host passes to the plugin (`-args`): repeat the option, or
        /// separate them with commas.
        #[arg(
            long,
            value_name = "ARG",
            value_delimiter = ',',
            allow_hyphen_values = true
        )]
        args: Vec<String>,
        /// The config used to learn the plugin's config keys (Initialize with
        /// verify_connection=false).
        #[arg(long, value_name = "JSON", default_value = "{}")]
        config: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Package a plugin binary as an OCI image layout (reproducible, no container engine)
    /// and print the commands to push it and OpenBao's `plugin` stanza.
    Oci {
        /// The plugin binary.
        path: PathBuf,
        /// The plugin's name in OpenBao's `plugin "database" "<name>"` block.
        #[arg(long)]
        name: String,
        /// The version, also the image tag (default: what the plugin's version RPC reports).
        #[arg(long, value_name = "vX.Y.Z")]
        version: Option<String>,
        /// The image repository to push to (default: registry.example.com/NAME).
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        /// The OCI image layout directory to write (default: ./NAME-oci).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also write the layout as one tar (for `skopeo copy oci-archive:`).
        #[arg(long, value_name = "FILE")]
        tar: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_config(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("--config must be a JSON object".into()),
        Err(e) => Err(format!("--config is not valid JSON: {e}")),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    anstream::eprintln!("{} {message}", ui::paint(ui::FAIL, "error:"));
    ExitCode::from(2)
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    match cli.command {
        Command::Demo {
            plugin,
            config,
            statements,
            role,
            args,
            json,
        } => {
            let default_plugin = plugin.is_none();
            let plugin = match plugin {
                Some(p) => p,
                None => match locate::inmem_plugin(json) {
                    Ok(p) => p,
                    Err(e) => return fail(e),
                },
            };
            let default_config = if default_plugin {
                r#"{"connection_url":"inmem://demo"}"#
            } else {
                "{}"
            };
            let config = match parse_config(config.as_deref().unwrap_or(default_config)) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let statements = if statements.is_empty() {
                vec![demo::DEFAULT_STATEMENT.to_owned()]
            } else {
                statements
            };
            exit(runtime.block_on(demo::run(demo::Options {
                plugin,
                args,
                config,
                statements,
                role,
                json,
            })))
        }
        Command::Check {
            path,
            config,
            args,
            json,
        } => {
            let config = match parse_config(&config) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            exit(runtime.block_on(check::run(check::Options {
                plugin: path,
                args,
                config,
                json,
            })))
        }
        Command::Register {
            path,
            name,
            version,
            args,
            config,
            json,
        } => {
            let config = match parse_config(&config) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            exit(runtime.block_on(register::run(register::Options {
                plugin: path,
                name,
                version,
                args,
                config,
                json,
            })))
        }
        Command::Oci {
            path,
            name,
            version,
            image,
            out,
            tar,
            json,
        } => exit(runtime.block_on(oci::run(oci::Options {
            plugin: path,
            name,
            version,
            image,
            out,
            tar,
            json,
        }))),
    }
}
