//! execgate's own diagnostic log (not the audit trail): tracing to stderr or rolling files.

use std::path::Path;

use anyhow::{Context, Result};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// How the diagnostic log is written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Keep the guard alive until exit: dropping it
/// flushes what is still queued.
pub fn init(format: LogFormat, filter: &str, dir: Option<&Path>) -> Result<WorkerGuard> {
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?} (try `info` or `execgate=debug`)"))?;
    // Blocking rather than lossy: a diagnostic line about a denial must not vanish under load.
    let builder = NonBlockingBuilder::default().lossy(false);
    let (writer, guard) = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create log directory {}", dir.display()))?;
            builder.finish(tracing_appender::rolling::daily(dir, "execgate.log"))
        }
        None => builder.finish(std::io::stderr()),
    };
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false);
    match format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber.json().flatten_event(true).init(),
    }
    Ok(guard)
}
