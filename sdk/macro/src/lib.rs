//! The `#[fetch]` and `#[scheduled]` attributes of the guest SDK: turn an
//! `async fn(Request, Env, Context) -> Result<Response>` into the component's
//! `wasi:http/incoming-handler` export, and an
//! `async fn(ScheduledEvent, Env, Context) -> Result<()>` into its
//! `platform:worker/scheduled` export. Use them as `#[sdk::fetch]` and
//! `#[sdk::scheduled]`; everything they expand to lives in `sdk::__private`, so a script
//! depends on `sdk` alone.

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

/// Exports an `async fn(ScheduledEvent, Env, Context) -> Result<()>` as the script's
/// `platform:worker/scheduled` handler. See `sdk::scheduled` for the full description.
#[proc_macro_attribute]
pub fn scheduled(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return quote_spanned! { attr.span()=>
            compile_error!("#[sdk::scheduled] takes no arguments");
        }
        .into();
    }
    let handler = parse_macro_input!(item as ItemFn);
    let name = &handler.sig.ident;
    if handler.sig.asyncness.is_none() {
        return quote_spanned! { handler.sig.fn_token.span()=>
            compile_error!("#[sdk::scheduled] needs an `async fn(ScheduledEvent, Env, Context) -> Result<()>`");
        }
        .into();
    }
    quote! {
        #handler

        #[doc(hidden)]
        struct __SdkScheduledHandler;

        impl ::sdk::__private::scheduled::exports::platform::worker::scheduled::Guest
            for __SdkScheduledHandler
        {
            fn handle(
                event: ::sdk::__private::scheduled::exports::platform::worker::scheduled::ScheduledEvent,
            ) -> ::core::result::Result<(), ::std::string::String> {
                ::sdk::__private::run_scheduled(event, #name)
            }
        }

        ::sdk::__private::scheduled::export_scheduled!(
            __SdkScheduledHandler with_types_in ::sdk::__private::scheduled
        );
    }
    .into()
}

/// Exports an `async fn(MessageBatch, Env, Context) -> Result<()>` as the script's
/// `platform:worker/queue-handler`. See `sdk::queue` for the full description.
#[proc_macro_attribute]
pub fn queue(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return quote_spanned! { attr.span()=>
            compile_error!("#[sdk::queue] takes no arguments");
        }
        .into();
    }
    let handler = parse_macro_input!(item as ItemFn);
    let name = &handler.sig.ident;
    if handler.sig.asyncness.is_none() {
        return quote_spanned! { handler.sig.fn_token.span()=>
            compile_error!("#[sdk::queue] needs an `async fn(MessageBatch, Env, Context) -> Result<()>`");
        }
        .into();
    }
    quote! {
        #handler

        #[doc(hidden)]
        struct __SdkQueueHandler;

        impl ::sdk::__private::queue::exports::platform::worker::queue_handler::Guest
            for __SdkQueueHandler
        {
            fn handle(
                __queue: ::std::string::String,
                __batch: ::std::vec::Vec<::sdk::__private::queue::exports::platform::worker::queue_handler::Message>,
            ) -> ::std::vec::Vec<::sdk::__private::queue::exports::platform::worker::queue_handler::Outcome> {
                ::sdk::__private::run_queue(__queue, __batch, #name)
            }
        }

        ::sdk::__private::queue::export_queue!(
            __SdkQueueHandler with_types_in ::sdk::__private::queue
        );
    }
    .into()
}
