//! Loads a handler component and calls it: `cargo run -p mixio-host --example embed -- hello.wasm`.

use mixio_host::{Host, Request};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path =
        std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: embed <component.wasm> [path]"))?;
    let uri = std::env::args().nth(2).unwrap_or_else(|| "/?name=ada".to_string());
    let host = Host::new()?;
    let component = host.load(&path)?;
    let response = component.call(Request::get(uri)).await?;
    println!("{} {}", response.status, response.text());
    Ok(())
}
