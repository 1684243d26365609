//! Logging: human text on a terminal, JSON lines otherwise (CloudWatch reads a
//! container's stdout and turns JSON fields into queryable fields).
//!
//! Every line goes through [`scrub`]: the AWS SDK logs its credentials' `Debug`
//! (with the whole access key id) at info and debug, so credentials are masked
//! where the lines are written, whatever crate wrote them.

use std::io::{IsTerminal, Write};

use super::redact::{remember_environment, scrub};

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

/// A log writer that masks credentials ([`scrub`]). The fmt layer writes each
/// event with one `write_all` of the whole line, so a value is never split.
struct Scrubbed<W>(W);

impl<W: Write> Write for Scrubbed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(scrub(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn stdout() -> Scrubbed<std::io::Stdout> {
    Scrubbed(std::io::stdout())
}

fn stderr() -> Scrubbed<std::io::Stderr> {
    Scrubbed(std::io::stderr())
}

/// The crates that quote object paths and request URLs in their debug lines:
/// those paths are real keys, which a DICOM job disguises everywhere it writes.
const QUOTE_PATHS: [&str; 9] = [
    "object_store",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_s3",
    "aws_config",
];

/// The crates of [`QUOTE_PATHS`] to hold at `warn` under the filter `asked`: all of
/// them when a bare level below `warn` (`info`, `debug`, `trace`) makes every
/// crate the filter does not name chatty (object_store logs its retries, URL and
/// all, at `info`); none otherwise. A crate the filter names (`object_store`,
/// `object_store=debug`, `object_store::aws=trace`) is left as asked.
fn caps(asked: &str) -> Vec<&'static str> {
    let directives: Vec<&str> = asked.split(',').map(str::trim).collect();
    let is_level = |d: &str| {
        matches!(
            d.to_ascii_lowercase().as_str(),
            "info" | "debug" | "trace" | "warn" | "error" | "off"
        )
    };
    let broad = directives
        .iter()
        .any(|d| matches!(d.to_ascii_lowercase().as_str(), "info" | "debug" | "trace"));
    if !broad {
        return Vec::new();
    }
    // The targets the directives name (a bare target means `trace` for it).
    let named: Vec<&str> = directives
        .iter()
        .filter(|d| !d.is_empty() && !is_level(d))
        .filter_map(|d| d.split(['=', '[']).next().map(str::trim))
        .collect();
    QUOTE_PATHS
        .into_iter()
        .filter(|c| {
            !named
                .iter()
                .any(|n| n == c || n.strip_prefix(c).is_some_and(|r| r.starts_with("::")))
        })
        .collect()
}

/// Installs the global subscriber. `NASLAKE_LOG` (or `RUST_LOG`) sets the filter;
/// the default is `info` for naslake and `warn` for everything else. dicom-rs
/// is always silent: its messages may quote attribute values (PHI), and naslake
/// reports what it needs of them itself. The storage and HTTP crates stay at
/// `warn` under a bare `info`, `debug` or `trace`, since their lines quote object keys;
/// naming one in the filter (`NASLAKE_LOG=debug,object_store=debug`) lets it
/// speak, for debugging a store on a share whose names identify no one.
pub fn init(format: LogFormat, to_stderr: bool) {
    remember_environment();
    // The filter comes from NASLAKE_LOG, else RUST_LOG, else the default; the caps
    // read the same text.
    let (mut filter, asked) = match EnvFilter::try_from_env("NASLAKE_LOG") {
        Ok(f) => (f, std::env::var("NASLAKE_LOG").unwrap_or_default()),
        Err(_) => match EnvFilter::try_from_default_env() {
            Ok(f) => (f, std::env::var("RUST_LOG").unwrap_or_default()),
            Err(_) => (EnvFilter::new("warn,naslake=info"), String::new()),
        },
    };
    let capped = caps(&asked).into_iter().map(|c| format!("{c}=warn"));
    for quiet in [
        "dicom_parser=off",
        "dicom_object=off",
        "dicom_encoding=off",
        "dicom_core=off",
    ]
    .into_iter()
    .map(String::from)
    .chain(capped)
    {
        filter = filter.add_directive(quiet.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match (format, to_stderr) {
        (LogFormat::Json, false) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(stdout)
            .try_init(),
        (LogFormat::Json, true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(stderr)
            .try_init(),
        (LogFormat::Text, false) => builder.with_target(false).with_writer(stdout).try_init(),
        (LogFormat::Text, true) => builder.with_target(false).with_writer(stderr).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_log_writer_masks_credentials() {
        crate::base::redact::remember("logged-secret-hunter2");
        let mut w = Scrubbed(Vec::new());
        w.write_all(b"creds AKIAIOSFODNN7EXAMPLE logged-secret-hunter2 end\n")
            .unwrap();
        w.write_all(&[0xff, b'x']).unwrap();
        let out = String::from_utf8_lossy(&w.0).into_owned();
        assert!(
            out.starts_with("creds <redacted> <redacted> end\n"),
            "{out}"
        );
        assert!(!out.contains("hunter2") && !out.contains("AKIAIOSFODNN7EXAMPLE"));
    }
}

#[cfg(test)]
mod caps_tests {
    use super::caps;

    #[test]
    fn the_storage_crates_are_held_only_under_a_bare_chatty_level_and_until_named() {
        assert!(caps("").is_empty());
        assert!(caps("warn").is_empty());
        assert!(caps("warn,naslake=debug").is_empty());
        assert_eq!(caps("info,naslake=debug").len(), 9);
        assert_eq!(caps("debug").len(), 9);
        for named in [
            "debug,object_store=debug",
            "debug,object_store",
            "trace,object_store::aws=trace",
        ] {
            let c = caps(named);
            assert!(
                !c.contains(&"object_store") && c.contains(&"hyper"),
                "{named}: {c:?}"
            );
        }
        // hyper_util named leaves hyper held.
        let c = caps("debug,hyper_util=debug");
        assert!(c.contains(&"hyper") && !c.contains(&"hyper_util"), "{c:?}");
    }
}
