//! The `#[database_plugin]` attribute; use it through the `dbplugin` crate, which
//! re-exports it and documents it.

use proc_macro::TokenStream;

/// Placeholder until the macro lands: re-emits the item unchanged.
#[proc_macro_attribute]
pub fn database_plugin(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
