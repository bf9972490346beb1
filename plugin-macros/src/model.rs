//! Phase 2: the analysed plugin: which RPC each method implements and in which shape.
//!
//! Each method is one unit: its first problem is its error, and errors of different
//! methods are collected together. Rules spanning several methods live in `validate.rs`.

use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::attr::{check_constructor_attr, is_constructor_attr};
use crate::util::{Errors, bail_spanned, did_you_mean, ensure_spanned};

/// The protocol a method set belongs to: the methods present decide which one is served.
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
    // Database plugin protocol v4 (the original interface).
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

    /// The protocol only this method belongs to; `None` for `type_name` and `close`,
    /// which both protocols have.
    pub(crate) fn exclusive(self) -> Option<Protocol> {
        match self {
            Rpc::TypeName | Rpc::Close => None,
            Rpc::Initialize | Rpc::NewUser | Rpc::UpdateUser | Rpc::DeleteUser => {
                Some(Protocol::V5)
            }
            _ => Some(Protocol::V4),
        }
    }

    /// Whether a plugin of `protocol` can have this method.
    pub(crate) fn belongs_to(self, protocol: Protocol) -> bool {
        self.exclusive().is_none_or(|p| p == protocol)
    }

    /// For a v5 method: the v4 method doing its job.
    pub(crate) fn v4_equivalent(self) -> &'static str {
        match self {
            Rpc::Initialize => "`init`",
            Rpc::NewUser => "`create_user`",
            Rpc::UpdateUser => "`set_credentials`, `renew_user` or `rotate_root_credentials`",
            Rpc::DeleteUser => "`revoke_user`",
            other => other.name(),
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

    /// The methods of `protocol`, by name.
    pub(crate) fn names(protocol: Protocol) -> Vec<&'static str> {
        Rpc::ALL
            .iter()
            .filter(|r| r.belongs_to(protocol))
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
            Rpc::V4Init => {
                "async fn init(&self, config: C, verify_connection: bool) -> Result<ConfigMap>"
            }
            Rpc::V4CreateUser => {
                "async fn create_user(&self, statements: Statements, username_config: UsernameConfig, expiration: OffsetDateTime) -> Result<(String, Secret)>"
            }
            Rpc::V4RenewUser => {
                "async fn renew_user(&self, statements: Statements, username: String, expiration: OffsetDateTime) -> Result<()>"
            }
            Rpc::V4RevokeUser => {
                "async fn revoke_user(&self, statements: Statements, username: String) -> Result<()>"
            }
            Rpc::V4RotateRootCredentials => {
                "async fn rotate_root_credentials(&self, statements: Vec<String>) -> Result<ConfigMap>"
            }
            Rpc::V4SetCredentials => {
                "async fn set_credentials(&self, statements: Statements, static_user: StaticUserConfig) -> Result<(String, Secret)>"
            }
            Rpc::V4GenerateCredentials => "async fn generate_credentials(&self) -> Result<Secret>",
        }
    }

    /// The parameters after `&self`: the fewest and the most.
    fn arity(self) -> (usize, usize) {
        match self {
            Rpc::TypeName | Rpc::Close | Rpc::V4GenerateCredentials => (0, 0),
            Rpc::Initialize | Rpc::V4Init => (1, 2),
            Rpc::NewUser | Rpc::UpdateUser | Rpc::DeleteUser | Rpc::V4RotateRootCredentials => {
                (1, 1)
            }
            Rpc::V4RevokeUser | Rpc::V4SetCredentials => (2, 2),
            Rpc::V4CreateUser | Rpc::V4RenewUser => (3, 3),
        }
    }

    /// The parameters after `&self`, in words.
    fn params_doc(self) -> &'static str {
        match self {
            Rpc::TypeName | Rpc::Close | Rpc::V4GenerateCredentials => {
                "no parameters besides `&self`"
            }
            Rpc::Initialize | Rpc::V4Init => {
                "the config and, optionally, `verify_connection: bool`"
            }
            Rpc::NewUser => "one parameter, `req: NewUserRequest`",
            Rpc::UpdateUser => "one parameter, `req: UpdateUserRequest`",
            Rpc::DeleteUser => "one parameter, `req: DeleteUserRequest`",
            Rpc::V4CreateUser => {
                "three parameters, `statements: Statements`, `username_config: UsernameConfig` and `expiration: OffsetDateTime`"
            }
            Rpc::V4RenewUser => {
                "three parameters, `statements: Statements`, `username: String` and `expiration: OffsetDateTime`"
            }
            Rpc::V4RevokeUser => "two parameters, `statements: Statements` and `username: String`",
            Rpc::V4RotateRootCredentials => "one parameter, `statements: Vec<String>`",
            Rpc::V4SetCredentials => {
                "two parameters, `statements: Statements` and `static_user: StaticUserConfig`"
            }
        }
    }

    /// The usual return type, for a method missing one.
    fn usual_output(self) -> &'static str {
        match self {
            Rpc::TypeName => "Result<String>",
            Rpc::NewUser => "Result<NewUserResponse>",
            Rpc::V4Init | Rpc::V4RotateRootCredentials => "Result<ConfigMap>",
            Rpc::V4CreateUser | Rpc::V4SetCredentials => "Result<(String, Secret)>",
            Rpc::V4GenerateCredentials => "Result<Secret>",
            _ => "Result<()>",
        }
    }
}

impl Protocol {
    /// How messages name the protocol.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Protocol::V5 => "v5",
            Protocol::V4 => "original (v4)",
        }
    }

    /// Its required methods (besides the type name).
    pub(crate) fn required(self) -> &'static [Rpc] {
        match self {
            Protocol::V5 => &[Rpc::Initialize, Rpc::NewUser, Rpc::DeleteUser],
            Protocol::V4 => &[
                Rpc::V4Init,
                Rpc::V4CreateUser,
                Rpc::V4RenewUser,
                Rpc::V4RevokeUser,
                Rpc::V4RotateRootCredentials,
            ],
        }
    }
}

/// Which protocol the impl serves: the one most of its protocol-specific methods belong to
/// (v5 when none do; the first such method on a tie), with the first method of that
/// protocol, which messages about a method of the other one cite.
pub(crate) fn decide_protocol(item: &ItemImpl) -> (Protocol, Option<syn::Ident>) {
    let methods: Vec<(Protocol, &syn::Ident)> = item
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) if !f.attrs.iter().any(is_constructor_attr) => {
                let name = f.sig.ident.to_string();
                let rpc = Rpc::ALL.iter().find(|r| r.name() == name)?;
                Some((rpc.exclusive()?, &f.sig.ident))
            }
            _ => None,
        })
        .collect();
    let count = |p: Protocol| methods.iter().filter(|(q, _)| *q == p).count();
    let (v4, v5) = (count(Protocol::V4), count(Protocol::V5));
    let protocol = match v4.cmp(&v5) {
        std::cmp::Ordering::Greater => Protocol::V4,
        std::cmp::Ordering::Less => Protocol::V5,
        std::cmp::Ordering::Equal => methods.first().map_or(Protocol::V5, |(p, _)| *p),
    };
    let witness = methods
        .iter()
        .find(|(p, _)| *p == protocol)
        .map(|(_, i)| (*i).clone());
    (protocol, witness)
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
    /// The protocol served, decided by the method set.
    pub(crate) protocol: Protocol,
    /// The first method of that protocol, if any.
    pub(crate) witness: Option<syn::Ident>,
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
    let (protocol, witness) = decide_protocol(item);
    for impl_item in &item.items {
        match impl_item {
            ImplItem::Fn(f) => {
                let name = f.sig.ident.to_string();
                if !f.attrs.iter().any(is_constructor_attr)
                    && let Some(rpc) = Rpc::ALL.iter().find(|r| r.name() == name)
                {
                    present.push((*rpc, f.sig.ident.clone()));
                }
                if let Some(m) = errors.ok(analyse_fn(f, protocol, witness.as_ref())) {
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
        protocol,
        witness,
        span_anchor: (*item.self_ty).clone(),
        members,
        present,
    };
    (model, errors)
}

fn analyse_fn(
    f: &ImplItemFn,
    protocol: Protocol,
    witness: Option<&syn::Ident>,
) -> syn::Result<Member> {
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
        let names = Rpc::names(protocol);
        let hint = did_you_mean(&name, &names);
        if hint.is_empty() {
            bail_spanned!(&f.sig.ident => "`{name}` is not a database plugin method: a #[database_plugin] impl holds only {} and a `#[constructor]`; move `{name}` to a separate `impl` block", crate::util::one_of(&names));
        }
        bail_spanned!(&f.sig.ident => "`{name}` is not a database plugin method{hint}");
    };
    if let Some(own) = rpc.exclusive()
        && own != protocol
    {
        let cited = match witness {
            Some(w) => match crate::util::line_of(w.span()) {
                Some(line) => format!("`{w}` (line {line})"),
                None => format!("`{w}`"),
            },
            None => String::from("another method"),
        };
        let fix = match rpc {
            Rpc::V4GenerateCredentials => String::from(
                "remove it (in v5 the host generates the password and passes it to `new_user`)",
            ),
            Rpc::V4SetCredentials | Rpc::V4RenewUser | Rpc::V4RotateRootCredentials => {
                format!("do its work in {} instead", rpc.v5_equivalent())
            }
            _ if own == Protocol::V4 => format!("use {} instead", rpc.v5_equivalent()),
            _ => format!("use {} instead", rpc.v4_equivalent()),
        };
        let other = match protocol {
            Protocol::V5 => {
                "a v4 plugin (`init`, `create_user`, `renew_user`, `revoke_user` and `rotate_root_credentials`)"
            }
            Protocol::V4 => "a v5 plugin (`initialize`, `new_user` and `delete_user`)",
        };
        bail_spanned!(&f.sig.ident => "`{name}` belongs to the {} interface, but this impl already uses the {} method {cited}; a plugin serves one protocol: {fix}, or make it {other}", own.describe(), protocol.describe());
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
    let (min, max) = rpc.arity();
    if params.len() < min || params.len() > max {
        let what = rpc.params_doc();
        if params.is_empty() {
            bail_spanned!(&sig.inputs => "`{}` takes {what}; expected `{expected}`", rpc.name());
        }
        match sig.inputs.iter().skip(1).nth(max) {
            Some(bad) => {
                bail_spanned!(bad => "`{}` takes {what}; remove this parameter (expected `{expected}`)", rpc.name())
            }
            None => {
                bail_spanned!(&sig.inputs => "`{}` takes {what}; expected `{expected}`", rpc.name())
            }
        }
    }
    if matches!(rpc, Rpc::Initialize | Rpc::V4Init)
        && let Some(flag) = params.get(1)
    {
        let is_bool = matches!(flag, Type::Path(p) if p.qself.is_none() && p.path.is_ident("bool"));
        ensure_spanned!(is_bool, flag =>
            "the second parameter of `{}` is `verify_connection: bool`; expected `{expected}`", rpc.name());
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            let ok = rpc.usual_output();
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
