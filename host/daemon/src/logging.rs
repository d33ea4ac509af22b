//! The daemon's log output on stderr: plain or JSON lines for a terminal or a file, and lines
//! for systemd's journal when stderr is the journal.

use rcontainerd_pkg::journal;

/// Logs to stderr at `level` (a containerd level name; `RUST_LOG` overrides), as text
/// (`format` empty or "text") or JSON lines ("json").
pub fn init(level: &str, format: &str) {
    // containerd's (logrus) level names, in tracing's terms.
    let level = match level {
        "warning" => "warn",
        "fatal" | "panic" => "error",
        other => other,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if format == "json" {
        // Structured records keep their own timestamp field, journal or not.
        builder.json().init();
    } else if journal::stderr_is_journal() {
        // The journal stamps every line itself and shows the priority prefix as the entry's
        // priority (`journalctl -p warning`); colours would arrive as escape codes.
        builder
            .with_ansi(false)
            .event_format(journal::format())
            .init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}
