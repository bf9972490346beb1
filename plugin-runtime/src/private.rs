//! Not public API; exempt from semver. What `#[database_plugin]`'s expansion reaches.
#![allow(missing_docs)]
