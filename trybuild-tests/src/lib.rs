//! Compile-pass and compile-fail cases for `#[database_plugin]`.
pub use dbplugin;
