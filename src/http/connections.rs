//! Accepting connections: how many may be open at once (in all, and from one address), how
//! long a client may take to send a request's headers, and a graceful stop.
//!
//! Every connection is a file descriptor. Without these, 1,100 connections that dribble
//! their headers, under systemd's default limit of 1,024 descriptors, kept real users out.
//! A connection over budget is closed at once, before anything is read. A WebSocket keeps
//! its connection's place (its [`Slot`]) for as long as it lives. This module owns the TCP
//! side only; what a request may do is for the router.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
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

/// A connection's place in the budget, held by the connection and by a WebSocket made from
/// it; the place is free again when both are gone.
#[derive(Clone)]
pub struct Slot {
    _place: Arc<Place>,
}

/// Open connections per address.
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

struct Place {
    _total: OwnedSemaphorePermit,
    address: Option<(IpAddr, PerAddress)>,
    /// Held while the connection or its WebSocket lives: a stopping server waits for it.
    _open: mpsc::Sender<Infallible>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some((ip, open)) = &self.address {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = open.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    open.remove(ip);
                }
            }
        }
    }
}

struct Budget {
    limits: ConnectionLimits,
    total: Arc<Semaphore>,
    per_address: PerAddress,
}

impl Budget {
    fn admit(&self, ip: IpAddr, open: &mpsc::Sender<Infallible>) -> Option<Slot> {
        let total = self.total.clone().try_acquire_owned().ok()?;
        let trusted = self.limits.trusted_proxies.iter().any(|p| p.contains(&ip));
        let address = if trusted {
            None
        } else {
            let mut open = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(ip).or_default();
            if *n >= self.limits.per_address {
                return None;
            }
            *n += 1;
            Some((ip, self.per_address.clone()))
        };
        Some(Slot {
            _place: Arc::new(Place {
                _total: total,
                address,
                _open: open.clone(),
            }),
        })
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
    let budget = Budget {
        total: Arc::new(Semaphore::new(limits.total)),
        per_address: Arc::new(Mutex::new(HashMap::new())),
        limits,
    };
    // `stop` is dropped to ask connections to finish; each connection's slot holds a clone
    // of `open` until it and any WebSocket made from it have ended, so `all_done` ends when
    // the last one does.
    let (stop, stopping) = watch::channel(());
    let (open, mut all_done) = mpsc::channel::<Infallible>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused = 0u64;
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
        let Some(slot) = budget.admit(peer.ip(), &open) else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(client = %peer.ip(), refused, "connection over budget, closed");
            }
            continue;
        };
        // Live messages are small and must leave at once, not wait for the previous ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let header_timeout = budget.limits.header_timeout;
        tokio::spawn(connection(
            tcp,
            peer,
            slot,
            app.clone(),
            stopping.clone(),
            header_timeout,
        ));
    }
    drop(stop);
    drop(listener);
    drop(open);
    let _ = tokio::time::timeout(grace, all_done.recv()).await;
    Ok(())
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    mut stopping: watch::Receiver<()>,
    header_timeout: Duration,
) {
    let service = app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(slot.clone());
        req.map(axum::body::Body::new)
    });
    let service = TowerToHyperService::new(service);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        _ = stopping.changed() => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended");
    }
}
