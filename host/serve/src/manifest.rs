//! `mixio.toml`: the app a server runs. Parsed strictly (an unknown key is an error), then
//! validated; every error names the file, the key and the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::limits::ServerLimits;
use super::router::Route;
use crate::units;
use mixio_host::Error;

/// The default name of the manifest file.
pub const MANIFEST_FILE: &str = "mixio.toml";

/// An application: its backends and its components, from a `mixio.toml` or a single `.wasm`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct App {
    /// The app's name (log lines, the ready message).
    pub name: String,
    /// The directory relative paths were resolved against (the manifest's directory).
    pub root: PathBuf,
    /// Where embedded backends keep their files (`data_dir`, default `.mixio`).
    pub data_dir: PathBuf,
    /// Files served for `GET` requests that no route takes (`static_dir`).
    pub static_dir: Option<PathBuf>,
    /// Instances that may exist at once in the whole server, if the manifest sets it; see
    /// [`App::pool_size`] for the default.
    pub max_instances: Option<u32>,
    /// How guests are called (`io`: `"async"`, `"blocking"` or `"blocking:THREADS"`).
    pub io: mixio_host::IoMode,
    /// The pub/sub backend URL.
    pub pubsub: String,
    /// Key-value stores, name → URL.
    pub kv: BTreeMap<String, String>,
    /// SQL databases, name → URL.
    pub sql: BTreeMap<String, String>,
    /// The components, in the manifest's order.
    pub components: Vec<ComponentSpec>,
    /// The server-wide bounds on what clients can make it hold (`[server]`).
    pub server: ServerLimits,
    /// Where the app came from, for errors: the manifest's path, or the component's.
    pub file: String,
}

/// One component of an [`App`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ComponentSpec {
    /// Its name (the key under `[components]`).
    pub name: String,
    /// The `.wasm` file.
    pub source: PathBuf,
    /// The shell command that builds `source`, run in the manifest's directory by `--build`.
    pub build: Option<String>,
    /// The requests it serves.
    pub routes: Vec<Route>,
    /// What it may use. `${self}` in config values and allowed hosts is the server's URL.
    pub grants: mixio_host::Grants,
    /// Its limits.
    pub limits: ComponentLimits,
    /// Whether its instances serve more than one request, and until when (`reuse`); `None`
    /// (the default): a fresh instance per request.
    pub reuse: Option<mixio_host::Reuse>,
    /// The native build of the component, linked into this binary, which runs instead of
    /// `source` (see [`App::native`]).
    pub native: Option<mixio_host::NativeHandler>,
}

/// Per-component limits of a server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ComponentLimits {
    /// Deadline of one request, instantiation included. Default 30 s.
    pub timeout: Duration,
    /// Linear memory of one instance. Default: the server's (128 MiB).
    pub max_memory: Option<usize>,
    /// Largest request body accepted (larger: `413`). Default 10 MiB.
    pub max_request_body: u64,
    /// Largest response body sent (larger: `500`). Default 10 MiB.
    pub max_response_body: u64,
    /// Instances of this component running at once (most of them are usually suspended on
    /// I/O, costing a few pages each). Default 1000; the whole server has `max_instances`.
    pub max_concurrent: usize,
    /// Requests waiting for an instance beyond `max_concurrent`; past it, `503`. Default 1000.
    pub queue: usize,
}

impl Default for ComponentLimits {
    fn default() -> ComponentLimits {
        ComponentLimits {
            timeout: Duration::from_secs(30),
            max_memory: None,
            max_request_body: 10 << 20,
            max_response_body: 10 << 20,
            max_concurrent: 1000,
            queue: 1000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    data_dir: Option<String>,
    static_dir: Option<String>,
    max_instances: Option<u32>,
    io: Option<String>,
    #[serde(default)]
    backends: RawBackends,
    #[serde(default)]
    server: BTreeMap<String, toml::Value>,
    #[serde(default)]
    components: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBackends {
    pubsub: Option<String>,
    #[serde(default)]
    kv: BTreeMap<String, String>,
    #[serde(default)]
    sql: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: String,
    build: Option<String>,
    routes: Vec<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    kv: Vec<String>,
    #[serde(default)]
    sql: Vec<String>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    websocket: Vec<String>,
    namespace: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    limits: RawLimits,
    reuse: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReuse {
    requests: Option<toml::Value>,
    idle: Option<toml::Value>,
    max_memory: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout: Option<toml::Value>,
    max_memory: Option<toml::Value>,
    max_request_body: Option<toml::Value>,
    max_response_body: Option<toml::Value>,
    max_concurrent: Option<toml::Value>,
    queue: Option<toml::Value>,
}

/// A setting's value as the text [`units`] parses: a number (seconds, bytes, a count) or a
/// string with a unit (`"64MiB"`, `"500ms"`).
fn setting_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Float(x) => Ok(x.to_string()),
        other => {
            Err(format!("expected a number or a string like \"10s\" or \"64MiB\", got {}", other.type_str()))
        }
    }
}

/// Deadlines of one request: 1 ms to a day.
const TIMEOUTS: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(24 * 3600);
/// Linear memory of one instance: one 64 KiB page to the 4 GiB a 32-bit memory can address.
const MEMORY: std::ops::RangeInclusive<u64> = (64 << 10)..=(4 << 30);
/// Request and response bodies: none to 1 TiB (a request body is held in memory, within
/// `server.max_body_memory`).
const BODIES: std::ops::RangeInclusive<u64> = 0..=(1 << 40);
/// Instances of one component running, and requests waiting for one.
const COUNTS: std::ops::RangeInclusive<u64> = 1..=1_000_000;

impl App {
    /// Reads and validates the manifest at `path`.
    pub fn from_manifest(path: &Path) -> Result<App, Error> {
        mixio_host::regular_file(path)
            .map_err(|e| Error::Config(format!("cannot read `{}`: {e}", path.display())))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read `{}`: {e}", path.display())))?;
        let root = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
        App::parse(&text, &path.display().to_string(), &root, |k| std::env::var(k).ok())
    }

    /// Validates manifest `text` as the manifest of directory `root` (relative paths resolve
    /// against it); the environment overrides apply as in [`App::from_manifest`].
    ///
    /// ```
    /// # use mixio_serve::App;
    /// let error = App::from_toml("name = \"shop\"\n[components.web]\nroutes = [\"/\"]\n", ".".as_ref())
    ///     .err()
    ///     .unwrap();
    /// assert!(error.to_string().contains("source"), "{error}");
    /// ```
    pub fn from_toml(text: &str, root: &Path) -> Result<App, Error> {
        App::parse(text, MANIFEST_FILE, root, |k| std::env::var(k).ok())
    }

    /// An app of one component serving every path, with no manifest: it is granted the
    /// in-memory key-value store `default` and every websocket channel, nothing else.
    pub fn single(wasm: &Path) -> App {
        let name = wasm.file_stem().map_or_else(|| "app".into(), |s| s.to_string_lossy().into_owned());
        let grants = mixio_host::Grants::new().kv("default").channel("*");
        App {
            name: name.clone(),
            root: PathBuf::from("."),
            data_dir: PathBuf::from(".mixio"),
            static_dir: None,
            max_instances: None,
            io: mixio_host::IoMode::Async,
            pubsub: "memory".into(),
            kv: [("default".to_string(), "memory".to_string())].into(),
            sql: BTreeMap::new(),
            components: vec![ComponentSpec {
                name,
                source: wasm.to_path_buf(),
                build: None,
                routes: vec![Route::parse("/*").expect("a valid route")],
                grants,
                limits: ComponentLimits::default(),
                reuse: None,
                native: None,
            }],
            server: ServerLimits::default(),
            file: wasm.display().to_string(),
        }
    }

    /// Serves component `name` with its native build, linked into this binary (its crate's
    /// `mixio_handler`), instead of its `.wasm`: same routes, grants and deadline; no sandbox.
    pub fn native(mut self, name: &str, handler: mixio_host::NativeHandler) -> Result<App, Error> {
        let component = self.components.iter_mut().find(|c| c.name == name);
        let Some(component) = component else {
            return Err(Error::Config(format!("the app has no component `{name}` to run natively")));
        };
        component.native = Some(handler);
        Ok(self)
    }

    /// Checks what may have changed since parsing (the command line's flags, an embedder's
    /// fields): the `[server]` settings, each component's limits, and that each component's
    /// largest request body fits in `server.max_body_memory` (a body is read whole before the
    /// component runs).
    pub fn check(&self) -> Result<(), Error> {
        let file = &self.file;
        self.server.check().map_err(|e| Error::Config(format!("{file}: `server`: {e}")))?;
        for c in &self.components {
            let key = |field: &str| format!("components.{}.limits.{field}", c.name);
            let l = &c.limits;
            let counts = [("max_concurrent", l.max_concurrent as u64, 1), ("queue", l.queue as u64, 0)];
            for (field, n, least) in counts {
                units::in_range(n, &(least..=*COUNTS.end()), u64::to_string)
                    .map_err(|e| Error::Config(format!("{file}: `{}`: {n} is {e}", key(field))))?;
            }
            if l.timeout.is_zero() {
                return Err(Error::Config(format!("{file}: `{}`: must be more than zero", key("timeout"))));
            }
            if l.max_request_body > self.server.max_body_memory {
                return Err(Error::Config(format!(
                    "{file}: `{}`: {} bytes is more than the server's `max_body_memory` ({} bytes; \
                     `[server] max_body_memory` or `--max-body-memory`), so such a body could never be \
                     taken: raise that, or lower this",
                    key("max_request_body"),
                    l.max_request_body,
                    self.server.max_body_memory
                )));
            }
        }
        Ok(())
    }

    /// The size of the instance pool, for the app's final `io` (the command line may change
    /// it after parsing): `max_instances`, by default the components' `max_concurrent` added
    /// up (in blocking mode, the thread count), so that every request a component admits
    /// finds an instance. A `max_instances` below that is an error.
    /// The pool, with the largest memory limit of the components, must fit the address space.
    pub fn pool_size(&self) -> Result<u32, Error> {
        let needed = match self.io {
            mixio_host::IoMode::Async => {
                self.components.iter().fold(0, |n: usize, c| n.saturating_add(c.limits.max_concurrent))
            }
            // An instance exists only while a thread runs it, and until that thread lets go
            // of it: a call that timed out has left admission, but its thread drops the
            // instance only at the guest's next import or epoch tick.
            mixio_host::IoMode::Blocking { threads } => threads,
        };
        let needed = u32::try_from(needed).unwrap_or(u32::MAX);
        let file = &self.file;
        let pool = match self.max_instances {
            None => needed,
            Some(n) if n < needed => {
                return Err(Error::Config(format!(
                    "{file}: `max_instances`: {n} is fewer than the instances the components may run at \
                     once ({needed}, their `limits.max_concurrent` added up, in {} mode): raise it, or \
                     lower those",
                    self.io
                )));
            }
            Some(n) => n,
        };
        let largest = self
            .components
            .iter()
            .filter(|c| c.limits.max_memory.is_some())
            .max_by_key(|c| c.limits.max_memory);
        let max_memory = largest
            .and_then(|c| c.limits.max_memory)
            .unwrap_or(0)
            .max(mixio_host::Limits::default().max_memory);
        let mut limits = mixio_host::Limits::default();
        (limits.max_instances, limits.max_memory) = (pool, max_memory);
        limits.check_address_space().map_err(|e| {
            let memory = match largest {
                Some(c) if c.limits.max_memory == Some(max_memory) => {
                    format!("`components.{}.limits.max_memory`", c.name)
                }
                _ => "the default `max_memory`".to_string(),
            };
            Error::Config(format!(
                "{file}: `max_instances` (or the components' `max_concurrent`) with {memory}: {e}"
            ))
        })?;
        Ok(pool)
    }

    /// Parses manifest `text`; `file` names it in errors, relative paths are resolved
    /// against `root`, and `env` gives the environment overrides of backend URLs.
    pub(crate) fn parse(
        text: &str,
        file: &str,
        root: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<App, Error> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| Error::Config(toml_error(file, text, &e)))?;
        let bad = |key: &str, problem: String| Error::Config(format!("{file}: `{key}`: {problem}"));

        if raw.name.trim().is_empty() {
            return Err(bad("name", "must not be empty".into()));
        }
        let data_dir = root.join(raw.data_dir.as_deref().unwrap_or(".mixio"));
        let static_dir = raw.static_dir.map(|d| root.join(d));
        if let Some(dir) = &static_dir
            && !dir.is_dir()
        {
            return Err(bad("static_dir", format!("`{}` is not a directory", dir.display())));
        }
        let io = match &raw.io {
            None => mixio_host::IoMode::Async,
            Some(io) => mixio_host::IoMode::parse(io).map_err(|e| bad("io", e))?,
        };

        // Backends: the embedded defaults, then the manifest, then the environment.
        let mut kv: BTreeMap<String, String> = [("default".to_string(), "memory".to_string())].into();
        kv.extend(raw.backends.kv);
        let mut sql: BTreeMap<String, String> = [("default".to_string(), "sqlite:app.db".to_string())].into();
        sql.extend(raw.backends.sql);
        for (kind, urls) in [("KV", &mut kv), ("SQL", &mut sql)] {
            for (name, url) in urls.iter_mut() {
                if let Some(value) = env(&env_name(kind, name)) {
                    *url = value;
                }
                if let Some(path) = url.strip_prefix("sqlite:") {
                    *url = format!("sqlite:{}", data_dir.join(path).display());
                }
            }
        }
        let pubsub = env("MIXIO_PUBSUB").or(raw.backends.pubsub).unwrap_or_else(|| "memory".into());

        if raw.components.is_empty() {
            return Err(bad(
                "components",
                "the app has no components: add a `[components.NAME]` table".into(),
            ));
        }
        let mut components = Vec::new();
        for (name, c) in raw.components {
            let key = |field: &str| format!("components.{name}.{field}");
            if c.routes.is_empty() {
                return Err(bad(&key("routes"), "must list at least one route, e.g. \"POST /order\"".into()));
            }
            let mut routes = Vec::new();
            for (i, route) in c.routes.iter().enumerate() {
                routes.push(Route::parse(route).map_err(|e| bad(&format!("{}[{i}]", key("routes")), e))?);
            }
            for store in &c.kv {
                if !kv.contains_key(store) {
                    return Err(bad(
                        &key("kv"),
                        format!("store `{store}` is not configured under `[backends.kv]`"),
                    ));
                }
            }
            for db in &c.sql {
                if !sql.contains_key(db) {
                    return Err(bad(
                        &key("sql"),
                        format!("database `{db}` is not configured under `[backends.sql]`"),
                    ));
                }
            }
            let source = root.join(&c.source);
            // A source not built yet is fine (`--build` makes it); one that is not a file is
            // refused now, before a read could block on it (a FIFO) or fail obscurely.
            if source.symlink_metadata().is_ok()
                && let Err(e) = mixio_host::regular_file(&source)
            {
                return Err(bad(&key("source"), format!("`{}`: {e}", source.display())));
            }
            let limits = limits(&c.limits, &|field, problem| bad(&key(&format!("limits.{field}")), problem))?;
            let reuse = match &c.reuse {
                None => None,
                Some(value) => reuse(value, &|field, problem| bad(&key(field), problem))?,
            };
            let mut grants = mixio_host::Grants::new();
            grants.allowed_hosts = c.allowed_hosts;
            grants.kv = c.kv;
            grants.sql = c.sql;
            grants.topics = c.topics;
            grants.channels = c.websocket;
            grants.namespace = c.namespace;
            grants.config = c.config;
            grants.environment = c.environment;
            components.push(ComponentSpec {
                source,
                build: c.build.filter(|b| !b.trim().is_empty()),
                name,
                routes,
                grants,
                limits,
                reuse,
                native: None,
            });
        }
        super::router::check_overlaps(&components).map_err(|e| Error::Config(format!("{file}: {e}")))?;
        if raw.max_instances == Some(0) {
            return Err(bad("max_instances", "must be at least 1".into()));
        }
        let mut server = ServerLimits::default();
        for (name, value) in &raw.server {
            let text = setting_text(value).map_err(|e| bad(&format!("server.{name}"), e))?;
            server.set(name, &text).map_err(|e| bad(&format!("server.{name}"), e))?;
        }

        Ok(App {
            name: raw.name,
            root: root.to_path_buf(),
            data_dir,
            static_dir,
            max_instances: raw.max_instances,
            io,
            pubsub,
            kv,
            sql,
            components,
            server,
            file: file.to_string(),
        })
    }

    /// Replaces `${self}` (the server's own URL) in every component's config values and
    /// allowed hosts.
    pub(crate) fn substitute_self(&mut self, url: &str) {
        for c in &mut self.components {
            for value in c.grants.config.values_mut().chain(c.grants.allowed_hosts.iter_mut()) {
                *value = value.replace("${self}", url);
            }
        }
    }
}

/// A TOML error in one line: the file, where, the table and the line it is in, and the
/// problem (`toml`'s own message draws the line over several).
fn toml_error(file: &str, text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end().replace('\n', "; ");
    let Some(at) = error.span().map(|span| span.start.min(text.len())) else {
        return format!("{file}: {message}");
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let source = text[start..].lines().next().unwrap_or_default().trim();
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|header| format!(" in `{header}`"))
        .unwrap_or_default();
    let shown: String = source.chars().take(80).collect();
    format!("{file}: line {line}{table}, `{shown}`: {message}")
}

/// The environment variable overriding backend `name` of `kind`: `MIXIO_SQL_DEFAULT`.
fn env_name(kind: &str, name: &str) -> String {
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("MIXIO_{kind}_{name}")
}

/// A component's `reuse`: `true` (the defaults), `false` (none), or a table of `requests`,
/// `idle` and `max_memory`.
fn reuse(
    value: &toml::Value,
    bad: &dyn Fn(&str, String) -> Error,
) -> Result<Option<mixio_host::Reuse>, Error> {
    let raw: RawReuse = match value {
        toml::Value::Boolean(false) => return Ok(None),
        toml::Value::Boolean(true) => RawReuse::default(),
        toml::Value::Table(_) => value.clone().try_into().map_err(|e: toml::de::Error| {
            bad("reuse", format!("{}; it takes `requests`, `idle` and `max_memory`", e.message().trim_end()))
        })?,
        _ => {
            return Err(bad(
                "reuse",
                "must be `true`, `false` or a table, e.g. `{ requests = 1000, idle = \"10s\" }`".into(),
            ));
        }
    };
    let text = |field: &str, value: &toml::Value| setting_text(value).map_err(|e| bad(field, e));
    let mut reuse = mixio_host::Reuse::new();
    if let Some(value) = &raw.requests {
        let n =
            units::count(&text("reuse.requests", value)?, &COUNTS).map_err(|e| bad("reuse.requests", e))?;
        // Within 1..=1,000,000: it fits a u32.
        reuse = reuse.requests(n as u32);
    }
    if let Some(value) = &raw.idle {
        reuse = reuse
            .idle(units::duration(&text("reuse.idle", value)?, &TIMEOUTS).map_err(|e| bad("reuse.idle", e))?);
    }
    if let Some(value) = &raw.max_memory {
        // At most 4 GiB: it fits a usize on the 64-bit targets mixio runs on.
        let bytes = units::size(&text("reuse.max_memory", value)?, &MEMORY)
            .map_err(|e| bad("reuse.max_memory", e))?;
        reuse = reuse.max_memory(bytes as usize);
    }
    Ok(Some(reuse))
}

fn limits(raw: &RawLimits, bad: &dyn Fn(&str, String) -> Error) -> Result<ComponentLimits, Error> {
    let d = ComponentLimits::default();
    let text = |field: &str, value: &toml::Value| setting_text(value).map_err(|e| bad(field, e));
    let size = |field: &str, value: &Option<toml::Value>, range, default: u64| match value {
        None => Ok(default),
        Some(value) => units::size(&text(field, value)?, range).map_err(|e| bad(field, e)),
    };
    let count = |field: &str, value: &Option<toml::Value>, default: usize| match value {
        None => Ok(default),
        // Within 1..=1,000,000: it fits a usize everywhere.
        Some(value) => Ok(units::count(&text(field, value)?, &COUNTS).map_err(|e| bad(field, e))? as usize),
    };
    let timeout = match &raw.timeout {
        None => d.timeout,
        Some(value) => units::duration(&text("timeout", value)?, &TIMEOUTS).map_err(|e| bad("timeout", e))?,
    };
    let max_memory = match &raw.max_memory {
        None => None,
        // At most 4 GiB: it fits a usize on the 64-bit targets mixio runs on.
        Some(_) => Some(size("max_memory", &raw.max_memory, &MEMORY, 0)? as usize),
    };
    Ok(ComponentLimits {
        timeout,
        max_memory,
        max_request_body: size("max_request_body", &raw.max_request_body, &BODIES, d.max_request_body)?,
        max_response_body: size("max_response_body", &raw.max_response_body, &BODIES, d.max_response_body)?,
        max_concurrent: count("max_concurrent", &raw.max_concurrent, d.max_concurrent)?,
        // A queue may be empty: past `max_concurrent`, `503` at once.
        queue: match &raw.queue {
            None => d.queue,
            Some(value) => units::count(&text("queue", value)?, &(0..=*COUNTS.end()))
                .map_err(|e| bad("queue", e))? as usize,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<App, String> {
        App::parse(text, "mixio.toml", Path::new("/app"), |_| None).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = r#"
        name = "shop"
        [components.web]
        source = "web.wasm"
        routes = ["GET /items", "POST /items/*"]
    "#;

    #[test]
    fn a_minimal_manifest_gets_the_embedded_defaults() {
        let app = parse(MINIMAL).unwrap();
        assert_eq!(app.name, "shop");
        assert_eq!(app.data_dir, Path::new("/app/.mixio"));
        assert_eq!(app.kv["default"], "memory");
        assert_eq!(app.sql["default"], "sqlite:/app/.mixio/app.db");
        assert_eq!(app.pubsub, "memory");
        let web = &app.components[0];
        assert_eq!(web.source, Path::new("/app/web.wasm"));
        assert_eq!(web.routes.len(), 2);
        assert_eq!(web.limits, ComponentLimits::default());
    }

    #[test]
    fn limits_take_units() {
        let app = parse(&format!(
            "{MINIMAL}\n[components.web.limits]\ntimeout = \"500ms\"\nmax_memory = \"64MiB\"\n\
             max_request_body = 1024\nmax_concurrent = 4\nqueue = 10\n"
        ))
        .unwrap();
        let l = &app.components[0].limits;
        assert_eq!(l.timeout, Duration::from_millis(500));
        assert_eq!(l.max_memory, Some(64 << 20));
        assert_eq!(l.max_request_body, 1024);
        assert_eq!((l.max_concurrent, l.queue), (4, 10));
    }

    #[test]
    fn reuse_is_off_unless_a_component_asks() {
        let reuse = |line: &str| parse(&format!("{MINIMAL}\n{line}")).unwrap().components[0].reuse;
        assert_eq!(parse(MINIMAL).unwrap().components[0].reuse, None);
        assert_eq!(reuse("reuse = false"), None);
        assert_eq!(reuse("reuse = true"), Some(mixio_host::Reuse::default()));
        let set = mixio_host::Reuse::new().requests(5).idle(Duration::from_secs(2)).max_memory(32 << 20);
        assert_eq!(reuse("reuse = { requests = 5, idle = \"2s\", max_memory = \"32MiB\" }"), Some(set));
    }

    /// The pool holds an instance for every request the components admit (a bench at 1,000
    /// connections on two components once found it short).
    #[test]
    fn the_pool_covers_every_components_max_concurrent() {
        let two = format!("{MINIMAL}\n[components.api]\nsource = \"a.wasm\"\nroutes = [\"GET /api\"]\n");
        assert_eq!(parse(&two).unwrap().pool_size().unwrap(), 2000);
        let mut blocking = parse(&format!("io = \"blocking:8\"\n{two}")).unwrap();
        assert_eq!(blocking.pool_size().unwrap(), 8);
        // Every thread may hold an instance, even with fewer admitted at once.
        let few = format!("io = \"blocking:8\"\n{MINIMAL}\nlimits = {{ max_concurrent = 2 }}\n");
        assert_eq!(parse(&few).unwrap().pool_size().unwrap(), 8);
        // `--io async` on that manifest: the pool follows the final mode.
        blocking.io = mixio_host::IoMode::Async;
        assert_eq!(blocking.pool_size().unwrap(), 2000);
        assert_eq!(parse(&format!("max_instances = 5000\n{two}")).unwrap().pool_size().unwrap(), 5000);
        let error =
            parse(&format!("max_instances = 1024\n{two}")).unwrap().pool_size().unwrap_err().to_string();
        assert!(error.contains("`max_instances`") && error.contains("2000"), "{error}");
    }

    #[test]
    fn the_environment_overrides_backends() {
        let env = |k: &str| (k == "MIXIO_SQL_DEFAULT").then(|| "postgres://u@h/db".to_string());
        let app = App::parse(MINIMAL, "mixio.toml", Path::new("/app"), env).unwrap();
        assert_eq!(app.sql["default"], "postgres://u@h/db");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            (format!("{MINIMAL}\nbogus = 1"), "bogus"),
            (MINIMAL.replace("routes", "rotues"), "rotues"),
            (MINIMAL.replace("\"GET /items\"", "\"GET items\""), "components.web.routes[0]"),
            (MINIMAL.replace("\"GET /items\"", "\"FETCH /items\""), "FETCH"),
            (
                format!("{MINIMAL}\n[components.web.limits]\ntimeout = \"5 parsecs\""),
                "components.web.limits.timeout",
            ),
            (
                format!("{MINIMAL}\n[components.web.limits]\nmax_memory = \"5XB\""),
                "components.web.limits.max_memory",
            ),
            (format!("{MINIMAL}\n[components.web.limits]\nmax_concurrent = 0"), "max_concurrent"),
            (format!("{MINIMAL}\nreuse = \"yes\""), "`components.web.reuse`: must be `true`"),
            (format!("{MINIMAL}\nreuse = {{ requests = 0 }}"), "`components.web.reuse.requests`"),
            (format!("{MINIMAL}\nreuse = {{ idle = \"forever\" }}"), "`components.web.reuse.idle`"),
            (format!("{MINIMAL}\nreuse = {{ max_memory = \"1B\" }}"), "`components.web.reuse.max_memory`"),
            (format!("{MINIMAL}\nreuse = {{ idel = \"1s\" }}"), "idel"),
            (MINIMAL.replace("routes = [", "sql = [\"orders\"]\nroutes = ["), "database `orders`"),
            ("name = \"x\"".to_string(), "no components"),
            (MINIMAL.replace("\"GET /items\"", "\"GET /ws/*\""), "/ws/"),
            (format!("io = \"sync\"\n{MINIMAL}"), "`io`"),
            (format!("max_instances = 0\n{MINIMAL}"), "`max_instances`"),
            (format!("{MINIMAL}\n[components.api]\nsource = \"a.wasm\"\nroutes = [\"GET /items\"]"), "both"),
        ];
        for (text, expected) in cases {
            let error = parse(&text).expect_err(&text);
            assert!(error.contains("mixio.toml"), "{error}");
            assert!(error.contains(expected), "`{expected}` not in: {error}");
        }
    }

    #[test]
    fn self_is_substituted() {
        let mut app = parse(&MINIMAL.replace(
            "routes = [",
            "allowed_hosts = [\"${self}\"]\nconfig = { kitchen = \"${self}/kitchen\" }\nroutes = [",
        ))
        .unwrap();
        app.substitute_self("http://127.0.0.1:4000");
        let grants = &app.components[0].grants;
        assert_eq!(grants.allowed_hosts, ["http://127.0.0.1:4000"]);
        assert_eq!(grants.config["kitchen"], "http://127.0.0.1:4000/kitchen");
    }
}
