//! The command line: `serve`, `migrate`, `user`, `cluster`, `backup`, `restore` and `mail`, and the
//! glue that runs them.
//!
//! User errors (bad configuration, unreachable database, unknown account) print one line
//! naming the problem and exit non-zero; no backtraces.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser, Subcommand};

use crate::addresses::{loopback_only, teacher_urls};
use crate::config::{check_environment, CommonArgs, Config, LogFormat, ServeArgs};
use crate::domain::account::{check_password, parse_name, Email};
use crate::server;

/// classcast: steer a classroom display from a laptop, tablet or phone.
///
/// Configuration comes from, in rising precedence: built-in defaults, the TOML file given
/// with --config, CLASSCAST_* environment variables, and flags. The server's own options
/// follow `serve`: `classcast serve --help` lists them.
// Not `Debug`: the settings hold database URLs, which may hold passwords.
#[derive(Parser)]
#[command(name = "classcast", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub config: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (applies pending migrations first)
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations to every database given, add new tables to a
    /// cluster's replication set, and exit
    Migrate,
    /// Manage teacher accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Set up two-way replication between the PostgreSQL databases given with
    /// --database (cluster mode; see docs/deploy-cluster.md)
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Write a backup of everything the school has, from a running server too (without
    /// stopping it), or check one; see docs/operations.md
    Backup(BackupArgs),
    /// See and resend the mail the server sends (password reset, confirmed addresses)
    #[command(subcommand)]
    Mail(MailCommand),
    /// Load a backup into an empty store of either kind (SQLite or PostgreSQL), after
    /// checking all of it; see docs/operations.md
    Restore {
        /// The backup file
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// Replace everything a store that is not empty holds
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Where to write the backup; - writes to standard output (for ssh, gpg or restic)
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "check",
        conflicts_with = "check"
    )]
    out: Option<std::path::PathBuf>,
    /// Verify a backup (every checksum, every stored file's bytes) without restoring it,
    /// and say what it holds
    #[arg(long, value_name = "FILE")]
    check: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Check every database's settings, then create the schema, the pglogical nodes, the
    /// replication set and the subscriptions both ways; a second run changes nothing
    Init,
    /// Per database: whether it answers, its settings, its subscriptions and why one does
    /// not replicate, replication lag, WAL kept for the others, clock skew; then every
    /// replicated table compared across the databases, and the nodes by heartbeat; exits
    /// non-zero when something needs attention
    Status {
        /// Re-enable at once a subscription that is down while its provider answers
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// How many mails are pending, sent and dead; each pending and dead one with its
    /// attempts and why the last failed; exits non-zero when a mail is dead
    Status,
    /// Send a pending or dead mail again now (from its node, or the node that took over)
    Retry {
        /// The mail's id, as `mail status` shows it
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from a prompt, or from stdin when piped
    Add {
        email: String,
        /// Display name shown to the teacher and on boards
        #[arg(long)]
        name: String,
    },
    /// List accounts (active, disabled, or pending approval)
    List,
    /// Approve an account that registered where registration needs approval (one not
    /// approved within 30 days is deleted)
    Approve { email: String },
    /// Disable an account: it can no longer sign in and its sessions stop working
    Disable { email: String },
    /// Enable a disabled account again
    Enable { email: String },
    /// Set a new password (prompt or stdin); every session of the account ends
    SetPassword { email: String },
}

/// Runs the parsed command line and turns the outcome into an exit code.
pub fn main(cli: Cli) -> ExitCode {
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    check_environment(&setting_variables(), std::env::vars().map(|(name, _)| name))?;
    let serve_args = match &cli.command {
        Command::Serve(args) => args,
        _ => &ServeArgs::default(),
    };
    let config = Config::resolve(&cli.config, serve_args)?;
    init_logging(config.log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(_) => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::User(cmd) => user(config, cmd).await,
            Command::Cluster(ClusterCommand::Init) => cluster_init(config).await,
            Command::Cluster(ClusterCommand::Status { repair }) => {
                cluster_status(config, repair).await
            }
            Command::Backup(args) => backup(config, args).await,
            Command::Mail(cmd) => mail(config, cmd).await,
            Command::Restore { file, force } => restore(config, &file, force).await,
        }
    })
}

/// The `CLASSCAST_*` variables of every setting, as the command line declares them.
fn setting_variables() -> Vec<String> {
    fn walk(command: &clap::Command, names: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                names.push(name.to_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, names);
        }
    }
    let mut names = Vec::new();
    walk(&Cli::command(), &mut names);
    names.sort();
    names.dedup();
    names
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLASSCAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = server::listen(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let urls = teacher_urls(addr, config.public_url.as_deref());
    let main = &urls[0];
    let mut message = format!(
        "classcast {} is serving on http://{addr}\n  \
         Teacher console:  {main}/teach\n  \
         Board page:       {main}/board   (open it on the classroom display)\n  \
         Lessons:          {main}/lessons",
        env!("CARGO_PKG_VERSION")
    );
    for other in &urls[1..] {
        message.push_str(&format!("\n  Also reachable:   {other}/teach"));
    }
    // Written with `writeln!`, not `println!`: a closed stdout must not stop the server.
    let _ = writeln!(std::io::stdout(), "{message}");
    if loopback_only(addr) && config.public_url.is_none() {
        tracing::warn!(
            "listening on {addr}, which only this computer can reach: phones and boards on \
             the network cannot open it. Listen on all interfaces (--listen 0.0.0.0:{}), or \
             set public_url to the address teachers use",
            addr.port()
        );
    }
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler installs");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    };
    server::serve(config, listener, shutdown).await?;
    Ok(())
}

async fn cluster_init(config: Config) -> anyhow::Result<()> {
    let changes = crate::store::postgres::cluster::init(&config.databases).await?;
    if changes.is_empty() {
        println!(
            "Nothing to change: the {} databases replicate both ways.",
            config.databases.len()
        );
    }
    for change in changes {
        println!("{change}");
    }
    Ok(())
}

/// WAL kept for a reader past this share of `max_slot_wal_keep_size` is worth a warning.
const SLOT_WAL_WARNING: f64 = 0.5;
/// Clocks further apart than this make "newest wins" decide by clock, not by order.
const CLOCK_SKEW_WARNING_MS: i64 = 1000;

async fn cluster_status(config: Config, repair: bool) -> anyhow::Result<()> {
    use crate::store::postgres::cluster;
    let mut trouble = Vec::new();
    for member in cluster::status(&config.databases, repair).await {
        let report = match member.report {
            Ok(report) => report,
            Err(why) => {
                println!("{}: NOT ANSWERING ({why})", member.url);
                trouble.push(format!("{} does not answer", member.url));
                continue;
            }
        };
        println!(
            "{}: node {}, clock {:+} ms",
            member.url, report.node, report.clock_skew_ms
        );
        if report.clock_skew_ms.abs() > CLOCK_SKEW_WARNING_MS {
            trouble.push(format!(
                "{}'s clock is {} ms off (run NTP)",
                member.url, report.clock_skew_ms
            ));
        }
        for setting in &report.settings {
            println!("  setting: {setting}");
            trouble.push(format!("{}: {setting}", member.url));
        }
        for s in &report.subscriptions {
            let repaired = if s.repaired { ", re-enabled now" } else { "" };
            match &s.stalled {
                None => println!("  subscription {}: {}", s.name, s.status),
                Some(why) => println!("  subscription {}: {} ({why}{repaired})", s.name, s.status),
            }
            if let (Some(why), false) = (&s.stalled, s.repaired) {
                trouble.push(format!(
                    "{}: subscription {} is {}: {why}",
                    member.url, s.name, s.status
                ));
            }
        }
        for slot in &report.slots {
            // PostgreSQL times the lag only while changes flow; a reader with nothing
            // left to confirm is not behind at all.
            let seconds = match (slot.lag_bytes, slot.lag_seconds) {
                (0, _) => "0 s".to_owned(),
                (_, Some(s)) => format!("{s:.1} s"),
                (_, None) => "seconds unknown".to_owned(),
            };
            println!(
                "  slot {}: {}, lag {} bytes ({seconds}), WAL kept {} bytes",
                slot.name,
                if slot.active { "read" } else { "NOT READ" },
                slot.lag_bytes,
                slot.retained_bytes
            );
            if slot.retained_bytes as f64 > SLOT_WAL_WARNING * report.slot_wal_limit as f64 {
                trouble.push(format!(
                    "{}: slot {} keeps {} of {} bytes of WAL allowed; its reader is behind or down",
                    member.url, slot.name, slot.retained_bytes, report.slot_wal_limit
                ));
            }
        }
    }
    let differences = cluster::compare(&config.databases).await?;
    for d in &differences {
        let rows: Vec<String> = d
            .rows
            .iter()
            .map(|(url, n)| format!("{url} holds {n}"))
            .collect();
        println!(
            "table {} DIFFERS in rows written {} to {} UTC: {}",
            d.table,
            d.from,
            d.to,
            rows.join(", ")
        );
        trouble.push(format!(
            "table {} differs between the databases (rows written {} to {} UTC)",
            d.table, d.from, d.to
        ));
    }
    if differences.is_empty() && config.databases.len() > 1 {
        println!("Every replicated table holds the same rows on every database that answers (rows older than 10 s).");
    }
    // Heartbeats replicate: the first database that answers knows every node.
    for url in &config.databases {
        let Ok(nodes) = cluster::nodes_seen(url).await else {
            continue;
        };
        let now = crate::domain::hlc::wall_millis();
        for (node, seen) in nodes {
            let ago = (now - seen).max(0) / 1000;
            // Nodes write one every 5 minutes; past 30 they count as gone.
            let gone = if ago > 30 * 60 { " (gone)" } else { "" };
            println!("node {node}: last heartbeat {ago} s ago{gone}");
        }
        break;
    }
    if trouble.is_empty() {
        println!("All databases answer and replicate.");
        return Ok(());
    }
    bail!("{}", trouble.join("; "))
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let (_, _, applied) = server::open_and_migrate(&config, server::Opener::Command).await?;
    if applied.is_empty() {
        println!("The database is up to date.");
    } else {
        println!("Applied: {}", applied.join(", "));
    }
    Ok(())
}

async fn backup(config: Config, args: BackupArgs) -> anyhow::Result<()> {
    if let Some(path) = args.check {
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let contents = crate::backup::check(file)?;
        println!("{} is whole: {}", path.display(), contents.summary());
        return Ok(());
    }
    let Some(out) = args.out else {
        bail!("say where to write the backup with --out FILE (or - for standard output)");
    };
    if out.as_os_str() == "-" {
        let stdout = std::io::BufWriter::new(std::io::stdout().lock());
        let contents = crate::backup::backup(&config.databases, stdout).await?;
        eprintln!("Backed up: {}", contents.summary());
        return Ok(());
    }
    // Written beside the file and renamed once whole and synced: a backup cut short never
    // takes the place of a good one.
    let partial = out.with_extension("partial");
    // Readable by its owner alone: it holds password hashes and session tokens' hashes.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
    }
    .with_context(|| format!("cannot create {}", partial.display()))?;
    let synced = std::io::BufWriter::new(crate::backup::SyncedFile::new(&file));
    let written = crate::backup::backup(&config.databases, synced).await;
    let contents = match written.and_then(|c| {
        file.sync_all()
            .map(|()| c)
            .map_err(crate::backup::BackupError::Write)
    }) {
        Ok(contents) => contents,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    std::fs::rename(&partial, &out)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    println!("Backed up to {}: {}", out.display(), contents.summary());
    Ok(())
}

async fn restore(config: Config, file: &std::path::Path, force: bool) -> anyhow::Result<()> {
    // Checked whole before the store is even opened: a bad file changes nothing.
    let opened =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let checked = crate::backup::check(opened)?;
    server::open_and_migrate(&config, server::Opener::Command).await?;
    let (contents, replaced) =
        crate::backup::restore(&config.databases, file, checked, force).await?;
    if !replaced.is_empty() {
        let listed: Vec<String> = replaced.iter().map(|(t, n)| format!("{n} {t}")).collect();
        println!("Replaced what the store held: {}", listed.join(", "));
    }
    println!("Restored {}", contents.summary());
    Ok(())
}

async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let (_, store, _) = server::open_and_migrate(&config, server::Opener::Command).await?;
    let accounts = server::accounts(&config, store.clone());
    let find = |email: String| {
        let store = store.clone();
        async move {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            match store.login_record(email.normalized()).await? {
                Some(r) => Ok(r.account),
                None => bail!("no account with the e-mail address {}", email.as_str()),
            }
        }
    };
    match cmd {
        UserCommand::Add { email, name } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let name = parse_name(&name).map_err(|m| anyhow::anyhow!("name: {m}"))?;
            let password = read_password(&email)?;
            let hash = server::password_hasher(&config).hash(password).await?;
            let account = store
                .create_account(&email, &name, &hash, false)
                .await
                .with_context(|| format!("cannot add {}", email.as_str()))?;
            println!(
                "Added {} <{}> ({})",
                account.name, account.email, account.id
            );
        }
        UserCommand::List => {
            for a in store.list_accounts().await? {
                let state = match (a.pending, a.disabled) {
                    (true, _) => "pending",
                    (false, true) => "disabled",
                    (false, false) => "active",
                };
                println!("{}\t{}\t{}\t{}", a.email, a.name, state, a.id);
            }
        }
        UserCommand::Disable { email } => {
            let account = find(email).await?;
            store.set_account_disabled(account.id, true).await?;
            println!("Disabled {}", account.email);
        }
        UserCommand::Approve { email } => {
            let account = find(email).await?;
            if !account.pending {
                bail!("{} is not waiting for approval", account.email);
            }
            store.set_account_disabled(account.id, false).await?;
            println!("Approved {}; they can sign in now", account.email);
        }
        UserCommand::Enable { email } => {
            let account = find(email).await?;
            store.set_account_disabled(account.id, false).await?;
            println!("Enabled {}", account.email);
        }
        UserCommand::SetPassword { email } => {
            let account = find(email).await?;
            let password =
                read_password(&Email::parse(&account.email).map_err(anyhow::Error::msg)?)?;
            accounts.set_password(&account, &password).await?;
            println!(
                "Set a new password for {}; their sessions have ended",
                account.email
            );
        }
    }
    Ok(())
}

/// Reads a password from a prompt (asked twice), or the first line of stdin when piped;
/// never from the command line, where other users could see it.
fn read_password(email: &Email) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    check_password(&password, email).map_err(|m| anyhow::anyhow!("password: {m}"))?;
    Ok(password)
}

async fn mail(config: Config, cmd: MailCommand) -> anyhow::Result<()> {
    use crate::store::MailState;
    let (_, store, _) = server::open_and_migrate(&config, server::Opener::Command).await?;
    match cmd {
        MailCommand::Status => {
            let mails = store.mail_records().await?;
            let count = |state| mails.iter().filter(|m| m.state == state).count();
            let dead = count(MailState::Dead);
            println!(
                "{} pending, {} sent, {dead} dead (sent and dead mail is kept {} days)",
                count(MailState::Pending),
                count(MailState::Sent),
                crate::mail::MAIL_KEPT.as_secs() / 86_400
            );
            let at = |ms: i64| {
                let since = std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                httpdate::fmt_http_date(std::time::UNIX_EPOCH + since)
            };
            for m in mails.iter().filter(|m| m.state != MailState::Sent) {
                let state = if m.state == MailState::Dead {
                    "dead"
                } else {
                    "pending"
                };
                println!(
                    "{state:<8} {}  {}  to {}  \"{}\"",
                    m.id,
                    at(m.written.millis()),
                    m.recipient,
                    m.subject
                );
                if m.failures > 0 || m.reason.is_some() {
                    let next = match m.state {
                        MailState::Pending if m.due_at_ms > 0 => {
                            format!(", next try {}", at(m.due_at_ms))
                        }
                        _ => String::new(),
                    };
                    println!(
                        "         {} failed attempt(s){next}: {}",
                        m.failures,
                        m.reason.as_deref().unwrap_or("")
                    );
                }
            }
            if dead > 0 {
                bail!("{dead} mail(s) dead: fix the cause, then `classcast mail retry ID`");
            }
        }
        MailCommand::Retry { id } => match store.retry_mail(id).await {
            Ok(MailState::Sent) => bail!("mail {id} was sent already"),
            Ok(_) => println!("Mail {id} is sent again within seconds by a running server"),
            Err(crate::store::StoreError::NotFound) => bail!("no mail with the id {id}"),
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}
