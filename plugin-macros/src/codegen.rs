//! Phase 4: the generated code. Reads the model and the arguments only.
//!
//! What it writes (see the snapshots in `src/snapshots/`):
//! - `impl Database for Plugin`, each method calling the author's inherent method and
//!   converting its arguments and result through `__private` (spanned at the author's
//!   tokens, so type errors point there);
//! - an inherent `impl Plugin { fn server(); fn serve(); }`;
//! - with `main`, `fn main() -> ExitCode { Plugin::serve() }`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::attr::Args;
use crate::model::{PluginModel, Rpc};

/// What every `quote!` needs to know: the path of the runtime crate.
pub(crate) struct Ctx {
    /// The runtime as the author names it (`::dbplugin`, or the `crate = "..."` path).
    pub(crate) user_krate: syn::Path,
    /// The local alias generated code uses: one `use` of `user_krate`, so a wrong
    /// `crate = "..."` is reported once, at that `use`.
    pub(crate) krate: syn::Path,
    /// The `crate = "..."` literal, where a wrong path is reported.
    krate_span: Span,
}

impl Ctx {
    pub(crate) fn new(args: &Args) -> Self {
        Ctx {
            user_krate: args
                .krate
                .clone()
                .unwrap_or_else(|| syn::parse_quote!(::dbplugin)),
            krate: syn::parse_quote!(__dbplugin_krate),
            krate_span: args.krate_span.map_or_else(Span::call_site, at),
        }
    }

    /// Wraps generated items in `const _: () = { use <runtime> as __dbplugin_krate; ... };`.
    fn scoped(&self, items: TokenStream) -> TokenStream {
        let import = respan(
            {
                let user_krate = &self.user_krate;
                quote!(use #user_krate as __dbplugin_krate;)
            },
            self.krate_span,
        );
        quote! {
            #[doc(hidden)]
            #[allow(unused_qualifications, clippy::all)]
            const _: () = {
                #[allow(unused_imports)]
                #import
                #items
            };
        }
    }
}

/// Call-site hygiene at the author's location.
fn at(span: Span) -> Span {
    Span::call_site().located_at(span)
}

/// `tokens` with every token at `span` (including the runtime path's), so rustc's error for
/// this expression points at the author's token only, not at a range from the attribute.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = proc_macro2::TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// Lints silenced on generated items only.
fn allows() -> TokenStream {
    quote! {
        #[allow(
            unused_qualifications,
            non_snake_case,
            unreachable_pub,
            dead_code,
            clippy::all,
            clippy::pedantic,
            clippy::nursery
        )]
    }
}

/// The generated code for a valid plugin.
pub(crate) fn plugin(ctx: &Ctx, args: &Args, model: &PluginModel) -> TokenStream {
    let database = database_impl(ctx, args, model);
    let entry = entry_points(ctx, args, &model.self_ty, Some(model));
    let main = main_fn(args, &model.self_ty);
    let scoped = ctx.scoped(quote!(#database #entry));
    quote! {
        #scoped
        #main
    }
}

/// The error path: the entry points and a `Database` impl whose methods never complete,
/// so code using the plugin type keeps compiling and only the macro's errors show.
pub(crate) fn stubs(ctx: &Ctx, args: &Args, self_ty: &syn::Type) -> TokenStream {
    let krate = &ctx.krate;
    let allows = allows();
    let pending = |output: TokenStream| {
        quote! {
            -> impl ::core::future::Future<Output = #krate::Result<#output>> + ::core::marker::Send {
                ::core::future::pending()
            }
        }
    };
    let type_name = pending(quote!(::std::string::String));
    let initialize = pending(quote!(#krate::InitializeResponse));
    let new_user = pending(quote!(#krate::NewUserResponse));
    let unit = pending(quote!(()));
    let entry = entry_points(ctx, args, self_ty, None);
    let main = main_fn(args, self_ty);
    let scoped = ctx.scoped(quote! {
        #[automatically_derived]
        #allows
        impl #krate::Database for #self_ty {
            fn type_name(&self) #type_name
            fn initialize(&self, _: #krate::InitializeRequest) #initialize
            fn new_user(&self, _: #krate::NewUserRequest) #new_user
            fn update_user(&self, _: #krate::UpdateUserRequest) #unit
            fn delete_user(&self, _: #krate::DeleteUserRequest) #unit
        }
        #entry
    });
    quote! {
        #scoped
        #main
    }
}

fn main_fn(args: &Args, self_ty: &syn::Type) -> TokenStream {
    match args.main {
        Some(span) => quote_spanned! {at(span)=>
            fn main() -> ::std::process::ExitCode {
                <#self_ty>::serve()
            }
        },
        None => TokenStream::new(),
    }
}

/// `server()` and `serve()`; `model` is `None` on the error path.
fn entry_points(
    ctx: &Ctx,
    args: &Args,
    self_ty: &syn::Type,
    model: Option<&PluginModel>,
) -> TokenStream {
    let krate = &ctx.krate;
    let allows = allows();
    let version = match &args.version {
        Some(v) => quote!(#v),
        None => quote!(::core::env!("CARGO_PKG_VERSION")),
    };
    let multiplexing = args.multiplexing.as_ref().is_none_or(|b| b.value);
    let create = match model.and_then(PluginModel::constructor) {
        Some(c) => {
            let ident = &c.ident;
            let ret = at(c.output.span());
            let create = respan(
                quote!(#krate::__private::IntoInstance::<Self>::into_instance(Self::#ident())),
                ret,
            );
            quote!(|| #create)
        }
        None if model.is_some() => {
            let span = at(self_ty.span());
            let default = respan(
                quote!(<Self as #krate::__private::DefaultInstance>::default_instance),
                span,
            );
            quote!(|| #default())
        }
        None => quote!(|| ::core::unreachable!()),
    };
    quote! {
        #allows
        impl #self_ty {
            /// The plugin's server, configured by `#[database_plugin]`: one instance per
            /// connection, the version and the multiplexing setting of the attribute.
            /// Call `.serve()` on it, or use [`Self::serve`].
            #[must_use]
            pub fn server() -> #krate::Server<impl #krate::DatabaseFactory<Database = Self>> {
                #krate::Server::new(#krate::__private::Factory::<Self>(#create))
                    .version(#version)
                    .multiplexing(#multiplexing)
            }

            /// Runs this database plugin as the host (Vault or OpenBao) launches it and
            /// returns the process exit status; call it from `main`.
            #[must_use]
            pub fn serve() -> ::std::process::ExitCode {
                Self::server().serve()
            }
        }
    }
}

fn database_impl(ctx: &Ctx, args: &Args, model: &PluginModel) -> TokenStream {
    let krate = &ctx.krate;
    let self_ty = &model.self_ty;
    let allows = allows();
    let send = quote!(::core::marker::Send);
    let future = quote!(::core::future::Future);
    let ok = quote!(::core::result::Result::Ok);
    let err = quote!(::core::result::Result::Err);
    let private = quote!(#krate::__private);

    // Calls the author's method: the future is checked for `Send` at the method's name,
    // the result converted at its return type.
    let call = |rpc: Rpc, call_args: TokenStream| -> (TokenStream, Span) {
        let m = model.rpc(rpc).expect("present");
        let ident = &m.ident;
        let name_span = at(ident.span());
        let ret_span = at(m.output.span());
        let into_rpc = respan(quote!(#private::RpcResult::into_rpc), ret_span);
        let assert_send = respan(quote!(#private::assert_send), name_span);
        let method = respan(quote!(Self::#ident), name_span);
        // Every token of the call (not its arguments) at the method's name: rustc reports a
        // non-`Send` future once, there.
        let call = quote_spanned!(name_span=> #assert_send(#method(self, #call_args)).await);
        let out = respan(quote!(__dbplugin_awaited), ret_span);
        // A block: the await at the name, the conversion at the return type, each
        // reported once.
        (
            quote_spanned! {ret_span=> {
                let __dbplugin_awaited = #call;
                #into_rpc(#out)
            }},
            ret_span,
        )
    };
    let request_arg = |rpc: Rpc| -> TokenStream {
        let m = model.rpc(rpc).expect("present");
        let span = at(m.params[0].span());
        quote_spanned!(span=> __dbplugin_req)
    };

    let type_name = match (&args.name, model.rpc(Rpc::TypeName)) {
        (Some(name), _) => quote! {
            async move {
                #ok(<::std::string::String as ::core::convert::From<&'static str>>::from(#name))
            }
        },
        (None, Some(_)) => {
            let (call, ret) = call(Rpc::TypeName, quote!());
            let into = respan(
                quote!(#private::TypeNameOutput::into_name(__dbplugin_out)),
                ret,
            );
            quote! {
                async move {
                    match #call {
                        #ok(__dbplugin_out) => #ok(#into),
                        #err(__dbplugin_err) => #err(__dbplugin_err),
                    }
                }
            }
        }
        (None, None) => unreachable!("validated: a type name is given"),
    };

    let initialize = {
        let m = model.rpc(Rpc::Initialize).expect("validated");
        let config_ty = &m.params[0];
        let decode_span = at(config_ty.span());
        let decode = respan(
            quote!(<#config_ty as #private::InitializeConfig>::decode),
            decode_span,
        );
        let config_arg = respan(quote!(__dbplugin_config), decode_span);
        let call_args = if m.params.len() == 2 {
            quote!(#config_arg, __dbplugin_req.verify_connection)
        } else {
            quote!(#config_arg)
        };
        let (call, ret) = call(Rpc::Initialize, call_args);

        let types: Vec<TokenStream> = match &args.credential_types {
            Some(types) => types
                .iter()
                .map(|t| {
                    let variant = syn::Ident::new(t.variant, at(t.span));
                    quote!(#krate::CredentialType::#variant)
                })
                .collect(),
            None => vec![quote!(#krate::CredentialType::Password)],
        };
        let store = respan(
            quote!(#private::StoredConfig::into_stored(__dbplugin_out, __dbplugin_received, &[#(#types),*])),
            ret,
        );
        quote! {
            async move {
                let __dbplugin_received = ::core::clone::Clone::clone(&__dbplugin_req.config);
                let __dbplugin_config = match #decode(__dbplugin_req.config) {
                    #ok(__dbplugin_config) => __dbplugin_config,
                    #err(__dbplugin_err) => return #err(__dbplugin_err),
                };
                match #call {
                    #ok(__dbplugin_out) => #store,
                    #err(__dbplugin_err) => #err(__dbplugin_err),
                }
            }
        }
    };

    let new_user = {
        let (call, ret) = call(Rpc::NewUser, request_arg(Rpc::NewUser));
        let into = respan(
            quote!(#private::NewUserOutput::into_response(__dbplugin_out)),
            ret,
        );
        quote! {
            async move {
                match #call {
                    #ok(__dbplugin_out) => #ok(#into),
                    #err(__dbplugin_err) => #err(__dbplugin_err),
                }
            }
        }
    };

    let unit_rpc = |rpc: Rpc, arg: TokenStream| -> TokenStream {
        let (call, ret) = call(rpc, arg);
        let into = respan(quote!(#private::UnitOutput::into_unit(__dbplugin_out)), ret);
        quote! {
            async move {
                match #call {
                    #ok(__dbplugin_out) => #ok(#into),
                    #err(__dbplugin_err) => #err(__dbplugin_err),
                }
            }
        }
    };

    let update_user = if model.rpc(Rpc::UpdateUser).is_some() {
        unit_rpc(Rpc::UpdateUser, request_arg(Rpc::UpdateUser))
    } else {
        quote! {
            let _ = __dbplugin_req;
            async move { #private::update_user_unimplemented() }
        }
    };
    let delete_user = unit_rpc(Rpc::DeleteUser, request_arg(Rpc::DeleteUser));
    let close = if model.rpc(Rpc::Close).is_some() {
        let body = unit_rpc(Rpc::Close, quote!());
        quote! {
            fn close(&self) -> impl #future<Output = #krate::Result<()>> + #send {
                #body
            }
        }
    } else {
        TokenStream::new()
    };

    quote! {
        #[automatically_derived]
        #allows
        impl #krate::Database for #self_ty {
            fn type_name(&self) -> impl #future<Output = #krate::Result<::std::string::String>> + #send {
                #type_name
            }

            fn initialize(
                &self,
                __dbplugin_req: #krate::InitializeRequest,
            ) -> impl #future<Output = #krate::Result<#krate::InitializeResponse>> + #send {
                #initialize
            }

            fn new_user(
                &self,
                __dbplugin_req: #krate::NewUserRequest,
            ) -> impl #future<Output = #krate::Result<#krate::NewUserResponse>> + #send {
                #new_user
            }

            fn update_user(
                &self,
                __dbplugin_req: #krate::UpdateUserRequest,
            ) -> impl #future<Output = #krate::Result<()>> + #send {
                #update_user
            }

            fn delete_user(
                &self,
                __dbplugin_req: #krate::DeleteUserRequest,
            ) -> impl #future<Output = #krate::Result<()>> + #send {
                #delete_user
            }

            #close
        }
    }
}
