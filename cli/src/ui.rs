//! Colour (only on a terminal, via `anstream`) and progress for slow steps.

use std::io::IsTerminal as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};

pub(crate) const PASS: Style = AnsiColor::Green.on_default().bold();
pub(crate) const FAIL: Style = AnsiColor::Red.on_default().bold();
pub(crate) const SKIP: Style = AnsiColor::Yellow.on_default();
pub(crate) const DIM: Style = Style::new().dimmed();
pub(crate) const BOLD: Style = Style::new().bold();

/// `text` in `style`; `anstream` removes the escapes when the output is not a terminal.
pub(crate) fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// A spinner on stderr for work that may take more than a second. It appears only after
/// a second, only on a terminal; elsewhere the message is printed once, plainly, if the
/// work takes that long.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    reveal: Option<std::thread::JoinHandle<()>>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Progress {
    pub(crate) fn start(message: impl Into<String>, quiet: bool) -> Self {
        let message = message.into();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if quiet {
            return Progress {
                bar: None,
                reveal: None,
                done,
            };
        }
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::hidden(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(message.clone());
            bar
        });
        let reveal = {
            let bar = bar.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(100));
                    if done.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                }
                match bar {
                    Some(bar) => {
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                        bar.enable_steady_tick(Duration::from_millis(100));
                    }
                    None => eprintln!("{message} ..."),
                }
            })
        };
        Progress {
            bar,
            reveal: Some(reveal),
            done,
        }
    }

    pub(crate) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(reveal) = self.reveal.take() {
            let _ = reveal.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
