//! What `serve` and `witness` share for running as a service: the log format and the
//! tracing subscriber, the metrics recorder, and the tokens of `serve`'s own command line
//! (for `--config`).

use std::ffi::OsString;

use clap::{Args, ValueEnum};

use super::{CliError, Context};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for log shippers.
    Json,
}

/// The log format flag.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Format of the log lines on stderr (the level comes from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the tracing subscriber writing `format` lines to stderr.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the metrics recorder (before anything records).
pub fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, CliError> {
    crate::telemetry::install().context(|| "starting the metrics recorder".into())
}

/// The tokens after the first `name` in this process's arguments (the subcommand's own).
pub fn subcommand_tokens(name: &str) -> Vec<OsString> {
    std::env::args_os()
        .skip(1)
        .skip_while(|token| token != name)
        .skip(1)
        .collect()
}
