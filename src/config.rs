//! Configuration: defaults < TOML file < `CLASSCAST_*` environment variables < flags.
//!
//! clap resolves flag-over-environment; this module lays the file and the defaults beneath.
//! The file is strict (an unknown key is an error naming it) so a typo never silently falls
//! back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;

/// Options every command shares. Each also reads `CLASSCAST_<NAME>`; a list from the
/// environment is comma-separated.
#[derive(Debug, Default, Args)]
pub struct CommonArgs {
    /// TOML configuration file
    #[arg(long, env = "CLASSCAST_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database [default: ./classcast-data]
    #[arg(long, env = "CLASSCAST_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, repeatable [default: sqlite://<data-dir>/classcast.db]
    #[arg(
        long = "database",
        env = "CLASSCAST_DATABASE",
        global = true,
        value_name = "URL",
        value_delimiter = ','
    )]
    pub databases: Vec<String>,
    /// This node's id, a UUID, unique in a cluster [default: made once and kept in <data-dir>/node-id]
    #[arg(long, env = "CLASSCAST_NODE_ID", global = true, value_name = "UUID")]
    pub node_id: Option<uuid::Uuid>,
    /// Log format [default: text]
    #[arg(long, env = "CLASSCAST_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// Options only the server reads, so only `serve --help` lists them. Each also reads
/// `CLASSCAST_<NAME>`; a list from the environment is comma-separated.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "CLASSCAST_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Whether and how accounts are created on the sign-in page [default: approval]
    #[arg(long, env = "CLASSCAST_REGISTRATION", value_enum)]
    pub registration: Option<Registration>,
    /// Only these e-mail domains may register (accounts then wait for approval), repeatable [default: any]
    #[arg(
        long = "allowed-email-domain",
        env = "CLASSCAST_ALLOWED_EMAIL_DOMAINS",
        value_name = "DOMAIN",
        value_delimiter = ','
    )]
    pub allowed_email_domains: Vec<String>,
    /// API base URLs the browser client fails over between, repeatable [default: the page's own origin]
    #[arg(
        long = "api-host",
        env = "CLASSCAST_API_HOSTS",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub api_hosts: Vec<String>,
    /// The address teachers open on their phones and laptops (https://classcast.school.org), shown on the boards [default: this machine's network address when listening on all interfaces, else the board page's own]
    #[arg(long, env = "CLASSCAST_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Front-end origins allowed to call this API from another origin, repeatable [default: none]
    #[arg(
        long = "allowed-origin",
        env = "CLASSCAST_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For names the client, as addresses or CIDR ranges, repeatable [default: none]
    #[arg(
        long = "trusted-proxy",
        env = "CLASSCAST_TRUSTED_PROXIES",
        value_name = "ADDRESS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Browser client's per-request timeout in milliseconds [default: 10000]
    #[arg(long, env = "CLASSCAST_REQUEST_TIMEOUT_MS", value_name = "MS")]
    pub request_timeout_ms: Option<u64>,
    /// Session lifetime in seconds [default: 2592000 (30 days)]
    #[arg(long, env = "CLASSCAST_SESSION_TTL_SECS", value_name = "SECS")]
    pub session_ttl_secs: Option<u64>,
    /// Renew a session when less than this many seconds are left [default: 604800 (7 days)]
    #[arg(long, env = "CLASSCAST_SESSION_RENEW_SECS", value_name = "SECS")]
    pub session_renew_secs: Option<u64>,
    /// No login stays signed in longer than this, however often renewed, in seconds [default: 7776000 (90 days)]
    #[arg(long, env = "CLASSCAST_SESSION_MAX_AGE_SECS", value_name = "SECS")]
    pub session_max_age_secs: Option<u64>,
    /// Largest accepted request body in bytes [default: 1048576]
    #[arg(long, env = "CLASSCAST_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Live connections are pinged this often; silent for 7/3 of it means dead, in ms [default: 15000]
    #[arg(long, env = "CLASSCAST_HEARTBEAT_MS", value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// How long a board's pairing code lives, 1 to 600 seconds [default: 600]
    #[arg(long, env = "CLASSCAST_CODE_TTL_SECS", value_name = "SECS")]
    pub code_ttl_secs: Option<u64>,
    /// Lesson storage per teacher, every kept revision counted, in MiB [default: 256]
    #[arg(long, env = "CLASSCAST_LESSON_STORAGE_MIB", value_name = "MIB")]
    pub lesson_storage_mib: Option<u64>,
    /// The largest picture or video a teacher may upload, in MiB [default: 200]
    #[arg(long, env = "CLASSCAST_MEDIA_MAX_MIB", value_name = "MIB")]
    pub media_max_mib: Option<u64>,
    /// Pictures and videos per teacher, each file counted once, in MiB [default: 2048]
    #[arg(long, env = "CLASSCAST_MEDIA_STORAGE_MIB", value_name = "MIB")]
    pub media_storage_mib: Option<u64>,
    /// Connections open at once, WebSockets included [default: the open-file limit less 100]
    #[arg(long, env = "CLASSCAST_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections open at once from one address [default: a sixteenth of max_connections, at least 32]
    #[arg(long, env = "CLASSCAST_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Seconds a client may take to send a request's headers; idle connections close after it [default: 20]
    #[arg(long, env = "CLASSCAST_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request may take, its body included, before 408 [default: 60]
    #[arg(long, env = "CLASSCAST_REQUEST_DEADLINE_SECS", value_name = "SECS")]
    pub request_deadline_secs: Option<u64>,
    /// Longest a login waits for a password-hashing slot before 503, in ms [default: 5000]
    #[arg(long, env = "CLASSCAST_HASH_WAIT_MS", value_name = "MS")]
    pub hash_wait_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone registers and signs in at once, so the answer tells whether an address is taken (with `allowed_email_domains`: as `approval`)
    Open,
    /// New accounts wait for `classcast user approve` (deleted if not approved within 30 days); the first account on a server is approved at once
    #[default]
    Approval,
    /// Accounts only through `classcast user add`.
    Closed,
}

/// The configuration file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    databases: Option<Vec<String>>,
    node_id: Option<uuid::Uuid>,
    log_format: Option<LogFormat>,
    registration: Option<Registration>,
    allowed_email_domains: Option<Vec<String>>,
    api_hosts: Option<Vec<String>>,
    public_url: Option<String>,
    allowed_origins: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    request_timeout_ms: Option<u64>,
    session_ttl_secs: Option<u64>,
    session_renew_secs: Option<u64>,
    session_max_age_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    hash_wait_ms: Option<u64>,
    heartbeat_ms: Option<u64>,
    code_ttl_secs: Option<u64>,
    lesson_storage_mib: Option<u64>,
    media_max_mib: Option<u64>,
    media_storage_mib: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    header_timeout_secs: Option<u64>,
    request_deadline_secs: Option<u64>,
}

/// The effective configuration. Not `Debug`: database URLs may hold passwords, and nothing
/// should print them by accident (logs use `store::redact_url`).
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub databases: Vec<String>,
    /// `None`: the id kept in the data directory (see `server::node`).
    pub node_id: Option<uuid::Uuid>,
    pub log_format: LogFormat,
    pub registration: Registration,
    pub allowed_email_domains: Vec<String>,
    pub api_hosts: Vec<String>,
    pub public_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub request_timeout_ms: u64,
    pub session_ttl: Duration,
    pub session_renew_before: Duration,
    pub session_max_age: Duration,
    pub max_body_bytes: usize,
    pub hash_wait: Duration,
    pub heartbeat: Duration,
    pub code_ttl: Duration,
    pub lesson_storage_bytes: u64,
    pub media_max_bytes: u64,
    pub media_storage_bytes: u64,
    /// `None`: from the open-file limit when serving.
    pub max_connections: Option<usize>,
    /// `None`: a sixteenth of the connection budget, at least 32.
    pub max_connections_per_address: Option<usize>,
    pub header_timeout: Duration,
    pub request_deadline: Duration,
}

/// The variable that sets the log filter, the one `CLASSCAST_*` variable that is not a setting.
pub const LOG_VARIABLE: &str = "CLASSCAST_LOG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown environment variable {name}: {}", suggest(nearest))]
    UnknownVariable {
        name: String,
        nearest: Option<String>,
    },
    #[error("cannot read the configuration file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the configuration file {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
    #[error("invalid setting {name}: {reason}")]
    Setting { name: &'static str, reason: String },
}

impl Config {
    /// Merges flags and environment (already in `common` and `args`) over the file over the
    /// defaults. Commands other than `serve` pass `ServeArgs::default()`: the file still
    /// counts for them.
    pub fn resolve(common: &CommonArgs, args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &common.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = common
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("classcast-data"));
        let databases = pick_list(&common.databases, file.databases)
            .unwrap_or_else(|| vec![default_database(&data_dir)]);
        let config = Config {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            databases,
            node_id: common.node_id.or(file.node_id),
            log_format: common.log_format.or(file.log_format).unwrap_or_default(),
            registration: args.registration.or(file.registration).unwrap_or_default(),
            allowed_email_domains: pick_list(
                &args.allowed_email_domains,
                file.allowed_email_domains,
            )
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .collect(),
            api_hosts: pick_list(&args.api_hosts, file.api_hosts)
                .unwrap_or_else(|| vec![String::new()])
                .into_iter()
                .map(|h| h.trim().trim_end_matches('/').to_owned())
                .collect(),
            public_url: args
                .public_url
                .clone()
                .or(file.public_url)
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            allowed_origins: pick_list(&args.allowed_origins, file.allowed_origins)
                .unwrap_or_default(),
            trusted_proxies: pick_list(&args.trusted_proxies, file.trusted_proxies)
                .unwrap_or_default()
                .iter()
                .map(|p| parse_network(p))
                .collect::<Result<_, _>>()?,
            request_timeout_ms: args
                .request_timeout_ms
                .or(file.request_timeout_ms)
                .unwrap_or(10_000),
            session_ttl: Duration::from_secs(
                args.session_ttl_secs
                    .or(file.session_ttl_secs)
                    .unwrap_or(30 * 86_400),
            ),
            session_renew_before: Duration::from_secs(
                args.session_renew_secs
                    .or(file.session_renew_secs)
                    .unwrap_or(7 * 86_400),
            ),
            session_max_age: Duration::from_secs(
                args.session_max_age_secs
                    .or(file.session_max_age_secs)
                    .unwrap_or(90 * 86_400),
            ),
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1 << 20),
            hash_wait: Duration::from_millis(
                args.hash_wait_ms.or(file.hash_wait_ms).unwrap_or(5_000),
            ),
            heartbeat: Duration::from_millis(
                args.heartbeat_ms.or(file.heartbeat_ms).unwrap_or(15_000),
            ),
            code_ttl: Duration::from_secs(args.code_ttl_secs.or(file.code_ttl_secs).unwrap_or(600)),
            lesson_storage_bytes: args
                .lesson_storage_mib
                .or(file.lesson_storage_mib)
                .unwrap_or(256)
                .saturating_mul(1 << 20),
            media_max_bytes: args
                .media_max_mib
                .or(file.media_max_mib)
                .unwrap_or(200)
                .saturating_mul(1 << 20),
            media_storage_bytes: args
                .media_storage_mib
                .or(file.media_storage_mib)
                .unwrap_or(2048)
                .saturating_mul(1 << 20),
            max_connections: args.max_connections.or(file.max_connections),
            max_connections_per_address: args
                .max_connections_per_address
                .or(file.max_connections_per_address),
            header_timeout: Duration::from_secs(
                args.header_timeout_secs
                    .or(file.header_timeout_secs)
                    .unwrap_or(20),
            ),
            request_deadline: Duration::from_secs(
                args.request_deadline_secs
                    .or(file.request_deadline_secs)
                    .unwrap_or(60),
            ),
        };
        config.validate()
    }

    fn validate(self) -> Result<Self, ConfigError> {
        if self.session_ttl.is_zero() {
            return Err(ConfigError::Setting {
                name: "session_ttl_secs",
                reason: "must be at least 1".into(),
            });
        }
        if self.session_max_age < self.session_ttl {
            return Err(ConfigError::Setting {
                name: "session_max_age_secs",
                reason: "must be at least session_ttl_secs".into(),
            });
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Setting {
                name: "max_body_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        if self.heartbeat < Duration::from_millis(100) {
            return Err(ConfigError::Setting {
                name: "heartbeat_ms",
                reason: "must be at least 100".into(),
            });
        }
        if !(1..=600).contains(&self.code_ttl.as_secs()) {
            return Err(ConfigError::Setting {
                name: "code_ttl_secs",
                reason: "must be from 1 to 600 (a code lives at most 10 minutes)".into(),
            });
        }
        if self.max_connections == Some(0) || self.max_connections_per_address == Some(0) {
            return Err(ConfigError::Setting {
                name: "max_connections",
                reason: "max_connections and max_connections_per_address must be at least 1".into(),
            });
        }
        if self.header_timeout.is_zero() || self.request_deadline.is_zero() {
            return Err(ConfigError::Setting {
                name: "header_timeout_secs",
                reason: "header_timeout_secs and request_deadline_secs must be at least 1".into(),
            });
        }
        for (name, value) in [
            ("lesson_storage_mib", self.lesson_storage_bytes),
            ("media_max_mib", self.media_max_bytes),
            ("media_storage_mib", self.media_storage_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::Setting {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::Setting {
                name: "request_timeout_ms",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Setting {
                    name: "public_url",
                    reason: format!("{url:?} must start with http:// or https://"),
                });
            }
        }
        for host in self.api_hosts.iter().filter(|h| !h.is_empty()) {
            if !(host.starts_with("http://") || host.starts_with("https://")) {
                return Err(ConfigError::Setting {
                    name: "api_hosts",
                    reason: format!("{host:?} must start with http:// or https://"),
                });
            }
        }
        Ok(self)
    }
}

/// An address (`10.0.0.5`) or a CIDR range (`10.0.0.0/8`).
fn parse_network(raw: &str) -> Result<ipnet::IpNet, ConfigError> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| ConfigError::Setting {
            name: "trusted_proxies",
            reason: format!("{raw:?} is not an address or a CIDR range (10.0.0.0/8)"),
        })
}

fn pick_list(flag: &[String], file: Option<Vec<String>>) -> Option<Vec<String>> {
    let flag: Vec<String> = flag
        .iter()
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .collect();
    if flag.is_empty() {
        file
    } else {
        Some(flag)
    }
}

fn default_database(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("classcast.db").display())
}

/// Refuses a `CLASSCAST_*` variable that names no setting: a typo such as `CLASSCAST_LISTN`
/// would otherwise run a server on the default port. `known`: the variables of the settings.
pub fn check_environment(
    known: &[String],
    variables: impl IntoIterator<Item = String>,
) -> Result<(), ConfigError> {
    for name in variables {
        if name.starts_with("CLASSCAST_") && name != LOG_VARIABLE && !known.contains(&name) {
            let nearest = nearest(
                &name,
                known.iter().map(String::as_str).chain([LOG_VARIABLE]),
            );
            return Err(ConfigError::UnknownVariable {
                name,
                nearest: nearest.map(str::to_owned),
            });
        }
    }
    Ok(())
}

/// The name in `known` closest to `name`, if one is close enough to be a typo of it.
fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // The prefix all variables share says nothing of which one was meant.
    let bare = |n: &str| n.trim_start_matches("CLASSCAST_").to_lowercase();
    let name = bare(name);
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(&name, &bare(k)), k))
        .filter(|(distance, k)| *distance <= (bare(k).len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

fn suggest(nearest: &Option<String>) -> String {
    match nearest {
        Some(name) => format!("did you mean {name}?"),
        None => "no setting is named so (see the configuration table in README.md)".into(),
    }
}

/// serde's refusal of an unknown key (`unknown field `x`, expected one of `a`, `b``) as one
/// line naming the nearest real setting.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, expected) = rest.split_once('`')?;
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let nearest = nearest(key, known.iter().copied()).map(|k| format!("`{k}`"));
    Some(format!("unknown setting `{key}`: {}", suggest(&nearest)))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.display().to_string(),
        reason: unknown_key(e.message()).unwrap_or_else(|| e.message().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let c = Config::resolve(&CommonArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.databases, ["sqlite://classcast-data/classcast.db"]);
        assert_eq!(c.api_hosts, [""]);
        assert_eq!(c.registration, Registration::Approval);
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/cc\"\nrequest_timeout_ms = 2000\n",
        )
        .unwrap();
        let common = CommonArgs {
            config: Some(path),
            ..Default::default()
        };
        let args = ServeArgs {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::resolve(&common, &args).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.data_dir, PathBuf::from("/srv/cc"));
        assert_eq!(c.databases, ["sqlite:///srv/cc/classcast.db"]);
        assert_eq!(c.request_timeout_ms, 2000);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let common = CommonArgs {
            config: Some(path),
            ..Default::default()
        };
        let Err(err) = Config::resolve(&common, &ServeArgs::default()) else {
            panic!("accepted");
        };
        assert!(
            err.to_string()
                .ends_with("unknown setting `lisen`: did you mean `listen`?"),
            "{err}"
        );
        std::fs::write(dir.path().join("c.toml"), "colour = \"x\"\n").unwrap();
        let Err(err) = Config::resolve(&common, &ServeArgs::default()) else {
            panic!("accepted");
        };
        assert!(err.to_string().contains("`colour`: no setting"), "{err}");
    }

    /// The README's configuration table as (file key, flag, variable, default) rows.
    fn readme_settings() -> Vec<[String; 4]> {
        let readme = include_str!("../README.md");
        let table = readme
            .split("| file key | flag | environment | default | meaning |")
            .nth(1)
            .expect("the README's configuration table");
        table
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<String> = line
                    .split(" | ")
                    .map(|c| {
                        c.trim_matches(|c| c == '|' || c == ' ' || c == '`')
                            .to_owned()
                    })
                    .collect();
                [
                    cells[0].clone(),
                    cells[1].clone(),
                    cells[2].clone(),
                    cells[3].clone(),
                ]
            })
            .collect()
    }

    #[test]
    fn the_readme_lists_every_setting_as_the_command_line_and_the_file_read_it() {
        use clap::Args as _;
        let command = ServeArgs::augment_args(CommonArgs::augment_args(clap::Command::new("t")));
        let mut declared: Vec<(String, String, Option<String>)> = command
            .get_arguments()
            .filter_map(|arg| {
                let env = arg.get_env()?.to_str()?.to_owned();
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let default = help
                    .split_once("[default: ")
                    .map(|(_, d)| d.trim_end_matches(']').to_owned());
                Some((format!("--{}", arg.get_long()?), env, default))
            })
            .collect();
        declared.sort();
        let rows = readme_settings();
        let mut listed: Vec<(String, String)> =
            rows.iter().map(|r| (r[1].clone(), r[2].clone())).collect();
        listed.sort();
        let declared_pairs: Vec<(String, String)> = declared
            .iter()
            .map(|(f, e, _)| (f.clone(), e.clone()))
            .collect();
        assert_eq!(
            listed, declared_pairs,
            "README's flags and variables, and clap's"
        );
        for [key, flag, _, default] in &rows {
            if key == "—" {
                continue;
            }
            let err = toml::from_str::<FileConfig>(&format!("{key} = 0"))
                .err()
                .map(|e| e.message().to_owned())
                .unwrap_or_default();
            assert!(
                !err.starts_with("unknown field"),
                "README names `{key}`: {err}"
            );
            let said = declared
                .iter()
                .find(|(f, ..)| f == flag)
                .and_then(|d| d.2.clone());
            if let Some(said) = said {
                assert_eq!(
                    said.replace("data-dir", "data_dir"),
                    default.replace('`', ""),
                    "the default of {flag} in --help and the README"
                );
            }
        }
    }

    #[test]
    fn an_unknown_classcast_variable_is_refused_with_the_nearest_setting() {
        let vars = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let known = vars(&["CLASSCAST_LISTEN", "CLASSCAST_DATA_DIR"]);
        let ok = vars(&["CLASSCAST_LISTEN", "CLASSCAST_LOG", "PATH", "CLASSCASTLE"]);
        assert!(check_environment(&known, ok).is_ok());
        let err = check_environment(&known, vars(&["CLASSCAST_LISTN"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown environment variable CLASSCAST_LISTN: did you mean CLASSCAST_LISTEN?"
        );
        let err = check_environment(&known, vars(&["CLASSCAST_COLOUR"])).unwrap_err();
        assert!(err.to_string().contains("no setting is named so"), "{err}");
    }
}
