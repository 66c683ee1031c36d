//! The I/O a guest can do, one module per WIT interface, and the configuration model they
//! share.
//!
//! The host configures **backends** by name ([`HostBuilder::kv_store`],
//! [`HostBuilder::sql_database`]); each component is given [`Grants`] at load: which of those
//! names it may open, which hosts it may reach, its configuration variables. Every import
//! checks the grant at the boundary, before touching a backend, and every call that can wait
//! goes through `host_call` so suspended guests are counted.
//!
//! [`HostBuilder::kv_store`]: crate::HostBuilder::kv_store
//! [`HostBuilder::sql_database`]: crate::HostBuilder::sql_database

pub(crate) mod bindings;
mod config;
pub mod http_client;
pub mod kv;
mod log;
pub mod pubsub;
pub mod sql;
mod time;
pub mod websocket;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::error::Error;
use crate::metrics::StoreCounters;

/// The part of a store that every interface reads: the component's name and the store's
/// counters (through which every call that waits is counted).
pub(crate) struct Caller {
    pub(crate) component: Arc<str>,
    pub(crate) counters: Arc<StoreCounters>,
}

/// One of mixio's capabilities (a WIT interface): what a component is granted of it, resolved
/// against the host's backends at load and shared by the component's instances, and what one
/// instance holds of it. Its WIT host traits are implemented on [`View`]`<Self>`, so an
/// interface sees its own grants and state and no other's.
pub(crate) trait Capability: Sized + Send + 'static {
    /// A component's grants of this capability, resolved at load.
    type Grants: Send + Sync + 'static;
    /// One instance's state of this capability (its open handles, say).
    type State: Default + Send + 'static;

    /// Resolves `grants` against `backends` for component `component`: a grant of something the
    /// host does not configure is an error naming it.
    fn resolve(component: &str, grants: &Grants, backends: &Backends) -> Resolved<Self::Grants>;
}

/// A capability's grants, or the error that names the grant the host cannot give.
pub(crate) type Resolved<G> = Result<G, Error>;

/// Capabilities every component has: nothing to grant, no state.
macro_rules! ungranted {
    ($($cap:ty),*) => {
        $(impl Capability for $cap {
            type Grants = ();
            type State = ();

            fn resolve(_: &str, _: &Grants, _: &Backends) -> Resolved<()> {
                Ok(())
            }
        })*
    };
}

ungranted!(time::Time, log::Log);

/// What one interface's imports see of a store (as wasmtime-wasi's interfaces see their
/// `*CtxView`s): the component's grants of that capability, the instance's state of it, the
/// caller, and the resource table (shared with WASI's).
pub(crate) struct View<'a, C: Capability> {
    pub(crate) grants: &'a C::Grants,
    pub(crate) state: &'a mut C::State,
    pub(crate) caller: &'a Caller,
    pub(crate) table: &'a mut ResourceTable,
}

/// A store's data that holds mixio's capability state (as `WasiView` is for WASI's).
pub(crate) trait HasCapabilities: Send {
    /// The store's capability state and its resource table.
    fn capabilities(&mut self) -> (&mut CapabilitiesCtx, &mut ResourceTable);
}

/// Where a capability's grants and state are in [`ComponentCaps`] and [`CapabilitiesCtx`].
pub(crate) trait Part: Capability {
    fn part<'a>(granted: &'a Granted, states: &'a mut States) -> (&'a Self::Grants, &'a mut Self::State);
}

/// The view of capability `C` of a store: the projection each interface's `add_to_linker`
/// gets, and what native mode calls the same implementations on.
pub(crate) fn view<T: HasCapabilities, C: Part>(store: &mut T) -> View<'_, C> {
    let (ctx, table) = store.capabilities();
    let (grants, state) = C::part(&ctx.caps.granted, &mut ctx.states);
    View { grants, state, caller: &ctx.caller, table }
}

/// The capabilities, each with its field in [`Granted`] and [`States`] and its WIT interface.
macro_rules! capabilities {
    ($($field:ident: $cap:ty => $interface:ident,)*) => {
        /// A component's grants, one part per capability.
        pub(crate) struct Granted {
            $(pub(crate) $field: <$cap as Capability>::Grants,)*
        }

        impl Granted {
            fn resolve(component: &str, grants: &Grants, backends: &Backends) -> Result<Granted, Error> {
                Ok(Granted { $($field: <$cap>::resolve(component, grants, backends)?,)* })
            }
        }

        /// One instance's state, one part per capability.
        #[derive(Default)]
        pub(crate) struct States {
            $($field: <$cap as Capability>::State,)*
        }

        $(
            impl HasData for $cap {
                type Data<'a> = View<'a, $cap>;
            }

            impl Part for $cap {
                fn part<'a>(granted: &'a Granted, states: &'a mut States) -> (&'a Self::Grants, &'a mut Self::State) {
                    (&granted.$field, &mut states.$field)
                }
            }
        )*

        /// Adds every mixio interface to `linker`, each on its own view of the store.
        pub(crate) fn add_to_linker<T: HasCapabilities + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
            $(bindings::mixio::io::$interface::add_to_linker::<T, $cap>(linker, view::<T, $cap>)?;)*
            Ok(())
        }
    };
}

capabilities! {
    time: time::Time => time,
    log: log::Log => log,
    config: config::Config => config,
    kv: kv::Kv => kv,
    sql: sql::Sql => sql,
    http: http_client::Http => http_client,
    pubsub: pubsub::PubSub => pubsub,
    websocket: websocket::Websocket => websocket,
}

/// One instance's state of mixio's capabilities: its caller, its component's grants, and each
/// capability's state. Each call's store holds one.
pub(crate) struct CapabilitiesCtx {
    caller: Caller,
    caps: Arc<ComponentCaps>,
    states: States,
}

impl CapabilitiesCtx {
    pub(crate) fn new(component: Arc<str>, counters: Arc<StoreCounters>, caps: Arc<ComponentCaps>) -> Self {
        CapabilitiesCtx { caller: Caller { component, counters }, caps, states: States::default() }
    }

    /// Ends a call of an instance that will serve another: what a capability holds for one
    /// call only is given back (a transaction left open is rolled back). Handles stay open:
    /// they are the guest's, like its globals; but an instance holding half its limit of them
    /// is not given the next call, which would find the limit near (a guest whose handles are
    /// freed only by a garbage collector, say). An error means the instance must not serve
    /// again, and says why.
    pub(crate) async fn end_call(&mut self, table: &mut ResourceTable) -> Result<(), String> {
        let (stores, connections) = (self.states.kv, self.states.sql);
        if stores >= kv::MAX_OPEN_STORES / 2 || connections >= sql::MAX_OPEN_CONNECTIONS / 2 {
            return Err(format!(
                "it holds {stores} open key-value stores and {connections} SQL connections, half its limit or more"
            ));
        }
        sql::end_call(&self.caller, table).await
    }
}

/// What one component may use, given at load ([`Host::load_with`](crate::Host::load_with)).
/// Everything not granted is refused with an `access-denied` error.
///
/// ```
/// let grants = mixio_host::Grants::new()
///     .kv("default")
///     .namespace("shop")
///     .config("kitchen_url", "http://127.0.0.1:3000/kitchen");
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Grants {
    /// Hosts the component may reach with outbound HTTP: `scheme://host[:port]` patterns
    /// with `*` wildcards, e.g. `https://api.example.com`, `https://*.example.com`,
    /// `http://127.0.0.1:*`.
    pub allowed_hosts: Vec<String>,
    /// Pub/sub topics the component may publish to; `*` for any.
    pub topics: Vec<String>,
    /// Websocket channels the component may send to; `*` for any.
    pub channels: Vec<String>,
    /// Key-value stores (names configured on the host) the component may open.
    pub kv: Vec<String>,
    /// SQL databases (names configured on the host) the component may open.
    pub sql: Vec<String>,
    /// The namespace of the component's keys and topics; components with the same namespace
    /// share them. Default: the component's name.
    pub namespace: Option<String>,
    /// Configuration variables. A variable is overridden by the environment variable
    /// `MIXIO_CONFIG_<NAME>` (upper-case, other characters as `_`) when that is set.
    pub config: BTreeMap<String, String>,
    /// Environment variables the component sees through `wasi:cli/environment` (e.g.
    /// `std::env::var` in Rust). Default: none.
    pub environment: BTreeMap<String, String>,
}

impl Grants {
    /// No grants: time and log only.
    pub fn new() -> Grants {
        Grants::default()
    }

    /// Allows outbound HTTP to hosts matching `pattern` (see
    /// [`Grants::allowed_hosts`](#structfield.allowed_hosts)).
    pub fn allow_host(mut self, pattern: impl Into<String>) -> Grants {
        self.allowed_hosts.push(pattern.into());
        self
    }

    /// Allows publishing to `topic` (`*` for any).
    pub fn topic(mut self, topic: impl Into<String>) -> Grants {
        self.topics.push(topic.into());
        self
    }

    /// Allows sending to websocket channel `channel` (`*` for any).
    pub fn channel(mut self, channel: impl Into<String>) -> Grants {
        self.channels.push(channel.into());
        self
    }

    /// Grants the key-value store `name`.
    pub fn kv(mut self, name: impl Into<String>) -> Grants {
        self.kv.push(name.into());
        self
    }

    /// Grants the SQL database `name`.
    pub fn sql(mut self, name: impl Into<String>) -> Grants {
        self.sql.push(name.into());
        self
    }

    /// Sets the namespace (see [`Grants::namespace`](#structfield.namespace)).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Grants {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets environment variable `name` for the component.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Grants {
        self.environment.insert(name.into(), value.into());
        self
    }

    /// Sets configuration variable `name`.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Grants {
        self.config.insert(name.into(), value.into());
        self
    }
}

/// The backends a host has configured, by name.
pub(crate) struct Backends {
    pub(crate) kv: HashMap<String, Arc<dyn kv::KvBackend>>,
    pub(crate) sql: HashMap<String, Arc<dyn sql::SqlBackend>>,
    pub(crate) pubsub: Arc<dyn pubsub::PubSubBackend>,
    pub(crate) http: Arc<http_client::HttpClient>,
}

impl Backends {
    pub(crate) fn new(http: http_client::HttpConfig) -> Result<Backends, Error> {
        Ok(Backends {
            kv: HashMap::new(),
            sql: HashMap::new(),
            pubsub: Arc::new(pubsub::MemoryPubSub::default()),
            http: Arc::new(http_client::HttpClient::new(http).map_err(Error::Config)?),
        })
    }

    /// Sets the pub/sub backend from its URL.
    pub(crate) fn set_pubsub(&mut self, url: &str) -> Result<(), Error> {
        self.pubsub =
            pubsub::open(url).map_err(|e| Error::Config(format!("pubsub = {:?}: {e}", redact(url))))?;
        Ok(())
    }

    /// Creates the SQL database `name` from its URL.
    pub(crate) fn add_sql(&mut self, name: &str, url: &str) -> Result<(), Error> {
        let db = sql::open(url).map_err(|e| Error::Config(format!("sql.{name} = {:?}: {e}", redact(url))))?;
        self.sql.insert(name.to_string(), db);
        Ok(())
    }

    /// Creates the key-value store `name` from its URL.
    pub(crate) fn add_kv(&mut self, name: &str, url: &str) -> Result<(), Error> {
        let kv = kv::open(url).map_err(|e| Error::Config(format!("kv.{name} = {:?}: {e}", redact(url))))?;
        self.kv.insert(name.to_string(), kv);
        Ok(())
    }

    /// Checks that every backend answers.
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        for (name, kv) in &self.kv {
            kv.ping().await.map_err(|e| Error::Backend(format!("kv.{name}: {e}")))?;
        }
        for (name, db) in &self.sql {
            db.ping().await.map_err(|e| Error::Backend(format!("sql.{name}: {e}")))?;
        }
        self.pubsub.ping().await.map_err(|e| Error::Backend(format!("pubsub: {e}")))?;
        Ok(())
    }
}

/// `name` (of a namespace, a store, a websocket channel) as one token of a key or a subject
/// that no other name shares: ASCII letters, digits, `-` and `_` stay as they are, every other
/// byte becomes `%XX` (`%` itself too), and so does a leading `_` (subjects starting with `_`
/// are the host's own). The encoding is injective (it can be decoded), and a token never holds
/// `.`, `:`, `*`, `>`, `/`, `#`, `+` or whitespace, so it cannot forge a separator or a wildcard
/// on any backend: `t x` is `t%20x` and `t_x` stays `t_x`; `secq.x` is `secq%2Ex`.
pub(crate) fn name_token(name: &str) -> String {
    use std::fmt::Write;
    let mut token = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || (b == b'_' && i > 0) {
            token.push(b as char);
        } else {
            let _ = write!(token, "%{b:02X}");
        }
    }
    token
}

/// A component's grants resolved against the host's backends, at load.
pub(crate) struct ComponentCaps {
    /// Each capability's part.
    pub(crate) granted: Granted,
    /// The variables of `wasi:cli/environment`.
    pub(crate) environment: Vec<(String, String)>,
}

impl ComponentCaps {
    pub(crate) fn resolve(
        component: &str,
        grants: &Grants,
        backends: &Backends,
    ) -> Result<ComponentCaps, Error> {
        if namespace(component, grants).is_empty() {
            return Err(grant_error(
                component,
                "its namespace must not be empty (it prefixes its keys and topics)",
            ));
        }
        Ok(ComponentCaps {
            granted: Granted::resolve(component, grants, backends)?,
            environment: grants.environment.clone().into_iter().collect(),
        })
    }
}

/// The component's namespace (its name unless its grants set one) as a [`name_token`]: the
/// first part of its keys and subjects. [`ComponentCaps::resolve`] has checked that it is not
/// empty.
pub(crate) fn namespace(component: &str, grants: &Grants) -> String {
    name_token(grants.namespace.as_deref().unwrap_or(component))
}

/// Whether `names` (a component's granted topics or channels) allows `name`: `*` allows any.
pub(crate) fn allows(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == "*" || n == name)
}

/// A configuration error of component `component`'s grants.
pub(crate) fn grant_error(component: &str, reason: impl std::fmt::Display) -> Error {
    Error::Config(format!("component `{component}`: {reason}"))
}

/// The host's backends named in a component's grants; naming one the host lacks is an error.
pub(crate) fn granted<B: ?Sized>(
    component: &str,
    kind: &str,
    names: &[String],
    configured: &HashMap<String, Arc<B>>,
) -> Result<HashMap<String, Arc<B>>, Error> {
    names
        .iter()
        .map(|name| match configured.get(name) {
            Some(backend) => Ok((name.clone(), backend.clone())),
            None => Err(Error::Config(format!(
                "component `{component}` is granted {kind} `{name}`, which the host does not configure"
            ))),
        })
        .collect()
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A Redis connection that reconnects by itself, for the key-value and pub/sub backends: 5 s to
/// connect, 10 s for a reply (redis-rs' defaults, 1 s and 500 ms, fail calls on a busy server),
/// two retries.
pub(crate) async fn redis_connection(
    client: &redis::Client,
) -> redis::RedisResult<redis::aio::ConnectionManager> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
        .set_response_timeout(Some(std::time::Duration::from_secs(10)))
        .set_number_of_retries(2);
    redis::aio::ConnectionManager::new_with_config(client.clone(), config).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::name_token;

    /// The inverse of [`name_token`]: that it exists proves the encoding injective.
    fn decode(token: &str) -> Option<String> {
        let bytes = token.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(token.get(i + 1..i + 3)?, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    /// The key prefix and a topic's subject of namespace `ns`, as kv and pubsub build them.
    fn kv_prefix(ns: &str, store: &str) -> String {
        format!("{}:{}:", name_token(ns), name_token(store))
    }

    fn subject(ns: &str, topic: &str) -> String {
        format!("{}.{topic}", name_token(ns))
    }

    #[test]
    fn the_names_that_collided_are_apart() {
        for (a, b) in [("t x", "t_x"), ("_t", "t"), ("tö", "t_"), ("a.b", "a_b"), ("", "%"), ("%41", "A")] {
            assert_ne!(name_token(a), name_token(b), "{a:?} and {b:?}");
            assert_ne!(kv_prefix(a, "default"), kv_prefix(b, "default"));
        }
        assert_ne!(subject("secq", "x.news"), subject("secq.x", "news"));
        assert!(!subject("_ws", "ada").starts_with("_ws."), "no namespace reaches the websocket subjects");
        assert_eq!(name_token("food-delivery_2"), "food-delivery_2", "plain names are unchanged");
    }

    /// Valid topics: dot-separated words of letters, digits, `-` and `_`.
    fn topic() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-zA-Z0-9_-]{1,4}", 1..4).prop_map(|words| words.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_name_has_a_token_of_its_own(name in any::<String>()) {
            let token = name_token(&name);
            prop_assert_eq!(decode(&token), Some(name.clone()));
            prop_assert!(!token.contains(['.', ':', '*', '>', '/', '#', '+', ' ']) && !token.starts_with('_'));
        }

        /// Two different (namespace, store) pairs never share a key prefix, nor is one prefix
        /// the start of another (a key of one would then be listed by the other); two
        /// different (namespace, topic) pairs never share a subject.
        #[test]
        fn no_two_components_share_keys_or_subjects(
            // A small alphabet, so that names that an encoding might confuse come up often.
            a in "[t_. öx%:A5F]{0,5}", b in "[t_. öx%:A5F]{0,5}", store_a in "[a-z_:. ]{1,3}", store_b in "[a-z_:. ]{1,3}",
            topic_a in topic(), topic_b in topic(),
        ) {
            let (pa, pb) = (kv_prefix(&a, &store_a), kv_prefix(&b, &store_b));
            if (&a, &store_a) != (&b, &store_b) {
                prop_assert!(!pa.starts_with(&pb) && !pb.starts_with(&pa), "{pa} and {pb}");
            }
            if (&a, &topic_a) != (&b, &topic_b) {
                prop_assert_ne!(subject(&a, &topic_a), subject(&b, &topic_b));
            }
        }
    }
}
