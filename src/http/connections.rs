//! Accepting connections: how many may be open at once (in all, and from one address), which
//! give way when the budget is full, how long a client may take to send a request's headers,
//! and a graceful stop.
//!
//! Every connection is a file descriptor. Without a budget, 1,100 connections that dribble
//! their headers, under systemd's default limit of 1,024 descriptors, kept real users out.
//! One address holds at most its share. When the whole budget is taken, a connection that is
//! not in use gives way to the new one: first the oldest that has not been answered yet (a
//! slow client, or an attacker's), then the one idle the longest between requests, once idle
//! for [`IDLE_BEFORE_GIVING_WAY`] (a keep-alive connection, which a browser simply opens
//! again when it next needs one). So
//! neither slow nor idle connections from many addresses can starve a real user, whose
//! request needs a place only for the moment it takes to send. A connection in use (a
//! request being answered, a download, an event stream, a WebSocket) keeps its place; when
//! every place is in use, a new connection is closed at once, before anything is read. A
//! WebSocket keeps its connection's place (its [`Slot`]) for as long as it lives. This module
//! owns the TCP side only; what a request may do is for the router.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// How many connections may be open.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// In all.
    pub total: usize,
    /// From one address (not applied to `trusted_proxies`, whose clients it cannot tell apart).
    pub per_address: usize,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a client may take to send a request's headers, counted from when it began,
    /// or from its previous request on the connection (so idle keep-alive connections close).
    pub header_timeout: Duration,
}

/// How long a new connection waits for the unanswered one it displaced to let go.
const GIVE_WAY_WITHIN: Duration = Duration::from_millis(500);

/// How long a connection must have been idle before it gives way: a page between two quick
/// requests keeps its connection (it would otherwise need a new place for the next one, in
/// a budget a flood has filled), one that sends a request every 15 s to hold its place
/// does not.
const IDLE_BEFORE_GIVING_WAY: Duration = Duration::from_secs(2);

/// A connection's place in the budget, held by the connection and by a WebSocket made from
/// it; the place is free again when both are gone.
#[derive(Clone)]
pub struct Slot {
    _place: Arc<Place>,
}

struct Place {
    /// The budget the place is in, for a closing WebSocket to give way from.
    budget: Arc<Budget>,
    _total: OwnedSemaphorePermit,
    _address: Option<AddressPlace>,
    /// Held while the connection or its WebSocket lives: a stopping server waits for it.
    _open: mpsc::Sender<Infallible>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.budget.counted.decrement(1.0);
    }
}

impl Slot {
    /// Its connection is closing (a WebSocket waiting for the client's close frame): from
    /// now it gives way first when the budget is full, and [`Closing::asked`] says when.
    pub fn closing(&self) -> Closing {
        let budget = self._place.budget.clone();
        let (id, conn) = budget.opened();
        Closing { budget, id, conn }
    }
}

/// A closing connection's readiness to give way; it no longer gives way once dropped.
pub struct Closing {
    budget: Arc<Budget>,
    id: u64,
    conn: Arc<Conn>,
}

impl Closing {
    /// Resolves when a new connection needs the place.
    pub async fn asked(&self) {
        self.conn.bell.notified().await;
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        self.budget.closed(self.id);
    }
}

/// Open connections per address.
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One connection counted against its address.
struct AddressPlace {
    ip: IpAddr,
    open: PerAddress,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

struct Budget {
    limits: ConnectionLimits,
    total: Arc<Semaphore>,
    per_address: PerAddress,
    /// Open connections that may still give way (HTTP ones, not WebSockets yet).
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    /// What idle times are counted from.
    started: std::time::Instant,
    /// Places taken, for the metrics (`classcast_connections_open`).
    counted: metrics::Gauge,
}

/// What a connection is doing, kept where a request changes it without a lock: a full
/// budget (rare) looks at every connection, each request only stores a number.
struct Conn {
    bell: Notify,
    /// [`IN_USE`]; or not answered yet (its number, plus one); or idle between requests
    /// since a time ([`IDLE`] set, milliseconds since the budget `started`). The lowest that
    /// may give way does first.
    state: AtomicU64,
}

const IN_USE: u64 = 0;
const IDLE: u64 = 1 << 63;

impl Budget {
    /// A place for one more connection from `ip`, unless the address has its share already.
    fn address(&self, ip: IpAddr) -> Result<Option<AddressPlace>, ()> {
        if self.limits.trusted_proxies.iter().any(|p| p.contains(&ip)) {
            return Ok(None);
        }
        let mut open = self.per_address.lock();
        let n = open.entry(ip).or_default();
        if *n >= self.limits.per_address {
            return Err(());
        }
        *n += 1;
        Ok(Some(AddressPlace {
            ip,
            open: self.per_address.clone(),
        }))
    }

    fn open(&self) -> parking_lot::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock()
    }

    /// A place in the total: a free one, or the place of a connection not in use: the
    /// oldest not answered yet, else the one idle longest.
    async fn total(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.total.clone().try_acquire_owned() {
            return Some(permit);
        }
        let idle_since_at_most =
            IDLE | self.now_ms().saturating_sub(millis(IDLE_BEFORE_GIVING_WAY));
        let leaving = {
            let mut open = self.open();
            let (&id, _) = open
                .iter()
                .map(|(id, conn)| (id, conn.state.load(Ordering::Relaxed)))
                .filter(|(_, state)| *state != IN_USE && *state <= idle_since_at_most)
                .min_by_key(|(_, state)| *state)?;
            open.remove(&id)?
        };
        leaving.bell.notify_one();
        tokio::time::timeout(GIVE_WAY_WITHIN, self.total.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Registers a new connection, not answered yet; returns its number and its state.
    fn opened(&self) -> (u64, Arc<Conn>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            bell: Notify::new(),
            state: AtomicU64::new(id + 1),
        });
        self.open().insert(id, conn.clone());
        (id, conn)
    }

    /// The connection has ended, or lives on as a WebSocket: it no longer gives way.
    fn closed(&self, id: u64) {
        self.open().remove(&id);
    }

    fn now_ms(&self) -> u64 {
        millis(self.started.elapsed())
    }
}

impl Conn {
    /// A request arrived: in use until its answer has been sent.
    fn in_use(&self) {
        self.state.store(IN_USE, Ordering::Relaxed);
    }
}

/// Marks its connection idle when the answer it travels with has been sent or dropped.
struct Answering {
    budget: Arc<Budget>,
    conn: Arc<Conn>,
}

impl Drop for Answering {
    fn drop(&mut self) {
        let since = self.budget.now_ms();
        self.conn.state.store(IDLE | since, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, calls
/// `stopped_accepting` (which tells live connections to move), asks open connections to
/// finish, and returns when they have or after `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopped_accepting: impl FnOnce(),
    grace: Duration,
) -> std::io::Result<()> {
    let budget = Arc::new(Budget {
        total: Arc::new(Semaphore::new(limits.total)),
        per_address: Arc::new(Mutex::new(HashMap::new())),
        open: Mutex::new(HashMap::new()),
        next: AtomicU64::new(0),
        started: std::time::Instant::now(),
        counted: metrics::gauge!("classcast_connections_open"),
        limits,
    });
    metrics::gauge!("classcast_connections_limit").set(as_f64(budget.limits.total));
    // `stop` is dropped to ask connections to finish; each connection's slot holds a clone
    // of `open` until it and any WebSocket made from it have ended, so `all_done` ends when
    // the last one does.
    let (stop, stopping) = watch::channel(());
    let (open, mut all_done) = mpsc::channel::<Infallible>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: keep serving the connections already open.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(address) = budget.address(super::extract::counted_as(peer.ip())) else {
            tracing::debug!(client = %peer.ip(), "address over its connection share, closed");
            continue;
        };
        let (budget, app, stopping, open) =
            (budget.clone(), app.clone(), stopping.clone(), open.clone());
        tokio::spawn(async move {
            let Some(total) = budget.total().await else {
                tracing::debug!(client = %peer.ip(), "connection budget full, closed");
                return;
            };
            budget.counted.increment(1.0);
            let slot = Slot {
                _place: Arc::new(Place {
                    budget: budget.clone(),
                    _total: total,
                    _address: address,
                    _open: open,
                }),
            };
            connection(tcp, peer, slot, app, budget, stopping).await;
        });
    }
    // Closed before clients are told to move, so that none of them reconnects to this node:
    // the next connection attempt is refused at once and goes to another host.
    drop(listener);
    stopped_accepting();
    drop(stop);
    drop(open);
    let _ = tokio::time::timeout(grace, all_done.recv()).await;
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    budget: Arc<Budget>,
    mut stopping: watch::Receiver<()>,
) {
    // Live messages are small and must leave at once, not wait for the previous ACK.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let (id, conn) = budget.opened();
    let (own, arrived, answered) = (conn.clone(), conn.clone(), budget.clone());
    let service = app
        .map_request(move |mut req: Request<Incoming>| {
            arrived.in_use();
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(slot.clone());
            req.map(axum::body::Body::new)
        })
        .map_response(move |response: Response| {
            let answering = Answering {
                budget: answered.clone(),
                conn: conn.clone(),
            };
            response.map(|body| {
                axum::body::Body::new(body.map_frame(move |frame| {
                    // Held by the body until hyper has sent its last byte, or dropped it.
                    let _ = &answering;
                    frame
                }))
            })
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(budget.limits.header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        () = own.bell.notified() => {
            tracing::debug!(client = %peer.ip(), "unanswered connection gave way to a new one");
        }
        _ = stopping.changed() => {
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        }
    }
    budget.closed(id);
}

/// A duration in whole milliseconds (saturating: no connection lives 584 million years).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A count as a gauge's value (exact below 2^53, far beyond any connection budget).
fn as_f64(n: usize) -> f64 {
    n as f64
}
