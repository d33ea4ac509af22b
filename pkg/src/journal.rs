//! Log lines for systemd's journal. Under systemd, the daemon's stderr — and so that of every
//! driver library it loads, each with its own copy of `tracing` — is a stream to the journal,
//! which stamps each line itself and reads a leading `<N>` as the line's syslog priority. The
//! daemon and the drivers that log (shim-v2) use the same detection and format.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Full, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// Whether stderr is a stream to the journal: systemd sets `JOURNAL_STREAM` to the
/// `<device>:<inode>` of that stream, which still matches stderr unless it was redirected
/// (a child of the service that writes to a file keeps the variable but not the stream).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    // A duplicate of the descriptor, closed again when the File drops.
    let Ok(stat) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
    else {
        return false;
    };
    value.to_str() == Some(&format!("{}:{}", stat.dev(), stat.ino()))
}

/// The journal's line format: no time, no colours, no target; the syslog priority (`<3>` error
/// … `<7>` debug), which journald turns into the entry's priority and strips, then the level's
/// name: `<4>WARN config: …`.
pub fn format() -> Journal {
    Journal(
        format::format()
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_ansi(false),
    )
}

/// See [`format`].
pub struct Journal(format::Format<Full, ()>);

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        write!(writer, "<{}>{level} ", priority(level))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// syslog(3)'s priority for a tracing level.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}
