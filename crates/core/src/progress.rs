//! Progress of long operations (export, import, verify), reported at a
//! bounded rate: a phase's start and end always, and in between at most
//! one event per whole percent and per [`MIN_INTERVAL`], so a callback
//! costs nothing measurable however many points there are.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Shortest time between two events of one phase (at most 20 per second).
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// One progress event, as `onProgress` receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub operation: &'static str,
    pub phase: &'static str,
    pub current: u64,
    pub total: u64,
    /// `current / total` in percent, 0–100 (100 when `total` is 0).
    pub percentage: f64,
    pub message: String,
}

/// Where events go. It must not block: the binding queues them for the JS thread.
pub type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Rate-limits the events of one operation.
pub struct Reporter {
    sink: Option<ProgressSink>,
    operation: &'static str,
    phase: &'static str,
    total: u64,
    last_at: Instant,
    last_percent: u64,
    emitted: u64,
}

impl Reporter {
    pub fn new(operation: &'static str, sink: Option<ProgressSink>) -> Self {
        Reporter {
            sink,
            operation,
            phase: "",
            total: 0,
            last_at: Instant::now(),
            last_percent: 0,
            emitted: 0,
        }
    }

    /// A reporter that reports nothing.
    pub fn silent(operation: &'static str) -> Self {
        Reporter::new(operation, None)
    }

    /// Starts `phase` of `total` steps; always reported.
    pub fn start(&mut self, phase: &'static str, total: u64, message: impl Into<String>) {
        self.phase = phase;
        self.total = total;
        self.last_percent = 0;
        self.emit(0, message.into());
    }

    /// Reports `current` steps done, if a whole percent passed and
    /// [`MIN_INTERVAL`] since the last event.
    pub fn tick(&mut self, current: u64) {
        if self.sink.is_none() || self.total == 0 {
            return;
        }
        let percent = current.saturating_mul(100) / self.total;
        if percent <= self.last_percent || self.last_at.elapsed() < MIN_INTERVAL {
            return;
        }
        self.last_percent = percent;
        self.emit(current, String::new());
    }

    /// Ends the current phase; always reported.
    pub fn finish(&mut self, message: impl Into<String>) {
        let total = self.total;
        self.emit(total, message.into());
    }

    /// Events handed to the sink so far: a binding that delivers them
    /// asynchronously waits for this many before it settles the operation.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    fn emit(&mut self, current: u64, message: String) {
        let Some(sink) = &self.sink else { return };
        self.last_at = Instant::now();
        self.emitted += 1;
        let percentage = if self.total == 0 {
            100.0
        } else {
            (current as f64 * 100.0 / self.total as f64).min(100.0)
        };
        let event = Progress {
            operation: self.operation,
            phase: self.phase,
            current,
            total: self.total,
            percentage,
            message,
        };
        // A progress callback is an observer: its failure must not fail the
        // operation it observes.
        let _ = catch_unwind(AssertUnwindSafe(|| sink(&event)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_million_ticks_give_a_bounded_number_of_events() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let mut r = Reporter::new(
            "export",
            Some(Arc::new(move |p: &Progress| {
                seen.lock().unwrap().push(p.clone())
            })),
        );
        r.start("write", 1_000_000, "");
        for i in 0..1_000_000 {
            r.tick(i);
        }
        r.finish("done");
        let events = events.lock().unwrap();
        assert!(events.len() >= 2 && events.len() <= 102, "{}", events.len());
        assert_eq!(events.first().unwrap().percentage, 0.0);
        assert_eq!(events.last().unwrap().percentage, 100.0);
        assert!(events.windows(2).all(|w| w[0].current <= w[1].current));
    }

    #[test]
    fn a_panicking_sink_does_not_stop_the_reporter() {
        let mut r = Reporter::new("verify", Some(Arc::new(|_: &Progress| panic!("boom"))));
        r.start("read", 3, "");
        r.finish("");
    }
}
