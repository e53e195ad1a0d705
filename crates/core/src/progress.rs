//! Progress of long operations (open, checkpoint, snapshot, restore,
//! export, import, verify, graph rebuilds), reported at a
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
    /// [`MIN_INTERVAL`] since the last event. The last step is left to
    /// [`Reporter::finish`], so that a phase ends with one event at 100 %.
    pub fn tick(&mut self, current: u64) {
        if self.sink.is_none() || current >= self.total {
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

    /// The sink, for work this operation leaves running (a store keeps its
    /// open's sink for its background checkpoints and graph builds).
    pub fn sink(&self) -> Option<ProgressSink> {
        self.sink.clone()
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

    /// A sink that records every event, and the events it recorded.
    fn recording() -> (ProgressSink, Arc<Mutex<Vec<Progress>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let sink: ProgressSink = Arc::new(move |p: &Progress| seen.lock().unwrap().push(p.clone()));
        (sink, events)
    }

    #[test]
    fn a_million_ticks_give_a_bounded_number_of_events() {
        let (sink, events) = recording();
        let mut r = Reporter::new("export", Some(sink));
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

    /// A persistent HNSW store of 4-dimensional points in `root`, its
    /// open's sink recording every event.
    fn recorded_store(root: &std::path::Path) -> (crate::Store, Arc<Mutex<Vec<Progress>>>) {
        use crate::storage::directory::Durability;
        use crate::{testing, Algorithm, AnnConfig, CollectionConfig, Distance};
        let (sink, events) = recording();
        let config = CollectionConfig::new(4, Distance::Cosine, None).unwrap();
        let ann = AnnConfig {
            algorithm: Algorithm::Hnsw,
            ..AnnConfig::default()
        };
        let storage = Arc::new(crate::storage::fs::OsStorage);
        let dir_options = testing::no_auto_checkpoint(Durability::Flush);
        let persistence = testing::persistence(storage, root, dir_options);
        let options = testing::store_options("progress", config, ann, Some(persistence));
        let store =
            crate::Store::open_reporting(options, &mut Reporter::new("open", Some(sink))).unwrap();
        (store, events)
    }

    /// `n` random points, ids `0..n`, in one batch.
    fn points(n: usize) -> crate::PointBatch {
        let mut rng = crate::testing::Rng(7);
        let vectors = (0..n * 4).map(|_| rng.signed()).collect();
        let ids = (0..n as i64).map(crate::PointId::Int).collect();
        let payloads = (0..n)
            .map(|i| crate::testing::payload(serde_json::json!({ "i": i })))
            .collect();
        crate::testing::batch(4, ids, vectors, payloads)
    }

    /// The events of `operation`, split into runs of one phase each (a run
    /// ends with the first event after its start at the phase's total).
    fn phases(events: &[Progress], operation: &str) -> Vec<Vec<Progress>> {
        let mut runs: Vec<Vec<Progress>> = Vec::new();
        for e in events.iter().filter(|e| e.operation == operation) {
            match runs.last_mut() {
                Some(run)
                    if run[0].phase == e.phase
                        && !(run.len() >= 2 && run.last().unwrap().current == run[0].total) =>
                {
                    run.push(e.clone())
                }
                _ => runs.push(vec![e.clone()]),
            }
        }
        runs
    }

    /// A phase starts at 0, counts up at most once per percent, and ends at its total.
    fn assert_whole(run: &[Progress]) {
        let (first, last) = (&run[0], run.last().unwrap());
        assert_eq!(first.current, 0, "{run:?}");
        assert_eq!(last.current, last.total, "{run:?}");
        assert!(run.len() >= 2 && run.len() <= 102, "{run:?}");
        assert!(run
            .windows(2)
            .all(|w| w[0].current <= w[1].current && w[0].total == w[1].total));
    }

    #[test]
    fn a_checkpoint_reports_writing_its_points_then_the_index_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = recorded_store(dir.path());
        store.insert(store.ticket(), points(3000)).unwrap();
        let (sink, events) = recording();
        let mut reporter = Reporter::new("checkpoint", Some(sink));
        store
            .checkpoint_reporting(store.ticket(), &mut reporter)
            .unwrap();
        let runs = phases(&events.lock().unwrap(), "checkpoint");
        let names: Vec<&str> = runs.iter().map(|r| r[0].phase).collect();
        assert_eq!(names[0], "write", "{names:?}");
        assert_eq!(runs[0][0].total, 3000);
        let index = names
            .iter()
            .position(|&p| p == "index")
            .expect("an index phase");
        // Labels: the points, and any the audits gave a new label.
        assert!(runs[index][0].total >= 3000);
        assert!(
            names
                .iter()
                .all(|p| ["write", "graph", "index"].contains(p)),
            "{names:?}"
        );
        runs.iter().for_each(|run| assert_whole(run));
        // Nothing written since: one empty `write` phase, at 100 %.
        events.lock().unwrap().clear();
        store
            .checkpoint_reporting(store.ticket(), &mut reporter)
            .unwrap();
        let again = events.lock().unwrap().clone();
        assert_eq!(again[0].phase, "write");
        assert_eq!((again[0].total, again[0].percentage), (0, 100.0));
    }

    #[test]
    fn a_graph_build_and_the_close_report_to_the_open_sink() {
        let dir = tempfile::tempdir().unwrap();
        let (store, events) = recorded_store(dir.path());
        store.insert(store.ticket(), points(3000)).unwrap();
        assert!(store
            .wait_for_index(std::time::Duration::from_secs(600))
            .unwrap());
        let builds = phases(&events.lock().unwrap(), "rebuild");
        assert!(!builds.is_empty());
        assert_eq!(builds[0][0].phase, "build");
        assert_eq!(builds[0][0].total, 3000);
        builds.iter().for_each(|run| assert_whole(run));
        store.close(store.ticket()).unwrap();
        let runs = phases(&events.lock().unwrap(), "checkpoint");
        let names: Vec<&str> = runs.iter().map(|r| r[0].phase).collect();
        assert_eq!(names[..2], ["index", "write"], "{names:?}");
        assert_eq!(runs[1][0].total, 3000);
        runs.iter().for_each(|run| assert_whole(run));
        // The events observed the work; the data is there.
        store.reopen(store.ticket()).unwrap();
        assert_eq!(store.len().unwrap(), 3000);
    }

    #[test]
    fn a_panicking_sink_does_not_stop_the_reporter() {
        let mut r = Reporter::new("verify", Some(Arc::new(|_: &Progress| panic!("boom"))));
        r.start("read", 3, "");
        r.finish("");
    }
}
