//! Wire types of the protocols a Vault or OpenBao database plugin speaks.
//!
//! The `.proto` files under `proto/` were written for this project from the facts in the
//! protocol notes; the Rust code under `src/generated/` is produced from them by
//! `tests/generated.rs` (protox + tonic-prost-build, no system `protoc`) and checked in.
//! That test fails when regenerating would change a file; run it with
//! `DBPLUGIN_REGENERATE=1` to rewrite them.
//!
//! Plugin authors never need this crate directly: the runtime crate converts these types
//! into its own request and response types.

macro_rules! generated {
    ($(#[$meta:meta])* $name:ident, $file:literal) => {
        $(#[$meta])*
        #[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all, clippy::pedantic)]
        pub mod $name {
            include!(concat!("generated/", $file));
        }
    };
}

/// `dbplugin.v5`: the current database protocol (app protocol versions 5 and 6).
pub mod dbplugin {
    generated!(
        /// `dbplugin.v5`: the current database protocol (app protocol versions 5 and 6).
        v5,
        "dbplugin.v5.rs"
    );
    generated!(
        /// `dbplugin`: the original database protocol (app protocol versions 3 and 4).
        v4,
        "dbplugin.rs"
    );
}

generated!(
    /// `plugin`: go-plugin's broker, controller and stdio services.
    plugin,
    "plugin.rs"
);

/// `pluginutil`: the host's multiplexing probe.
pub mod pluginutil {
    generated!(
        /// `pluginutil.multiplexing`: whether one process serves many connections.
        multiplexing,
        "pluginutil.multiplexing.rs"
    );
}

generated!(
    /// `logical`: the plugin version probe.
    logical,
    "logical.rs"
);
