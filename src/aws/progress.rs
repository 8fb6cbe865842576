//! What `up` and `down` show while they work: indicatif bars on a terminal, plain timestamped
//! lines otherwise (CI, tests, pipes). Output goes to stderr; stdout stays for data.
//! Callers emit a heartbeat at least every 10 s while waiting, so the user is never left
//! looking at a silent screen.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Longest silence allowed while waiting on AWS.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    start: Instant,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn auto() -> Progress {
        if std::io::stderr().is_terminal() { Progress::bars() } else { Progress::plain() }
    }

    pub fn plain() -> Progress {
        Progress { multi: None, start: Instant::now() }
    }

    pub fn bars() -> Progress {
        Progress { multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())), start: Instant::now() }
    }

    fn stamp(&self) -> String {
        let s = self.start.elapsed().as_secs();
        format!("[{:02}:{:02}]", s / 60, s % 60)
    }

    /// A line about the whole run (a step starting, a decision).
    pub fn line(&self, msg: impl AsRef<str>) {
        let text = format!("{} {}", self.stamp(), msg.as_ref());
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// A task with its own bar (a stack, an upload).
    pub fn task(&self, name: &str) -> Task {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new_spinner());
            b.set_style(ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed}] {wide_msg}").expect("valid template"));
            b.set_prefix(name.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Task {
            progress: self.clone(),
            name: name.to_string(),
            bar,
            started: Instant::now(),
            last_output: Instant::now(),
            last_event: String::new(),
        }
    }
}

pub struct Task {
    progress: Progress,
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
    last_output: Instant,
    last_event: String,
}

impl Task {
    /// Something happened (a resource event): shown, and remembered for heartbeats.
    pub fn event(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        match &self.bar {
            Some(b) => {
                b.set_message(msg.clone());
                let _ = self.progress.multi.as_ref().map(|m| m.println(format!("  {} {}", self.name, msg)));
            }
            None => self.progress.line(format!("{}: {msg}", self.name)),
        }
        self.last_event = msg;
        self.last_output = Instant::now();
    }

    /// Called from wait loops: prints the elapsed time and the last event when nothing was
    /// shown for `HEARTBEAT` (a spinner already moves on a terminal, but CI logs need lines).
    pub fn heartbeat(&mut self, state: &str) {
        if self.last_output.elapsed() < HEARTBEAT {
            return;
        }
        let secs = self.started.elapsed().as_secs();
        let last = if self.last_event.is_empty() { String::new() } else { format!("; last event: {}", self.last_event) };
        let msg = format!("still {state} after {}m{:02}s{last}", secs / 60, secs % 60);
        match &self.bar {
            Some(b) => b.set_message(msg),
            None => self.progress.line(format!("{}: {msg}", self.name)),
        }
        self.last_output = Instant::now();
    }

    pub fn finish(self, msg: impl AsRef<str>) {
        let secs = self.started.elapsed().as_secs_f64();
        let text = format!("{}: {} ({secs:.1}s)", self.name, msg.as_ref());
        match &self.bar {
            Some(b) => b.finish_with_message(format!("{} ({secs:.1}s)", msg.as_ref())),
            None => self.progress.line(text),
        }
    }
}
