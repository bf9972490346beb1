//! Phase 3: rules spanning several methods or methods and arguments.

use crate::attr::Args;
use crate::model::{Member, PluginModel, Rpc};
use crate::util::Errors;

/// The required v5 methods (besides the type name, which `name = "..."` may give).
const REQUIRED: &[Rpc] = &[Rpc::Initialize, Rpc::NewUser, Rpc::DeleteUser];

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

    for rpc in REQUIRED {
        if model.present(*rpc).is_none() {
            errors.push(syn::Error::new_spanned(
                &model.span_anchor,
                format!(
                    "missing required method `{}`: add `{}` to this impl",
                    rpc.name(),
                    rpc.signature()
                ),
            ));
        }
    }
    duplicates
}
