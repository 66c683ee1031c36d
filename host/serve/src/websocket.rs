//! Websocket channels: `GET /ws/{channel}` upgrades to a websocket that receives every message
//! guests send to `channel` ([`mixio::ws::send`](../../../mixio/ws/fn.send.html)).
//!
//! The hub subscribes to a channel's pub/sub subject while it has clients on this server, and
//! fans each message out to them; when the channel's last client here leaves, it unsubscribes
//! and forgets the channel. Each client has a queue of [`CLIENT_BUFFER`] messages: a client
//! whose queue is full, or that does not take a message within [`SEND_TIMEOUT`], is
//! disconnected at once; guests and the other clients never wait for it. The pongs answering a
//! client's pings are written the same way: a client that pings without reading is cut off
//! like one that does not read its messages. A client that sends nothing for the server's
//! `websocket_idle_timeout` (the server pings it at half of that) is disconnected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use mixio_host::Host;

/// Messages queued for one client; a client that falls this far behind is disconnected.
pub const CLIENT_BUFFER: usize = 256;
/// Longest a client may take to accept one message before it is disconnected.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message a client may send (clients only listen; this bounds what they can make
/// the server read).
const MAX_CLIENT_MESSAGE: usize = 4 << 10;
/// What the websocket layer buffers for one client before the socket takes it: a frame being
/// written, and at most one pending pong or close.
const WRITE_BUFFER: usize = 128 << 10;

/// The channels by name. A name's slot is locked while its first client subscribes, so that
/// clients joining a new channel at once share one subscription (or its failure); a slot goes
/// from the map with its channel's last client, or with a join that made none.
type Channels = Arc<Mutex<HashMap<String, Slot>>>;

/// One name's place in [`Channels`].
#[derive(Clone, Default)]
struct Slot {
    current: Arc<tokio::sync::Mutex<Current>>,
    /// Subscriptions attempted, so that clients who waited for one share its failure.
    attempts: Arc<AtomicU64>,
}

#[derive(Default)]
struct Current {
    channel: Weak<Channel>,
    /// Why the last attempt failed.
    failure: Option<String>,
}

impl Slot {
    fn same(&self, other: &Slot) -> bool {
        Arc::ptr_eq(&self.current, &other.current)
    }
}

/// Forgets its slot (if unused) when a join ends, however it ends: returned, failed, or
/// dropped while it waited.
struct Forget<'a> {
    channels: &'a Channels,
    name: &'a str,
    slot: Option<Slot>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            forget_if_unused(self.channels, self.name, slot);
        }
    }
}

/// The websocket channels of one server.
pub(crate) struct Hub {
    host: Host,
    channels: Channels,
    shutdown: watch::Receiver<bool>,
    clients: Arc<()>,
    next_client: AtomicU64,
    idle_timeout: Duration,
    too_slow_logged: super::Occasional,
}

/// A channel with clients on this server: its subscription, fanned out to the clients.
pub(crate) struct Channel {
    name: String,
    clients: Arc<Mutex<HashMap<u64, Client>>>,
    forwarder: tokio::task::JoinHandle<()>,
    /// The hub's channels, which this one leaves when its last client goes, and its slot there.
    hub: Channels,
    slot: Slot,
}

/// The server's end of one client's queue.
struct Client {
    queue: mpsc::Sender<Bytes>,
    /// Told when the client fell behind and must go.
    kick: Arc<Notify>,
}

/// A client's place in a channel; leaving the channel when dropped.
pub(crate) struct Membership {
    channel: Arc<Channel>,
    id: u64,
    messages: mpsc::Receiver<Bytes>,
    kick: Arc<Notify>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.channel.clients.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // The last client left: unsubscribe (the forwarder owns the subscription), and forget
        // the channel unless a new client has already joined it anew.
        self.forwarder.abort();
        forget_if_unused(&self.hub, &self.name, &self.slot);
    }
}

/// Removes `name`'s `slot` from `channels` if no channel is alive in it and nobody is joining
/// it (a joiner holds the slot's lock, and checks that its slot is still the map's).
fn forget_if_unused(channels: &Channels, name: &str, slot: &Slot) {
    let mut channels = channels.lock().unwrap_or_else(|e| e.into_inner());
    let unused = channels.get(name).is_some_and(|current| {
        current.same(slot) && current.current.try_lock().is_ok_and(|c| c.channel.strong_count() == 0)
    });
    if unused {
        channels.remove(name);
    }
}

impl Hub {
    pub(crate) fn new(host: Host, shutdown: watch::Receiver<bool>, idle_timeout: Duration) -> Hub {
        Hub {
            host,
            channels: Arc::default(),
            shutdown,
            clients: Arc::new(()),
            next_client: AtomicU64::new(0),
            idle_timeout,
            too_slow_logged: super::Occasional::default(),
        }
    }

    /// Clients connected now.
    pub(crate) fn clients(&self) -> usize {
        Arc::strong_count(&self.clients) - 1
    }

    /// Channels with clients on this server now (or a first client subscribing).
    pub(crate) fn channels(&self) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let live = |slot: &&Slot| match slot.current.try_lock() {
            Ok(current) => current.channel.strong_count() > 0,
            // A first client is subscribing.
            Err(_) => true,
        };
        channels.values().filter(live).count()
    }

    /// Joins `name`, subscribing to it if this is its first client here (clients joining a new
    /// channel at once share one subscription, or its failure). When this returns, messages sent
    /// to the channel reach the membership's queue.
    pub(crate) async fn join(&self, name: &str) -> Result<Membership, String> {
        // Declared before the slot's lock: dropped after it.
        let mut forget = Forget { channels: &self.channels, name, slot: None };
        let (slot, seen, mut current) = loop {
            let slot = self
                .channels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.to_string())
                .or_default()
                .clone();
            forget.slot = Some(slot.clone());
            let seen = slot.attempts.load(Relaxed);
            let current = slot.current.clone().lock_owned().await;
            // A slot forgotten meanwhile (its channel ended) is not used: take the map's.
            let registered = self
                .channels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .is_some_and(|s| s.same(&slot));
            if registered {
                break (slot, seen, current);
            }
        };
        let channel = match current.channel.upgrade() {
            Some(channel) => channel,
            // Another client's attempt ended while this one waited, and failed.
            None if slot.attempts.load(Relaxed) != seen && current.failure.is_some() => {
                return Err(current.failure.clone().unwrap_or_default());
            }
            None => {
                let subscribed = self.host.subscribe_websocket(name).await.map_err(|e| e.to_string());
                slot.attempts.fetch_add(1, Relaxed);
                let mut subscription = match subscribed {
                    Ok(subscription) => subscription,
                    Err(e) => {
                        current.failure = Some(e.clone());
                        return Err(e);
                    }
                };
                let clients: Arc<Mutex<HashMap<u64, Client>>> = Arc::default();
                let fan_out = clients.clone();
                let forwarder = tokio::spawn(async move {
                    while let Some(message) = subscription.next().await {
                        let mut clients = fan_out.lock().unwrap_or_else(|e| e.into_inner());
                        clients.retain(|_, client| match client.queue.try_send(message.clone()) {
                            Ok(()) => true,
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                client.kick.notify_one();
                                false
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => false,
                        });
                    }
                });
                let channel = Arc::new(Channel {
                    name: name.to_string(),
                    clients,
                    forwarder,
                    hub: self.channels.clone(),
                    slot: slot.clone(),
                });
                *current = Current { channel: Arc::downgrade(&channel), failure: None };
                channel
            }
        };
        drop(current);
        let (queue, messages) = mpsc::channel(CLIENT_BUFFER);
        let kick = Arc::new(Notify::new());
        let id = self.next_client.fetch_add(1, Relaxed);
        channel
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Client { queue, kick: kick.clone() });
        Ok(Membership { channel, id, messages, kick })
    }

    /// Serves one upgraded connection until the client leaves, falls behind, goes quiet, or
    /// the server shuts down.
    pub(crate) async fn serve_client(&self, upgraded: Upgraded, channel: String, mut member: Membership) {
        let _client = self.clients.clone();
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_CLIENT_MESSAGE))
            .max_frame_size(Some(MAX_CLIENT_MESSAGE))
            // Clients send at most small frames: no need for tungstenite's 128 KiB read buffer.
            .read_buffer_size(MAX_CLIENT_MESSAGE + 1024)
            .write_buffer_size(WRITE_BUFFER)
            .max_write_buffer_size(
                WRITE_BUFFER + mixio_host::capabilities::websocket::MAX_MESSAGE + (64 << 10),
            );
        let mut socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        let mut shutdown = self.shutdown.clone();
        let kick = member.kick.clone();
        tracing::debug!(%channel, "websocket client joined");
        let too_slow = (CloseCode::Policy, "too slow: messages were dropped");
        // Nothing heard from the client for half the idle bound: ping it; for the whole: close.
        let half_idle = self.idle_timeout / 2;
        let quiet = tokio::time::sleep(half_idle);
        tokio::pin!(quiet);
        let mut pinged = false;
        let close = loop {
            tokio::select! {
                message = member.messages.recv() => {
                    let Some(payload) = message else { break Some((CloseCode::Away, "channel closed")) };
                    let message = match std::str::from_utf8(&payload) {
                        Ok(text) => Message::text(text),
                        Err(_) => Message::binary(payload),
                    };
                    tokio::select! {
                        sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(message)) => match sent {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return, // the client is gone
                            Err(_) => break Some(too_slow),
                        },
                        () = kick.notified() => break Some(too_slow),
                    }
                }
                () = kick.notified() => break Some(too_slow),
                incoming = socket.next() => {
                    let ping = match incoming {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                        Some(Ok(message)) => matches!(message, Message::Ping(_)),
                    };
                    // Anything from the client (a pong included) shows it is there; text from
                    // clients is otherwise ignored.
                    pinged = false;
                    quiet.as_mut().reset(Instant::now() + half_idle);
                    if ping {
                        // The protocol layer has queued the pong: write it out as a message is
                        // written, so that a client that pings without reading is cut off.
                        match tokio::time::timeout(SEND_TIMEOUT, socket.flush()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => break Some(too_slow),
                        }
                    }
                }
                () = &mut quiet => {
                    if pinged {
                        break Some((CloseCode::Away, "idle: no answer to a ping"));
                    }
                    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Bytes::new()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => break Some(too_slow),
                    }
                    pinged = true;
                    quiet.as_mut().reset(Instant::now() + half_idle);
                }
                () = stopped(&mut shutdown) => break Some((CloseCode::Away, "server shutting down")),
            }
        };
        drop(member);
        if let Some((code, reason)) = close {
            match code {
                CloseCode::Policy if self.too_slow_logged.due() => tracing::warn!(
                    %channel,
                    "websocket client too slow: disconnected (logged at most once a minute)"
                ),
                _ if pinged => tracing::debug!(%channel, "websocket client idle: disconnected"),
                _ => {}
            }
            let frame = CloseFrame { code, reason: reason.into() };
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(Some(frame))).await;
        }
        tracing::debug!(%channel, "websocket client left");
    }
}

/// The value of `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)
}

/// Completes when `flag` becomes true (or its sender is gone).
pub(crate) async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
