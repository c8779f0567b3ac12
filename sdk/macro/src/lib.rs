//! The `#[fetch]` attribute of the guest SDK: turns an
//! `async fn(Request, Env, Context) -> Result<Response>` into the component's
//! `wasi:http/incoming-handler` export. Use it as `#[sdk::fetch]`; everything it expands
//! to lives in `sdk::__private`, so a script depends on `sdk` alone.

use proc_macro::TokenStream;
use quote::{quote, quote_spanned};
use syn::{ItemFn, parse_macro_input, spanned::Spanned as _};

/// Exports an `async fn(Request, Env, Context) -> Result<Response>` as the script's
/// `wasi:http/incoming-handler`. See `sdk::fetch` for the full description.
#[proc_macro_attribute]
pub fn fetch(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return quote_spanned! { attr.span()=>
            compile_error!("#[sdk::fetch] takes no arguments");
        }
        .into();
    }
    let handler = parse_macro_input!(item as ItemFn);
    let name = &handler.sig.ident;
    if handler.sig.asyncness.is_none() {
        return quote_spanned! { handler.sig.fn_token.span()=>
            compile_error!("#[sdk::fetch] needs an `async fn(Request, Env, Context) -> Result<Response>`");
        }
        .into();
    }
    if name == "main" {
        return quote_spanned! { name.span()=>
            compile_error!("#[sdk::fetch] handler must not be called `main`; call it `fetch`");
        }
        .into();
    }

    quote! {
        #handler

        #[doc(hidden)]
        struct __SdkFetchHandler;

        impl ::sdk::__private::wasip2::exports::http::incoming_handler::Guest for __SdkFetchHandler {
            fn handle(
                request: ::sdk::__private::wasip2::http::types::IncomingRequest,
                response_out: ::sdk::__private::wasip2::http::types::ResponseOutparam,
            ) {
                ::sdk::__private::serve(request, response_out, #name);
            }
        }

        ::sdk::__private::wasip2::http::proxy::export!(
            __SdkFetchHandler with_types_in ::sdk::__private::wasip2
        );

        // A `bin` crate needs a `main`; components are entered through `handle` instead.
        // In a `cdylib` crate this is an ordinary unused function.
        #[allow(dead_code)]
        fn main() {
            unreachable!("a script component is entered through wasi:http/incoming-handler")
        }
    }
    .into()
}
