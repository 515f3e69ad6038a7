//! Accepting connections: how many may be open at once (in all, and from one address), which
//! give way when the budget is full, how long a client may take to send a request's headers,
//! and a graceful stop.
//!
//! Every connection is a file descriptor. Without a budget, 1,100 connections that dribble
//! their headers, under systemd's default limit of 1,024 descriptors, kept real users out.
//! One address holds at most its share. When the whole budget is taken, the oldest connection
//! that has not been answered yet (a slow client, or an attacker's) gives way to the new one,
//! so slow connections from many addresses cannot starve a real user, whose request needs a
//! place only for the moment it takes to send. A connection that has been answered (a
//! teacher's keep-alive, a WebSocket) keeps its place; when every place is held by answered
//! connections, a new one is closed at once, before anything is read. A WebSocket keeps its
//! connection's place (its [`Slot`]) for as long as it lives. This module owns the TCP side
//! only; what a request may do is for the router.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
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
    /// Connections not answered yet, oldest first, each with the bell that tells it to go.
    unanswered: Mutex<BTreeMap<u64, Arc<Notify>>>,
    next: AtomicU64,
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

    /// A place in the total: a free one, or the place of the oldest unanswered connection.
    async fn total(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.total.clone().try_acquire_owned() {
            return Some(permit);
        }
        let (_, oldest) = self
            .unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_first()?;
        oldest.notify_one();
        tokio::time::timeout(GIVE_WAY_WITHIN, self.total.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Registers a connection as unanswered; returns its number and its bell.
    fn waiting(&self) -> (u64, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let bell = Arc::new(Notify::new());
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, bell.clone());
        (id, bell)
    }

    /// The connection was answered (or has ended): it no longer gives way.
    fn answered(&self, id: u64) {
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
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
        unanswered: Mutex::new(BTreeMap::new()),
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
    let (id, bell) = budget.waiting();
    let answered = budget.clone();
    let service = app
        .map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(slot.clone());
            req.map(axum::body::Body::new)
        })
        .map_response(move |response| {
            answered.answered(id);
            response
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
    budget.answered(id);
}
