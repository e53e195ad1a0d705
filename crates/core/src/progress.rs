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

    /// [`recording`], the sink taking longer over each event than
    /// [`MIN_INTERVAL`]: the reporter's clock then lets through every tick
    /// that reaches a new whole percent.
    fn slow_recording() -> (ProgressSink, Arc<Mutex<Vec<Progress>>>) {
        let (sink, events) = recording();
        let slow: ProgressSink = Arc::new(move |p: &Progress| {
            sink(p);
            std::thread::sleep(MIN_INTERVAL + Duration::from_millis(5));
        });
        (slow, events)
    }

    /// A persistent HNSW store of 4-dimensional points in `root`, its
    /// open's sink recording every event.
    fn recorded_store(root: &std::path::Path) -> (crate::Store, Arc<Mutex<Vec<Progress>>>) {
        recorded_store_of(root, 4, crate::Algorithm::Hnsw)
    }

    /// A persistent store of `dimension`-dimensional points in `root`, its
    /// open's sink recording every event.
    fn recorded_store_of(
        root: &std::path::Path,
        dimension: usize,
        algorithm: crate::Algorithm,
    ) -> (crate::Store, Arc<Mutex<Vec<Progress>>>) {
        use crate::storage::directory::Durability;
        use crate::{testing, AnnConfig, CollectionConfig, Distance};
        let (sink, events) = recording();
        let config = CollectionConfig::new(dimension, Distance::Cosine, None).unwrap();
        let ann = AnnConfig {
            algorithm,
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

    /// `n` random 4-dimensional points, ids `0..n`, in one batch.
    fn points(n: usize) -> crate::PointBatch {
        points_of(n, 4)
    }

    /// `n` random `dimension`-dimensional points, ids `0..n`, in one batch.
    fn points_of(n: usize, dimension: usize) -> crate::PointBatch {
        let mut rng = crate::testing::Rng(7);
        let vectors = (0..n * dimension).map(|_| rng.signed()).collect();
        let ids = (0..n as i64).map(crate::PointId::Int).collect();
        let payloads = (0..n)
            .map(|i| crate::testing::payload(serde_json::json!({ "i": i })))
            .collect();
        crate::testing::batch(dimension, ids, vectors, payloads)
    }

    /// Size of the one checkpoint file in `dir`.
    fn checkpoint_file_len(dir: &std::path::Path) -> u64 {
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| {
                crate::storage::snapshot::parse_file_name(&e.file_name().to_string_lossy())
                    .is_some()
            })
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].metadata().unwrap().len()
    }

    /// A `write` phase in bytes of a file of `len`: starts at 0, ticks after
    /// each piece handed on (the slow sink lets every one through: one per
    /// whole MiB at least, bar the last), ends at `len`.
    fn assert_ticks_per_piece(run: &[Progress], len: u64) {
        use crate::storage::engine::CHECKPOINT_PIECE;
        let piece = CHECKPOINT_PIECE as u64;
        assert_whole(run);
        assert_eq!(run[0].phase, "write");
        assert_eq!(run[0].total, len);
        let ticks = run.len() as u64 - 2;
        assert!(len / piece >= 4, "a file of {len} bytes is too small");
        assert!(
            ticks >= len / piece - 1,
            "{ticks} ticks for {len} bytes: {run:?}"
        );
        assert!(run.windows(2).all(|w| w[0].current < w[1].current));
        // No stretch of more than a piece (and a header) without an event.
        assert!(run
            .windows(2)
            .all(|w| w[1].current - w[0].current <= piece + 64));
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
    fn a_checkpoint_reports_writing_its_file_then_the_index_wait() {
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
        // In bytes of the checkpoint file.
        assert_eq!(
            runs[0][0].total,
            checkpoint_file_len(&dir.path().join("progress"))
        );
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
    fn a_checkpoint_write_ticks_per_piece_in_bytes_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = recorded_store_of(dir.path(), 256, crate::Algorithm::Flat);
        // 6,000 × 1 KiB of vectors: a file of about six pieces.
        store.insert(store.ticket(), points_of(6000, 256)).unwrap();
        let (sink, events) = slow_recording();
        let mut reporter = Reporter::new("checkpoint", Some(sink));
        store
            .checkpoint_reporting(store.ticket(), &mut reporter)
            .unwrap();
        let runs = phases(&events.lock().unwrap(), "checkpoint");
        let len = checkpoint_file_len(&dir.path().join("progress"));
        assert_ticks_per_piece(&runs[0], len);
        assert_eq!(runs.len(), 1, "a flat store saves no graph");
    }

    #[test]
    fn a_key_value_checkpoint_reports_its_write_in_bytes() {
        use crate::kv::{KvOptions, KvStore, KvValue, KvWrite};
        use crate::storage::directory::Durability;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv");
        let store = KvStore::open(KvOptions {
            storage: Arc::new(crate::storage::fs::OsStorage),
            path: path.clone(),
            dir: crate::testing::no_auto_checkpoint(Durability::Flush),
        })
        .unwrap();
        // Values of random bytes (they do not compress): about 5 MiB.
        let mut rng = crate::testing::Rng(3);
        let writes = (0..80)
            .map(|i| KvWrite {
                key: format!("blob:{i:03}"),
                value: KvValue::Binary((0..64 << 10).map(|_| rng.next_u64() as u8).collect()),
                metadata: "{}".into(),
                expires_at: None,
            })
            .collect();
        store.set(store.ticket(), writes, 1).unwrap();
        let (sink, events) = slow_recording();
        let mut reporter = Reporter::new("checkpoint", Some(sink));
        store
            .checkpoint_reporting(store.ticket(), &mut reporter)
            .unwrap();
        let runs = phases(&events.lock().unwrap(), "checkpoint");
        assert_eq!(runs.len(), 1);
        assert_ticks_per_piece(&runs[0], checkpoint_file_len(&path));
        // Nothing written since: one empty `write` phase, at 100 %.
        events.lock().unwrap().clear();
        store
            .checkpoint_reporting(store.ticket(), &mut reporter)
            .unwrap();
        let again = events.lock().unwrap().clone();
        assert_eq!(again.len(), 2);
        assert_eq!((again[0].phase, again[0].total), ("write", 0));
        assert_eq!(again[1].percentage, 100.0);
        // The async path (the binding's) reports the same way, then calls back.
        store
            .set(
                store.ticket(),
                vec![KvWrite {
                    key: "one more".into(),
                    value: KvValue::Json("1".into()),
                    metadata: "{}".into(),
                    expires_at: None,
                }],
                2,
            )
            .unwrap();
        events.lock().unwrap().clear();
        let (sink, events) = recording();
        let (tx, rx) = std::sync::mpsc::channel();
        store.maintain_async_reporting(3, Reporter::new("checkpoint", Some(sink)), move |r| {
            tx.send(r.map_err(|e| e.to_string())).unwrap()
        });
        assert_eq!(rx.recv().unwrap(), Ok(0));
        let runs = phases(&events.lock().unwrap(), "checkpoint");
        assert_eq!(runs.len(), 1);
        assert_whole(&runs[0]);
        assert_eq!(runs[0][0].total, checkpoint_file_len(&path));
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
        assert_eq!(
            runs[1][0].total,
            checkpoint_file_len(&dir.path().join("progress"))
        );
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
