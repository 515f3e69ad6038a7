//! Configuration: defaults < TOML file < `CLASSCAST_*` environment variables < flags.
//!
//! Each setting is declared once, in the `settings!` table below: its name (the TOML key),
//! flag and variable (clap attributes), type, default and help. From the table come the
//! clap arguments (clap resolves flag over environment and writes `--help`, the default
//! included), the file's keys, the layering of the command line over the file over the
//! defaults, and the effective [`Config`]. The file is strict (an unknown key is an error
//! naming the nearest) and so is the environment ([`check_environment`]), so a typo never
//! silently falls back to a default.
//!
//! A declarative macro rather than a layered-configuration crate such as figment: clap
//! already reads the flags and the variables and writes `--help`, so a crate would be a
//! second reader of the environment with error messages of its own, and no crate puts a
//! default into clap's help text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::{Args, ValueEnum};
use serde::Deserialize;

/// Declares the settings. A setting is its doc comment (the `--help` line), its
/// `#[arg(…)]`, its name (the TOML key) and its type on the command line (`Option<T>`, or
/// `Vec<String>` for a list), then optionally:
/// - `= "value"` (and a `("note")`): the default, parsed as a flag's value would be and
///   appended to the help as `[default: value (note)]`; `Config` then holds a `T`.
///   A default that is not a value (it depends on the machine or on another setting) is
///   written into the doc comment as `[default: …]` and applied where it is computed.
/// - `=> convert -> Type`: the effective value is `convert(value)?`, of that type.
///
/// It makes one `clap::Args` struct per group, the private `FileConfig` with every
/// group's keys, and [`Config`].
macro_rules! settings {
    ($(
        $(#[doc = $group_doc:literal])*
        $layer:ident: $group:ident {
            $(
                $(#[doc = $doc:literal])*
                #[arg($($arg:tt)*)]
                $name:ident: $ty:ty
                    $(= $default:literal $(($note:literal))?)?
                    $(=> $convert:ident -> $effective:ty)?,
            )*
        }
    )*) => {
        $(
            $(#[doc = $group_doc])*
            // Not `Debug`, as `Config` is not.
            #[derive(Default, Clone, Args)]
            pub struct $group {
                $(
                    $(#[doc = $doc])*
                    #[arg($($arg)*, help = help(&[$($doc),*], &[$($default, $($note)?)?]))]
                    pub $name: $ty,
                )*
            }

            impl $group {
                /// These values over `below`'s: a setting given here wins.
                fn over(self, below: Self) -> Self {
                    Self { $($name: Layer::over(self.$name, below.$name),)* }
                }
            }
        )*

        /// The configuration file's shape: every key optional, unknown keys refused.
        #[derive(Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct FileConfig {
            $($($name: $ty,)*)*
        }

        impl FileConfig {
            /// The file's values, one layer per group.
            fn layers(self) -> ($($group,)*) {
                ($($group { $($name: self.$name,)* },)*)
            }
        }

        /// The effective configuration. Not `Debug`: database URLs may hold passwords, and
        /// nothing should print them by accident (logs use `store::redact_url`).
        #[derive(Clone)]
        pub struct Config {
            $($(
                $(#[doc = $doc])*
                pub $name: effective!($ty $(, $default)? $(=> $effective)?),
            )*)*
        }

        impl Config {
            /// The settings of the merged layers, defaults applied.
            fn of($($layer: $group),*) -> Result<Self, ConfigError> {
                Ok(Config {
                    $($($name: effective!(value $layer.$name $(, $default)? $(=> $convert)?),)*)*
                })
            }
        }
    };
}

/// The value, or the type, a setting has in [`Config`] (see `settings!`).
macro_rules! effective {
    (value $value:expr) => {
        $value
    };
    (value $value:expr, $default:literal) => {
        defaulted($value, $default)
    };
    (value $value:expr => $convert:ident) => {
        $convert($value)?
    };
    ($ty:ty) => {
        $ty
    };
    ($ty:ty, $default:literal) => {
        <$ty as Layer>::Value
    };
    ($ty:ty => $effective:ty) => {
        $effective
    };
}

/// Options every command shares: the configuration file and the common settings.
#[derive(Default, Clone, Args)]
pub struct CommonArgs {
    // Not a setting: outside `settings!` so that the file cannot name another file.
    /// TOML configuration file
    #[arg(long, env = "CLASSCAST_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: CommonSettings,
}

settings! {
    /// Settings every command reads. Each also reads `CLASSCAST_<NAME>`; a list from the
    /// environment is comma-separated.
    common: CommonSettings {
        /// Directory for the embedded database
        #[arg(long, env = "CLASSCAST_DATA_DIR", global = true, value_name = "DIR")]
        data_dir: Option<PathBuf> = "./classcast-data",
        /// Database URL, repeatable [default: sqlite://<data-dir>/classcast.db]
        #[arg(
            long = "database",
            env = "CLASSCAST_DATABASE",
            global = true,
            value_name = "URL",
            value_delimiter = ','
        )]
        databases: Vec<String>,
        /// This node's id, a UUID, unique in a cluster [default: made once and kept in <data-dir>/node-id]
        #[arg(long, env = "CLASSCAST_NODE_ID", global = true, value_name = "UUID")]
        node_id: Option<uuid::Uuid>,
        /// Log format
        #[arg(long, env = "CLASSCAST_LOG_FORMAT", global = true, value_enum)]
        log_format: Option<LogFormat> = "text",
    }

    /// Settings only the server reads, so only `serve --help` lists them. Each also reads
    /// `CLASSCAST_<NAME>`; a list from the environment is comma-separated.
    serve: ServeArgs {
        /// Address to listen on
        #[arg(long, env = "CLASSCAST_LISTEN", value_name = "ADDR")]
        listen: Option<SocketAddr> = "127.0.0.1:8080",
        /// Whether and how accounts are created on the sign-in page [default: confirm where smtp_url is set, else approval]
        #[arg(long, env = "CLASSCAST_REGISTRATION", value_enum)]
        registration: Option<Registration>,
        /// Only these e-mail domains may register (accounts then wait for approval), repeatable [default: any]
        #[arg(
            long = "allowed-email-domain",
            env = "CLASSCAST_ALLOWED_EMAIL_DOMAINS",
            value_name = "DOMAIN",
            value_delimiter = ','
        )]
        allowed_email_domains: Vec<String> => email_domains -> Vec<String>,
        /// API base URLs the browser client fails over between, repeatable [default: the page's own origin]
        #[arg(
            long = "api-host",
            env = "CLASSCAST_API_HOSTS",
            value_name = "URL",
            value_delimiter = ','
        )]
        api_hosts: Vec<String> => api_hosts -> Vec<String>,
        /// The address teachers open on their phones and laptops (https://classcast.school.org), shown on the boards [default: this machine's network address when listening on all interfaces, else the board page's own]
        #[arg(long, env = "CLASSCAST_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String> => trimmed_url -> Option<String>,
        /// Mail server for password reset and confirmed addresses (needs public_url): smtp://host:port (plain, for a relay on this machine or network), smtp://user:password@host:587?tls=required (STARTTLS) or smtps://user:password@host (TLS) [default: none, no mail]
        #[arg(long, env = "CLASSCAST_SMTP_URL", value_name = "URL")]
        smtp_url: Option<String> => trimmed_url -> Option<String>,
        /// Sender of mail, as "Name <address>" [default: classcast <noreply@the public_url's host>]
        #[arg(long, env = "CLASSCAST_MAIL_FROM", value_name = "MAILBOX")]
        mail_from: Option<String>,
        /// Front-end origins allowed to call this API from another origin, repeatable [default: none]
        #[arg(
            long = "allowed-origin",
            env = "CLASSCAST_ALLOWED_ORIGINS",
            value_name = "ORIGIN",
            value_delimiter = ','
        )]
        allowed_origins: Vec<String>,
        /// Reverse proxies whose X-Forwarded-For names the client, as addresses or CIDR ranges, repeatable [default: none]
        #[arg(
            long = "trusted-proxy",
            env = "CLASSCAST_TRUSTED_PROXIES",
            value_name = "ADDRESS",
            value_delimiter = ','
        )]
        trusted_proxies: Vec<String> => networks -> Vec<ipnet::IpNet>,
        /// Browser client's per-request timeout in milliseconds
        #[arg(long, env = "CLASSCAST_REQUEST_TIMEOUT_MS", value_name = "MS")]
        request_timeout_ms: Option<u64> = "10000",
        /// Session lifetime in seconds
        #[arg(long, env = "CLASSCAST_SESSION_TTL_SECS", value_name = "SECS")]
        session_ttl_secs: Option<u64> = "2592000" ("30 days"),
        /// Renew a session when less than this many seconds are left
        #[arg(long, env = "CLASSCAST_SESSION_RENEW_SECS", value_name = "SECS")]
        session_renew_secs: Option<u64> = "604800" ("7 days"),
        /// No login stays signed in longer than this, however often renewed, in seconds
        #[arg(long, env = "CLASSCAST_SESSION_MAX_AGE_SECS", value_name = "SECS")]
        session_max_age_secs: Option<u64> = "7776000" ("90 days"),
        /// Largest accepted request body in bytes
        #[arg(long, env = "CLASSCAST_MAX_BODY_BYTES", value_name = "BYTES")]
        max_body_bytes: Option<usize> = "1048576",
        /// Live connections are pinged this often; silent for 7/3 of it means dead, in ms
        #[arg(long, env = "CLASSCAST_HEARTBEAT_MS", value_name = "MS")]
        heartbeat_ms: Option<u64> = "15000",
        /// How long a board's pairing code lives, 1 to 600 seconds
        #[arg(long, env = "CLASSCAST_CODE_TTL_SECS", value_name = "SECS")]
        code_ttl_secs: Option<u64> = "600",
        /// Lesson storage per teacher, every kept revision counted, in MiB
        #[arg(long, env = "CLASSCAST_LESSON_STORAGE_MIB", value_name = "MIB")]
        lesson_storage_mib: Option<u64> = "256",
        /// The largest picture or video a teacher may upload, in MiB
        #[arg(long, env = "CLASSCAST_MEDIA_MAX_MIB", value_name = "MIB")]
        media_max_mib: Option<u64> = "200",
        /// Pictures and videos per teacher, each file counted once, in MiB
        #[arg(long, env = "CLASSCAST_MEDIA_STORAGE_MIB", value_name = "MIB")]
        media_storage_mib: Option<u64> = "2048",
        /// Connections open at once, WebSockets included [default: the open-file limit less 100]
        #[arg(long, env = "CLASSCAST_MAX_CONNECTIONS", value_name = "N")]
        max_connections: Option<usize>,
        /// Connections open at once from one address [default: a sixteenth of max_connections, at least 32]
        #[arg(long, env = "CLASSCAST_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
        max_connections_per_address: Option<usize>,
        /// Seconds a client may take to send a request's headers; idle connections close after it
        #[arg(long, env = "CLASSCAST_HEADER_TIMEOUT_SECS", value_name = "SECS")]
        header_timeout_secs: Option<u64> = "20",
        /// Seconds a request may take, its body included, before 408
        #[arg(long, env = "CLASSCAST_REQUEST_DEADLINE_SECS", value_name = "SECS")]
        request_deadline_secs: Option<u64> = "60",
        /// Longest a login waits for a password-hashing slot before 503, in ms
        #[arg(long, env = "CLASSCAST_HASH_WAIT_MS", value_name = "MS")]
        hash_wait_ms: Option<u64> = "5000",
        /// Address to serve Prometheus metrics on (GET /metrics), never the public one; keep it off the internet [default: off]
        #[arg(long, env = "CLASSCAST_METRICS_LISTEN", value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// LibreOffice's soffice, to import PowerPoint and OpenDocument slides (docs/importing.md); a path to nothing turns that off [default: soffice on PATH, else none]
        #[arg(long, env = "CLASSCAST_SOFFICE", value_name = "PATH")]
        soffice: Option<PathBuf>,
        /// Longest LibreOffice may take to convert one deck (its slides and notes pages) before it is killed, 1 to 3600 seconds
        #[arg(long, env = "CLASSCAST_OFFICE_IMPORT_SECS", value_name = "SECS")]
        office_import_secs: Option<u64> = "120",
    }
}

/// A size given in MiB, in bytes.
pub fn mib(n: u64) -> u64 {
    n.saturating_mul(1 << 20)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone registers and signs in at once, so the answer tells whether an address is taken (with `allowed_email_domains`: as `approval`)
    Open,
    /// New accounts wait for `classcast user approve` (deleted if not approved within 30 days); the first account on a server is approved at once
    Approval,
    /// New accounts confirm their address through a mailed link, then sign in (needs smtp_url)
    Confirm,
    /// Accounts only through `classcast user add`.
    Closed,
}

// Defaults are written as a flag would be, so these parse them as clap does.
impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ValueEnum::from_str(s, false)
    }
}

impl FromStr for Registration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ValueEnum::from_str(s, false)
    }
}

/// A setting's value in one layer (flags and environment, or the file): a value given or
/// not, or a list, empty when not given. Public only because `Config`'s field types name it.
pub trait Layer {
    /// The setting's type once a default fills in for a value not given.
    type Value;
    fn over(self, below: Self) -> Self;
}

impl<T> Layer for Option<T> {
    type Value = T;
    fn over(self, below: Self) -> Self {
        self.or(below)
    }
}

impl Layer for Vec<String> {
    type Value = Self;
    /// Blank items (`CLASSCAST_API_HOSTS=`) count as not given.
    fn over(self, below: Self) -> Self {
        let given: Vec<String> = self.into_iter().filter(|s| !s.trim().is_empty()).collect();
        if given.is_empty() {
            below
        } else {
            given
        }
    }
}

/// A `--help` line: the doc comment (as rustdoc gives it, each line after a space) and the
/// default, with its note: `Session lifetime in seconds [default: 2592000 (30 days)]`.
fn help(doc: &[&str], default: &[&str]) -> String {
    let doc = doc
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join(" ");
    match default {
        [value] => format!("{doc} [default: {value}]"),
        [value, note] => format!("{doc} [default: {value} ({note})]"),
        _ => doc,
    }
}

/// The value given, or the declared default (which the unit tests parse).
fn defaulted<T: FromStr>(value: Option<T>, default: &str) -> T {
    value.unwrap_or_else(|| match default.parse() {
        Ok(value) => value,
        Err(_) => panic!("the declared default {default:?} does not parse"),
    })
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
    /// How accounts are created: as set, else `confirm` where mail is set up, else
    /// `approval`.
    pub fn registration(&self) -> Registration {
        self.registration.unwrap_or(match self.smtp_url {
            Some(_) => Registration::Confirm,
            None => Registration::Approval,
        })
    }

    /// How mail is sent, where it is set up (checked when the configuration was read).
    pub fn mail(&self) -> Option<crate::mail::MailSettings> {
        let (smtp_url, public_url) = (self.smtp_url.clone()?, self.public_url.clone()?);
        let host = crate::mail::host_of(&public_url);
        let from = self
            .mail_from
            .clone()
            .unwrap_or_else(|| format!("classcast <noreply@{host}>"));
        Some(crate::mail::MailSettings {
            smtp_url,
            from: from.parse().ok()?,
            public_url,
        })
    }

    /// Merges flags and environment (already in `common` and `args`) over the file over the
    /// defaults. Commands other than `serve` pass `ServeArgs::default()`: the file still
    /// counts for them.
    pub fn resolve(common: &CommonArgs, args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &common.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let (file_common, file_serve) = file.layers();
        let mut config = Config::of(
            common.settings.clone().over(file_common),
            args.clone().over(file_serve),
        )?;
        if config.databases.is_empty() {
            config.databases = vec![default_database(&config.data_dir)];
        }
        config.validate()
    }

    fn validate(self) -> Result<Self, ConfigError> {
        if self.session_ttl_secs == 0 {
            return Err(ConfigError::Setting {
                name: "session_ttl_secs",
                reason: "must be at least 1".into(),
            });
        }
        if self.session_max_age_secs < self.session_ttl_secs {
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
        if self.heartbeat_ms < 100 {
            return Err(ConfigError::Setting {
                name: "heartbeat_ms",
                reason: "must be at least 100".into(),
            });
        }
        if !(1..=3600).contains(&self.office_import_secs) {
            return Err(ConfigError::Setting {
                name: "office_import_secs",
                reason: "must be from 1 to 3600".into(),
            });
        }
        if !(1..=600).contains(&self.code_ttl_secs) {
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
        if self.header_timeout_secs == 0 || self.request_deadline_secs == 0 {
            return Err(ConfigError::Setting {
                name: "header_timeout_secs",
                reason: "header_timeout_secs and request_deadline_secs must be at least 1".into(),
            });
        }
        for (name, value) in [
            ("lesson_storage_mib", self.lesson_storage_mib),
            ("media_max_mib", self.media_max_mib),
            ("media_storage_mib", self.media_storage_mib),
        ] {
            if value == 0 {
                return Err(ConfigError::Setting {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if let Some(metrics) = self.metrics_listen {
            if same_port(metrics, self.listen) {
                return Err(ConfigError::Setting {
                    name: "metrics_listen",
                    reason: format!(
                        "{metrics} is the public listener's address ({}): /metrics is served \
                         on an address of its own only",
                        self.listen
                    ),
                });
            }
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::Setting {
                name: "request_timeout_ms",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(url) = &self.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(ConfigError::Setting {
                    name: "smtp_url",
                    reason: format!(
                        "{:?} must start with smtp:// or smtps://",
                        crate::store::redact_url(url)
                    ),
                });
            }
            if self.public_url.is_none() {
                return Err(ConfigError::Setting {
                    name: "public_url",
                    reason: "must be set where smtp_url is: the links in mail point there".into(),
                });
            }
        }
        if self.registration == Some(Registration::Confirm) && self.smtp_url.is_none() {
            return Err(ConfigError::Setting {
                name: "registration",
                reason: "confirm needs smtp_url: addresses are confirmed by mail".into(),
            });
        }
        if let Some(from) = &self.mail_from {
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(ConfigError::Setting {
                    name: "mail_from",
                    reason: format!(
                        "{from:?} is not a mailbox such as \"classcast <noreply@school.org>\""
                    ),
                });
            }
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

/// Whether two listeners would take the same port: the same port (not 0, which picks a free
/// one) on the same address, or on all addresses for either.
fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Domains as e-mail addresses end: `@School.org ` is `school.org`.
fn email_domains(domains: Vec<String>) -> Result<Vec<String>, ConfigError> {
    Ok(domains
        .into_iter()
        .map(|d| d.trim().trim_start_matches('@').to_lowercase())
        .collect())
}

/// Without a slash at the end; none means the page's own origin, written `""`.
fn api_hosts(hosts: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if hosts.is_empty() {
        return Ok(vec![String::new()]);
    }
    Ok(hosts
        .into_iter()
        .map(|h| h.trim().trim_end_matches('/').to_owned())
        .collect())
}

/// Without a slash at the end; blank means none.
fn trimmed_url(url: Option<String>) -> Result<Option<String>, ConfigError> {
    Ok(url
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty()))
}

/// Addresses (`10.0.0.5`) or CIDR ranges (`10.0.0.0/8`).
fn networks(raw: Vec<String>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    raw.iter()
        .map(|raw| {
            let raw = raw.trim();
            raw.parse::<ipnet::IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::Setting {
                    name: "trusted_proxies",
                    reason: format!("{raw:?} is not an address or a CIDR range (10.0.0.0/8)"),
                })
        })
        .collect()
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
mod tests;
