//! Progress bars for long operations: shown on a terminal, silent otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar counting bytes (position) and records (message). `total`: bytes expected, if known.
#[must_use]
pub fn bar(what: &str, total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (pb, template) = match total {
        Some(t) => (
            ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {eta} left)",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} {prefix} {bytes} {msg} ({bytes_per_sec}, {elapsed})",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(what.to_owned());
    pb
}

/// A `progress(records, bytes)` callback that updates `pb`.
pub fn updater<'a>(pb: &'a ProgressBar, unit: &'static str) -> impl FnMut(u64, u64) + 'a {
    let mut last = u64::MAX;
    move |records, bytes| {
        pb.set_position(bytes);
        // Formatting the message on every record would dominate small records.
        if records / 512 != last / 512 || last == u64::MAX {
            pb.set_message(format!("{records} {unit}"));
        }
        last = records;
    }
}
