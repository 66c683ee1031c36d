//! `mixio run` and `mixio call`. Errors print as one line, `error: ...`; a file that cannot be
//! loaded or an invalid argument exits with status 2, a guest failure with status 1.

use std::future::IntoFuture;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mixio_host::{Component, Error, Host, Request, Response};

/// A WebAssembly host where synchronous guest code does asynchronous I/O.
#[derive(Parser)]
#[command(name = "mixio", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command component (one that exports `wasi:cli/run`, e.g. a Rust `fn main()`
    /// built for wasm32-wasip2); exits with its exit status.
    Run {
        /// The component file (`.wasm`).
        component: PathBuf,
        /// Arguments passed to the guest.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Call a handler component once and print its response.
    Call {
        /// The component file (`.wasm`).
        component: PathBuf,
        /// The request method.
        #[arg(short = 'X', long, default_value = "GET")]
        method: String,
        /// The request path with its query string.
        #[arg(short, long, default_value = "/")]
        path: String,
        /// A request header, `name: value`; repeat for more.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The request body; `@FILE` reads it from FILE.
        #[arg(short, long)]
        body: Option<String>,
        /// Deadline for the call, in seconds (0 for none).
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
}

/// Exit status for invalid input: bad arguments, unreadable or invalid component files.
const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { USAGE } else { 0 });
        }
    };
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.downcast_ref::<Error>().is_some_and(|e| {
                matches!(e, Error::Load { .. } | Error::Unsupported { .. } | Error::Config(_))
            }) || e.downcast_ref::<UsageError>().is_some();
            ExitCode::from(if usage { USAGE } else { 1 })
        }
    }
}

/// Logs go to stderr; `RUST_LOG` selects them. By default the guest's own lines (its log calls,
/// stdout and stderr) are shown, and of the host's only errors, since failures of the call are
/// printed as the command's error anyway.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,mixio::guest=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Run { component, args } => {
            let component = load(&component)?;
            let code = runtime.block_on(component.run(args).inherit_stdio().into_future())?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Call { component, method, path, headers, body, timeout } => {
            let request = request(method, path, &headers, body)?;
            let timeout = match timeout {
                0.0 => None,
                t if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
                t => {
                    return Err(UsageError(format!(
                        "--timeout must be a positive number of seconds, got {t}"
                    ))
                    .into());
                }
            };
            let component = load(&component)?;
            let response = runtime.block_on(component.call(request).timeout(timeout).into_future())?;
            print_response(&response);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(path: &PathBuf) -> anyhow::Result<Component> {
    let host = Host::new()?;
    Ok(host.load(path)?)
}

fn request(
    method: String,
    path: String,
    headers: &[String],
    body: Option<String>,
) -> anyhow::Result<Request> {
    if !path.starts_with('/') {
        return Err(UsageError(format!("--path must start with `/`, got `{path}`")).into());
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(UsageError(format!("--method must be a word like GET or POST, got `{method}`")).into());
    }
    let mut request = Request::new(method, path);
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(UsageError(format!("--header must look like `name: value`, got `{header}`")).into());
        };
        request = request.with_header(name.trim(), value.trim());
    }
    if let Some(body) = body {
        let bytes = match body.strip_prefix('@') {
            Some(file) => {
                std::fs::read(file).with_context(|| format!("cannot read the body from `{file}`"))?
            }
            None => body.into_bytes(),
        };
        request = request.with_body(bytes);
    }
    Ok(request)
}

fn print_response(response: &Response) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "HTTP/1.1 {} {}", response.status, reason(response.status));
    for (name, value) in &response.headers {
        let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(value));
    }
    let _ = writeln!(out);
    let _ = out.write_all(&response.body);
    let _ = out.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
