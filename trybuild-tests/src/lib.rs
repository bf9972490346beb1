//! Compile-pass and compile-fail cases for `#[database_plugin]` (in `tests/ui/`).
//!
//! The library re-exports the runtime (so a case can name it as `trybuild_tests::dbplugin`)
//! and holds one plugin checked by `cargo clippy -p trybuild-tests -- -D clippy::pedantic`.
pub use dbplugin;

/// A plugin under `clippy::pedantic` and `missing_docs`: generated code must not add
/// warnings to a strict crate.
pub mod pedantic {
    #![deny(clippy::pedantic, missing_docs, unused_qualifications)]

    use std::sync::Mutex;

    use dbplugin::{DeleteUserRequest, NewUserRequest, Result, UpdateUserRequest};

    /// The typed config.
    #[derive(Debug, serde::Deserialize)]
    pub struct Config {
        /// Where the database is.
        pub connection_url: String,
    }

    /// A strict plugin.
    #[derive(Debug, Default)]
    pub struct Strict {
        url: Mutex<Option<String>>,
    }

    #[dbplugin::database_plugin(name = "strict", credential_types(password, client_certificate))]
    impl Strict {
        async fn initialize(&self, config: Config) -> Result<()> {
            *self
                .url
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(config.connection_url);
            Ok(())
        }

        async fn new_user(&self, req: NewUserRequest) -> Result<String> {
            Ok(req.username_config.role_name)
        }

        async fn update_user(&self, _req: UpdateUserRequest) -> Result<()> {
            Ok(())
        }

        async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
            Ok(())
        }

        async fn close(&self) -> Result<()> {
            Ok(())
        }
    }
}
