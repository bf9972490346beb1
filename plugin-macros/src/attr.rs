//! Phase 1: the `#[database_plugin(...)]` arguments and the per-method helper attribute.
//!
//! Each argument is parsed on its own, so one bad argument yields one error and the others
//! are still known (the error path needs `main` to emit a stub entry point).

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitBool, LitStr, Meta, Token};

use crate::util::{Errors, bail_spanned, did_you_mean, one_of};

/// The argument names, in documentation order.
pub(crate) const ARGUMENTS: &[&str] = &[
    "name",
    "version",
    "credential_types",
    "multiplexing",
    "main",
    "crate",
];

/// Names people reach for, and the argument they mean.
const RENAMES: &[(&str, &str)] = &[
    ("type", "name"),
    ("type_name", "name"),
    ("plugin_name", "name"),
    ("krate", "crate"),
    ("runtime", "crate"),
    ("multiplex", "multiplexing"),
    ("multiplexed", "multiplexing"),
    ("credential_type", "credential_types"),
    ("credentials", "credential_types"),
    ("supported_credential_types", "credential_types"),
    ("plugin_version", "version"),
];

/// The credential types, as written in `credential_types(...)`, and their runtime variants.
pub(crate) const CREDENTIAL_TYPES: &[(&str, &str)] = &[
    ("password", "Password"),
    ("rsa_private_key", "RsaPrivateKey"),
    ("client_certificate", "ClientCertificate"),
];

/// The helper attribute marking the instance constructor.
pub(crate) const CONSTRUCTOR_ATTR: &str = "constructor";

/// One credential type written in `credential_types(...)`.
pub(crate) struct CredentialTypeArg {
    /// The runtime variant name (`Password`, ...).
    pub(crate) variant: &'static str,
    pub(crate) span: Span,
}

/// The parsed arguments; `None` where not given (defaults are applied in codegen).
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) credential_types: Option<Vec<CredentialTypeArg>>,
    pub(crate) multiplexing: Option<LitBool>,
    pub(crate) main: Option<Span>,
    pub(crate) krate: Option<syn::Path>,
    pub(crate) krate_span: Option<Span>,
    /// Where each accepted argument's name is written.
    pub(crate) keys: Vec<(&'static str, Span)>,
    /// Arguments written but refused (or unparsable arguments): rules depending on them
    /// are skipped, so one mistake gives one error.
    pub(crate) attempted: Vec<&'static str>,
}

impl Args {
    /// Where the argument `name` is written, if it was accepted.
    pub(crate) fn key_span(&self, name: &str) -> Option<Span> {
        self.keys.iter().find(|(k, _)| *k == name).map(|(_, s)| *s)
    }
}

/// Parses the attribute arguments, accumulating one error per bad argument.
pub(crate) fn parse_args(tokens: TokenStream) -> (Args, Errors) {
    let mut args = Args::default();
    let mut errors = Errors::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!(
                    "{e}; `#[database_plugin]` takes arguments like `name = \"mydb\"`, `multiplexing = false`, `credential_types(password)` or `main`"
                ),
            ));
            args.attempted.extend_from_slice(ARGUMENTS);
            return (args, errors);
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let key = meta
            .path()
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_else(|| quote::quote!(#meta).to_string());
        if ARGUMENTS.contains(&key.as_str()) {
            if seen.contains(&key) {
                errors.push(syn::Error::new_spanned(
                    meta.path(),
                    format!("`{key}` may only be specified once"),
                ));
                continue;
            }
            seen.push(key.clone());
        }
        let parsed = parse_one(&mut args, &key, &meta);
        if parsed.is_ok()
            && let Some(arg) = ARGUMENTS.iter().find(|a| **a == key)
        {
            args.keys.push((arg, meta.path().span()));
        }
        if let Err(e) = parsed {
            errors.push(e);
            let meant = RENAMES
                .iter()
                .find(|(from, _)| *from == key)
                .map(|(_, to)| *to)
                .or_else(|| crate::util::closest(&key, ARGUMENTS));
            if let Some(arg) = ARGUMENTS.iter().find(|a| **a == key).copied().or(meant) {
                args.attempted.push(arg);
            }
        }
    }
    (args, errors)
}

fn parse_one(args: &mut Args, key: &str, meta: &Meta) -> syn::Result<()> {
    match key {
        "name" => {
            let lit = string_value(meta, key, "the plugin's type name, e.g. `name = \"mydb\"`")?;
            if lit.value().trim().is_empty() {
                bail_spanned!(lit => "`name` must not be empty; write the plugin's type name, e.g. `name = \"mydb\"`");
            }
            args.name = Some(lit);
        }
        "version" => {
            let lit = string_value(meta, key, "a semantic version, e.g. `version = \"1.2.3\"`")?;
            let v = lit.value();
            let v = v.strip_prefix('v').unwrap_or(&v);
            let ok = v.split(['-', '+']).next().is_some_and(|core| {
                let parts: Vec<&str> = core.split('.').collect();
                parts.len() == 3
                    && parts
                        .iter()
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            });
            if !ok {
                bail_spanned!(lit => "`version` must be a semantic version such as \"1.2.3\" or \"v1.2.3\"; omit it to use the crate's version");
            }
            args.version = Some(lit);
        }
        "multiplexing" => {
            let Meta::NameValue(nv) = meta else {
                bail_spanned!(meta => "`multiplexing` takes a boolean: `multiplexing = false`");
            };
            match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => args.multiplexing = Some(b.clone()),
                other => {
                    bail_spanned!(other => "`multiplexing` expects `true` or `false`")
                }
            }
        }
        "main" => match meta {
            Meta::Path(p) => args.main = Some(p.span()),
            other => {
                bail_spanned!(other => "`main` takes no value: write `#[database_plugin(main)]` to generate `fn main`")
            }
        },
        "crate" => {
            let lit = string_value(
                meta,
                key,
                "the path of the runtime crate, e.g. `crate = \"::dbplugin\"`",
            )?;
            let path = lit.parse_with(syn::Path::parse_mod_style).map_err(|_| {
                syn::Error::new_spanned(
                    &lit,
                    format!(
                        "`crate` must be a path such as \"::dbplugin\" or \"my_reexport::dbplugin\", not {:?}",
                        lit.value()
                    ),
                )
            })?;
            args.krate = Some(path);
            args.krate_span = Some(lit.span());
        }
        "credential_types" => {
            let Meta::List(list) = meta else {
                bail_spanned!(meta => "`credential_types` takes a list: `credential_types(password, rsa_private_key, client_certificate)`");
            };
            let idents = list
                .parse_args_with(Punctuated::<syn::Ident, Token![,]>::parse_terminated)
                .map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        format!(
                            "`credential_types` lists credential types by name: {}",
                            one_of(&names())
                        ),
                    )
                })?;
            if idents.is_empty() {
                bail_spanned!(list => "`credential_types` must list at least one of {}", one_of(&names()));
            }
            let mut errors = Errors::default();
            let mut types: Vec<CredentialTypeArg> = Vec::new();
            let mut seen: Vec<String> = Vec::new();
            for ident in idents {
                let name = ident.to_string();
                let Some((_, variant)) = CREDENTIAL_TYPES.iter().find(|(n, _)| *n == name) else {
                    errors.push(syn::Error::new_spanned(
                        &ident,
                        format!(
                            "unknown credential type `{name}`; expected one of {}{}",
                            one_of(&names()),
                            did_you_mean(&name, &names())
                        ),
                    ));
                    continue;
                };
                if seen.contains(&name) {
                    errors.push(syn::Error::new_spanned(
                        &ident,
                        format!("credential type `{name}` is listed twice"),
                    ));
                    continue;
                }
                seen.push(name);
                types.push(CredentialTypeArg {
                    variant,
                    span: ident.span(),
                });
            }
            if let Some(e) = errors.into_error() {
                return Err(e);
            }
            args.credential_types = Some(types);
        }
        _ => {
            let list = ARGUMENTS
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let suggestion = RENAMES
                .iter()
                .find(|(from, _)| *from == key)
                .map(|(_, to)| *to)
                .or_else(|| crate::util::closest(key, ARGUMENTS));
            match suggestion {
                Some(s) => {
                    bail_spanned!(meta.path() => "unknown argument `{key}`; did you mean `{s}`? (expected one of: {list})")
                }
                None => {
                    bail_spanned!(meta.path() => "unknown argument `{key}`; expected one of: {list}")
                }
            }
        }
    }
    Ok(())
}

fn names() -> Vec<&'static str> {
    CREDENTIAL_TYPES.iter().map(|(n, _)| *n).collect()
}

fn string_value(meta: &Meta, key: &str, what: &str) -> syn::Result<LitStr> {
    let Meta::NameValue(nv) = meta else {
        bail_spanned!(meta => "`{key}` takes a string: {what}");
    };
    match &nv.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => bail_spanned!(other => "`{key}` expects a string literal: {what}"),
    }
}

/// Whether `attr` is our helper attribute `#[constructor]`.
pub(crate) fn is_constructor_attr(attr: &syn::Attribute) -> bool {
    attr.path().is_ident(CONSTRUCTOR_ATTR)
}

/// Checks the helper attribute's shape: `#[constructor]` exactly.
pub(crate) fn check_constructor_attr(attr: &syn::Attribute) -> syn::Result<()> {
    match &attr.meta {
        Meta::Path(_) => Ok(()),
        other => bail_spanned!(other => "`#[constructor]` takes no arguments"),
    }
}
