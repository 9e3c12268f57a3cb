//! `#[testkit::test]`: keeps the function as written and registers it with testkit's runner.
//!
//! ```ignore
//! #[testkit::test]
//! fn plain() { assert_eq!(1 + 1, 2); }
//!
//! #[testkit::test]
//! async fn needs_root() -> testkit::Outcome {
//!     testkit::need::root("creates a network namespace")?;
//!     Ok(())
//! }
//!
//! #[testkit::test(slow = "boots a VM; run with make test-lab")]
//! fn boots_a_vm() {}
//! ```
//!
//! Options: `slow = "why"` puts the test in the slow tier (run with `--ignored` or
//! `--include-ignored`); `current_thread` runs an `async fn` on a current-thread runtime
//! instead of the default two-worker one.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, ItemFn, LitStr};

/// Registers the function as a test; see the crate documentation.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut slow: Option<LitStr> = None;
    let mut current_thread = false;
    let options = syn::meta::parser(|meta| {
        if meta.path.is_ident("slow") {
            slow = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("current_thread") {
            current_thread = true;
            Ok(())
        } else {
            Err(meta.error("unknown option: expected `slow = \"why\"` or `current_thread`"))
        }
    });
    parse_macro_input!(attr with options);
    let function = parse_macro_input!(item as ItemFn);
    if !function.sig.inputs.is_empty() || !function.sig.generics.params.is_empty() {
        return syn::Error::new_spanned(&function.sig, "a test function takes no arguments and no generics")
            .to_compile_error()
            .into();
    }
    if current_thread && function.sig.asyncness.is_none() {
        return syn::Error::new_spanned(&function.sig, "`current_thread` is for async test functions")
            .to_compile_error()
            .into();
    }
    let name = &function.sig.ident;
    let call = if function.sig.asyncness.is_some() {
        quote!(::testkit::block_on(#name(), #current_thread))
    } else {
        quote!(#name())
    };
    let slow = match slow {
        Some(why) => quote!(::core::option::Option::Some(#why)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #function

        ::testkit::inventory::submit! {
            ::testkit::Test {
                module: ::core::module_path!(),
                name: ::core::stringify!(#name),
                slow: #slow,
                run: || ::testkit::IntoOutcome::into_outcome(#call),
            }
        }
    }
    .into()
}
