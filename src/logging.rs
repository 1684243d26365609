//! Logging: human text on a terminal, JSON lines otherwise (CloudWatch reads a
//! container's stdout and turns JSON fields into queryable fields).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The format to use when none was asked for: text on a terminal, JSON otherwise.
pub fn default_format(to_stderr: bool) -> LogFormat {
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    }
}

/// Installs the global subscriber. `NASLAKE_LOG` (or `RUST_LOG`) sets the filter;
/// the default is `info` for naslake and `warn` for everything else.
pub fn init(format: LogFormat, to_stderr: bool) {
    let filter = EnvFilter::try_from_env("NASLAKE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn,naslake=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match (format, to_stderr) {
        (LogFormat::Json, false) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        (LogFormat::Json, true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Text, false) => builder.with_target(false).try_init(),
        (LogFormat::Text, true) => builder
            .with_target(false)
            .with_writer(std::io::stderr)
            .try_init(),
    };
}
