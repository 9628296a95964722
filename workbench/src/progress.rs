//! The campaign's progress bar: current run, elapsed time, ETA.
//!
//! An indicatif bar on a terminal; on a pipe or in CI (where indicatif hides
//! itself) the same events become plain lines on stderr, so logs still say
//! which run is going and how it ended.

use indicatif::{ProgressBar, ProgressStyle};

/// One bar over the campaign's runs.
pub struct Progress {
    /// The bar (hidden when stderr is not a terminal).
    bar: ProgressBar,
    /// Number of runs, for the plain lines.
    total: usize,
}

impl Progress {
    /// A bar over `total` runs.
    pub fn new(total: usize) -> Progress {
        let bar = ProgressBar::new(total as u64);
        let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
            .expect("the template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        Progress { bar, total }
    }

    fn line(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    /// A run begins.
    pub fn start(&self, name: &str, detail: &str) {
        self.bar.set_message(name.to_string());
        self.line(format!("[{}/{}] {name} ({detail})", self.bar.position() + 1, self.total));
    }

    /// A run ended with `verdict`.
    pub fn finish(&self, name: &str, verdict: &str) {
        self.line(format!("  {name}: {verdict}"));
        self.bar.inc(1);
    }

    /// A run was already finished (resume).
    pub fn skip(&self, name: &str) {
        self.line(format!("[{}/{}] {name}: already finished, skipped", self.bar.position() + 1, self.total));
        self.bar.inc(1);
    }

    /// The campaign stopped early.
    pub fn abandon(&self) {
        self.bar.abandon();
    }

    /// Every run is done.
    pub fn done(&self) {
        self.bar.finish_and_clear();
    }
}
