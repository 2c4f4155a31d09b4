//! The command line's progress sink ([`crate::progress`]): an `indicatif` bar with rate
//! and ETA when stderr is a terminal; otherwise one line per task every
//! [`DEFAULT_EVERY`] (or `SRCOS_PROGRESS_EVERY` seconds) and one when the task is done,
//! so logs of a non-interactive run show that it advances and how fast.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Time between two progress lines of one task when stderr is not a terminal.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(2);

/// Installs the sink for this process (a bar on a terminal, lines otherwise).
pub fn install() {
    let sink: crate::progress::Sink = if std::io::stderr().is_terminal() {
        let bars = Bars::default();
        Box::new(move |task, done, total| bars.update(task, done, total))
    } else {
        let lines = Lines::new(every());
        Box::new(move |task, done, total| lines.update(task, done, total))
    };
    crate::progress::install(sink);
}

/// `SRCOS_PROGRESS_EVERY` (seconds, may be 0) or [`DEFAULT_EVERY`].
fn every() -> Duration {
    std::env::var("SRCOS_PROGRESS_EVERY")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(DEFAULT_EVERY, Duration::from_secs_f64)
}

/// One bar per task.
#[derive(Default)]
struct Bars {
    bars: Mutex<HashMap<&'static str, ProgressBar>>,
}

impl Bars {
    fn update(&self, task: &'static str, done: u64, total: u64) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(task).or_insert_with(|| new_bar(task, total));
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish();
            bars.remove(task);
        }
    }
}

fn new_bar(task: &'static str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>8} [{bar:40}] {human_pos}/{human_len} entries, {per_sec}, ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(task);
    bar
}

/// When a task started and when its last line was printed.
struct Started {
    at: Instant,
    printed: Option<Instant>,
}

/// Periodic progress lines on stderr.
struct Lines {
    every: Duration,
    tasks: Mutex<HashMap<&'static str, Started>>,
}

impl Lines {
    fn new(every: Duration) -> Lines {
        Lines {
            every,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    fn update(&self, task: &'static str, done: u64, total: u64) {
        let now = Instant::now();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let started = tasks.entry(task).or_insert(Started {
            at: now,
            printed: None,
        });
        let due = started
            .printed
            .is_none_or(|last| now.duration_since(last) >= self.every);
        if !(due || done >= total) {
            return;
        }
        started.printed = Some(now);
        let line = progress_line(task, done, total, now.duration_since(started.at));
        if done >= total {
            tasks.remove(task);
        }
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// `replay: 512/1000 entries (51.2%), 2048 entries/s, ETA 1s` (or `done in …`).
fn progress_line(task: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let percent = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    let tail = if done >= total {
        format!("done in {seconds:.1}s")
    } else if rate > 0.0 {
        format!("ETA {:.0}s", (total - done) as f64 / rate)
    } else {
        "ETA unknown".to_string()
    };
    format!("{task}: {done}/{total} entries ({percent:.1}%), {rate:.0} entries/s, {tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_count_percentage_rate_and_eta() {
        let cases = [
            (
                50,
                200,
                10,
                "replay: 50/200 entries (25.0%), 5 entries/s, ETA 30s",
            ),
            (
                200,
                200,
                4,
                "replay: 200/200 entries (100.0%), 50 entries/s, done in 4.0s",
            ),
            (
                0,
                200,
                0,
                "replay: 0/200 entries (0.0%), 0 entries/s, ETA unknown",
            ),
            (
                0,
                0,
                0,
                "replay: 0/0 entries (100.0%), 0 entries/s, done in 0.0s",
            ),
        ];
        for (done, total, secs, want) in cases {
            assert_eq!(
                progress_line("replay", done, total, Duration::from_secs(secs)),
                want
            );
        }
    }
}
