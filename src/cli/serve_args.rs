//! `execgate serve`'s flags, and how they become its validated [`serve::Config`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::ValueEnum;
use tracing_appender::non_blocking::WorkerGuard;

use crate::audit::{self, AuditConfig, LogConfig, RecordMode};
use crate::gate::identity::{PinUser, UnpinnedStarts};
use crate::gate::{UserLookup, UserRules};
use crate::logging::{self, LogFormat};
use crate::serve;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Path of the socket clients connect to (DOCKER_HOST=unix://PATH).
    #[arg(long, env = "EXECGATE_LISTEN", default_value = "/run/execgate.sock")]
    listen: PathBuf,

    /// Path of the Docker daemon's socket.
    #[arg(long, env = "EXECGATE_UPSTREAM", default_value = "/var/run/docker.sock")]
    upstream: PathBuf,

    /// Permissions of the listening socket, in octal.
    #[arg(long, env = "EXECGATE_SOCKET_MODE", default_value = "0660", value_parser = parse_mode)]
    socket_mode: u32,

    /// Group that owns the listening socket (name or numeric gid).
    #[arg(long, env = "EXECGATE_SOCKET_GROUP")]
    socket_group: Option<String>,

    /// How long live sessions may run on after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "EXECGATE_SHUTDOWN_GRACE", default_value = "10")]
    shutdown_grace: u64,

    /// Diagnostic log format.
    #[arg(long, env = "EXECGATE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormatArg,

    /// Diagnostic log filter (tracing EnvFilter syntax, e.g. `info,execgate=debug`).
    #[arg(long, env = "EXECGATE_LOG", default_value = "info")]
    log_level: String,

    /// Write the diagnostic log to daily-rotated files in this directory instead of stderr.
    #[arg(long, env = "EXECGATE_LOG_DIR")]
    log_dir: Option<PathBuf>,

    /// Policy file or directory (repeatable); replaces the built-in pack.
    #[arg(long, env = "EXECGATE_POLICY", value_delimiter = ':')]
    policy: Vec<PathBuf>,

    /// Where exec users are resolved from: the container's overlay root (what the
    /// daemon reads), the daemon's archive API, or the first that works.
    #[arg(long, env = "EXECGATE_USER_LOOKUP", value_enum, default_value = "auto")]
    user_lookup: UserLookupArg,

    /// Forward the numeric uid:gid an exec's user resolved to, so the daemon runs
    /// exactly the identity that was judged. `off` forwards names, which the
    /// daemon looks up again at start (a race; see the README).
    #[arg(long, env = "EXECGATE_PIN_USER", value_enum, default_value = "on")]
    pin_user: PinUserArg,

    /// Starts of execs created behind execgate's back whose user is a name
    /// (which cannot be pinned): refuse them, or let policy judge them with
    /// `input.user.pinned` false.
    #[arg(long, env = "EXECGATE_UNPINNED_STARTS", value_enum, default_value = "refuse")]
    unpinned_starts: UnpinnedStartsArg,

    /// Directory of the audit trail (log files, recordings, anchors).
    #[arg(long, env = "EXECGATE_AUDIT_DIR", default_value = "/var/log/execgate")]
    audit_dir: PathBuf,

    /// Start a new audit log file past this size, in bytes (files also rotate daily).
    #[arg(long, env = "EXECGATE_AUDIT_MAX_BYTES", default_value = "67108864")]
    audit_max_bytes: u64,

    /// Audit log files to keep; older ones and their recordings are deleted.
    #[arg(long, env = "EXECGATE_AUDIT_RETAIN", default_value = "90")]
    audit_retain: usize,

    /// File the log's head hash is appended to; ship it off the host (default: AUDIT_DIR/anchors.jsonl).
    #[arg(long, env = "EXECGATE_ANCHOR_FILE")]
    anchor_file: Option<PathBuf>,

    /// Seconds between anchors of the head hash while records keep coming.
    #[arg(long, env = "EXECGATE_ANCHOR_INTERVAL", default_value = "60")]
    anchor_interval: u64,

    /// Do not send anchors to syslog (/dev/log).
    #[arg(long, env = "EXECGATE_NO_SYSLOG")]
    no_syslog: bool,

    /// The syslog socket anchors are sent to.
    #[arg(long, env = "EXECGATE_SYSLOG_SOCKET", default_value = "/dev/log")]
    syslog_socket: PathBuf,

    /// What session recordings keep: all streams, output only (no stdin), or nothing.
    #[arg(long, env = "EXECGATE_RECORD", value_enum, default_value = "all")]
    record: RecordArg,

    /// Bytes of each session stored; the rest is counted, with a marker.
    #[arg(long, env = "EXECGATE_RECORD_MAX_BYTES", default_value = "67108864")]
    record_max_bytes: u64,

    /// More env names whose values are redacted in records, besides the
    /// defaults (case-insensitive substrings; repeatable, or comma-separated).
    #[arg(long = "redact-env", env = "EXECGATE_REDACT_ENV", value_delimiter = ',')]
    redact_env: Vec<String>,

    /// Do not redact the default env names (PASSWORD, PASSWD, TOKEN, SECRET,
    /// KEY, CREDENTIAL); only those given with --redact-env.
    #[arg(long, env = "EXECGATE_NO_DEFAULT_REDACT")]
    no_default_redact: bool,

    /// Runtime worker threads; 0 runs everything on one thread (lowest latency).
    #[arg(long, env = "EXECGATE_WORKERS", default_value = "0")]
    workers: usize,

    /// How long a client may take to send a request head, counted from when it
    /// connects or its previous answer ended (idle keep-alive connections are
    /// closed after it too; streaming answers are not affected); `off` for none.
    #[arg(long, env = "EXECGATE_HEAD_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    head_timeout: Duration,

    /// Client connections held at once (exec sessions included); past it, new
    /// clients get 503. Default: what the fd limit leaves room for.
    #[arg(long, env = "EXECGATE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,

    /// How long a pooled daemon connection (execgate's own lookups and exec
    /// watchers) may stay idle before it is closed; `off` keeps them.
    #[arg(long, env = "EXECGATE_DAEMON_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    daemon_idle_timeout: Duration,
}

impl ServeArgs {
    /// Installs the diagnostic log these flags describe; keep the guard alive until exit.
    pub fn init_logging(&self) -> Result<WorkerGuard> {
        logging::init(self.log_format.into(), &self.log_level, self.log_dir.as_deref())
    }

    /// The runtime's worker threads (0: one thread).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The validated configuration of `execgate serve`.
    pub fn into_config(self) -> Result<serve::Config> {
        Ok(serve::Config {
            listen: self.listen,
            upstream: self.upstream,
            socket_mode: self.socket_mode,
            socket_gid: self.socket_group.as_deref().map(resolve_group).transpose()?,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            policies: self.policy,
            users: UserRules {
                lookup: self.user_lookup.into(),
                pin: self.pin_user.into(),
                unpinned_starts: self.unpinned_starts.into(),
            },
            audit: AuditConfig {
                log: LogConfig {
                    anchor_file: self
                        .anchor_file
                        .unwrap_or_else(|| audit::default_anchor_file(&self.audit_dir)),
                    dir: self.audit_dir,
                    max_bytes: self.audit_max_bytes,
                    retain: self.audit_retain,
                    anchor_interval: Duration::from_secs(self.anchor_interval.max(1)),
                    syslog: !self.no_syslog,
                    syslog_socket: self.syslog_socket,
                },
                record: self.record.into(),
                record_cap: self.record_max_bytes,
                redact: redact_list(self.no_default_redact, self.redact_env),
            },
            head_timeout: timeout(self.head_timeout),
            max_connections: self.max_connections.map(|n| n as usize),
            daemon_idle_timeout: timeout(self.daemon_idle_timeout),
        })
    }
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("socket mode {text:?} is not an octal number such as 0660"))?;
    if mode > 0o777 {
        return Err(format!("socket mode {text:?} has bits beyond 0777"));
    }
    Ok(mode)
}

/// A duration such as `30s`, `1m30s` or `500ms`; `off` (or `0`) is zero, no limit.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.trim() {
        "off" | "0" => Ok(Duration::ZERO),
        other => humantime::parse_duration(other)
            .map_err(|e| format!("{text:?} is not a duration such as 30s, 2m or off: {e}")),
    }
}

/// A timeout flag's value: zero means none.
fn timeout(value: Duration) -> Option<Duration> {
    (!value.is_zero()).then_some(value)
}

/// The env names to redact: the defaults (unless dropped), then those added.
fn redact_list(no_defaults: bool, added: Vec<String>) -> Vec<String> {
    let defaults = audit::DEFAULT_REDACT.iter().filter(|_| !no_defaults).map(|s| (*s).to_owned());
    defaults.chain(added.into_iter().filter(|name| !name.trim().is_empty())).collect()
}

fn resolve_group(name: &str) -> Result<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => bail!("socket group {name:?} does not exist; create it or pass a numeric gid"),
        Err(err) => bail!("failed to look up socket group {name:?}: {err}"),
    }
}

/// Mirrors a domain enum as command-line choices, so clap stays in this module:
/// the variants' doc comments are the flag's help for each value.
macro_rules! choices {
    ($(#[$doc:meta])* $arg:ident => $domain:ty { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
        enum $arg {
            $($(#[$vdoc])* $variant),+
        }

        impl From<$arg> for $domain {
            fn from(arg: $arg) -> Self {
                match arg {
                    $($arg::$variant => <$domain>::$variant),+
                }
            }
        }
    };
}

choices! {
    /// `--log-format`.
    LogFormatArg => LogFormat {
        /// Human-readable lines.
        Text,
        /// One JSON object per line.
        Json,
    }
}

choices! {
    /// `--user-lookup`.
    UserLookupArg => UserLookup {
        /// The overlay root when execgate can see it, else the archive API.
        Auto,
        /// Only the overlay root (`GraphDriver.Data.MergedDir`).
        Rootfs,
        /// Only the daemon's archive API (refused where a mount covers the file).
        Archive,
    }
}

choices! {
    /// `--pin-user`.
    PinUserArg => PinUser {
        /// Forward the numeric `uid:gid` that was judged.
        On,
        /// Forward the spec as requested; the daemon resolves it again at start.
        Off,
    }
}

choices! {
    /// `--unpinned-starts`.
    UnpinnedStartsArg => UnpinnedStarts {
        /// Refuse it with an error that says why.
        Refuse,
        /// Let policy judge it; `input.user.pinned` is `false`.
        Judge,
    }
}

choices! {
    /// `--record`.
    RecordArg => RecordMode {
        /// stdin, stdout and stderr.
        All,
        /// stdout and stderr only (keeps secrets typed into shells out of the trail).
        Output,
        /// Nothing: sessions are counted, not recorded.
        None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_modes_parse_as_octal() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o640"), Ok(0o640));
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("7777").is_err());
    }

    #[test]
    fn timeouts_parse_as_durations_or_off() {
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(timeout(parse_timeout("off").expect("off")), None);
        assert_eq!(timeout(parse_timeout("0").expect("0")), None);
        assert!(parse_timeout("30").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn groups_resolve_by_name_or_number() {
        assert_eq!(resolve_group("0").ok(), Some(0));
        assert_eq!(resolve_group("root").ok(), Some(0));
        assert!(resolve_group("no-such-group-execgate").is_err());
    }

    #[test]
    fn redact_env_adds_to_the_defaults_unless_they_are_dropped() {
        let list = redact_list(false, vec!["MY_PIN".into(), " ".into()]);
        assert_eq!(list.len(), audit::DEFAULT_REDACT.len() + 1);
        assert!(list.contains(&"PASSWORD".to_owned()) && list.contains(&"MY_PIN".to_owned()));
        assert_eq!(redact_list(true, vec!["MY_PIN".into()]), vec!["MY_PIN".to_owned()]);
    }
}
