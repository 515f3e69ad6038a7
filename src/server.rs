//! Start-up: builds the state (store, accounts, pages) from a [`Config`], serves the router
//! on a listener until `shutdown` resolves, and runs the background chores.
//!
//! `serve` is the one entry point `main` and the integration tests share; it takes a bound
//! listener so tests can bind port 0 and know the address before the server runs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::addresses::board_url;
use crate::auth::password::PasswordHasher;
use crate::auth::{Accounts, AuthSettings, RegistrationMode};
use crate::bus::local::LocalBus;
use crate::bus::pg_notify::PgBus;
use crate::bus::{Bus, PRESENCE_REFRESH};
use crate::config::{mib, Config, Registration};
use crate::domain::node::Node;
use crate::error_chain;
use crate::http::{self, ops::ClientConfig, pages::Pages, AppState};
use crate::live::Live;
use crate::quota::LessonQuota;
use crate::store::{self, OpenError, Store};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("cannot use the node id in {path}: {reason} (delete the file to make a new one, or set node_id)")]
    NodeId { path: String, reason: String },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot prepare the database: {0}")]
    Migrate(String),
    #[error("cannot start the bus to other nodes: {0}")]
    Bus(String),
    #[error("cannot listen for metrics on {address}: {reason}")]
    MetricsListen { address: String, reason: String },
    #[error(transparent)]
    Metrics(#[from] http::metrics::MetricsError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// The file in the data directory that keeps this node's id when none is configured.
pub const NODE_ID_FILE: &str = "node-id";

/// This node: the configured id, or the one kept in the data directory (made once; a
/// database from before node ids lends it the id it recorded, so its rows stay this node's).
pub async fn node(config: &Config) -> Result<Node, ServeError> {
    if let Some(id) = config.node_id {
        return Ok(Node::new(id));
    }
    let path = config.data_dir.join(NODE_ID_FILE);
    let failed = |reason: String| ServeError::NodeId {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => uuid::Uuid::parse_str(text.trim())
            .map(Node::new)
            .map_err(|_| failed("it does not hold a UUID".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut recorded = None;
            for url in config.databases.iter().filter(|u| u.starts_with("sqlite:")) {
                recorded = recorded.or(store::sqlite::recorded_node_id(url).await);
            }
            let id = recorded.unwrap_or_else(uuid::Uuid::now_v7);
            // Written whole or not at all: a torn file would give the node a new identity.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, format!("{id}\n"))
                .and_then(|()| std::fs::rename(&partial, &path))
                .map_err(|e| failed(e.to_string()))?;
            Ok(Node::new(id))
        }
        Err(e) => Err(failed(e.to_string())),
    }
}

/// Who opens the store: the server, or a command of the command line run once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    Server,
    Command,
}

/// This node and its store, opened, creating the node's data directory first (its id and the
/// embedded database live there). A command run on PostgreSQL alone needs neither: it
/// writes no data directory, and where none holds an id it acts under an id of its own
/// for that run (its rows are upkept like a node gone silent).
pub async fn open_store(
    config: &Config,
    opener: Opener,
) -> Result<(Node, Arc<dyn Store>), ServeError> {
    let embedded = !config.databases.iter().all(|url| store::is_postgres(url));
    let kept = config.node_id.is_some() || config.data_dir.join(NODE_ID_FILE).exists();
    let node = if opener == Opener::Command && !embedded && !kept {
        Node::new(uuid::Uuid::now_v7())
    } else {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| ServeError::DataDir {
            path: config.data_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        node(config).await?
    };
    let store = store::open(&config.databases, &node).await?;
    Ok((node, store))
}

/// Opens the store and applies pending migrations; returns them with this node.
pub async fn open_and_migrate(
    config: &Config,
    opener: Opener,
) -> Result<(Node, Arc<dyn Store>, Vec<String>), ServeError> {
    let (node, store) = open_store(config, opener).await?;
    let applied = store
        .migrate()
        .await
        .map_err(|e| ServeError::Migrate(error_chain(&e)))?;
    Ok((node, store, applied))
}

/// The bus to the other nodes: `NOTIFY` on PostgreSQL; none for a node alone on SQLite.
fn bus(config: &Config, node: &Node) -> Result<Arc<dyn Bus>, ServeError> {
    if config.databases.iter().any(|url| store::is_postgres(url)) {
        let bus =
            PgBus::start(&config.databases, node.id).map_err(|e| ServeError::Bus(e.to_string()))?;
        return Ok(Arc::new(bus));
    }
    Ok(Arc::new(LocalBus))
}

/// The password hasher every entry point uses: one hash per core at a time.
pub fn password_hasher(config: &Config) -> PasswordHasher {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    PasswordHasher::new(cores, Duration::from_millis(config.hash_wait_ms))
}

pub fn accounts(config: &Config, store: Arc<dyn Store>) -> Accounts {
    Accounts::new(
        store,
        password_hasher(config),
        AuthSettings {
            registration: match config.registration() {
                Registration::Closed => RegistrationMode::Closed,
                Registration::Confirm => RegistrationMode::Confirm,
                // A domain restriction is only worth something if the address is confirmed by
                // mail or an administrator looks at each new account.
                Registration::Approval => RegistrationMode::Approval,
                Registration::Open if !config.allowed_email_domains.is_empty() => {
                    match config.smtp_url {
                        Some(_) => RegistrationMode::Confirm,
                        None => RegistrationMode::Approval,
                    }
                }
                Registration::Open => RegistrationMode::Open,
            },
            allowed_email_domains: config.allowed_email_domains.clone(),
            session_ttl: Duration::from_secs(config.session_ttl_secs),
            session_renew_before: Duration::from_secs(config.session_renew_secs),
            session_max_age: Duration::from_secs(config.session_max_age_secs),
        },
    )
}

fn report_purge(what: &str, purged: Result<u64, impl std::fmt::Display>) {
    match purged {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "purged {what}"),
        Err(e) => tracing::warn!(error = %e, "could not purge {what}"),
    }
}

/// How often the store is asked whether a session with open live connections has ended
/// outside this process (`classcast user`, another node): the longest such a session keeps
/// its connections.
pub const SESSION_POLL: Duration = Duration::from_millis(250);

/// The connection budget: configured, or from the open-file limit (raised to its hard
/// maximum first), keeping 100 descriptors for the database, logs and the listener.
fn connection_limits(config: &Config) -> http::connections::ConnectionLimits {
    let total = config.max_connections.unwrap_or_else(|| {
        let open_files = raise_open_file_limit().saturating_sub(100).max(64);
        usize::try_from(open_files).unwrap_or(usize::MAX)
    });
    http::connections::ConnectionLimits {
        total,
        per_address: config
            .max_connections_per_address
            .unwrap_or((total / 16).max(32).min(total)),
        trusted_proxies: config.trusted_proxies.clone(),
        header_timeout: Duration::from_secs(config.header_timeout_secs),
    }
}

/// Raises the soft limit on open files to the hard one, as servers that hold many sockets
/// do (systemd's soft default of 1,024 would cap the boards a node holds); returns it.
fn raise_open_file_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(1024)
}

/// How often a node records that it is alive.
const HEARTBEAT_MINUTES: u64 = 5;
/// A node with a heartbeat this recent counts as alive (two heartbeats, and a minute).
const ALIVE_WITHIN: Duration = Duration::from_secs((2 * HEARTBEAT_MINUTES + 1) * 60);
/// How long a node may stay silent before the live node with the lowest id takes over its
/// purges: far longer than a restart or an upgrade, so two nodes never purge the same rows
/// in normal operation.
pub const UPKEEP_LEASE: Duration = Duration::from_secs(30 * 60);

/// Connections the kernel holds for the server until it accepts them. The standard 128 is
/// too few for the boards of a restarted node all moving to the others at once (or a school
/// arriving at 8:30): past it the kernel drops a new connection's handshake, and the client
/// tries again only a second later (measured: 1 s of the restart benchmark's worst moves).
/// The kernel caps it at `net.core.somaxconn` (4096 on current Linux).
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with [`LISTEN_BACKLOG`], reusing the address as a restarted
/// node must (its last connections may still be in `TIME_WAIT`).
pub fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How long open requests may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the server on `listener` until `shutdown` resolves, then drains open requests.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listening = listener.local_addr()?;
    // Before anything counts: what counts before the recorder is installed counts nowhere.
    let metrics = match config.metrics_listen {
        Some(address) => {
            let handle = http::metrics::recorder()?;
            let listener =
                TcpListener::bind(address)
                    .await
                    .map_err(|e| ServeError::MetricsListen {
                        address: address.to_string(),
                        reason: e.to_string(),
                    })?;
            tracing::info!(address = %listener.local_addr()?, "serving /metrics");
            Some((handle, listener))
        }
        None => None,
    };
    let (node, store, applied) = open_and_migrate(&config, Opener::Server).await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    let media = crate::media::MediaSettings::new(
        &config.data_dir,
        mib(config.media_max_mib),
        mib(config.media_storage_mib),
    );
    // Files on their way when the last process ended (killed mid-upload) are of no use now.
    match std::fs::remove_dir_all(&media.uploads) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(error = %e, "cannot clear the uploads directory")
        }
        _ => {}
    }
    let mail = match config.mail() {
        Some(settings) => Some((settings.from.clone(), crate::mail::outbox(&settings)?)),
        None => None,
    };
    let mut accounts = accounts(&config, store.clone());
    if let Some((_, (outbox, _))) = &mail {
        accounts = accounts.with_mail(outbox.clone());
    }
    let accounts = Arc::new(accounts);
    let mail_sender = mail.map(|(from, (outbox, transport))| {
        tokio::spawn(crate::mail::sender::run(
            outbox,
            store.clone(),
            transport,
            from,
        ))
    });
    let bus = bus(&config, &node)?;
    let live = Arc::new(Live::new(
        store.clone(),
        bus.clone(),
        node.clock.clone(),
        Duration::from_millis(config.heartbeat_ms),
        Duration::from_secs(config.code_ttl_secs),
    ));
    let cluster = tokio::spawn(follow_other_nodes(live.clone(), bus));
    let quota = Arc::new(LessonQuota::new(
        store.clone(),
        mib(config.lesson_storage_mib),
        crate::quota::TALLY_REFRESH,
    ));
    let office = Arc::new(crate::office_import::Office::new(
        config.soffice.as_deref(),
        &media.uploads,
        Duration::from_secs(config.office_import_secs),
    ));
    let state = AppState::new(http::Services {
        store,
        accounts: accounts.clone(),
        client_config: Arc::new(ClientConfig {
            api_hosts: config.api_hosts.clone(),
            request_timeout_ms: config.request_timeout_ms,
            media_max_bytes: mib(config.media_max_mib),
            public_url: board_url(listening, config.public_url.as_deref()),
            mail: accounts.mails(),
            office_import: office.available(),
        }),
        pages: Arc::new(Pages::load()),
        live: live.clone(),
        quota: quota.clone(),
        room: crate::media::Room::new(media.lesson_file.max_bytes),
        media: Arc::new(media),
        office,
        lesson_bodies: Arc::new(crate::cache::Cache::new(http::lessons::LESSON_BODIES)),
        http: Arc::new(http::HttpSettings {
            max_body_bytes: config.max_body_bytes,
            request_deadline: Duration::from_secs(config.request_deadline_secs),
            trusted_proxies: config.trusted_proxies.clone(),
            allowed_origins: config.allowed_origins.clone(),
            api_hosts: config.api_hosts.clone(),
        }),
    });
    let room = state.room.clone();
    let chores_live = live.clone();
    let chores_store = state.store.clone();
    let chores = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        for minute in 0u64.. {
            tick.tick().await;
            accounts.prune_limits();
            chores_live.prune_limits();
            quota.prune();
            room.prune();
            if minute % HEARTBEAT_MINUTES == 0 {
                if let Err(e) = chores_store.heartbeat().await {
                    tracing::warn!(error = %error_chain(&e), "cannot record this node's heartbeat");
                }
                match chores_store.live_nodes(ALIVE_WITHIN).await {
                    Ok(nodes) => chores_live.share_guesses(nodes),
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "cannot count the live nodes")
                    }
                }
            }
            if minute % 60 == 0 {
                let nodes = match chores_store.upkeep_nodes(UPKEEP_LEASE).await {
                    Ok(nodes) => nodes,
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "cannot tell whose upkeep is this node's");
                        continue;
                    }
                };
                if !nodes.taken_over().is_empty() {
                    tracing::info!(nodes = ?nodes.taken_over(), "purging for nodes gone longer than the lease");
                }
                report_purge(
                    "superseded board states",
                    chores_live.purge_states(&nodes).await,
                );
                report_purge(
                    "expired pairing codes",
                    chores_live.purge_codes(&nodes).await,
                );
                report_purge(
                    "boards never paired",
                    chores_live.purge_unpaired_boards(&nodes).await,
                );
                report_purge("unreachable lesson revisions", quota.purge(&nodes).await);
                report_purge(
                    "unused media",
                    crate::media::purge(chores_store.as_ref(), &nodes).await,
                );
                report_purge(
                    "superseded heartbeats",
                    chores_store.purge_heartbeats(&nodes).await,
                );
                report_purge("expired sessions", accounts.purge_sessions(&nodes).await);
                report_purge(
                    "accounts never approved",
                    accounts.purge_unapproved(&nodes).await,
                );
                report_purge(
                    "old mail and expired links",
                    crate::mail::purge(chores_store.as_ref(), &nodes).await,
                );
            }
        }
    });
    let sessions_live = live.clone();
    let sessions = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SESSION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sessions_live.recheck_sessions().await {
                tracing::warn!(error = %e, "could not check open sessions");
            }
        }
    });
    let metrics = metrics.map(|(handle, listener)| {
        let sources = http::metrics::Sources {
            handle,
            live: live.clone(),
            accounts: state.accounts.clone(),
        };
        let mut closing = live.closing.subscribe();
        let stopped = async move { crate::live::until_closing(&mut closing).await };
        let sampled = tokio::spawn(sample_databases(state.store.clone()));
        let served = tokio::spawn(async move {
            if let Err(e) = http::metrics::serve(listener, sources, stopped).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
        (sampled, served)
    });
    let limits = connection_limits(&config);
    tracing::info!(
        total = limits.total,
        per_address = limits.per_address,
        "connection budget"
    );
    let app = http::app(state);
    let closing = live.closing.clone();
    let result = http::connections::serve(
        listener,
        app,
        limits,
        shutdown,
        move || {
            closing.send_replace(true);
        },
        SHUTDOWN_GRACE,
    )
    .await;
    chores.abort();
    sessions.abort();
    if let Some(sender) = mail_sender {
        sender.abort();
    }
    cluster.abort();
    if let Some((sampled, served)) = metrics {
        sampled.abort();
        served.abort();
    }
    Ok(result?)
}

/// How often the databases and their replication are looked at for the metrics.
const SAMPLE_DATABASES_EVERY: Duration = Duration::from_secs(15);

/// Sets the gauges of the databases (which answer, which is in use) and of replication (lag
/// and state per pglogical subscription) every [`SAMPLE_DATABASES_EVERY`]: a few queries
/// apart from every request, and from the scrape, which a slow database would otherwise hold.
async fn sample_databases(store: Arc<dyn Store>) {
    let mut tick = tokio::time::interval(SAMPLE_DATABASES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Subscriptions seen before: one no database shows now is not replicating.
    let mut seen = std::collections::HashSet::new();
    loop {
        tick.tick().await;
        for db in store.databases().await {
            let database = db.url.clone();
            metrics::gauge!("classcast_database_up", "database" => database.clone())
                .set(f64::from(u8::from(db.answering)));
            metrics::gauge!("classcast_database_active", "database" => database)
                .set(f64::from(u8::from(db.active)));
        }
        let replication = store.replication().await;
        let now: std::collections::HashSet<String> =
            replication.iter().map(|s| s.name.clone()).collect();
        for gone in seen.difference(&now) {
            metrics::gauge!("classcast_replication_up", "subscription" => gone.clone()).set(0.0);
        }
        for subscription in replication {
            let name = subscription.name;
            metrics::gauge!("classcast_replication_up", "subscription" => name.clone())
                .set(f64::from(u8::from(subscription.replicating)));
            if let Some(bytes) = subscription.lag_bytes {
                metrics::gauge!("classcast_replication_lag_bytes", "subscription" => name.clone())
                    .set(bytes_f64(bytes));
            }
            if let Some(seconds) = subscription.lag_seconds {
                metrics::gauge!("classcast_replication_lag_seconds", "subscription" => name.clone())
                    .set(seconds);
            }
            seen.insert(name);
        }
        // The outbox is the cluster's: every node shows the same counts.
        match store.mail_counts().await {
            Ok((pending, dead)) => {
                metrics::gauge!("classcast_mail_pending").set(count_f64(pending));
                metrics::gauge!("classcast_mail_dead").set(count_f64(dead));
            }
            Err(e) => tracing::warn!(error = %e, "cannot count the mail outbox"),
        }
    }
}

/// A count as a gauge's value (exact below 2^53).
fn count_f64(n: u64) -> f64 {
    n as f64
}

/// A byte count as a gauge's value (exact below 2^53 bytes, 8 PiB).
fn bytes_f64(bytes: i64) -> f64 {
    bytes as f64
}

/// Events from other nodes followed together, at most.
const HEARD_BATCH: usize = 1000;

/// How often a node in a cluster compares the boards it serves with the store.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(3);

/// Follows what the other nodes say, catches up from the store every [`CATCH_UP_EVERY`]
/// (events can be lost), and repeats this node's board presence; nothing for a node alone.
async fn follow_other_nodes(live: Arc<Live>, bus: Arc<dyn Bus>) {
    let Some(mut heard) = bus.take_heard() else {
        return;
    };
    let mut catch_up = tokio::time::interval(CATCH_UP_EVERY);
    catch_up.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut presence = tokio::time::interval(PRESENCE_REFRESH);
    loop {
        tokio::select! {
            next = heard.recv() => {
                let Some(first) = next else { return };
                // What else has arrived meanwhile is followed with it: one read of the store
                // for a burst of presses on other nodes.
                let mut batch = vec![first];
                while batch.len() < HEARD_BATCH {
                    match heard.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                live.hear(batch).await;
            }
            _ = catch_up.tick() => {
                if let Err(e) = live.catch_up().await {
                    tracing::warn!(error = %e, "cannot catch up with other nodes");
                }
            }
            _ = presence.tick() => live.repeat_presence(),
        }
    }
}
