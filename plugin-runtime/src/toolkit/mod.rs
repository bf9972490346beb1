//! What a Go plugin author gets from the Vault SDK's helpers, for Rust plugins.
