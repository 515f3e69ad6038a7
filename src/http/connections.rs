//! Accepting connections: how many may be open at once (in all, and from one address), which
//! give way when the budget is full, how long a client may take to send a request's headers,
//! and a graceful stop.
//!
//! Every connection is a file descriptor. Without a budget, 1,100 connections that dribble
//! their headers, under systemd's default limit of 1,024 descriptors, kept real users out.
//! One address holds at most its share. When the whole budget is taken, a connection that is
//! not in use gives way to the new one: first the oldest that has not been answered yet (a
//! slow client, or an attacker's), then the one idle the longest between requests (a
//! keep-alive connection, which a browser simply opens again when it next needs one). So
//! neither slow nor idle connections from many addresses can starve a real user, whose
//! request needs a place only for the moment it takes to send. A connection in use (a
//! request being answered, a download, an event stream, a WebSocket) keeps its place; when
//! every place is in use, a new connection is closed at once, before anything is read. A
//! WebSocket keeps its connection's place (its [`Slot`]) for as long as it lives. This module
//! owns the TCP side only; what a request may do is for the router.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// A connection's place in the budget, held by the connection and by a WebSocket made from
/// it; the place is free again when both are gone.
#[derive(Clone)]
pub struct Slot {
    _place: Arc<Place>,
}

struct Place {
    _total: OwnedSemaphorePermit,
    _address: Option<AddressPlace>,
    /// Held while the connection or its WebSocket lives: a stopping server waits for it.
    _open: mpsc::Sender<Infallible>,
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
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
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
    yielding: Mutex<Yielding>,
    next: AtomicU64,
}

/// The connections that may give way, in the order they do.
#[derive(Default)]
struct Yielding {
    /// Each open connection's bell, which tells it to go.
    bells: HashMap<u64, Arc<Notify>>,
    /// Not answered yet, by connection number: oldest first.
    unanswered: BTreeSet<u64>,
    /// Between requests, by when they fell idle: longest idle first.
    idle: BTreeMap<u64, u64>,
    idle_since: HashMap<u64, u64>,
}

impl Yielding {
    fn in_use(&mut self, id: u64) {
        self.unanswered.remove(&id);
        if let Some(since) = self.idle_since.remove(&id) {
            self.idle.remove(&since);
        }
    }
}

impl Budget {
    /// A place for one more connection from `ip`, unless the address has its share already.
    fn address(&self, ip: IpAddr) -> Result<Option<AddressPlace>, ()> {
        if self.limits.trusted_proxies.iter().any(|p| p.contains(&ip)) {
            return Ok(None);
        }
        let mut open = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
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

    fn yielding(&self) -> std::sync::MutexGuard<'_, Yielding> {
        self.yielding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place in the total: a free one, or the place of a connection not in use.
    async fn total(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.total.clone().try_acquire_owned() {
            return Some(permit);
        }
        let bell = {
            let mut yielding = self.yielding();
            let id = match yielding.unanswered.pop_first() {
                Some(id) => id,
                None => {
                    let (_, id) = yielding.idle.pop_first()?;
                    yielding.idle_since.remove(&id);
                    id
                }
            };
            yielding.bells.remove(&id)?
        };
        bell.notify_one();
        tokio::time::timeout(GIVE_WAY_WITHIN, self.total.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Registers a new connection, not answered yet; returns its number and its bell.
    fn opened(&self) -> (u64, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let bell = Arc::new(Notify::new());
        let mut yielding = self.yielding();
        yielding.bells.insert(id, bell.clone());
        yielding.unanswered.insert(id);
        (id, bell)
    }

    /// A request arrived on the connection: it is in use until its answer has been sent.
    fn in_use(&self, id: u64) {
        self.yielding().in_use(id);
    }

    /// The connection's answer has been sent (or dropped): it waits for its next request.
    fn idle(&self, id: u64) {
        let since = self.next.fetch_add(1, Ordering::Relaxed);
        let mut yielding = self.yielding();
        // A connection that has ended, or became a WebSocket, is not waiting for anything.
        if yielding.bells.contains_key(&id) && !yielding.idle_since.contains_key(&id) {
            yielding.idle.insert(since, id);
            yielding.idle_since.insert(id, since);
        }
    }

    /// The connection has ended, or lives on as a WebSocket: it no longer gives way.
    fn closed(&self, id: u64) {
        let mut yielding = self.yielding();
        yielding.in_use(id);
        yielding.bells.remove(&id);
    }
}

/// Marks its connection idle when the answer it travels with has been sent or dropped.
struct Answering {
    budget: Arc<Budget>,
    id: u64,
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.budget.idle(self.id);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, asks open
/// connections to finish, and returns when they have or after `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let budget = Arc::new(Budget {
        total: Arc::new(Semaphore::new(limits.total)),
        per_address: Arc::new(Mutex::new(HashMap::new())),
        yielding: Mutex::new(Yielding::default()),
        next: AtomicU64::new(0),
        limits,
    });
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
        let Ok(address) = budget.address(peer.ip()) else {
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
            let slot = Slot {
                _place: Arc::new(Place {
                    _total: total,
                    _address: address,
                    _open: open,
                }),
            };
            connection(tcp, peer, slot, app, budget, stopping).await;
        });
    }
    drop(stop);
    drop(listener);
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
    let (id, bell) = budget.opened();
    let (arrived, answered) = (budget.clone(), budget.clone());
    let service = app
        .map_request(move |mut req: Request<Incoming>| {
            arrived.in_use(id);
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(slot.clone());
            req.map(axum::body::Body::new)
        })
        .map_response(move |response: Response| {
            let answering = Answering {
                budget: answered.clone(),
                id,
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
        () = bell.notified() => {
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
