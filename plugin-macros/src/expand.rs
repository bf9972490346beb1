//! The macro's driver: parse → model → validate → codegen, with the error path.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ImplItem, Item, ItemImpl};

use crate::attr::{self, is_constructor_attr};
use crate::codegen::{self, Ctx};
use crate::model;

/// `#[database_plugin(args)] item`.
pub(crate) fn database_plugin(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, mut errors) = attr::parse_args(args);
    let ctx = Ctx::new(&args);

    let mut item_impl = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Impl(item_impl)) => item_impl,
        Ok(other) => {
            let what = describe(&other);
            errors.push(syn::Error::new_spanned(
                item_span_tokens(&other),
                format!(
                    "#[database_plugin] must be applied to an inherent `impl` block, not {what}; write `#[database_plugin(name = \"mydb\")] impl MyPlugin {{ async fn new_user(...) ... }}`"
                ),
            ));
            let errors = errors.into_compile_errors();
            return quote!(#item #errors);
        }
        Err(e) => {
            // Not an item rustc would accept either: leave it to rustc.
            let e = e.to_compile_error();
            return quote!(#item #e);
        }
    };

    // rustc reports `unsafe` on an inherent impl before expansion; keeping it would only
    // report it again.
    if item_impl.trait_.is_none() {
        item_impl.unsafety = None;
    }

    if let Err(e) = model::check_impl_shape(&item_impl) {
        errors.push(e);
        let errors = errors.into_compile_errors();
        // A generic or trait impl cannot take the stubs; re-emit it unchanged.
        let stubs = if model::stubbable(&item_impl) {
            codegen::stubs(
                &ctx,
                &args,
                &item_impl.self_ty,
                model::decide_protocol(&item_impl).0,
            )
        } else {
            TokenStream::new()
        };
        let item = strip_helpers(item_impl, &[]);
        return quote!(#item #stubs #errors);
    }

    let (model, method_errors) = model::analyse(&item_impl);
    errors.extend(method_errors);
    let duplicates = crate::validate::validate(&args, &model, &mut errors);

    if !errors.is_empty() {
        let stubs = codegen::stubs(&ctx, &args, &item_impl.self_ty, model.protocol);
        let item = strip_helpers(item_impl, &duplicates);
        let errors = errors.into_compile_errors();
        return quote!(#item #stubs #errors);
    }

    let generated = codegen::plugin(&ctx, &args, &model);
    let mut item = strip_helpers(item_impl, &[]);
    allow_unused_async(&mut item);
    quote! {
        #item
        #generated
    }
}

/// Removes `#[constructor]` from methods, and the later copies of duplicated methods
/// (already reported, so rustc does not report them again).
fn strip_helpers(mut item: ItemImpl, duplicates: &[syn::Ident]) -> ItemImpl {
    let mut kept: Vec<String> = Vec::new();
    item.items.retain(|i| match i {
        ImplItem::Fn(f) if duplicates.contains(&f.sig.ident) => {
            let name = f.sig.ident.to_string();
            if kept.contains(&name) {
                false
            } else {
                kept.push(name);
                true
            }
        }
        _ => true,
    });
    for impl_item in &mut item.items {
        if let ImplItem::Fn(f) = impl_item {
            f.attrs.retain(|a| !is_constructor_attr(a));
        }
    }
    item
}

/// The one lint attribute put on the author's items: RPC methods are `async` because the
/// protocol is, even when a body has nothing to await, so `clippy::unused_async` (pedantic)
/// would ask for a change the macro refuses. (Style practice 10 keeps lint attributes off
/// user items; this is the exception, as the lint is about the macro's contract.)
fn allow_unused_async(item: &mut ItemImpl) {
    for impl_item in &mut item.items {
        if let ImplItem::Fn(f) = impl_item
            && f.sig.asyncness.is_some()
        {
            f.attrs
                .push(syn::parse_quote!(#[allow(clippy::unused_async)]));
        }
    }
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::Struct(_) => "a struct",
        Item::Enum(_) => "an enum",
        Item::Fn(_) => "a function",
        Item::Trait(_) => "a trait",
        Item::Mod(_) => "a module",
        Item::Union(_) => "a union",
        _ => "this item",
    }
}

/// The tokens to point at: the item's keyword and name, not its whole body.
fn item_span_tokens(item: &Item) -> TokenStream {
    match item {
        Item::Struct(s) => {
            let (k, i) = (&s.struct_token, &s.ident);
            quote!(#k #i)
        }
        Item::Enum(e) => {
            let (k, i) = (&e.enum_token, &e.ident);
            quote!(#k #i)
        }
        Item::Fn(f) => {
            let (k, i) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#k #i)
        }
        Item::Trait(t) => {
            let (k, i) = (&t.trait_token, &t.ident);
            quote!(#k #i)
        }
        Item::Mod(m) => {
            let (k, i) = (&m.mod_token, &m.ident);
            quote!(#k #i)
        }
        other => quote!(#other),
    }
}
