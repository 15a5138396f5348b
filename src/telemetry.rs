//! Logging through `tracing`: human-readable text by default, one JSON object per line with
//! `--log-format json`. `RUST_LOG` filters by target and level (`info`, `warn,realstat=debug`;
//! default `info`). It is read as a list of `target=level` directives, not as the full
//! `EnvFilter` syntax with span and field filters, which would bring a regex engine into the build
//! for a feature this service's logs do not need. A value that does not parse is reported on
//! standard error and the default is used.
//!
//! Logging never takes the process down: a log pipe whose reader went away (`realstat | head`, a
//! crashed log shipper) or a full disk loses log lines, not the service. The subscriber writes
//! through [`LogWriter`], which ignores write errors, and the few lines written to the terminal
//! outside `tracing` go through [`out`] and [`err`], which do the same (`println!` panics).

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written (`log_format`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for a log shipper.
    Json,
}

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing),
/// which keeps tests that build several applications simple.
pub fn init(format: LogFormat) {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        // Everything reaches the filter layer, which decides.
        .with_max_level(tracing::Level::TRACE)
        .with_writer(LogWriter)
        // Colours for a person at a terminal only, never escape codes in a file or a pipe.
        .with_ansi(io::stderr().is_terminal())
        // Its own "cannot write" report would go to the same broken stderr, with `eprintln!`.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.finish().with(filter).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .with(filter)
            .try_init(),
    };
}

const DEFAULT_FILTER: &str = "info,librdkafka=warn,rdkafka=warn";

/// The filter `RUST_LOG` asks for, or the default when it is unset, empty or not understood.
fn log_filter(rust_log: Option<&str>) -> Targets {
    let default = || DEFAULT_FILTER.parse().unwrap_or_default();
    match rust_log.map(str::trim) {
        None | Some("") => default(),
        Some(v) => v.parse().unwrap_or_else(|e| {
            err(format_args!(
                "realstat: RUST_LOG={v:?} is not a list of target=level directives ({e}); using {DEFAULT_FILTER:?}"
            ));
            default()
        }),
    }
}

/// Standard error, for the subscriber, ignoring every write error: a log line that cannot be
/// written is dropped. Each event arrives as one `write_all` of a whole formatted line, written
/// under the stderr lock, so lines of concurrent threads do not interleave.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let _ = io::stderr().lock().write_all(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// `println!` that cannot panic: a closed stdout loses the line.
pub fn out(text: impl Display) {
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "{text}").and_then(|_| o.flush());
}

/// `eprintln!` that cannot panic: a closed stderr loses the line.
pub fn err(text: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_reports_success_whatever_happens() {
        let mut w = LogWriter.make_writer();
        assert_eq!(w.write(b"").expect("never fails"), 0);
        w.write_all(b"telemetry test line\n").expect("never fails");
        w.flush().expect("never fails");
    }

    #[test]
    fn rust_log_sets_levels_per_target_and_falls_back_when_unreadable() {
        use tracing::Level;
        let f = log_filter(Some("warn,realstat::ingest=debug"));
        assert!(f.would_enable("realstat::ingest::worker", &Level::DEBUG));
        assert!(!f.would_enable("realstat::api", &Level::INFO));
        assert!(f.would_enable("realstat::api", &Level::WARN));
        for default in [None, Some(""), Some("  "), Some("info,=[{")] {
            let f = log_filter(default);
            assert!(f.would_enable("realstat", &Level::INFO), "{default:?}");
            assert!(!f.would_enable("realstat", &Level::DEBUG), "{default:?}");
            assert!(!f.would_enable("librdkafka", &Level::INFO), "{default:?}");
        }
    }
}
