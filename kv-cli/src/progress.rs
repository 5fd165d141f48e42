//! Progress bars for long work (export, import, migrate), drawn on stderr
//! only when stderr is a terminal: scripts and logs see nothing.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Records per second, without decimals.
fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", state.per_sec());
}

/// A progress bar (with a known total) or a spinner (without), or nothing
/// when stderr is not a terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` records, or a spinner when the total is unknown;
    /// `what` is its label (`exporting`, …).
    pub fn new(what: &str, total: Option<u64>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix} [{bar:25}] {pos}/{len} ({rate}, {eta} left) {msg}",
                ) {
                    bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
                }
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                if let Ok(style) =
                    ProgressStyle::with_template("{spinner} {prefix} {pos} records ({rate}) {msg}")
                {
                    bar.set_style(style.with_key("rate", rate));
                }
                bar
            }
        };
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar }
    }

    /// Records done so far.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// A short note after the counts (`12 skipped`, …).
    pub fn message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
