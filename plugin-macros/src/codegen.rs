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
use crate::model::{PluginModel, Protocol, Rpc};

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
    let database = match model.protocol {
        Protocol::V5 => database_impl(ctx, args, model),
        Protocol::V4 => v4_database_impl(ctx, args, model),
    };
    let entry = entry_points(ctx, args, &model.self_ty, Some(model), model.protocol);
    let main = main_fn(args, &model.self_ty);
    let scoped = ctx.scoped(quote!(#database #entry));
    quote! {
        #scoped
        #main
    }
}

/// The error path: the entry points and a `Database` impl (of `protocol`) whose methods
/// never complete, so code using the plugin type keeps compiling and only the macro's
/// errors show.
pub(crate) fn stubs(
    ctx: &Ctx,
    args: &Args,
    self_ty: &syn::Type,
    protocol: Protocol,
) -> TokenStream {
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
    let entry = entry_points(ctx, args, self_ty, None, protocol);
    let main = main_fn(args, self_ty);
    let database = match protocol {
        Protocol::V5 => quote! {
            impl #krate::Database for #self_ty {
                fn type_name(&self) #type_name
                fn initialize(&self, _: #krate::InitializeRequest) #initialize
                fn new_user(&self, _: #krate::NewUserRequest) #new_user
                fn update_user(&self, _: #krate::UpdateUserRequest) #unit
                fn delete_user(&self, _: #krate::DeleteUserRequest) #unit
            }
        },
        Protocol::V4 => {
            let v4 = quote!(#krate::__private::v4);
            let config = pending(quote!(#krate::ConfigMap));
            let credentials = pending(quote!((::std::string::String, #krate::Secret)));
            quote! {
                impl #v4::Database for #self_ty {
                    fn type_name(&self) #type_name
                    fn init(&self, _: #krate::ConfigMap, _: bool) #config
                    fn create_user(
                        &self,
                        _: #v4::Statements,
                        _: #v4::UsernameConfig,
                        _: #v4::OffsetDateTime,
                    ) #credentials
                    fn renew_user(
                        &self,
                        _: #v4::Statements,
                        _: ::std::string::String,
                        _: #v4::OffsetDateTime,
                    ) #unit
                    fn revoke_user(&self, _: #v4::Statements, _: ::std::string::String) #unit
                    fn rotate_root_credentials(
                        &self,
                        _: ::std::vec::Vec<::std::string::String>,
                    ) #config
                }
            }
        }
    };
    let scoped = ctx.scoped(quote! {
        #[automatically_derived]
        #allows
        #database
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
    protocol: Protocol,
) -> TokenStream {
    let krate = &ctx.krate;
    let allows = allows();
    let version = match &args.version {
        Some(v) => quote!(#v),
        None => quote!(::core::env!("CARGO_PKG_VERSION")),
    };
    let multiplexing = args.multiplexing.as_ref().is_none_or(|b| b.value);
    // The expression making one instance, as a `Result<Self>`.
    let instance = match model.and_then(PluginModel::constructor) {
        Some(c) => {
            let ident = &c.ident;
            let ret = at(c.output.span());
            Some(respan(
                quote!(#krate::__private::IntoInstance::<Self>::into_instance(Self::#ident())),
                ret,
            ))
        }
        None if model.is_some() => {
            let span = at(self_ty.span());
            let default = respan(
                quote!(<Self as #krate::__private::DefaultInstance>::default_instance),
                span,
            );
            Some(quote!(#default()))
        }
        None => None,
    };
    if protocol == Protocol::V4 {
        let v4 = quote!(#krate::__private::v4);
        let create = match instance {
            Some(instance) => quote!(|| #krate::__private::v4_instance(#instance)),
            None => quote!(|| -> Self { ::core::unreachable!() }),
        };
        return quote! {
            #allows
            impl #self_ty {
                /// The plugin's server (database plugin protocol v4), configured by
                /// `#[database_plugin]`: one instance for the process, the version of the
                /// attribute. Call `.serve()` on it (after `.unwrap_tls(...)` if needed),
                /// or use [`Self::serve`].
                #[must_use]
                pub fn server() -> #v4::Server<
                    impl ::core::ops::Fn() -> Self
                        + ::core::marker::Send
                        + ::core::marker::Sync
                        + 'static,
                > {
                    #v4::Server::new(#create).version(#version)
                }

                /// Runs this database plugin as the host (Vault or OpenBao) launches it and
                /// returns the process exit status; call it from `main`.
                #[must_use]
                pub fn serve() -> ::std::process::ExitCode {
                    Self::server().serve()
                }
            }
        };
    }
    let create = match instance {
        Some(instance) => quote!(|| #instance),
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

    let call = |rpc: Rpc, call_args: TokenStream| call_rpc(krate, model, rpc, call_args);
    let request_arg = |rpc: Rpc| -> TokenStream {
        let m = model.rpc(rpc).expect("present");
        let span = at(m.params[0].span());
        quote_spanned!(span=> __dbplugin_req)
    };

    let type_name = type_name_body(ctx, args, model);

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

/// Calls the author's method: the future is checked for `Send` at the method's name, the
/// result converted to `Result<T>` at its return type. Returns the call expression and the
/// return type's span (where the `Ok` value's conversion goes).
fn call_rpc(
    krate: &syn::Path,
    model: &PluginModel,
    rpc: Rpc,
    call_args: TokenStream,
) -> (TokenStream, Span) {
    let private = quote!(#krate::__private);
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
    // A block: the await at the name, the conversion at the return type, each reported
    // once.
    (
        quote_spanned! {ret_span=> {
            let __dbplugin_awaited = #call;
            #into_rpc(#out)
        }},
        ret_span,
    )
}

/// `async move { ... }` calling `rpc` with `call_args` and converting its `Ok` value with
/// `convert` (a path to a function of one argument, from `__private`).
fn call_and_convert(
    krate: &syn::Path,
    model: &PluginModel,
    rpc: Rpc,
    call_args: TokenStream,
    convert: TokenStream,
) -> TokenStream {
    let ok = quote!(::core::result::Result::Ok);
    let err = quote!(::core::result::Result::Err);
    let (call, ret) = call_rpc(krate, model, rpc, call_args);
    let into = respan(quote!(#convert(__dbplugin_out)), ret);
    quote! {
        async move {
            match #call {
                #ok(__dbplugin_out) => #ok(#into),
                #err(__dbplugin_err) => #err(__dbplugin_err),
            }
        }
    }
}

/// The body of `type_name`: the `name` argument, or the author's `type_name` method.
fn type_name_body(ctx: &Ctx, args: &Args, model: &PluginModel) -> TokenStream {
    let krate = &ctx.krate;
    match (&args.name, model.rpc(Rpc::TypeName)) {
        (Some(name), _) => quote! {
            async move {
                ::core::result::Result::Ok(
                    <::std::string::String as ::core::convert::From<&'static str>>::from(#name)
                )
            }
        },
        (None, Some(_)) => call_and_convert(
            krate,
            model,
            Rpc::TypeName,
            quote!(),
            quote!(#krate::__private::TypeNameOutput::into_name),
        ),
        (None, None) => unreachable!("validated: a type name is given"),
    }
}

/// `impl dbplugin::v4::Database` for a plugin of the original interface.
fn v4_database_impl(ctx: &Ctx, args: &Args, model: &PluginModel) -> TokenStream {
    let krate = &ctx.krate;
    let self_ty = &model.self_ty;
    let allows = allows();
    let send = quote!(::core::marker::Send);
    let future = quote!(::core::future::Future);
    let ok = quote!(::core::result::Result::Ok);
    let err = quote!(::core::result::Result::Err);
    let private = quote!(#krate::__private);
    let v4 = quote!(#private::v4);
    let string = quote!(::std::string::String);
    let credentials = quote!((#string, #krate::Secret));

    // The generated parameter `name`, as the argument of the author's parameter `i` of
    // `rpc` (spanned there, so a wrong parameter type is reported at it).
    let arg = |rpc: Rpc, i: usize, name: &str| -> TokenStream {
        let m = model.rpc(rpc).expect("validated");
        let ident = syn::Ident::new(name, at(m.params[i].span()));
        quote!(#ident)
    };
    let convert = |rpc: Rpc, call_args: TokenStream, convert: TokenStream| {
        call_and_convert(krate, model, rpc, call_args, convert)
    };
    let unit = quote!(#private::UnitOutput::into_unit);
    let user_credentials = quote!(#private::UserCredentials::into_credentials);

    let type_name = type_name_body(ctx, args, model);

    let init = {
        let m = model.rpc(Rpc::V4Init).expect("validated");
        let config_ty = &m.params[0];
        let decode_span = at(config_ty.span());
        let decode = respan(
            quote!(<#config_ty as #private::InitConfig>::decode),
            decode_span,
        );
        let config_arg = respan(quote!(__dbplugin_config), decode_span);
        let (call_args, ignore_flag) = if m.params.len() == 2 {
            let flag = arg(Rpc::V4Init, 1, "__dbplugin_verify_connection");
            (quote!(#config_arg, #flag), TokenStream::new())
        } else {
            (
                quote!(#config_arg),
                quote!(let _ = __dbplugin_verify_connection;),
            )
        };
        let (call, ret) = call_rpc(krate, model, Rpc::V4Init, call_args);
        let save = respan(
            quote!(#private::SavedConfig::into_saved(__dbplugin_out, __dbplugin_received)),
            ret,
        );
        quote! {
            #ignore_flag
            async move {
                let __dbplugin_received = ::core::clone::Clone::clone(&__dbplugin_config);
                let __dbplugin_config = match #decode(__dbplugin_config) {
                    #ok(__dbplugin_config) => __dbplugin_config,
                    #err(__dbplugin_err) => return #err(__dbplugin_err),
                };
                match #call {
                    #ok(__dbplugin_out) => #save,
                    #err(__dbplugin_err) => #err(__dbplugin_err),
                }
            }
        }
    };

    let create_user = {
        let r = Rpc::V4CreateUser;
        let a = arg(r, 0, "__dbplugin_statements");
        let b = arg(r, 1, "__dbplugin_username_config");
        let c = arg(r, 2, "__dbplugin_expiration");
        convert(r, quote!(#a, #b, #c), user_credentials.clone())
    };
    let renew_user = {
        let r = Rpc::V4RenewUser;
        let a = arg(r, 0, "__dbplugin_statements");
        let b = arg(r, 1, "__dbplugin_username");
        let c = arg(r, 2, "__dbplugin_expiration");
        convert(r, quote!(#a, #b, #c), unit.clone())
    };
    let revoke_user = {
        let r = Rpc::V4RevokeUser;
        let a = arg(r, 0, "__dbplugin_statements");
        let b = arg(r, 1, "__dbplugin_username");
        convert(r, quote!(#a, #b), unit.clone())
    };
    let rotate_root_credentials = {
        let r = Rpc::V4RotateRootCredentials;
        let a = arg(r, 0, "__dbplugin_statements");
        convert(r, quote!(#a), quote!(#private::RotatedConfig::into_config))
    };
    let set_credentials = if model.rpc(Rpc::V4SetCredentials).is_some() {
        let r = Rpc::V4SetCredentials;
        let a = arg(r, 0, "__dbplugin_statements");
        let b = arg(r, 1, "__dbplugin_static_user");
        let body = convert(r, quote!(#a, #b), user_credentials);
        quote! {
            fn set_credentials(
                &self,
                __dbplugin_statements: #v4::Statements,
                __dbplugin_static_user: #v4::StaticUserConfig,
            ) -> impl #future<Output = #krate::Result<#credentials>> + #send {
                #body
            }
        }
    } else {
        TokenStream::new()
    };
    let generate_credentials = if model.rpc(Rpc::V4GenerateCredentials).is_some() {
        let body = convert(
            Rpc::V4GenerateCredentials,
            quote!(),
            quote!(#private::GeneratedPassword::into_password),
        );
        quote! {
            fn generate_credentials(&self) -> impl #future<Output = #krate::Result<#krate::Secret>> + #send {
                #body
            }
        }
    } else {
        TokenStream::new()
    };
    let close = if model.rpc(Rpc::Close).is_some() {
        let body = convert(Rpc::Close, quote!(), unit);
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
        impl #v4::Database for #self_ty {
            fn type_name(&self) -> impl #future<Output = #krate::Result<#string>> + #send {
                #type_name
            }

            fn init(
                &self,
                __dbplugin_config: #krate::ConfigMap,
                __dbplugin_verify_connection: bool,
            ) -> impl #future<Output = #krate::Result<#krate::ConfigMap>> + #send {
                #init
            }

            fn create_user(
                &self,
                __dbplugin_statements: #v4::Statements,
                __dbplugin_username_config: #v4::UsernameConfig,
                __dbplugin_expiration: #v4::OffsetDateTime,
            ) -> impl #future<Output = #krate::Result<#credentials>> + #send {
                #create_user
            }

            fn renew_user(
                &self,
                __dbplugin_statements: #v4::Statements,
                __dbplugin_username: #string,
                __dbplugin_expiration: #v4::OffsetDateTime,
            ) -> impl #future<Output = #krate::Result<()>> + #send {
                #renew_user
            }

            fn revoke_user(
                &self,
                __dbplugin_statements: #v4::Statements,
                __dbplugin_username: #string,
            ) -> impl #future<Output = #krate::Result<()>> + #send {
                #revoke_user
            }

            fn rotate_root_credentials(
                &self,
                __dbplugin_statements: ::std::vec::Vec<#string>,
            ) -> impl #future<Output = #krate::Result<#krate::ConfigMap>> + #send {
                #rotate_root_credentials
            }

            #set_credentials
            #generate_credentials
            #close
        }
    }
}
