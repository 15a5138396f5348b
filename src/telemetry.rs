//! Logging through `tracing`: human-readable text by default, one JSON object per line with
//! `--log-format json`. `RUST_LOG` filters as usual (default `info`).
//!
//! Logging never takes the process down: a log pipe whose reader went away (`realstat | head`, a
//! crashed log shipper) or a full disk loses log lines, not the service. The subscriber writes
//! through [`LogWriter`], which ignores write errors, and the few lines written to the terminal
//! outside `tracing` go through [`out`] and [`err`], which do the same (`println!` panics).

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing),
/// which keeps tests that build several applications simple.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,librdkafka=warn,rdkafka=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        // Colours for a person at a terminal only, never escape codes in a file or a pipe.
        .with_ansi(io::stderr().is_terminal())
        // Its own "cannot write" report would go to the same broken stderr, with `eprintln!`.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
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
}
