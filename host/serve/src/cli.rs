//! `mixio run`, `mixio call` and `mixio serve`. Errors print as one line, `error: ...`; a file that cannot be
//! loaded or an invalid argument exits with status 2, a guest failure with status 1.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mixio_host::{Component, Error, Host, IoMode, Request, Response};
use mixio_serve::{AdminServer, App, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, MANIFEST_FILE, Server};

/// A WebAssembly host where synchronous guest code does asynchronous I/O.
#[derive(Parser)]
#[command(name = "mixio", version, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command component (one that exports `wasi:cli/run`, e.g. a Rust `fn main()`
    /// built for wasm32-wasip2); exits with its exit status.
    Run {
        /// How the guest's I/O runs: `async` (fibers; the default), `blocking` (a pool of 64
        /// threads) or `blocking:THREADS`.
        #[arg(long, value_parser = IoMode::parse)]
        io: Option<IoMode>,
        /// The component file (`.wasm`).
        component: PathBuf,
        /// Arguments passed to the guest.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Call a handler component once and print its response.
    Call {
        /// How the guest's I/O runs: `async` (fibers; the default), `blocking` (a pool of 64
        /// threads) or `blocking:THREADS`.
        #[arg(long, value_parser = IoMode::parse)]
        io: Option<IoMode>,
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
        /// Deadline for the call: seconds, or a duration like `500ms` or `2m`; 0 for none.
        #[arg(long, default_value = "30s", value_parser = call_timeout)]
        timeout: Duration,
    },
    /// Serve HTTP with an app's components: each request runs in a fresh instance of the
    /// component its route names. Prints the URL when ready; Ctrl-C or SIGTERM drains the
    /// requests in flight and exits.
    Serve {
        /// The app's manifest (`mixio.toml`), a directory holding one, or a single component
        /// (`.wasm`) to serve on every path.
        #[arg(default_value = MANIFEST_FILE)]
        target: PathBuf,
        /// The address to listen on (port 0: any free port).
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Run each component's `build` command first (installing the wasm32-wasip2 Rust
        /// target if it is missing).
        #[arg(long)]
        build: bool,
        /// How long to let requests in flight finish on shutdown: seconds, or a duration like
        /// `500ms` or `1m`.
        #[arg(long, default_value = "10s", value_parser = drain_duration)]
        drain: Duration,
        /// Overrides the manifest's `io`: `async`, `blocking` or `blocking:THREADS`.
        #[arg(long, value_parser = IoMode::parse)]
        io: Option<IoMode>,
        /// Also listen on this address for `/healthz`, `/readyz` and `/metrics` (Prometheus);
        /// without a value, 127.0.0.1:9090. Bound before the components load.
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_ADMIN_LISTEN)]
        admin_listen: Option<SocketAddr>,
        /// Log lines as `text` or as `json` (one object per line).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        #[command(flatten)]
        limits: LimitFlags,
    },
}

/// The server's bounds on clients, overriding the manifest's `[server]` table (see
/// docs/manifest.md or the `mixio_serve::ServerLimits` documentation for their defaults).
#[derive(clap::Args)]
struct LimitFlags {
    /// Connections open at once (default: half the file-descriptor limit, at most 65536).
    #[arg(long, value_name = "N")]
    max_connections: Option<String>,
    /// Longest a connection may wait for a request's headers, e.g. `10s`.
    #[arg(long, value_name = "DURATION")]
    header_timeout: Option<String>,
    /// Longest a request body may go without a byte arriving (then `408`), e.g. `10s`.
    #[arg(long, value_name = "DURATION")]
    body_idle_timeout: Option<String>,
    /// Once a response waits for the client, how long it has to take 16 KiB (then it is cut).
    #[arg(long, value_name = "DURATION")]
    write_idle_timeout: Option<String>,
    /// Longest a websocket client may send nothing, pongs included (it is pinged at half).
    #[arg(long, value_name = "DURATION")]
    websocket_idle_timeout: Option<String>,
    /// Bytes of request bodies held in memory at once, all requests together, e.g. `256MiB`.
    #[arg(long, value_name = "SIZE")]
    max_body_memory: Option<String>,
}

impl LimitFlags {
    /// Applies the flags given to `limits`; an invalid value is an error naming its flag.
    fn apply(self, limits: &mut mixio_serve::ServerLimits) -> anyhow::Result<()> {
        let flags = [
            ("max_connections", self.max_connections),
            ("header_timeout", self.header_timeout),
            ("body_idle_timeout", self.body_idle_timeout),
            ("write_idle_timeout", self.write_idle_timeout),
            ("websocket_idle_timeout", self.websocket_idle_timeout),
            ("max_body_memory", self.max_body_memory),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                limits
                    .set(key, &value)
                    .map_err(|e| UsageError(format!("--{}: {e}", key.replace('_', "-"))))?;
            }
        }
        Ok(())
    }
}

/// `--drain`: up to an hour; 0 for none.
fn drain_duration(text: &str) -> Result<Duration, String> {
    mixio_serve::units::duration(text, &(Duration::ZERO..=Duration::from_secs(3600)))
}

/// `mixio call --timeout`: up to a day; 0 for no deadline.
fn call_timeout(text: &str) -> Result<Duration, String> {
    mixio_serve::units::duration(text, &(Duration::ZERO..=Duration::from_secs(24 * 3600)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Exit status for invalid input: bad arguments, unreadable or invalid component files.
const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line, naming the flag: clap's first paragraph, without its usage and tips.
            let text = e.render().to_string();
            let words: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            eprintln!("{}", words.join(" "));
            return ExitCode::from(USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let format = match cli.command {
        Command::Serve { log_format, .. } => log_format,
        _ => LogFormat::Text,
    };
    init_logging(
        match cli.command {
            // A server reports what it does: start-up, refused requests, failing guests.
            Command::Serve { .. } => "warn,mixio=info,mixio_host=info,mixio_serve=info,mixio::guest=info",
            _ => "error,mixio::guest=info",
        },
        format,
    );
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

/// Logs go to stderr; `RUST_LOG` selects them. By default `run` and `call` show the guest's own
/// lines (its log calls, stdout and stderr) and of the host's only errors, since failures of
/// the call are printed as the command's error anyway; `serve` shows the host's too.
fn init_logging(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Run { io, component, args } => {
            let component = load(&component, io)?;
            let code = runtime.block_on(component.run(args).inherit_stdio().into_future())?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Call { io, component, method, path, headers, body, timeout } => {
            let request = request(method, path, &headers, body)?;
            let timeout = (!timeout.is_zero()).then_some(timeout);
            let component = load(&component, io)?;
            let response = runtime.block_on(component.call(request).timeout(timeout).into_future())?;
            print_response(&response);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { target, listen, build, drain, io, admin_listen, log_format: _, limits } => {
            let mut app = app(&target)?;
            if let Some(io) = io {
                app.io = io;
            }
            limits.apply(&mut app.server)?;
            if build {
                app.build()?;
            }
            // As servers do: the default connection cap follows the raised limit.
            if let Some(limit) = mixio_serve::raise_fd_limit() {
                tracing::debug!("file-descriptor limit: {limit}");
            }
            runtime.block_on(serve(app, listen, admin_listen, drain))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The app at `target`: a manifest, a directory with one, or a single component.
fn app(target: &Path) -> anyhow::Result<App> {
    if target.extension().is_some_and(|e| e == "wasm") {
        return Ok(App::single(target));
    }
    let manifest = if target.is_dir() { target.join(MANIFEST_FILE) } else { target.to_path_buf() };
    if !manifest.exists() {
        return Err(UsageError(format!(
            "no manifest at `{}`: give a `{MANIFEST_FILE}`, a directory holding one, or a `.wasm` component",
            manifest.display()
        ))
        .into());
    }
    Ok(App::from_manifest(&manifest)?)
}

async fn serve(
    app: App,
    listen: SocketAddr,
    admin: Option<SocketAddr>,
    drain: Duration,
) -> anyhow::Result<()> {
    use std::io::Write;
    // The admin listener comes first: liveness holds while the components compile.
    let admin = match admin {
        Some(addr) => {
            let admin = AdminServer::bind(addr).await?;
            println!("mixio: admin (/healthz, /readyz, /metrics) on http://{}", admin.local_addr());
            let _ = std::io::stdout().flush();
            Some((admin.watcher(), tokio::spawn(admin.run())))
        }
        None => None,
    };
    let server = Server::bind(app, listen).await?;
    if let Some((watcher, _)) = &admin {
        watcher.watch(&server);
    }
    println!("mixio: serving {} on {}", server.app_name(), server.url());
    let _ = std::io::stdout().flush();
    server.run(shutdown_signal(), drain).await;
    if let Some((_, task)) = admin {
        task.abort();
    }
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}

fn load(path: &PathBuf, io: Option<IoMode>) -> anyhow::Result<Component> {
    let host = Host::builder().io(io.unwrap_or(IoMode::Async)).build()?;
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
