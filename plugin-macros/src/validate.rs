//! Phase 3: rules spanning several methods or methods and arguments.

use crate::attr::Args;
use crate::model::{Member, PluginModel, Protocol, Rpc};
use crate::util::Errors;

/// Checks the model against the arguments. Returns the indices of members that duplicate
/// an earlier one (the error path leaves them out of the re-emitted impl, so rustc does not
/// report them a second time).
pub(crate) fn validate(args: &Args, model: &PluginModel, errors: &mut Errors) -> Vec<syn::Ident> {
    let mut duplicates = Vec::new();
    let mut seen_rpcs: Vec<Rpc> = Vec::new();
    let mut seen_constructor: Option<&syn::Ident> = None;
    for member in &model.members {
        match member {
            Member::Rpc(m) => {
                if seen_rpcs.contains(&m.rpc) {
                    errors.push(syn::Error::new_spanned(
                        &m.ident,
                        format!(
                            "duplicate method `{}`: each plugin method may be defined once",
                            m.rpc.name()
                        ),
                    ));
                    duplicates.push(m.ident.clone());
                } else {
                    seen_rpcs.push(m.rpc);
                }
            }
            Member::Constructor(c) => {
                if let Some(first) = seen_constructor {
                    errors.push(syn::Error::new_spanned(
                        &c.ident,
                        format!(
                            "only one method may be the `#[constructor]`; `{first}` already is"
                        ),
                    ));
                } else {
                    seen_constructor = Some(&c.ident);
                }
            }
        }
    }

    let type_name = model.present(Rpc::TypeName);
    match (&args.name, type_name) {
        (Some(name), Some(method)) => errors.push(syn::Error::new_spanned(
            method,
            format!(
                "`type_name` conflicts with the `name = {:?}` argument: the type name is given twice; remove the method or the argument",
                name.value()
            ),
        )),
        (None, None) if !args.attempted.contains(&"name") => errors.push(syn::Error::new_spanned(
            &model.span_anchor,
            "this plugin has no type name: add `name = \"mydb\"` to `#[database_plugin(...)]`, or implement `async fn type_name(&self) -> Result<String>`",
        )),
        _ => {}
    }

    if model.protocol == Protocol::V4 {
        let why = match &model.witness {
            Some(w) => format!("this is a v4 plugin (it implements `{w}`)"),
            None => String::from("this is a v4 plugin"),
        };
        for (arg, what) in [
            (
                "credential_types",
                "the v4 protocol has no credential types (passwords only)",
            ),
            (
                "multiplexing",
                "the v4 protocol has no multiplexing (one instance serves the process)",
            ),
        ] {
            if let Some(span) = args.key_span(arg) {
                errors.push(syn::Error::new(
                    span,
                    format!("`{arg}` is a v5 argument, but {why}: {what}; remove it"),
                ));
            }
        }
    }

    for rpc in model.protocol.required() {
        if model.present(*rpc).is_none() {
            errors.push(syn::Error::new_spanned(
                &model.span_anchor,
                match model.protocol {
                    Protocol::V5 => format!(
                        "missing required method `{}`: add `{}` to this impl",
                        rpc.name(),
                        rpc.signature()
                    ),
                    Protocol::V4 => format!(
                        "missing required v4 method `{}`: add `{}` to this impl (the impl is a v4 plugin because it implements {})",
                        rpc.name(),
                        rpc.signature(),
                        model.witness.as_ref().map_or_else(|| String::from("v4 methods"), |w| format!("`{w}`"))
                    ),
                },
            ));
        }
    }
    duplicates
}
