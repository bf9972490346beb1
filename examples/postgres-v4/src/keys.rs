//! The configuration keys the plugin reads (shared with the README test).

/// Keys of `database/config/<name>` that the plugin itself reads (through `ConnectionConfig`).
#[allow(dead_code)]
pub(crate) const CONFIG_KEYS: &[&str] =
    &["connection_url", "username", "password", "disable_escaping"];

/// Keys of `database/config/<name>` that the host (Vault / OpenBao) itself handles.
#[allow(dead_code)]
pub(crate) const HOST_KEYS: &[&str] = &[
    "plugin_name",
    "plugin_version",
    "verify_connection",
    "allowed_roles",
    "root_rotation_statements",
];

/// The name of the binary (what `-command=` must say).
#[allow(dead_code)]
pub(crate) const BINARY: &str = "postgres-v4-plugin";
