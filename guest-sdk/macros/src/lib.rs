//! The `#[mixio::handler]` attribute. Use it through the `mixio` crate, which re-exports it and
//! documents it; this crate only holds the procedural macro.
//!
//! It reads no more of the function than its name (so it needs neither `syn` nor `quote`) and
//! leaves type checking to the compiler: the generated code calls the function with a
//! `mixio::http::Request` and accepts any return type that implements
//! `mixio::http::IntoResponse`.

use proc_macro::{Delimiter, TokenStream, TokenTree};

/// Declares the function that handles requests; see `mixio::handler`.
#[proc_macro_attribute]
pub fn handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("`#[mixio::handler]` takes no arguments");
    }
    let name = match handler_name(item.clone()) {
        Ok(name) => name,
        Err(msg) => return compile_error(msg),
    };
    let glue = format!(
        "#[cfg(target_arch = \"wasm32\")]
        const _: () = {{
            struct __MixioHandler;
            impl ::mixio::__private::Guest for __MixioHandler {{
                fn handle(request: ::mixio::__private::WitRequest) -> ::mixio::__private::WitResponse {{
                    ::mixio::__private::serve(request, {name})
                }}
            }}
            ::mixio::__private::export_handler!(__MixioHandler);
        }};
        /// The handler as a plain function, for hosts that link this guest natively.
        #[doc(hidden)]
        pub fn mixio_handler(request: ::mixio::http::Request) -> ::mixio::http::Response {{
            ::mixio::http::IntoResponse::into_response({name}(request))
        }}"
    );
    let mut out = item;
    out.extend(glue.parse::<TokenStream>().expect("generated handler glue is valid Rust"));
    out
}

/// Finds `fn <name>` among the item's top-level tokens, refusing `async fn`.
fn handler_name(item: TokenStream) -> Result<String, &'static str> {
    let mut after_fn = false;
    for tree in item {
        match tree {
            TokenTree::Ident(ident) => {
                let word = ident.to_string();
                if after_fn {
                    return Ok(word);
                }
                match word.as_str() {
                    "fn" => after_fn = true,
                    "async" => {
                        return Err("a mixio handler is a plain synchronous `fn`: remove `async` \
                                    (I/O calls suspend the guest without it)");
                    }
                    _ => {}
                }
            }
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => break,
            _ => {}
        }
    }
    Err("`#[mixio::handler]` goes on a function: `fn handle(req: Request) -> Response`")
}

fn compile_error(msg: &str) -> TokenStream {
    format!("::core::compile_error!({msg:?});").parse().expect("compile_error! invocation is valid Rust")
}
