//! Phase 2: the analysed plugin: which RPC each method implements and in which shape.
//!
//! Each method is one unit: its first problem is its error, and errors of different
//! methods are collected together. Rules spanning several methods live in `validate.rs`.

use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::attr::{check_constructor_attr, is_constructor_attr};
use crate::util::{Errors, bail_spanned, did_you_mean, ensure_spanned};

/// The protocol a method set belongs to. Only v5 is served today; the v4 names are
/// recognised so the error can say so, and so a v4 method set can be added beside v5.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Protocol {
    V5,
    V4,
}

/// A database-protocol RPC a method implements.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Rpc {
    TypeName,
    Initialize,
    NewUser,
    UpdateUser,
    DeleteUser,
    Close,
    // Database plugin protocol v4 (not served yet).
    V4Init,
    V4CreateUser,
    V4RenewUser,
    V4RevokeUser,
    V4RotateRootCredentials,
    V4SetCredentials,
    V4GenerateCredentials,
}

impl Rpc {
    pub(crate) const ALL: &'static [Rpc] = &[
        Rpc::TypeName,
        Rpc::Initialize,
        Rpc::NewUser,
        Rpc::UpdateUser,
        Rpc::DeleteUser,
        Rpc::Close,
        Rpc::V4Init,
        Rpc::V4CreateUser,
        Rpc::V4RenewUser,
        Rpc::V4RevokeUser,
        Rpc::V4RotateRootCredentials,
        Rpc::V4SetCredentials,
        Rpc::V4GenerateCredentials,
    ];

    /// The method name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rpc::TypeName => "type_name",
            Rpc::Initialize => "initialize",
            Rpc::NewUser => "new_user",
            Rpc::UpdateUser => "update_user",
            Rpc::DeleteUser => "delete_user",
            Rpc::Close => "close",
            Rpc::V4Init => "init",
            Rpc::V4CreateUser => "create_user",
            Rpc::V4RenewUser => "renew_user",
            Rpc::V4RevokeUser => "revoke_user",
            Rpc::V4RotateRootCredentials => "rotate_root_credentials",
            Rpc::V4SetCredentials => "set_credentials",
            Rpc::V4GenerateCredentials => "generate_credentials",
        }
    }

    pub(crate) fn protocol(self) -> Protocol {
        match self {
            Rpc::TypeName
            | Rpc::Initialize
            | Rpc::NewUser
            | Rpc::UpdateUser
            | Rpc::DeleteUser
            | Rpc::Close => Protocol::V5,
            _ => Protocol::V4,
        }
    }

    /// For a v4 method: the v5 method doing its job.
    pub(crate) fn v5_equivalent(self) -> &'static str {
        match self {
            Rpc::V4Init => "`initialize`",
            Rpc::V4CreateUser => "`new_user`",
            Rpc::V4RenewUser | Rpc::V4RotateRootCredentials | Rpc::V4SetCredentials => {
                "`update_user`"
            }
            Rpc::V4RevokeUser => "`delete_user`",
            Rpc::V4GenerateCredentials => {
                "nothing: in v5 the host generates the password and passes it to `new_user`"
            }
            other => other.name(),
        }
    }

    /// The v5 methods, by name.
    pub(crate) fn v5_names() -> Vec<&'static str> {
        Rpc::ALL
            .iter()
            .filter(|r| r.protocol() == Protocol::V5)
            .map(|r| r.name())
            .collect()
    }

    /// The expected signature, for messages.
    pub(crate) fn signature(self) -> &'static str {
        match self {
            Rpc::TypeName => "async fn type_name(&self) -> Result<String>",
            Rpc::Initialize => {
                "async fn initialize(&self, config: C, verify_connection: bool) -> Result<()>"
            }
            Rpc::NewUser => {
                "async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse>"
            }
            Rpc::UpdateUser => "async fn update_user(&self, req: UpdateUserRequest) -> Result<()>",
            Rpc::DeleteUser => "async fn delete_user(&self, req: DeleteUserRequest) -> Result<()>",
            Rpc::Close => "async fn close(&self) -> Result<()>",
            _ => "",
        }
    }
}

/// A method implementing a v5 RPC.
pub(crate) struct RpcMethod {
    pub(crate) rpc: Rpc,
    pub(crate) ident: syn::Ident,
    /// The parameter types after `&self`.
    pub(crate) params: Vec<Type>,
    /// The declared return type.
    pub(crate) output: Type,
}

/// The `#[constructor]` method.
pub(crate) struct Constructor {
    pub(crate) ident: syn::Ident,
    pub(crate) output: Type,
}

/// One item of the impl, analysed.
pub(crate) enum Member {
    Rpc(RpcMethod),
    Constructor(Constructor),
}

/// The analysed impl block. Built even when some methods are wrong (they are left out), so
/// validation and the error-path stubs have what they need.
pub(crate) struct PluginModel {
    pub(crate) self_ty: Type,
    /// Where to report plugin-wide problems (missing methods): the self type.
    pub(crate) span_anchor: Type,
    pub(crate) members: Vec<Member>,
    /// Every method named after an RPC, valid or not: a wrong `new_user` is not also a
    /// missing one.
    pub(crate) present: Vec<(Rpc, syn::Ident)>,
}

impl PluginModel {
    pub(crate) fn rpc(&self, rpc: Rpc) -> Option<&RpcMethod> {
        self.members.iter().find_map(|m| match m {
            Member::Rpc(m) if m.rpc == rpc => Some(m),
            _ => None,
        })
    }

    /// The method named after `rpc`, valid or not.
    pub(crate) fn present(&self, rpc: Rpc) -> Option<&syn::Ident> {
        self.present.iter().find(|(r, _)| *r == rpc).map(|(_, i)| i)
    }

    pub(crate) fn constructor(&self) -> Option<&Constructor> {
        self.members.iter().find_map(|m| match m {
            Member::Constructor(c) => Some(c),
            Member::Rpc(_) => None,
        })
    }
}

/// Whether the impl can take stubs on the error path (an inherent, non-generic impl).
pub(crate) fn stubbable(item: &ItemImpl) -> bool {
    item.trait_.is_none() && item.generics.params.is_empty()
}

/// Checks the impl's own shape (the item-level unit).
pub(crate) fn check_impl_shape(item: &ItemImpl) -> syn::Result<()> {
    if let Some((_, path, for_token)) = &item.trait_ {
        let trait_name = path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let hint = if trait_name == "Database" {
            "; the macro writes the `Database` impl for you: write `impl MyPlugin { ... }`"
        } else {
            "; put the plugin's methods in an inherent `impl MyPlugin { ... }` block"
        };
        return Err(syn::Error::new(
            path.span()
                .join(for_token.span)
                .unwrap_or_else(|| path.span()),
            format!("#[database_plugin] cannot be used on trait impls{hint}"),
        ));
    }
    if let Some(d) = &item.defaultness {
        bail_spanned!(d => "#[database_plugin] cannot be used on a `default impl`");
    }
    if !item.generics.params.is_empty() {
        let has_lifetime = item.generics.lifetimes().next().is_some();
        let what = if has_lifetime {
            "lifetime parameters"
        } else {
            "generic parameters"
        };
        bail_spanned!(&item.generics => "#[database_plugin] impls cannot have {what}: a plugin is one concrete `'static` type; make the type concrete (e.g. `impl MyPlugin<Postgres>`) or write the `Database` impl by hand");
    }
    if let Some(w) = &item.generics.where_clause {
        bail_spanned!(w => "#[database_plugin] impls cannot have a `where` clause");
    }
    Ok(())
}

/// Analyses every item; returns the model and the per-method errors.
pub(crate) fn analyse(item: &ItemImpl) -> (PluginModel, Errors) {
    let mut errors = Errors::default();
    let mut members = Vec::new();
    let mut present = Vec::new();
    for impl_item in &item.items {
        match impl_item {
            ImplItem::Fn(f) => {
                let name = f.sig.ident.to_string();
                if !f.attrs.iter().any(is_constructor_attr)
                    && let Some(rpc) = Rpc::ALL.iter().find(|r| r.name() == name)
                {
                    present.push((*rpc, f.sig.ident.clone()));
                }
                if let Some(m) = errors.ok(analyse_fn(f)) {
                    members.push(m);
                }
            }
            ImplItem::Const(_) | ImplItem::Type(_) => {}
            ImplItem::Macro(m) => errors.push(syn::Error::new_spanned(
                m,
                "#[database_plugin] cannot see into macro invocations; write the methods out, or move the macro to a separate `impl` block",
            )),
            other => errors.push(syn::Error::new_spanned(
                other,
                "unexpected item in a #[database_plugin] impl",
            )),
        }
    }
    let model = PluginModel {
        self_ty: (*item.self_ty).clone(),
        span_anchor: (*item.self_ty).clone(),
        members,
        present,
    };
    (model, errors)
}

fn analyse_fn(f: &ImplItemFn) -> syn::Result<Member> {
    let constructor_attrs: Vec<_> = f.attrs.iter().filter(|a| is_constructor_attr(a)).collect();
    if let Some(attr) = constructor_attrs.get(1) {
        bail_spanned!(attr => "`#[constructor]` is repeated");
    }
    if let Some(attr) = constructor_attrs.first() {
        check_constructor_attr(attr)?;
        return analyse_constructor(f);
    }
    let name = f.sig.ident.to_string();
    let Some(rpc) = Rpc::ALL.iter().copied().find(|r| r.name() == name) else {
        let hint = did_you_mean(&name, &Rpc::v5_names());
        if hint.is_empty() {
            bail_spanned!(&f.sig.ident => "`{name}` is not a database plugin method: a #[database_plugin] impl holds only {} and a `#[constructor]`; move `{name}` to a separate `impl` block", crate::util::one_of(&Rpc::v5_names()));
        }
        bail_spanned!(&f.sig.ident => "`{name}` is not a database plugin method{hint}");
    };
    if rpc.protocol() == Protocol::V4 {
        bail_spanned!(&f.sig.ident => "`{name}` belongs to the database plugin v4 interface, which #[database_plugin] does not support yet; implement the v5 method {} instead", rpc.v5_equivalent());
    }
    analyse_rpc(rpc, f)
}

fn analyse_rpc(rpc: Rpc, f: &ImplItemFn) -> syn::Result<Member> {
    let sig = &f.sig;
    let expected = rpc.signature();
    if let Some(c) = &sig.constness {
        bail_spanned!(c => "`{}` cannot be `const`; expected `{expected}`", rpc.name());
    }
    if let Some(u) = &sig.unsafety {
        bail_spanned!(u => "`{}` cannot be `unsafe`; expected `{expected}`", rpc.name());
    }
    if let Some(abi) = &sig.abi {
        bail_spanned!(abi => "`{}` cannot have an ABI; expected `{expected}`", rpc.name());
    }
    ensure_spanned!(sig.asyncness.is_some(), &sig.fn_token =>
        "`{}` must be an `async fn`; expected `{expected}`", rpc.name());
    if !sig.generics.params.is_empty() {
        bail_spanned!(&sig.generics => "`{}` cannot have generic parameters; expected `{expected}`", rpc.name());
    }
    if let Some(w) = &sig.generics.where_clause {
        bail_spanned!(w => "`{}` cannot have a `where` clause; expected `{expected}`", rpc.name());
    }
    if let Some(v) = &sig.variadic {
        bail_spanned!(v => "`{}` cannot be variadic", rpc.name());
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) => {
            let ok = r.reference.as_ref().is_some_and(|(_, lt)| lt.is_none())
                && r.mutability.is_none()
                && r.colon_token.is_none();
            ensure_spanned!(ok, r =>
                "`{}` must take `&self`: the host calls a plugin instance concurrently, so keep mutable state behind a `Mutex`", rpc.name());
        }
        Some(FnArg::Typed(t)) => {
            bail_spanned!(t => "`{}` must take `&self` first; expected `{expected}`", rpc.name())
        }
        None => {
            bail_spanned!(&sig.ident => "`{}` must take `&self`; expected `{expected}`", rpc.name())
        }
    }
    let mut params = Vec::new();
    for arg in inputs {
        let FnArg::Typed(t) = arg else {
            bail_spanned!(arg => "unexpected receiver");
        };
        if let Type::ImplTrait(it) = &*t.ty {
            bail_spanned!(it => "`{}` cannot take `impl Trait` parameters; expected `{expected}`", rpc.name());
        }
        if let Pat::Ident(p) = &*t.pat
            && (p.by_ref.is_some())
        {
            bail_spanned!(p => "`ref` bindings are not supported here");
        }
        params.push((*t.ty).clone());
    }
    let arity_ok = match rpc {
        Rpc::TypeName | Rpc::Close => params.is_empty(),
        Rpc::Initialize => matches!(params.len(), 1 | 2),
        _ => params.len() == 1,
    };
    if !arity_ok {
        let what = match rpc {
            Rpc::TypeName | Rpc::Close => "no parameters besides `&self`".to_owned(),
            Rpc::Initialize => "the config and, optionally, `verify_connection: bool`".to_owned(),
            Rpc::NewUser => "one parameter, `req: NewUserRequest`".to_owned(),
            Rpc::UpdateUser => "one parameter, `req: UpdateUserRequest`".to_owned(),
            Rpc::DeleteUser => "one parameter, `req: DeleteUserRequest`".to_owned(),
            _ => String::new(),
        };
        if params.is_empty() {
            bail_spanned!(&sig.inputs => "`{}` takes {what}; expected `{expected}`", rpc.name());
        }
        let extra: Vec<_> = sig.inputs.iter().skip(1).collect();
        let first_bad = match rpc {
            Rpc::Initialize => extra.get(2).copied(),
            Rpc::TypeName | Rpc::Close => extra.first().copied(),
            _ => extra.get(1).copied(),
        };
        match first_bad {
            Some(bad) => {
                bail_spanned!(bad => "`{}` takes {what}; remove this parameter (expected `{expected}`)", rpc.name())
            }
            None => {
                bail_spanned!(&sig.inputs => "`{}` takes {what}; expected `{expected}`", rpc.name())
            }
        }
    }
    if rpc == Rpc::Initialize
        && let Some(flag) = params.get(1)
    {
        let is_bool = matches!(flag, Type::Path(p) if p.qself.is_none() && p.path.is_ident("bool"));
        ensure_spanned!(is_bool, flag =>
            "the second parameter of `initialize` is `verify_connection: bool`; expected `{expected}`");
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            let ok = match rpc {
                Rpc::TypeName => "Result<String>",
                Rpc::NewUser => "Result<NewUserResponse>",
                _ => "Result<()>",
            };
            bail_spanned!(&sig.ident => "`{}` must return `{ok}`; add `-> {ok}` (expected `{expected}`)", rpc.name());
        }
    };
    Ok(Member::Rpc(RpcMethod {
        rpc,
        ident: sig.ident.clone(),
        params,
        output,
    }))
}

fn analyse_constructor(f: &ImplItemFn) -> syn::Result<Member> {
    let sig = &f.sig;
    const EXPECTED: &str = "#[constructor] fn new() -> Self";
    if let Some(a) = &sig.asyncness {
        bail_spanned!(a => "a `#[constructor]` cannot be `async`: instances are made synchronously when a connection is opened; expected `{EXPECTED}`");
    }
    if let Some(u) = &sig.unsafety {
        bail_spanned!(u => "a `#[constructor]` cannot be `unsafe`; expected `{EXPECTED}`");
    }
    if !sig.generics.params.is_empty() {
        bail_spanned!(&sig.generics => "a `#[constructor]` cannot have generic parameters; expected `{EXPECTED}`");
    }
    if let Some(first) = sig.inputs.first() {
        if let FnArg::Receiver(r) = first {
            bail_spanned!(r => "a `#[constructor]` makes the instance, so it takes no `self`; expected `{EXPECTED}`");
        }
        bail_spanned!(&sig.inputs => "a `#[constructor]` takes no parameters (the host passes the configuration to `initialize`); expected `{EXPECTED}`");
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            bail_spanned!(&sig.ident => "a `#[constructor]` must return `Self` or `Result<Self>`; expected `{EXPECTED}`")
        }
    };
    Ok(Member::Constructor(Constructor {
        ident: sig.ident.clone(),
        output,
    }))
}
