//! The configuration keys the plugin reads (shared with the README test).

/// Keys of `database/config/<name>` that the plugin itself reads.
pub(crate) const CONFIG_KEYS: &[&str] = &[
    "connection_url",
    "username",
    "password",
    "max_open_connections",
    "max_idle_connections",
    "max_connection_lifetime",
    "disable_escaping",
    "username_template",
    "password_authentication",
];

/// Keys of `database/config/<name>` that the host (Vault / OpenBao) itself handles.
#[allow(dead_code)]
pub(crate) const HOST_KEYS: &[&str] = &[
    "plugin_name",
    "plugin_version",
    "verify_connection",
    "allowed_roles",
    "root_rotation_statements",
    "password_policy",
];

/// The name of the binary (what `-command=` must say).
#[allow(dead_code)]
pub(crate) const BINARY: &str = "postgres-plugin";
